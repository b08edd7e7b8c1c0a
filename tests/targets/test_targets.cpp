// Proxy targets on synthesized signals with known answers, degenerate input and a real recording.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "mess/targets.hpp"
#include "../../src/targets/curves.hpp"  // the definitions under test (internal to the module)
#include "../../src/targets/stats.hpp"
#include "mess/dsp.hpp"
#include "support/support.hpp"

using namespace mess;

namespace {

Audio at24k(std::vector<float> x) { return Audio{std::move(x), 24000}; }

// Decaying noise bursts at `bpm`, 24 kHz.
Audio clicks(double bpm, double seconds) {
    std::vector<float> y(static_cast<std::size_t>(seconds * 24000), 0.0f);
    auto burst = test::noise(0.03, 24000, 3, 0.8f);
    for (double t = 0.1; t < seconds - 0.05; t += 60.0 / bpm)
        for (std::size_t i = 0; i < burst.size(); ++i)
            y[static_cast<std::size_t>(t * 24000) + i] += burst[i] * std::exp(-static_cast<float>(i) / 150.0f);
    return at24k(y);
}

// A tone whose amplitude ramps from `from` to `to`.
Audio ramp(double from, double to, double seconds) {
    auto y = test::tone(330.0, seconds, 24000, 1.0f);
    for (std::size_t i = 0; i < y.size(); ++i) y[i] *= static_cast<float>(from + (to - from) * static_cast<double>(i) / static_cast<double>(y.size()));
    return at24k(y);
}

// Only what a test reads: scalars, plus curves and per-window values when asked (the 30-s curve analysis costs
// as much as the rest of a short input's targets).
TargetParams only(bool curves, bool per_window) {
    TargetParams p;
    p.curves = curves;
    p.per_window = per_window;
    return p;
}

void expect_all_finite(const TargetSet& t) {
    for (const auto& [name, values] : t.arrays)
        for (float v : values) ASSERT_TRUE(std::isfinite(v)) << name;
}

}  // namespace

TEST(Targets, EveryDocumentedMemberIsPresentWithItsShape) {
    TargetSet t = compute_audio_targets(clicks(120, 12.0), {});
    for (const auto& n : scalar_target_names()) ASSERT_EQ(t.arrays.at(n).size(), 1u) << n;
    for (const auto& n : curve_target_names()) ASSERT_EQ(t.arrays.at(n).size(), 60u) << n;
    const auto windows = plan_windows(12 * 24000);
    ASSERT_EQ(t.arrays.at("window/start_sec").size(), windows.size());
    for (std::size_t i = 0; i < windows.size(); ++i) EXPECT_FLOAT_EQ(t.arrays.at("window/start_sec")[i], static_cast<float>(windows[i].start_sec));
    for (const auto& n : window_target_names())
        EXPECT_EQ(t.arrays.at("window/" + n.substr(n.find('/') + 1)).size(), windows.size()) << n;
    EXPECT_EQ(t.arrays.size(), 16u + 5u + 11u + 2u);
    expect_all_finite(t);
}

TEST(Targets, TempoAndOnsetDensityOfClickTracks) {
    for (double bpm : {90.0, 120.0, 150.0}) {
        TargetSet t = compute_audio_targets(clicks(bpm, 20.0), only(true, false));
        EXPECT_NEAR(t.scalar("rhythm/tempo_refined"), bpm, 0.02 * bpm) << bpm;
        // librosa's integer lags at 46.9 frames/s: the nearest lag's BPM (within half a lag step, ≤ 3.3 %).
        const double lag = 60.0 * 24000 / (512 * bpm);
        EXPECT_NEAR(t.scalar("rhythm/tempo"), 60.0 * 24000 / (512 * std::round(lag)), 1e-3) << bpm;
        EXPECT_NEAR(t.scalar("rhythm/onset_density"), bpm / 60.0, 0.15 * bpm / 60.0) << bpm;
        const auto& local = t.arrays.at("curves/local_tempo");  // log2(BPM / 60), integer tempogram lags
        EXPECT_NEAR(local[30], std::log2(bpm / 60.0), 0.06) << bpm;
    }
}

TEST(Targets, CrescendoAndDiminuendo) {
    TargetSet up = compute_audio_targets(ramp(0.05, 0.8, 10.0), only(true, false));
    TargetSet down = compute_audio_targets(ramp(0.8, 0.05, 10.0), only(false, false));
    EXPECT_GT(up.scalar("dynamics/crescendo_strength"), 5 * up.scalar("dynamics/diminuendo_strength"));
    EXPECT_GT(down.scalar("dynamics/diminuendo_strength"), 5 * down.scalar("dynamics/crescendo_strength"));
    // 10 s of audio, zero-padded to the curves' 30 s: the arc peaks before frame 20, and the silence is its floor.
    const auto& arc = up.arrays.at("curves/dynamic_arc");
    EXPECT_LT(arc.front(), arc[16]);
    EXPECT_FLOAT_EQ(*std::max_element(arc.begin() + 10, arc.begin() + 20), 1.0f);
    for (std::size_t f = 32; f < arc.size(); ++f) EXPECT_NEAR(arc[f], 0.0f, 1e-3) << f;  // beyond the smoothing's reach
    EXPECT_NEAR(up.scalar("dynamics/dynamic_range"), 0.75 / std::sqrt(2.0), 0.05);  // RMS of a sine
}

// Golden values by hand from the predecessor's definitions (reference/predecessor.md §2.6.2 and its code:
// the longest strictly monotone run of the smoothed RMS, |Δ| × steps, the first on ties; |ΔdB| as NumPy's
// diff indexed at each onset frame).
TEST(TargetsDetail, LongestRunAndForwardStepGolden) {
    using targets_detail::forward_step_at;
    using targets_detail::longest_run_strength;
    // Rises: 0→5 (1 step, score 5), then 1→2→3 (2 steps, |3 − 1| × 2 = 4): the longest run wins, not the larger score.
    const std::vector<float> x = {0, 5, 1, 2, 3, 3, 2, 1, 0};
    EXPECT_DOUBLE_EQ(longest_run_strength(x, true), 4.0);
    EXPECT_DOUBLE_EQ(longest_run_strength(x, false), 9.0);  // 5→1 (1 step) vs 3→2→1→0 (3 steps): 3 × 3
    EXPECT_DOUBLE_EQ(longest_run_strength({1, 1, 1}, true), 0.0);
    EXPECT_DOUBLE_EQ(longest_run_strength({}, false), 0.0);
    EXPECT_DOUBLE_EQ(longest_run_strength({0, 2, 0, 1}, true), 2.0);  // two runs of 1 step: the first
    const std::vector<double> db = {-60, -20, -10, -12, -40};
    EXPECT_DOUBLE_EQ(forward_step_at(db, {0, 2}), (40.0 + 2.0) / 2);
    EXPECT_DOUBLE_EQ(forward_step_at(db, {4}), 0.0);  // no step after the last frame
    EXPECT_DOUBLE_EQ(forward_step_at(db, {}), 0.0);
}

TEST(Targets, HarmonicComplexityOrdersToneChordAndNoise) {
    const auto scalars = only(false, false);
    const double tone = compute_audio_targets(at24k(test::tone(440.0, 4.0, 24000)), scalars).scalar("harmony/harmonic_complexity");
    const double chord = compute_audio_targets(at24k(test::chord({261.63, 329.63, 392.0}, 4.0, 24000)), scalars).scalar("harmony/harmonic_complexity");
    const double noise = compute_audio_targets(at24k(test::noise(4.0, 24000, 9)), scalars).scalar("harmony/harmonic_complexity");
    EXPECT_LT(tone, chord);
    EXPECT_LT(chord, noise);
    EXPECT_NEAR(noise, std::log(12.0), 0.1);  // flat over the 12 classes
}

// A window's harmonic complexity reads the track's chroma (one constant-Q analysis per track): within 1 % of
// the window's own chroma_cqt on music, here I–vi–IV–V in 0.5-s chords for 6 s, then in another key (the
// window's own analysis also hears its cut edges; the NumPy reference gives ≤ 0.4 % on its 20-s progression,
// see include/mess/targets.hpp). Windows start at 0, 2.5, 5 and 7 s of 12 s.
TEST(Targets, WindowHarmonicComplexityFromTheTracksChroma) {
    std::vector<test::Note> notes;
    const int chords[4][3] = {{60, 64, 67}, {57, 60, 64}, {53, 57, 60}, {55, 59, 62}};
    for (int i = 0; i < 24; ++i)
        for (int p : chords[i % 4]) notes.push_back({static_cast<double>(p + (i < 12 ? 0 : 3)), 0.5 * i, 0.5, 0.7});
    const auto y = test::render_notes(notes, 12.0, 24000);
    const TargetSet t = compute_audio_targets(at24k(y), only(false, true));
    const auto& starts = t.arrays.at("window/start_sec");
    const auto& shared = t.arrays.at("window/harmonic_complexity");
    ASSERT_EQ(starts.size(), 4u);
    for (std::size_t i = 0; i < starts.size(); ++i) {
        const auto from = static_cast<std::ptrdiff_t>(std::lround(starts[i] * 24000));
        const Audio w = at24k(std::vector<float>(y.begin() + from, y.begin() + from + 5 * 24000));
        const double own = compute_audio_targets(w, only(false, false)).scalar("harmony/harmonic_complexity");
        EXPECT_NEAR(shared[i], own, 0.01 * own) << starts[i];
    }
}

TEST(Targets, SilenceShortAndInvalidInput) {
    TargetSet s = compute_audio_targets(at24k(test::silence(8.0, 24000)), {});
    expect_all_finite(s);
    EXPECT_EQ(s.scalar("rhythm/tempo"), 0.0f);
    EXPECT_EQ(s.scalar("rhythm/tempo_refined"), 0.0f);
    EXPECT_EQ(s.scalar("rhythm/onset_density"), 0.0f);
    for (float v : s.arrays.at("curves/local_tempo")) EXPECT_EQ(v, 1.0f);  // 120 BPM when nothing is known
    for (const char* c : {"curves/tis_tension", "curves/dynamic_arc", "curves/centroid_trajectory", "curves/novelty"})
        for (float v : s.arrays.at(c)) EXPECT_EQ(v, 0.0f) << c;
    TargetSet half = compute_audio_targets(at24k(test::tone(440.0, 0.5, 24000)), {});
    expect_all_finite(half);
    EXPECT_EQ(half.arrays.at("window/start_sec").size(), 1u);
    EXPECT_EQ(half.scalar("phrasing/num_phrases"), 3.0f);  // k = 4 segments even for short audio
    TargetSet dc = compute_audio_targets(at24k(std::vector<float>(48000, 0.3f)), {});
    expect_all_finite(dc);
    auto nan = test::tone(440.0, 1.0, 24000);
    nan[5] = std::nanf("");
    EXPECT_THROW(compute_audio_targets(at24k(nan), {}), Error);
    EXPECT_THROW(compute_audio_targets(Audio{test::tone(440.0, 1.0, 44100), 44100}, {}), Error);
    EXPECT_THROW(TargetSet{}.scalar("rhythm/tempo"), Error);
}

TEST(Targets, RealRecordingAndFileRoundTrip) {
    TargetSet t = compute_audio_targets(load_audio(test::kRealRecording), {});
    expect_all_finite(t);
    EXPECT_NEAR(t.scalar("rhythm/tempo_refined"), 60.0 / 1.02, 2.0);  // the alarm's beep pairs repeat every ~1.02 s
    EXPECT_NEAR(t.scalar("rhythm/tempo"), 60.0 / 1.02, 2.5);
    EXPECT_EQ(t.arrays.at("window/start_sec").size(), 2u);
    test::TempDir dir;
    write_targets(dir / "x.targets.npz", t);
    TargetSet back = read_targets(dir / "x.targets.npz");
    EXPECT_EQ(back.arrays, t.arrays);
    NpzMembers bad = {{"curves/novelty", NpyArray::from(std::vector<float>(7, 0.0f), {7})}};
    write_npz(dir / "bad.npz", bad, true);
    EXPECT_THROW(read_targets(dir / "bad.npz"), Error);
}


TEST(Targets, FilesRecordTheAudioStampApartFromTheTargets) {
    test::TempDir dir;
    TargetSet t;
    t.arrays["rhythm/tempo"] = {120.0f};
    t.source = FileStamp{44'100'000'123, 1'700'000'000'123'456'789};  // beyond float32 and float64 precision
    write_targets(dir / "s.targets.npz", t);
    const TargetSet back = read_targets(dir / "s.targets.npz");
    EXPECT_EQ(back.source, t.source);
    EXPECT_EQ(back.arrays, t.arrays);  // the stamp is not a target
    const NpzMembers raw = read_npz(dir / "s.targets.npz");
    EXPECT_EQ(raw.at("source/mtime_ns").describe(), "int64 [1]");
    EXPECT_EQ(raw.at("source/size_bytes").view<std::int64_t>()[0], 44'100'000'123);

    t.source.reset();  // as files from before stamps: no source
    write_targets(dir / "old.targets.npz", t);
    EXPECT_FALSE(read_targets(dir / "old.targets.npz").source.has_value());

    NpzMembers half = {{"source/size_bytes", NpyArray::from(std::vector<std::int64_t>{5}, {1})}};
    write_npz(dir / "half.npz", half, true);
    EXPECT_NE(test::error_message([&] { read_targets(dir / "half.npz"); }).find("'source/mtime_ns' is missing"), std::string::npos);
    NpzMembers wrong = {{"source/size_bytes", NpyArray::from(std::vector<float>{5}, {1})},
                        {"source/mtime_ns", NpyArray::from(std::vector<std::int64_t>{5}, {1})}};
    write_npz(dir / "wrong.npz", wrong, true);
    EXPECT_NE(test::error_message([&] { read_targets(dir / "wrong.npz"); }).find("expected int64 [1]"), std::string::npos);
    TargetSet clash;
    clash.arrays["source/size_bytes"] = {1.0f};
    EXPECT_THROW(write_targets(dir / "c.npz", clash), Error);
}

TEST(Targets, DamagedFilesAreErrorsNamingTheFile) {
    test::TempDir dir;
    TargetSet t;
    t.arrays["curves/novelty"] = std::vector<float>(60, 0.25f);
    t.arrays["rhythm/tempo"] = {100.0f};
    write_targets(dir / "t.targets.npz", t);
    const std::string bytes = read_file(dir / "t.targets.npz");
    for (std::size_t keep : {std::size_t{0}, std::size_t{30}, bytes.size() / 2, bytes.size() - 10}) {
        write_file_atomic(dir / "cut.targets.npz", bytes.substr(0, keep));
        const std::string why = test::error_message([&] { read_targets(dir / "cut.targets.npz"); });
        EXPECT_NE(why.find("cut.targets.npz"), std::string::npos) << keep << ": " << why;
    }
}

// The targets that read librosa's chroma_cqt against an independent NumPy implementation of the predecessor's
// definitions (tests/fixtures/targets/make_chroma_targets.py).
TEST(TargetsGolden, ChromaTargetsMatchNumPy) {
    const NpzMembers g = read_npz(std::filesystem::path(MESS_FIXTURES_DIR) / "targets" / "chroma_targets.npz");
    auto ref = [&](const char* name) { return g.at(name).to_float32(); };
    TargetParams whole;
    whole.per_window = false;
    whole.curves = false;
    const TargetSet t = compute_audio_targets(at24k(ref("y24")), whole);
    EXPECT_NEAR(t.scalar("harmony/harmonic_complexity"), ref("harmonic_complexity")[0], 1e-4);
    EXPECT_NEAR(t.scalar("phrasing/phrase_regularity"), ref("phrase_regularity")[0], 1e-4);
    auto y = ref("y22");
    y.resize(30 * 22050, 0.0f);
    const double tuning = dsp::estimate_tuning(y, 22050, 36);
    EXPECT_NEAR(tuning, ref("tuning22")[0], 1e-9);
    const auto tension = targets_detail::tis_tension_curve(y, tuning), novelty = targets_detail::novelty_curve(y, tuning);
    const auto want_t = ref("tis_tension"), want_n = ref("novelty");
    ASSERT_EQ(tension.size(), 60u);
    ASSERT_EQ(novelty.size(), 60u);
    for (std::size_t f = 0; f < 60; ++f) {
        EXPECT_NEAR(tension[f], want_t[f], 1e-4) << f;
        EXPECT_NEAR(novelty[f], want_n[f], 1e-4) << f;
    }
}
