// The batched FFT and the shared-analysis forms against direct definitions: a DFT summed in long double, the
// tempogram's autocorrelation summed directly, each frame's RMS and zero crossings counted afresh; the forms that
// reuse one analysis against the ones that compute their own. Cost: well under a second.
#include <cmath>
#include <limits>
#include <numbers>
#include <random>
#include <utility>

#include <gtest/gtest.h>

#include "../../src/dsp/fft.hpp"  // the kernel under test (internal to the module)
#include "mess/dsp.hpp"
#include "support/support.hpp"

using namespace mess;
using namespace mess::dsp;

namespace {

std::vector<float> random_signal(std::size_t n, std::uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> g(0.0f, 0.3f);
    std::vector<float> y(n);
    for (auto& v : y) v = g(rng);
    return y;
}

// Every lane of a batched FFT of length n against the DFT of its frame; the largest error relative to the largest bin.
template <class T>
double batched_fft_error(int n) {
    detail::BatchRealFft<T> fft(n);
    constexpr int L = detail::BatchRealFft<T>::kLanes;
    const auto x = random_signal(static_cast<std::size_t>(n * L), static_cast<std::uint32_t>(n));
    for (int i = 0; i < n; ++i)
        for (int f = 0; f < L; ++f) fft.input()[i * L + f] = static_cast<T>(x[static_cast<std::size_t>(f * n + i)]);
    fft.run();
    std::vector<long double> c(static_cast<std::size_t>(n)), s(c.size());  // e^{−2πiq/n}
    for (int q = 0; q < n; ++q) {
        const long double a = -2.0L * std::numbers::pi_v<long double> * q / n;
        c[static_cast<std::size_t>(q)] = std::cos(a), s[static_cast<std::size_t>(q)] = std::sin(a);
    }
    double worst = 0, scale = 0;
    for (int f = 0; f < L; ++f)
        for (int k = 0; k <= n / 2; ++k) {
            long double re = 0, im = 0;
            for (int i = 0; i < n; ++i) {
                const auto q = static_cast<std::size_t>(static_cast<std::int64_t>(k) * i % n);
                const long double v = x[static_cast<std::size_t>(f * n + i)];
                re += v * c[q], im += v * s[q];
            }
            const double dr = static_cast<double>(re) - fft.re()[k * L + f], di = static_cast<double>(im) - fft.im()[k * L + f];
            worst = std::max(worst, std::hypot(dr, di));
            scale = std::max(scale, static_cast<double>(std::hypot(re, im)));
        }
    return worst / scale;
}

}  // namespace

TEST(DspFft, BatchedRealFftMatchesTheDftInEveryLane) {
    // 2–16: stage by stage; 32 and up: the first three stages with the bit reversal and the last with the split,
    // between them three stages per pass (AVX-512), two, or one (64: one; 128: two; 256: three; 512: three, one).
    for (int n : {2, 4, 8, 16, 32, 64, 128, 256, 512, 1024}) {
        EXPECT_LT(batched_fft_error<float>(n), 2e-6) << n;
        EXPECT_LT(batched_fft_error<double>(n), 1e-14) << n;
    }
}

// power_to_db takes its logarithm without a library call (vectorised); the decibels are the float that
// 10·log10(max(amin, x)) − 10·log10(max(amin, ref)) rounds to, for amin a normal number (that path) or not (log10).
TEST(DspFft, DecibelsEqualTheLibraryLog10RoundedToFloat) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<double> exponent(-14.0, 9.0);
    Matrix s{1, 20000, std::vector<float>(20000)};
    for (auto& v : s.values) v = static_cast<float>(std::pow(10.0, exponent(rng)));
    for (int i = 0; i < 500; ++i) s.values[static_cast<std::size_t>(i)] = 1.0f + static_cast<float>(i) * 1e-7f;  // around 1
    s.values[500] = 0.0f, s.values[501] = std::numeric_limits<float>::denorm_min(), s.values[502] = std::numeric_limits<float>::max();
    for (const auto& [ref, amin] : {std::pair{1.0, 1e-10}, {3.7, 1e-6}, {1.0, 1e-320}}) {
        Matrix db = s;
        power_to_db(db, ref, amin, 1e9);  // no floor within reach
        const double offset = 10.0 * std::log10(std::max(amin, ref));
        int differ = 0;
        for (std::size_t i = 0; i < s.values.size(); ++i)
            differ += db.values[i] != static_cast<float>(10.0 * std::log10(std::max(amin, static_cast<double>(s.values[i]))) - offset);
        EXPECT_EQ(differ, 0) << "ref " << ref << ", amin " << amin;
    }
}

// The frame loads (transposed in registers for full batches on AVX2/AVX-512, copied sample by sample otherwise) and
// the store of lanes as rows equal the plain definitions exactly: lane f, sample i is y[start + f·hop + i]·window[i].
TEST(DspFft, FramesLoadAndLanesStoreExactly) {
    constexpr int L = detail::BatchRealFft<float>::kLanes;
    const auto y = random_signal(40000, 17);
    std::vector<float> window(1024);
    for (std::size_t i = 0; i < window.size(); ++i) window[i] = 0.25f + static_cast<float>(i % 7) * 0.1f;
    detail::BatchRealFft<float> fft(1024);
    for (const int count : {L, 5})
        for (const std::int64_t start : {std::int64_t{300}, std::int64_t{-200}, std::int64_t{39000}})  // inside; both edges
            for (const float* w : {static_cast<const float*>(window.data()), static_cast<const float*>(nullptr)}) {
                fft.load_frames(y, start, 512, count, w);
                for (int f = 0; f < count; ++f)
                    for (int i = 0; i < 1024; ++i) {
                        const std::int64_t at = start + f * 512 + i;
                        const float v = at >= 0 && at < 40000 ? y[static_cast<std::size_t>(at)] : 0.0f;
                        ASSERT_EQ(fft.input()[i * L + f], w ? v * w[i] : v) << count << " " << start << " " << f << " " << i;
                    }
            }
    const auto lanes = random_signal(static_cast<std::size_t>(37 * L), 18);  // 37 bins: two 16-bin blocks and 5 more
    for (const int count : {L, 3}) {
        std::vector<float> rows(static_cast<std::size_t>(L * 40), -1.0f);  // stride 40 ≥ 37 bins
        detail::lanes_to_rows(lanes.data(), 37, count, rows.data(), 40);
        for (int f = 0; f < L; ++f)
            for (int k = 0; k < 40; ++k)
                ASSERT_EQ(rows[static_cast<std::size_t>(f * 40 + k)], f < count && k < 37 ? lanes[static_cast<std::size_t>(k * L + f)] : -1.0f) << f << " " << k;
    }
}

TEST(DspFft, LengthsThatAreNotPowersOfTwoAreRefused) {
    for (int n : {0, 1, 6, 100, -8}) EXPECT_THROW(detail::BatchRealFft<float>{n}, Error) << n;
    EXPECT_FALSE(detail::BatchRealFft<double>::supports(3000));
}

TEST(DspFft, OtherFftLengthsStillWorkThroughKissFft) {
    const auto y = random_signal(6000, 3);
    const StftParams odd{1000, 250};  // not a power of two: one KissFFT per frame
    const Matrix s = power_spectrogram(y, odd);
    ASSERT_EQ(s.rows, 1 + 6000 / 250);
    const Matrix same = power_spectrogram(y, StftParams{1024, 250});
    EXPECT_EQ(same.cols, 513);
    // A 1-kHz tone at 8 kHz peaks in bin 1000·1000/8000 = 125 of a 1000-point transform.
    const auto tone = test::tone(1000.0, 1.0, 8000);
    const Matrix t = power_spectrogram(tone, odd);
    const float* row = &t.values[static_cast<std::size_t>(t.rows / 2 * t.cols)];
    EXPECT_EQ(std::max_element(row, row + t.cols) - row, 125);
}

TEST(DspFft, OneTransformServesMagnitudePowerMelMfccAndOnsets) {
    const auto y = random_signal(24000, 5);
    const StftParams p;
    const Spectra s = stft_spectra(y, p);
    EXPECT_EQ(s.magnitude.values, power_spectrogram(y, p, 1.0).values);
    EXPECT_EQ(s.power.values, power_spectrogram(y, p).values);
    EXPECT_EQ(mel_from_power(s.power, 24000, 2048, {}).values, mel_spectrogram(y, 24000, p, {}).values);
    EXPECT_EQ(mfcc_from_power(s.power, 24000, 13, 2048, {}).values, mfcc(y, 24000, 13, p, {}).values);
    EXPECT_EQ(onset_strength_from_power(s.power, 24000, p, {}), onset_strength(y, 24000, p, {}));
    const OnsetEnvelopes both = onset_envelopes_from_power(s.power, 24000, p, {});
    EXPECT_EQ(both.median, onset_strength_median(y, 24000, p, {}));
    const SpectralShape shape = spectral_shape(s.magnitude, 24000, 2048);
    EXPECT_EQ(shape.centroid, spectral_centroid(s.magnitude, 24000, 2048));
    EXPECT_EQ(shape.bandwidth, spectral_bandwidth(s.magnitude, 24000, 2048));
    EXPECT_THROW(mel_from_power(s.power, 24000, 1024, {}), Error);  // 1025 bins are not a 1024-point transform's
    EXPECT_TRUE(stft_spectra({}, p).power.values.empty());
}

TEST(DspFft, TempogramEqualsTheDirectAutocorrelation) {
    auto env = random_signal(300, 7);
    for (auto& v : env) v = std::fabs(v);
    for (std::size_t i = 200; i < env.size(); ++i) env[i] = 0.0f;  // a silent tail: frames there are exactly 0
    const int win = 64, half = win / 2;
    const Matrix tg = tempogram(env, win);
    const auto n = static_cast<std::int64_t>(env.size());
    double worst = 0;
    for (std::int64_t t = 0; t < n; ++t) {
        std::vector<double> frame(win), ac(win);
        for (int i = 0; i < win; ++i) {
            const std::int64_t at = t - half + i;
            const double v = at < 0 ? env[0] * static_cast<double>(at + half) / half
                           : at >= n ? env[static_cast<std::size_t>(n - 1)] * static_cast<double>(half - (at - n + 1)) / half
                                     : env[static_cast<std::size_t>(at)];
            frame[static_cast<std::size_t>(i)] = v * (0.5 - 0.5 * std::cos(2 * std::numbers::pi * i / win));
        }
        double peak = 0;
        for (int l = 0; l < win; ++l) {
            for (int i = 0; i + l < win; ++i) ac[static_cast<std::size_t>(l)] += frame[static_cast<std::size_t>(i)] * frame[static_cast<std::size_t>(i + l)];
            peak = std::max(peak, std::fabs(ac[static_cast<std::size_t>(l)]));
        }
        for (int l = 0; l < win; ++l) {
            const double want = peak > 0 ? ac[static_cast<std::size_t>(l)] / peak : 0.0;
            worst = std::max(worst, std::fabs(want - tg.at(t, l)));
            if (t - half > 200) {
                ASSERT_EQ(tg.at(t, l), 0.0f) << t;  // the window holds only the silent tail
            }
        }
    }
    EXPECT_LT(worst, 1e-6);
}

TEST(DspFft, RmsAndZeroCrossingsEqualAFreshCountPerFrame) {
    auto y = random_signal(5000, 11);
    for (std::size_t i = 3000; i < y.size(); ++i) y[i] = 0.0f;  // loud, then silence: silent frames stay exactly 0
    for (const StftParams p : {StftParams{2048, 512}, StftParams{1000, 300}}) {
        const auto r = rms(y, p);
        const auto z = zero_crossing_rate(y, p);
        const auto n = static_cast<std::int64_t>(y.size());
        for (std::size_t t = 0; t < r.size(); ++t) {
            const std::int64_t from = static_cast<std::int64_t>(t) * p.hop - p.n_fft / 2;
            double e = 0;
            int crossings = 0;
            for (std::int64_t i = 0; i < p.n_fft; ++i) {
                const std::int64_t at = from + i;
                if (at >= 0 && at < n) e += static_cast<double>(y[static_cast<std::size_t>(at)]) * y[static_cast<std::size_t>(at)];
                auto negative = [&](std::int64_t j) { return y[static_cast<std::size_t>(std::clamp<std::int64_t>(j, 0, n - 1))] < -1e-10f; };
                if (i > 0 && negative(at) != negative(at - 1)) ++crossings;
            }
            EXPECT_NEAR(r[t], std::sqrt(e / p.n_fft), 1e-6) << t;
            EXPECT_FLOAT_EQ(z[t], static_cast<float>(crossings) / static_cast<float>(p.n_fft)) << t;
            if (from > 3000) {
                EXPECT_EQ(r[t], 0.0f) << t;
            }
        }
    }
}
