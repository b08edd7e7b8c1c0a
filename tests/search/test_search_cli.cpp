// `mess index build` and `mess search` on real extraction (the tiny MERT fixture over tones and a real
// recording): track and passage queries, audio queries, aspects, errors; index.faiss opened by Python faiss.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

TEST(SearchCli, BuildSearchAndReadWithPythonFaiss) {
    test::TempDir dir;
    fs::create_directories(dir / "audio");
    fs::copy_file(test::kRealRecording, dir / "audio/alarm.oga");
    for (int i = 0; i < 8; ++i)
        test::write_sound(dir / "audio" / fmt::format("p{}.wav", i), test::tone(110.0 * (1 + i % 4), 12.0, 24000, 0.1f + 0.1f * static_cast<float>(i % 3)),
                          1, 24000, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    const std::string ds = " --audio-dir " + test::quote((dir / "audio").string()) + " --dataset-id toy";
    ASSERT_EQ(test::run_command(mess + " extract" + ds + " --threads 1 --model " +
                                test::quote(std::string(MESS_FIXTURES_DIR) + "/mert/mert95m_tiny") + " 2>&1").exit_code, 0);
    ASSERT_EQ(test::run_command(mess + " targets --no-windows" + ds + " 2>&1").exit_code, 0);
    ASSERT_EQ(test::run_command(mess + " probe --controls 0" + ds + " 2>&1").exit_code, 0);

    auto built = test::run_command(mess + " index build --json --kind clip --layer 1" + ds + " 2>/dev/null");
    ASSERT_EQ(built.exit_code, 0) << built.out;
    const auto b = nlohmann::json::parse(built.out);
    const std::string clip_dir = b["artifact_dir"];
    EXPECT_EQ(b["manifest"]["kind"], "clip");
    EXPECT_EQ(b["manifest"]["ntotal"], 8 * 4 + 2);  // 12 s → 4 windows; 6.1 s → 2
    EXPECT_TRUE(b["manifest"].contains("aspects"));
    ASSERT_EQ(test::run_command(mess + " index build --factory HNSW16" + ds + " 2>&1").exit_code, 0);

    auto hits = test::run_command(mess + " search --json --index " + test::quote(clip_dir) + " --track p1 --start 3 --k 5 2>&1");
    ASSERT_EQ(hits.exit_code, 0) << hits.out;
    auto h = nlohmann::json::parse(hits.out)["results"];
    ASSERT_EQ(h.size(), 5u);
    for (const auto& x : h)  // the query window (start 2.5) and its overlapping neighbours are excluded
        if (x["track_id"] == "p1") {
            EXPECT_GE(std::abs(x["start_sec"].get<double>() - 2.5), 5.0) << x.dump();
        }
    EXPECT_EQ(h[0]["track_id"], "p5");  // the same tone and loudness

    auto audio = test::run_command(mess + " search --json --index " + test::quote(clip_dir) + " --audio " +
                                   test::quote((dir / "audio/p2.wav").string()) + " --start 5 --k 3 2>&1");
    ASSERT_EQ(audio.exit_code, 0) << audio.out;
    EXPECT_EQ(nlohmann::json::parse(audio.out)["results"][0]["track_id"], "p2");
    EXPECT_NEAR(nlohmann::json::parse(audio.out)["results"][0]["score"].get<double>(), 1.0, 1e-3);

    auto tracks = test::run_command(mess + " search --index " + test::quote((dir / "data/indices").string()) +
                                    " --name track_index --track alarm --k 3 --aspects dynamics=1,brightness=0.5 --min-r2 -100 --no-r2-scaling 2>&1");
    EXPECT_EQ(tracks.exit_code, 0) << tracks.out;
    auto unvalidated = test::run_command(mess + " search --index " + test::quote((dir / "data/indices").string()) +
                                         " --name track_index --track alarm --aspect nonsense 2>&1");
    EXPECT_EQ(unvalidated.exit_code, 1);
    EXPECT_NE(unvalidated.out.find("available:"), std::string::npos) << unvalidated.out;
    auto unknown = test::run_command(mess + " search --index " + test::quote(clip_dir) + " --track nope 2>&1");
    EXPECT_EQ(unknown.exit_code, 2);
    EXPECT_NE(unknown.out.find("nope"), std::string::npos);
    EXPECT_EQ(test::run_command(mess + " index build --factory Bogus" + ds + " 2>&1").exit_code, 1);

    auto py = test::run_command(std::string(MESS_PYTHON) + " -c " +
                                test::quote("import faiss, json, sys\n"
                                            "ix = faiss.read_index(sys.argv[1] + '/index.faiss')\n"
                                            "m = json.load(open(sys.argv[1] + '/manifest.json'))\n"
                                            "assert ix.ntotal == m['ntotal'] and ix.d == m['dimension'], (ix.ntotal, ix.d)\n"
                                            "assert ix.metric_type == faiss.METRIC_INNER_PRODUCT\n"
                                            "print('faiss ok', ix.ntotal)\n") +
                                " " + test::quote(clip_dir) + " 2>&1");
    EXPECT_EQ(py.exit_code, 0) << py.out;
}
