// mess route: one HTTP front over the shards of an index split by track; fan-out queries, merged answers.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <set>
#include <thread>
#include <tuple>

#include <spdlog/spdlog.h>

#include "routes.hpp"

namespace mess {
namespace {

using nlohmann::json;

// One shard's answer; status 0 when none came (`error` says why).
struct Reply {
    int status = 0;
    std::string body, content_type, error;
    httplib::Headers headers;
};

// A request sent to shards.
struct Outgoing {
    std::string method = "GET", target, body, content_type;
    httplib::Headers headers;
};

// An answer the router gives itself: {"error", "status"[, "parameter"][, "shard"]}.
struct RouteError {
    int status = 502;
    std::string message, parameter, shard;
};
[[noreturn]] void route_fail(int status, std::string message, std::string parameter = {}, std::string shard = {}) {
    throw RouteError{status, std::move(message), std::move(parameter), std::move(shard)};
}

// The parameters a shard's search (POST /api/shard/search) takes from the client's request.
const std::set<std::string>& search_params() {
    static const std::set<std::string> names = {"k", "aspect", "aspects", "unlike", "more", "less", "text", "filter", "exclude_same",
                                                "group_by_track", "role"};
    return names;
}

// Percent-encodes a decoded path (every byte but unreserved characters and '/').
std::string encode_path(const std::string& path) {
    std::string out;
    for (const unsigned char ch : path) {
        if (std::isalnum(ch) || ch == '/' || ch == '-' || ch == '_' || ch == '.' || ch == '~') out += static_cast<char>(ch);
        else out += fmt::format("%{:02X}", ch);
    }
    return out;
}

// The error message of a shard's answer (its JSON "error"), else the start of its body.
std::string message_of(const Reply& r) {
    if (r.status == 0) return r.error;
    const json j = json::parse(r.body, nullptr, false);
    if (j.is_object() && j.contains("error") && j["error"].is_string()) return j["error"].get<std::string>();
    return r.body.substr(0, 200);
}

json parse_reply(const Reply& r, const std::string& shard) {
    json j = json::parse(r.body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) route_fail(502, fmt::format("shard {} answered something that is not JSON", shard), {}, shard);
    return j;
}

// Hits of every shard as one list: score descending; equal scores in the single index's row order (tracks by
// id, a track's passages by segment), so the router answers as one index over every track would.
json merge_hits(const std::vector<json>& per_shard, std::size_t k) {
    std::vector<json> all;
    for (const json& results : per_shard)
        for (const json& h : results) all.push_back(h);
    std::stable_sort(all.begin(), all.end(), [](const json& a, const json& b) {
        const double sa = a.at("score").get<double>(), sb = b.at("score").get<double>();
        if (sa != sb) return sa > sb;
        const std::string& ta = a.at("track_id").get_ref<const std::string&>();
        const std::string& tb = b.at("track_id").get_ref<const std::string&>();
        if (ta != tb) return ta < tb;
        return a.value("segment_idx", -1) < b.value("segment_idx", -1);
    });
    if (all.size() > k) all.resize(k);
    json out = json::array();
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i]["rank"] = i + 1;
        out.push_back(std::move(all[i]));
    }
    return out;
}

// The single server's track order: composer, title (case-insensitive), then id.
std::tuple<std::string, std::string, std::string> track_order(const json& t) {
    const json& m = t.contains("metadata") && t["metadata"].is_object() ? t["metadata"] : json::object();
    return {to_lower(m.value("composer", "")), to_lower(m.value("title", "")), t.value("track_id", "")};
}

long whole_param(const httplib::Request& req, const std::string& name, long fallback, long lo, long hi) {
    if (!req.has_param(name)) return fallback;
    const std::string v = req.get_param_value(name);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || x != std::floor(x) || x < static_cast<double>(lo) || x > static_cast<double>(hi))
        route_fail(400, fmt::format("{} must be a whole number in [{}, {}] (got '{}')", name, lo, hi, v), name);
    return static_cast<long>(x);
}

}  // namespace

struct Router::Impl {
    RouterConfig config;
    httplib::Server http;
    std::thread listener;
    std::atomic<bool> stop_flag{false}, stopped{false};
    mutable std::atomic<unsigned> next_embedder{0};
    int port = -1;

    explicit Impl(RouterConfig c) : config(std::move(c)) {
        if (config.shards.empty()) throw_usage("a router needs at least one shard URL (--shards http://host:port,...)");
        for (std::string& url : config.shards) {
            while (url.ends_with('/')) url.pop_back();
            if (!url.starts_with("http://") || url.size() <= 7 || url.find('/', 7) != std::string::npos)
                throw_usage("shard '{}': expected http://host:port", url);
        }
        if (config.port < 0 || config.port > 65535) throw_usage("port {} is outside 0…65535", config.port);
        if (config.http_threads < 1) throw_usage("http threads must be at least 1");
        if (!(config.shard_timeout_sec > 0) || !(config.connect_timeout_sec > 0)) throw_usage("shard timeouts must be > 0 seconds");
        const auto threads = static_cast<std::size_t>(config.http_threads);
        http.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
        http.set_payload_max_length(config.max_upload_bytes);
        add_routes();
    }

    // ---- talking to shards ----

    Reply ask(std::size_t s, const Outgoing& o) const {
        httplib::Client cli(config.shards[s]);
        cli.set_connection_timeout(std::chrono::duration<double>(config.connect_timeout_sec));
        cli.set_read_timeout(std::chrono::duration<double>(config.shard_timeout_sec));
        cli.set_write_timeout(std::chrono::duration<double>(config.shard_timeout_sec));
        httplib::Result r = o.method == "POST" ? cli.Post(o.target.c_str(), o.headers, o.body, o.content_type.c_str())
                                               : cli.Get(o.target.c_str(), o.headers);
        Reply out;
        if (!r) {
            out.error = httplib::to_string(r.error());
            return out;
        }
        out.status = r->status;
        out.body = std::move(r->body);
        out.content_type = r->get_header_value("Content-Type");
        out.headers = r->headers;
        return out;
    }

    // Every shard at once; then any shard without a usable answer fails the request (no partial answers).
    std::vector<Reply> ask_all(const Outgoing& o) const {
        std::vector<std::future<Reply>> pending;
        for (std::size_t s = 0; s < config.shards.size(); ++s) pending.push_back(std::async(std::launch::async, [this, s, &o] { return ask(s, o); }));
        std::vector<Reply> out;
        for (auto& p : pending) out.push_back(p.get());
        for (std::size_t s = 0; s < out.size(); ++s) check(s, out[s]);
        return out;
    }

    void check(std::size_t s, const Reply& r) const {
        const std::string& url = config.shards[s];
        if (r.status == 0) route_fail(502, fmt::format("shard {} did not answer: {}", url, r.error), {}, url);
        if (r.status == 503) route_fail(503, fmt::format("shard {} cannot answer yet: {}", url, message_of(r)), {}, url);
        if (r.status >= 500) route_fail(502, fmt::format("shard {} failed ({}): {}", url, r.status, message_of(r)), {}, url);
    }

    // The answer of the shard holding the request's id: the one that is not 404 (all 404: the first).
    static const Reply& holder(const std::vector<Reply>& replies) {
        for (const Reply& r : replies)
            if (r.status != 404) return r;
        return replies.front();
    }

    static void pass_through(httplib::Response& res, const Reply& r) {
        res.status = r.status;
        for (const char* h : {"Content-Range", "Accept-Ranges", "Location", "Cache-Control", "Retry-After", "Allow"})
            if (r.headers.count(h)) res.set_header(h, r.headers.find(h)->second);
        res.set_content(r.body, r.content_type.empty() ? "application/json" : r.content_type);
    }

    static std::string target(const httplib::Request& req, const httplib::Params& params) {
        return httplib::append_query_params(encode_path(req.path), params);
    }

    // ---- routes ----

    // /api/tracks/{id}, its audio, waveform and structure: the shard holding the track.
    void by_holder(const httplib::Request& req, httplib::Response& res) const {
        Outgoing o{"GET", target(req, req.params), "", "", {}};
        if (req.has_header("Range")) o.headers.emplace("Range", req.get_header_value("Range"));
        pass_through(res, holder(ask_all(o)));
    }

    // The search routes: the query from the shard holding it, then every shard's hits for it, merged.
    void search(const httplib::Request& req, httplib::Response& res, Outgoing first, bool one_shard) const {
        if (req.has_param("context") && req.get_param_value("context") != "0")
            route_fail(400, "context is not answered by the router: it aligns the query's neighbours with each candidate's; ask a single index",
                       "context");
        if (req.has_param("rerank"))
            route_fail(400, "rerank is not answered by the router: its candidate tracks come from every shard's passages; ask a single index",
                       "rerank");
        Reply resolved;
        if (one_shard) {  // an upload: embedded once, by the shards in turn
            const std::size_t s = next_embedder_index();
            resolved = ask(s, first);
            check(s, resolved);
        } else {
            resolved = holder(ask_all(first));
        }
        if (resolved.status != 200) return pass_through(res, resolved);
        const json step1 = parse_reply(resolved, "holding the query");
        httplib::Params params;
        for (const auto& [key, value] : req.params)
            if (search_params().contains(key)) params.emplace(key, value);
        params.emplace("kind", step1.at("shard_query").at("kind").get<std::string>());
        const Outgoing second{"POST", httplib::append_query_params("/api/shard/search", params), step1.at("shard_query").dump(), "application/json", {}};
        const std::vector<Reply> replies = ask_all(second);
        for (const Reply& r : replies)
            if (r.status != 200) return pass_through(res, r);
        send_merged(res, step1, replies);
    }

    std::size_t next_embedder_index() const {
        return next_embedder.fetch_add(1) % config.shards.size();
    }

    void send_merged(httplib::Response& res, const json& step1, const std::vector<Reply>& replies) const {
        std::vector<json> results;
        json shards = json::array(), first;
        std::string versions;
        for (std::size_t s = 0; s < replies.size(); ++s) {
            json j = parse_reply(replies[s], config.shards[s]);
            const std::string version = j.at("index").value("version_id", "");
            shards.push_back({{"url", config.shards[s]}, {"version_id", version}, {"hits", j.at("results").size()}});
            versions += (versions.empty() ? "" : "+") + version;
            results.push_back(std::move(j.at("results")));
            if (s == 0) first = std::move(j);
        }
        const json& query = step1.at("query");
        json index = first.at("index");
        index["version_id"] = versions;
        index["shards"] = std::move(shards);
        send_json(res, {{"query", query},
                        {"index", std::move(index)},
                        {"layer_weights", first.at("layer_weights")},
                        {"learned_aspects", first.at("learned_aspects")},
                        {"results", merge_hits(results, query.at("k").get<std::size_t>())}});
    }

    void search_by_id(const httplib::Request& req, httplib::Response& res) const {
        httplib::Params params = req.params;
        params.emplace("shard_query", "true");
        search(req, res, Outgoing{"GET", target(req, params), "", "", {}}, false);
    }

    void search_audio(const httplib::Request& req, httplib::Response& res) const {
        httplib::Params params = req.params;
        params.emplace("shard_query", "true");
        Outgoing o{"POST", target(req, params), req.body, req.get_header_value("Content-Type"), {}};
        if (req.is_multipart_form_data()) {  // sent on as the raw file
            if (!req.has_file("file")) route_fail(400, "multipart upload needs a field named 'file'", "file");
            const auto file = req.get_file_value("file");
            o.body = file.content;
            o.content_type = file.content_type.empty() ? "application/octet-stream" : file.content_type;
        }
        if (o.content_type.empty()) o.content_type = "application/octet-stream";
        search(req, res, std::move(o), true);
    }

    // The first tracks of one shard's list and its total ("more than total" when a catalog bounds its count).
    struct TrackPrefix {
        std::int64_t total = 0;
        bool total_exact = true;
        std::vector<json> tracks;
    };

    // The first `want` tracks of one shard's list (pages of at most 500) and its total.
    TrackPrefix track_prefix(std::size_t s, httplib::Params params, std::int64_t want) const {
        TrackPrefix prefix;
        auto& tracks = prefix.tracks;
        params.erase("offset");
        params.erase("limit");
        for (std::int64_t offset = 0;;) {
            httplib::Params page = params;
            page.emplace("offset", std::to_string(offset));
            page.emplace("limit", std::to_string(std::clamp<std::int64_t>(want - offset, 1, 500)));
            const Reply r = ask(s, {"GET", httplib::append_query_params("/api/tracks", page), "", "", {}});
            check(s, r);
            if (r.status != 200) throw r;  // a bad parameter: the shard's own answer
            const json j = parse_reply(r, config.shards[s]);
            prefix.total = j.at("total").get<std::int64_t>();
            prefix.total_exact = j.value("total_exact", true);
            for (const json& t : j.at("tracks")) tracks.push_back(t);
            offset = static_cast<std::int64_t>(tracks.size());
            if (offset >= want || j.at("next_offset").is_null()) return prefix;
        }
    }

    void list_tracks(const httplib::Request& req, httplib::Response& res) const {
        if (config.shared_catalog) return pass_through(res, ask_all({"GET", target(req, req.params), "", "", {}}).front());
        const long offset = whole_param(req, "offset", 0, 0, 1L << 40), limit = whole_param(req, "limit", 50, 1, 500);
        std::vector<std::future<TrackPrefix>> pending;
        for (std::size_t s = 0; s < config.shards.size(); ++s)
            pending.push_back(std::async(std::launch::async, [&, s] { return track_prefix(s, req.params, offset + limit); }));
        std::int64_t total = 0;
        bool total_exact = true;
        std::vector<json> all;
        try {
            for (auto& p : pending) {
                TrackPrefix shard = p.get();
                total += shard.total;
                total_exact = total_exact && shard.total_exact;
                for (json& t : shard.tracks) all.push_back(std::move(t));
            }
        } catch (const Reply& r) {
            return pass_through(res, r);
        }
        std::stable_sort(all.begin(), all.end(), [](const json& a, const json& b) { return track_order(a) < track_order(b); });
        json page = json::array();
        for (std::size_t i = static_cast<std::size_t>(offset); i < all.size() && page.size() < static_cast<std::size_t>(limit); ++i) page.push_back(all[i]);
        const std::int64_t next = offset + limit;
        const bool more = next < total || (!total_exact && static_cast<long>(page.size()) == limit);
        send_json(res, {{"total", total}, {"total_exact", total_exact}, {"offset", offset}, {"limit", limit},
                        {"next_offset", more ? json(next) : json()}, {"tracks", std::move(page)}});
    }

    // /api/datasets and /api/composers: each shard's counts, summed by dataset or composer.
    void datasets(httplib::Response& res) const {
        std::map<std::string, json> by_id;
        for (std::size_t s = 0; const Reply& r : ask_all({"GET", "/api/datasets", "", "", {}})) {
            const json answer = parse_reply(r, config.shards[s++]);
            for (const json& d : answer.at("datasets")) {
                auto [it, fresh] = by_id.try_emplace(d.at("dataset_id").get<std::string>(), d);
                if (fresh) continue;
                for (const char* count : {"tracks", "passages"})
                    if (d.contains(count)) it->second[count] = it->second.value(count, 0) + d.at(count).get<std::int64_t>();
            }
        }
        json out = json::array();
        for (auto& [id, d] : by_id) out.push_back(std::move(d));
        send_json(res, {{"datasets", std::move(out)}});
    }

    void composers(httplib::Response& res) const {
        std::map<std::string, std::int64_t> count;
        for (std::size_t s = 0; const Reply& r : ask_all({"GET", "/api/composers", "", "", {}})) {
            const json answer = parse_reply(r, config.shards[s++]);
            for (const json& c : answer.at("composers")) count[c.at("composer")] += c.at("track_count").get<std::int64_t>();
        }
        json out = json::array();
        for (const auto& [name, n] : count) out.push_back({{"composer", name}, {"track_count", n}});
        std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) { return a["track_count"] > b["track_count"]; });
        send_json(res, {{"composers", out}, {"count", out.size()}});
    }

    // /health: every shard's readiness; /health/ready 200 only when every shard is ready.
    json shard_health(bool& all_ready) const {
        std::vector<std::future<Reply>> pending;
        for (std::size_t s = 0; s < config.shards.size(); ++s)
            pending.push_back(std::async(std::launch::async, [this, s] { return ask(s, {"GET", "/health/ready", "", "", {}}); }));
        json out = json::array();
        all_ready = true;
        for (std::size_t s = 0; s < pending.size(); ++s) {
            const Reply r = pending[s].get();
            all_ready = all_ready && r.status == 200;
            json j = {{"url", config.shards[s]}, {"ready", r.status == 200}};
            if (r.status != 200) j["error"] = r.status == 0 ? "did not answer: " + r.error : message_of(r);
            out.push_back(std::move(j));
        }
        return out;
    }

    void health(httplib::Response& res, bool ready_only) const {
        bool ready = false;
        json shards = shard_health(ready);
        if (ready_only && !ready) res.set_header("Retry-After", "2");
        send_json(res, {{"status", ready ? "ok" : "degraded"}, {"role", "router"}, {"ready", ready}, {"shards", std::move(shards)}},
                  ready_only && !ready ? 503 : 200);
    }

    void not_routed(const httplib::Request& req, httplib::Response& res) const {
        route_fail(501, fmt::format("{} {} is not answered by the router (mess route): it may need tracks of several shards; ask a shard "
                                    "(mess serve) directly", req.method, req.path));
        (void)res;
    }

    // ---- registration ----

    using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

    Handler guarded(Handler h) const {
        return [this, h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
            server::allow_origin(req, res, config.cors_origins);
            try {
                h(req, res);
            } catch (const RouteError& e) {
                json body = server::error_body(e.status, e.message, e.parameter);
                if (!e.shard.empty()) body["shard"] = e.shard;
                if (e.status == 503) res.set_header("Retry-After", "2");
                server::send_json(res, body, e.status);
            } catch (const std::exception& e) {
                spdlog::error("{} {}: {}", req.method, req.path, e.what());
                server::send_json(res, server::error_body(500, std::string("internal error: ") + e.what()), 500);
            }
        };
    }

    static void send_json(httplib::Response& res, const json& body, int status = 200) { server::send_json(res, body, status); }

    void add_routes() {
        auto get = [this](const std::string& pattern, Handler h) { http.Get(pattern, guarded(std::move(h))); };
        using Req = const httplib::Request&;
        using Res = httplib::Response&;
        get("/health/live", [](Req, Res res) { send_json(res, {{"status", "ok"}, {"role", "router"}}); });
        get("/health/ready", [this](Req, Res res) { health(res, true); });
        get("/health", [this](Req, Res res) { health(res, false); });
        get("/api/datasets", [this](Req, Res res) { datasets(res); });
        get("/api/composers", [this](Req, Res res) { composers(res); });
        get("/api/aspects", [this](Req, Res res) { pass_through(res, ask_all({"GET", "/api/aspects", "", "", {}}).front()); });
        get("/api/tracks", [this](Req req, Res res) { list_tracks(req, res); });
        get("/api/tracks/([^/]+)", [this](Req req, Res res) { by_holder(req, res); });
        get("/api/tracks/([^/]+)/(audio|waveform|structure)", [this](Req req, Res res) { by_holder(req, res); });
        get("/api/tracks/([^/]+)/(similar|passages)", [this](Req req, Res res) { search_by_id(req, res); });
        get("/api/clips/([^/]+)/similar", [this](Req req, Res res) { search_by_id(req, res); });
        http.Post("/api/search/audio", guarded([this](Req req, Res res) { search_audio(req, res); }));
        get("/api/.*", [this](Req req, Res res) { not_routed(req, res); });
        http.Post("/api/.*", guarded([this](Req req, Res res) { not_routed(req, res); }));
        http.set_error_handler([](Req req, Res res) {
            if (res.body.empty() && res.status == 404)
                send_json(res, server::error_body(404, fmt::format("no route {} {}", req.method, req.path)), 404);
        });
    }
};

Router::Router(RouterConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Router::~Router() { stop(); }

void Router::start() {
    Impl& m = *impl_;
    m.port = server::bind_http(m.http, m.config.host, m.config.port);
    m.listener = server::serve_http(m.http);
    spdlog::info("routing on http://{}:{} over {} shards", m.config.host, m.port, m.config.shards.size());
}

int Router::port() const { return impl_->port; }

void Router::request_stop() noexcept { impl_->stop_flag.store(true); }

void Router::wait() {
    while (!impl_->stop_flag.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop();
}

void Router::stop() {
    Impl& m = *impl_;
    if (m.stopped.exchange(true)) return;
    m.stop_flag.store(true);
    m.http.stop();
    if (m.listener.joinable()) m.listener.join();
}

}  // namespace mess
