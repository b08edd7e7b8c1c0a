// The HTTP API end to end: eight short synthetic recordings (four pieces, each as written and in one
// expressive variant) prepared with the mess CLI (dsp features, targets, probing, track and clip indexes
// with media), served in process on a free port and queried over real HTTP; then the web UI driven by
// Debian's headless Chromium.
#include <array>
#include <atomic>
#include <cstdlib>
#include <future>
#include <set>
#include <thread>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "mess/artifacts.hpp"
#include "mess/audio.hpp"
#include "mess/catalog.hpp"
#include "mess/db.hpp"
#include "mess/server.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

namespace mess {
namespace {
namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::size_t kUploadLimit = 512u << 10;
constexpr int kTracks = 8;
constexpr int kRate = 24000;

// A piece: a melody over a bass note, and the transform of its second recording (the first is as written).
// 02-lament lasts 11 s so that the passage test's query window (at 5 s) has a window of its own track that
// does not overlap it (at 0 s); the others last 8 s (windows at 0, 2.5 and 3 s).
struct Work {
    const char* id;
    const char* title;
    std::vector<std::pair<int, double>> melody;  // MIDI pitch, length in beats
    int bass;
    test::Timbre timbre;
    const char* variant;  // tempo | transpose | articulation | timbre
    double seconds;
};
const std::vector<Work>& works() {
    static const std::vector<Work> w = {
        {"01-arpeggio", "Rising Arpeggio", {{60, 1}, {64, 1}, {67, 1}, {72, 1}, {67, 1}, {64, 1}, {60, 2}}, 48, {6, 1.0, 3.0}, "tempo", 8},
        {"02-lament", "Minor Lament", {{57, 1.5}, {60, 0.5}, {64, 2}, {63, 1}, {60, 1}, {59, 2}}, 45, {4, 1.5, 1.5}, "transpose", 11},
        {"03-march", "Quick March", {{67, 0.5}, {67, 0.5}, {72, 1}, {71, 0.5}, {69, 0.5}, {67, 2}, {74, 1}, {66, 1}}, 43, {8, 0.8, 5.0}, "articulation", 8},
        {"04-chorale", "Slow Chorale", {{60, 2}, {62, 2}, {64, 2}, {62, 2}, {60, 4}}, 36, {10, 0.7, 0.2}, "timbre", 8},
    };
    return w;
}

// One recording of a work: variant 0 as written (120 BPM, legato), variant 1 with the work's transform.
std::vector<float> perform(const Work& w, int variant) {
    const std::string t = variant == 0 ? "original" : w.variant;
    const double beat = 60.0 / (t == "tempo" ? 80.0 : 120.0), legato = t == "articulation" ? 0.3 : 0.9;
    const int shift = t == "transpose" ? 5 : 0;
    test::Timbre timbre = w.timbre;
    if (t == "timbre") timbre = {3, 2.5, 4.0};
    std::vector<test::Note> notes;
    for (double at = 0; at < w.seconds;)
        for (auto [pitch, beats] : w.melody) {
            notes.push_back({static_cast<double>(pitch + shift), at, beats * beat * legato, 0.75});
            notes.push_back({static_cast<double>(w.bass + shift), at, beats * beat * 0.9, 0.45});
            at += beats * beat;
        }
    return test::render_notes(notes, w.seconds, kRate, timbre);
}


// A raw TCP client, for what httplib's client will not send (slow, partial, lying or malformed requests).
class Raw {
public:
    explicit Raw(int port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<std::uint16_t>(port));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~Raw() {
        if (fd_ >= 0) ::close(fd_);
    }
    Raw(const Raw&) = delete;
    bool connected() const { return connected_; }
    bool send(const std::string& bytes) {
        std::size_t done = 0;
        while (done < bytes.size()) {
            const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
            if (n <= 0) return false;
            done += static_cast<std::size_t>(n);
        }
        return true;
    }
    // Waits up to `ms` for readable data (or the peer's close).
    bool readable(int ms) const {
        pollfd p{fd_, POLLIN, 0};
        return ::poll(&p, 1, ms) > 0;
    }
    // One answer: the status line and headers, then Content-Length bytes; "" when none came within `ms`.
    std::string response(int ms = 5000) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
        std::string& got = pending_;
        for (;;) {
            if (const auto end = got.find("\r\n\r\n"); end != std::string::npos) {
                std::size_t length = 0;
                if (const auto at = to_lower(got.substr(0, end)).find("content-length:"); at != std::string::npos)
                    length = std::stoul(got.substr(at + 15));
                if (got.size() >= end + 4 + length) {
                    std::string one = got.substr(0, end + 4 + length);
                    got.erase(0, one.size());
                    return one;
                }
            }
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now()).count();
            if (left <= 0 || !readable(static_cast<int>(left))) return std::exchange(got, {});
            char buf[65536];
            const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) return std::exchange(got, {});
            got.append(buf, static_cast<std::size_t>(n));
        }
    }
    // True when the server closed the connection (within `ms`).
    bool closed(int ms) {
        if (!readable(ms)) return false;
        char c;
        return ::recv(fd_, &c, 1, MSG_PEEK) <= 0;
    }

private:
    int fd_ = -1;
    bool connected_ = false;
    std::string pending_;  // bytes of the next answer
};

int status_of(const std::string& response) { return response.size() > 12 ? std::atoi(response.c_str() + 9) : 0; }
std::string body_of(const std::string& response) {
    const auto at = response.find("\r\n\r\n");
    return at == std::string::npos ? "" : response.substr(at + 4);
}
std::string header_of(const std::string& response, const std::string& name) {
    const std::string lower = to_lower(response.substr(0, response.find("\r\n\r\n")));
    const auto at = lower.find("\r\n" + to_lower(name) + ":");
    if (at == std::string::npos) return "";
    const auto start = at + 3 + name.size(), end = response.find("\r\n", start);
    std::string v = response.substr(start, end - start);
    return v.erase(0, v.find_first_not_of(' '));
}
std::string get_request(const std::string& target) { return "GET " + target + " HTTP/1.1\r\nHost: test\r\n\r\n"; }
// Milliseconds to answer GET `target` on a fresh connection (status in *status).
double timed_get(int port, const std::string& target, int* status) {
    const auto t0 = std::chrono::steady_clock::now();
    Raw r(port);
    r.send(get_request(target));
    *status = status_of(r.response(10000));
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

struct Corpus {
    test::TempDir dir;
    fs::path audio, indices;
    std::unique_ptr<Server> server;
    int port = 0;
};
Corpus* g = nullptr;

std::unique_ptr<Server> start_server(ServeConfig c) {
    auto s = std::make_unique<Server>(std::move(c));
    s->start();
    return s;
}

ServeConfig base_config(const fs::path& source) {
    ServeConfig c;
    c.index_source = source.string();
    c.port = 0;
    c.data_root = g->dir.path();
    c.web_root = fs::path(MESS_SOURCE_DIR) / "web" / "dist";
    c.min_r2 = -10;  // an 8-recording corpus validates few aspects; offer every resolved one
    c.max_upload_bytes = kUploadLimit;
    c.cors_origins = {"http://allowed.example"};
    return c;
}

bool wait_ready(const Server& s) {
    for (int i = 0; i < 300 && !s.ready(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return s.ready();
}

class ServerTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        g = new Corpus;
        g->audio = g->dir / "audio";
        g->indices = g->dir / "indices";
        fs::create_directories(g->audio);
        std::vector<MetadataTable::Row> rows;
        for (const Work& w : works())
            for (int v = 0; v < 2; ++v) {
                const std::string id = std::string(w.id) + "__v0" + std::to_string(v);
                test::write_sound(g->audio / (id + ".wav"), perform(w, v), 1, kRate, 0x010002 /* WAV PCM16 */);
                rows.push_back({id, id, w.id, {{"title", w.title}, {"composer", "Additive Synthesis"}, {"variant", v == 0 ? "original" : w.variant}}});
            }
        // Titles, composers and works for the browser, as `mess demo` writes them; extraction keeps the table.
        fs::create_directories(g->dir / "metadata");
        MetadataTable(std::move(rows)).write(g->dir / "metadata" / "synth_metadata.csv");
        const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote(g->dir.path().string());
        const std::string ds = " --audio-dir " + test::quote(g->audio.string()) + " --dataset-id synth";
        auto run = [&](const std::string& step) {
            const auto r = test::run_command(mess + " " + step + ds + " 2>&1");
            EXPECT_EQ(r.exit_code, 0) << "mess " << step << "\n" << r.out;
            return r.exit_code == 0;
        };
        // Targets read only the audio (no per-window values): they are computed while the features are
        // extracted. Without the 30-s curves, which these short recordings hardly fill: the scalar targets
        // validate enough aspects for the aspect routes and the UI's sliders.
        auto features = std::async(std::launch::async, run, "extract --model dsp");
        const bool targets = run("targets --no-windows --no-curves");
        ASSERT_TRUE(features.get() && targets);
        const std::string out = " --out " + test::quote(g->indices.string());
        for (const std::string& step : {std::string("probe"), "index build --kind track" + out, "index build --kind clip" + out}) ASSERT_TRUE(run(step));
        g->server = start_server(base_config(g->indices));
        g->port = g->server->port();
        ASSERT_TRUE(wait_ready(*g->server)) << g->server->load_error();
    }
    static void TearDownTestSuite() {
        delete g;
        g = nullptr;
    }

    static httplib::Client client() {
        httplib::Client c("127.0.0.1", g->port);
        c.set_read_timeout(60);
        return c;
    }
    static json get_json(const std::string& path, int expect) {
        auto c = client();
        auto res = c.Get(path);
        EXPECT_TRUE(res) << path;
        if (!res) return json();
        EXPECT_EQ(res->status, expect) << path << " → " << res->body;
        EXPECT_EQ(res->get_header_value("Content-Type"), "application/json") << path;
        return json::parse(res->body);
    }
    static std::vector<std::string> track_ids() {
        std::vector<std::string> ids;
        const json page = get_json("/api/tracks?limit=500", 200);
        for (const auto& t : page["tracks"]) ids.push_back(t["track_id"]);
        return ids;
    }
    static std::string audio_file(const std::string& track_id) { return (g->audio / (track_id + ".wav")).string(); }
    // The first `seconds` of a recording as WAV bytes.
    static std::string excerpt(const std::string& track_id, int seconds) {
        const Audio a = decode_audio(audio_file(track_id));
        std::vector<float> part(a.samples.begin(), a.samples.begin() + seconds * a.sample_rate);
        test::TempDir tmp;
        test::write_sound(tmp / "excerpt.wav", part, 1, a.sample_rate, 0x010002 /* WAV PCM16 */);
        return read_file(tmp / "excerpt.wav");
    }
};

TEST_F(ServerTest, HealthAndReadiness) {
    const json h = get_json("/health", 200);
    EXPECT_EQ(h["status"], "ok");
    EXPECT_EQ(h["tracks"], kTracks);
    EXPECT_EQ(h["indexes"]["track"]["ntotal"], kTracks);
    EXPECT_EQ(h["indexes"]["clip"]["model"], "dsp");
    EXPECT_EQ(get_json("/health/live", 200)["status"], "alive");
    EXPECT_TRUE(get_json("/health/ready", 200)["ready"].get<bool>());
    // After several connections came and went, no connection count is negative or above the open ones.
    const json c = get_json("/health", 200)["connections"];
    for (const char* state : {"waiting", "queued", "busy"}) {
        EXPECT_GE(c[state].get<std::int64_t>(), 0) << state << ": " << c.dump();
        EXPECT_LE(c[state].get<std::int64_t>(), c["open"].get<std::int64_t>()) << state << ": " << c.dump();
    }
}

// Every documented route answers (no "no route"), and every route answers what the document says.
TEST_F(ServerTest, OpenApiMatchesTheRoutes) {
    const json doc = get_json("/openapi.json", 200);
    EXPECT_EQ(doc["openapi"], "3.0.3");
    const std::string track = track_ids().front();
    const std::string clip = "synth:" + track + ":00001";
    const std::string upload = excerpt(track, 6);
    const std::map<std::string, std::string> required_example = {
        {"a", "03-march__v00"}, {"b", "03-march__v01"}, {"listener", "openapi-check"}, {"kind", "track"}};
    const json triplet = get_json("/api/listen/next?listener=openapi-check", 200);
    const json shard_query = get_json("/api/tracks/" + track + "/similar?shard_query=true", 200)["shard_query"];  // a router's first step
    const std::map<std::string, std::pair<std::string, std::string>> post_body = {  // path → body, type
        {"/api/search/audio", {upload, "audio/wav"}},
        {"/api/listen/judgements",
         {json{{"anchor", triplet["anchor"]["id"]}, {"a", triplet["a"]["id"]}, {"b", triplet["b"]["id"]}, {"choice", "a"}, {"listener", "openapi-check"}, {"time_ms", 1}}.dump(),
          "application/json"}},
        {"/api/shard/search", {shard_query.dump(), "application/json"}}};
    std::set<std::string> documented;
    for (const auto& [path, ops] : doc["paths"].items()) {
        std::string url = path;
        if (auto p = url.find("{track_id}"); p != std::string::npos) url.replace(p, 10, track);
        if (auto p = url.find("{clip_id}"); p != std::string::npos) url.replace(p, 9, clip);
        if (auto p = url.find("{work_id}"); p != std::string::npos) url.replace(p, 9, "03-march");
        for (const auto& [method, op] : ops.items()) {
            documented.insert(method + " " + path);
            EXPECT_TRUE(op.contains("summary") && op["responses"].contains("200")) << path;
            std::string target = url;  // with the route's required query parameters (a and b of /api/align)
            for (const auto& p : op["parameters"])
                if (p["in"] == "query" && p["required"].get<bool>())
                    target += (target == url ? "?" : "&") + p["name"].get<std::string>() + "=" + required_example.at(p["name"]);
            auto c = client();
            auto res = method == "post" ? c.Post(target, post_body.at(path).first, post_body.at(path).second) : c.Get(target);
            ASSERT_TRUE(res) << target;
            EXPECT_LT(res->status, 300) << method << " " << target << " → " << res->body;
            for (const auto& p : op["parameters"])
                if (p["in"] == "query") {
                    EXPECT_TRUE(p["schema"].contains("type")) << path << " " << p["name"];
                }
        }
    }
    for (const char* must : {"get /api/tracks", "get /api/tracks/{track_id}/similar", "get /api/tracks/{track_id}/passages",
                             "get /api/clips/{clip_id}/similar", "post /api/search/audio", "get /api/tracks/{track_id}/audio",
                             "get /api/tracks/{track_id}/waveform", "get /api/aspects", "get /api/align", "get /api/works",
                             "get /api/works/{work_id}/compare", "get /api/listen/next", "post /api/listen/judgements",
                             "get /api/listen/export", "get /metrics", "get /health/ready", "get /openapi.json"})
        EXPECT_TRUE(documented.contains(must)) << must;
    // An undocumented route is a JSON 404 that points at the document.
    const json missing = get_json("/api/nothing", 404);
    EXPECT_NE(missing["error"].get<std::string>().find("openapi"), std::string::npos);
}

// The same track list from the catalog database (`mess extract` registered the tracks in the data root's
// SQLite catalog): same answers and shape, tracks of the index with their duration and audio.
TEST_F(ServerTest, TrackListFromTheCatalog) {
    ServeConfig c = base_config(g->indices);
    c.catalog = "sqlite:" + (g->dir / "catalog.sqlite").string();
    auto server = start_server(c);
    ASSERT_TRUE(wait_ready(*server)) << server->load_error();
    httplib::Client client("127.0.0.1", server->port());
    auto get = [&](const std::string& path) {
        auto res = client.Get(path);
        EXPECT_TRUE(res && res->status == 200) << path << (res ? " → " + res->body : "");
        return res ? json::parse(res->body) : json();
    };
    for (const std::string q : {"limit=500", "variant=original", "q=rising%20arp", "dataset=synth", "dataset=other",
                                 "composer=synthesis", "limit=5&offset=5"}) {
        const json from_catalog = get("/api/tracks?" + q), from_index = get_json("/api/tracks?" + q, 200);
        EXPECT_EQ(from_catalog["total"], from_index["total"]) << q;
        EXPECT_EQ(from_catalog["next_offset"], from_index["next_offset"]) << q;
        EXPECT_EQ(from_catalog["total_exact"], true) << q;  // a few matches: counted (more than 1000: false)
        EXPECT_EQ(from_index["total_exact"], true) << q;
        std::set<std::string> a, b;
        for (const auto& t : from_catalog["tracks"]) a.insert(t.dump());
        for (const auto& t : from_index["tracks"]) b.insert(t.dump());
        if (q != "limit=5&offset=5") {
            EXPECT_EQ(a, b) << q;  // the same objects (pages differ: the catalog orders by id)
        }
    }
    server->stop();
}

TEST_F(ServerTest, TracksPaginateFilterAndSearch) {
    const json first = get_json("/api/tracks?limit=5", 200);
    EXPECT_EQ(first["total"], kTracks);
    EXPECT_EQ(first["tracks"].size(), 5u);
    EXPECT_EQ(first["next_offset"], 5);
    const json last = get_json("/api/tracks?limit=5&offset=5", 200);
    EXPECT_EQ(last["tracks"].size(), 3u);
    EXPECT_TRUE(last["next_offset"].is_null());
    std::set<std::string> seen;
    for (int off = 0; off < kTracks; off += 5) {
        const json page = get_json("/api/tracks?limit=5&offset=" + std::to_string(off), 200);
        for (const auto& t : page["tracks"]) seen.insert(t["track_id"]);
    }
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(kTracks));

    EXPECT_EQ(get_json("/api/tracks?variant=original", 200)["total"], 4);          // any metadata column
    EXPECT_EQ(get_json("/api/tracks?q=rising%20arp", 200)["total"], 2);            // text search over titles
    EXPECT_EQ(get_json("/api/tracks?dataset=synth", 200)["total"], kTracks);
    EXPECT_EQ(get_json("/api/tracks?dataset=other", 200)["total"], 0);
    EXPECT_EQ(get_json("/api/tracks?composer=synthesis", 200)["total"], kTracks);  // substring, case-insensitive
    EXPECT_EQ(get_json("/api/tracks?bogus=1", 400)["parameter"], "bogus");
    EXPECT_EQ(get_json("/api/tracks?limit=0", 400)["parameter"], "limit");
    EXPECT_EQ(get_json("/api/tracks?offset=abc", 400)["parameter"], "offset");
    EXPECT_EQ(get_json("/api/datasets", 200)["datasets"][0]["passages"].get<int>() > kTracks, true);
    EXPECT_EQ(get_json("/api/composers", 200)["composers"][0]["track_count"], kTracks);

    const json one = get_json("/api/tracks/01-arpeggio__v00", 200);
    EXPECT_EQ(one["metadata"]["title"], "Rising Arpeggio");
    EXPECT_EQ(one["work_id"], "01-arpeggio");
    EXPECT_TRUE(one["has_audio"].get<bool>());
    EXPECT_EQ(get_json("/api/tracks/no-such-track", 404)["parameter"], "track_id");
}

TEST_F(ServerTest, SimilarTracksAndAspects) {
    const json r = get_json("/api/tracks/01-arpeggio__v00/similar?k=3", 200);
    ASSERT_EQ(r["results"].size(), 3u);
    for (const auto& h : r["results"]) EXPECT_NE(h["track_id"], "01-arpeggio__v00");
    EXPECT_GE(r["results"][0]["score"].get<double>(), r["results"][2]["score"].get<double>());
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?exclude_same=work", 200)["results"][0]["work_id"] != "01-arpeggio", true);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?filter=variant:original", 200)["results"].size(), 3u);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?filter=variant%3Doriginal&filter=work_id:02-lament", 200)["results"].size(), 1u);

    const json listed = get_json("/api/aspects", 200), aspects = listed["aspects"];
    ASSERT_FALSE(aspects.empty());
    for (const auto& a : aspects) EXPECT_TRUE(a.contains("r2_score") && a.contains("confidence") && a.contains("description"));
    // A probed aspect without a learned model of the same name (a learned one ranks in its own space, without layer weights).
    std::set<std::string> learned;
    for (const auto& l : listed["learned"]) learned.insert(l["aspect"].get<std::string>());
    const auto probed = std::find_if(aspects.begin(), aspects.end(), [&](const json& a) { return !learned.contains(a["aspect"].get<std::string>()); });
    ASSERT_NE(probed, aspects.end());
    const std::string name = (*probed)["aspect"];
    const json weighted = get_json("/api/tracks/01-arpeggio__v00/similar?k=3&aspects=" + name + ":1", 200);
    EXPECT_EQ(weighted["layer_weights"].size(), 6u);  // one weight per dsp layer (expression included)
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?k=3&aspects=" + name + "%3D1", 200)["layer_weights"], weighted["layer_weights"]);
    // Learned aspect spaces (the dsp models shipped in models/aspects, picked up by index build): listed, ranked
    // by, each hit explained; unlike, more/less, words and the two-stage reduction are checked by name.
    ASSERT_FALSE(get_json("/api/aspects", 200)["learned"].empty());
    const json by_tempo = get_json("/api/tracks/01-arpeggio__v00/similar?k=3&aspects=tempo:1", 200);
    EXPECT_EQ(by_tempo["learned_aspects"]["tempo"], 1.0);
    EXPECT_NEAR(by_tempo["results"][0]["score"].get<double>(), by_tempo["results"][0]["aspects"]["tempo"].get<double>(), 1e-5);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?k=3&aspects=timbre:1&unlike=tempo&more=dynamics", 200)["learned_aspects"]["tempo"], -1.0);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?text=like%20this%20but%20groovier", 400)["parameter"], "text");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?rerank=avg", 400)["parameter"], "rerank");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?aspect=no_such_aspect", 400)["parameter"], "aspect");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?aspect=a&aspects=b=1", 400)["parameter"], "aspects");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?k=0", 400)["parameter"], "k");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?k=2.5", 400)["parameter"], "k");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?exclude_same=album", 400)["parameter"], "exclude_same");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?filter=novalue", 400)["parameter"], "filter");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v00/similar?start=3", 400)["parameter"], "start");  // not a parameter here
    get_json("/api/tracks/nope/similar", 404);

    // The server answers from neighbour lists computed at load; they equal an exact scan of the artifact.
    EXPECT_EQ(get_json("/health", 200)["indexes"]["track"]["neighbour_lists"], kTracks);
    const LoadedArtifact artifact = load_artifact(resolve_artifact_dir(g->indices, "track_index"));
    ASSERT_FALSE(artifact.index.neighbours);
    for (const std::string& id : track_ids())
        for (const char* exclude : {"", "work"}) {
            QueryOptions q;
            q.k = 5;
            q.exclude_same = parse_same_scope(exclude);
            const auto want = similar_tracks(artifact.index, id, q);
            const std::string scope = to_string(q.exclude_same);
            const json got = get_json("/api/tracks/" + id + "/similar?k=5" + (scope.empty() ? "" : "&exclude_same=" + scope), 200)["results"];
            ASSERT_EQ(got.size(), want.size()) << id;
            for (std::size_t i = 0; i < want.size(); ++i) {
                EXPECT_EQ(got[i]["id"], want[i].record->id) << id;
                EXPECT_NEAR(got[i]["score"].get<double>(), want[i].score, 1e-6) << id;
            }
        }
}

TEST_F(ServerTest, PassagesByTrackMomentAndClip) {
    const json r = get_json("/api/tracks/02-lament__v00/passages?start=4&k=5", 200);
    ASSERT_FALSE(r["results"].empty());
    for (const auto& h : r["results"]) {
        EXPECT_TRUE(h.contains("start_sec") && h.contains("end_sec"));
        if (h["track_id"] == "02-lament__v00") {  // the query window and its overlapping neighbours are excluded
            EXPECT_GE(std::fabs(h["start_sec"].get<double>() - 5.0), 5.0);
        }
    }
    const json grouped = get_json("/api/tracks/02-lament__v00/passages?start=4&k=20&group_by_track=true", 200);
    std::set<std::string> tracks;
    for (const auto& h : grouped["results"]) EXPECT_TRUE(tracks.insert(h["track_id"]).second) << "two passages of one track";
    const std::string clip = r["results"][0]["id"];
    EXPECT_FALSE(get_json("/api/clips/" + clip + "/similar?k=3", 200)["results"].empty());
    EXPECT_EQ(get_json("/api/clips/synth:nope:00000/similar", 404)["parameter"], "clip_id");
    EXPECT_EQ(get_json("/api/tracks/02-lament__v00/passages?start=-1", 400)["parameter"], "start");
    EXPECT_EQ(get_json("/api/tracks/02-lament__v00/passages?start=9999", 400)["parameter"], "start");
    EXPECT_EQ(get_json("/api/tracks/02-lament__v00/passages?group_by_track=maybe", 400)["parameter"], "group_by_track");
    // Passages with their context (neighbouring windows aligned too): answered, and a context out of range refused.
    const json in_context = get_json("/api/tracks/02-lament__v00/passages?start=4&k=5&context=2", 200);
    ASSERT_FALSE(in_context["results"].empty());
    for (const auto& h : in_context["results"])  // of its own track, no window whose context shares audio with the query's (5 s ± 2 windows)
        if (h["track_id"] == "02-lament__v00") {
            EXPECT_GE(std::fabs(h["start_sec"].get<double>() - 5.0), 15.0);
        }
    EXPECT_EQ(get_json("/api/tracks/02-lament__v00/passages?start=4&context=21", 400)["parameter"], "context");
}

// Structure stored by `mess index build` and served; passages restricted to the climax (every recording here
// is short and has one climax, no modulation).
TEST_F(ServerTest, StructureAndRoleRestrictedPassages) {
    const json s = get_json("/api/tracks/02-lament__v00/structure", 200);
    EXPECT_EQ(s["track_id"], "02-lament__v00");
    for (const char* key : {"boundaries", "sections", "keys", "modulations", "cadences"}) EXPECT_TRUE(s[key].is_array()) << key;
    ASSERT_TRUE(s["climax"].is_object());
    EXPECT_NEAR(s["duration_sec"].get<double>(), 11.0, 0.1);
    EXPECT_EQ(get_json("/api/tracks/nope/structure", 404)["parameter"], "track_id");

    const json r = get_json("/api/tracks/02-lament__v00/passages?role=climax&k=20", 200);
    EXPECT_EQ(r["query"]["role"], "climax");
    EXPECT_DOUBLE_EQ(r["query"]["moment"]["time"].get<double>(), s["climax"]["time"].get<double>());
    ASSERT_FALSE(r["results"].empty());
    std::set<std::string> tracks;
    for (const auto& h : r["results"]) {
        const double t = h["role"]["time"];
        EXPECT_EQ(h["role"]["name"], "climax");
        EXPECT_TRUE(t >= h["start_sec"].get<double>() && t < h["end_sec"].get<double>()) << h.dump();
        const json other = get_json("/api/tracks/" + h["track_id"].get<std::string>() + "/structure", 200);
        EXPECT_DOUBLE_EQ(t, other["climax"]["time"].get<double>()) << h["track_id"];  // each hit holds its track's climax
        EXPECT_TRUE(tracks.insert(h["track_id"]).second) << "one climax per track";
    }
    EXPECT_EQ(get_json("/api/tracks/02-lament__v00/passages?role=bridge", 400)["parameter"], "role");
    const json none = get_json("/api/tracks/02-lament__v00/passages?role=modulation", 400);
    EXPECT_NE(none["error"].get<std::string>().find("no modulation"), std::string::npos) << none.dump();
    const std::string clip = r["results"][0]["id"];
    for (const auto& h : get_json("/api/clips/" + clip + "/similar?role=climax", 200)["results"]) EXPECT_EQ(h["role"]["name"], "climax");
}

TEST_F(ServerTest, SearchByUploadedAudio) {
    // A 6-s excerpt of a recording, uploaded raw and as multipart: its own passage comes first.
    const std::string bytes = excerpt("03-march__v01", 6);
    auto c = client();
    auto raw = c.Post("/api/search/audio?k=3&start=0", bytes, "audio/wav");
    ASSERT_TRUE(raw);
    ASSERT_EQ(raw->status, 200) << raw->body;
    const json jr = json::parse(raw->body);
    EXPECT_EQ(jr["results"][0]["id"], "synth:03-march__v01:00000");
    EXPECT_GT(jr["results"][0]["score"].get<double>(), 0.99);

    httplib::MultipartFormDataItems items = {{"file", bytes, "excerpt.wav", "audio/wav"}};
    auto multi = c.Post("/api/search/audio?k=3&kind=track", items);
    ASSERT_TRUE(multi);
    ASSERT_EQ(multi->status, 200) << multi->body;
    EXPECT_EQ(json::parse(multi->body)["index"]["kind"], "track");

    auto big = c.Post("/api/search/audio", std::string(kUploadLimit + 1000, 'x'), "audio/wav");
    ASSERT_TRUE(big);
    EXPECT_EQ(big->status, 413);
    EXPECT_NE(json::parse(big->body)["error"].get<std::string>().find("limit"), std::string::npos);
    auto corrupt = c.Post("/api/search/audio", std::string(4000, 'x'), "audio/wav");
    ASSERT_TRUE(corrupt);
    EXPECT_EQ(corrupt->status, 400);
    EXPECT_EQ(json::parse(corrupt->body)["parameter"], "file");
    EXPECT_EQ(corrupt->body.find("mess-upload"), std::string::npos) << "no server paths in errors";
    auto empty = c.Post("/api/search/audio", std::string(), "audio/wav");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->status, 400);
    auto late = c.Post("/api/search/audio?start=60", bytes, "audio/wav");
    ASSERT_TRUE(late);
    EXPECT_EQ(late->status, 400);
    EXPECT_EQ(json::parse(late->body)["parameter"], "start");
    auto kind = c.Post("/api/search/audio?kind=album", bytes, "audio/wav");
    ASSERT_TRUE(kind);
    EXPECT_EQ(kind->status, 400);
}

TEST_F(ServerTest, AudioStreamingWithRanges) {
    const std::string path = "/api/tracks/04-chorale__v01/audio";
    const std::string file = read_file(audio_file("04-chorale__v01"));
    const std::size_t size = file.size();
    auto c = client();
    auto get = [&](const char* range) {
        httplib::Headers h;
        if (range) h.emplace("Range", range);
        auto res = c.Get(path, h);
        EXPECT_TRUE(res);
        return res;
    };
    auto full = get(nullptr);
    EXPECT_EQ(full->status, 200);
    EXPECT_EQ(full->body, file);
    EXPECT_EQ(full->get_header_value("Content-Type"), "audio/wav");
    EXPECT_EQ(full->get_header_value("Accept-Ranges"), "bytes");

    auto head = get("bytes=0-99");
    EXPECT_EQ(head->status, 206);
    EXPECT_EQ(head->body, file.substr(0, 100));
    EXPECT_EQ(head->get_header_value("Content-Range"), "bytes 0-99/" + std::to_string(size));
    auto tail = get("bytes=-10");
    EXPECT_EQ(tail->status, 206);
    EXPECT_EQ(tail->body, file.substr(size - 10));
    auto open = get("bytes=100-");
    EXPECT_EQ(open->status, 206);
    EXPECT_EQ(open->body, file.substr(100));
    auto past_end = get(("bytes=" + std::to_string(size) + "-").c_str());
    EXPECT_EQ(past_end->status, 416);
    EXPECT_EQ(past_end->get_header_value("Content-Range"), "bytes */" + std::to_string(size));
    auto clamp = get(("bytes=" + std::to_string(size - 5) + "-" + std::to_string(size + 1000)).c_str());
    EXPECT_EQ(clamp->status, 206);
    EXPECT_EQ(clamp->body, file.substr(size - 5));
    auto reversed = get("bytes=50-10");  // invalid: ignored (RFC 9110), the whole file
    EXPECT_EQ(reversed->status, 200);
    EXPECT_EQ(reversed->body.size(), size);
    auto several = get("bytes=0-1,5-6");  // several ranges: the whole file
    EXPECT_EQ(several->status, 200);
    EXPECT_EQ(several->body.size(), size);

    // Ids are looked up, never joined into paths.
    for (const char* bad : {"/api/tracks/..%2F..%2F..%2Fetc%2Fpasswd/audio", "/api/tracks/%2e%2e/audio", "/api/tracks/..%2Fmanifest.json/waveform"}) {
        auto res = c.Get(bad);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 404) << bad;
        EXPECT_EQ(res->body.find("root:"), std::string::npos);
    }
    auto res = c.Get("/../../../../etc/passwd");
    ASSERT_TRUE(res);
    EXPECT_GE(res->status, 400);
    EXPECT_EQ(res->body.find("root:"), std::string::npos);
}

// The rows of a path answer, checked: monotone in both times, A's times `step` apart (the last may be closer).
std::vector<std::array<double, 2>> checked_path(const json& path, double step) {
    std::vector<std::array<double, 2>> rows;
    for (const auto& r : path) rows.push_back({r[0].get<double>(), r[1].get<double>()});
    for (std::size_t k = 1; k < rows.size(); ++k) {
        EXPECT_GE(rows[k][1], rows[k - 1][1]) << "row " << k;
        if (k + 1 < rows.size()) {
            EXPECT_NEAR(rows[k][0] - rows[k - 1][0], step, 1.5e-3) << "row " << k;
        } else {
            EXPECT_GT(rows[k][0], rows[k - 1][0]);
            EXPECT_LE(rows[k][0] - rows[k - 1][0], step + 1.5e-3);
        }
    }
    return rows;
}

// B's time at A's second t on a sampled path (linear between rows).
double time_b(const std::vector<std::array<double, 2>>& rows, double t) {
    for (std::size_t k = 1; k < rows.size(); ++k)
        if (rows[k][0] >= t) return rows[k - 1][1] + (rows[k][1] - rows[k - 1][1]) * (t - rows[k - 1][0]) / (rows[k][0] - rows[k - 1][0]);
    return rows.back()[1];
}

// 01-arpeggio is played at 120 BPM, then at 80 BPM: B's first 6 s are A's first 4 s.
TEST_F(ServerTest, AlignTwoPerformancesOfOneWork) {
    const json al = get_json("/api/align?a=01-arpeggio__v00&b=01-arpeggio__v01&resolution=0.25", 200);
    EXPECT_EQ(al["a"], "01-arpeggio__v00");
    EXPECT_EQ(al["b"], "01-arpeggio__v01");
    EXPECT_TRUE(al["reliable"].get<bool>());
    EXPECT_GE(al["confidence"].get<double>(), 0.25);
    EXPECT_EQ(al["transposition"], 0);
    EXPECT_NEAR(al["duration_a"].get<double>(), 8.0, 0.01);
    EXPECT_EQ(al["resolution"], 0.25);
    const auto rows = checked_path(al["path"], 0.25);
    ASSERT_GE(rows.size(), 30u);
    EXPECT_NEAR(rows.front()[0], 0.0, 0.05);
    EXPECT_NEAR(rows.back()[0], 8.0, 0.05);
    EXPECT_NEAR(rows.back()[1], 8.0, 0.05);
    for (double t : {1.0, 2.0, 3.0}) EXPECT_NEAR(time_b(rows, t), 1.5 * t, 0.1) << "A's second " << t;

    // 02-lament's second take is 5 semitones up; the default resolution is 0.1 s.
    const json up = get_json("/api/align?a=02-lament__v00&b=02-lament__v01", 200);
    EXPECT_EQ(up["transposition"], 5);
    EXPECT_NEAR(up["mean_tempo_ratio"].get<double>(), 1.0, 0.02);
    const auto same = checked_path(up["path"], 0.1);
    EXPECT_NEAR(static_cast<double>(same.size()), 111, 2);
    for (const auto& [ta, tb] : same) EXPECT_NEAR(ta, tb, 0.1);
}

TEST_F(ServerTest, AlignRefusesWhatItCannotAnswer) {
    EXPECT_EQ(get_json("/api/align?a=nope&b=01-arpeggio__v00", 404)["parameter"], "a");
    EXPECT_EQ(get_json("/api/align?a=01-arpeggio__v00&b=nope", 404)["parameter"], "b");
    EXPECT_EQ(get_json("/api/align?a=01-arpeggio__v00", 400)["parameter"], "b");
    for (const char* r : {"0.01", "0", "abc", "-1", "61"})
        EXPECT_EQ(get_json(std::string("/api/align?a=01-arpeggio__v00&b=01-arpeggio__v01&resolution=") + r, 400)["parameter"], "resolution") << r;
    EXPECT_EQ(get_json("/api/align?a=01-arpeggio__v00&b=01-arpeggio__v01&open_end=1", 400)["parameter"], "open_end");

    // Two different pieces: the answer says they do not align, with the confidence, and gives no path.
    const std::string unrelated = "/api/align?a=02-lament__v00&b=04-chorale__v00";
    const json no = get_json(unrelated, 422);
    EXPECT_FALSE(no["reliable"].get<bool>());
    EXPECT_LT(no["confidence"].get<double>(), 0.25);
    EXPECT_FALSE(no.contains("path"));
    EXPECT_NE(no["error"].get<std::string>().find("too little in common"), std::string::npos) << no.dump();
    EXPECT_EQ(get_json(unrelated, 422), no);  // from the answer cache

    // Audio only in object storage (audio_base), or missing on this server: 409, saying so.
    test::TempDir elsewhere;
    ServeConfig cfg = base_config(g->indices);
    cfg.data_root = elsewhere.path();
    cfg.audio_base = "s3://media/mess";
    auto s = start_server(cfg);
    ASSERT_TRUE(wait_ready(*s));
    httplib::Client c("127.0.0.1", s->port());
    auto res = c.Get("/api/align?a=03-march__v00&b=03-march__v01");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 409) << res->body;
    EXPECT_EQ(json::parse(res->body)["parameter"], "a");
    EXPECT_NE(res->body.find("object storage"), std::string::npos) << res->body;
    res = c.Get("/api/works/03-march/compare");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 409) << res->body;
}

TEST_F(ServerTest, WorksAndTheirComparison) {
    const json works = get_json("/api/works", 200);
    EXPECT_EQ(works["count"], 4);
    std::set<std::string> ids;
    for (const auto& w : works["works"]) {
        ids.insert(w["work_id"].get<std::string>());
        EXPECT_EQ(w["performances"], 2);
        EXPECT_EQ(w["with_audio"], 2);
        EXPECT_EQ(w["tracks"].size(), 2u);
        EXPECT_FALSE(w["title"].get<std::string>().empty());
    }
    EXPECT_EQ(ids, (std::set<std::string>{"01-arpeggio", "02-lament", "03-march", "04-chorale"}));

    const json c = get_json("/api/works/01-arpeggio/compare?step=0.5", 200);
    EXPECT_EQ(c["schema"], "mess-compare/1");
    EXPECT_EQ(c["work_id"], "01-arpeggio");
    EXPECT_EQ(c["reference"], "01-arpeggio__v00");  // the first in catalogue order
    const std::size_t n = c["times"].size();
    EXPECT_EQ(n, 17u);  // 0, 0.5 … 8 s
    ASSERT_EQ(c["performances"].size(), 2u);
    for (const auto& p : c["performances"]) {
        EXPECT_EQ(p["name"], p["track_id"]);
        EXPECT_EQ(p["tempo_ratio"].size(), n);
        EXPECT_EQ(p["loudness_db"].size(), n);
        EXPECT_TRUE(p.contains("passage") && p.contains("confidence") && p.contains("metadata"));
        EXPECT_FALSE(p.contains("bpm"));
        checked_path(p["path"], 0.5);
    }
    const auto hits = [] {
        const std::string m = client().Get("/metrics")->body, name = "\nmess_cache_hits_total ";
        return std::stol(m.substr(m.find(name) + name.size()));
    };
    const long before = hits();
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?step=0.5", 200), c);
    EXPECT_EQ(hits(), before + 1) << "the second comparison comes from the answer cache";
    const json& slow = c["performances"][1];
    EXPECT_NEAR(slow["tempo_ratio"][2].get<double>(), 2.0 / 3.0, 0.05) << "80 BPM against 120 over the first seconds";
    ASSERT_EQ(c["ranking"].size(), 2u);
    EXPECT_EQ(c["tempo_correlation"]["names"], json::array({"01-arpeggio__v01"}));

    // A passage, another reference, BPM curves; the slower take takes longest over the first 3 s of the other.
    const json part = get_json("/api/works/01-arpeggio/compare?start=0&end=3&step=0.25&ref=01-arpeggio__v00&bpm=120", 200);
    EXPECT_NEAR(part["times"].back().get<double>(), 3.0, 1e-6);
    EXPECT_EQ(part["ranking"][0]["name"], "01-arpeggio__v01");
    EXPECT_NEAR(part["ranking"][0]["passage_duration"].get<double>(), 4.5, 0.15);
    EXPECT_NEAR(part["ranking"][1]["passage_duration"].get<double>(), 3.0, 0.01);
    EXPECT_NEAR(part["performances"][1]["bpm"][4].get<double>(), 80, 5);
    const json flipped = get_json("/api/works/01-arpeggio/compare?ref=01-arpeggio__v01&step=1", 200);
    EXPECT_EQ(flipped["reference"], "01-arpeggio__v01");
    EXPECT_EQ(flipped["performances"][1]["track_id"], "01-arpeggio__v00");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?tracks=01-arpeggio__v01,01-arpeggio__v00&step=1", 200)["reference"], "01-arpeggio__v01");

    EXPECT_EQ(get_json("/api/works/no-such-work/compare", 404)["parameter"], "work_id");
    const json slash = get_json("/api/works/a%2Fb/compare", 404);  // work ids may hold '/'
    EXPECT_NE(slash["error"].get<std::string>().find("'a/b'"), std::string::npos) << slash.dump();
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?tracks=01-arpeggio__v00", 400)["parameter"], "tracks");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?tracks=01-arpeggio__v00,03-march__v00", 400)["parameter"], "tracks");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?tracks=01-arpeggio__v00,01-arpeggio__v00", 400)["parameter"], "tracks");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?tracks=01-arpeggio__v00,nope", 404)["parameter"], "tracks");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?ref=03-march__v00", 400)["parameter"], "ref");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?start=9", 400)["parameter"], "start");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?end=12", 400)["parameter"], "end");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?start=3&end=2", 400)["parameter"], "end");
    EXPECT_EQ(get_json("/api/works/01-arpeggio/compare?step=0.001", 400)["parameter"], "step");
}

TEST_F(ServerTest, WaveformLevels) {
    const json track = get_json("/api/tracks/01-arpeggio__v01", 200);
    const double duration = track["duration_sec"];
    const json w10 = get_json("/api/tracks/01-arpeggio__v01/waveform?per_second=10", 200);
    EXPECT_EQ(w10["per_second"], 10);
    EXPECT_NEAR(static_cast<double>(w10["peaks"].size()), duration * 10, 1.0);
    for (const auto& p : w10["peaks"]) EXPECT_TRUE(p.get<double>() >= 0 && p.get<double>() <= 1);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v01/waveform?per_second=40", 200)["per_second"], 50);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v01/waveform?points=64", 200)["peaks"].size(), 64u);
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v01/waveform?points=5&per_second=2", 400)["parameter"], "points");
    EXPECT_EQ(get_json("/api/tracks/01-arpeggio__v01/waveform?per_second=0", 400)["parameter"], "per_second");
}

TEST_F(ServerTest, MetricsAndCors) {
    get_json("/api/tracks/01-arpeggio__v00/similar", 200);
    get_json("/api/tracks/01-arpeggio__v00/similar", 200);  // the second is cached
    auto c = client();
    auto m = c.Get("/metrics");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->status, 200);
    const std::vector<std::string> lines = {"mess_http_requests_total{method=\"GET\",route=\"/api/tracks/{track_id}/similar\",code=\"2xx\"}",
                                            "mess_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/tracks/{track_id}/similar\",le=\"+Inf\"}",
                                            "mess_index_vectors{kind=\"track\"} " + std::to_string(kTracks) + "\n", "mess_ready 1",
                                            "mess_index_info{kind=\"clip\",version_id=\"vid-"};
    for (const std::string& line : lines)
        EXPECT_NE(m->body.find(line), std::string::npos) << line;
    EXPECT_EQ(m->body.find("mess_cache_hits_total 0\n"), std::string::npos);

    auto allowed = c.Get("/api/datasets", {{"Origin", "http://allowed.example"}});
    EXPECT_EQ(allowed->get_header_value("Access-Control-Allow-Origin"), "http://allowed.example");
    auto other = c.Get("/api/datasets", {{"Origin", "http://evil.example"}});
    EXPECT_FALSE(other->has_header("Access-Control-Allow-Origin"));
    auto pre = c.Options("/api/tracks", {{"Origin", "http://allowed.example"}, {"Access-Control-Request-Method", "GET"}});
    ASSERT_TRUE(pre);
    EXPECT_EQ(pre->status, 204);
    EXPECT_NE(pre->get_header_value("Access-Control-Allow-Methods").find("GET"), std::string::npos);

    auto page = c.Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->body.find("MESS"), std::string::npos);
}

TEST_F(ServerTest, BadConfigurationIsRefused) {
    auto err = [](ServeConfig c) { return test::error_message([&] { Server s(std::move(c)); }, ErrorKind::usage); };
    ServeConfig c = base_config(g->indices);
    c.index_source.clear();
    EXPECT_NE(err(c).find("no index source"), std::string::npos);
    c = base_config(g->indices);
    c.port = 70000;
    EXPECT_NE(err(c).find("port"), std::string::npos);
    c = base_config(g->indices);
    c.web_root = g->dir / "nowhere";
    EXPECT_NE(err(c).find("index.html"), std::string::npos);
    c = base_config(g->indices);
    c.audio_base = "http://not-s3";
    EXPECT_NE(err(c).find("s3://"), std::string::npos);
    // A taken port is an input error.
    c = base_config(g->indices);
    c.port = g->port;
    c.host = "127.0.0.1";
    Server clash(c);
    EXPECT_NE(test::error_message([&] { clash.start(); }, ErrorKind::input).find("cannot listen"), std::string::npos);
}

// Loading: 503 until an index appears; then reloads under concurrent requests drop nothing.
TEST_F(ServerTest, LoadingThenReloadWithoutDroppedRequests) {
    test::TempDir root;
    auto s = start_server(base_config(root.path()));
    httplib::Client c("127.0.0.1", s->port());
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto loading = c.Get("/api/tracks");
    ASSERT_TRUE(loading);
    EXPECT_EQ(loading->status, 503);
    EXPECT_EQ(loading->get_header_value("Retry-After"), "2");
    EXPECT_EQ(c.Get("/health/ready")->status, 503);
    EXPECT_EQ(c.Get("/health/live")->status, 200);

    fs::copy(g->indices, root.path(), fs::copy_options::recursive);
    EXPECT_TRUE(s->reload());
    EXPECT_FALSE(s->reload());  // nothing newer
    ASSERT_EQ(c.Get("/api/tracks")->status, 200);

    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t)
        clients.emplace_back([&, t] {
            httplib::Client cc("127.0.0.1", s->port());
            const std::string path = t % 2 ? "/api/tracks/01-arpeggio__v00/similar?k=" + std::to_string(t + 2) : "/api/tracks/03-march__v00/passages?start=2";
            while (!stop.load()) {
                auto res = cc.Get(path);
                (res && res->status == 200 ? ok : failed).fetch_add(1);
            }
        });
    const json before = json::parse(c.Get("/health")->body);
    for (int v = 0; v < 3; ++v) {  // publish newer versions (a new stamp directory each) and swap them in
        std::this_thread::sleep_for(std::chrono::milliseconds(150));
        const fs::path src = resolve_artifact_dir(root.path(), "track_index");
        fs::copy(src, root / "track_index" / ("29990101T00000" + std::to_string(v) + "Z"), fs::copy_options::recursive);
        EXPECT_TRUE(s->reload());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
    stop = true;
    for (auto& t : clients) t.join();
    EXPECT_EQ(failed.load(), 0);
    EXPECT_GT(ok.load(), 20);
    const json after = json::parse(c.Get("/health")->body);
    EXPECT_EQ(after["indexes"]["track"]["dir"], "29990101T000002Z");
    EXPECT_NE(before["indexes"]["track"]["dir"], after["indexes"]["track"]["dir"]);
    EXPECT_EQ(after["reloads"], 4);

    // A damaged newer version is refused; the old one keeps serving.
    const fs::path bad = root / "track_index" / "29990101T000009Z";
    fs::copy(resolve_artifact_dir(root.path(), "track_index"), bad, fs::copy_options::recursive);
    write_file_atomic(bad / "track_names.json", "[]\n");
    test::error_message([&] { s->reload(); }, ErrorKind::input);
    EXPECT_EQ(c.Get("/api/tracks/01-arpeggio__v00/similar")->status, 200);
}

TEST_F(ServerTest, AudioRedirectsToPresignedS3) {
    ::setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
    ::setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
    ::setenv("MESS_S3_ENDPOINT", "http://127.0.0.1:4568", 1);
    ServeConfig cfg = base_config(g->indices);
    cfg.audio_base = "s3://media/mess";
    auto s = start_server(cfg);
    ASSERT_TRUE(wait_ready(*s));
    httplib::Client c("127.0.0.1", s->port());
    auto res = c.Get("/api/tracks/01-arpeggio__v00/audio");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 302);
    const std::string loc = res->get_header_value("Location");
    EXPECT_EQ(loc.rfind("http://127.0.0.1:4568/media/mess/audio/01-arpeggio__v00.wav?X-Amz-Algorithm=AWS4-HMAC-SHA256", 0), 0u) << loc;
    EXPECT_NE(loc.find("X-Amz-Expires=600"), std::string::npos);
    EXPECT_NE(loc.find("&X-Amz-Signature="), std::string::npos);
    ::unsetenv("MESS_S3_ENDPOINT");
}

// A newer version that does not load is refused and reported; the last good one keeps serving (also when
// the server starts with the damaged version newest), and the refused one is not tried again.
TEST_F(ServerTest, RefusedVersionKeepsTheLastGoodOne) {
    test::TempDir root;
    fs::copy(g->indices, root.path(), fs::copy_options::recursive);
    const std::string good = resolve_artifact_dir(root.path(), "track_index").filename().string();
    const fs::path bad = root / "track_index" / "29990101T000009Z";
    fs::copy(resolve_artifact_dir(root.path(), "track_index"), bad, fs::copy_options::recursive);
    write_file_atomic(bad / "track_names.json", "[]\n");
    auto s = start_server(base_config(root.path()));
    ASSERT_TRUE(wait_ready(*s)) << s->load_error();
    httplib::Client c("127.0.0.1", s->port());
    const auto health = c.Get("/health");
    ASSERT_TRUE(health);
    const json h = json::parse(health->body);
    EXPECT_EQ(h["status"], "ok");
    EXPECT_EQ(h["indexes"]["track"]["dir"], good);
    EXPECT_EQ(h["refused"]["track"]["version"], "29990101T000009Z");
    const std::string reason = h["refused"]["track"]["reason"];
    EXPECT_FALSE(reason.empty());
    EXPECT_EQ(health->body.find(root.path().string()), std::string::npos) << "no absolute server paths: " << health->body;
    EXPECT_EQ(c.Get("/api/tracks/01-arpeggio__v00/similar")->status, 200);
    EXPECT_EQ(c.Get("/health/ready")->status, 200);
    EXPECT_NE(c.Get("/metrics")->body.find("mess_reload_refused{kind=\"track\",version=\"29990101T000009Z\"} 1\n"), std::string::npos);

    EXPECT_FALSE(s->reload());  // refused for good: not loaded again, nothing changes, no error
    const fs::path newer = root / "track_index" / "29990101T000010Z";
    fs::copy(root / "track_index" / good, newer, fs::copy_options::recursive);
    EXPECT_TRUE(s->reload());
    const json after = json::parse(c.Get("/health")->body);
    EXPECT_EQ(after["indexes"]["track"]["dir"], "29990101T000010Z");
    EXPECT_TRUE(after["refused"].empty()) << after.dump();
    EXPECT_EQ(c.Get("/metrics")->body.find("mess_reload_refused{"), std::string::npos);
}

// From s3://: a published version whose objects are corrupt is refused at pull (reported like a version
// that does not load, not downloaded again), the last good one keeps serving; a good newer one is taken.
TEST_F(ServerTest, CorruptPublishedVersionIsRefusedAtPull) {
    if (!fs::exists(test::s3rver_path())) GTEST_FAIL() << "s3rver missing: run scripts/setup";
    test::TempDir root;
    const auto s3 = test::start_s3rver((root / "s3").string());
    ASSERT_TRUE(test::port_open(s3->port)) << "s3rver did not start";
    const fs::path good = resolve_artifact_dir(g->indices, "track_index");
    const std::string v1 = publish_artifact(good, "s3://mess/prod").version_id;
    ServeConfig cfg = base_config(g->indices);
    cfg.index_source = "s3://mess/prod";
    cfg.data_root = root / "data";
    auto s = start_server(cfg);
    ASSERT_TRUE(wait_ready(*s)) << s->load_error();
    httplib::Client c("127.0.0.1", s->port());
    EXPECT_EQ(json::parse(c.Get("/health")->body)["indexes"]["track"]["version_id"], v1);

    // A newer version, corrupted in the store after its publication.
    const fs::path copy = root / "local" / "track_index" / "29990101T000001Z";
    fs::create_directories(copy.parent_path());
    fs::copy(good, copy, fs::copy_options::recursive);
    const PublishReport r2 = publish_artifact(copy, "s3://mess/prod");
    std::string prefix;
    auto store = open_store("s3://mess/prod", &prefix);
    std::string bytes = store->get(r2.artifact_prefix + "/index.faiss");
    bytes[bytes.size() / 2] ^= 0x21;
    store->put(r2.artifact_prefix + "/index.faiss", bytes);
    EXPECT_NE(test::error_message([&] { s->reload(); }).find("corrupt"), std::string::npos);
    const json h = json::parse(c.Get("/health")->body);
    EXPECT_EQ(h["indexes"]["track"]["dir"], good.filename().string());
    EXPECT_EQ(h["refused"]["track"]["version"], "29990101T000001Z");
    EXPECT_NE(h["refused"]["track"]["reason"].get<std::string>().find("corrupt object"), std::string::npos);
    EXPECT_EQ(c.Get("/health/ready")->status, 200);
    EXPECT_EQ(c.Get("/api/tracks/01-arpeggio__v00/similar")->status, 200);
    EXPECT_NE(c.Get("/metrics")->body.find("mess_reload_refused{kind=\"track\",version=\"29990101T000001Z\"} 1\n"), std::string::npos);
    EXPECT_FALSE(s->reload());  // refused for good: not pulled again, no error
    EXPECT_FALSE(fs::exists(root / "data/indices/.serve-cache/track_index/29990101T000001Z"));

    const fs::path newer = root / "local" / "track_index" / "29990101T000002Z";
    fs::copy(good, newer, fs::copy_options::recursive);
    publish_artifact(newer, "s3://mess/prod");
    EXPECT_TRUE(s->reload());
    const json after = json::parse(c.Get("/health")->body);
    EXPECT_EQ(after["indexes"]["track"]["dir"], "29990101T000002Z");
    EXPECT_TRUE(after["refused"].empty()) << after.dump();
    for (const char* v : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_ENDPOINT_URL"}) ::unsetenv(v);
}

// Nothing loadable: 503 everywhere that needs an index, and the error names no absolute server path.
TEST_F(ServerTest, ErrorsNameNoServerPaths) {
    test::TempDir root;
    const fs::path bad = root / "track_index" / "20240101T000000Z";
    fs::create_directories(bad);
    fs::copy(resolve_artifact_dir(g->indices, "track_index"), bad, fs::copy_options::recursive);
    write_file_atomic(bad / "track_names.json", "[]\n");
    auto s = start_server(base_config(root.path()));
    for (int i = 0; i < 200 && s->load_error().empty(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    httplib::Client c("127.0.0.1", s->port());
    for (const char* path : {"/api/tracks", "/health", "/api/tracks/x/similar"}) {
        auto res = c.Get(path);
        ASSERT_TRUE(res);
        EXPECT_EQ(res->body.find(root.path().string()), std::string::npos) << path << " → " << res->body;
        EXPECT_EQ(res->body.find(g->dir.path().string()), std::string::npos) << path << " → " << res->body;
    }
    EXPECT_EQ(c.Get("/api/tracks")->status, 503);
    EXPECT_NE(c.Get("/api/tracks")->body.find("track_index/20240101T000000Z"), std::string::npos) << "names the version, relative to the source";
}

// Idle, half-open and slow clients hold no thread: probes and other requests are answered at once, and
// the slow ones are cut off (408) after their header or body time.
TEST_F(ServerTest, SlowClientsDoNotBlockOthers) {
    ServeConfig cfg = base_config(g->indices);
    cfg.http_threads = 4;
    cfg.max_client_requests = 3;
    cfg.header_timeout_sec = 1;
    cfg.body_timeout_sec = 1;
    auto s = start_server(cfg);
    ASSERT_TRUE(wait_ready(*s));
    const int port = s->port();
    std::vector<std::unique_ptr<Raw>> idle, partial, lying;
    for (int i = 0; i < 200; ++i) idle.push_back(std::make_unique<Raw>(port));
    for (int i = 0; i < 20; ++i) {
        partial.push_back(std::make_unique<Raw>(port));
        partial.back()->send("GET /api/tracks HTTP/1.1\r\nHost: slow\r\n");
    }
    for (int i = 0; i < 2; ++i) {  // claims 100 kB, sends 10 bytes
        lying.push_back(std::make_unique<Raw>(port));
        lying.back()->send("POST /api/search/audio HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 100000\r\n\r\n0123456789");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::vector<double> ms;
    for (int i = 0; i < 40; ++i) {
        int status = 0;
        ms.push_back(timed_get(port, "/health/live", &status));
        EXPECT_EQ(status, 200);
    }
    std::sort(ms.begin(), ms.end());
    EXPECT_LT(ms.back(), 200.0) << "slowest probe, ms (median " << ms[ms.size() / 2] << ")";
    int status = 0;
    EXPECT_LT(timed_get(port, "/api/tracks?limit=2", &status), 500.0);  // a worker is left for this client
    EXPECT_EQ(status, 200);
    for (auto& r : lying) {
        const std::string res = r->response(4000);
        EXPECT_EQ(status_of(res), 408) << res;
    }
    for (auto& r : partial) {
        const std::string res = r->response(4000);
        EXPECT_EQ(status_of(res), 408) << res;
    }
    httplib::Client c("127.0.0.1", port);
    const std::string m = c.Get("/metrics")->body;
    EXPECT_NE(m.find("mess_http_connections_closed_total{reason=\"header_timeout\"} 20"), std::string::npos) << m;
    EXPECT_NE(m.find("mess_http_unrouted_total{code=\"408\"}"), std::string::npos);
}

// Connections over the per-client limit close the longest-waiting idle ones; the newest are served.
TEST_F(ServerTest, ConnectionsPerClientAreCapped) {
    ServeConfig cfg = base_config(g->indices);
    cfg.max_client_connections = 8;
    auto s = start_server(cfg);
    ASSERT_TRUE(wait_ready(*s));
    std::vector<std::unique_ptr<Raw>> conns;
    for (int i = 0; i < 12; ++i) {
        conns.push_back(std::make_unique<Raw>(s->port()));
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    for (int i = 0; i < 4; ++i) EXPECT_TRUE(conns[static_cast<std::size_t>(i)]->closed(2000)) << "connection " << i << " was evicted";
    Raw& last = *conns.back();
    last.send(get_request("/health/live"));
    EXPECT_EQ(status_of(last.response()), 200);
}

// Bodies: a Content-Length over the limit is answered 413 before the body is sent; a chunked body is cut
// off once it passes the limit; a negative or malformed Content-Length is a 400.
TEST_F(ServerTest, UploadLimitsAreEnforcedEarly) {
    Raw big(g->port);
    big.send("POST /api/search/audio HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nContent-Length: 209715200\r\n\r\n");
    const std::string res = big.response(2000);
    EXPECT_EQ(status_of(res), 413) << res;
    EXPECT_NE(body_of(res).find("limit"), std::string::npos);

    Raw chunked(g->port);
    chunked.send("POST /api/search/audio HTTP/1.1\r\nHost: x\r\nContent-Type: audio/wav\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk = fmt::format("{:x}\r\n{}\r\n", 65536, std::string(65536, 'x'));
    std::size_t sent = 0;
    while (sent < (200u << 20) && !chunked.readable(0) && chunked.send(chunk)) sent += 65536;
    const std::string cut = chunked.response(5000);
    EXPECT_EQ(status_of(cut), 413) << cut;
    EXPECT_LT(sent, 8u << 20) << "the body was cut off soon after the limit";

    for (const char* length : {"-1", "12abc", "1, 2"}) {
        Raw neg(g->port);
        neg.send(std::string("POST /api/search/audio HTTP/1.1\r\nHost: x\r\nContent-Length: ") + length + "\r\n\r\n");
        const std::string r = neg.response(2000);
        EXPECT_EQ(status_of(r), 400) << length << ": " << r;
    }
    Raw both(g->port);
    both.send("POST /api/search/audio HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
    EXPECT_EQ(status_of(both.response(2000)), 400);
}

// Protocol details: invalid Range ignored, 431, 414, 405 with Allow, malformed requests, and their counts.
TEST_F(ServerTest, ProtocolErrors) {
    auto c = client();
    for (const char* range : {"bytes=abc", "bytes=9-2", "items=0-5", "bytes="}) {
        auto res = c.Get("/api/tracks/04-chorale__v01/audio", {{"Range", range}});
        ASSERT_TRUE(res);
        EXPECT_EQ(res->status, 200) << range;
    }
    auto page = c.Get("/", {{"Range", "bytes=oops"}});
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);

    Raw large(g->port);
    large.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Filler: " + std::string(40000, 'a') + "\r\n\r\n");
    EXPECT_EQ(status_of(large.response()), 431);
    Raw many(g->port);  // many small headers add up too
    std::string headers;
    for (int i = 0; i < 3000; ++i) headers += fmt::format("X-H{}: value\r\n", i);
    many.send("GET /health HTTP/1.1\r\nHost: x\r\n" + headers + "\r\n");
    EXPECT_EQ(status_of(many.response()), 431);

    Raw longuri(g->port);
    longuri.send(get_request("/api/tracks?q=" + std::string(10000, 'a')));
    const std::string uri = longuri.response();
    EXPECT_EQ(status_of(uri), 414);
    EXPECT_EQ(header_of(uri, "Content-Type"), "application/json");
    EXPECT_NE(json::parse(body_of(uri))["error"].get<std::string>().find("request line"), std::string::npos);

    auto put = c.Put("/api/tracks", "", "text/plain");
    ASSERT_TRUE(put);
    EXPECT_EQ(put->status, 405);
    EXPECT_NE(put->get_header_value("Allow").find("GET"), std::string::npos);
    auto get_upload = c.Get("/api/search/audio");
    ASSERT_TRUE(get_upload);
    EXPECT_EQ(get_upload->status, 405);
    EXPECT_EQ(get_upload->get_header_value("Allow"), "POST, OPTIONS");
    EXPECT_EQ(json::parse(get_upload->body)["status"], 405);
    EXPECT_EQ(c.Delete("/api/tracks/01-arpeggio__v00")->status, 405);
    EXPECT_EQ(c.Get("/api/no/such/route")->status, 404);

    Raw garbage(g->port);
    garbage.send("NONSENSE\r\n\r\n");
    EXPECT_EQ(status_of(garbage.response()), 400);
    Raw bad_method(g->port);
    bad_method.send("BREW /api/tracks HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(status_of(bad_method.response()), 400);

    const std::string m = c.Get("/metrics")->body;
    for (const char* code : {"400", "404", "405", "414", "431"})
        EXPECT_NE(m.find(fmt::format("mess_http_unrouted_total{{code=\"{}\"}}", code)), std::string::npos) << code;

    // Pipelined requests on one connection are answered in order.
    Raw pipe(g->port);
    pipe.send(get_request("/health/live") + get_request("/api/tracks?limit=1") + get_request("/health/live"));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(status_of(pipe.response()), 200) << i;
}

// ---- the web UI in a browser ------------------------------------------------------------------------

struct BrowserRun {
    test::CommandResult result;
    json report;                   // the script's last report line; null when it printed none
    std::set<std::string> passed;  // names of the steps that passed
};

// Runs web/tests/<script> against the served UI (arguments: the URL, the screenshot to save, `args`),
// checks that it passed and saved the screenshot, and reads the report of its last line starting with `marker`.
BrowserRun run_browser_script(const std::string& script, const fs::path& shot, const std::string& args, const std::string& marker) {
    const fs::path web = fs::path(MESS_SOURCE_DIR) / "web";
    BrowserRun run;
    EXPECT_TRUE(fs::exists(web / "node_modules/playwright-core")) << "run scripts/setup (npm packages of web/)";
    EXPECT_TRUE(fs::exists("/usr/bin/chromium")) << "run scripts/setup (Debian's chromium)";
    run.result = test::run_command("cd " + test::quote(web.string()) + " && node tests/" + script + " http://127.0.0.1:" + std::to_string(g->port) + "/ " +
                                   test::quote(shot.string()) + " " + args + " 2>&1");
    EXPECT_EQ(run.result.exit_code, 0) << run.result.out;
    EXPECT_TRUE(fs::exists(shot)) << "the test run saves a screenshot: " << shot;
    const auto at = run.result.out.rfind(marker);
    if (at == std::string::npos) return run;
    run.report = json::parse(run.result.out.substr(at + marker.size(), run.result.out.find('\n', at) - at - marker.size()));
    for (const auto& s : run.report.at("steps"))
        if (s.value("ok", false)) run.passed.insert(s.at("name").get<std::string>());
    return run;
}

// The web UI in Debian's Chromium (web/tests/e2e.mjs): load with its favicon, the whole search placeholder,
// play, the waveform normalised to the track's loudest bucket, select a region, passage results one per
// recording by default (every passage when grouping is off), move an aspect slider, the view kept in the URL
// (Back/Forward, a reload and a fresh page restore it), play a result from its moment; then the comparison
// view: a work's curves drawn with axes, a click in one waveform moves the other player to the aligned
// moment, a dragged passage ranks who takes longest, a reload restores it, a refused comparison says why.
// The script's last line reports each step and what it measured; the measurements are asserted here too.
TEST_F(ServerTest, WebUiInHeadlessChromium) {
    // The icon index.html links is part of the build and served beside the page.
    auto icon = client().Get("/favicon.svg");
    ASSERT_TRUE(icon);
    EXPECT_EQ(icon->status, 200) << "web/dist/favicon.svg (scripts/build web)";
    EXPECT_EQ(icon->get_header_value("Content-Type"), "image/svg+xml");
    EXPECT_NE(icon->body.find("<svg"), std::string::npos);
    EXPECT_NE(client().Get("/")->body.find("href=\"/favicon.svg\""), std::string::npos);

    const fs::path shot = fs::current_path() / "web-ui-e2e.png", compare_shot = fs::current_path() / "web-ui-compare.png";
    const BrowserRun run = run_browser_script("e2e.mjs", shot, test::quote(compare_shot.string()), "e2e-result: ");
    const auto& r = run.result;
    EXPECT_TRUE(fs::exists(compare_shot)) << "and one of the comparison view";
    EXPECT_TRUE(fs::exists(fs::current_path() / "web-ui-e2e-structure.png")) << "and one of the structure markers and a climax search";
    std::cout << "screenshots: " << shot.string() << ", " << compare_shot.string() << ", web-ui-e2e-structure.png\n";
    ASSERT_FALSE(run.report.is_null()) << r.out;
    const json& report = run.report;
    const std::set<std::string>& passed = run.passed;
    for (const char* name : {"favicon", "the search placeholder is fully visible", "the waveform is normalised to its loudest bucket",
                             "drag a region: passage results, one per recording", "grouping off: every passage",
                             "Back and Forward restore the view", "the URL restores the view after a reload and in a new page",
                             "grouping back on", "play a result from its moment", "the player offers to compare the performances of its work",
                             "open the comparison view and choose a work",
                             "the tempo and loudness curves are drawn with their axes",
                             "a click in one waveform moves the other player to the aligned moment",
                             "drag a passage on the curves: who takes longest", "the URL restores the comparison",
                             "Search goes back to the search view", "a comparison that cannot be made says why",
                             "structure markers on the waveform", "find similar climaxes"})
        EXPECT_TRUE(passed.contains(name)) << "step '" << name << "' did not pass\n" << r.out;

    const json& f = report.at("facts");
    if (f.contains("favicon")) {  // requested by the browser itself, from the page's <link rel="icon">
        EXPECT_EQ(f["favicon"].value("status", 0), 200);
        EXPECT_EQ(f["favicon"].value("type", ""), "image/svg+xml");
    }
    if (f.contains("placeholder")) {  // the placeholder, set as the value, does not scroll its input
        const json& p = f["placeholder"];
        EXPECT_LE(p["scrollWidth"].get<int>(), p["clientWidth"].get<int>()) << p.dump();
        EXPECT_LE(p["textWidth"].get<double>(), p["contentWidth"].get<double>()) << p.dump();
    }
    if (f.contains("waveform")) {  // the loudest bucket's bar spans the canvas; quiet tracks are scaled up
        const json& w = f["waveform"];
        EXPECT_GT(w["canvasHeight"].get<int>(), 0) << w.dump();
        EXPECT_EQ(w["tallestBar"].get<int>(), w["canvasHeight"].get<int>()) << w.dump();
        EXPECT_NEAR(w["gain"].get<double>() * w["peakMax"].get<double>(), 1.0, 1e-9) << w.dump();
    }
    if (f.contains("grouped")) {
        EXPECT_TRUE(f["grouped"]["distinct_tracks"].get<bool>()) << f["grouped"].dump();
        EXPECT_GT(f["grouped"]["results"].get<int>(), 0);
    }
    if (f.contains("ungrouped") && f.contains("grouped")) {
        EXPECT_GE(f["ungrouped"]["results"].get<int>(), f["grouped"]["results"].get<int>());
    }
    if (f.contains("url")) {
        const std::string shared = f["url"]["shared"];
        for (const char* key : {"track=", "t=", "aspects=", "group=0", "q="})
            EXPECT_NE(shared.find(key), std::string::npos) << key << " in " << shared;
    }
    if (f.contains("compare_curves")) {  // a tempo and a loudness curve per performance, one point per time
        const json& c = f["compare_curves"];
        EXPECT_EQ(c["paths"], 4) << c.dump();
        EXPECT_EQ(c["points"], c["times"]) << c.dump();
    }
    if (f.contains("compare_click")) {  // the reference's player went where the path maps the clicked second
        const json& k = f["compare_click"];
        EXPECT_NEAR(k["moved_sec"].get<double>(), k["expected_sec"].get<double>(), 0.06) << k.dump();
        EXPECT_GT(std::fabs(k["clicked_sec"].get<double>() - k["moved_sec"].get<double>()), 0.5) << k.dump();
    }
    if (f.contains("compare_ranking")) {
        const json& k = f["compare_ranking"];
        EXPECT_NE(k["url"].get<std::string>().find("compare=01-arpeggio"), std::string::npos) << k.dump();
        EXPECT_EQ(k["ranking"][0]["track"], "01-arpeggio__v01") << k.dump();
    }
    std::cout << "web UI facts: " << f.dump() << "\n";
}

// ---- the listening test ----------------------------------------------------------------------------

json post_judgement(const json& body, int expect) {
    httplib::Client c("127.0.0.1", g->port);
    auto res = c.Post("/api/listen/judgements", body.is_string() ? body.get<std::string>() : body.dump(), "application/json");
    EXPECT_TRUE(res);
    if (!res) return json();
    EXPECT_EQ(res->status, expect) << body.dump() << " → " << res->body;
    return json::parse(res->body);
}

json judgement_for(const json& triplet, const std::string& listener, const std::string& choice) {
    return {{"anchor", triplet["anchor"]["id"]}, {"a", triplet["a"]["id"]}, {"b", triplet["b"]["id"]}, {"choice", choice},
            {"aspect", triplet["question"]["aspect"]}, {"listener", listener}, {"time_ms", 4321}, {"sampler", triplet["sampler"]["label"]}};
}

// A triplet from the clip index (overall vs timbre, the dsp encoder's layer 0), the same for one seed and
// draw; a judgement stored (201) and counted; every bad parameter and body refused by name; the export
// as CSV, equal to `mess listen export`.
TEST_F(ServerTest, ListeningTestTripletsJudgementsAndExport) {
    const json t = get_json("/api/listen/next?listener=route-test", 200);
    std::set<std::string> ids, tracks;
    for (const char* k : {"anchor", "a", "b"}) {
        const json& p = t[k];
        ids.insert(p["id"].get<std::string>());
        tracks.insert(p["track_id"].get<std::string>());
        EXPECT_EQ(p["audio_url"], "/api/tracks/" + p["track_id"].get<std::string>() + "/audio") << t.dump();
        EXPECT_NEAR(p["end_sec"].get<double>() - p["start_sec"].get<double>(), 5.0, 0.01) << t.dump();
    }
    EXPECT_EQ(ids.size(), 3u);
    EXPECT_EQ(tracks.size(), 3u) << "one passage per track, none of the anchor's";
    EXPECT_EQ(t["sampler"]["label"], "disagreement:default/layer:0");
    EXPECT_EQ(t["question"]["aspect"], "");
    EXPECT_EQ(t["progress"]["judged"], 0);
    const auto& sim = t["sampler"]["similarity"];  // the two geometries order a and b oppositely
    EXPECT_LT((sim["first"][0].get<double>() - sim["first"][1].get<double>()) * (sim["second"][0].get<double>() - sim["second"][1].get<double>()), 0) << sim.dump();
    EXPECT_EQ(get_json("/api/listen/next?listener=route-test", 200)["anchor"], t["anchor"]) << "same seed and draw";
    const json dyn = get_json("/api/listen/next?listener=route-test&aspect=dynamics&geometries=layer:3,default&seed=5", 200);
    EXPECT_EQ(dyn["question"]["aspect"], "dynamics");
    EXPECT_NE(dyn["question"]["text"].get<std::string>().find("dynamics"), std::string::npos);
    EXPECT_EQ(get_json("/api/listen/next?listener=route-test&sampler=random", 200)["sampler"]["label"], "random:default");
    for (const auto& [query, parameter] : std::vector<std::pair<std::string, std::string>>{
             {"", "listener"}, {"?listener=a%20b", "listener"}, {"?listener=x&sampler=closest", "sampler"},
             {"?listener=x&geometries=layer:99,default", "geometries"}, {"?listener=x&geometries=default", "geometries"},
             {"?listener=x&k=1", "k"}, {"?listener=x&k=2.5", "k"}, {"?listener=x&aspect=loudness", "aspect"}, {"?listener=x&draw=-1", "draw"},
             {"?listener=x&colour=red", "colour"}})
        EXPECT_EQ(get_json("/api/listen/next" + query, 400)["parameter"], parameter) << query;

    const json stored = post_judgement(judgement_for(t, "route-test", "b"), 201);
    EXPECT_EQ(stored["stored"]["choice"], "b");
    EXPECT_EQ(stored["stored"]["judged_at"].get<std::string>().size(), 24u) << "UTC with milliseconds, set by the catalog";
    EXPECT_EQ(stored["stored"]["time_ms"], 4321);
    EXPECT_EQ(stored["progress"]["judged"], 1);
    const json next = get_json("/api/listen/next?listener=route-test", 200);
    EXPECT_EQ(next["progress"]["judged"], 1);
    EXPECT_EQ(next["sampler"]["draw"], 1) << "the next draw for this listener";
    auto refused = [&](json body, const std::string& parameter, int status = 400) {
        EXPECT_EQ(post_judgement(body, status)["parameter"], parameter) << body.dump();
    };
    json j = judgement_for(t, "route-test", "a");
    refused(json("not json"), "body");
    refused(json("[1, 2]"), "body");
    for (const char* field : {"anchor", "choice", "listener", "time_ms"}) {
        json missing = j;
        missing.erase(field);
        refused(missing, field);
    }
    for (const auto& [field, value] : std::vector<std::pair<std::string, json>>{
             {"choice", "c"}, {"choice", 1}, {"listener", "no spaces"}, {"time_ms", "5 s"}, {"time_ms", 1.5}, {"time_ms", -3}, {"aspect", "Dyn amics"}}) {
        json bad = j;
        bad[field] = value;
        refused(bad, field);
    }
    json bad = j;
    bad["colour"] = "red";
    refused(bad, "colour");
    bad = j;
    bad["a"] = j["anchor"];
    refused(bad, "anchor");
    bad = j;
    bad["b"] = "synth:nothing:00000";
    refused(bad, "b", 404);

    auto res = client().Get("/api/listen/export?listener=route-test");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 200);
    EXPECT_EQ(res->get_header_value("Content-Type"), "text/csv; charset=utf-8");
    const CsvTable csv = parse_csv(res->body, "export");
    EXPECT_EQ(csv.header, (std::vector<std::string>{"anchor", "a", "b", "choice", "aspect", "listener", "time_ms", "sampler", "judged_at"}));
    ASSERT_EQ(csv.rows.size(), 1u) << res->body;
    EXPECT_EQ(std::vector<std::string>(csv.rows[0].begin(), csv.rows[0].begin() + 7),
              (std::vector<std::string>{t["anchor"]["id"], t["a"]["id"], t["b"]["id"], "b", "", "route-test", "4321"}));
    EXPECT_EQ(get_json("/api/listen/export?listener=no%20one", 400)["parameter"], "listener");
    // The command line writes the same file.
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote(g->dir.path().string());
    const fs::path out = g->dir / "route-test.csv";
    const auto r = test::run_command(mess + " listen export --listener route-test --out " + test::quote(out.string()) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.out;
    EXPECT_EQ(read_file(out), res->body);
    EXPECT_EQ(test::run_command(mess + " listen export 2>&1").exit_code, 1) << "--out is required";
    // A catalog database that cannot be reached: the listening routes and the track list answer 503 (the
    // password never shown); the server starts and the rest of the service is unaffected.
    ServeConfig cfg = base_config(g->indices);
    cfg.catalog = "postgresql://listener:secret@127.0.0.1:1/none";
    const auto other = start_server(cfg);
    ASSERT_TRUE(wait_ready(*other));
    httplib::Client oc("127.0.0.1", other->port());
    for (const char* path : {"/api/listen/next?listener=x", "/api/listen/export"}) {
        auto down = oc.Get(path);
        ASSERT_TRUE(down) << path;
        EXPECT_EQ(down->status, 503) << path << " → " << down->body;
        EXPECT_NE(down->body.find("catalog database"), std::string::npos) << down->body;
        EXPECT_EQ(down->body.find("secret"), std::string::npos) << down->body;
    }
    EXPECT_EQ(oc.Post("/api/listen/judgements", judgement_for(t, "route-test", "a").dump(), "application/json")->status, 503);
    // The track list comes from that catalog too: 503 naming it; searches read the index and still answer.
    auto listing = oc.Get("/api/tracks?limit=1");
    EXPECT_EQ(listing->status, 503) << listing->body;
    EXPECT_NE(listing->body.find("catalog database"), std::string::npos) << listing->body;
    EXPECT_EQ(listing->body.find("secret"), std::string::npos) << listing->body;
    EXPECT_EQ(oc.Get("/health/ready")->status, 200);
    EXPECT_EQ(oc.Get("/api/tracks/01-arpeggio__v00/similar?k=2")->status, 200);
    other->stop();
    const auto unreachable = test::run_command(mess + " --catalog postgresql://127.0.0.1:1/none listen export --out " + test::quote(out.string()) + " 2>&1");
    EXPECT_EQ(unreachable.exit_code, 2) << unreachable.out;
    EXPECT_NE(unreachable.out.find("127.0.0.1"), std::string::npos) << "names the catalog: " << unreachable.out;
}

// The listening page in Debian's Chromium (web/tests/listen.mjs): linked from the main view, the answer
// buttons wait until the three passages were played, keyboard and mouse answers stored with the listener
// id and the time taken, the progress count, the listener id kept across a reload, the export; screenshot.
TEST_F(ServerTest, ListeningPageInHeadlessChromium) {
    const std::string listener = "e2e-listener";
    const fs::path shot = fs::current_path() / "web-ui-listen.png";
    const BrowserRun run = run_browser_script("listen.mjs", shot, listener, "listen-result: ");
    const auto& r = run.result;
    std::cout << "screenshot: " << shot.string() << "\n";
    ASSERT_FALSE(run.report.is_null()) << r.out;
    const json& report = run.report;
    const std::set<std::string>& passed = run.passed;
    for (const char* name : {"the main view links to the listening test", "a triplet and its question are shown",
                             "answers wait until the three passages were played", "the keyboard plays the passages and answers",
                             "a mouse answer", "the export holds both answers", "a reload keeps the listener and the count"})
        EXPECT_TRUE(passed.contains(name)) << "step '" << name << "' did not pass\n" << r.out;
    // Stored in the catalog database the server uses, with the listener id and the time taken.
    Config cfg;
    cfg.data_root.value = g->dir.path();
    const std::vector<db::Judgement> rows = db::CatalogDb::open(db::catalog_url(cfg))->judgements({.listener = listener});
    ASSERT_EQ(rows.size(), 2u) << r.out;
    EXPECT_EQ(rows[0].choice, "a");
    EXPECT_EQ(rows[1].choice, "b");
    for (const db::Judgement& j : rows) {
        EXPECT_GT(j.response_ms, 0);
        EXPECT_LT(j.response_ms, 120000);
        EXPECT_EQ(j.sampler, "disagreement:default/layer:0");
    }
    EXPECT_NE(rows[0].anchor + rows[0].a + rows[0].b, rows[1].anchor + rows[1].a + rows[1].b) << "the second answer was about a new triplet";
    std::cout << "listening page facts: " << report.at("facts").dump() << "\n";
}

}  // namespace
}  // namespace mess
