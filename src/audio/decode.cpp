#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>

#include <sndfile.h>

#include "audio_error.hpp"

namespace mess {
namespace audio_detail {
namespace {

struct SndCloser {
    void operator()(SNDFILE* f) const { sf_close(f); }
};
using SndPtr = std::unique_ptr<SNDFILE, SndCloser>;

std::string format_field_name(int format, int command) {
    SF_FORMAT_INFO fi{};
    fi.format = format;
    if (sf_command(nullptr, command, &fi, sizeof(fi)) != 0 || fi.name == nullptr) return "unknown";
    return fi.name;
}

std::string describe_format(int format) {
    // "OGG (Vorbis)", "WAV (Signed 16 bit PCM)": the container by its short name, then the codec.
    std::string major;
    switch (format & SF_FORMAT_TYPEMASK) {
        case SF_FORMAT_WAV: case SF_FORMAT_WAVEX: major = "WAV"; break;
        case SF_FORMAT_FLAC: major = "FLAC"; break;
        case SF_FORMAT_OGG: major = "OGG"; break;
        case SF_FORMAT_MPEG: major = "MPEG"; break;
        case SF_FORMAT_AIFF: major = "AIFF"; break;
        default: major = format_field_name(format & SF_FORMAT_TYPEMASK, SFC_GET_FORMAT_INFO);
    }
    return major + " (" + format_field_name(format & SF_FORMAT_SUBMASK, SFC_GET_FORMAT_INFO) + ")";
}

// The WAV data chunk size the header declares versus the bytes present: libsndfile quietly clamps a
// truncated WAV to what is there, so truncation has to be detected from the RIFF header itself.
bool wav_data_truncated(const std::filesystem::path& path, std::int64_t& declared, std::int64_t& present) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return false;
    unsigned char hdr[12];
    bool truncated = false;
    if (std::fread(hdr, 1, 12, f) == 12 && std::memcmp(hdr, "RIFF", 4) == 0 && std::memcmp(hdr + 8, "WAVE", 4) == 0) {
        unsigned char ch[8];
        while (std::fread(ch, 1, 8, f) == 8) {
            std::uint32_t size = ch[4] | ch[5] << 8 | ch[6] << 16 | static_cast<std::uint32_t>(ch[7]) << 24;
            long pos = std::ftell(f);
            if (std::memcmp(ch, "data", 4) == 0) {
                std::fseek(f, 0, SEEK_END);
                long end = std::ftell(f);
                declared = size;
                present = end - pos;
                // 0 and 0xFFFFFFFF mean "unknown length" (streamed WAV): not a truncation.
                truncated = size != 0 && size != 0xffffffffu && present < static_cast<std::int64_t>(size);
                break;
            }
            if (std::fseek(f, static_cast<long>(size + (size & 1u)), SEEK_CUR) != 0) break;
        }
    }
    std::fclose(f);
    return truncated;
}

// A zero channel count or sample rate in a WAV file's fmt chunk, said plainly (libsndfile's own message for
// these is vague), or nullopt when the fmt chunk is sound or absent.
std::optional<std::string> wav_format_problem(const std::filesystem::path& path) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return std::nullopt;
    std::optional<std::string> problem;
    unsigned char hdr[12], ch[8], fmt[8];
    if (std::fread(hdr, 1, 12, f) == 12 && std::memcmp(hdr, "RIFF", 4) == 0 && std::memcmp(hdr + 8, "WAVE", 4) == 0) {
        while (std::fread(ch, 1, 8, f) == 8) {
            const std::uint32_t size = ch[4] | ch[5] << 8 | ch[6] << 16 | static_cast<std::uint32_t>(ch[7]) << 24;
            if (std::memcmp(ch, "fmt ", 4) == 0) {
                if (std::fread(fmt, 1, 8, f) == 8) {
                    const unsigned channels = fmt[2] | fmt[3] << 8;
                    const std::uint32_t rate = fmt[4] | fmt[5] << 8 | fmt[6] << 16 | static_cast<std::uint32_t>(fmt[7]) << 24;
                    if (channels == 0) problem = "the WAV header declares 0 channels";
                    else if (rate == 0) problem = "the WAV header declares a sample rate of 0 Hz";
                }
                break;
            }
            if (std::fseek(f, static_cast<long>(size + (size & 1u)), SEEK_CUR) != 0) break;
        }
    }
    std::fclose(f);
    return problem;
}

// sf_open with its failure message. libsndfile keeps the error of a failed open in one global, which any
// other thread's open overwrites ("No Error."), so opening and reading that error are one critical section.
SNDFILE* open_with_error(const std::filesystem::path& path, SF_INFO& sfinfo, std::string& error) {
    static std::mutex global_error;
    std::lock_guard lock(global_error);
    SNDFILE* f = sf_open(path.c_str(), SFM_READ, &sfinfo);
    if (!f) error = sf_strerror(nullptr);
    return f;
}

// The container a file's first bytes announce, or nullptr: tells a damaged known file (truncated)
// from content that is not audio at all (unsupported).
const char* sniff_container(const std::filesystem::path& path) {
    unsigned char b[12] = {};
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) return nullptr;
    std::size_t n = std::fread(b, 1, sizeof(b), f);
    std::fclose(f);
    auto starts = [&](const char* magic, std::size_t len) { return n >= len && std::memcmp(b, magic, len) == 0; };
    if (starts("RIFF", 4) || starts("RIFX", 4) || starts("RF64", 4)) return "WAV";
    if (starts("fLaC", 4)) return "FLAC";
    if (starts("OggS", 4)) return "OGG";
    if (starts("FORM", 4)) return "AIFF";
    if (starts("ID3", 3) || (n >= 2 && b[0] == 0xff && (b[1] & 0xe0) == 0xe0)) return "MPEG";
    return nullptr;
}

SndPtr open_sound(const std::filesystem::path& path, SF_INFO& sfinfo) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) fail(AudioProblem::missing, "{}: no such file", path.string());
    if (std::filesystem::is_directory(path, ec)) fail(AudioProblem::unreadable, "{}: is a directory", path.string());
    auto size = std::filesystem::file_size(path, ec);
    if (ec) fail(AudioProblem::unreadable, "{}: cannot stat: {}", path.string(), ec.message());
    if (size == 0) fail(AudioProblem::empty, "{}: empty file (0 bytes)", path.string());
    FILE* probe = std::fopen(path.c_str(), "rb");
    if (!probe) fail(AudioProblem::unreadable, "{}: cannot open: {}", path.string(), std::strerror(errno));
    std::fclose(probe);

    sfinfo = SF_INFO{};
    std::string why;
    SndPtr f(open_with_error(path, sfinfo, why));
    if (const auto problem = wav_format_problem(path)) fail(AudioProblem::unsupported, "{}: {}", path.string(), *problem);
    if (!f) {
        // Existence and readability were checked above, so a failure here is about the content.
        if (const char* container = sniff_container(path))
            fail(AudioProblem::truncated, "{}: malformed or truncated {} file ({})", path.string(), container, why);
        fail(AudioProblem::unsupported, "{}: not a recognised audio format", path.string());
    }
    if (sfinfo.samplerate <= 0 || sfinfo.channels <= 0)
        fail(AudioProblem::unsupported, "{}: invalid header (rate {}, channels {})", path.string(), sfinfo.samplerate, sfinfo.channels);
    // A header claiming a few Hz turns a few KB into minutes of audio to resample (found by a 10-minute fuzz run).
    if (sfinfo.samplerate < kMinSampleRate || sfinfo.samplerate > kMaxSampleRate)
        fail(AudioProblem::unsupported, "{}: sample rate {} Hz is outside {}..{} Hz: not audio MESS can use", path.string(), sfinfo.samplerate,
             kMinSampleRate, kMaxSampleRate);
    return f;
}

AudioInfo make_info(const std::filesystem::path& path, const SF_INFO& s) {
    AudioInfo info;
    info.path = path;
    info.format = describe_format(s.format);
    info.sample_rate = s.samplerate;
    info.channels = s.channels;
    info.frames = s.frames;
    return info;
}

}  // namespace

Decoded decode_file(const std::filesystem::path& path) {
    SF_INFO s;
    SndPtr f = open_sound(path, s);
    Decoded d;
    d.info = make_info(path, s);
    const bool is_mp3 = (s.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG;
    const bool is_wav = (s.format & SF_FORMAT_TYPEMASK) == SF_FORMAT_WAV;
    if (is_wav) {
        std::int64_t declared = 0, present = 0;
        if (wav_data_truncated(path, declared, present))
            fail(AudioProblem::truncated, "{}: truncated file (data chunk declares {} bytes, {} present)", path.string(), declared, present);
    }

    const int ch = s.channels;
    std::vector<float> block(static_cast<std::size_t>(4096) * static_cast<std::size_t>(ch));
    auto& out = d.audio.samples;
    // The header's frame count is a claim (an Ogg file's last granule position, say): reserve at most 2^24 up front.
    if (!is_mp3 && s.frames > 0) out.reserve(static_cast<std::size_t>(std::min<sf_count_t>(s.frames, sf_count_t{1} << 24)));
    while (true) {
        sf_count_t got = sf_readf_float(f.get(), block.data(), 4096);
        if (got <= 0) break;
        for (sf_count_t i = 0; i < got; ++i) {
            float acc = 0.0f;
            for (int c = 0; c < ch; ++c) acc += block[static_cast<std::size_t>(i * ch + c)];
            out.push_back(ch == 1 ? acc : acc / static_cast<float>(ch));
        }
    }
    if (int err = sf_error(f.get()); err != SF_ERR_NO_ERROR)
        fail(AudioProblem::truncated, "{}: decode error after {} frames ({})", path.string(), out.size(), sf_strerror(f.get()));
    d.audio.sample_rate = s.samplerate;
    if (!is_mp3 && s.frames > 0 && static_cast<std::int64_t>(out.size()) < s.frames)
        fail(AudioProblem::truncated, "{}: truncated file (decoded {} of {} frames)", path.string(), out.size(), s.frames);
    if (is_mp3) d.info.frames = static_cast<std::int64_t>(out.size());  // the header's count was an estimate
    if (out.empty()) fail(AudioProblem::empty, "{}: no audio samples", path.string());
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (!std::isfinite(out[i]))
            fail(AudioProblem::non_finite, "{}: non-finite sample ({}) at {:.3f} s", path.string(), out[i],
                 static_cast<double>(i) / s.samplerate);
    }
    return d;
}

}  // namespace audio_detail

AudioInfo probe_audio(const std::filesystem::path& path) {
    SF_INFO s;
    auto f = audio_detail::open_sound(path, s);
    return audio_detail::make_info(path, s);
}

Audio decode_audio(const std::filesystem::path& path) { return audio_detail::decode_file(path).audio; }

Audio load_audio(const std::filesystem::path& path, int sample_rate, double min_seconds) {
    Audio a = decode_audio(path);
    if (a.duration_sec() < min_seconds)
        audio_detail::fail(AudioProblem::too_short, "{}: too short ({:.3f} s < minimum {:.3f} s)", path.string(), a.duration_sec(), min_seconds);
    if (a.sample_rate != sample_rate) {
        a.samples = with_context(path.string(), [&] { return resample(a.samples, a.sample_rate, sample_rate); });
        a.sample_rate = sample_rate;
    }
    return a;
}

bool is_silent(AudioView audio) noexcept {
    return std::all_of(audio.samples.begin(), audio.samples.end(), [](float x) { return x == 0.0f; });
}

}  // namespace mess
