// The weightless encoders: shapes, invariances the dsp layers promise, degenerate input, real audio.
#include <cmath>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "support/support.hpp"

using namespace mess;

namespace {

constexpr int kRate = 24000;

Audio make_audio(std::vector<float> x) {
    Audio a;
    a.samples = std::move(x);
    a.sample_rate = kRate;
    return a;
}

// Triads (root-position, equal tempered) of a progression, `seconds` each, shifted by `transpose` semitones;
// each note with partials 1..harmonics at amplitude 1/k (harmonics > 1: a brighter, reedier instrument).
std::vector<float> progression(const std::vector<int>& roots, bool minor, int transpose, double seconds = 1.25,
                               int harmonics = 1) {
    const auto n = static_cast<std::size_t>(std::llround(seconds * kRate));
    std::vector<float> out;
    for (int r : roots) {
        const int root = 48 + r + transpose;  // MIDI note
        std::vector<float> c(n, 0.0f);
        for (int note : {root, root + (minor ? 3 : 4), root + 7, root + 12}) {
            const double hz = 440.0 * std::pow(2.0, (note - 69) / 12.0);
            for (int k = 1; k <= harmonics; ++k)
                for (std::size_t i = 0; i < n; ++i)
                    c[i] += static_cast<float>(0.05 / k * std::sin(2 * M_PI * k * hz * static_cast<double>(i) / kRate));
        }
        out.insert(out.end(), c.begin(), c.end());
    }
    return out;
}

// Clicks (short decaying noise bursts) at `bpm` for `seconds`; `irregular`: at seeded random times instead.
std::vector<float> clicks(double bpm, double seconds, bool irregular = false) {
    std::vector<float> x(static_cast<std::size_t>(seconds * kRate), 0.0f);
    const auto burst = test::noise(0.03, kRate, 7, 0.8f);
    std::uint32_t state = 12345;
    for (double t = 0; t < seconds; t += irregular ? 0.1 + 1.1 * ((state = state * 1664525u + 1013904223u) >> 8) / 16777216.0 : 60.0 / bpm) {
        const auto start = static_cast<std::size_t>(t * kRate);
        const float gain = 1.0f;
        for (std::size_t i = 0; i < burst.size() && start + i < x.size(); ++i)
            x[start + i] += gain * burst[i] * std::exp(-static_cast<float>(i) / 200.0f);
    }
    return x;
}

// Mean over windows and frames of one layer: [D].
std::vector<double> layer_mean(const Embedding& e, int layer) {
    const HiddenStates& h = e.states;
    std::vector<double> m(static_cast<std::size_t>(h.hidden), 0.0);
    for (std::int64_t s = 0; s < h.batch; ++s)
        for (std::int64_t t = 0; t < h.frames; ++t)
            for (std::int64_t d = 0; d < h.hidden; ++d)
                m[d] += h.values[static_cast<std::size_t>(((s * h.layers + layer) * h.frames + t) * h.hidden + d)];
    return m;
}

// Cosine of `a` and `b` over dims [first, last] (default: all).
double cosine(const std::vector<double>& a, const std::vector<double>& b, std::size_t first = 0, std::size_t last = SIZE_MAX) {
    double ab = 0, aa = 0, bb = 0;
    for (std::size_t i = first; i < a.size() && i <= last; ++i) ab += a[i] * b[i], aa += a[i] * a[i], bb += b[i] * b[i];
    return aa > 0 && bb > 0 ? ab / std::sqrt(aa * bb) : 0.0;
}

Embedding embed(const std::shared_ptr<const Encoder>& enc, std::vector<float> x) {
    return enc->session()->embed(make_audio(std::move(x)), {}, 1);
}

}  // namespace

TEST(DspEncoder, ShapesLayersAndInfo) {
    auto enc = open_encoder("dsp");
    const EncoderInfo& i = enc->info();
    EXPECT_EQ(i.layers, 6);
    EXPECT_EQ(i.hidden, 144);
    EXPECT_EQ(i.version, 3);
    EXPECT_EQ(i.default_layer, 4);
    EXPECT_EQ(i.layer_names.at(1), "harmony");
    const Embedding e = embed(enc, progression({0, 5, 7, 0, 9, 2, 7, 0, 0, 5}, false, 0));  // 12.5 s
    EXPECT_EQ(e.windows.size(), 4u);  // starts 0, 2.5, 5, 7.5: the last ends at 12.5 s
    EXPECT_EQ(e.states.layers, 6);
    EXPECT_EQ(e.states.frames, 51);  // 1 + 120000 / 2400
    EXPECT_EQ(e.states.hidden, 144);
    for (float v : e.states.values) ASSERT_TRUE(std::isfinite(v));
    // A group layer is non-zero only in its own block: harmony is dims 28..114.
    const auto h = layer_mean(e, 1);
    for (int d = 0; d < 144; ++d) {
        if (d < 28 || d > 114) {
            EXPECT_EQ(h[d], 0.0) << d;
        }
    }
    EXPECT_GT(std::abs(h[30]) + std::abs(h[40]), 0.0);
    // The expression layer fills dims 0..47 only.
    EXPECT_EQ(i.layer_names.at(5), "expression");
    const auto x = layer_mean(e, 5);
    for (int d = 48; d < 144; ++d) EXPECT_EQ(x[d], 0.0) << d;
}

TEST(DspEncoder, HarmonyIsTranspositionInvariant) {
    auto enc = open_encoder("dsp");
    const std::vector<int> piece{0, 5, 7, 0, 9, 5, 7, 0};
    const auto a = layer_mean(embed(enc, progression(piece, false, 0)), 1);
    const auto up3 = layer_mean(embed(enc, progression(piece, false, 3)), 1);
    const auto other = layer_mean(embed(enc, progression({0, 3, 8, 10, 1, 6, 4, 11}, true, 0)), 1);
    const auto raw_chroma_baseline = layer_mean(embed(open_encoder("mfcc-chroma"), progression(piece, false, 0)), 0);
    const auto raw_chroma_up3 = layer_mean(embed(open_encoder("mfcc-chroma"), progression(piece, false, 3)), 0);
    EXPECT_GT(cosine(a, up3), 0.95);
    EXPECT_GT(cosine(a, up3), cosine(a, other) + 0.1);
    // The baseline's chroma moves with the key: less similar than the dsp harmony layer.
    EXPECT_LT(cosine(raw_chroma_baseline, raw_chroma_up3), cosine(a, up3));
}

TEST(DspEncoder, GainInvariantLayersAndAbsoluteDynamics) {
    auto enc = open_encoder("dsp");
    auto x = progression({0, 5, 7, 0}, false, 0);
    auto quiet = x;
    for (float& v : quiet) v *= 0.2f;  // −14 dB
    const Embedding a = embed(enc, x), b = embed(enc, quiet);
    for (int l : {0, 1, 2}) EXPECT_GT(cosine(layer_mean(a, l), layer_mean(b, l)), 0.995) << "layer " << l;
    // The dynamics layer keeps the absolute level: a quieter rendering is another dynamic.
    EXPECT_LT(cosine(layer_mean(a, 3), layer_mean(b, 3)), 0.9);
    EXPECT_GT(cosine(layer_mean(a, 4), layer_mean(b, 4)), 0.99);  // overall: dynamics weighs 0.05
}

TEST(DspEncoder, DynamicsCarriesTheContour) {
    // The same chord at the same mean level, swelling or fading: only the contour tells them apart.
    auto enc = open_encoder("dsp");
    const auto base = test::chord({220.0, 277.2, 329.6}, 10.0, kRate, 0.3f);
    auto swell = base, fade = base;
    for (std::size_t i = 0; i < base.size(); ++i) {
        const double ramp = static_cast<double>(i % (5 * kRate)) / (5 * kRate);  // 0 → 1 over each 5 s
        swell[i] *= static_cast<float>(std::pow(10.0, (ramp - 1) * 1.5));  // −30 → 0 dB
        fade[i] *= static_cast<float>(std::pow(10.0, -ramp * 1.5));        // 0 → −30 dB
    }
    const auto s1 = layer_mean(embed(enc, swell), 3), f1 = layer_mean(embed(enc, fade), 3);
    const auto s2 = layer_mean(embed(enc, swell), 3);
    EXPECT_EQ(s1, s2);
    EXPECT_LT(cosine(s1, f1), 0.9);  // measured 0.83
}

TEST(DspEncoder, HarmonyIsRobustToInstrument) {
    // One progression on a pure-tone instrument and on a six-partial one (partial k at 1/k), and another
    // progression on the pure-tone instrument. The timbre layer hears the instrument change more than the
    // change of piece; the harmony layer keeps most of its similarity across the instrument change
    // (measured: harmony 0.66, timbre 0.28). Same-work retrieval across instruments is measured on rendered
    // corpora (bench/dsp_eval.py, README).
    auto enc = open_encoder("dsp");
    const std::vector<int> piece{0, 5, 7, 0, 9, 5, 7, 0};
    const Embedding pure = embed(enc, progression(piece, false, 0));
    const Embedding reedy = embed(enc, progression(piece, false, 0, 1.25, 6));
    const Embedding other = embed(enc, progression({0, 3, 8, 10, 1, 6, 4, 11}, true, 0));
    const double harmony = cosine(layer_mean(pure, 1), layer_mean(reedy, 1));
    const double timbre = cosine(layer_mean(pure, 0), layer_mean(reedy, 0));
    EXPECT_GT(harmony, timbre + 0.3);
    EXPECT_LT(timbre, cosine(layer_mean(pure, 0), layer_mean(other, 0)));
    // The overall layer's harmony (its discriminant coordinates, dims 28-67) keeps the instrument change
    // closer than the harmony layer does, and closer than the other progression, which the harmony layer
    // does not (measured: harmony layer 0.66 instrument, 0.78 other piece; overall 0.75, 0.72).
    const double overall = cosine(layer_mean(pure, 4), layer_mean(reedy, 4), 28, 67);
    EXPECT_GT(overall, harmony + 0.05);
    EXPECT_GT(overall, cosine(layer_mean(pure, 4), layer_mean(other, 4), 28, 67));
}

// The harmony discriminant the overall layer applies (the generated constants of src/model).
#include "../../src/model/dsp_harmony_projection.inc"

TEST(DspEncoder, OverallHarmonyIsTheDiscriminantOfTheWindowsHarmony) {
    // Per window: the overall layer's harmony block is unit(W h) (weight 1.00) where h is the window's
    // harmony-layer mean and W the discriminant rows; dims 68..114 stay zero. Independent of the encoder's
    // pooling code: recomputed here from the harmony layer's frames.
    auto enc = open_encoder("dsp");
    const Embedding e = embed(enc, progression({0, 5, 7, 0, 9, 2, 7, 0, 0, 5}, false, 0));  // 4 windows
    const HiddenStates& st = e.states;
    const auto at = [&](std::int64_t s, int layer, std::int64_t t, int d) {
        return static_cast<double>(st.values[static_cast<std::size_t>(((s * st.layers + layer) * st.frames + t) * st.hidden + d)]);
    };
    ASSERT_EQ(st.batch, 4);
    for (std::int64_t s = 0; s < st.batch; ++s) {
        std::vector<double> h(87, 0.0), w(kHarmonyDiscriminants, 0.0);
        for (std::int64_t t = 0; t < st.frames; ++t)
            for (int i = 0; i < 87; ++i) h[i] += at(s, 1, t, 28 + i);
        double norm = 0;
        for (int k = 0; k < kHarmonyDiscriminants; ++k) {
            for (int i = 0; i < 87; ++i) w[k] += kHarmonyDiscriminant[static_cast<std::size_t>(k * 87 + i)] * h[i];
            norm += w[k] * w[k];
        }
        ASSERT_GT(norm, 0.0);
        for (std::int64_t t = 0; t < st.frames; t += 10) {
            for (int k = 0; k < kHarmonyDiscriminants; ++k)
                EXPECT_NEAR(at(s, 4, t, 28 + k), w[k] / std::sqrt(norm), 1e-5) << "window " << s << " dim " << 28 + k;
            for (int d = 28 + kHarmonyDiscriminants; d <= 114; ++d) EXPECT_EQ(at(s, 4, t, d), 0.0) << "dim " << d;
        }
    }
}

TEST(DspEncoder, RhythmIsTempoInvariant) {
    auto enc = open_encoder("dsp");
    const auto slow = layer_mean(embed(enc, clicks(100, 10)), 2);
    const auto fast = layer_mean(embed(enc, clicks(130, 10)), 2);
    const auto irregular = layer_mean(embed(enc, clicks(100, 10, true)), 2);
    EXPECT_GT(cosine(slow, fast), 0.9);
    EXPECT_GT(cosine(slow, fast), cosine(slow, irregular));
}

namespace {

// Notes of a decaying tone every `ioi` seconds for `seconds`, at `gain`, each released over 20 ms at `length` seconds.
std::vector<float> notes(double ioi, double seconds, double length, float gain) {
    std::vector<float> x(static_cast<std::size_t>(seconds * kRate), 0.0f);
    for (double t = 0; t + 0.05 < seconds; t += ioi)
        for (std::size_t i = 0; i < static_cast<std::size_t>(length * kRate); ++i) {
            const auto at = static_cast<std::size_t>(t * kRate) + i;
            if (at >= x.size()) break;
            const double s = static_cast<double>(i) / kRate;
            const double release = std::min(1.0, (length - s) / 0.02);  // a 20-ms release: no click at the cut
            x[at] += static_cast<float>(gain * release * std::exp(-3 * s) * std::sin(2 * M_PI * 330 * s));
        }
    return x;
}

}  // namespace

TEST(DspEncoder, ExpressionMeasuresTempoLevelAndArticulation) {
    // Fixed units, so the values are checked against the signals' own settings: the median inter-onset
    // interval (dim 1: log2 IOI + 1.5), the 90th-percentile level (dim 19: dBFS/20 + 2) and the level under
    // each 0.5 s's peak (dims 38-41).
    auto enc = open_encoder("dsp");
    const auto ex = [&](const std::vector<float>& x) { return layer_mean(embed(enc, x), 5); };
    const auto frames = 51.0;  // every frame holds the window's values: layer_mean sums 51 frames per window
    const auto slow = ex(notes(0.5, 5, 0.45, 0.3f)), fast = ex(notes(0.25, 5, 0.22, 0.3f));
    EXPECT_NEAR(slow[1] / frames, std::log2(0.5) + 1.5, 0.1);
    EXPECT_NEAR(fast[1] / frames, std::log2(0.25) + 1.5, 0.1);
    const auto quiet = ex(notes(0.5, 5, 0.45, 0.03f));
    EXPECT_NEAR((slow[19] - quiet[19]) / frames, 1.0, 0.05);  // 20 dB quieter
    EXPECT_NEAR(slow[1], quiet[1], 1e-6 * frames);            // the same tempo
    const auto detached = ex(notes(0.5, 5, 0.12, 0.3f));
    // Cut notes leave silence between onsets: fewer frames within 6 dB of each 0.5 s's peak (dim 41), and
    // the quietest quarter of frames further under it (dim 39).
    EXPECT_GT((slow[41] - detached[41]) / frames, 0.1) << slow[41] / frames << " " << detached[41] / frames;
    EXPECT_LT((detached[39] - slow[39]) / frames, -0.25) << slow[39] / frames << " " << detached[39] / frames;
    // A crescendo of 4 dB/s: its level slope (dim 32, dB/s / 5) exceeds the same notes' at a steady level
    // by 4/5 (the window's last, partial 0.5-s block biases both alike: measured −1.2 dB/s when steady).
    auto swell = notes(0.25, 5, 0.22, 0.3f);
    for (std::size_t i = 0; i < swell.size(); ++i) swell[i] *= static_cast<float>(std::pow(10.0, (static_cast<double>(i) / kRate - 5) / 20 * 4));
    EXPECT_NEAR((ex(swell)[32] - fast[32]) / frames, 4.0 / 5, 0.15);
    // Hairpins that start again inside the window (20 dB over 3 s, then again): the level's direction
    // survives the jump (dims 44-47: median slope over ≤ 1.5 s in dB/s / 5, share of rising 0.5-s steps − 0.5, largest
    // fall and rise in dB / 20), while the least-squares slope (dim 32) is pulled by the jump.
    auto hairpins = [&](double sign) {
        auto x = notes(0.25, 5, 0.22, 0.3f);
        for (std::size_t i = 0; i < x.size(); ++i) {
            const double phase = std::fmod(static_cast<double>(i) / kRate, 3.0) / 3.0;
            x[i] *= static_cast<float>(std::pow(10.0, (sign > 0 ? phase - 1 : -phase) * 20 / 20));
        }
        return ex(x);
    };
    const auto up = hairpins(1), down = hairpins(-1);
    EXPECT_GT(up[44] / frames, 0.6) << up[44] / frames;      // ≥ 3 dB/s up
    EXPECT_LT(down[44] / frames, -0.6) << down[44] / frames;  // ≥ 3 dB/s down
    EXPECT_NEAR((up[44] - down[44]) / frames, 2 * 20.0 / 3 / 5, 0.5);
    EXPECT_GT(up[45] / frames, 0.15);
    EXPECT_LT(down[45] / frames, -0.15);
    EXPECT_LT(up[46] / frames, -0.5);  // the crescendo's restart: a fall of more than 10 dB
    EXPECT_GT(down[47] / frames, 0.3); // the diminuendo's: a rise
}

TEST(DspEncoder, DegenerateInput) {
    auto enc = open_encoder("dsp");
    // Silence: zero vectors in every layer.
    const Embedding s = embed(enc, std::vector<float>(kRate * 6, 0.0f));
    for (float v : s.states.values) ASSERT_EQ(v, 0.0f);
    // 0.5 s: one short window.
    const Embedding shortie = embed(enc, test::tone(440, 0.5, kRate));
    EXPECT_EQ(shortie.windows.size(), 1u);
    EXPECT_EQ(shortie.states.frames, 1 + 12000 / 2400);
    // DC and clipping: defined, finite values.
    for (float v : embed(enc, std::vector<float>(kRate * 3, 0.5f)).states.values) ASSERT_TRUE(std::isfinite(v));
    auto clipped = test::tone(220, 3, kRate, 1.0f);
    for (float& v : clipped) v = std::clamp(v * 4.0f, -1.0f, 1.0f);
    for (float v : embed(enc, clipped).states.values) ASSERT_TRUE(std::isfinite(v));
    // Errors: non-finite samples, too short, no samples, wrong rate.
    auto bad = test::tone(440, 2, kRate);
    bad[1000] = std::nanf("");
    EXPECT_THROW(embed(enc, bad), Error);
    EXPECT_THROW(embed(enc, std::vector<float>(100, 0.1f)), Error);
    EXPECT_THROW(embed(enc, {}), Error);
    Audio wrong = make_audio(test::tone(440, 2, 44100));
    wrong.sample_rate = 44100;
    EXPECT_THROW(enc->session()->embed(wrong, {}, 1), Error);
    EXPECT_THROW(open_encoder("no-such-model"), Error);
}

TEST(DspEncoder, RealRecordingAndThreadsAgree) {
    auto enc = open_encoder("dsp");
    const Audio a = load_audio(test::kRealRecording, kRate);
    const Embedding one = enc->session()->embed(a, {}, 1);
    const Embedding two = enc->session()->embed(a, {}, 2);
    EXPECT_EQ(one.states.values, two.states.values);  // windows are independent: threads change nothing
    double energy = 0;
    for (float v : one.states.values) energy += std::abs(v);
    EXPECT_GT(energy, 0.0);

    EXPECT_EQ(one.segments, pool_frames(one.states));
    EmbedParams lean;
    lean.keep_frames = false;  // only the per-window means are kept
    const Embedding means_only = enc->session()->embed(a, lean, 1);
    EXPECT_TRUE(means_only.states.values.empty());
    EXPECT_EQ(means_only.states.frames, one.states.frames);
    EXPECT_EQ(means_only.segments, one.segments);
}

TEST(MfccChromaEncoder, ShapeAndUnitBlocks) {
    auto enc = open_encoder("mfcc-chroma");
    EXPECT_EQ(enc->info().layers, 1);
    EXPECT_EQ(enc->info().hidden, 32);
    const Embedding e = embed(enc, progression({0, 5, 7, 0}, false, 0));
    const HiddenStates& h = e.states;
    EXPECT_EQ(h.frames, 1 + 120000 / 512);
    double mfcc = 0, chroma = 0;
    for (int d = 0; d < 20; ++d) mfcc += h.values[static_cast<std::size_t>(5 * 32 + d)] * h.values[static_cast<std::size_t>(5 * 32 + d)];
    for (int d = 20; d < 32; ++d) chroma += h.values[static_cast<std::size_t>(5 * 32 + d)] * h.values[static_cast<std::size_t>(5 * 32 + d)];
    EXPECT_NEAR(mfcc, 1.0, 1e-4);
    EXPECT_NEAR(chroma, 1.0, 1e-4);
}

TEST(DspEncoder, ProgressMayStopTheEmbedding) {
    auto enc = open_encoder("dsp");
    const std::vector<float> x = test::chord({220.0, 277.2, 329.6}, 20.0, kRate, 0.2f);  // 7 windows
    struct Stop {};
    for (int threads : {1, 2}) {
        int calls = 0;
        EmbedParams p;
        p.on_progress = [&](std::int64_t, std::int64_t) {
            if (++calls == 3) throw Stop{};
        };
        EXPECT_THROW(enc->session()->embed(AudioView(x, kRate), p, threads), Stop) << threads << " thread(s)";
        EXPECT_EQ(calls, 3) << "on_progress is not called again once it has thrown";
    }
    // A borrowed view of the samples gives what an Audio holding them gives.
    const std::span<const float> head(x.data(), 6 * kRate);
    EXPECT_EQ(enc->session()->embed(AudioView(head, kRate), {}, 1).segments, embed(enc, {head.begin(), head.end()}).segments);
}

TEST(DspEncoder, FingerprintAndDigestMoveWithWhatItComputes) {
    const auto dsp = open_encoder("dsp");
    const std::vector<float> f = encoder_fingerprint(*dsp);
    ASSERT_EQ(f.size(), static_cast<std::size_t>(dsp->info().layers * dsp->info().hidden));  // one window [L, D]
    EXPECT_EQ(encoder_fingerprint(*dsp), f);  // deterministic
    const std::vector<float> digest = fingerprint_digest(f);
    ASSERT_EQ(digest.size(), 16u);
    EXPECT_EQ(fingerprint_distance(digest, digest), 0.0);
    // A change of 2 % of the fingerprint's norm, spread over a few dims as an encoder fix would, reads as
    // such in the digest (16 random projections: within a factor of 3), far above kSameFingerprint.
    std::vector<float> moved = f;
    double norm = 0;
    for (float v : f) norm += double(v) * v;
    for (std::size_t d = 5 * 144 + 32; d < 5 * 144 + 38; ++d) moved[d] += static_cast<float>(0.02 * std::sqrt(norm / 6));
    const double full = fingerprint_distance(moved, f), seen = fingerprint_distance(fingerprint_digest(moved), digest);
    EXPECT_NEAR(full, 0.02, 1e-4);
    EXPECT_GT(seen, full / 3);
    EXPECT_LT(seen, full * 3);
    EXPECT_GT(seen, 10 * kSameFingerprint);
    EXPECT_EQ(fingerprint_distance(encoder_fingerprint(*open_encoder("mfcc-chroma")), f), 1.0);  // another size
}

TEST(DspEncoder, GoldenValues) {
    // Provenance: recorded from the version-3 encoder (EncoderInfo::version 3, calibration of
    // src/model/dsp_calibration.inc from bench/dsp_calibrate.sh on the development corpus, harmony
    // discriminant of src/model/dsp_harmony_projection.inc from bench/dsp_harmony_projection.py) on the signal
    // below; regression values, not an independent computation. If they move, the encoder changed: bump
    // EncoderInfo::version, re-run bench/dsp_eval.py and retrain models/aspects/dsp (scripts/train-aspects).
    auto enc = open_encoder("dsp");
    const Embedding e = embed(enc, progression({0, 5, 7, 0, 9, 5, 7, 0}, false, 2));  // 10 s, 3 windows
    ASSERT_EQ(e.windows.size(), 3u);
    const auto overall = layer_mean(e, 4);
    // Sums over windows and frames of the overall layer, at dims of every group.
    const std::vector<std::pair<int, double>> golden{
        {0, -0.440740},    {10, -3.859864},  {27, -6.623957}, {28, 7.030706},   {33, 13.819176},
        {45, -27.570843},  {48, 2.497196},   {60, -5.787750}, {90, 0.0},        {114, 0.0},
        {115, -2.303589},  {120, -6.301291}, {129, -0.206002}, {134, -0.006502}, {143, 0.043807}};
    for (const auto& [d, v] : golden)
        EXPECT_NEAR(overall[static_cast<std::size_t>(d)], v, 1e-3 * std::max(1.0, std::abs(v))) << "dim " << d;
    // The expression layer's sums, at dims of its tempo, dynamics and articulation parts.
    const auto expression = layer_mean(e, 5);
    const std::vector<std::pair<int, double>> golden_expression{
        {0, -342.255745}, {1, 280.513831}, {4, -202.532920}, {18, 129.591137}, {19, 131.266212},
        {32, -0.263216},   {38, -3.434118},  {42, 0.401940},   {43, 0.401940},   {44, -0.033554},
        {45, -14.166667},  {46, -1.201646},  {47, 0.945469}};
    for (const auto& [d, v] : golden_expression)
        EXPECT_NEAR(expression[static_cast<std::size_t>(d)], v, 1e-3 * std::max(1.0, std::abs(v))) << "expression dim " << d;
}
