#include <cmath>

#include <gtest/gtest.h>
#include <sndfile.h>

#include "mess/audio.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

struct FormatCase {
    const char* name;
    const char* ext;
    int format;
    int rate;
    double freq_tolerance_hz;
    double duration_tolerance_sec;  // lossy codecs add priming/padding
};

void PrintTo(const FormatCase& c, std::ostream* os) { *os << c.name; }

class DecodeEveryFormat : public ::testing::TestWithParam<FormatCase> {};

TEST_P(DecodeEveryFormat, ToneKeepsPitchDurationAndLevel) {
    const auto& c = GetParam();
    test::TempDir dir;
    fs::path path = dir / (std::string("tone") + c.ext);
    auto left = test::tone(440.0, 2.0, c.rate, 0.5f);
    auto right = test::tone(440.0, 2.0, c.rate, 0.5f);
    test::write_sound(path, test::interleave({left, right}), 2, c.rate, c.format);

    AudioInfo info = probe_audio(path);
    EXPECT_EQ(info.channels, 2);
    EXPECT_EQ(info.sample_rate, c.rate);

    Audio a = decode_audio(path);
    EXPECT_EQ(a.sample_rate, c.rate);
    EXPECT_NEAR(a.duration_sec(), 2.0, c.duration_tolerance_sec);
    EXPECT_NEAR(test::zero_crossing_freq(a.samples, a.sample_rate), 440.0, c.freq_tolerance_hz);
    EXPECT_NEAR(test::rms(a.samples), 0.5 / std::sqrt(2.0), 0.03);  // downmix of equal channels keeps the level

    Audio r = load_audio(path);  // resampled to the model rate
    EXPECT_EQ(r.sample_rate, 24000);
    EXPECT_NEAR(r.duration_sec(), 2.0, c.duration_tolerance_sec);
    EXPECT_NEAR(test::zero_crossing_freq(r.samples, 24000), 440.0, c.freq_tolerance_hz);
}

INSTANTIATE_TEST_SUITE_P(
    Formats, DecodeEveryFormat,
    ::testing::Values(FormatCase{"wav16", ".wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 44100, 1.0, 1e-9},
                      FormatCase{"wavfloat", ".wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 48000, 1.0, 1e-9},
                      FormatCase{"flac", ".flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 22050, 1.0, 1e-9},
                      FormatCase{"vorbis", ".ogg", SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2.0, 0.01},
                      FormatCase{"opus", ".opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, 48000, 2.0, 0.03},
                      FormatCase{"mp3", ".mp3", SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 44100, 2.0, 0.1}),
    [](const auto& p) { return std::string(p.param.name); });

TEST(Decode, DownmixIsTheMeanOfChannels) {
    test::TempDir dir;
    auto l = test::tone(300.0, 1.0, 16000, 0.8f);
    std::vector<float> r(l.size(), 0.0f);
    test::write_sound(dir / "lr.wav", test::interleave({l, r}), 2, 16000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    Audio a = decode_audio(dir / "lr.wav");
    ASSERT_EQ(a.samples.size(), l.size());
    for (std::size_t i = 0; i < l.size(); i += 97) EXPECT_FLOAT_EQ(a.samples[i], l[i] / 2);
}

TEST(Decode, SilenceIsValidAudio) {
    test::TempDir dir;
    test::write_sound(dir / "s.flac", test::silence(1.5, 24000), 1, 24000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    Audio a = load_audio(dir / "s.flac");
    EXPECT_EQ(a.samples.size(), 36000u);
    EXPECT_EQ(test::rms(a.samples), 0.0);
}

TEST(Decode, ChordAndNoiseSurviveFlacLosslessly) {
    test::TempDir dir;
    auto x = test::chord({261.63, 329.63, 392.0}, 1.0, 24000, 0.6f);
    auto n = test::noise(1.0, 24000, 7);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] += n[i] * 0.1f;
    test::write_sound(dir / "c.flac", x, 1, 24000, SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
    Audio a = decode_audio(dir / "c.flac");
    ASSERT_EQ(a.samples.size(), x.size());
    for (std::size_t i = 0; i < x.size(); ++i) ASSERT_NEAR(a.samples[i], x[i], 1.0 / (1 << 22));
}

// A real recording from a Debian package (sound-theme-freedesktop, Ogg/Vorbis, 48 kHz stereo).
TEST(Decode, RealRecording) {
    AudioInfo info = probe_audio(test::kRealRecording);
    EXPECT_EQ(info.format, "OGG (Vorbis)");
    EXPECT_EQ(info.sample_rate, 48000);
    EXPECT_EQ(info.channels, 2);
    Audio a = load_audio(test::kRealRecording);
    EXPECT_NEAR(a.duration_sec(), 6.128, 0.01);
    EXPECT_GT(test::rms(a.samples), 0.01);
    auto w = plan_windows(static_cast<std::int64_t>(a.samples.size()));
    ASSERT_EQ(w.size(), 2u);
    EXPECT_NEAR(w[1].start_sec, a.duration_sec() - 5.0, 1e-9);
}

// Found by fuzz/fuzz_audio: an Ogg/Vorbis file (a damaged copy of the real recording above) whose header claims
// more frames than a vector can hold made decoding reserve them up front (std::length_error escaped).
// Found by a 10-minute fuzz run: a 3.9-KB AIFF declaring a sample rate of 1 Hz decoded to 955 s of audio to
// resample (25 s under the fuzzer). Rates outside kMinSampleRate..kMaxSampleRate are refused, naming the rate;
// 8 kHz, the lowest rate of real recordings, is accepted.
TEST(Decode, AbsurdSampleRatesAreRefused) {
    const fs::path path = fs::path(MESS_FIXTURES_DIR) / "audio" / "aiff_rate_1hz.aiff";
    EXPECT_NE(test::error_message([&] { (void)decode_audio(path); }).find("sample rate 1 Hz"), std::string::npos);
    EXPECT_FALSE(check_audio(path).valid);
    test::TempDir dir;
    test::write_sound(dir / "phone.wav", test::tone(440.0, 1.5, 8000), 1, 8000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    EXPECT_EQ(decode_audio(dir / "phone.wav").sample_rate, 8000);
}

TEST(Decode, FrameCountClaimedByTheHeaderIsNotReservedUpFront) {
    const fs::path path = fs::path(MESS_FIXTURES_DIR) / "audio" / "ogg_huge_frame_count.oga";
    try {
        (void)decode_audio(path);
    } catch (const Error& e) {
        EXPECT_NE(e.kind(), ErrorKind::internal) << e.what();
    }
}
