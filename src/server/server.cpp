// The HTTP server: routing, errors, CORS, metrics, the answer cache and hot reload.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <list>
#include <regex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "connections.hpp"
#include "routes.hpp"

namespace mess {
namespace fs = std::filesystem;
using namespace server;

namespace {

constexpr std::array<double, 12> kLatencyBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

struct RouteStats {
    std::array<std::atomic<std::uint64_t>, kLatencyBuckets.size() + 1> buckets{};
    std::array<std::atomic<std::uint64_t>, 6> by_class{};  // status / 100
    std::atomic<std::uint64_t> count{0}, sum_ns{0};
    void record(int status, std::chrono::nanoseconds took) {
        const double s = std::chrono::duration<double>(took).count();
        std::size_t b = 0;
        while (b < kLatencyBuckets.size() && s > kLatencyBuckets[b]) ++b;
        buckets[b].fetch_add(1, std::memory_order_relaxed);
        by_class[static_cast<std::size_t>(std::clamp(status / 100, 0, 5))].fetch_add(1, std::memory_order_relaxed);
        count.fetch_add(1, std::memory_order_relaxed);
        sum_ns.fetch_add(static_cast<std::uint64_t>(took.count()), std::memory_order_relaxed);
    }
};

// A serialized JSON answer and its status.
struct Answer {
    int status = 200;
    std::string body;
};

// LRU of serialized answers, for one index version at a time, in shards by key hash so that a thread
// descheduled while holding one shard's lock stalls only the requests for that shard.
class AnswerCache {
public:
    explicit AnswerCache(std::size_t capacity) : capacity_(capacity), shards_(kShards) {}
    bool get(const std::string& key, Answer& out) {
        if (capacity_ == 0) return false;
        Shard& s = shard(key);
        std::lock_guard lock(s.mutex);
        const auto it = s.map.find(key);
        if (it == s.map.end()) return false;
        s.order.splice(s.order.begin(), s.order, it->second);
        out = it->second->second;
        return true;
    }
    void put(const std::string& key, Answer value) {
        if (capacity_ == 0) return;
        Shard& s = shard(key);
        std::lock_guard lock(s.mutex);
        if (s.map.contains(key)) return;
        s.order.emplace_front(key, std::move(value));
        s.map[key] = s.order.begin();
        if (s.order.size() > (capacity_ + kShards - 1) / kShards) {
            s.map.erase(s.order.back().first);
            s.order.pop_back();
        }
    }
    void clear() {
        for (Shard& s : shards_) {
            std::lock_guard lock(s.mutex);
            s.map.clear();
            s.order.clear();
        }
    }

private:
    static constexpr std::size_t kShards = 16;
    struct Shard {
        std::mutex mutex;
        std::list<std::pair<std::string, Answer>> order;  // most recent first
        std::unordered_map<std::string, std::list<std::pair<std::string, Answer>>::iterator> map;
    };
    Shard& shard(const std::string& key) { return shards_[std::hash<std::string>{}(key) % kShards]; }
    std::size_t capacity_;
    std::vector<Shard> shards_;
};

// The cache key of a request: path and its parameters in a canonical order.
std::string cache_key(const httplib::Request& req) {
    std::vector<std::pair<std::string, std::string>> params(req.params.begin(), req.params.end());
    std::sort(params.begin(), params.end());
    std::string key = req.path;
    for (const auto& [k, v] : params) key += "\x1f" + k + "=" + v;
    return key;
}

// httplib's server with the connection layer of connections.hpp under it: httplib accepts and parses,
// `Connections` owns every socket between requests.
class HttpServer final : public httplib::Server {
public:
    Connections* connections = nullptr;
    bool handle(httplib::Stream& stream, bool close, bool& closed) { return process_request(stream, close, closed, nullptr); }

private:
    bool process_and_close_socket(socket_t sock) override {
        connections->adopt(sock);
        return true;
    }
};

// Error messages name no absolute server path: the index source and data root become relative, the
// temporary directory "<tmp>", and any other absolute path under an existing top-level directory its
// file name.
class Redactor {
public:
    explicit Redactor(const ServeConfig& c) {
        auto add = [&](const fs::path& p, const std::string& as) {
            if (p.empty() || (c.index_source.starts_with("s3://") && p == fs::path(c.index_source))) return;
            std::error_code ec;
            for (fs::path q : {fs::absolute(p, ec).lexically_normal(), fs::weakly_canonical(p, ec)}) {
                std::string s = q.string();
                while (s.size() > 1 && s.back() == '/') s.pop_back();
                if (s.size() > 1) prefixes_.emplace_back(s, as);
            }
        };
        add(c.index_source, "");
        add(c.data_root, "");
        add(c.web_root, "web/");
        add(fs::temp_directory_path(), "<tmp>/");
        std::sort(prefixes_.begin(), prefixes_.end(), [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
    }
    std::string operator()(std::string m) const {
        for (const auto& [prefix, as] : prefixes_)
            for (std::size_t at = m.find(prefix); at != std::string::npos; at = m.find(prefix, at)) {
                const std::size_t end = at + prefix.size();
                if (end < m.size() && m[end] != '/') {  // not this directory, one with a longer name
                    at = end;
                    continue;
                }
                const bool slash = end < m.size();
                m.replace(at, prefix.size() + (slash ? 1 : 0), as.empty() && !slash ? "." : as);
                at += as.size();
            }
        static const std::regex absolute(R"((^|[\s'"(=:])(/[A-Za-z0-9._+@~-]+(?:/[A-Za-z0-9._+@~-]+)+/?))");
        std::string out;
        std::size_t last = 0;
        for (std::sregex_iterator it(m.begin(), m.end(), absolute), end; it != end; ++it) {
            const std::string path = (*it)[2].str();
            const std::string top = path.substr(0, path.find('/', 1));
            std::error_code ec;
            if (!fs::is_directory(top, ec)) continue;
            out += m.substr(last, static_cast<std::size_t>((*it)[2].first - m.begin()) - last);
            std::string name = fs::path(path).lexically_normal().filename().string();
            if (name.empty()) name = fs::path(path).lexically_normal().parent_path().filename().string();
            out += "…/" + name;
            last = static_cast<std::size_t>((*it)[2].second - m.begin());
        }
        return out + m.substr(last);
    }

private:
    std::vector<std::pair<std::string, std::string>> prefixes_;
};

// A version refused at load.
struct Refusal {
    std::string kind, version, reason;
};

}  // namespace

struct Server::Impl {
    ServeConfig config;
    Redactor redact;
    HttpServer http;
    std::unique_ptr<Connections> connections;
    std::vector<Route> routes;
    std::vector<std::unique_ptr<RouteStats>> stats;  // one per route, plus the static ones
    std::thread listener, watcher;
    int port = 0;
    int listen_socket = -1;  // the bound socket (seen by the socket-options callback)
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    mutable std::mutex snap_mutex;  // guards served, refused and error
    std::atomic<std::shared_ptr<const Snapshot>> snap;  // read by every request without a lock
    Side served_track, served_clip;
    std::map<std::string, Refusal> refused;  // by directory; never loaded again
    std::string error;
    // Answers given outside the routes (unknown routes, wrong methods, protocol errors), by status.
    std::array<std::atomic<std::uint64_t>, 600> unrouted{};
    std::vector<std::pair<std::regex, std::string>> route_methods;  // path pattern → method, for 405
    std::mutex reload_mutex;  // one reload at a time
    std::atomic<bool> reload_flag{false}, stop_flag{false}, stopped{false};
    std::atomic<std::uint64_t> reloads{0}, reload_failures{0}, cache_hits{0}, cache_misses{0};
    AnswerCache cache;
    std::unique_ptr<CatalogPool> catalog;  // when config.catalog is set

    explicit Impl(ServeConfig c) : config(std::move(c)), redact(config), cache(config.cache_entries) {
        if (!config.catalog.empty()) catalog = std::make_unique<CatalogPool>(config.catalog);
    }

    std::string last_error() const {
        std::lock_guard lock(snap_mutex);
        return error;
    }

    std::shared_ptr<const Snapshot> current() const { return snap.load(); }

    // The newest loadable version of one kind: the served one when nothing newer loads (even if its
    // directory is gone: it is in memory). Versions that fail are refused for good.
    Side pick(IndexKind kind, const std::vector<fs::path>& candidates, const Side& served, std::vector<std::string>& refusals) {
        for (const fs::path& dir : candidates) {
            if (served.artifact && dir == served.dir) return served;
            {
                std::lock_guard lock(snap_mutex);
                if (refused.contains(dir.string())) continue;
            }
            try {
                return load_side(dir, kind, config);
            } catch (const Error& e) {
                Refusal r{to_string(kind), dir.filename().string(), redact(e.what())};
                spdlog::error("refused {} index version {}: {}", r.kind, r.version, r.reason);
                refusals.push_back(fmt::format("{} index {}: {}", r.kind, r.version, r.reason));
                std::lock_guard lock(snap_mutex);
                refused[dir.string()] = std::move(r);
            }
        }
        return served;
    }

    bool reload() {
        std::lock_guard one(reload_mutex);
        std::vector<std::string> refusals;
        bool changed = false;
        try {
            const SourceCandidates next = list_sources(config, [this](const std::string& key) {
                std::lock_guard lock(snap_mutex);
                return refused.contains(key);
            });
            for (const PullRefusal& p : next.refused_pulls) {
                Refusal r{p.kind, p.version, redact(p.reason)};
                spdlog::error("refused {} index version {} (pull): {}", r.kind, r.version, r.reason);
                refusals.push_back(fmt::format("{} index {}: {}", r.kind, r.version, r.reason));
                std::lock_guard lock(snap_mutex);
                refused[p.key] = std::move(r);
            }
            const Side track = pick(IndexKind::track, next.track, served_track, refusals);
            const Side clip = pick(IndexKind::clip, next.clip, served_clip, refusals);
            if (!track.artifact && !clip.artifact) {
                std::string why = refusals.empty() ? next.errors.empty() ? "" : next.errors.front() : refusals.front();
                if (why.empty())
                    why = fmt::format("no index artifact in the index source (expected {}/ or {}/ version directories, or an artifact directory)",
                                      config.track_name, config.clip_name);
                throw_input("{}", why);
            }
            changed = !snap.load() || track.dir != served_track.dir || clip.dir != served_clip.dir;
            auto fresh = changed ? make_snapshot(track, clip, config) : nullptr;
            std::lock_guard lock(snap_mutex);
            if (fresh) snap.store(std::move(fresh));
            served_track = track;
            served_clip = clip;
            // Only refusals newer than what serves matter (and those still on disk).
            std::erase_if(refused, [&](const auto& kv) {
                const Side& s = kv.second.kind == "track" ? served_track : served_clip;
                std::error_code ec;
                const bool gone = !kv.first.starts_with("s3:") && !fs::exists(kv.first, ec);  // s3: keys are no paths
                return gone || (s.artifact && kv.second.version <= s.dir.filename().string());
            });
            error.clear();
        } catch (const Error& e) {
            reload_failures.fetch_add(1);
            std::lock_guard lock(snap_mutex);
            error = redact(e.what());
            throw;
        }
        if (changed) {
            cache.clear();
            reloads.fetch_add(1);
        }
        if (!refusals.empty()) {
            reload_failures.fetch_add(1);
            const auto s = current();
            std::string msg = fmt::format("refused {}; serving {}", fmt::join(refusals, "; "), s->version);
            std::lock_guard lock(snap_mutex);
            error = msg;
            throw_input("{}", msg);
        }
        return changed;
    }

    void watch() {
        auto last = std::chrono::steady_clock::now();
        bool first = true;
        while (!stop_flag.load()) {
            const bool due = config.reload_interval_sec > 0 &&
                             std::chrono::steady_clock::now() - last >= std::chrono::duration<double>(config.reload_interval_sec);
            if (first || reload_flag.exchange(false) || due) {
                last = std::chrono::steady_clock::now();
                try {
                    if (reload()) spdlog::info("serving version {}", current()->version);
                } catch (const Error& e) {
                    if (current()) spdlog::warn("{}", e.what());
                    else spdlog::error("{}{}", first ? "loading the indexes failed: " : "reload failed: ", e.what());
                }
                first = false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
    }

    void cors(const httplib::Request& req, httplib::Response& res) const { allow_origin(req, res, config.cors_origins); }

    void add_route(const Route& route, RouteStats& st) {
        auto handler = [this, &route, &st](const httplib::Request& req, httplib::Response& res) {
            const auto t0 = std::chrono::steady_clock::now();
            cors(req, res);
            // Routes answer ranges themselves (only audio has any); httplib would slice every body a second
            // time, without checking the ranges against its length.
            const_cast<httplib::Request&>(req).ranges.clear();
            try {
                const auto s = current();
                if (route.behaviour.needs_index && !s) {
                    res.set_header("Retry-After", "2");
                    const std::string why = last_error();
                    fail(503, why.empty() ? "loading the indexes" : "no index loaded: " + why);
                }
                if (!route.behaviour.extra_query)
                    for (const auto& [key, value] : req.params) {
                        const bool known = std::any_of(route.params.begin(), route.params.end(),
                                                       [&](const Param& p) { return p.in == "query" && p.name == key; });
                        if (!known) {
                            std::string names;
                            for (const auto& p : route.params)
                                if (p.in == "query") names += (names.empty() ? "" : ", ") + p.name;
                            fail(400, fmt::format("unknown parameter '{}' (known: {})", key, names.empty() ? "none" : names), key);
                        }
                    }
                std::string key;
                if (route.behaviour.cached && config.cache_entries > 0) {
                    key = s->version + "\x1e" + cache_key(req);
                    Answer hit;
                    if (cache.get(key, hit)) {
                        cache_hits.fetch_add(1, std::memory_order_relaxed);
                        res.status = hit.status;
                        res.set_content(std::move(hit.body), "application/json");
                        st.record(hit.status, std::chrono::steady_clock::now() - t0);
                        return;
                    }
                    cache_misses.fetch_add(1, std::memory_order_relaxed);
                }
                Call call{req, res, s.get(), config, catalog.get()};
                route.handle(call);
                // 422: an answer a handler gave itself (two recordings that do not align), as lasting as a 200.
                if (!key.empty() && (res.status == 200 || res.status == 422)) cache.put(key, {res.status, res.body});
            } catch (const HttpError& e) {
                send_json(res, error_body(e.status, redact(e.message), e.parameter), e.status);
            } catch (const Error& e) {
                const int status = e.kind() == ErrorKind::internal ? 500 : 400;
                send_json(res, error_body(status, redact(e.what())), status);
            } catch (const std::exception& e) {
                spdlog::error("{} {}: {}", req.method, req.path, e.what());
                send_json(res, error_body(500, redact(std::string("internal error: ") + e.what())), 500);
            }
            st.record(res.status, std::chrono::steady_clock::now() - t0);
        };
        const std::string pattern = route_pattern(route);
        if (route.method == "POST") http.Post(pattern, handler);
        else http.Get(pattern, handler);
    }

    nlohmann::json health() const {
        const auto s = current();
        nlohmann::json indexes = nlohmann::json::object();
        if (s)
            for (const auto& [kind, a] : {std::pair{"track", s->track}, std::pair{"clip", s->clip}})
                if (a)
                    indexes[kind] = {{"version_id", a->version_id()}, {"ntotal", a->index.size()}, {"model", a->index.model_name},
                                     {"dataset", a->index.dataset}, {"factory", a->index.index.factory()}, {"dir", a->dir.filename().string()},
                                     {"neighbour_lists", a->index.neighbours ? a->index.neighbours->k : 0}};
        std::lock_guard lock(snap_mutex);
        nlohmann::json refusals = nlohmann::json::object();  // the newest refused version of each kind
        for (const auto& [dir, r] : refused)
            if (!refusals.contains(r.kind) || refusals[r.kind]["version"].get<std::string>() < r.version)
                refusals[r.kind] = {{"version", r.version}, {"reason", r.reason}};
        const auto& cs = connections->stats();
        return {{"status", s ? "ok" : error.empty() ? "loading" : "error"},
                {"ready", static_cast<bool>(s)},
                {"tracks", s ? s->tracks.size() : 0},
                {"indexes", indexes},
                {"refused", refusals},
                {"error", error},
                {"connections", {{"open", cs.open.load()}, {"waiting", cs.waiting.load()}, {"queued", cs.queued.load()}, {"busy", cs.busy.load()}}},
                {"reloads", reloads.load()},
                {"uptime_sec", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    }

    std::string metrics() const {
        std::string out =
            "# HELP mess_http_requests_total Requests answered, by route and status class.\n# TYPE mess_http_requests_total counter\n";
        for (std::size_t i = 0; i < routes.size(); ++i)
            for (std::size_t c = 1; c < 6; ++c)
                if (auto n = stats[i]->by_class[c].load())
                    out += fmt::format("mess_http_requests_total{{method=\"{}\",route=\"{}\",code=\"{}xx\"}} {}\n", routes[i].method, routes[i].path, c, n);
        out += "# HELP mess_http_request_duration_seconds Time to answer, by route.\n# TYPE mess_http_request_duration_seconds histogram\n";
        for (std::size_t i = 0; i < routes.size(); ++i) {
            const RouteStats& st = *stats[i];
            const std::string labels = fmt::format("method=\"{}\",route=\"{}\"", routes[i].method, routes[i].path);
            std::uint64_t cum = 0;
            for (std::size_t b = 0; b < kLatencyBuckets.size(); ++b) {
                cum += st.buckets[b].load();
                out += fmt::format("mess_http_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n", labels, kLatencyBuckets[b], cum);
            }
            cum += st.buckets.back().load();
            out += fmt::format("mess_http_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n", labels, cum);
            out += fmt::format("mess_http_request_duration_seconds_sum{{{}}} {:.9f}\n", labels, static_cast<double>(st.sum_ns.load()) * 1e-9);
            out += fmt::format("mess_http_request_duration_seconds_count{{{}}} {}\n", labels, st.count.load());
        }
        const auto s = current();
        out += "# HELP mess_ready 1 when an index is loaded.\n# TYPE mess_ready gauge\n";
        out += fmt::format("mess_ready {}\n", s ? 1 : 0);
        out += "# HELP mess_index_info The served index versions.\n# TYPE mess_index_info gauge\n";
        out += "# HELP mess_index_vectors Vectors in each served index.\n# TYPE mess_index_vectors gauge\n";
        if (s)
            for (const auto& [kind, a] : {std::pair{"track", s->track}, std::pair{"clip", s->clip}})
                if (a) {
                    out += fmt::format("mess_index_info{{kind=\"{}\",version_id=\"{}\",model=\"{}\",factory=\"{}\"}} 1\n", kind, a->version_id(),
                                       a->index.model_name, a->index.index.factory());
                    out += fmt::format("mess_index_vectors{{kind=\"{}\"}} {}\n", kind, a->index.size());
                }
        out += fmt::format("# TYPE mess_tracks gauge\nmess_tracks {}\n", s ? s->tracks.size() : 0);
        out += fmt::format("# TYPE mess_reloads_total counter\nmess_reloads_total {}\n", reloads.load());
        out += fmt::format("# TYPE mess_reload_failures_total counter\nmess_reload_failures_total {}\n", reload_failures.load());
        out += fmt::format("# TYPE mess_cache_hits_total counter\nmess_cache_hits_total {}\n", cache_hits.load());
        out += fmt::format("# TYPE mess_cache_misses_total counter\nmess_cache_misses_total {}\n", cache_misses.load());
        out += "# HELP mess_reload_refused Index versions refused at load (newer than the served ones).\n# TYPE mess_reload_refused gauge\n";
        {
            std::lock_guard lock(snap_mutex);
            for (const auto& [dir, r] : refused) out += fmt::format("mess_reload_refused{{kind=\"{}\",version=\"{}\"}} 1\n", r.kind, r.version);
        }
        out += "# HELP mess_http_unrouted_total Answers given outside the routes: unknown routes (404), other methods (405), "
               "protocol errors (400, 408, 413, 414, 431), connections refused (503).\n# TYPE mess_http_unrouted_total counter\n";
        for (std::size_t code = 0; code < unrouted.size(); ++code)
            if (const auto n = unrouted[code].load()) out += fmt::format("mess_http_unrouted_total{{code=\"{}\"}} {}\n", code, n);
        const auto& cs = connections->stats();
        out += "# HELP mess_http_connections Connections: open, waiting for a request, queued for a thread, being answered.\n"
               "# TYPE mess_http_connections gauge\n";
        out += fmt::format("mess_http_connections{{state=\"open\"}} {}\nmess_http_connections{{state=\"waiting\"}} {}\n", cs.open.load(), cs.waiting.load());
        out += fmt::format("mess_http_connections{{state=\"queued\"}} {}\nmess_http_connections{{state=\"busy\"}} {}\n", cs.queued.load(), cs.busy.load());
        out += "# HELP mess_http_connections_closed_total Connections closed by the server, by reason.\n# TYPE mess_http_connections_closed_total counter\n";
        for (const auto& [reason, n] : {std::pair{"idle", cs.idle_closed.load()}, std::pair{"evicted", cs.evicted.load()},
                                        std::pair{"header_timeout", cs.header_timeouts.load()}, std::pair{"body_timeout", cs.body_timeouts.load()},
                                        std::pair{"refused", cs.refused.load()}})
            out += fmt::format("mess_http_connections_closed_total{{reason=\"{}\"}} {}\n", reason, n);
        out += fmt::format("# TYPE mess_http_connections_accepted_total counter\nmess_http_connections_accepted_total {}\n", cs.accepted.load());
        return out;
    }

    void build_routes() {
        Config defaults;
        defaults.data_root.value = config.data_root;
        routes = api_routes(std::make_shared<JudgementStore>(config.catalog.empty() ? db::catalog_url(defaults) : config.catalog));
        auto plain = [](std::string path, std::string summary, std::vector<int> statuses, std::string type, std::function<void(Call&)> h) {
            return Route{"GET", std::move(path), std::move(summary), {}, std::move(statuses), false, false, false, std::move(type), std::move(h)};
        };
        routes.push_back(plain("/health", "Status, loaded index versions, uptime", {}, "application/json",
                               [this](Call& c) { send_json(c.res, health()); }));
        routes.push_back(plain("/health/live", "Liveness: the process answers", {}, "application/json",
                               [](Call& c) { send_json(c.res, {{"status", "alive"}}); }));
        routes.push_back(plain("/health/ready", "Readiness: an index is loaded (503 until then)", {503}, "application/json", [this](Call& c) {
            const auto h = health();
            send_json(c.res, h, h["ready"].get<bool>() ? 200 : 503);
        }));
        routes.push_back(plain("/metrics", "Prometheus metrics", {}, "text/plain",
                               [this](Call& c) { c.res.set_content(metrics(), "text/plain; version=0.0.4"); }));
        routes.push_back(plain("/openapi.json", "This document", {}, "application/json",
                               [this](Call& c) { send_json(c.res, openapi_document(routes)); }));
        for (std::size_t i = 0; i < routes.size(); ++i) stats.push_back(std::make_unique<RouteStats>());
        for (std::size_t i = 0; i < routes.size(); ++i) {
            add_route(routes[i], *stats[i]);
            route_methods.emplace_back(std::regex(route_pattern(routes[i])), routes[i].method);
        }
        route_methods.emplace_back(std::regex(R"(/api/.*)"), "OPTIONS");
    }

    // The methods a path has routes for ("" when none): the Allow header of a 405.
    std::string allowed_methods(const std::string& path) const {
        std::vector<std::string> methods;
        for (const auto& [re, method] : route_methods)
            if (std::regex_match(path, re) && std::find(methods.begin(), methods.end(), method) == methods.end()) {
                methods.push_back(method);
                if (method == "GET") methods.push_back("HEAD");
            }
        if (methods.size() == 1 && methods[0] == "OPTIONS") return "";  // only the CORS preflight: no such route
        std::string out;
        for (const auto& m : methods) out += (out.empty() ? "" : ", ") + m;
        return out;
    }

    // The connection layer under httplib: idle connections on one event thread, per-client caps, early refusals.
    void make_connections() {
        const ServeConfig& c = config;
        ConnectionLimits limits;
        limits.workers = c.http_threads;
        limits.max_connections = c.max_connections;
        limits.max_client_connections = c.max_client_connections;
        limits.max_client_requests =
            c.max_client_requests > 0 ? c.max_client_requests : std::max<std::size_t>(2, static_cast<std::size_t>(c.http_threads) / 4);
        limits.max_body_bytes = c.max_upload_bytes + (64u << 10);  // multipart framing
        limits.idle_timeout = c.idle_timeout_sec;
        limits.header_timeout = c.header_timeout_sec;
        limits.body_timeout = c.body_timeout_sec;
        limits.body_idle_timeout = std::min(5.0, c.body_timeout_sec);
        connections = std::make_unique<Connections>(
            limits, [this](httplib::Stream& s, bool close, bool& closed) { return http.handle(s, close, closed); },
            [this](int status) { unrouted[static_cast<std::size_t>(std::clamp(status, 0, 599))].fetch_add(1, std::memory_order_relaxed); });
        http.connections = connections.get();
        http.new_task_queue = [] { return new InlineTaskQueue; };
    }

    void configure_http() {
        http.set_tcp_nodelay(true);
        // SO_REUSEADDR only: httplib's default also sets SO_REUSEPORT, which lets a second server bind a port in use.
        http.set_socket_options([this](socket_t sock) {
            int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
            listen_socket = sock;
        });
        http.set_keep_alive_max_count(100000);
        http.set_keep_alive_timeout(static_cast<time_t>(std::ceil(config.idle_timeout_sec)));  // what the Keep-Alive header announces
        http.set_payload_max_length(config.max_upload_bytes + (64u << 10));
        http.Options(R"(/api/.*)", [this](const httplib::Request& req, httplib::Response& res) {
            cors(req, res);
            res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
            res.set_header("Access-Control-Allow-Headers", "Content-Type, Range");
            res.set_header("Access-Control-Max-Age", "600");
            res.status = 204;
        });
        http.set_error_handler([this](const httplib::Request& req, httplib::Response& res) { answer_protocol_error(req, res); });
        if (!config.web_root.empty()) {
            http.set_mount_point("/", config.web_root.string());
            http.set_file_request_handler([](const httplib::Request& req, httplib::Response& res) {
                res.set_header("Cache-Control", req.path.starts_with("/assets/") ? "public, max-age=86400" : "no-cache");
            });
        }
    }

    // The message of an answer no route gave (404/405, 400, 408, 413, 414), counted and redacted.
    std::string protocol_error_message(const httplib::Request& req, httplib::Response& res) const {
        std::string message = fmt::format("{} {}: {}", req.method, req.path, status_text(res.status));
        if (res.status == 404) {
            if (const std::string allow = allowed_methods(req.path); !allow.empty()) {
                res.status = 405;
                res.set_header("Allow", allow);
                return fmt::format("{} is not allowed on {} (allowed: {})", req.method, req.path, allow);
            }
            return fmt::format("no route {} {} (see /openapi.json)", req.method, req.path);
        }
        if (res.status == 400 && req.method.empty()) return "malformed request";
        if (res.status == 408) return "the request body stopped coming (or took too long)";
        if (res.status == 413)
            return fmt::format("request body over the limit of {} bytes (form-encoded bodies: 8 KiB; send audio as audio/*, "
                               "application/octet-stream or multipart/form-data)", config.max_upload_bytes);
        if (res.status == 414) return "request line too long";
        return message;
    }

    void answer_protocol_error(const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;  // a route's own answer
        const_cast<httplib::Request&>(req).ranges.clear();  // httplib would slice the error body
        cors(req, res);
        // The stream cut the body off: httplib saw a read error (400).
        if (body_over_limit()) res.status = 413;
        else if (body_timed_out()) res.status = 408;
        const std::string message = protocol_error_message(req, res);
        if (res.status == 408 || res.status == 413 || res.status == 400) {
            res.set_header("Connection", "close");
            close_after_answer() = true;
        }
        unrouted[static_cast<std::size_t>(std::clamp(res.status, 0, 599))].fetch_add(1, std::memory_order_relaxed);
        send_json(res, error_body(res.status, redact(message)), res.status);
    }
};

namespace {

void check_serve_config(const ServeConfig& c) {
    if (c.index_source.empty()) throw_usage("no index source: give a directory of index artifacts or s3://bucket/prefix");
    if (c.port < 0 || c.port > 65535) throw_usage("port {} is not in 0 … 65535", c.port);
    if (c.http_threads < 1 || c.query_threads < 1) throw_usage("http and query threads must be at least 1");
    if (!c.web_root.empty() && !fs::exists(c.web_root / "index.html"))
        throw_usage("{} holds no index.html (build the web UI: scripts/build web)", c.web_root.string());
    if (!c.audio_base.empty()) split_s3_uri(c.audio_base);
    if (!c.index_source.starts_with("s3://") && !fs::exists(c.index_source)) throw_usage("index source {} does not exist", c.index_source);
    if (c.max_connections < 1 || c.max_client_connections < 1) throw_usage("connection limits must be at least 1");
    if (!(c.idle_timeout_sec > 0 && c.header_timeout_sec > 0 && c.body_timeout_sec > 0)) throw_usage("timeouts must be positive");
}

}  // namespace

Server::Server(ServeConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {
    check_serve_config(impl_->config);
    impl_->make_connections();
    impl_->build_routes();
    impl_->configure_http();
}

Server::~Server() { stop(); }

void Server::start() {
    Impl& m = *impl_;
    m.port = server::bind_http(m.http, m.config.host, m.config.port);
    // httplib 0.11 listens with a backlog of 5: a burst of new clients overflows it and each dropped SYN
    // waits a second to be retried. Listening again on the bound socket only raises the backlog.
    if (m.listen_socket >= 0) ::listen(m.listen_socket, SOMAXCONN);
    m.connections->start();
    m.listener = server::serve_http(m.http);
    m.watcher = std::thread([&m] { m.watch(); });
    spdlog::info("listening on http://{}:{}", m.config.host, m.port);
}

int Server::port() const { return impl_->port; }
bool Server::reload() { return impl_->reload(); }
void Server::request_reload() noexcept { impl_->reload_flag.store(true); }
bool Server::ready() const { return impl_->current() != nullptr; }
std::string Server::load_error() const { return impl_->last_error(); }
void Server::request_stop() noexcept { impl_->stop_flag.store(true); }

void Server::wait() {
    while (!impl_->stop_flag.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop();
}

void Server::stop() {
    Impl& m = *impl_;
    if (m.stopped.exchange(true)) return;
    m.stop_flag.store(true);
    m.http.stop();
    if (m.listener.joinable()) m.listener.join();
    m.connections->stop();
    if (m.watcher.joinable()) m.watcher.join();
}

nlohmann::json Server::openapi() const { return openapi_document(impl_->routes); }

}  // namespace mess
