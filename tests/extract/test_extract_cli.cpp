// `mess extract` as separate processes: SIGKILL mid-run, and two runs at once on one dataset.
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

// Whether `mess` can use a CUDA device here (asked through `mess model devices`).
bool cuda_devices_here() {
    const auto r = test::run_command(std::string(MESS_BINARY) + " model devices --json 2>/dev/null");
    return r.exit_code == 0 && nlohmann::json::parse(r.out).value("cuda_devices", 0) > 0;
}

class ExtractCli : public ::testing::Test {
protected:
    test::TempDir dir;
    static constexpr int kTracks = 10;

    void SetUp() override {
        fs::create_directories(dir / "audio");
        for (int i = 0; i < kTracks; ++i)
            test::write_sound(dir / "audio" / fmt::format("piece{:02d}.wav", i), test::tone(110.0 * (i + 1), 20.0, 24000), 1,
                              24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
    std::string command(const std::string& extra = "") const {
        return std::string(MESS_BINARY) + " --log-level warn --workers 1 --data-root " + test::quote((dir / "data").string()) +
               " extract --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id pieces --model " +
               test::quote(std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny") + " --feature-level all --threads 1 " + extra;
    }
    fs::path store() const { return dir / "data/embeddings/pieces-emb"; }

    // Every visible file is complete: .npy files load with the expected shapes, sidecars parse, and a
    // track with a sidecar has all its views.
    int check_store(bool expect_no_temps) {
        int complete = 0;
        for (const auto& e : fs::recursive_directory_iterator(store())) {
            if (!e.is_regular_file()) continue;
            const std::string name = e.path().filename().string();
            if (name.starts_with(".")) {
                EXPECT_FALSE(expect_no_temps) << "temp file left: " << e.path();
                continue;
            }
            if (e.path().extension() == ".npy") {
                EXPECT_NO_THROW(read_npy(e.path())) << e.path();
            }
        }
        for (int i = 0; i < kTracks; ++i) {
            const std::string t = fmt::format("piece{:02d}", i);
            if (!fs::exists(store() / "meta" / (t + ".json"))) continue;
            ++complete;
            auto side = nlohmann::json::parse(read_file(store() / "meta" / (t + ".json")));
            EXPECT_EQ(side["num_windows"], 7);  // 20 s: starts 0, 2.5, ..., 15; ends on the last sample, no tail
            EXPECT_EQ(read_npy(store() / "raw" / (t + ".npy")).describe(), "float32 [7, 3, 374, 32]");
            EXPECT_EQ(read_npy(store() / "segments" / (t + ".npy")).describe(), "float32 [7, 3, 32]");
            EXPECT_EQ(read_npy(store() / "aggregated" / (t + ".npy")).describe(), "float32 [3, 32]");
        }
        return complete;
    }
};

TEST_F(ExtractCli, KilledRunsLeaveOnlyCompleteFilesAndResume) {
    // Longer tracks so the run lasts long enough to be killed in the middle (of a write, sometimes).
    constexpr int kLong = 16;
    for (int i = 0; i < kLong; ++i)
        test::write_sound(dir / "audio" / fmt::format("long{:02d}.wav", i), test::noise(60.0, 24000, static_cast<std::uint32_t>(i)),
                          1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    int killed = 0;
    for (const char* delay : {"0.3", "0.6", "0.9", "1.2"}) {
        auto r = test::run_command(command() + " > /dev/null 2>&1 & pid=$!; sleep " + delay + "; kill -9 $pid; wait $pid; echo $?");
        killed += r.out.find("137") != std::string::npos ? 1 : 0;
        check_store(/*expect_no_temps=*/false);
    }
    EXPECT_GE(killed, 1) << "no run was still going when killed: the test proves nothing";
    auto r = test::run_command(command("--json") + " 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["processed"].get<int>() + j["cached"].get<int>(), kTracks + kLong);
    EXPECT_EQ(check_store(/*expect_no_temps=*/true), kTracks);
    EXPECT_EQ(j["num_clips"], kTracks * 7 + kLong * 23);  // 60 s: 23 windows
}

TEST_F(ExtractCli, TwoConcurrentRunsProduceEachTrackOnce) {
    auto r = test::run_command("(" + command("--json") + " > " + test::quote((dir / "a.json").string()) + " 2>/dev/null & " +
                               command("--json") + " > " + test::quote((dir / "b.json").string()) + " 2>/dev/null; wait)");
    auto a = nlohmann::json::parse(read_file(dir / "a.json"));
    auto b = nlohmann::json::parse(read_file(dir / "b.json"));
    EXPECT_EQ(a["processed"].get<int>() + b["processed"].get<int>(), kTracks) << a.dump() << b.dump();
    EXPECT_EQ(a["num_failed"], 0);
    EXPECT_EQ(b["num_failed"], 0);
    EXPECT_EQ(check_store(/*expect_no_temps=*/true), kTracks);
}

TEST_F(ExtractCli, ShardsSplitTheDatasetAndClipsRebuildsTheIndex) {
    // `mess runs shards --check` over the catalog (SQLite in the data root): the merge jobs' check.
    const std::string model = test::quote(std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny");
    const auto check = [&](const std::string& extra) {
        return test::run_command(std::string(MESS_BINARY) + " --data-root " + test::quote((dir / "data").string()) +
                                 " runs shards --dataset-id pieces --model " + model + " --count 3 --check " + extra + " 2>&1");
    };
    int processed = 0;
    for (int s = 0; s < 3; ++s) {
        auto r = test::run_command(command(fmt::format("--json --shard {}/3", s)) + " 2>/dev/null");
        ASSERT_EQ(r.exit_code, 0) << r.out;
        processed += nlohmann::json::parse(r.out)["processed"].get<int>();
        EXPECT_TRUE(fs::exists(store() / fmt::format("extract_report.shard{}of3.json", s)));
        if (s > 0) continue;
        const auto early = check("");
        EXPECT_EQ(early.exit_code, 2) << early.out;
        EXPECT_NE(early.out.find("shard 1/3 missing (no run recorded); shard 2/3 missing"), std::string::npos) << early.out;
    }
    EXPECT_EQ(processed, kTracks);
    const auto done = check("--json");
    ASSERT_EQ(done.exit_code, 0) << done.out;
    const auto shards = nlohmann::json::parse(done.out.substr(done.out.find('{')));
    EXPECT_EQ(shards["track_states"], nlohmann::json({{"done", kTracks}}));
    int tracks = 0;
    for (const auto& sh : shards["shards"]) {
        EXPECT_EQ(sh["status"], "done") << sh.dump();
        EXPECT_EQ(sh["attempts"], 1) << sh.dump();
        EXPECT_EQ(sh["processed"], sh["tracks"]) << sh.dump();
        tracks += sh["tracks"].get<int>();
    }
    EXPECT_EQ(tracks, kTracks);
    auto r = test::run_command(std::string(MESS_BINARY) + " --data-root " + test::quote((dir / "data").string()) +
                               " clips --json --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id pieces 2>/dev/null");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out)["num_clips"], kTracks * 7);
    auto env = test::run_command("JOB_COMPLETION_INDEX=1 " + command() + " 2>&1");
    EXPECT_EQ(env.exit_code, 1) << env.out;  // needs --shard-count
    EXPECT_NE(env.out.find("--shard-count"), std::string::npos) << env.out;
    EXPECT_EQ(test::run_command("JOB_COMPLETION_INDEX=1 " + command("--shard-count 3") + " > /dev/null 2>&1").exit_code, 0);
    const auto again = check("--json");  // shard 1's second attempt: every track cached
    ASSERT_EQ(again.exit_code, 0) << again.out;
    const auto second = nlohmann::json::parse(again.out.substr(again.out.find('{')))["shards"][1];
    EXPECT_EQ(second["attempts"], 2) << second.dump();
    EXPECT_EQ(second["cached"], second["tracks"]) << second.dump();
}

// --precision bf16 is recorded in every sidecar and in the index manifest; a run in another precision
// refuses the tracks it would otherwise reuse (until --force), and an index never mixes precisions.
TEST_F(ExtractCli, PrecisionIsRecordedAndNeverMixedSilently) {
    auto r = test::run_command(command("--precision bf16 --json") + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(nlohmann::json::parse(r.out.substr(r.out.find('{')))["precision"], "bf16");
    for (int i = 0; i < kTracks; ++i) {
        const auto side = nlohmann::json::parse(read_file(store() / "meta" / fmt::format("piece{:02d}.json", i)));
        EXPECT_EQ(side["precision"], "bf16");
        EXPECT_EQ(side["device"], "cpu");
    }
    // The same store in fp32: every track is refused, by name, until --force.
    r = test::run_command(command() + " 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("extracted in bf16 and this run computes fp32: --force recomputes them"), std::string::npos) << r.out;
    const std::string base = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    r = test::run_command(base + " index build --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id pieces --kind track --json 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    int manifests = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir / "data"))
        if (e.path().filename() == "manifest.json") {
            const auto m = nlohmann::json::parse(read_file(e.path()));
            EXPECT_EQ(m["precision"], "bf16") << e.path();
            EXPECT_EQ(m["device"], "cpu") << e.path();
            ++manifests;
        }
    EXPECT_EQ(manifests, 1);
    // Half of the tracks recomputed in fp32: the index refuses the mix and names both.
    r = test::run_command(command("--force --shard 0/2") + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    r = test::run_command(base + " index build --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id pieces --kind track 2>&1");
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("different precisions: bf16 ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("and fp32 ("), std::string::npos) << r.out;

    // Refused configurations.
    r = test::run_command(command("--precision fp8") + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    if (cuda_devices_here()) return;  // the refusal below needs a machine without a usable GPU
    r = test::run_command(std::string(MESS_BINARY) + " --device cuda --data-root " + test::quote((dir / "data").string()) +
                          " extract --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id pieces --model " +
                          test::quote(std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny") + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("use --device cpu"), std::string::npos) << r.out;  // no CUDA backend, or no device
    r = test::run_command(std::string(MESS_BINARY) + " --data-root " + test::quote((dir / "data").string()) + " extract --audio-dir " +
                          test::quote((dir / "audio").string()) + " --dataset-id pieces --model dsp --precision bf16 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_NE(r.out.find("built-in encoder 'dsp' computes in fp32"), std::string::npos) << r.out;
}
