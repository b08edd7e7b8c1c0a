// `mess targets` as a user runs it, and the file as NumPy reads it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;

TEST(TargetsIntegration, NumpyLoadsPlainArraysAndTheCliSkipsBadFiles) {
    test::TempDir dir;
    std::filesystem::create_directories(dir / "audio");
    std::filesystem::copy_file(test::kRealRecording, dir / "audio/alarm.oga");
    write_file_atomic(dir / "audio/broken.wav", "RIFF....WAVEjunk");
    const std::string cmd = std::string(MESS_BINARY) + " --data-root " + test::quote((dir / "data").string()) +
                            " targets --json --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id t 2>/dev/null";
    auto r = test::run_command(cmd);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["computed"], 1);
    EXPECT_EQ(j["failed"].size(), 1u);
    auto py = test::run_command(std::string(MESS_PYTHON) + " -c " +
                                test::quote("import numpy as np, sys\n"
                                            "z = np.load(sys.argv[1], allow_pickle=False)\n"
                                            "assert z['curves/tis_tension'].shape == (60,) and z['rhythm/tempo'].shape == (1,)\n"
                                            "print(len(z.files))\n") +
                                " " + test::quote((dir / "data/proxy_targets/alarm.targets.npz").string()) + " 2>&1");
    EXPECT_EQ(py.exit_code, 0) << py.out;
    EXPECT_NE(py.out.find("33"), std::string::npos) << py.out;
    auto again = test::run_command(cmd);  // existing files are kept
    EXPECT_EQ(nlohmann::json::parse(again.out)["cached"], 1);
}
