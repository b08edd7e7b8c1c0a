#include <cmath>

#include <gtest/gtest.h>

#include "mess/audio.hpp"
#include "support/support.hpp"

using namespace mess;

TEST(Resample, LengthIsRoundedRatio) {
    auto x = test::tone(1000.0, 1.0, 44100);
    EXPECT_EQ(resample(x, 44100, 24000).size(), 24000u);
    std::vector<float> odd(12345, 0.1f);
    EXPECT_EQ(resample(odd, 44100, 24000).size(), static_cast<std::size_t>(std::llround(12345 * 24000.0 / 44100)));
    EXPECT_EQ(resample(odd, 16000, 24000).size(), static_cast<std::size_t>(std::llround(12345 * 1.5)));
}

TEST(Resample, PreservesToneFrequencyAndAmplitude) {
    for (int from : {16000, 22050, 44100, 48000, 96000}) {
        auto x = test::tone(1000.0, 1.0, from, 0.5f);
        auto y = resample(x, from, 24000);
        std::vector<float> mid(y.begin() + 1000, y.end() - 1000);  // skip filter edges
        EXPECT_NEAR(test::zero_crossing_freq(mid, 24000), 1000.0, 1.0) << from;
        EXPECT_NEAR(test::rms(mid), 0.5 / std::sqrt(2.0), 0.005) << from;
    }
}

TEST(Resample, RemovesContentAboveTheNewNyquist) {
    auto x = test::tone(15000.0, 1.0, 48000, 0.5f);  // above 12 kHz: must vanish at 24 kHz
    auto y = resample(x, 48000, 24000);
    std::vector<float> mid(y.begin() + 1000, y.end() - 1000);
    EXPECT_LT(test::rms(mid), 1e-3);
}

TEST(Resample, DegenerateInputs) {
    EXPECT_TRUE(resample({}, 44100, 24000).empty());
    std::vector<float> x = {0.1f, 0.2f};
    EXPECT_EQ(resample(x, 24000, 24000), x);
    EXPECT_THROW(resample(x, 0, 24000), Error);
    EXPECT_THROW(resample(x, 44100, -1), Error);
}
