// DSP against golden values from an independent NumPy implementation (tests/fixtures/dsp/README.md),
// plus synthesized signals with known answers, degenerate input and a real recording.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include <gtest/gtest.h>

#include "mess/audio.hpp"
#include "mess/dsp.hpp"
#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
using namespace mess::dsp;

namespace {

const NpzMembers& golden() {
    static const NpzMembers g = read_npz(std::filesystem::path(MESS_FIXTURES_DIR) / "dsp" / "reference.npz");
    return g;
}
std::vector<float> ref(const std::string& name) { return golden().at(name).to_float32(); }
std::vector<float> signal() { return ref("y"); }
constexpr double kSr = 22050;

// max |a - b| relative to max |b|.
double rel_err(std::span<const float> a, std::span<const float> b) {
    EXPECT_EQ(a.size(), b.size());
    double worst = 0, scale = 0;
    for (std::size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
        worst = std::max(worst, std::fabs(static_cast<double>(a[i]) - b[i]));
        scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
    }
    return scale > 0 ? worst / scale : worst;
}

}  // namespace

TEST(DspGolden, SpectrogramsAndFilterbanks) {
    const auto y = signal();
    StftParams p;
    Matrix s = power_spectrogram(y, p);
    EXPECT_EQ(s.rows, 130);  // 1 + 66150 / 512
    EXPECT_EQ(s.cols, 1025);
    EXPECT_LT(rel_err(s.values, ref("power")), 1e-5);
    EXPECT_LT(rel_err(mel_filterbank(kSr, 2048, {}).values, ref("mel_fb")), 1e-5);
    EXPECT_LT(rel_err(chroma_filterbank(kSr, 2048).values, ref("chroma_fb")), 1e-5);
    EXPECT_LT(rel_err(mel_spectrogram(y, kSr, p, {}).values, ref("mel")), 1e-5);
    MelParams htk;
    htk.htk = true;
    htk.fmin = 30;
    htk.fmax = 8000;
    EXPECT_LT(rel_err(mel_spectrogram(y, kSr, p, htk).values, ref("mel_htk")), 1e-5);
}

TEST(DspGolden, MfccChromaAndDescriptors) {
    const auto y = signal();
    StftParams p;
    EXPECT_LT(rel_err(mfcc(y, kSr, 20, p, {}).values, ref("mfcc")), 1e-4);
    EXPECT_LT(rel_err(chroma_stft(y, kSr, p).values, ref("chroma")), 1e-4);
    EXPECT_LT(rel_err(rms(y, p), ref("rms")), 1e-5);
    EXPECT_LT(rel_err(zero_crossing_rate(y, p), ref("zcr")), 1e-6);
    Matrix mag = power_spectrogram(y, p, 1.0);
    EXPECT_LT(rel_err(spectral_centroid(mag, kSr, 2048), ref("centroid")), 1e-5);
    EXPECT_LT(rel_err(spectral_bandwidth(mag, kSr, 2048), ref("bandwidth")), 1e-5);
    auto roll = spectral_rolloff(mag, kSr, 2048);
    auto roll_ref = ref("rolloff");
    for (std::size_t t = 0; t < roll.size(); ++t) EXPECT_NEAR(roll[t], roll_ref[t], kSr / 2048 + 1e-3) << t;  // within a bin
    EXPECT_LT(rel_err(spectral_flatness(power_spectrogram(y, p)), ref("flatness")), 1e-3);
    Matrix contrast = spectral_contrast(mag, kSr, 2048);
    EXPECT_EQ(contrast.cols, 7);
    EXPECT_LT(rel_err(contrast.values, ref("contrast")), 1e-4);
    EXPECT_LT(rel_err(onset_strength(y, kSr, p, {}), ref("onset")), 1e-4);
}

TEST(DspKnown, ToneCentroidChordChromaAndClickOnset) {
    StftParams p;
    auto tone = test::tone(1000.0, 1.0, 22050);
    auto c = spectral_centroid(power_spectrogram(tone, p, 1.0), kSr, 2048);
    EXPECT_NEAR(c[c.size() / 2], 1000.0, 15.0);
    // A major: A, C#, E are the three strongest pitch classes.
    auto chord = test::chord({220.0, 277.18, 329.63}, 1.0, 22050);
    Matrix ch = chroma_stft(chord, kSr, p);
    std::vector<std::pair<float, int>> classes;
    for (int k = 0; k < 12; ++k) classes.emplace_back(ch.at(ch.rows / 2, k), k);
    std::sort(classes.rbegin(), classes.rend());
    std::vector<int> top = {classes[0].second, classes[1].second, classes[2].second};
    std::sort(top.begin(), top.end());
    EXPECT_EQ(top, (std::vector<int>{1, 4, 9}));  // C#, E, A (C = 0)
    // Clicks every 0.5 s: onset strength peaks near each.
    std::vector<float> clicks(static_cast<std::size_t>(3 * 22050), 0.0f);
    for (int i = 1; i < 6; ++i) clicks[static_cast<std::size_t>(i * 11025)] = 1.0f;
    auto env = onset_strength(clicks, kSr, p, {});
    for (int i = 1; i < 6; ++i) {
        const auto frame = static_cast<std::size_t>(std::lround(i * 11025.0 / 512));
        const float local = *std::max_element(env.begin() + static_cast<std::ptrdiff_t>(frame) - 2, env.begin() + static_cast<std::ptrdiff_t>(frame) + 3);
        EXPECT_GT(local, 0.5f * *std::max_element(env.begin(), env.end())) << "click " << i;
    }
}

TEST(DspDegenerate, SilenceShortEmptyAndNonFinite) {
    StftParams p;
    auto silence = test::silence(1.0, 22050);
    Matrix ch = chroma_stft(silence, kSr, p);
    EXPECT_TRUE(std::all_of(ch.values.begin(), ch.values.end(), [](float v) { return v == 0.0f; }));
    auto cen = spectral_centroid(power_spectrogram(silence, p, 1.0), kSr, 2048);
    EXPECT_TRUE(std::all_of(cen.begin(), cen.end(), [](float v) { return v == 0.0f; }));
    auto flat = spectral_flatness(power_spectrogram(silence, p));
    EXPECT_FLOAT_EQ(flat[0], 1.0f);  // every bin at amin
    auto env = onset_strength(silence, kSr, p, {});
    EXPECT_TRUE(std::all_of(env.begin(), env.end(), [](float v) { return v == 0.0f; }));
    EXPECT_FLOAT_EQ(rms(silence, p)[3], 0.0f);
    EXPECT_FLOAT_EQ(zero_crossing_rate(silence, p)[3], 0.0f);
    Matrix m = mfcc(silence, kSr, 20, p, {});
    for (float v : m.values) ASSERT_TRUE(std::isfinite(v));

    auto dc = std::vector<float>(22050, 0.5f);
    EXPECT_NEAR(rms(dc, p)[10], 0.5f, 1e-6f);
    EXPECT_FLOAT_EQ(zero_crossing_rate(dc, p)[10], 0.0f);
    auto clipped = test::tone(440.0, 1.0, 22050, 3.0f);
    for (auto& v : clipped) v = std::clamp(v, -1.0f, 1.0f);
    for (float v : mfcc(clipped, kSr, 20, p, {}).values) ASSERT_TRUE(std::isfinite(v));

    auto half_second = test::noise(0.5, 22050, 3);
    EXPECT_EQ(power_spectrogram(half_second, p).rows, 1 + 11025 / 512);
    EXPECT_EQ(power_spectrogram({}, p).rows, 0);
    EXPECT_TRUE(onset_strength({}, kSr, p, {}).empty());

    auto nan = test::tone(440.0, 0.5, 22050);
    nan[100] = std::numeric_limits<float>::quiet_NaN();
    EXPECT_THROW(power_spectrogram(nan, p), Error);
    EXPECT_THROW(rms(nan, p), Error);
}

TEST(DspInvalid, ParametersAreCheckedWithClearErrors) {
    auto y = test::tone(440.0, 0.5, 22050);
    EXPECT_THROW(power_spectrogram(y, {2047, 512}), Error);
    EXPECT_THROW(power_spectrogram(y, {2048, 0}), Error);
    EXPECT_THROW(power_spectrogram(y, {}, 0.0), Error);
    MelParams bad;
    bad.fmin = 12000;  // above Nyquist at 22.05 kHz
    EXPECT_THROW(mel_filterbank(kSr, 2048, bad), Error);
    bad = {};
    bad.n_mels = 0;
    EXPECT_THROW(mel_filterbank(kSr, 2048, bad), Error);
    EXPECT_THROW(mfcc(y, kSr, 0, {}, {}), Error);
    EXPECT_THROW(spectral_rolloff(power_spectrogram(y, {}, 1.0), kSr, 2048, 1.5), Error);
    EXPECT_THROW(spectral_centroid(power_spectrogram(y, {}, 1.0), kSr, 1024), Error);  // bins disagree
    EXPECT_THROW(spectral_contrast(power_spectrogram(y, {}, 1.0), kSr, 2048, 8, 200.0), Error);  // top band past Nyquist
    EXPECT_THROW(spectral_contrast(power_spectrogram(y, {}, 1.0), kSr, 2048, 6, 200.0, 0.0), Error);
}

// The recording is an alarm: pairs of beeps from 0.30 s, repeating about every 1.02 s.
TEST(DspRealAudio, AlarmBeepsAreFoundAndRepeatAboutEverySecond) {
    Audio a = load_audio(test::kRealRecording, 22050);
    StftParams p;
    Matrix m = mfcc(a.samples, 22050, 20, p, {});
    EXPECT_EQ(m.rows, p.frames(static_cast<std::int64_t>(a.samples.size())));
    for (float v : m.values) ASSERT_TRUE(std::isfinite(v));
    auto env = onset_strength(a.samples, 22050, p, {});
    auto level = rms(a.samples, p);
    const float top = *std::max_element(env.begin(), env.end());
    const auto first = std::find_if(env.begin(), env.end(), [&](float v) { return v > 0.3f * top; }) - env.begin();
    const double first_sec = static_cast<double>(first) * 512.0 / 22050;
    EXPECT_NEAR(first_sec, 0.30, 0.05);
    EXPECT_GT(level[static_cast<std::size_t>(first)], 10.0f * level[static_cast<std::size_t>(first - 3)]);  // silence → beep
    // The onset envelope repeats with the beep pattern: its autocorrelation over 0.7–1.4 s peaks near 1.02 s.
    double best = -1;
    std::size_t best_lag = 0;
    for (std::size_t lag = 30; lag <= 60; ++lag) {
        double acc = 0;
        for (std::size_t t = 0; t + lag < env.size(); ++t) acc += static_cast<double>(env[t]) * env[t + lag];
        if (acc > best) best = acc, best_lag = lag;
    }
    EXPECT_NEAR(static_cast<double>(best_lag) * 512.0 / 22050, 1.02, 0.05);
    auto c = chroma_stft(a.samples, 22050, p);
    for (float v : c.values) ASSERT_TRUE(v >= 0.0f && v <= 1.0f);
}

namespace {
const NpzMembers& filters_golden() {
    static const NpzMembers g = read_npz(std::filesystem::path(MESS_FIXTURES_DIR) / "dsp" / "filters.npz");
    return g;
}
std::vector<float> fref(const std::string& name) { return filters_golden().at(name).to_float32(); }

// Clicks (short decaying noise bursts) at `bpm` for `seconds`, at 22,050 Hz.
std::vector<float> click_track(double bpm, double seconds, std::uint32_t seed = 1) {
    std::vector<float> y(static_cast<std::size_t>(seconds * 22050), 0.0f);
    auto burst = test::noise(0.03, 22050, seed, 0.8f);
    for (double t = 0.1; t < seconds - 0.05; t += 60.0 / bpm) {
        const auto start = static_cast<std::size_t>(t * 22050);
        for (std::size_t i = 0; i < burst.size() && start + i < y.size(); ++i)
            y[start + i] += burst[i] * std::exp(-static_cast<float>(i) / 150.0f);
    }
    return y;
}
}  // namespace

TEST(DspGolden, FiltersMatchScipy) {
    const auto x = fref("x");
    EXPECT_LT(rel_err(savgol_filter(x, 11, 3), fref("savgol_11_3")), 1e-5);
    EXPECT_LT(rel_err(savgol_filter(x, 51, 2), fref("savgol_51_2")), 1e-5);
    EXPECT_LT(rel_err(gaussian_filter(x, 3.0), fref("gauss_3")), 1e-6);
    EXPECT_LT(rel_err(median_filter(x, 5), fref("median_5")), 1e-7);
}

TEST(DspGolden, TempogramAndNovelty) {
    EXPECT_LT(rel_err(tempogram(ref("onset")).values, fref("tempogram")), 1e-4);
    Matrix m = mfcc(signal(), kSr, 20, {}, {});
    Matrix s = cosine_self_similarity(m);
    EXPECT_LT(rel_err(s.values, fref("ssm")), 1e-4);
    EXPECT_LT(rel_err(checkerboard_novelty(s), fref("novelty")), 1e-3);
}

TEST(DspKnown, TempoOfClickTracksWithinTwoPercent) {
    StftParams p;
    for (double bpm : {72.0, 90.0, 120.0, 140.0, 174.0}) {
        auto y = click_track(bpm, 20.0, static_cast<std::uint32_t>(bpm));
        double est = estimate_tempo(onset_strength(y, kSr, p, {}), kSr, p.hop);
        EXPECT_NEAR(est, bpm, 0.02 * bpm) << bpm;
    }
    // A rhythm that is not a plain metronome: long-short-short pattern at 100 BPM (beats carry accents).
    std::vector<float> y = click_track(100.0, 20.0, 5);
    auto off = click_track(200.0, 20.0, 6);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] += 0.3f * off[i];
    double est = estimate_tempo(onset_strength(y, kSr, p, {}), kSr, p.hop);
    EXPECT_TRUE(std::fabs(est - 100.0) < 2.0 || std::fabs(est - 200.0) < 4.0) << est;  // the beat or its double
}

// librosa.beat.beat_track's tempo: integer tempogram lags (the BPM of the nearest lag), from the median onset
// envelope; 0 when that envelope is all zero, which it is for a tone that only rises in a few bands.
TEST(DspKnown, BeatTrackTempoIsTheNearestLagsBpm) {
    StftParams p;
    for (double bpm : {90.0, 120.0, 140.0}) {
        auto y = click_track(bpm, 20.0, static_cast<std::uint32_t>(bpm));
        const auto env = onset_strength_median(y, kSr, p, {});
        const double lag = 60.0 * kSr / (p.hop * bpm);
        EXPECT_NEAR(beat_track_tempo(env, kSr, p.hop), 60.0 * kSr / (p.hop * std::round(lag)), 1e-9) << bpm;
        // The median over 128 bands never exceeds their mean (the rises are non-negative and skewed).
        const auto mean_env = onset_strength(y, kSr, p, {});
        for (std::size_t t = 0; t < env.size(); ++t) ASSERT_LE(env[t], 2.0f * mean_env[t] + 1e-6f) << t;
    }
    EXPECT_EQ(beat_track_tempo(std::vector<float>(500, 0.0f), kSr, 512), 0.0);
    EXPECT_EQ(beat_track_tempo({}, kSr, 512), 0.0);
    auto swell = test::tone(440.0, 10.0, static_cast<int>(kSr), 1.0f);  // a pure tone: few bands ever rise
    for (std::size_t i = 0; i < swell.size(); ++i) swell[i] *= static_cast<float>(0.5 + 0.5 * std::sin(static_cast<double>(i) / kSr * 3));
    EXPECT_EQ(beat_track_tempo(onset_strength_median(swell, kSr, p, {}), kSr, p.hop), 0.0);
    EXPECT_GT(estimate_tempo(onset_strength(swell, kSr, p, {}), kSr, p.hop), 0.0);
    EXPECT_THROW(beat_track_tempo(std::vector<float>(10, 1.0f), kSr, 0), Error);
}

TEST(DspDegenerate, FiltersTempoAndNoveltyEdgeCases) {
    std::vector<float> flat(100, 2.0f);
    for (float v : savgol_filter(flat, 11, 3)) EXPECT_NEAR(v, 2.0f, 1e-5f);
    for (float v : gaussian_filter(flat, 2.0)) EXPECT_NEAR(v, 2.0f, 1e-6f);
    EXPECT_DOUBLE_EQ(estimate_tempo(std::vector<float>(500, 0.0f), kSr, 512), 0.0);  // silence: no tempo
    EXPECT_DOUBLE_EQ(estimate_tempo({}, kSr, 512), 0.0);
    Matrix tiny{5, 3, std::vector<float>(15, 1.0f)};
    auto nov = checkerboard_novelty(cosine_self_similarity(tiny));  // shorter than the kernel: all zero
    EXPECT_TRUE(std::all_of(nov.begin(), nov.end(), [](float v) { return v == 0.0f; }));
    Matrix zeros{20, 4, std::vector<float>(80, 0.0f)};
    for (float v : cosine_self_similarity(zeros).values) EXPECT_EQ(v, 0.0f);  // no NaN for zero rows
}

TEST(DspInvalid, FilterAndRhythmParameters) {
    std::vector<float> x(20, 1.0f);
    EXPECT_THROW(savgol_filter(x, 10, 3), Error);   // even window
    EXPECT_THROW(savgol_filter(x, 5, 5), Error);    // order ≥ window
    EXPECT_THROW(savgol_filter(x, 51, 3), Error);   // longer than the signal
    EXPECT_THROW(gaussian_filter(x, 0.0), Error);
    EXPECT_THROW(median_filter(x, 4), Error);
    EXPECT_THROW(tempogram(x, 1), Error);
    TempoParams bad;
    bad.max_bpm = 10;
    EXPECT_THROW(estimate_tempo(x, kSr, 512, bad), Error);
    EXPECT_THROW(checkerboard_novelty(Matrix{2, 3, std::vector<float>(6)}), Error);
}

TEST(DspGolden, AgglomerativeSegmentsMatchScikitLearnWard) {
    static const NpzMembers g = read_npz(std::filesystem::path(MESS_FIXTURES_DIR) / "dsp" / "segments.npz");
    const NpyArray& feat = g.at("features");
    Matrix f{feat.shape[0], feat.shape[1], feat.to_float32()};
    for (int k = 2; k <= 8; ++k) {
        auto want = g.at(fmt::format("starts_{}", k)).view<std::int64_t>();
        EXPECT_EQ(agglomerative_segments(f, k), std::vector<std::int64_t>(want.begin(), want.end())) << "k = " << k;
    }
    EXPECT_EQ(agglomerative_segments(f, 1), std::vector<std::int64_t>{0});
    EXPECT_EQ(agglomerative_segments(f, static_cast<int>(f.rows)).size(), static_cast<std::size_t>(f.rows));
    EXPECT_THROW(agglomerative_segments(f, 0), Error);
    EXPECT_THROW(agglomerative_segments(f, static_cast<int>(f.rows) + 1), Error);
}

TEST(DspKnown, OnsetCountsOfSynthesizedNotes) {
    // 12 piano-like notes (attack, exponential decay, 20-ms release) every 0.4 s.
    std::vector<float> y(static_cast<std::size_t>(6.0 * 22050), 0.0f);
    std::vector<std::int64_t> note_frames;
    for (int i = 0; i < 12; ++i) {
        const double start = 0.3 + 0.4 * i, f0 = 220.0 * std::pow(2.0, (i % 7) / 12.0);
        note_frames.push_back(std::lround(start * 22050 / 512));
        const int len = static_cast<int>(0.35 * 22050), release = static_cast<int>(0.02 * 22050);
        for (int s = 0; s < len; ++s) {
            const auto idx = static_cast<std::size_t>(start * 22050) + static_cast<std::size_t>(s);
            const double fade = std::min(1.0, static_cast<double>(len - s) / release);
            y[idx] += static_cast<float>(0.5 * fade * std::exp(-s / 3000.0) * std::sin(2 * std::numbers::pi * f0 * s / 22050));
        }
    }
    auto onsets = onset_detect(onset_strength(y, kSr, {}, {}), kSr, 512);
    ASSERT_EQ(onsets.size(), note_frames.size());
    for (std::size_t i = 0; i < onsets.size(); ++i) EXPECT_LE(std::abs(onsets[i] - note_frames[i]), 2) << i;
    EXPECT_TRUE(onset_detect(std::vector<float>(100, 0.0f), kSr, 512).empty());  // silence: none
    EXPECT_TRUE(onset_detect({}, kSr, 512).empty());
}

TEST(DspKnown, SemitoneChromaOfALowChord) {
    // A minor with the bass at A2 (110 Hz): A, C, E are the strongest classes.
    auto y = test::chord({110.0, 130.81, 164.81, 220.0}, 2.0, 22050);
    Matrix c = chroma_semitone(y, kSr);
    std::vector<std::pair<float, int>> classes;
    for (int k = 0; k < 12; ++k) classes.emplace_back(c.at(c.rows / 2, k), k);
    std::sort(classes.rbegin(), classes.rend());
    std::vector<int> top = {classes[0].second, classes[1].second, classes[2].second};
    std::sort(top.begin(), top.end());
    EXPECT_EQ(top, (std::vector<int>{0, 4, 9}));  // C, E, A
    EXPECT_EQ(classes[0].second, 9);               // A (bass and octave) dominates
    Matrix s = chroma_semitone(test::silence(1.0, 22050), kSr);
    EXPECT_TRUE(std::all_of(s.values.begin(), s.values.end(), [](float v) { return v == 0.0f; }));
}
