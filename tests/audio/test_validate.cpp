// Hostile files: each must give its documented AudioProblem and a message naming the file, never a crash.
#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include <gtest/gtest.h>
#include <sndfile.h>

#include "mess/audio.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

class Hostile : public ::testing::Test {
protected:
    test::TempDir dir;

    fs::path write(const std::string& name, int format, double seconds = 2.0, int rate = 24000) {
        fs::path p = dir / name;
        test::write_sound(p, test::tone(440.0, seconds, rate), 1, rate, format);
        return p;
    }
    fs::path truncate(const fs::path& p, double keep_fraction) {
        std::string bytes = read_file(p);
        fs::path out = p.parent_path() / ("cut_" + p.filename().string());
        write_file_atomic(out, bytes.substr(0, static_cast<std::size_t>(static_cast<double>(bytes.size()) * keep_fraction)));
        return out;
    }
    void expect(const fs::path& p, AudioProblem problem) {
        AudioCheck c = check_audio(p);
        EXPECT_FALSE(c.valid) << p;
        EXPECT_EQ(c.problem_name(), audio_problem_name(problem)) << c.message;
        EXPECT_NE(c.message.find(p.filename().string()), std::string::npos) << c.message;
        try {
            decode_audio(p);
            if (problem != AudioProblem::too_short) ADD_FAILURE() << "decode_audio accepted " << p;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
        }
    }
};

TEST_F(Hostile, ValidFileReportsWindows) {
    AudioCheck c = check_audio(write("ok.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 6.0));
    EXPECT_TRUE(c.valid) << c.message;
    EXPECT_EQ(c.problem_name(), "ok");
    ASSERT_EQ(c.windows.size(), 2u);
    EXPECT_DOUBLE_EQ(c.windows[1].start_sec, 1.0);
    EXPECT_TRUE(c.warnings.empty());
}

TEST_F(Hostile, Missing) { expect(dir / "nope.wav", AudioProblem::missing); }

TEST_F(Hostile, ZeroLength) {
    write_file_atomic(dir / "zero.wav", "");
    expect(dir / "zero.wav", AudioProblem::empty);
}

TEST_F(Hostile, GarbageBytes) {
    std::string junk(4096, '\0');
    for (std::size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 7919u) & 0xff);
    write_file_atomic(dir / "junk.flac", junk);
    expect(dir / "junk.flac", AudioProblem::unsupported);
}

TEST_F(Hostile, TextFileNamedMp3) {
    write_file_atomic(dir / "notes.mp3", "these are my listening notes, not audio\n");
    expect(dir / "notes.mp3", AudioProblem::unsupported);
}

TEST_F(Hostile, TruncatedWavHeader) {
    fs::path p = write("h.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    std::string bytes = read_file(p);
    write_file_atomic(dir / "hdr.wav", bytes.substr(0, 20));
    expect(dir / "hdr.wav", AudioProblem::truncated);
}

TEST_F(Hostile, TruncatedWavData) {
    expect(truncate(write("d.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16), 0.5), AudioProblem::truncated);
}

TEST_F(Hostile, TruncatedFlac) {
    expect(truncate(write("t.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 3.0), 0.5), AudioProblem::truncated);
}

TEST_F(Hostile, NaNAndInfSamples) {
    auto x = test::tone(440.0, 2.0, 24000);
    x[30000] = std::numeric_limits<float>::quiet_NaN();
    test::write_sound(dir / "nan.wav", x, 1, 24000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    expect(dir / "nan.wav", AudioProblem::non_finite);
    AudioCheck c = check_audio(dir / "nan.wav");
    EXPECT_NE(c.message.find("1.250 s"), std::string::npos) << c.message;  // says where
    x[30000] = std::numeric_limits<float>::infinity();
    test::write_sound(dir / "inf.wav", x, 1, 24000, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    expect(dir / "inf.wav", AudioProblem::non_finite);
}

TEST_F(Hostile, TooShort) {
    AudioCheck c = check_audio(write("short.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 0.5));
    EXPECT_EQ(c.problem, AudioProblem::too_short);
    EXPECT_NE(c.message.find("0.500 s"), std::string::npos);
    AudioCheckParams lenient;
    lenient.min_duration_sec = 0.1;
    AudioCheck ok = check_audio(dir / "short.wav", lenient);
    EXPECT_TRUE(ok.valid);
    ASSERT_EQ(ok.windows.size(), 1u);  // one short window
    EXPECT_DOUBLE_EQ(ok.windows[0].end_sec, 0.5);
}

TEST_F(Hostile, WrongExtensionDecodesByContentWithAWarning) {
    fs::path flac = write("real.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    fs::copy_file(flac, dir / "liar.wav");
    AudioCheck c = check_audio(dir / "liar.wav");
    EXPECT_TRUE(c.valid) << c.message;
    EXPECT_EQ(c.info.format.substr(0, 4), "FLAC");
    ASSERT_EQ(c.warnings.size(), 1u);
    EXPECT_NE(c.warnings[0].find("does not match"), std::string::npos);
}

TEST_F(Hostile, DirectoryIsUnreadable) { expect(dir.path(), AudioProblem::unreadable); }

TEST_F(Hostile, InvalidParamsAreUsageErrors) {
    AudioCheckParams p;
    p.min_duration_sec = -1;
    EXPECT_THROW(check_audio(dir / "x.wav", p), Error);
}

// A WAV whose fmt chunk declares zero channels or a zero sample rate: the message says which, and it
// stays the same when other threads open files at the same time (libsndfile's open error is global).
TEST_F(Hostile, ZeroChannelsOrSampleRateAreNamedEvenUnderParallelDecoding) {
    const std::string good = read_file(write("good.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16));
    auto patched = [&](std::size_t offset, std::size_t bytes, const std::string& name) {  // fmt fields start at byte 20
        std::string b = good;
        for (std::size_t i = 0; i < bytes; ++i) b[offset + i] = '\0';
        write_file_atomic(dir / name, b);
        return dir / name;
    };
    const fs::path channels = patched(22, 2, "channels_zero.wav"), rate = patched(24, 4, "samplerate_zero.wav");
    expect(channels, AudioProblem::unsupported);
    expect(rate, AudioProblem::unsupported);
    EXPECT_NE(check_audio(channels).message.find("0 channels"), std::string::npos) << check_audio(channels).message;
    EXPECT_NE(check_audio(rate).message.find("sample rate of 0 Hz"), std::string::npos) << check_audio(rate).message;
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                const fs::path& p = t % 2 ? channels : dir / "good.wav";
                const AudioCheck c = check_audio(p);
                if (t % 2 && c.message.find("0 channels") == std::string::npos) ++wrong;
            }
        });
    for (auto& th : threads) th.join();
    EXPECT_EQ(wrong.load(), 0);
}
