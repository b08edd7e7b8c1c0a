// End to end (4 works: training needs 2 to train and 2 to validate): `mess corpus render --factors` → extract (dsp) → `mess train aspects` (mlp rung, InfoNCE) →
// `mess eval aspects` → `mess train same-work`, `mess eval same-work` → `mess index build --aspect-models` → `mess search --aspect/--unlike/--more/--text`; stale models refused.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;

namespace mess {
namespace {

TEST(AspectsCli, FactorCorpusTrainEvaluate) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/ode.mid", test::melody_smf({{64, 2}, {64, 2}, {65, 2}, {67, 2}, {67, 2}, {65, 2}, {64, 2}, {62, 2}}, 48, 0));
    write_file_atomic(dir / "midi/minor.mid", test::melody_smf({{57, 3}, {60, 1}, {64, 4}, {63, 2}, {60, 2}, {59, 4}}, 45, 0));
    write_file_atomic(dir / "midi/waltz.mid", test::melody_smf({{60, 3}, {64, 1}, {67, 2}, {65, 2}, {64, 2}, {62, 4}, {60, 2}}, 41, 0));
    write_file_atomic(dir / "midi/march.mid", test::melody_smf({{67, 1}, {67, 1}, {72, 2}, {71, 1}, {69, 1}, {67, 4}, {74, 2}, {66, 2}}, 43, 0));
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    auto r = test::run_command(mess + " corpus render --json --factors --factor tempo --factor timbre --max-seconds 8 --sample-rate 16000 --midi " +
                               test::quote((dir / "midi").string()) + " --out " + test::quote((dir / "factors").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto labels = nlohmann::json::parse(read_file(dir / "factors/labels.json"));
    ASSERT_FALSE(labels["items"].empty());
    for (const auto& it : labels["items"]) {
        EXPECT_TRUE(it.contains("factor")) << it.dump();
        EXPECT_TRUE(it.contains("value")) << it.dump();
    }
    const std::string ds = " --audio-dir " + test::quote((dir / "factors/audio").string()) + " --dataset-id factors";
    ASSERT_EQ(test::run_command(mess + " extract --model dsp" + ds + " 2>&1").exit_code, 0);
    const std::string lab = " --labels " + test::quote((dir / "factors/labels.json").string());
    auto t = test::run_command(mess + " train aspects --json --quiet --aspect tempo --aspect timbre --epochs 2 --triplets 200 --dim 8 --rung mlp --hidden 16 --loss infonce" + ds + lab +
                               " --out " + test::quote((dir / "models").string()) + " 2>&1");
    ASSERT_EQ(t.exit_code, 0) << t.out;
    EXPECT_TRUE(fs::exists(dir / "models/aspects.json"));
    // The mlp rung (trained with InfoNCE) is saved as three arrays and is what the index below applies.
    const auto saved = nlohmann::json::parse(read_file(dir / "models/aspects.json"));
    EXPECT_EQ(saved["aspects"]["tempo"]["rung"], "mlp") << saved.dump();
    EXPECT_EQ(saved["aspects"]["tempo"]["hidden_dim"], 16) << saved.dump();
    EXPECT_TRUE(fs::exists(dir / "models/tempo.w1.npy"));
    EXPECT_EQ(nlohmann::json::parse(t.out)["kept"]["tempo"], "mlp") << t.out;
    EXPECT_NE(test::run_command(mess + " train aspects --quiet --loss hinge" + ds + " --labels " + test::quote((dir / "factors/labels.json").string()) +
                                " --out " + test::quote((dir / "m3").string()) + " 2>&1").exit_code, 0);
    auto e = test::run_command(mess + " eval aspects --json --triplets 300" + ds + lab + " --models " + test::quote((dir / "models").string()) +
                               " 2>/dev/null");
    ASSERT_EQ(e.exit_code, 0) << e.out;
    const auto rep = nlohmann::json::parse(e.out);
    EXPECT_NE(rep.dump().find("tempo"), std::string::npos) << rep.dump();
    EXPECT_NE(rep.dump().find("timbre"), std::string::npos) << rep.dump();
    // The same-work geometry on the same renderings (4 works, each rendered at several settings): trained,
    // evaluated rung by rung, saved as the "same_work" aspect; a bad rung is refused.
    const std::string sw = test::quote((dir / "same-work").string());
    auto w = test::run_command(mess + " train same-work --json --rung lda --dim 8" + ds + lab + " --out " + sw + " 2>/dev/null");
    ASSERT_EQ(w.exit_code, 0) << w.out;
    EXPECT_TRUE(nlohmann::json::parse(w.out)["in_sample"].contains("wccn")) << w.out;
    w = test::run_command(mess + " eval same-work --json" + ds + lab + " --models " + sw + " 2>/dev/null");
    ASSERT_EQ(w.exit_code, 0) << w.out;
    const auto swr = nlohmann::json::parse(w.out)["rungs"];
    for (const char* rung : {"identity", "standardise", "lda"}) {
        ASSERT_TRUE(swr.contains(rung)) << w.out;
        EXPECT_GE(swr[rung]["track_map"].get<double>(), 0.0);
        EXPECT_LE(swr[rung]["passage_map"].get<double>(), 1.0);
    }
    EXPECT_NE(test::run_command(mess + " train same-work --rung pca" + ds + lab + " --out " + sw + " 2>&1").exit_code, 0);
    EXPECT_NE(test::run_command(mess + " eval same-work" + ds + lab + " --models " + test::quote((dir / "models").string()) + " 2>&1").exit_code, 0);
    // mess eval ranks in the same-work space of an index built with it (--learned), and says so in its config.
    auto swb = test::run_command(mess + " index build --kind clip --no-media --out " + test::quote((dir / "idx").string()) + " --name sw" + ds +
                                 " --aspect-models " + sw + " 2>&1");
    ASSERT_EQ(swb.exit_code, 0) << swb.out;
    const std::string ev = mess + " eval --json --index " + test::quote((dir / "idx").string()) + " --name sw" + lab;
    w = test::run_command(ev + " --learned same_work=1 2>/dev/null");
    ASSERT_EQ(w.exit_code, 0) << w.out;
    const auto learned = nlohmann::json::parse(w.out);
    EXPECT_EQ(learned["config"]["learned_aspects"]["same_work"], 1.0) << w.out;
    EXPECT_TRUE(learned["protocols"]["passage"]["same_work"].contains("map")) << w.out;
    w = test::run_command(ev + " --learned tempo=1 2>&1");
    EXPECT_NE(w.exit_code, 0);
    EXPECT_NE(w.out.find("no learned aspect space 'tempo'"), std::string::npos) << w.out;
    // Brightness from proxy targets (no factor corpus): added to the set, so `--text darker` resolves.
    ASSERT_EQ(test::run_command(mess + " targets --no-curves" + ds + " 2>&1").exit_code, 0);
    const std::string proxy = " train aspects --json" + ds + " --out " + test::quote((dir / "models").string()) + " --from-targets ";
    auto pt = test::run_command(mess + proxy + "brightness=timbre/spectral_centroid,timbre/spectral_rolloff 2>/dev/null");
    ASSERT_EQ(pt.exit_code, 0) << pt.out;
    const auto bright = nlohmann::json::parse(pt.out)["aspects"]["brightness"];
    EXPECT_EQ(bright["method"], "proxy_targets") << pt.out;
    EXPECT_GT(bright["cv_r2"]["timbre/spectral_centroid"].get<double>(), 0.3) << pt.out;  // timbre renderings: the centroid is readable
    auto clash = test::run_command(mess + proxy + "brightness=timbre/spectral_centroid 2>&1");
    EXPECT_EQ(clash.exit_code, 1) << clash.out;
    EXPECT_NE(clash.out.find("already exists"), std::string::npos) << clash.out;
    auto unknown = test::run_command(mess + proxy + "glow=timbre/sparkle 2>&1");
    EXPECT_EQ(unknown.exit_code, 1) << unknown.out;
    EXPECT_NE(unknown.out.find("timbre/sparkle"), std::string::npos) << unknown.out;
    // The models go into an index and rank there: every hit explains itself per aspect.
    const std::string models = test::quote((dir / "models").string()), idx = " --index " + test::quote((dir / "idx").string());
    auto b = test::run_command(mess + " index build --kind clip --no-media --out " + test::quote((dir / "idx").string()) + " --name clips" + ds +
                               " --aspect-models " + models + " 2>&1");
    ASSERT_EQ(b.exit_code, 0) << b.out;
    const std::string first_clip = labels["items"][0]["id"].get<std::string>();
    auto s = test::run_command(mess + " search --json --k 3 --name clips" + idx + " --track " + first_clip + " --start 0 --aspect tempo 2>&1");
    ASSERT_EQ(s.exit_code, 0) << s.out;
    const auto hits = nlohmann::json::parse(s.out);
    EXPECT_EQ(hits["learned_aspects"]["tempo"], 1.0) << s.out;
    ASSERT_EQ(hits["results"].size(), 3u) << s.out;
    EXPECT_TRUE(hits["results"][0]["aspects"].contains("timbre")) << s.out;
    EXPECT_NEAR(hits["results"][0]["score"].get<double>(), hits["results"][0]["aspects"]["tempo"].get<double>(), 1e-5) << s.out;
    s = test::run_command(mess + " search --json --k 3 --name clips" + idx + " --track " + first_clip + " --aspect timbre --unlike tempo --more tempo 2>&1");
    EXPECT_EQ(s.exit_code, 0) << s.out;
    s = test::run_command(mess + " search --json --k 3 --name clips" + idx + " --track " + first_clip + " --text 'like this but darker' 2>&1");
    ASSERT_EQ(s.exit_code, 0) << s.out;
    EXPECT_NE(s.out.find("brightness"), std::string::npos) << s.out;
    s = test::run_command(mess + " search --k 3 --name clips" + idx + " --track " + first_clip + " --text 'like this but groovier' 2>&1");
    EXPECT_NE(s.exit_code, 0);
    EXPECT_NE(s.out.find("groovier"), std::string::npos) << s.out;
    // Features of another build of the encoder (their sidecar's digest differs) are refused, never mapped.
    const fs::path sidecar = dir / "data/embeddings/factors-emb/meta" / (first_clip + ".json");
    ASSERT_TRUE(fs::exists(sidecar));
    const std::string sidecar_text = read_file(sidecar);
    auto side = nlohmann::json::parse(sidecar_text);
    side["encoder_digest"][0] = side["encoder_digest"][0].get<double>() + 5.0;
    write_file_atomic(sidecar, side.dump());
    b = test::run_command(mess + " index build --kind clip --no-media --out " + test::quote((dir / "idx").string()) + " --name stale-features" + ds +
                          " --aspect-models " + models + " 2>&1");
    EXPECT_NE(b.exit_code, 0);
    EXPECT_NE(b.out.find("another build of the encoder 'dsp'"), std::string::npos) << b.out;
    write_file_atomic(sidecar, sidecar_text);
    // Models whose encoder fingerprint differs from this build's encoder are refused, never applied.
    auto meta = nlohmann::json::parse(read_file(dir / "models/aspects.json"));
    meta["encoder_signature"]["fingerprint"][0] = meta["encoder_signature"]["fingerprint"][0].get<double>() + 5.0;
    write_file_atomic(dir / "models/aspects.json", meta.dump());
    b = test::run_command(mess + " index build --kind clip --no-media --out " + test::quote((dir / "idx").string()) + " --name stale" + ds +
                          " --aspect-models " + models + " 2>&1");
    EXPECT_NE(b.exit_code, 0);
    EXPECT_NE(b.out.find("retrain"), std::string::npos) << b.out;
    // A labels file without factors, and a missing model directory, are refused with a message.
    EXPECT_NE(test::run_command(mess + " train aspects --quiet" + ds + " --labels " + test::quote((dir / "midi/ode.mid").string()) + " --out " +
                                test::quote((dir / "m2").string()) + " 2>&1").exit_code, 0);
    EXPECT_NE(test::run_command(mess + " eval aspects" + ds + lab + " --models " + test::quote((dir / "nothing").string()) + " 2>&1").exit_code, 0);
}

}  // namespace
}  // namespace mess
