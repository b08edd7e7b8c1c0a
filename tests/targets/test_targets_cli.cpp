// `mess targets` as a user runs it, and the file as NumPy reads it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

using namespace mess;

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
                                " " + test::quote((dir / "data/proxy_targets/alarm.targets.npz").string()) + " 2>&1");
    EXPECT_EQ(py.exit_code, 0) << py.out;
    EXPECT_NE(py.out.find("46"), std::string::npos) << py.out;  // 33 audio members, midi/available, 12 MIDI members
    auto again = test::run_command(cmd);  // existing files are kept
    EXPECT_EQ(nlohmann::json::parse(again.out)["cached"], 1);
}
