// Helpers of the precision tests: cosine similarity of layer stacks, synthetic music.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "mess/audio.hpp"

namespace mess::test {

constexpr double kMinCosine = 0.999;

inline double cosine(const float* a, const float* b, std::size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = 0; i < n; ++i) {
        ab += static_cast<double>(a[i]) * b[i];
        aa += static_cast<double>(a[i]) * a[i];
        bb += static_cast<double>(b[i]) * b[i];
    }
    return aa == 0 || bb == 0 ? (aa == bb ? 1.0 : 0.0) : ab / std::sqrt(aa * bb);
}

// The smallest per-layer cosine of two [layers, frames·hidden] stacks (batch 1).
inline double worst_layer_cosine(const std::vector<float>& a, const std::vector<float>& b, std::int64_t layers, std::string* report = nullptr) {
    EXPECT_EQ(a.size(), b.size());
    const std::size_t per = a.size() / static_cast<std::size_t>(layers);
    double worst = 1.0;
    for (std::int64_t l = 0; l < layers; ++l) {
        const double c = cosine(a.data() + l * per, b.data() + l * per, per);
        worst = std::min(worst, c);
        if (report) *report += fmt::format(" {}:{:.5f}", l, c);
    }
    return worst;
}

// Synthetic music: a few harmonic notes with decays, vibrato and a little noise, varied by `seed`.
inline std::vector<float> music(std::uint32_t seed, double seconds) {
    std::mt19937 rng(seed);
    std::uniform_real_distribution<double> u(0, 1);
    const int sr = kModelSampleRate;
    std::vector<float> x(static_cast<std::size_t>(seconds * sr), 0.0f);
    const double f0 = 110.0 * std::pow(2.0, static_cast<double>(rng() % 36) / 12.0), note = 0.25 + 0.5 * u(rng);
    const double bright = 0.3 + 0.6 * u(rng), noise = 0.02 * u(rng);
    std::normal_distribution<double> nd(0, 1);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const double t = static_cast<double>(i) / sr, in_note = std::fmod(t, note);
        const double f = f0 * std::pow(2.0, static_cast<double>(static_cast<int>(t / note) % 5 * (seed % 3 + 1)) / 12.0);
        double v = 0;
        for (int h = 1; h <= 6; ++h) v += std::pow(bright, h - 1) * std::sin(2 * M_PI * f * h * t + 0.3 * std::sin(2 * M_PI * 5 * t));
        x[i] = static_cast<float>(0.2 * v * std::exp(-3.0 * in_note) + noise * nd(rng));
    }
    return x;
}


}  // namespace mess::test
