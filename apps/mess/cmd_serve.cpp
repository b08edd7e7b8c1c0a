// mess serve: the HTTP API and web UI over index artifacts.
#include <csignal>

#include <cstdlib>
#include <thread>

#include <malloc.h>
#include <sys/resource.h>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/db.hpp"
#include "mess/server.hpp"

namespace mess::cli {
namespace fs = std::filesystem;
namespace {

Server* g_server = nullptr;  // for the signal handlers (which only set atomic flags)

extern "C" void on_reload_signal(int) {
    if (g_server) g_server->request_reload();
}
extern "C" void on_stop_signal(int) {
    if (g_server) g_server->request_stop();
}

struct ServeOptions {
    std::string index, web, cors, audio_base, model, host = "127.0.0.1";
    int port = 8080, http_threads = 128, query_threads = 0;
    double reload_interval = 0, min_r2 = 0.5;
    std::size_t max_upload_mb = 16, cache = 8192, neighbours = 100, neighbours_max_rows = 50000;
    std::size_t max_connections = 10000, max_client_connections = 256, max_client_requests = 0;
    double idle_timeout = 30, header_timeout = 10, body_timeout = 60;
};

// Every connection is a descriptor: raise the soft limit towards the hard one so that max_connections fit.
void raise_descriptor_limit(std::size_t connections) {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
    const rlim_t want = static_cast<rlim_t>(connections) + 256;
    if (r.rlim_cur >= want) return;
    r.rlim_cur = r.rlim_max == RLIM_INFINITY ? want : std::min(want, r.rlim_max);
    if (::setrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur < want)
        spdlog::warn("open files are limited to {}: fewer than --max-connections {} connections fit", static_cast<unsigned long long>(r.rlim_cur),
                     connections);
}

// The built web UI next to the binary's source tree, when there is one.
fs::path default_web_root() {
    for (const fs::path& p : {fs::path("web/dist"), fs::path(MESS_SOURCE_WEB_DIST)})
        if (fs::exists(p / "index.html")) return p;
    return {};
}

}  // namespace

ServeConfig serve_config(const Context& ctx, const std::string& index, const std::string& host, int port) {
    ServeConfig c;
    c.index_source = index.empty() ? (ctx.config.data_root.value / "indices").string() : index;
    c.host = host;
    c.port = port;
    c.data_root = ctx.config.data_root.value;
    c.web_root = default_web_root();
    c.query_threads = ctx.config.workers.value;
    // An explicit catalog (--catalog, MESS_CATALOG) serves the track list; the default one does not.
    if (const auto catalog = db::catalog_setting(ctx.flags, ctx.config); catalog.source != "default (data root)")
        c.catalog = catalog.value;
    return c;
}

// glibc gives threads up to 8 arenas per core, each keeping what it freed: request threads that take
// turns decoding uploads spread that over every arena (bench/bench_soak.sh, 2 cores: RSS 152 → 192 MB in
// 2 minutes of uploads with the default, 96 → 129 MB with 2 arenas). MALLOC_ARENA_MAX still decides.
void bound_allocator_arenas() {
    if (std::getenv("MALLOC_ARENA_MAX")) return;
    ::mallopt(M_ARENA_MAX, static_cast<int>(std::clamp(std::thread::hardware_concurrency() / 2, 2u, 8u)));
}

int run_server(ServeConfig c, const std::function<void(const Server&)>& on_ready) {
    raise_descriptor_limit(c.max_connections);
    bound_allocator_arenas();
    Server server(std::move(c));
    g_server = &server;
    std::signal(SIGHUP, on_reload_signal);
    std::signal(SIGINT, on_stop_signal);
    std::signal(SIGTERM, on_stop_signal);
    server.start();
    if (on_ready) on_ready(server);
    server.wait();
    g_server = nullptr;
    spdlog::info("stopped");
    return 0;
}

void register_serve(CLI::App& app, Context& ctx) {
    auto o = std::make_shared<ServeOptions>();
    auto* cmd = app.add_subcommand("serve",
        "Serves the HTTP API and the web UI over index artifacts: track similarity, passage search, search\n"
        "by an uploaded excerpt, aspects, audio streaming (HTTP Range), waveforms, /metrics, /openapi.json.\n"
        "--index is a directory holding track_index/ and clip_index/ version directories (what mess index\n"
        "build writes; default <data-root>/indices), one artifact directory, or s3://bucket/prefix (latest.json\n"
        "is pulled). SIGHUP, or --reload-interval, swaps in a newer version without dropping requests.\n"
        "Example: mess serve --port 8080   then open http://127.0.0.1:8080/");
    cmd->add_option("--index", o->index, "Index directory or s3://bucket/prefix (default <data-root>/indices)");
    cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", o->port, "Port (0: any free port)")->capture_default_str();
    cmd->add_option("--web", o->web, "Built web UI directory (default web/dist when built)");
    cmd->add_option("--cors", o->cors, "Allowed origins, comma separated ('*': any)");
    cmd->add_option("--audio-base", o->audio_base, "s3://bucket/prefix holding the audio: redirect to presigned URLs");
    cmd->add_option("--model", o->model, "Encoder for audio queries (default: the index's model)");
    cmd->add_option("--reload-interval", o->reload_interval, "Seconds between checks for a newer index version (0: SIGHUP only)");
    cmd->add_option("--http-threads", o->http_threads, "Request threads (a connection holds one only while a request is read and answered)")
        ->capture_default_str();
    cmd->add_option("--max-connections", o->max_connections, "Open connections; a new one over the limit closes the longest-waiting idle one")
        ->capture_default_str();
    cmd->add_option("--max-client-connections", o->max_client_connections, "Open connections of one client address (likewise)")->capture_default_str();
    cmd->add_option("--max-client-requests", o->max_client_requests, "Requests of one client address answered at once; others wait (0: threads / 4)")
        ->capture_default_str();
    cmd->add_option("--idle-timeout", o->idle_timeout, "Seconds a connection may wait for its next request")->capture_default_str();
    cmd->add_option("--header-timeout", o->header_timeout, "Seconds for a request line and headers, from their first byte (then 408)")
        ->capture_default_str();
    cmd->add_option("--body-timeout", o->body_timeout, "Seconds for a whole request body (and 5 s at most without a byte)")->capture_default_str();
    cmd->add_option("--query-threads", o->query_threads, "Threads per audio query (default --workers)");
    cmd->add_option("--max-upload-mb", o->max_upload_mb, "Largest audio upload in MiB")->capture_default_str();
    cmd->add_option("--min-r2", o->min_r2, "Aspects offered need at least this probe R²")->capture_default_str();
    cmd->add_option("--cache", o->cache, "Cached similarity and alignment answers (0: off)")->capture_default_str();
    cmd->add_option("--neighbours", o->neighbours,
                    "Precompute each track's nearest tracks at load (list length; 0: off): similar-track\n"
                    "queries then read a list instead of scanning")->capture_default_str();
    cmd->add_option("--neighbours-max-rows", o->neighbours_max_rows,
                    "Larger track indexes are scanned per query (the lists cost rows² · dim at load)")->capture_default_str();
    cmd->callback([&ctx, o] {
        ctx.run = [&ctx, o] {
            ServeConfig c = serve_config(ctx, o->index, o->host, o->port);
            if (!o->web.empty()) c.web_root = o->web;
            if (!o->cors.empty()) c.cors_origins = split(o->cors, ',');
            c.audio_base = o->audio_base;
            c.model = o->model;
            c.reload_interval_sec = o->reload_interval;
            c.http_threads = o->http_threads;
            c.max_connections = o->max_connections;
            c.max_client_connections = o->max_client_connections;
            c.max_client_requests = o->max_client_requests;
            c.idle_timeout_sec = o->idle_timeout;
            c.header_timeout_sec = o->header_timeout;
            c.body_timeout_sec = o->body_timeout;
            if (o->query_threads > 0) c.query_threads = o->query_threads;
            c.max_upload_bytes = o->max_upload_mb << 20;
            c.cache_entries = o->cache;
            c.neighbour_k = o->neighbours;
            c.neighbour_max_rows = o->neighbours_max_rows;
            c.min_r2 = o->min_r2;
            const std::string host = c.host == "0.0.0.0" ? "127.0.0.1" : c.host;
            return run_server(std::move(c), [host](const Server& s) {
                fmt::print("MESS is serving on http://{}:{}/  (Ctrl-C stops)\n", host, s.port());
                std::fflush(stdout);
            });
        };
    });
}

Router* g_router = nullptr;  // for the stop signal handler
extern "C" void on_router_stop_signal(int) {
    if (g_router) g_router->request_stop();
}

void register_route(CLI::App& app, Context& ctx) {
    auto c = std::make_shared<RouterConfig>();
    auto shards = std::make_shared<std::string>();
    auto cors = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand("route",
        "Serves one index split by track over several shards: each shard is a mess serve over the indexes of\n"
        "one part (mess index build --shard i/N), or nginx in front of that part's replicas. Searches go to every\n"
        "shard in parallel and the top k is merged exactly (the single index's answer); track routes go to the\n"
        "shard holding the track. A shard that does not answer fails the request with 502 naming it.\n"
        "Example: mess route --shards http://127.0.0.1:8081,http://127.0.0.1:8082 --port 8080");
    cmd->add_option("--shards", *shards, "Shard base URLs, comma separated (http://host:port)")->required();
    cmd->add_option("--host", c->host, "Address to listen on")->capture_default_str();
    cmd->add_option("--port", c->port, "Port (0: any free port)")->capture_default_str();
    cmd->add_option("--shard-timeout", c->shard_timeout_sec, "Seconds a shard may take to answer (then 502)")->capture_default_str();
    cmd->add_option("--connect-timeout", c->connect_timeout_sec, "Seconds to connect to a shard (then 502)")->capture_default_str();
    cmd->add_option("--http-threads", c->http_threads, "Request threads")->capture_default_str();
    auto upload_mb = std::make_shared<std::size_t>(c->max_upload_bytes >> 20);
    cmd->add_option("--max-upload-mb", *upload_mb, "Largest audio upload in MiB (413 above)")->capture_default_str();
    cmd->add_flag("--shared-catalog", c->shared_catalog, "The shards list tracks from one catalog database: /api/tracks from the first");
    cmd->add_option("--cors", *cors, "Allowed origins, comma separated ('*': any)");
    cmd->callback([&ctx, c, shards, cors, upload_mb] {
        ctx.run = [c, shards, cors, upload_mb] {
            c->shards = split(*shards, ',');
            c->max_upload_bytes = *upload_mb << 20;
            if (!cors->empty()) c->cors_origins = split(*cors, ',');
            Router router(*c);
            g_router = &router;
            std::signal(SIGINT, on_router_stop_signal);
            std::signal(SIGTERM, on_router_stop_signal);
            router.start();
            fmt::print("MESS is routing on http://{}:{}/ over {} shards  (Ctrl-C stops)\n", c->host == "0.0.0.0" ? "127.0.0.1" : c->host,
                       router.port(), c->shards.size());
            std::fflush(stdout);
            router.wait();
            g_router = nullptr;
            return 0;
        };
    });
}

}  // namespace mess::cli
