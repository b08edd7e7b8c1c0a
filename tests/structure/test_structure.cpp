// Structure: band novelty against dsp's full-matrix novelty, key names and profiles, synthetic pieces with
// a known modulation and climax, degenerate input (silence, 2 s, noise, one note), a real recording, JSON
// and roles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>

#include "mess/structure.hpp"
#include "support/support.hpp"

namespace mess {
namespace {

constexpr int kRate = 22050;

Audio mono(std::vector<float> samples) { return Audio{std::move(samples), kRate}; }

// Four-bar cadential progression I–IV–V7–I in the key with tonic `tonic` (MIDI), chords of `beat` seconds,
// repeated from `start` for `seconds`, with loudness scaled by gain(t).
void progression(std::vector<test::Note>& notes, int tonic, double start, double seconds, double beat,
                 const std::function<double(double)>& gain = [](double) { return 0.6; }) {
    const int chords[4][4] = {{0, 4, 7, 12}, {5, 9, 12, 17}, {7, 11, 14, 17}, {0, 4, 7, 12}};
    int k = 0;
    for (double t = start; t + beat <= start + seconds + 1e-9; t += beat, ++k) {
        for (int p : chords[k % 4]) notes.push_back({static_cast<double>(tonic + p), t, beat * 0.95, gain(t)});
        notes.push_back({static_cast<double>(tonic - 12 + chords[k % 4][0]), t, beat * 0.95, gain(t)});
    }
}

TEST(StructureNovelty, BandVersionMatchesFullMatrix) {
    std::mt19937 rng(7);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    dsp::Matrix f{120, 9, std::vector<float>(120 * 9)};
    for (auto& v : f.values) v = u(rng);
    for (int half : {1, 4, 10}) {
        const auto full = dsp::checkerboard_novelty(dsp::cosine_self_similarity(f), half);
        const auto band = band_checkerboard_novelty(f, half);
        ASSERT_EQ(full.size(), band.size());
        for (std::size_t t = 0; t < full.size(); ++t) EXPECT_NEAR(band[t], full[t], 1e-3 * (1 + std::fabs(full[t]))) << "half " << half << " t " << t;
    }
    EXPECT_EQ(test::error_message([&] { band_checkerboard_novelty(f, 0); }, ErrorKind::usage).empty(), false);
}

TEST(StructureKeys, NamesParseAndIntervals) {
    for (int k = 0; k < 24; ++k) EXPECT_EQ(parse_key(key_name(k)), k);
    EXPECT_EQ(key_name(6), "F# major");
    EXPECT_EQ(key_name(21), "A minor");
    EXPECT_EQ(parse_key("Db major"), 1);
    EXPECT_EQ(parse_key("c# minor"), 13);
    EXPECT_FALSE(test::error_message([] { parse_key("H major"); }).empty());
    EXPECT_FALSE(test::error_message([] { key_name(24); }, ErrorKind::usage).empty());
    EXPECT_EQ(key_interval(0, 7), -5);   // C → G: down a fourth
    EXPECT_EQ(key_interval(0, 6), 6);
    EXPECT_EQ(key_interval(12 + 9, 2), 5);  // A minor → D major
}

TEST(StructureKeys, ProfilesFindTheirOwnKey) {
    // Golden values: the Krumhansl–Kessler profile of a key correlates 1.0 with itself.
    const std::array<double, 12> c_major{6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
    double r = 0;
    EXPECT_EQ(best_key(c_major, &r), 0);
    EXPECT_NEAR(r, 1.0, 1e-12);
    // The G major scale, tonic and dominant weighted: G major.
    std::array<double, 12> g{};
    for (int pc : {7, 9, 11, 0, 2, 4, 6}) g[static_cast<std::size_t>(pc)] = 1;
    g[7] += 2, g[2] += 1;
    EXPECT_EQ(best_key(g), 7);
}

TEST(Structure, FindsATransposedRepeatAndItsInterval) {
    std::vector<test::Note> notes;
    progression(notes, 60, 0, 24, 0.6);   // C major
    progression(notes, 64, 24, 24, 0.6);  // E major: +4 at 24 s
    const Structure s = analyze_structure(mono(test::render_notes(notes, 48.5, kRate)));
    ASSERT_FALSE(s.keys.empty());
    EXPECT_EQ(s.keys.front().key, 0) << key_name(s.keys.front().key);
    ASSERT_EQ(s.modulations.size(), 1u);
    EXPECT_NEAR(s.modulations[0].time, 24.0, 3.0);
    EXPECT_EQ(s.modulations[0].interval, 4);
    EXPECT_EQ(s.modulations[0].to, 4);
    // The boundary of the repeat, labelled by repetition (A then its transposition A').
    ASSERT_GE(s.boundaries.size(), 3u);
    EXPECT_NEAR(s.boundaries[1], 24.0, 3.0);
    EXPECT_EQ(s.sections.front().label, "A");
    EXPECT_EQ(s.sections.back().label, "A'");
    // V7 → I arrivals in the local key are cadences.
    EXPECT_FALSE(s.cadences.empty());
    for (const auto& c : s.cadences) EXPECT_GT(c.strength, 0.0);
}

TEST(Structure, ClimaxOfASwell) {
    std::vector<test::Note> notes;
    progression(notes, 60, 0, 36, 0.5, [](double t) { return t < 22 ? 0.1 + 0.9 * t / 22 : 1.0 - 0.9 * (t - 22) / 14; });
    const Structure s = analyze_structure(mono(test::render_notes(notes, 36.5, kRate)));
    ASSERT_TRUE(s.climax.has_value());
    EXPECT_NEAR(s.climax->time, 22.0, 3.0);
    EXPECT_LE(s.climax->start, s.climax->time);
    EXPECT_GE(s.climax->end, s.climax->time);
}

// The boundaries and the climax weigh novelties of their own (docs/STRUCTURE.md: unit semitone vectors and a
// 12-s kernel find and place medley cuts better; the climax keeps chroma and timbre with a 10-s kernel): the
// climax's kernel width changes the climax curve and never the boundaries.
TEST(Structure, BoundaryAndClimaxNoveltiesAreTheirOwn) {
    std::vector<test::Note> notes;
    progression(notes, 60, 0, 20, 0.5);
    progression(notes, 63, 20, 20, 0.5, [](double) { return 0.9; });
    const StructureFeatures f = structure_features(mono(test::render_notes(notes, 40.5, kRate)));
    StructureParams p;
    const Structure s = analyze_structure(f, p);
    ASSERT_EQ(static_cast<std::int64_t>(s.novelty.size()), f.frames());
    EXPECT_NE(s.novelty, structure_novelty(f, p));
    EXPECT_EQ(s.boundaries, pick_boundaries(f, structure_novelty(f, p), p));
    p.climax_novelty_half_sec = 6;
    const Structure narrower = analyze_structure(f, p);
    EXPECT_NE(narrower.novelty, s.novelty);
    EXPECT_EQ(narrower.boundaries, s.boundaries);
    p.climax_novelty_half_sec = 0.2;
    EXPECT_NE(test::error_message([&] { analyze_structure(f, p); }, ErrorKind::usage).find("climax_novelty_half_sec"), std::string::npos);
    EXPECT_FALSE(test::error_message([&] { structure_novelty(f, StructureParams{}, 61.0); }, ErrorKind::usage).empty());
    StructureFeatures bare = f;
    bare.semitones = {};
    EXPECT_NE(test::error_message([&] { structure_novelty(bare, StructureParams{}); }, ErrorKind::usage).find("semitones"), std::string::npos);
}

// Two-stage boundaries: the novelty peak says which change, the section cost over unit semitone vectors where.
// An abrupt cut between two different pieces (as in the medleys of docs/STRUCTURE.md) at a time off any grid
// is placed within 0.5 s; place_sec outside 0..10 s is a usage error naming it.
TEST(Structure, BoundaryOfAnAbruptCutIsPlacedWithinHalfASecond) {
    std::vector<test::Note> notes;
    progression(notes, 60, 0, 17.3, 0.5);
    progression(notes, 66, 17.35, 21, 0.7, [](double) { return 0.5; });
    const Structure s = analyze_structure(mono(test::render_notes(notes, 38.5, kRate)));
    ASSERT_EQ(s.boundaries.size(), 3u);
    EXPECT_NEAR(s.boundaries[1], 17.35, 0.5);
    StructureParams p;
    p.place_sec = 11;
    EXPECT_NE(test::error_message([&] { p.validate(); }, ErrorKind::usage).find("place_sec"), std::string::npos);
    // A caller's novelty peaking at the first frames with no room to place (place_sec 0): defined boundaries, no crash.
    const StructureFeatures f = structure_features(mono(test::render_notes(notes, 38.5, kRate)));
    std::vector<float> edge(static_cast<std::size_t>(f.frames()), 0.0f);
    edge[0] = 1, edge[1] = 0.9f, edge[2] = 1;
    p.place_sec = 0;
    const std::vector<double> b = pick_boundaries(f, edge, p);
    ASSERT_GE(b.size(), 2u);
    EXPECT_EQ(b.front(), 0.0);
    EXPECT_NEAR(b.back(), f.duration_sec, 1e-9);
    EXPECT_TRUE(std::is_sorted(b.begin(), b.end()));
}

void expect_well_formed(const Structure& s, double duration) {
    ASSERT_GE(s.boundaries.size(), 2u);
    EXPECT_EQ(s.boundaries.front(), 0.0);
    EXPECT_NEAR(s.boundaries.back(), duration, 1e-6);
    ASSERT_EQ(s.sections.size(), s.boundaries.size() - 1);
    for (std::size_t i = 0; i < s.sections.size(); ++i) EXPECT_EQ(s.sections[i].start, s.boundaries[i]);
    if (s.climax) {
        EXPECT_TRUE(s.climax->time >= 0 && s.climax->time <= duration);
    }
}

TEST(StructureDegenerate, SilenceHasOneSectionAndNothingElse) {
    const Structure s = analyze_structure(mono(test::silence(20, kRate)));
    expect_well_formed(s, 20);
    EXPECT_EQ(s.sections.size(), 1u);
    EXPECT_EQ(s.sections[0].label, "A");
    EXPECT_TRUE(s.keys.empty());
    EXPECT_TRUE(s.modulations.empty());
    EXPECT_FALSE(s.climax.has_value());
    EXPECT_TRUE(s.cadences.empty());
}

TEST(StructureDegenerate, ShortNoiseAndOneNote) {
    const Structure two = analyze_structure(mono(test::chord({261.63, 329.63, 392.0}, 2.0, kRate)));
    expect_well_formed(two, 2.0);
    EXPECT_EQ(two.sections.size(), 1u);  // shorter than 2·min_section_sec
    EXPECT_TRUE(two.modulations.empty());

    const Structure noise = analyze_structure(mono(test::noise(30, kRate, 3)));
    expect_well_formed(noise, 30);
    EXPECT_TRUE(noise.keys.empty()) << key_name(noise.keys.front().key);
    EXPECT_TRUE(noise.modulations.empty());

    std::vector<test::Note> one{{69, 0.5, 19, 0.8}};  // A4 held
    const Structure note = analyze_structure(mono(test::render_notes(one, 20, kRate, {8, 1.0, 0.0})));
    expect_well_formed(note, 20);
    EXPECT_EQ(note.sections.size(), 1u);
    EXPECT_TRUE(note.modulations.empty());
    if (!note.keys.empty()) {
        EXPECT_EQ(note.keys[0].key % 12, 9) << key_name(note.keys[0].key);
    }

    EXPECT_FALSE(test::error_message([] { analyze_structure(Audio{{}, kRate}); }).empty());
    EXPECT_FALSE(test::error_message([] { analyze_structure(Audio{{0.1f, NAN, 0.2f}, kRate}); }).empty());
    StructureParams bad;
    bad.min_section_sec = 0;
    EXPECT_FALSE(test::error_message([&] { analyze_structure(mono(test::silence(3, kRate)), bad); }, ErrorKind::usage).empty());
}

TEST(Structure, RealRecording) {
    const Audio a = load_audio(test::kRealRecording);
    const Structure s = analyze_structure(a);
    expect_well_formed(s, a.duration_sec());
    ASSERT_TRUE(s.climax.has_value());
    EXPECT_EQ(s.novelty.size(), static_cast<std::size_t>(structure_features(a).frames()));
}

TEST(Structure, JsonRoundTripAndRoles) {
    Structure s;
    s.duration_sec = 60;
    s.boundaries = {0, 20, 40, 60};
    s.sections = {{0, 20, "A"}, {20, 40, "B"}, {40, 60, "A'"}};
    s.keys = {{0, 30, 0}, {30, 60, 19}};
    s.modulations = {{30, 0, 19, -5}};
    s.climax = Climax{45, 42, 48, 0.9};
    s.cadences = {{19.5, 0.6, 0}, {59, 0.4, 19}};
    const nlohmann::json j = structure_to_json(s);
    EXPECT_EQ(j["keys"][1]["key"], "G minor");
    EXPECT_EQ(j["modulations"][0]["from"], "C major");
    EXPECT_EQ(structure_to_json(structure_from_json(j)), j);
    test::TempDir dir;
    write_structure_file(dir.path() / "structure" / "t.json", s);
    EXPECT_EQ(structure_to_json(read_structure_file(dir.path() / "structure" / "t.json")), j);
    EXPECT_FALSE(test::error_message([&] { read_structure_file(dir.path() / "missing.json"); }).empty());
    nlohmann::json broken = j;
    broken.erase("sections");
    EXPECT_NE(test::error_message([&] { structure_from_json(broken); }).find("sections"), std::string::npos);

    EXPECT_EQ(role_times(s, Role::boundary), (std::vector<double>{20, 40}));
    EXPECT_EQ(role_times(s, parse_role("climax")), (std::vector<double>{45}));
    EXPECT_EQ(role_times(s, Role::modulation), (std::vector<double>{30}));
    const std::vector<std::array<double, 2>> windows{{0, 5}, {17.5, 22.5}, {42.5, 47.5}, {55, 60}};
    EXPECT_EQ(window_roles(s, Role::cadence, windows), (std::vector<bool>{false, true, false, true}));
    EXPECT_EQ(window_roles(s, Role::climax, windows), (std::vector<bool>{false, false, true, false}));
    EXPECT_FALSE(test::error_message([] { parse_role("verse"); }, ErrorKind::usage).empty());
}

}  // namespace
}  // namespace mess
