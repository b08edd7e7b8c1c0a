#include <gtest/gtest.h>

#include "mess/audio.hpp"

using namespace mess;

// Golden plans at 24 kHz, 5 s windows, 2.5 s hop (docs/ARCHITECTURE.md windowing contract).
static std::vector<double> starts(double seconds) {
    std::vector<double> s;
    for (const auto& w : plan_windows(static_cast<std::int64_t>(seconds * 24000))) s.push_back(w.start_sec);
    return s;
}

TEST(Windows, GoldenStartTimes) {
    EXPECT_EQ(starts(5.0), (std::vector<double>{0.0}));
    EXPECT_EQ(starts(7.5), (std::vector<double>{0.0, 2.5}));            // ends exactly: no tail
    EXPECT_EQ(starts(6.0), (std::vector<double>{0.0, 1.0}));            // tail aligned to the end
    EXPECT_EQ(starts(10.0), (std::vector<double>{0.0, 2.5, 5.0}));
    EXPECT_EQ(starts(12.3), (std::vector<double>{0.0, 2.5, 5.0, 7.3}));  // the tail's true start, not 7.5
}

TEST(Windows, TailWindowHasFullLengthAndEndsAtTheLastSample) {
    auto w = plan_windows(12 * 24000 + 7);
    ASSERT_FALSE(w.empty());
    EXPECT_EQ(w.back().start_sample + w.back().length, 12 * 24000 + 7);
    for (const auto& x : w) EXPECT_EQ(x.length, 120000);
    EXPECT_DOUBLE_EQ(w.back().end_sec, (12 * 24000 + 7) / 24000.0);
}

TEST(Windows, ShortAudioGivesOneShortWindowAndNoAudioGivesNone) {
    auto w = plan_windows(36000);
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].length, 36000);
    EXPECT_DOUBLE_EQ(w[0].end_sec, 1.5);
    EXPECT_TRUE(plan_windows(0).empty());
    EXPECT_EQ(plan_windows(1).size(), 1u);
}

TEST(Windows, OtherParameters) {
    WindowParams p;
    p.seconds = 2.0;
    p.overlap = 0.0;
    p.sample_rate = 100;
    auto w = plan_windows(500, p);
    ASSERT_EQ(w.size(), 3u);  // 0, 2, then tail at 3
    EXPECT_DOUBLE_EQ(w[2].start_sec, 3.0);
}

TEST(Windows, InvalidParametersAreUsageErrors) {
    auto bad = [](WindowParams p) {
        try {
            plan_windows(1000, p);
            return false;
        } catch (const Error& e) {
            return e.kind() == ErrorKind::usage;
        }
    };
    EXPECT_TRUE(bad({0.0, 0.5, 24000}));
    EXPECT_TRUE(bad({5.0, 1.0, 24000}));
    EXPECT_TRUE(bad({5.0, -0.1, 24000}));
    EXPECT_TRUE(bad({5.0, 0.5, 0}));
    EXPECT_THROW(plan_windows(-1), Error);
}
