// `mess targets` as a user runs it, and the file as NumPy reads it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

TEST(TargetsIntegration, NumpyLoadsPlainArraysAndTheCliSkipsBadFiles) {
    test::TempDir dir;
    std::filesystem::create_directories(dir / "audio");
    std::filesystem::copy_file(test::kRealRecording, dir / "audio/alarm.oga");
    write_file_atomic(dir / "audio/broken.wav", "RIFF....WAVEjunk");
    test::Track t;  // 12 notes beside the recording: alarm.mid
    for (int i = 0; i < 12; ++i) {
        t.event(i == 0 ? 0 : 240, {0x90, 72, 30 + 5 * i});
        t.event(240, {0x80, 72, 0});
    }
    t.end();
    write_file_atomic(dir / "audio/alarm.mid", test::smf(0, 480, {t}));
    const std::string cmd = std::string(MESS_BINARY) + " --data-root " + test::quote((dir / "data").string()) +
                            " targets --json --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id t 2>/dev/null";
    auto r = test::run_command(cmd);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["computed"], 1);
    EXPECT_EQ(j["failed"].size(), 1u);
    EXPECT_EQ(j["with_midi"], 1);
    auto py = test::run_command(std::string(MESS_PYTHON) + " -c " +
                                test::quote("import numpy as np, sys\n"
                                            "z = np.load(sys.argv[1], allow_pickle=False)\n"
                                            "assert z['curves/tis_tension'].shape == (60,) and z['rhythm/tempo'].shape == (1,)\n"
                                            "assert z['midi/available'][0] == 1 and abs(z['expression/velocity_mean'][0] - 57.5) < 1e-4\n"
                                            "print(len(z.files))\n") +
                                " " + test::quote((dir / "data/proxy_targets/t/alarm.targets.npz").string()) + " 2>&1");
    EXPECT_EQ(py.exit_code, 0) << py.out;
    EXPECT_NE(py.out.find("49"), std::string::npos) << py.out;  // 34 audio, midi/available, 12 MIDI, 2 source members
    auto again = test::run_command(cmd);  // existing files are kept
    EXPECT_EQ(nlohmann::json::parse(again.out)["cached"], 1);
}

namespace {

// `mess targets` on generated 3-s recordings: a.wav and b.wav in audio/, dataset "mine".
class TargetsCli : public ::testing::Test {
protected:
    test::TempDir dir;
    void SetUp() override {
        fs::create_directories(dir / "audio");
        for (const char* t : {"a", "b"}) write_tone(dir / "audio" / (std::string(t) + ".wav"), t[0] == 'a' ? 440.0 : 660.0, 3.0);
    }
    static void write_tone(const fs::path& path, double hz, double seconds) {
        test::write_sound(path, test::tone(hz, seconds, 24000), 1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
    std::string command(const std::string& dataset = "mine", const std::string& audio = "audio") const {
        return std::string(MESS_BINARY) + " --log-level error --data-root " + test::quote((dir / "data").string()) +
               " targets --audio-dir " + test::quote((dir / audio).string()) + " --dataset-id " + dataset;
    }
    nlohmann::json run(const std::string& dataset = "mine", const std::string& audio = "audio") const {
        const auto r = test::run_command(command(dataset, audio) + " --json 2>/dev/null");
        EXPECT_EQ(r.exit_code, 0) << r.out;
        return nlohmann::json::parse(r.out);
    }
    fs::path npz(const std::string& track, const std::string& dataset = "mine") const {
        return dir / "data/proxy_targets" / dataset / (track + ".targets.npz");
    }
};

}  // namespace

TEST_F(TargetsCli, ReRunsRecomputeCorruptFilesAndChangedAudioAndKeepTheRest) {
    nlohmann::json j = run();
    EXPECT_EQ(j["computed"], 2);
    EXPECT_EQ(j["output_dir"], (dir / "data/proxy_targets/mine").string());
    EXPECT_EQ(nlohmann::json::parse(read_file(dir / "data/proxy_targets/mine/targets_report.json"))["computed"], 2);

    fs::resize_file(npz("a"), fs::file_size(npz("a")) / 2);  // cut short
    j = run();
    EXPECT_EQ(j["computed"], 0);
    EXPECT_EQ(j["cached"], 1);
    EXPECT_EQ(j["recomputed_corrupt"], 1);
    EXPECT_EQ(j["recomputed_source_changed"], 0);
    ASSERT_EQ(j["recomputed"].size(), 1u);
    EXPECT_EQ(j["recomputed"][0]["track_id"], "a");
    EXPECT_EQ(j["recomputed"][0]["cause"], "corrupt");
    EXPECT_NE(j["recomputed"][0]["reason"].get<std::string>().find(npz("a").string()), std::string::npos) << j.dump();

    write_tone(dir / "audio/b.wav", 330.0, 4.0);  // new content, as after re-exporting the recording
    const auto human = test::run_command(command() + " 2>/dev/null");
    EXPECT_EQ(human.exit_code, 0) << human.out;
    EXPECT_NE(human.out.find("0 computed, 1 recomputed (source changed), 0 recomputed (corrupt), 1 cached"), std::string::npos) << human.out;
    EXPECT_NE(human.out.find("b: recomputed: source changed: the audio's size"), std::string::npos) << human.out;

    fs::last_write_time(dir / "audio/a.wav", fs::last_write_time(dir / "audio/a.wav") + std::chrono::seconds(2));  // touched
    j = run();
    EXPECT_EQ(j["recomputed_source_changed"], 1);
    EXPECT_NE(j["recomputed"][0]["reason"].get<std::string>().find("modified 2.000 s later"), std::string::npos) << j.dump();

    j = run();  // nothing changed
    EXPECT_EQ(j["cached"], 2);
    EXPECT_EQ(j["recomputed"].size(), 0u);
    const auto forced = test::run_command(command() + " --force --json 2>/dev/null");
    EXPECT_EQ(nlohmann::json::parse(forced.out)["computed"], 2);  // --force recomputes everything
}

TEST_F(TargetsCli, DatasetsWithTheSameTrackNamesKeepTheirOwnTargets) {
    fs::create_directories(dir / "other");
    write_tone(dir / "other/a.wav", 2000.0, 3.0);  // another recording called "a"
    EXPECT_EQ(run()["computed"], 2);
    EXPECT_EQ(run("other", "other")["computed"], 1);  // not "cached" from mine's a
    EXPECT_NE(read_file(npz("a", "other")), read_file(npz("a")));
    EXPECT_TRUE(fs::exists(dir / "data/proxy_targets/other/targets_report.json"));
}

TEST_F(TargetsCli, OldFlatLayoutIsAdoptedOnlyWhenItIsProvablyTheDatasets) {
    run();
    // As an older MESS left it: proxy_targets/<track>.targets.npz and proxy_targets/mine_targets_report.json.
    for (const char* t : {"a", "b"}) fs::rename(npz(t), dir / "data/proxy_targets" / (std::string(t) + ".targets.npz"));
    fs::rename(dir / "data/proxy_targets/mine/targets_report.json", dir / "data/proxy_targets/mine_targets_report.json");
    fs::create_directories(dir / "other");
    fs::copy_file(dir / "audio/a.wav", dir / "other/a.wav");

    const std::string flat_a = (dir / "data/proxy_targets/a.targets.npz").string();
    fs::copy_file(flat_a, dir / "flat_a.npz");
    nlohmann::json j = run("other", "other");  // not other's: its "a" is computed, the flat file is left alone
    EXPECT_EQ(j["computed"], 1);
    EXPECT_EQ(j["flat_layout"]["left"], nlohmann::json({"a"}));
    EXPECT_NE(j["flat_layout"]["why_left"].get<std::string>().find("mine_targets_report.json"), std::string::npos) << j.dump();
    EXPECT_TRUE(fs::exists(flat_a));

    j = run();  // mine's report is the only one: mine's files move in and are kept
    EXPECT_EQ(j["flat_layout"]["moved"], 2);
    EXPECT_EQ(j["cached"], 2);
    EXPECT_EQ(j["computed"], 0);
    EXPECT_FALSE(fs::exists(flat_a));
    EXPECT_EQ(read_file(npz("a")), read_file(dir / "flat_a.npz"));
    EXPECT_FALSE(fs::exists(dir / "data/proxy_targets/mine_targets_report.json"));
}
