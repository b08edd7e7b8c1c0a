// Constant-Q transform, tuning and chroma against golden values from an independent NumPy implementation
// (tests/fixtures/dsp/make_cqt.py), plus known answers, invalid parameters, degenerate input and a real recording.
#include <algorithm>
#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

#include "mess/audio.hpp"
#include "mess/dsp.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
using namespace mess::dsp;

namespace {

const NpzMembers& cqt_golden() {
    static const NpzMembers g = read_npz(std::filesystem::path(MESS_FIXTURES_DIR) / "dsp" / "cqt.npz");
    return g;
}
std::vector<float> cref(const std::string& name) { return cqt_golden().at(name).to_float32(); }

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
    return worst;
}

std::vector<float> tone(double hz, double seconds, double sr) {
    std::vector<float> y(static_cast<std::size_t>(seconds * sr));
    for (std::size_t i = 0; i < y.size(); ++i) y[i] = 0.5f * static_cast<float>(std::sin(2 * std::numbers::pi * hz * static_cast<double>(i) / sr));
    return y;
}

int loudest_class(const Matrix& chroma) {
    double pc[12] = {};
    for (std::int64_t t = 0; t < chroma.rows; ++t)
        for (int c = 0; c < 12; ++c) pc[c] += chroma.at(t, c);
    return static_cast<int>(std::max_element(pc, pc + 12) - pc);
}

}  // namespace

TEST(DspCqtGolden, TuningCqtChromaAndResamplerMatchNumPy) {
    const auto y = cref("y");
    const double tuning = estimate_tuning(y, 22050, 36);
    EXPECT_NEAR(tuning, cref("tuning")[0], 1e-9);
    const auto& taps = halfband_taps();
    EXPECT_LT(max_abs_diff(std::vector<float>(taps.begin(), taps.end()), cref("taps")), 1e-7);
    EXPECT_LT(max_abs_diff(halve_rate(y), cref("halved")), 1e-5);
    CqtParams p;
    p.tuning = tuning;
    const Matrix c = cqt_magnitude(y, 22050, p);
    EXPECT_EQ(c.rows, 130);
    EXPECT_EQ(c.cols, 252);
    const auto want = cref("cqt512");
    const float top = *std::max_element(want.begin(), want.end());
    EXPECT_LT(max_abs_diff(c.values, want) / top, 1e-4);
    EXPECT_LT(max_abs_diff(chroma_cqt(y, 22050, 512).values, cref("chroma512")), 1e-4);
    EXPECT_LT(max_abs_diff(chroma_cqt(y, 22050, 1024, tuning).values, cref("chroma1024")), 1e-4);
}

TEST(DspCqt, PureTonesLandOnTheirPitchClassAndTuning) {
    // A4 = 440 Hz is class 9 (A) with no deviation; 40 cents sharp reads as +0.4 of a 12-per-octave bin.
    EXPECT_EQ(loudest_class(chroma_cqt(tone(440.0, 2.0, 24000), 24000, 512)), 9);
    EXPECT_EQ(loudest_class(chroma_cqt(tone(261.63, 2.0, 22050), 22050, 1024)), 0);
    EXPECT_NEAR(estimate_tuning(tone(440.0, 2.0, 24000), 24000, 12), 0.0, 0.011);
    // (piptrack's parabola through linear magnitudes under a Hann window pulls a peak towards its bin: 0.38)
    EXPECT_NEAR(estimate_tuning(tone(440.0 * std::exp2(0.4 / 12), 2.0, 24000), 24000, 12), 0.4, 0.03);
    // The estimated tuning is applied: a tone 40 cents sharp of G still folds onto G.
    EXPECT_EQ(loudest_class(chroma_cqt(tone(392.0 * std::exp2(0.4 / 12), 2.0, 24000), 24000, 512)), 7);
}

TEST(DspCqt, InvalidParametersAreRefused) {
    const auto y = tone(440.0, 0.5, 22050);
    CqtParams p;
    p.n_bins = 36 * 9;  // the top bin would be past Nyquist at 22,050 Hz
    EXPECT_THROW(cqt_magnitude(y, 22050, p), Error);
    p = {};
    p.tuning = 0.7;
    EXPECT_THROW(cqt_magnitude(y, 22050, p), Error);
    p = {};
    p.hop = 0;
    EXPECT_THROW(cqt_magnitude(y, 22050, p), Error);
    EXPECT_THROW(estimate_tuning(power_spectrogram(y, {1024, 512}, 1.0), 22050, 2048, 12), Error);  // bins disagree
    std::vector<float> nan = y;
    nan[10] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(chroma_cqt(nan, 22050, 512), Error);
}

TEST(DspCqt, DegenerateInputGivesDefinedOutput) {
    EXPECT_EQ(chroma_cqt(std::vector<float>{}, 22050, 512).rows, 0);
    const Matrix silent = chroma_cqt(std::vector<float>(22050, 0.0f), 22050, 512);
    EXPECT_EQ(silent.rows, 1 + 22050 / 512);
    for (float v : silent.values) EXPECT_EQ(v, 0.0f);
    EXPECT_EQ(estimate_tuning(std::vector<float>(22050, 0.0f), 22050, 36), 0.0);
    const Matrix tiny = chroma_cqt(tone(440.0, 0.01, 22050), 22050, 512);  // shorter than one hop
    EXPECT_EQ(tiny.rows, 1);
    for (float v : tiny.values) EXPECT_TRUE(std::isfinite(v));
}

// The alarm recording: the CQT chroma is finite, scaled to max 1 where it is not silent, and pitched (its loudest
// class well above the average one; measured 1.6×).
TEST(DspCqtRealAudio, AlarmChromaIsPitched) {
    Audio a = load_audio(test::kRealRecording, 22050);
    const Matrix c = chroma_cqt(a.samples, 22050, 512);
    EXPECT_EQ(c.rows, 1 + static_cast<std::int64_t>(a.samples.size()) / 512);
    for (std::int64_t t = 0; t < c.rows; ++t) {
        float mx = 0;
        for (int k = 0; k < 12; ++k) {
            ASSERT_TRUE(std::isfinite(c.at(t, k)));
            mx = std::max(mx, c.at(t, k));
        }
        EXPECT_TRUE(mx == 0.0f || std::fabs(mx - 1.0f) < 1e-6f);
    }
    double pc[12] = {};
    for (std::int64_t t = 0; t < c.rows; ++t)
        for (int k = 0; k < 12; ++k) pc[k] += c.at(t, k);
    double total = 0;
    for (double v : pc) total += v;
    EXPECT_GT(*std::max_element(pc, pc + 12), 1.3 * total / 12);
}
