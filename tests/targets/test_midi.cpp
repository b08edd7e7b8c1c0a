// The MIDI reader and MIDI targets on files written here with known content.
#include <cmath>

#include <gtest/gtest.h>

#include "mess/targets.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

using namespace mess;

using test::Track;
using test::smf;

TEST(Midi, TempoMapRunningStatusZeroVelocityOffAndTwoTracks) {
    Track conductor;  // format 1: tempo in track 0
    conductor.tempo(0, 500000);       // 120 BPM
    conductor.tempo(960, 1000000);    // after two beats: 60 BPM
    conductor.end();
    Track piano;
    piano.event(0, {0x90, 60, 100});  // t = 0
    piano.event(480, {64, 90});        // running status: note 64 on at 0.5 s
    piano.event(480, {60, 0});         // velocity 0 = note 60 off at 1.0 s
    piano.event(480, {0x80, 64, 0});   // note 64 off at 1.5 s... tempo changed at 1.0 s: 480 ticks = 1.0 s → 2.0 s
    piano.event(0, {0xb0, 64, 127});   // pedal down at 2.0 s
    piano.event(240, {0xb0, 64, 0});   // up at 2.5 s
    piano.event(0, {0xf0, 2, 0x7e, 0xf7});  // a SysEx, skipped
    piano.end();
    MidiPerformance m = parse_midi(smf(1, 480, {conductor, piano}), "t.mid");
    ASSERT_EQ(m.notes.size(), 2u);
    EXPECT_DOUBLE_EQ(m.notes[0].onset_sec, 0.0);
    EXPECT_DOUBLE_EQ(m.notes[0].offset_sec, 1.0);
    EXPECT_EQ(m.notes[0].velocity, 100);
    EXPECT_DOUBLE_EQ(m.notes[1].onset_sec, 0.5);
    EXPECT_DOUBLE_EQ(m.notes[1].offset_sec, 2.0);
    EXPECT_EQ(m.notes[1].pitch, 64);
    ASSERT_EQ(m.pedal.size(), 1u);
    EXPECT_DOUBLE_EQ(m.pedal[0].first, 2.0);
    EXPECT_DOUBLE_EQ(m.pedal[0].second, 2.5);
}

TEST(Midi, SmpteDivisionAndNotesLeftSounding) {
    Track t;
    t.event(0, {0x91, 70, 80});
    t.event(50, {0x91, 70, 80});      // the same pitch again, overlapping (FIFO pairing)
    t.event(50, {0x81, 70, 0});
    t.end(100);
    const int division = (0x100 - 25) << 8 | 40;  // 25 fps × 40 ticks: 1 ms per tick
    MidiPerformance m = parse_midi(smf(0, division, {t}), "s.mid");
    ASSERT_EQ(m.notes.size(), 2u);
    EXPECT_NEAR(m.notes[0].offset_sec, 0.1, 1e-12);  // the first one closes first
    EXPECT_NEAR(m.notes[1].onset_sec, 0.05, 1e-12);
    EXPECT_NEAR(m.notes[1].offset_sec, 0.2, 1e-12);  // closed at the end of the file
    EXPECT_EQ(m.notes[0].channel, 1);
}

TEST(Midi, MalformedFilesAreNamedWithTheirOffset) {
    Track t;
    t.event(0, {0x90, 60, 100});
    t.event(480, {0x80, 60, 0});
    t.end();
    const std::string good = smf(0, 480, {t});
    auto error_of = [](const std::string& bytes) { return test::error_message([&] { parse_midi(bytes, "bad.mid"); }); };
    EXPECT_NE(error_of("RIFF1234garbagegarbage").find("not a Standard MIDI File"), std::string::npos);
    EXPECT_NE(error_of(good.substr(0, good.size() - 3)).find("truncated"), std::string::npos);
    EXPECT_NE(error_of(smf(2, 480, {t})).find("format 2"), std::string::npos);
    // Found by fuzzing: an SMPTE division with 0 ticks per frame made every time infinite.
    std::string zero_ticks = good;
    zero_ticks[12] = static_cast<char>(0xE7);  // -25 frames per second
    zero_ticks[13] = 0;                        // 0 ticks per frame
    EXPECT_NE(error_of(zero_ticks).find("SMPTE time division"), std::string::npos);
    Track no_end;
    no_end.event(0, {0x90, 60, 100});
    EXPECT_NE(error_of(smf(0, 480, {no_end})).find("without end-of-track"), std::string::npos);
    Track long_vlq;
    long_vlq.bytes = std::string("\xff\xff\xff\xff\x7f\x90\x3c\x40", 8);
    long_vlq.end();
    EXPECT_NE(error_of(smf(0, 480, {long_vlq})).find("longer than 4 bytes"), std::string::npos);
    Track orphan;
    orphan.event(0, {60, 100});  // data byte, no status yet
    orphan.end();
    EXPECT_NE(error_of(smf(0, 480, {orphan})).find("running status"), std::string::npos);
    std::string wrong_count = good;
    wrong_count[11] = 2;  // announces 2 tracks
    EXPECT_NE(error_of(wrong_count).find("announces 2"), std::string::npos);
    EXPECT_NO_THROW(parse_midi(good, "good.mid"));
}

TEST(MidiTargets, KnownVelocitiesArticulationPedalAndTempo) {
    // 40 quarter notes at 120 BPM (0.5 s apart), each held half its beat; velocities cycle 40..85;
    // the pedal, pressed at 0 and never released, is then set to the first 10 s.
    Track t;
    t.tempo(0, 500000);
    t.event(0, {0xb0, 64, 127});
    for (int i = 0; i < 40; ++i) {
        t.event(i == 0 ? 0 : 240, {0x90, 60 + i % 12, 40 + 5 * (i % 10)});
        t.event(240, {0x80, 60 + i % 12, 0});
    }
    t.end();
    MidiPerformance m = parse_midi(smf(0, 480, {t}), "q.mid");
    ASSERT_EQ(m.notes.size(), 40u);
    ASSERT_EQ(m.pedal.size(), 1u);  // never released: held to the end of the file (the last note-off, 19.75 s)
    EXPECT_DOUBLE_EQ(m.pedal[0].second, 19.75);
    EXPECT_DOUBLE_EQ(m.end_sec, 19.75);
    m.pedal = {{0.0, 10.0}};
    TargetSet ts;
    add_midi_targets(m, 25.0, ts);
    EXPECT_EQ(ts.scalar("midi/available"), 1.0f);
    EXPECT_NEAR(ts.scalar("expression/velocity_mean"), 62.5, 1e-4);
    EXPECT_NEAR(ts.scalar("expression/velocity_range"), 45.0, 1e-4);
    EXPECT_NEAR(ts.scalar("expression/velocity_std"), std::sqrt(206.25), 1e-3);  // population std of 40..85 step 5
    EXPECT_NEAR(ts.scalar("expression/articulation_ratio"), 0.5, 1e-6);
    EXPECT_NEAR(ts.scalar("expression/rubato"), 0.0, 1e-9);              // perfectly steady
    EXPECT_NEAR(ts.scalar("expression/tempo_variability"), 0.0, 1e-6);
    EXPECT_NEAR(ts.scalar("expression/onset_timing_std"), 0.0, 1e-9);
    const auto& hist = ts.arrays.at("midi/articulation_hist");
    EXPECT_NEAR(hist[static_cast<std::size_t>(std::floor(0.5 / 1.5 * 16))], 1.0f, 1e-6f);  // every ratio is 0.5
    EXPECT_NEAR(ts.scalar("midi/pedal_ratio"), 10.0 / 30.0, 1e-6);       // 10 s of 30
    EXPECT_NEAR(ts.scalar("midi/ioi_std"), 0.0, 1e-6);
    const auto& tempo = ts.arrays.at("midi/perf_tempo");
    ASSERT_EQ(tempo.size(), 60u);
    EXPECT_NEAR(tempo[10], 1.0f, 1e-6f);  // log2(120 / 60)
}

TEST(MidiTargets, FewNotesGiveDefinedValues) {
    MidiPerformance m;
    m.notes = {{0.0, 0.4, 60, 70, 0}};
    TargetSet ts;
    add_midi_targets(m, 5.0, ts);
    EXPECT_FALSE(ts.arrays.count("expression/rubato"));  // needs 10 notes
    EXPECT_FALSE(ts.arrays.count("midi/velocity_std"));  // needs 2
    EXPECT_FALSE(ts.arrays.count("midi/perf_tempo"));    // needs 4 onsets
    for (float h : ts.arrays.at("midi/articulation_hist")) EXPECT_FLOAT_EQ(h, 1.0f / 16);
    EXPECT_EQ(ts.scalar("midi/ioi_std"), 0.0f);
}

TEST(MidiTargets, MidiIsFoundBesideTheAudioOrInSmdLayout) {
    test::TempDir dir;
    std::filesystem::create_directories(dir / "smd/wav-44");
    std::filesystem::create_directories(dir / "smd/midi");
    write_file_atomic(dir / "smd/wav-44/a.wav", "x");
    write_file_atomic(dir / "smd/wav-44/b.wav", "x");
    write_file_atomic(dir / "smd/wav-44/b.midi", "x");
    write_file_atomic(dir / "smd/midi/a.mid", "x");
    EXPECT_EQ(find_midi_for(dir / "smd/wav-44/a.wav"), dir / "smd/midi/a.mid");
    EXPECT_EQ(find_midi_for(dir / "smd/wav-44/b.wav"), dir / "smd/wav-44/b.midi");
    EXPECT_TRUE(find_midi_for(dir / "smd/wav-44/c.wav").empty());
}
