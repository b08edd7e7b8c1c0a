// The `mess` binary as a user runs it: exit codes, --help, --json, configuration sources.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;

static test::CommandResult mess_cmd(const std::string& args, const std::string& env = "") {
    return test::run_command(env + " " + std::string(MESS_BINARY) + " " + args + " 2>/dev/null");
}

TEST(Cli, HelpAndUsageErrors) {
    auto help = mess_cmd("--help");
    EXPECT_EQ(help.exit_code, 0);
    for (const char* sub : {"config", "audio", "demo"}) EXPECT_NE(help.out.find(sub), std::string::npos) << sub;
    EXPECT_EQ(mess_cmd("audio info --help").exit_code, 0);
    EXPECT_EQ(mess_cmd("").exit_code, 1);               // a subcommand is required
    EXPECT_EQ(mess_cmd("no-such-command").exit_code, 1);
    EXPECT_EQ(mess_cmd("audio info").exit_code, 1);     // FILE is required
    EXPECT_EQ(mess_cmd("--workers 0 config").exit_code, 1);
    EXPECT_EQ(mess_cmd("config", "MESS_DEVICE=tpu").exit_code, 1);
}

TEST(Cli, ConfigShowsValuesAndSources) {
    auto r = mess_cmd("--workers 3 config --json", "MESS_DATA_ROOT=/tmp/mess-data MESS_BATCH_SIZE=6");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["data_root"]["value"], "/tmp/mess-data");
    EXPECT_EQ(j["data_root"]["source"], "env MESS_DATA_ROOT");
    EXPECT_EQ(j["workers"]["value"], 3);
    EXPECT_EQ(j["workers"]["source"], "flag --workers");
    EXPECT_EQ(j["batch_size"]["value"], 6);
    EXPECT_EQ(j["sample_rate"]["value"], 24000);
    EXPECT_EQ(j["window_seconds"]["value"], 5.0);
    EXPECT_EQ(j["overlap"]["value"], 0.5);
    EXPECT_EQ(j["device"]["source"], "default");
}

TEST(Cli, AudioInfoContinuesPastBadFilesAndExits2) {
    test::TempDir dir;
    test::write_sound(dir / "good.flac", test::tone(220.0, 6.0, 44100), 1, 44100, SF_FORMAT_FLAC | SF_FORMAT_PCM_16);
    write_file_atomic(dir / "bad.wav", "garbage");
    auto r = mess_cmd("audio info --json " + test::quote((dir / "bad.wav").string()) + " " +
                      test::quote((dir / "good.flac").string()) + " " + test::quote(test::kRealRecording));
    EXPECT_EQ(r.exit_code, 2);
    auto j = nlohmann::json::parse(r.out);
    ASSERT_EQ(j["files"].size(), 3u);
    EXPECT_EQ(j["files"][0]["valid"], false);
    EXPECT_EQ(j["files"][0]["problem"], "unsupported");
    EXPECT_EQ(j["files"][1]["valid"], true);
    EXPECT_EQ(j["files"][1]["num_windows"], 2);
    EXPECT_DOUBLE_EQ(j["files"][1]["window_starts_sec"][1].get<double>(), 1.0);
    EXPECT_EQ(j["files"][2]["format"], "OGG (Vorbis)");
    EXPECT_EQ(j["invalid"], 1);

    auto ok = mess_cmd("audio info " + test::quote(test::kRealRecording));
    EXPECT_EQ(ok.exit_code, 0);
    EXPECT_NE(ok.out.find("48000 Hz, 2 channels"), std::string::npos) << ok.out;
}

TEST(Cli, DemoWritesNumpyFiles) {
    test::TempDir dir;
    auto r = mess_cmd("--data-root " + test::quote(dir.path().string()) + " demo --json");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    NpyArray wave = read_npy(j["waveform_npy"].get<std::string>());
    EXPECT_EQ(wave.dtype, DType::f32);
    EXPECT_EQ(wave.count(), j["samples_24k"].get<std::size_t>());
    EXPECT_EQ(read_npy(j["windows_npy"].get<std::string>()).describe(), "float64 [2, 2]");
    EXPECT_EQ(mess_cmd("demo --audio /no/such.wav").exit_code, 2);
}
