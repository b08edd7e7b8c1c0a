#include <cmath>
#include <limits>
#include <span>
#include <vector>

#include <gtest/gtest.h>

#include "mess/util.hpp"

using namespace mess;

// Golden values: IEEE 754 binary16 encodings (numpy.float16(x).view(numpy.uint16)).
TEST(Half, GoldenEncodings) {
    EXPECT_EQ(float_to_half(1.0f), 0x3c00);
    EXPECT_EQ(float_to_half(-2.0f), 0xc000);
    EXPECT_EQ(float_to_half(65504.0f), 0x7bff);
    EXPECT_EQ(float_to_half(65520.0f), 0x7c00);           // rounds to +inf
    EXPECT_EQ(float_to_half(5.960464477539063e-08f), 0x0001);  // smallest subnormal
    EXPECT_EQ(float_to_half(0.1f), 0x2e66);
    EXPECT_EQ(float_to_half(1.0f + 1.0f / 2048.0f), 0x3c00);  // tie → even
    EXPECT_EQ(float_to_half(1.0f + 3.0f / 2048.0f), 0x3c02);  // tie → even (up)
    EXPECT_EQ(float_to_half(std::numeric_limits<float>::infinity()), 0x7c00);
    EXPECT_TRUE(std::isnan(half_to_float(float_to_half(std::nanf("")))));
}

TEST(Half, RoundTripOfEveryFiniteHalf) {
    for (std::uint32_t h = 0; h < 0x10000; ++h) {
        if ((h & 0x7c00u) == 0x7c00u) continue;  // inf/nan
        auto hh = static_cast<std::uint16_t>(h);
        ASSERT_EQ(float_to_half(half_to_float(hh)), hh) << h;
    }
    EXPECT_FLOAT_EQ(half_to_float(0x3555), 0.333251953125f);
}

TEST(BFloat16, GoldenEncodings) {
    EXPECT_EQ(float_to_bf16(1.0f), 0x3f80);
    EXPECT_EQ(float_to_bf16(-3.5f), 0xc060);
    EXPECT_FLOAT_EQ(bf16_to_float(0x4049), 3.140625f);
    EXPECT_EQ(float_to_bf16(bf16_to_float(0x1234)), 0x1234);
}

// The shared vector helpers: the first non-finite value, normalisation of zero and unit vectors, means in double.
TEST(VectorMath, NonFiniteNormaliseAndMeans) {
    const std::vector<float> v = {1.0f, 2.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()};
    EXPECT_EQ(first_non_finite(v), 2u);
    EXPECT_EQ(first_non_finite(std::span(v).first(2)), 2u);  // all finite: the size
    EXPECT_EQ(first_non_finite({}), 0u);
    float zero[3] = {0, 0, 0}, x[2] = {3, 4};
    l2_normalize(zero, 3);
    EXPECT_EQ(zero[0], 0.0f);
    l2_normalize(x, 2);
    EXPECT_FLOAT_EQ(x[0], 0.6f);
    EXPECT_FLOAT_EQ(x[1], 0.8f);
    const float rows[] = {1, 10, 2, 20, 4, 40};  // [3, 2]
    float mean[2];
    mean_of_rows(rows, 3, 2, mean);
    EXPECT_FLOAT_EQ(mean[0], 7.0f / 3.0f);
    EXPECT_FLOAT_EQ(mean[1], 70.0f / 3.0f);
    mean_of_rows(rows, 0, 2, mean);
    EXPECT_EQ(mean[0], 0.0f);
}
