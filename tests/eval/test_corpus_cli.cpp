// End to end: MIDI written here → `mess corpus render` (libfluidsynth, FluidR3_GM) → extract with the dsp
// backend → index → `mess eval`: the report's structure, same-work retrieval well above chance, and the
// corpus is deterministic for a seed. Also `mess eval compare`, a bad MIDI file in the batch, and errors.
#include <algorithm>
#include <random>

#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

// Mean average precision of random rankings with the same relevant counts (chance level).
double chance_map(int works, int variants) {
    std::mt19937 rng(1);
    const int n = works * variants - 1, rel = variants - 1;
    double sum = 0;
    for (int trial = 0; trial < 2000; ++trial) {
        std::vector<bool> r(static_cast<std::size_t>(n), false);
        std::fill(r.begin(), r.begin() + rel, true);
        std::shuffle(r.begin(), r.end(), rng);
        double ap = 0;
        int found = 0;
        for (int i = 0; i < n; ++i)
            if (r[static_cast<std::size_t>(i)]) ap += static_cast<double>(++found) / (i + 1);
        sum += ap / rel;
    }
    return sum / 2000;
}

}  // namespace

TEST(CorpusCli, RenderExtractIndexEvaluate) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/ode.mid", test::melody_smf({{64, 2}, {64, 2}, {65, 2}, {67, 2}, {67, 2}, {65, 2}, {64, 2}, {62, 2}}, 48, 0));
    write_file_atomic(dir / "midi/minor.mid", test::melody_smf({{57, 3}, {60, 1}, {64, 4}, {63, 2}, {60, 2}, {59, 4}}, 45, 0));
    write_file_atomic(dir / "midi/march.mid", test::melody_smf({{67, 1}, {67, 1}, {72, 2}, {71, 1}, {69, 1}, {67, 4}, {74, 2}, {66, 2}}, 43, 0));
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    const std::string render = mess + " corpus render --json --midi " + test::quote((dir / "midi").string()) +
                               " --variants 4 --seed 3 --max-seconds 12 --sample-rate 16000 --out ";
    auto r = test::run_command(render + test::quote((dir / "corpus").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["renderings"], 12);
    const auto labels = nlohmann::json::parse(read_file(dir / "corpus/labels.json"));
    ASSERT_EQ(labels["items"].size(), 12u);
    const auto& v1 = labels["items"][1];  // march__v01: tempo + rubato
    EXPECT_EQ(v1["transform"]["kind"], "tempo");
    EXPECT_TRUE(fs::exists(dir / "corpus" / v1["file"].get<std::string>()));
    EXPECT_TRUE(fs::exists(dir / "corpus" / v1["midi"].get<std::string>()));
    EXPECT_GT(v1["time_map"].size(), 20u);
    EXPECT_TRUE(fs::exists(dir / "corpus/metadata.csv"));

    // Deterministic for a seed: a second rendering is byte-identical.
    ASSERT_EQ(test::run_command(render + test::quote((dir / "again").string()) + " >/dev/null 2>&1").exit_code, 0);
    EXPECT_EQ(read_file(dir / "corpus/labels.json"), read_file(dir / "again/labels.json"));
    EXPECT_EQ(read_file(dir / "corpus/audio/ode__v03.wav"), read_file(dir / "again/audio/ode__v03.wav"));

    // Extract with the dsp backend (the corpus's metadata: work and recording ids), index, evaluate.
    fs::create_directories(dir / "data/metadata");
    fs::copy_file(dir / "corpus/metadata.csv", dir / "data/metadata/bench_metadata.csv", fs::copy_options::overwrite_existing);
    const std::string ds = " --audio-dir " + test::quote((dir / "corpus/audio").string()) + " --dataset-id bench";
    ASSERT_EQ(test::run_command(mess + " extract --model dsp --threads 2" + ds + " 2>&1").exit_code, 0);
    const std::string root = (dir / "data/indices").string();
    for (const char* kind : {"track", "clip"})
        ASSERT_EQ(test::run_command(mess + " index build --kind " + kind + " --name " + kind + ds + " 2>&1").exit_code, 0);
    const std::string eval = mess + " eval --index " + test::quote(root) + " --labels " +
                             test::quote((dir / "corpus/labels.json").string());
    auto e = test::run_command(eval + " --name track --json --k 1,3 --out " + test::quote((dir / "track.json").string()) + " 2>&1");
    ASSERT_EQ(e.exit_code, 0) << e.out;
    const auto rep = nlohmann::json::parse(e.out);
    EXPECT_EQ(rep["schema"], "mess-eval/1");
    EXPECT_EQ(rep["index"]["layer"], "4");  // the dsp model's default layer: overall
    const auto& t = rep["protocols"]["track"];
    EXPECT_EQ(t["queries"], 12);
    for (const char* m : {"recall@1", "recall@3", "precision@3", "ndcg@3", "mrr", "map", "mean_first_rank"})
        EXPECT_TRUE(t["same_work"].contains(m)) << m;
    for (const char* a : {"tempo", "dynamics", "articulation", "timbre", "key"})
        EXPECT_TRUE(t["aspects"].contains(a)) << a;
    const double chance = chance_map(3, 4);
    EXPECT_GT(t["same_work"]["map"].get<double>(), chance + 0.25) << "chance " << chance;

    auto c = test::run_command(eval + " --name clip --out " + test::quote((dir / "clip.json").string()) + " 2>&1");
    ASSERT_EQ(c.exit_code, 0) << c.out;
    const auto clip = nlohmann::json::parse(read_file(dir / "clip.json"));
    EXPECT_TRUE(clip["protocols"].contains("passage"));
    EXPECT_TRUE(clip["protocols"].contains("passage_to_track"));
    EXPECT_GT(clip["protocols"]["passage_to_track"]["same_work"]["map"].get<double>(), chance);

    auto cmp = test::run_command(mess + " eval compare " + test::quote((dir / "track.json").string()) + " " +
                                 test::quote((dir / "track.json").string()) + " 2>&1");
    ASSERT_EQ(cmp.exit_code, 0) << cmp.out;
    EXPECT_NE(cmp.out.find("track same_work map"), std::string::npos) << cmp.out;
    EXPECT_NE(cmp.out.find("+0.0000"), std::string::npos);

    // This moment in every other performance: ode__v00 at 6 s, aligned into ode's other renderings.
    auto sm = test::run_command(mess + " search --json --index " + test::quote(root) + " --name clip --track ode__v00 --start 6 --same-moment 2>&1");
    ASSERT_EQ(sm.exit_code, 0) << sm.out;
    const auto smj = nlohmann::json::parse(sm.out);
    ASSERT_EQ(smj["same_moment"].size(), 3u) << smj["same_moment"].dump();
    for (const auto& m : smj["same_moment"]) {
        ASSERT_FALSE(m.contains("error")) << m.dump();
        const auto* item = [&]() -> const nlohmann::json* {
            for (const auto& it : labels["items"])
                if (it["id"] == m["track_id"]) return &it;
            return nullptr;
        }();
        ASSERT_NE(item, nullptr);
        double truth = -1;  // the rendered second of source second 6 (the original is the source as written)
        for (const auto& p : (*item)["time_map"])
            if (std::fabs(p[0].get<double>() - 6.0) < 1e-9) truth = p[1].get<double>();
        EXPECT_NEAR(m["time_sec"].get<double>(), truth, 0.1) << m.dump();
        EXPECT_TRUE(m.contains("clip_id")) << m.dump();
    }

    // Alignment accuracy against the corpus's time maps, and one work's renderings compared.
    auto al = test::run_command(mess + " eval align --json --labels " + test::quote((dir / "corpus/labels.json").string()) + " 2>/dev/null");
    ASSERT_EQ(al.exit_code, 0) << al.out;
    const auto arep = nlohmann::json::parse(al.out);
    EXPECT_EQ(arep["schema"], "mess-eval-align/1");
    EXPECT_EQ(arep["pairs"], 9);  // 3 works × (tempo, transpose, dynamics) against the original
    for (const char* kind : {"tempo", "transpose", "dynamics"}) {
        const auto& v = arep["variants"][kind];
        EXPECT_LE(v["beyond_ms"]["100"].get<double>(), 0.1) << kind << ": " << v.dump();
        EXPECT_DOUBLE_EQ(v["transposition_correct"].get<double>(), 1.0) << kind;
    }
    auto cw = test::run_command(mess + " compare --json --work ode" + ds + " --start 2 --end 8 --out-dir " + test::quote((dir / "cmp").string()) + " 2>&1");
    ASSERT_EQ(cw.exit_code, 0) << cw.out;
    const auto cj = nlohmann::json::parse(cw.out);
    EXPECT_EQ(cj["performances"].size(), 4u);
    EXPECT_EQ(cj["ranking"].size(), 4u);
    for (const char* f : {"comparison.json", "curves.csv", "times.npy", "tempo_ratio.npy", "loudness_db.npy", "comparison.svg"})
        EXPECT_TRUE(fs::exists(dir / "cmp" / f)) << f;
    EXPECT_NE(test::run_command(mess + " compare --work nosuchwork" + ds + " 2>&1").exit_code, 0);

    // Errors: a non-report to compare, labels that match nothing, a missing labels file.
    EXPECT_EQ(test::run_command(mess + " eval compare " + test::quote((dir / "corpus/labels.json").string()) + " " +
                                test::quote((dir / "track.json").string()) + " >/dev/null 2>&1").exit_code, 2);
    EXPECT_NE(test::run_command(eval + "-missing --name track >/dev/null 2>&1").exit_code, 0);
}

// Variant 7 is the source played by another piano model (Debian's TimGM6mb, installed by scripts/setup),
// which alignment must follow as well as the original.
TEST(CorpusCli, AnotherPianoModelIsVariantSeven) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/ode.mid", test::melody_smf({{64, 2}, {64, 2}, {65, 2}, {67, 2}, {67, 2}, {65, 2}, {64, 2}, {62, 2}}, 48, 0));
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn";
    const std::string render = mess + " corpus render --json --variants 8 --seed 3 --max-seconds 8 --sample-rate 16000 --midi " +
                               test::quote((dir / "midi").string());
    ASSERT_TRUE(fs::exists("/usr/share/sounds/sf2/TimGM6mb.sf2")) << "run scripts/setup (timgm6mb-soundfont)";
    auto r = test::run_command(render + " --out " + test::quote((dir / "corpus").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto labels = nlohmann::json::parse(read_file(dir / "corpus/labels.json"));
    ASSERT_EQ(labels["items"].size(), 8u);
    const auto& piano = labels["items"][7]["transform"];
    EXPECT_EQ(piano["kind"], "piano");
    EXPECT_EQ(piano["soundfont"], "TimGM6mb.sf2");
    EXPECT_NE(read_file(dir / "corpus/audio/ode__v07.wav"), read_file(dir / "corpus/audio/ode__v00.wav"));
    auto al = test::run_command(mess + " eval align --json --labels " + test::quote((dir / "corpus/labels.json").string()) + " 2>/dev/null");
    ASSERT_EQ(al.exit_code, 0) << al.out;
    EXPECT_LE(nlohmann::json::parse(al.out)["variants"]["piano"]["beyond_ms"]["100"].get<double>(), 0.1);
    EXPECT_EQ(test::run_command(render + " --piano-soundfont /no/such.sf2 --out " + test::quote((dir / "x").string()) + " 2>&1").exit_code, 1);
}

TEST(CorpusCli, BadMidiIsSkippedAndReported) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/good.mid", test::melody_smf({{60, 2}, {62, 2}, {64, 4}}, 48, 0));
    write_file_atomic(dir / "midi/broken.mid", std::string("MThd\0\0\0\6\0\0\0\1\1\xe0MTrk\0\0\0\x40\0\x90", 26));
    const std::string mess = std::string(MESS_BINARY) + " --log-level error";
    auto r = test::run_command(mess + " corpus render --json --variants 2 --max-seconds 4 --midi " +
                               test::quote((dir / "midi").string()) + " --out " + test::quote((dir / "out").string()) + " 2>&1");
    EXPECT_EQ(r.exit_code, 3) << r.out;  // done, with skipped items
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["renderings"], 2);
    ASSERT_EQ(j["skipped"].size(), 1u);
    EXPECT_NE(j["skipped"][0]["reason"].get<std::string>().find("broken.mid"), std::string::npos);
    EXPECT_EQ(test::run_command(mess + " corpus render --variants 0 --midi " + test::quote((dir / "midi").string()) +
                                " --out x >/dev/null 2>&1").exit_code, 1);  // usage
    EXPECT_EQ(test::run_command(mess + " corpus render --midi " + test::quote((dir / "midi").string()) +
                                " --soundfont /no/such.sf2 --out x >/dev/null 2>&1").exit_code, 1);
    // An absurd --max-seconds is refused before anything is allocated; a large sane one is cut at the piece's end.
    const auto absurd = test::run_command(mess + " corpus render --max-seconds 1e9 --midi " + test::quote((dir / "midi/good.mid").string()) +
                                          " --out x 2>&1");
    EXPECT_EQ(absurd.exit_code, 1) << absurd.out;
    EXPECT_NE(absurd.out.find("max seconds must be in (0, 86400]"), std::string::npos) << absurd.out;
    auto big = test::run_command(mess + " corpus render --json --variants 3 --max-seconds 86400 --midi " +
                                 test::quote((dir / "midi/good.mid").string()) + " --out " + test::quote((dir / "big").string()) + " 2>&1");
    ASSERT_EQ(big.exit_code, 0) << big.out;
    for (const auto& e : fs::directory_iterator(dir / "big/audio"))
        EXPECT_LT(fs::file_size(e.path()), 22050u * 2u * 20u) << e.path();  // seconds of audio, not a day
}
