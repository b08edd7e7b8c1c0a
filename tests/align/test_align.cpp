// Alignment: DTW against hand-computed paths, banded/multiscale against full DTW, accuracy on synthetic
// performances with known time maps (tempo, rubato, instrument, transposition), degenerate input.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "mess/align.hpp"
#include "support/support.hpp"

namespace mess {
namespace {

constexpr int kRate = 22050;

// A seeded piece: a melody over a bass line, notes of 0.25–1 s, as (source) note events.
std::vector<test::Note> piece(std::uint32_t seed, double seconds) {
    std::mt19937 rng(seed);
    std::vector<test::Note> notes;
    const int scale[7] = {0, 2, 4, 5, 7, 9, 11};
    for (double t = 0; t < seconds;) {
        const double len = 0.25 * static_cast<double>(1 + rng() % 4);
        notes.push_back({static_cast<double>(60 + scale[rng() % 7] + 12 * static_cast<int>(rng() % 2)), t, len * 0.9, 0.5 + 0.1 * static_cast<double>(rng() % 5)});
        if (std::fmod(t, 1.0) < 1e-9) notes.push_back({static_cast<double>(36 + scale[rng() % 7]), t, 0.9, 0.5});
        t += len;
    }
    return notes;
}

// A performance of the piece: times warped by `warp` (source s → performed seconds), pitches shifted.
struct Performance {
    double tempo = 1.0, rubato = 0.0, period = 6.0;
    int transpose = 0;
    test::Timbre timbre{};
    double warp(double s) const {
        const double w = 2 * M_PI / period;
        return tempo * (s + (rubato > 0 ? rubato / w * (1 - std::cos(w * s)) : 0.0));
    }
};
Audio perform(const std::vector<test::Note>& source, double seconds, const Performance& p) {
    std::vector<test::Note> notes;
    for (auto n : source) {
        const double start = p.warp(n.start), end = p.warp(n.start + n.length);
        notes.push_back({n.pitch + p.transpose, start, end - start, n.velocity});
    }
    return Audio{test::render_notes(notes, p.warp(seconds) + 0.5, kRate, p.timbre), kRate};
}

// Share of the source's note onsets whose aligned time in B is off by more than `tolerance` seconds.
double share_off(const Alignment& al, const std::vector<test::Note>& source, const Performance& pa, const Performance& pb,
                 double tolerance) {
    int off = 0, n = 0;
    for (const auto& note : source) {
        if (pa.warp(note.start) > al.duration_a - 0.5) continue;
        ++n;
        if (std::fabs(al.time_b_at(pa.warp(note.start)) - pb.warp(note.start)) > tolerance) ++off;
    }
    return static_cast<double>(off) / n;
}

AlignFeatures features_of(std::initializer_list<int> pitch_classes) {
    AlignFeatures f;
    f.chroma = {static_cast<std::int64_t>(pitch_classes.size()), 12, std::vector<float>(pitch_classes.size() * 12, 0.0f)};
    f.onsets = f.chroma;
    std::int64_t t = 0;
    for (int pc : pitch_classes) f.chroma.at(t++, pc) = 1.0f;
    f.duration_sec = static_cast<double>(t) / f.frame_rate;
    return f;
}

TEST(Dtw, HandComputedPaths) {
    // A = C E G, B = C C E G G: the path repeats A's C and G; every cell on it costs 0.
    const auto a = features_of({0, 4, 7}), b = features_of({0, 0, 4, 7, 7});
    DtwOptions plain;
    plain.step_penalty = 0;
    const DtwPath p = dtw_full(a, b, plain);
    const std::vector<std::array<std::int64_t, 2>> want{{0, 0}, {0, 1}, {1, 2}, {2, 3}, {2, 4}};
    EXPECT_EQ(p.cells, want);
    EXPECT_DOUBLE_EQ(p.total_cost, 0.0);
    // A = C D, B = E C D: the closed path pays for B's E (cost 1 − 0 = 1); the open one starts at B's C.
    const auto c = features_of({0, 2}), d = features_of({4, 0, 2});
    EXPECT_DOUBLE_EQ(dtw_full(c, d, plain).total_cost, 1.0);
    // With a step penalty, the repeated cells of the first pair cost 2 × penalty.
    EXPECT_DOUBLE_EQ(dtw_full(a, b, {}).total_cost, 2 * kAlignStepPenalty);
    DtwOptions open = plain;
    open.open_begin = true;
    const DtwPath po = dtw_full(c, d, open);
    EXPECT_DOUBLE_EQ(po.total_cost, 0.0);
    EXPECT_EQ(po.cells.front(), (std::array<std::int64_t, 2>{0, 1}));
    // A full band is the full DTW.
    DtwBand full{{0, 0}, {2, 2}};
    EXPECT_EQ(dtw_banded(c, d, full, {}).cells, dtw_full(c, d, {}).cells);
}

TEST(Dtw, MultiscaleAgreesWithFullDtw) {
    const auto source = piece(3, 40.0);
    Performance pa, pb;
    pb.tempo = 1.3;
    pb.rubato = 0.15;
    const auto fa = alignment_features(perform(source, 40.0, pa)), fb = alignment_features(perform(source, 40.0, pb));
    const DtwPath exact = dtw_full(fa, fb, {});
    MultiscaleOptions o;
    o.coarsest_frames = 80;  // three levels (50 → 10 → 2 frames/s) for 40 s
    const DtwPath ms = dtw_multiscale(fa, fb, o);
    EXPECT_LT(ms.working_bytes * 10, exact.working_bytes) << "the band must be far smaller than the matrix";
    EXPECT_NEAR(ms.total_cost, exact.total_cost, 0.005 * exact.total_cost);
    // For each row, the mean column on both paths: ≥ 99 % of rows within one frame.
    auto row_means = [&](const DtwPath& p) {
        std::vector<double> sum(static_cast<std::size_t>(fa.frames()), 0.0), n(sum.size(), 0.0);
        for (auto [i, j] : p.cells) sum[static_cast<std::size_t>(i)] += static_cast<double>(j), n[static_cast<std::size_t>(i)] += 1;
        for (std::size_t i = 0; i < sum.size(); ++i) sum[i] /= n[i];
        return sum;
    };
    const auto e = row_means(exact), m = row_means(ms);
    int close = 0;
    for (std::size_t i = 0; i < e.size(); ++i) close += std::fabs(e[i] - m[i]) <= 1.0;
    EXPECT_GE(close, static_cast<int>(0.99 * static_cast<double>(e.size())));
}

TEST(Align, TempoRubatoInstrumentAndTransposition) {
    const auto source = piece(11, 45.0);
    Performance ref, other;
    other.tempo = 0.8;
    other.rubato = 0.12;
    other.transpose = 3;
    other.timbre = {12, 0.5, 0.5};  // brighter, sustained: another instrument
    const Audio a = perform(source, 45.0, ref), b = perform(source, 45.0, other);
    const Alignment al = align_audio(a, b, {});
    EXPECT_EQ(al.transposition, 3);
    EXPECT_TRUE(al.reliable()) << "confidence " << al.confidence << " ratio " << al.cost_ratio;
    EXPECT_LE(share_off(al, source, ref, other, 0.10), 0.05);
    EXPECT_NEAR(al.mean_tempo_ratio(), 1.0 / 0.8, 0.05);
    ASSERT_GE(al.path_sec.size(), 2u);
    for (std::size_t k = 1; k < al.path_sec.size(); ++k) {
        EXPECT_GE(al.path_sec[k][0], al.path_sec[k - 1][0]);
        EXPECT_GE(al.path_sec[k][1], al.path_sec[k - 1][1]);
    }
    // The tempo curve: B plays at 1/0.8 of A's speed, modulated by the rubato.
    const auto tempo = local_tempo_ratio(al, 0.5, 4.0);
    double mean = 0;
    for (double r : tempo) mean += r;
    EXPECT_NEAR(mean / static_cast<double>(tempo.size()), 1.25, 0.1);
}

TEST(Align, TempoRatiosFromOneToThreeToThreeToOne) {
    const auto source = piece(21, 24.0);
    Performance ref;
    for (double tempo : {2.8, 1.0 / 2.8}) {
        Performance other;
        other.tempo = tempo;
        const Alignment al = align_audio(perform(source, 24.0, ref), perform(source, 24.0, other), {});
        EXPECT_LE(share_off(al, source, ref, other, 0.10), 0.05) << "tempo " << tempo;
        EXPECT_NEAR(al.mean_tempo_ratio(), 1.0 / tempo, 0.05 / tempo) << "tempo " << tempo;
    }
}

TEST(Align, OpenEndFindsThePieceInsideALongerRecording) {
    const auto source = piece(5, 30.0);
    Performance p;
    Audio a = perform(source, 30.0, p);
    Audio b = perform(source, 30.0, p);
    const auto tail = perform(piece(99, 15.0), 15.0, p);  // 15 s of other music after the piece
    b.samples.insert(b.samples.end(), tail.samples.begin(), tail.samples.end());
    AlignParams params;
    params.dtw.dtw.open_end = true;
    const Alignment al = align_audio(a, b, params);
    EXPECT_NEAR(al.time_b_at(29.0), 29.0, 0.1);
    EXPECT_LT(al.path_sec.back()[1], 32.0);
}

TEST(Align, UnrelatedRecordingsAreNotReliable) {
    // A melody in C against chromatic clusters in another register and rhythm: nothing in common.
    Performance p;
    std::vector<test::Note> clusters;
    for (double t = 0; t < 30.0; t += 0.6)
        for (double pitch : {49.0, 54.0, 56.0, 61.0}) clusters.push_back({pitch + static_cast<double>(static_cast<int>(t * 5) % 3), t, 0.3, 0.6});
    Performance other;
    other.timbre = {3, 2.0, 8.0};
    const Alignment al = align_audio(perform(piece(1, 30.0), 30.0, p), perform(clusters, 30.0, other), {});
    EXPECT_FALSE(al.reliable()) << "confidence " << al.confidence << " ratio " << al.cost_ratio;
}

TEST(Align, DegenerateInputAndBadParameters) {
    Performance p;
    const Audio music = perform(piece(7, 20.0), 20.0, p);
    const Audio silent{std::vector<float>(kRate * 5, 0.0f), kRate};
    EXPECT_NE(test::error_message([&] { align_audio(silent, music, {}); }).find("A: the audio is silent"), std::string::npos);
    EXPECT_NE(test::error_message([&] { align_audio(music, silent, {}); }).find("B: the audio is silent"), std::string::npos);
    EXPECT_NE(test::error_message([&] { alignment_features(Audio{}); }).find("no samples"), std::string::npos);
    Audio nan = music;
    nan.samples[100] = std::nanf("");
    EXPECT_FALSE(test::error_message([&] { alignment_features(nan); }).empty());
    // 1:10 — no alignment without open begin/end.
    const Audio short_one{std::vector<float>(music.samples.begin(), music.samples.begin() + kRate * 2), kRate};
    EXPECT_NE(test::error_message([&] { align_audio(short_one, music, {}); }).find("tempo ratio"), std::string::npos);
    AlignParams bad;
    bad.dtw.radius = 0;
    EXPECT_FALSE(test::error_message([&] { align_audio(music, music, bad); }, ErrorKind::usage).empty());
    bad = {};
    bad.max_length_ratio = 1.0;
    EXPECT_FALSE(test::error_message([&] { align_audio(music, music, bad); }, ErrorKind::usage).empty());
    DtwBand broken{{0, 3}, {1, 3}};  // row 1 does not connect to row 0
    const auto f = features_of({0, 4}), g = features_of({0, 4, 7, 9});
    EXPECT_FALSE(test::error_message([&] { dtw_banded(f, g, broken, {}); }, ErrorKind::usage).empty());
}

TEST(Align, IdenticalRecordingsGiveTheDiagonal) {
    Performance p;
    const Audio a = perform(piece(8, 20.0), 20.0, p);
    const Alignment al = align_audio(a, a, {});
    EXPECT_EQ(al.transposition, 0);
    EXPECT_DOUBLE_EQ(al.confidence, 1.0);
    for (double t : {0.0, 3.3, 10.0, 19.9}) EXPECT_NEAR(al.time_b_at(t), t, 0.021);
    EXPECT_EQ(al.path_sec.size(), static_cast<std::size_t>(a.duration_sec() * kAlignFrameRate) + 1);  // one row per frame of A
}

}  // namespace
}  // namespace mess
