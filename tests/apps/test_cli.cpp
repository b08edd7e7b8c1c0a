// The `mess` binary as a user runs it: exit codes, --help, --json, configuration sources.
#include <cmath>

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
    for (const char* sub : {"config", "audio", "model", "embed", "demo"}) EXPECT_NE(help.out.find(sub), std::string::npos) << sub;
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
    auto r = mess_cmd("--data-root " + test::quote(dir.path().string()) + " demo embed --json");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    NpyArray wave = read_npy(j["waveform_npy"].get<std::string>());
    EXPECT_EQ(wave.dtype, DType::f32);
    EXPECT_EQ(wave.count(), j["samples_24k"].get<std::size_t>());
    EXPECT_EQ(read_npy(j["windows_npy"].get<std::string>()).describe(), "float64 [2, 2]");
    EXPECT_EQ(mess_cmd("demo embed --audio /no/such.wav").exit_code, 2);
}

static const std::string kTinyModel = std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny";

TEST(Cli, ModelInfoReportsArchitectureAndKeyCheck) {
    auto r = mess_cmd("model info --json --prefer bin " + test::quote(kTinyModel));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["architecture"], "MERTModel");
    EXPECT_EQ(j["num_hidden_states"], 3);
    EXPECT_EQ(j["weights_format"], "pytorch_bin");
    EXPECT_EQ(j["key_check"], "ok");
    EXPECT_EQ(j["ignored_tensors"][0], "masked_spec_embed");
    EXPECT_EQ(mess_cmd("model info /no/such/model").exit_code, 2);
}

TEST(Cli, ModelRandomThenEmbedRealAudioInEveryView) {
    test::TempDir dir;
    const std::string model = (dir / "m").string();
    auto r = mess_cmd("model random --config " + test::quote(kTinyModel + "/config.json") + " --out " + test::quote(model) +
                      " --seed 3 --format bin");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(mess_cmd("model info " + test::quote(model)).exit_code, 0);
    EXPECT_EQ(mess_cmd("model random --preset nope --out " + test::quote(model)).exit_code, 1);

    const std::string audio = test::quote(test::kRealRecording);
    auto raw = mess_cmd("embed --json --model " + test::quote(model) + " " + audio + " --out " + test::quote((dir / "raw.npy").string()));
    ASSERT_EQ(raw.exit_code, 0) << raw.out;
    EXPECT_EQ(read_npy(dir / "raw.npy").describe(), "float32 [2, 3, 374, 32]");
    auto j = nlohmann::json::parse(raw.out);
    EXPECT_NEAR(j["window_starts_sec"][1].get<double>(), 1.128, 0.01);

    ASSERT_EQ(mess_cmd("embed --model " + test::quote(model) + " " + audio + " --view segments --layers 0,2 --out " +
                       test::quote((dir / "seg.npy").string())).exit_code, 0);
    EXPECT_EQ(read_npy(dir / "seg.npy").describe(), "float32 [2, 2, 32]");
    ASSERT_EQ(mess_cmd("embed --model " + test::quote(model) + " " + audio + " --view aggregated --out " +
                       test::quote((dir / "agg.npy").string())).exit_code, 0);
    EXPECT_EQ(read_npy(dir / "agg.npy").describe(), "float32 [3, 32]");

    // Errors: bad layer index (usage), bad audio (input), and no partial output left behind.
    EXPECT_EQ(mess_cmd("embed --model " + test::quote(model) + " " + audio + " --layers 9 --out " +
                       test::quote((dir / "x.npy").string())).exit_code, 1);
    write_file_atomic(dir / "bad.wav", "not audio");
    EXPECT_EQ(mess_cmd("embed --model " + test::quote(model) + " " + test::quote((dir / "bad.wav").string()) + " --out " +
                       test::quote((dir / "y.npy").string())).exit_code, 2);
    EXPECT_FALSE(std::filesystem::exists(dir / "x.npy"));
    EXPECT_FALSE(std::filesystem::exists(dir / "y.npy"));
}

TEST(Cli, EmbedInputNpyMatchesTheFixture) {
    test::TempDir dir;
    auto r = mess_cmd("embed --input-npy --model " + test::quote(kTinyModel) + " " + test::quote(kTinyModel + "/input.npy") +
                      " --out " + test::quote((dir / "h.npy").string()));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    NpyArray got = read_npy(dir / "h.npy");
    NpyArray want = read_npy(kTinyModel + "/hidden_states.npy");
    ASSERT_EQ(got.count(), want.count());
    float worst = 0;
    for (std::size_t i = 0; i < got.count(); ++i) worst = std::max(worst, std::fabs(got.view<float>()[i] - want.view<float>()[i]));
    EXPECT_LE(worst, 1e-4f);
}
