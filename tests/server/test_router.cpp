// mess route over two shards of an index split by track, on loopback: every answer equals the single index's
// (one `mess serve` over the whole collection), and a shard that is down fails the request by name.
#include <chrono>
#include <future>
#include <memory>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "mess/catalog.hpp"
#include "mess/server.hpp"
#include "mess/util.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

namespace mess {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr int kRate = 24000;

// Track t of work t / 2: a melody drawn from the work's seed, the second performance a fifth higher and
// slower; 12 s long so that a track has passages that do not overlap each other.
std::vector<float> performance(int work, int variant) {
    std::vector<test::Note> notes;
    const double beat = variant == 0 ? 0.5 : 0.6;
    std::uint32_t state = 2654435761u * static_cast<std::uint32_t>(work + 1);
    for (double at = 0; at < 12; at += beat) {
        state = state * 1664525u + 1013904223u;
        const double pitch = 55 + static_cast<double>((state >> 24) % 17) + (variant == 0 ? 0 : 7);
        notes.push_back({pitch, at, beat * 0.8, 0.5 + 0.1 * static_cast<double>(work % 4)});
        if (static_cast<int>(at / beat) % 4 == 0) notes.push_back({pitch - 24, at, beat * 3.5, 0.4});
    }
    return test::render_notes(notes, 12, kRate, {3 + work, 0.6 + 0.3 * work, 1.0 + work});
}

struct Cluster {
    test::TempDir dir;
    std::unique_ptr<test::BackgroundServer> single, shard[2], router;
    std::vector<std::string> tracks;
};
Cluster* g = nullptr;

std::string mess_command(const std::string& args) {
    return std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote(g->dir.path().string()) + " " + args;
}

bool ready(int port) {
    httplib::Client c("127.0.0.1", port);
    for (int i = 0; i < 400; ++i) {
        if (auto r = c.Get("/health/ready"); r && r->status == 200) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
}

std::unique_ptr<test::BackgroundServer> serve(const std::string& indices) {
    return std::make_unique<test::BackgroundServer>(mess_command("serve --port {} --min-r2 -10 --index " + test::quote(indices)));
}

class RouterTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        g = new Cluster;
        const fs::path audio = g->dir / "audio";
        fs::create_directories(audio);
        std::vector<MetadataTable::Row> rows;
        for (int t = 0; t < 10; ++t) {
            const std::string id = fmt::format("piece{}_v{}", t / 2, t % 2);
            test::write_sound(audio / (id + ".wav"), performance(t / 2, t % 2), 1, kRate, 0x010002 /* WAV PCM16 */);
            rows.push_back({id, id, fmt::format("work{}", t / 2), {{"composer", t < 6 ? "Synth A" : "Synth B"}, {"title", fmt::format("Piece {}", t / 2)}}});
        }
        fs::copy_file(test::kRealRecording, audio / "alarm.oga");  // a real recording among them
        rows.push_back({"alarm", "alarm", "alarm", {{"composer", "freedesktop"}, {"title", "Alarm"}}});
        fs::create_directories(g->dir / "metadata");
        MetadataTable(std::move(rows)).write(g->dir / "metadata" / "set_metadata.csv");
        const std::string ds = " --audio-dir " + test::quote(audio.string()) + " --dataset-id set";
        auto run = [&](const std::string& step) {
            const auto r = test::run_command(mess_command(step + ds + " 2>&1"));
            EXPECT_EQ(r.exit_code, 0) << "mess " << step << "\n" << r.out;
        };
        run("extract --model dsp");
        std::vector<std::future<void>> builds;  // the single index and each shard's, side by side
        for (const std::string part : {"single", "shard0", "shard1"})
            builds.push_back(std::async(std::launch::async, [&, part] {
                const std::string shard = part == "single" ? "" : fmt::format(" --shard {}/2", part.back());
                for (const char* kind : {"track", "clip"})
                    run(fmt::format("index build --kind {}{} --out {}", kind, shard, test::quote((g->dir / part).string())));
            }));
        for (auto& b : builds) b.get();
        g->single = serve((g->dir / "single").string());
        for (int s = 0; s < 2; ++s) g->shard[s] = serve((g->dir / fmt::format("shard{}", s)).string());
        for (const auto* s : {g->single.get(), g->shard[0].get(), g->shard[1].get()}) ASSERT_TRUE(ready(s->port)) << "mess serve";
        g->router = std::make_unique<test::BackgroundServer>(
            mess_command(fmt::format("route --port {{}} --shard-timeout 20 --shards http://127.0.0.1:{},http://127.0.0.1:{}", g->shard[0]->port,
                                     g->shard[1]->port)));
        ASSERT_TRUE(ready(g->router->port));
        const json list = get(g->single->port, "/api/tracks?limit=500");
        for (const auto& t : list["tracks"]) g->tracks.push_back(t["track_id"]);
    }
    static void TearDownTestSuite() {
        delete g;
        g = nullptr;
    }

    static json get(int port, const std::string& target, int expect = 200) {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(60);
        auto r = c.Get(target);
        EXPECT_TRUE(r) << target;
        if (!r) return json();
        EXPECT_EQ(r->status, expect) << target << " → " << r->body;
        return json::parse(r->body, nullptr, false);
    }
    // The router's answer and the single server's agree on the query and every hit (score, order, fields).
    static void same_answer(const std::string& target, std::size_t min_hits = 1) {
        const json want = get(g->single->port, target), got = get(g->router->port, target);
        EXPECT_EQ(got["query"], want["query"]) << target;
        EXPECT_EQ(got["results"], want["results"]) << target;
        EXPECT_GE(want["results"].size(), min_hits) << target;
        EXPECT_EQ(got["index"]["shards"].size(), 2u) << target;
    }
};

TEST_F(RouterTest, ShardsSplitTheCollection) {
    const json a = get(g->shard[0]->port, "/api/tracks?limit=500"), b = get(g->shard[1]->port, "/api/tracks?limit=500");
    EXPECT_GT(a["total"].get<int>(), 0);
    EXPECT_GT(b["total"].get<int>(), 0);
    EXPECT_EQ(a["total"].get<std::size_t>() + b["total"].get<std::size_t>(), g->tracks.size());
    EXPECT_EQ(g->tracks.size(), 11u);
}

TEST_F(RouterTest, SimilarTracksEqualTheSingleIndex) {
    for (const std::string& t : g->tracks) {
        same_answer("/api/tracks/" + t + "/similar?k=3", 3);
        same_answer("/api/tracks/" + t + "/similar?k=20", 10);  // more than either shard holds
    }
    same_answer("/api/tracks/piece1_v0/similar?k=5&exclude_same=work");
    same_answer("/api/tracks/piece1_v0/similar?k=5&filter=composer:Synth%20B");
    same_answer("/api/tracks/piece2_v1/similar?k=6&aspects=dynamics:0.7,articulation:0.3");  // learned aspect spaces (dsp)
    same_answer("/api/tracks/piece3_v0/similar?k=6&unlike=dynamics&aspects=articulation");
}

TEST_F(RouterTest, PassageSearchEqualsTheSingleIndex) {
    for (const std::string& t : g->tracks) same_answer("/api/tracks/" + t + "/passages?start=0&k=12", 5);
    same_answer("/api/tracks/piece0_v1/passages?start=5&k=40&group_by_track=true");
    same_answer("/api/tracks/piece0_v1/passages?start=5&k=8&exclude_same=track&filter=composer:Synth%20A");
    same_answer("/api/tracks/piece4_v0/passages?start=2.5&k=8&aspect=dynamics");
    same_answer("/api/clips/set:piece3_v1:00002/similar?k=10");
    // Roles: every track and role; a track without that moment is the same 400 through the router.
    int answered = 0;
    for (const std::string& t : g->tracks)
        for (const char* role : {"climax", "cadence", "boundary", "modulation"}) {
            const std::string target = fmt::format("/api/tracks/{}/passages?k=10&role={}", t, role);
            httplib::Client single("127.0.0.1", g->single->port), router("127.0.0.1", g->router->port);
            const auto want = single.Get(target), got = router.Get(target);
            ASSERT_TRUE(want && got) << target;
            EXPECT_EQ(got->status, want->status) << target;
            if (want->status != 200) {
                EXPECT_EQ(json::parse(got->body), json::parse(want->body)) << target;
                continue;
            }
            ++answered;
            same_answer(target, 0);
        }
    EXPECT_GE(answered, 5);
}

TEST_F(RouterTest, UploadedAudioIsEmbeddedOnceAndSearchedEverywhere) {
    const std::string bytes = read_file(g->dir / "audio" / "piece1_v1.wav");
    for (const char* target : {"/api/search/audio?start=1&k=10", "/api/search/audio?kind=track&k=5", "/api/search/audio?k=10&aspects=dynamics"}) {
        json answers[2];
        for (int i = 0; i < 2; ++i) {
            httplib::Client c("127.0.0.1", i == 0 ? g->single->port : g->router->port);
            c.set_read_timeout(60);
            auto r = c.Post(target, bytes, "audio/wav");
            ASSERT_TRUE(r) << target;
            ASSERT_EQ(r->status, 200) << target << " → " << r->body;
            answers[i] = json::parse(r->body);
        }
        EXPECT_EQ(answers[1]["results"], answers[0]["results"]) << target;
        EXPECT_EQ(answers[1]["query"], answers[0]["query"]) << target;
    }
}

TEST_F(RouterTest, ReadRoutesMergeOrGoToTheHoldingShard) {
    for (const char* target : {"/api/tracks?limit=500", "/api/tracks?limit=3&offset=2", "/api/tracks?composer=synth%20b&limit=2",
                               "/api/tracks?q=piece&offset=9&limit=5", "/api/datasets", "/api/composers"})
        EXPECT_EQ(get(g->router->port, target), get(g->single->port, target)) << target;
    for (const std::string& t : {std::string("alarm"), std::string("piece4_v1")}) {
        EXPECT_EQ(get(g->router->port, "/api/tracks/" + t), get(g->single->port, "/api/tracks/" + t));
        EXPECT_EQ(get(g->router->port, "/api/tracks/" + t + "/waveform?points=50"), get(g->single->port, "/api/tracks/" + t + "/waveform?points=50"));
    }
    httplib::Client c("127.0.0.1", g->router->port);
    auto audio = c.Get("/api/tracks/alarm/audio", {{"Range", "bytes=0-99"}});
    ASSERT_TRUE(audio);
    EXPECT_EQ(audio->status, 206);
    EXPECT_EQ(audio->body, read_file(g->dir / "audio" / "alarm.oga").substr(0, 100));
    const json unknown = get(g->router->port, "/api/tracks/nope/similar", 404);
    EXPECT_NE(unknown["error"].get<std::string>().find("nope"), std::string::npos);
    EXPECT_EQ(get(g->router->port, "/api/tracks/piece0_v0/similar?k=0", 400)["parameter"], "k");
    EXPECT_EQ(get(g->router->port, "/api/tracks/piece0_v0/similar?rerank=min", 400)["parameter"], "rerank");
    EXPECT_EQ(get(g->router->port, "/api/works", 501)["status"], 501);
}

TEST(Router, BadConfigurationIsRefused) {
    auto refused = [](RouterConfig c, const std::string& why) {
        EXPECT_NE(test::error_message([&] { Router r(c); }, ErrorKind::usage).find(why), std::string::npos) << why;
    };
    RouterConfig c;
    refused(c, "at least one shard");
    c.shards = {"ftp://127.0.0.1:21"};
    refused(c, "ftp://127.0.0.1:21");
    c.shards = {"http://127.0.0.1:8081/api"};
    refused(c, "expected http://host:port");
    c.shards = {"http://127.0.0.1:8081/"};  // a trailing slash is fine
    c.shard_timeout_sec = 0;
    refused(c, "timeouts");
    c.shard_timeout_sec = 1;
    c.port = 70000;
    refused(c, "70000");
}

// A shard that accepts the connection and never answers: 502 naming it after --shard-timeout (1 s here).
TEST_F(RouterTest, SilentShardTimesOut) {
    test::BackgroundServer silent(std::string(MESS_PYTHON) +
                                  " -c 'import socket,time; s=socket.socket(); s.bind((\"127.0.0.1\", {})); s.listen(8); time.sleep(60)'");
    const std::string url = fmt::format("http://127.0.0.1:{}", silent.port);
    test::BackgroundServer router(
        mess_command(fmt::format("route --port {{}} --shard-timeout 1 --shards http://127.0.0.1:{},{}", g->shard[0]->port, url)));
    ASSERT_TRUE(test::port_open(router.port));
    const auto t0 = std::chrono::steady_clock::now();
    const json e = get(router.port, "/api/tracks/piece0_v0/similar?k=3", 502);
    EXPECT_EQ(e["shard"], url);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
}

// Last: stops a shard. Every search then fails with 502 naming it; readiness says which shard is down.
TEST_F(RouterTest, ShardDownIsNamed) {
    const std::string url = fmt::format("http://127.0.0.1:{}", g->shard[1]->port);
    g->shard[1].reset();
    for (const char* target : {"/api/tracks/piece0_v0/similar?k=5", "/api/tracks/piece0_v0/passages?k=5", "/api/tracks?limit=5"}) {
        const json e = get(g->router->port, target, 502);
        EXPECT_EQ(e["shard"], url) << target;
        EXPECT_NE(e["error"].get<std::string>().find(url), std::string::npos) << e.dump();
    }
    const json health = get(g->router->port, "/health/ready", 503);
    EXPECT_FALSE(health["shards"][1]["ready"].get<bool>());
    EXPECT_TRUE(health["shards"][0]["ready"].get<bool>());
}

}  // namespace
}  // namespace mess
