#include <algorithm>
#include <cctype>

#include "audio_error.hpp"

namespace mess {

std::string_view audio_problem_name(AudioProblem p) noexcept {
    switch (p) {
        case AudioProblem::none: return "ok";
        case AudioProblem::missing: return "missing";
        case AudioProblem::unreadable: return "unreadable";
        case AudioProblem::unsupported: return "unsupported";
        case AudioProblem::truncated: return "truncated";
        case AudioProblem::empty: return "empty";
        case AudioProblem::too_short: return "too_short";
        case AudioProblem::non_finite: return "non_finite";
    }
    return "unknown";
}

namespace {

// Extensions each container is known by, to warn when a file's name disagrees with its content.
bool extension_matches(const std::string& format, std::string ext) {
    ext = to_lower(ext);
    if (ext.empty()) return true;
    auto is = [&](std::string_view prefix) { return format.rfind(prefix, 0) == 0; };
    if (is("WAV")) return ext == ".wav" || ext == ".wave";
    if (is("FLAC")) return ext == ".flac";
    if (is("OGG")) return ext == ".ogg" || ext == ".oga" || ext == ".opus";
    if (is("MPEG")) return ext == ".mp3";
    if (is("AIFF")) return ext == ".aif" || ext == ".aiff";
    return true;
}

}  // namespace

AudioCheck check_audio(const std::filesystem::path& path, const AudioCheckParams& params) {
    if (!(params.min_duration_sec >= 0.0)) throw_usage("minimum duration must be ≥ 0 (got {})", params.min_duration_sec);
    AudioCheck c;
    c.path = path;
    try {
        audio_detail::Decoded d = audio_detail::decode_file(path);
        c.info = d.info;
        c.decoded_duration_sec = d.audio.duration_sec();
        if (!extension_matches(d.info.format, path.extension().string()))
            c.warnings.push_back(fmt::format("extension '{}' does not match the content ({}); decoded by content",
                                             path.extension().string(), d.info.format));
        if (c.decoded_duration_sec < params.min_duration_sec) {
            c.problem = AudioProblem::too_short;
            c.message = fmt::format("{}: too short ({:.3f} s < minimum {:.3f} s)", path.string(), c.decoded_duration_sec,
                                    params.min_duration_sec);
            return c;
        }
        auto n = static_cast<std::int64_t>(std::llround(c.decoded_duration_sec * params.windows.sample_rate));
        c.windows = plan_windows(n, params.windows);
        c.valid = true;
    } catch (const audio_detail::AudioFileError& e) {
        c.problem = e.problem();
        c.message = e.what();
    } catch (const Error& e) {
        c.problem = AudioProblem::unreadable;
        c.message = e.what();
    }
    return c;
}

}  // namespace mess
