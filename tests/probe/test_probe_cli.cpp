// `mess probe` and `mess aspects` end to end on real extraction: audio → features (the tiny MERT
// fixture) → proxy targets → layer discovery → aspects; and their errors.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

TEST(ProbeCli, ExtractTargetsProbeAspects) {
    test::TempDir dir;
    fs::create_directories(dir / "audio");
    fs::copy_file(test::kRealRecording, dir / "audio/alarm.oga");
    for (int i = 0; i < 9; ++i) {  // tones and chords of rising pitch and loudness: brightness varies
        const double f = 110.0 * (1 + i);
        auto x = i % 2 ? test::chord({f, 1.5 * f, 2 * f}, 6.0, 24000, 0.1f + 0.08f * static_cast<float>(i))
                       : test::tone(f, 6.0, 24000, 0.1f + 0.08f * static_cast<float>(i));
        test::write_sound(dir / "audio" / fmt::format("p{}.wav", i), x, 1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    const std::string ds = " --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id toy";
    const std::string model = " --model " + test::quote(std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny");

    // Before features exist: a clear input error.
    auto none = test::run_command(mess + " probe" + ds + " 2>&1");
    EXPECT_EQ(none.exit_code, 2) << none.out;
    EXPECT_NE(none.out.find("no track has both"), std::string::npos) << none.out;

    ASSERT_EQ(test::run_command(mess + " extract" + ds + model + " --threads 1 2>&1").exit_code, 0);
    ASSERT_EQ(test::run_command(mess + " targets --no-windows" + ds + " 2>&1").exit_code, 0);

    auto bad = test::run_command(mess + " probe --folds 1" + ds + " 2>&1");
    EXPECT_EQ(bad.exit_code, 1) << bad.out;
    EXPECT_NE(bad.out.find("--folds"), std::string::npos) << bad.out;

    auto table = test::run_command(mess + " probe --controls 2" + ds + " 2>&1");
    ASSERT_EQ(table.exit_code, 0) << table.out;
    EXPECT_NE(table.out.find("timbre/spectral_centroid"), std::string::npos) << table.out;
    EXPECT_NE(table.out.find("*"), std::string::npos) << table.out;  // best layer marked
    const fs::path results = dir / "data/probing/toy/layer_discovery_results.json";
    ASSERT_TRUE(fs::exists(results));
    auto j = nlohmann::json::parse(read_file(results));
    for (const char* key : {"0", "1", "2", "weighted_sum", "control", "run"}) EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["run"]["n_rows"], 10);
    EXPECT_EQ(j["run"]["layers"], 3);
    EXPECT_TRUE(j["0"]["timbre/spectral_centroid"].contains("r2_score"));
    // Fold scores and the band, and a warning: 10 tracks are too few for any "high" label.
    EXPECT_EQ(j["0"]["timbre/spectral_centroid"]["r2_folds"].size(), 5u);
    EXPECT_EQ(j["0"]["timbre/spectral_centroid"]["r2_band"].size(), 2u);
    EXPECT_NE(table.out.find("warning: only 10 tracks"), std::string::npos) << table.out;
    EXPECT_TRUE(j["0"]["curves/dynamic_arc"].contains("r2_pc1"));
    EXPECT_EQ(j["weighted_sum"]["timbre/spectral_centroid"]["layer_weights"].size(), 3u);

    auto asp = test::run_command(mess + " aspects --all --json --dataset toy 2>&1");
    ASSERT_EQ(asp.exit_code, 0) << asp.out;
    auto a = nlohmann::json::parse(asp.out);
    ASSERT_FALSE(a["aspects"].empty());
    for (const auto& x : a["aspects"]) {
        EXPECT_TRUE(x.contains("layer") || x.contains("layer_weights")) << x.dump();
        EXPECT_TRUE(x.contains("confidence"));
        EXPECT_NE(x["confidence"], "high") << x.dump();
        EXPECT_EQ(x["n_tracks"], 10) << x.dump();
    }

    // Separability: a square matrix over the resolved aspects, written beside the results.
    auto sep = test::run_command(mess + " probe --separability --json" + ds + " 2>&1");
    ASSERT_EQ(sep.exit_code, 0) << sep.out;
    const auto sj = nlohmann::json::parse(sep.out)["separability"];
    ASSERT_FALSE(sj["aspects"].empty());
    EXPECT_EQ(sj["r2"].size(), sj["aspects"].size());
    EXPECT_EQ(sj["r2"][0].size(), sj["aspects"].size());
    EXPECT_TRUE(fs::exists(dir / "data/probing/toy/separability.json"));
    auto sep_table = test::run_command(mess + " probe --separability" + ds + " 2>&1");
    EXPECT_EQ(sep_table.exit_code, 0) << sep_table.out;
    EXPECT_NE(sep_table.out.find("from \\ to"), std::string::npos) << sep_table.out;
    auto sep_bad = test::run_command(mess + " probe --separability --directions 0" + ds + " 2>&1");
    EXPECT_EQ(sep_bad.exit_code, 1) << sep_bad.out;
    EXPECT_NE(sep_bad.out.find("--directions"), std::string::npos) << sep_bad.out;
    auto missing = test::run_command(mess + " aspects --dataset nowhere 2>&1");
    EXPECT_EQ(missing.exit_code, 2);
    EXPECT_NE(missing.out.find("mess probe"), std::string::npos) << missing.out;
}
