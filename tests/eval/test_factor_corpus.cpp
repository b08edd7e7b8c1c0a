// Factor corpora (`mess corpus render --factors`): absolute values — two pieces at different tempos and
// levels rendered on the grid reach the same median inter-onset interval, mean velocity and note length
// per value, and their base renderings the same sounding level; a strummed chord is one onset; crescendo
// and diminuendo are hairpins that start again every 5 s, followed by a loud melody as well; a piece without a tempo is skipped and
// reported; bad parameters refused.
#include <algorithm>
#include <filesystem>

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/audio.hpp"
#include "mess/eval.hpp"
#include "mess/targets.hpp"
#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;

namespace mess {
namespace {

// A melody of `n` notes each `ticks` long (480 per quarter at `us_per_quarter`), velocities alternating
// `vel` and vel/2, with a held bass note under every fourth.
std::string piece(int n, std::uint32_t ticks, std::uint32_t us_per_quarter, int vel) {
    test::Track t;
    t.tempo(0, us_per_quarter);
    for (int i = 0; i < n; ++i) {
        t.event(0, {0x90, 60 + (i * 5) % 12, i % 2 ? vel / 2 : vel});
        t.event(static_cast<std::uint32_t>(ticks), {0x80, 60 + (i * 5) % 12, 0});
    }
    t.end();
    return test::smf(0, 480, {t});
}

// `n` chords every `ticks`, each rolled upwards as 4 notes 35 ms apart (a strum), at 120 BPM.
std::string strummed(int n, std::uint32_t ticks, int vel) {
    test::Track t;
    t.tempo(0, 500000);
    constexpr std::uint32_t kRoll = 34;  // ticks: 35 ms at 480 per quarter, 120 BPM
    for (int i = 0; i < n; ++i) {
        for (int k = 0; k < 4; ++k) t.event(k == 0 ? 0 : kRoll, {0x90, 48 + 4 * k, vel});
        t.event(ticks - 3 * kRoll, {0x80, 48, 0});
        for (int k = 1; k < 4; ++k) t.event(0, {0x80, 48 + 4 * k, 0});
    }
    t.end();
    return test::smf(0, 480, {t});
}

// A loud melody (velocity 120, one note a beat, channel 0) over a soft accompaniment (30, four notes a
// beat, channel 1), `n` beats at 120 BPM: the melody is 2.5 × the piece's mean velocity.
std::string melody_over_accompaniment(int n) {
    test::Track t;
    t.tempo(0, 500000);
    for (int i = 0; i < n; ++i) {
        t.event(0, {0x90, 72 + (i * 5) % 12, 120});
        for (int k = 0; k < 4; ++k) {
            t.event(0, {0x91, 48 + 4 * k, 30});
            t.event(120, {0x81, 48 + 4 * k, 0});
        }
        t.event(0, {0x80, 72 + (i * 5) % 12, 0});
    }
    t.end();
    return test::smf(0, 480, {t});
}

// The RMS level (dBFS) of a WAV's frames within 40 dB of its loudest (2048-sample frames).
double sounding_level_db(const fs::path& wav) {
    const Audio a = decode_audio(wav);
    std::vector<double> energy;
    for (std::size_t i = 0; i + 2048 <= a.samples.size(); i += 2048) {
        double e = 0;
        for (std::size_t k = i; k < i + 2048; ++k) e += static_cast<double>(a.samples[k]) * a.samples[k];
        energy.push_back(e / 2048);
    }
    const double top = *std::max_element(energy.begin(), energy.end());
    double sum = 0, count = 0;
    for (double e : energy)
        if (e >= top * 1e-4) sum += e, ++count;
    return 10 * std::log10(sum / count);
}

struct Played {
    double median_ioi = 0, mean_velocity = 0, length_over_ioi = 0;
};

// What a rendered MIDI file of one-note-at-a-time melodies plays: the median interval between onsets,
// the mean velocity, the median of note length over the time to the next onset.
Played played(const fs::path& midi) {
    const MidiPerformance m = read_midi(midi);
    std::vector<double> ioi, ratio;
    double vel = 0;
    for (std::size_t i = 0; i < m.notes.size(); ++i) {
        vel += m.notes[i].velocity / static_cast<double>(m.notes.size());
        if (i + 1 == m.notes.size()) continue;
        ioi.push_back(m.notes[i + 1].onset_sec - m.notes[i].onset_sec);
        ratio.push_back((m.notes[i].offset_sec - m.notes[i].onset_sec) / ioi.back());
    }
    std::sort(ioi.begin(), ioi.end());
    std::sort(ratio.begin(), ratio.end());
    return {ioi[ioi.size() / 2], vel, ratio[ratio.size() / 2]};
}

TEST(FactorCorpus, ValuesAreAbsoluteAcrossPieces) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    // Piece a: eighths at 120 BPM (0.25 s apart), loud; piece b: quarters at 80 BPM (0.75 s apart), soft.
    write_file_atomic(dir / "midi/a.mid", piece(24, 240, 500000, 100));
    write_file_atomic(dir / "midi/b.mid", piece(12, 480, 750000, 40));
    write_file_atomic(dir / "midi/chord.mid", piece(1, 960, 500000, 80));  // one onset: no tempo
    FactorCorpusParams p;
    p.factors = {"tempo", "dynamics", "articulation"};
    p.max_seconds = 6;
    p.sample_rate = 8000;
    const CorpusReport r = render_factor_corpus({dir / "midi/a.mid", dir / "midi/b.mid", dir / "midi/chord.mid"}, dir / "out", p);
    EXPECT_EQ(r.pieces, 2);
    ASSERT_EQ(r.skipped.size(), 1u);
    EXPECT_NE(r.skipped[0].second.find("no tempo"), std::string::npos) << r.skipped[0].second;
    const auto labels = nlohmann::json::parse(read_file(dir / "out/labels.json"));
    std::map<std::string, std::vector<Played>> by_value;  // "<factor>-<value>" → both pieces
    for (const auto& it : labels["items"]) {
        by_value[it["factor"].get<std::string>() + "-" + it["value"].get<std::string>()].push_back(played(dir / "out" / it["midi"].get<std::string>()));
        EXPECT_TRUE(it.contains("absolute")) << it.dump();
    }
    ASSERT_EQ(by_value.size(), 11u);  // base + 4 tempos + 4 dynamics + 2 articulations
    for (const auto& [value, pieces] : by_value) {
        ASSERT_EQ(pieces.size(), 2u) << value;
        // Both pieces play every value alike (the pieces' own tempos differ ×3, their levels ×2.5).
        EXPECT_NEAR(pieces[0].median_ioi, pieces[1].median_ioi, 0.01) << value;
        // Levels match, hairpins too although the pieces last 9 s and 3 s (hairpins of 5 s cut short: the gain
        // brings their mean to the setting's, 72.5, down as well as up).
        const bool ramp = value == "dynamics-crescendo" || value == "dynamics-diminuendo";
        if (value.rfind("dynamics-", 0) == 0 || value == "base-base") {
            EXPECT_NEAR(pieces[0].mean_velocity, pieces[1].mean_velocity, 2.0) << value;
        }
        if (ramp) {
            EXPECT_NEAR(pieces[0].mean_velocity, 72.5, 1.5) << value;
            EXPECT_NEAR(pieces[1].mean_velocity, 72.5, 1.5) << value;
        }
        EXPECT_NEAR(pieces[0].length_over_ioi, pieces[1].length_over_ioi, 0.03) << value;
    }
    // The values themselves: beats per minute of the median IOI, mean velocity, note length over IOI.
    EXPECT_NEAR(by_value["base-base"][0].median_ioi, 60.0 / 160, 0.01);
    EXPECT_NEAR(by_value["tempo-250"][1].median_ioi, 60.0 / 250, 0.01);
    EXPECT_NEAR(by_value["tempo-100"][0].median_ioi, 60.0 / 100, 0.01);
    EXPECT_NEAR(by_value["base-base"][1].mean_velocity, 72, 1.5);
    EXPECT_NEAR(by_value["dynamics-soft"][0].mean_velocity, 40, 1.5);
    EXPECT_NEAR(by_value["dynamics-loud"][1].mean_velocity, 110, 1.5);
    EXPECT_NEAR(by_value["base-base"][0].length_over_ioi, 0.85, 0.03);
    EXPECT_NEAR(by_value["articulation-staccato"][1].length_over_ioi, 0.3, 0.03);
    EXPECT_NEAR(by_value["articulation-legato"][0].length_over_ioi, 1.25, 0.03);
    // Each piece's base rendering sounds at −26 dBFS (their velocities and textures differ), and the piece's
    // other renderings keep their level relative to it: soft below, loud above.
    std::map<std::string, double> level;
    for (const auto& it : labels["items"])
        level[it["id"].get<std::string>()] = sounding_level_db(dir / "out" / it["file"].get<std::string>());
    EXPECT_NEAR(level["a__base"], -26, 0.5);
    EXPECT_NEAR(level["b__base"], -26, 0.5);
    for (const char* w : {"a", "b"}) {
        EXPECT_LT(level[fmt::format("{}__dynamics-soft", w)], level[fmt::format("{}__base", w)] - 4) << w;
        EXPECT_GT(level[fmt::format("{}__dynamics-loud", w)], level[fmt::format("{}__base", w)] + 3) << w;
    }
}

TEST(FactorCorpus, StrumIsOneOnsetAndHairpinsRepeat) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    // Chords strummed over 105 ms, one every 0.5 s (480 ticks at 120 BPM); 20 s become 15 s at 160 "BPM".
    write_file_atomic(dir / "midi/strum.mid", strummed(40, 480, 80));
    FactorCorpusParams p;
    p.factors = {"dynamics"};
    p.max_seconds = 20;
    p.sample_rate = 8000;
    render_factor_corpus({dir / "midi/strum.mid"}, dir / "out", p);
    const auto labels = nlohmann::json::parse(read_file(dir / "out/labels.json"));
    for (const auto& it : labels["items"]) {
        // The piece's beat is its chords' (0.5 s), not the 35 ms inside a strum: at 160 "BPM" a chord
        // every 0.375 s.
        EXPECT_NEAR(it["source_median_ioi_sec"].get<double>(), 0.5, 0.01);
        if (it["value"] != "crescendo" && it["value"] != "diminuendo") continue;
        EXPECT_EQ(it["absolute"]["hairpin_sec"].get<double>(), 5.0);
        // The chords' velocity rises (crescendo) or falls through each 5-s hairpin and starts again.
        const MidiPerformance m = read_midi(dir / "out" / it["midi"].get<std::string>());
        auto mean_velocity = [&](double from, double to) {
            double sum = 0, n = 0;
            for (const MidiNote& note : m.notes)
                if (note.onset_sec >= from && note.onset_sec < to) sum += note.velocity, ++n;
            return sum / n;
        };
        const double sign = it["value"] == "crescendo" ? 1 : -1;
        EXPECT_GT(sign * (mean_velocity(3.5, 5) - mean_velocity(0, 1.5)), 40) << it["id"];
        EXPECT_GT(sign * (mean_velocity(8.5, 10) - mean_velocity(5, 6.5)), 40) << it["id"];
        EXPECT_GT(sign * (mean_velocity(3.5, 5) - mean_velocity(5, 6.5)), 40) << it["id"];  // starts again at 5 s
    }
}

TEST(FactorCorpus, LoudVoicesFollowTheHairpin) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/tune.mid", melody_over_accompaniment(20));
    FactorCorpusParams p;
    p.factors = {"dynamics"};
    p.max_seconds = 8;  // a melody note every 1.5 rendered seconds (the accompaniment's 0.125 s is the beat: × 3)
    p.sample_rate = 8000;
    render_factor_corpus({dir / "midi/tune.mid"}, dir / "out", p);
    const auto labels = nlohmann::json::parse(read_file(dir / "out/labels.json"));
    for (const auto& it : labels["items"]) {
        const std::string value = it["value"];
        // At 2.5 × the mean, the melody would pass 127 at 72 (base) and above: its ratio is compressed.
        EXPECT_EQ(it["velocity_balance"].get<double>() < 1, value != "soft") << value;
        if (value != "crescendo" && value != "diminuendo") continue;
        const MidiPerformance m = read_midi(dir / "out" / it["midi"].get<std::string>());
        auto melody_velocity = [&](double from, double to) {
            double sum = 0, count = 0, at_top = 0;
            for (const MidiNote& note : m.notes)
                if (note.channel == 0 && note.onset_sec >= from && note.onset_sec < to)
                    sum += note.velocity, ++count, at_top += note.velocity >= 127;
            EXPECT_LE(at_top, 1) << value << " melody stuck at 127 in " << from << ".." << to;
            return sum / count;
        };
        const double sign = value == "crescendo" ? 1 : -1;
        // Uncompressed, the melody would sit at 127 from a third of the way through each hairpin.
        EXPECT_GT(sign * (melody_velocity(3.5, 5) - melody_velocity(0, 1.5)), 40) << value;
        EXPECT_GT(sign * (melody_velocity(8.5, 10) - melody_velocity(5, 6.5)), 40) << value;
    }
}

TEST(FactorCorpus, BadParametersAndNoUsablePiece) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/chord.mid", piece(1, 960, 500000, 80));
    FactorCorpusParams p;
    p.max_seconds = 4;
    p.sample_rate = 8000;
    EXPECT_THROW(render_factor_corpus({dir / "midi/chord.mid"}, dir / "out", p), Error);  // nothing renders
    p.factors = {"tempo", "swing"};
    EXPECT_THROW(render_factor_corpus({dir / "midi/chord.mid"}, dir / "out2", p), Error);
    p.factors = {"tempo"};
    p.max_seconds = 0;
    EXPECT_THROW(render_factor_corpus({dir / "midi/chord.mid"}, dir / "out3", p), Error);
}

}  // namespace
}  // namespace mess
