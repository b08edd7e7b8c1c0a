// mess/server.hpp — the HTTP API and web UI (`mess serve`). The media file it plays from belongs to mess/artifacts.hpp.
//
//   mess::ServeConfig c;  c.index_source = "data/indices";  c.port = 8080;  c.web_root = "web/dist";
//   mess::Server server(c);
//   server.start();                  // binds, serves on background threads; indexes load in the background
//   ... server.port() ...            // the bound port (c.port = 0 picks a free one)
//   server.reload();                 // or SIGHUP / c.reload_interval_sec: swap in a newer version, no request dropped
//   server.stop();
//
// Index source: an artifact directory; a root holding <track_name>/ and <clip_name>/ version directories
// (the newest of each is served); or s3://bucket/prefix, whose latest.json pointers are pulled into
// <data_root>/indices/.serve-cache. A server needs at least one of the two indexes; the track index answers
// track similarity, the clip index passage search.
//
// Routes (JSON unless said; /openapi.json documents every one of them with its parameters):
//   GET  /health /health/live /health/ready            status; ready is 503 while loading
//   GET  /metrics                                      Prometheus text: requests, latency histograms, index
//   GET  /api/datasets  /api/composers  /api/aspects   lists (aspects: validated ones with R², confidence)
//   GET  /api/tracks?q=&dataset=&composer=&<column>=&offset=&limit=     paginated, filtered, text search
//   GET  /api/tracks/{track_id}                         one track's metadata
//   GET  /api/tracks/{track_id}/similar?k=&aspect=|aspects=a=w,..&filter=key=value&exclude_same=
//   GET  /api/tracks/{track_id}/passages?start=SEC&k=&aspects=&group_by_track=&filter=
//   GET  /api/clips/{clip_id}/similar?k=&aspects=&group_by_track=&filter=
//   POST /api/search/audio?start=SEC&k=&kind=clip|track&aspects=   body: audio bytes or multipart field "file"
//   GET  /api/tracks/{track_id}/audio                   the recording; HTTP Range (206/416); or 302 to S3
//   GET  /api/tracks/{track_id}/waveform?per_second=|points=        peaks (max |sample|, 0…1)
//   GET  /api/align?a=TRACK&b=TRACK&resolution=SEC     two performances aligned (mess/align.hpp): summary
//                                                      and the path every SEC s of A (0.02…60, default 0.1)
//   GET  /api/works                                    works with ≥ 2 performances, their tracks
//   GET  /api/works/{work_id}/compare?tracks=T1,T2&ref=&start=&end=&step=&window=&bpm=
//                                                      compare_performances as mess-compare/1, plus per
//                                                      performance track_id, metadata and path
//   GET  /api/listen/next?listener=ID&aspect=&sampler=disagreement|random&geometries=A,B&k=&seed=&draw=
//                                                      a triplet to judge (sample_triplet over the clip
//                                                      index): anchor, a, b passages, question, progress
//   POST /api/listen/judgements                        body {anchor, a, b, choice: a|b, listener, time_ms
//                                                      [, aspect, sampler]}: 201, stored in the catalog
//                                                      database (ServeConfig::catalog; 503 when unreachable)
//   GET  /api/listen/export?listener=                  text/csv: listening_csv
//   POST /api/shard/search?kind=track|clip&k=&…       for a router (mess route): this shard's hits for a shard
//                                                      query (body: mess-shard-query/1, search.hpp ShardQuery);
//                                                      the search routes with shard_query=true answer
//                                                      {"query", "shard_query"}: the query as this shard holds it
//   GET  /, /assets/...                                 the built web UI (web_root)
// Errors: a JSON body {"error": message, "status": code[, "parameter": name]}: 400 for a bad or unknown
// parameter (named) or a malformed request, 404 for unknown ids and routes, 405 (with Allow) for a route
// asked with another method, 408 for headers or a body that stop coming, 413 for an upload over
// max_upload_bytes (from its Content-Length, before it is read, or as soon as a chunked body passes it),
// 414 for a request line over 8 KiB, 416 for an unsatisfiable Range (an invalid Range header is ignored),
// 431 for headers over 32 KiB, 503 while no index is loaded (Retry-After); alignment: 409 for a track
// whose audio is not on this server (object storage, missing file), 422 for recordings that do not align
// (with confidence and reliable, no path) or cannot be used. Messages name no absolute
// server path. Ids are looked up, never joined into paths. CORS: Access-Control-Allow-Origin for origins
// in cors_origins ("*": any).
// Faults: a version that fails to load (corrupt, incomplete) is refused and not tried again; the newest
// loadable one is served instead (the last good one, or an older one at start). /health lists refused
// versions under "refused", /metrics as mess_reload_refused{kind,version}. Slow clients: see the
// connection settings of ServeConfig; /health, /health/* and /metrics have threads of their own.
// Thread safety: every public member may be called from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/catalog.hpp"
#include "mess/db.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// HTTP server
// ---------------------------------------------------------------------------------------------

struct ServeConfig {
    std::string host = "127.0.0.1";
    int port = 8080;                       // 0: any free port (see Server::port)
    std::string index_source;              // directory or s3://bucket/prefix (see the top of this file)
    std::string track_name = "track_index", clip_name = "clip_index";
    std::filesystem::path data_root = "data";  // relative media paths resolve against it
    std::filesystem::path web_root;        // the built web UI; empty: API only
    std::string audio_base;                // "s3://bucket/prefix": audio answers 302 to presigned URLs of <prefix>/<path>
    int presign_expires_sec = 600;
    std::string model;                     // encoder for audio queries; empty: the index's model (dsp, mfcc-chroma, a dir)
    std::vector<std::string> cors_origins; // allowed Origin values; "*" allows any
    std::size_t max_upload_bytes = 16u << 20;
    double reload_interval_sec = 0;        // poll the source for a newer version; 0: only reload() / SIGHUP
    int http_threads = 128;                // request threads (a connection holds one only while a request is read and answered)
    // Connections: those waiting for a request hold no thread. A new one over either limit closes the one
    // that has waited longest for its request.
    std::size_t max_connections = 10000;
    std::size_t max_client_connections = 256;  // of one client address
    std::size_t max_client_requests = 0;       // requests of one address handled at once (others wait); 0: http_threads / 4
    double idle_timeout_sec = 30;              // keep-alive: waiting for the next request
    double header_timeout_sec = 10;            // request line and headers, from their first byte (then 408)
    double body_timeout_sec = 60;              // a whole request body; a body also ends after 5 s without a byte
    int query_threads = 1;                 // threads per audio-query embedding
    std::size_t cache_entries = 8192;      // cached similarity and alignment answers (per index version); 0: off
    // Precomputed neighbour lists of the track index (search.hpp: NeighbourLists), computed at load while
    // the previous version keeps serving: "similar to this track" then reads a list instead of scanning.
    std::size_t neighbour_k = 100;         // list length; 0: off
    std::size_t neighbour_max_rows = 50000;  // larger track indexes are scanned (the lists cost rows² · dim)
    double min_r2 = 0.5;                   // aspects below are not offered
    // The catalog database (mess/db.hpp URL): /api/tracks lists, filters, searches and pages the catalog's
    // tracks with its indexes (replicas may share one PostgreSQL); tracks of the served index keep their
    // duration and audio. Empty: the served index's records, as before.
    // The listening test's judgements are kept there too; empty: sqlite:<data_root>/catalog.sqlite, or
    // MESS_CATALOG when set (db::catalog_url).
    std::string catalog;
};

// The listening test's judgements as CSV: anchor,a,b,choice,aspect (the columns `mess eval triplets`
// reads; aspect empty for overall), then listener,time_ms,sampler,judged_at. GET /api/listen/export and
// `mess listen export` write it.
std::string listening_csv(const std::vector<db::Judgement>& judgements);

class Server {
public:
    // Errors: Error(usage) for an invalid configuration (no source, bad port, threads < 1, web_root without index.html).
    explicit Server(ServeConfig config);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds and starts serving on background threads; the indexes load in the background (load_error()
    // tells why they did not). Errors: Error(input) when the address cannot be bound.
    void start();
    int port() const;
    // Loads the source's newest versions if they differ from those served, then swaps them in; requests
    // in flight finish on the old ones. Returns true when something changed. A version that does not load
    // is refused (not tried again) and the newest loadable one serves instead. Errors: Error(input) when a
    // version was refused by this call (after swapping in what could be loaded) or nothing can be served.
    bool reload();
    // Async-signal-safe: asks the watcher thread to reload (the SIGHUP handler of `mess serve`).
    void request_reload() noexcept;
    bool ready() const;
    std::string load_error() const;
    // Blocks until stop() (from another thread or a signal handler via request_stop()).
    void wait();
    void request_stop() noexcept;   // async-signal-safe
    void stop();
    // The OpenAPI 3 document of the routes.
    nlohmann::json openapi() const;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------------------------------------
// Router over the shards of an index split by track (`mess route`)
// ---------------------------------------------------------------------------------------------
//
//   mess::RouterConfig c;  c.shards = {"http://10.0.0.1:8080", "http://10.0.0.2:8080"};  c.port = 8090;
//   mess::Router router(c);  router.start();  ...  router.stop();
//
// Each shard is a `mess serve` over the indexes of one part of a split (`mess index build --shard i/N`; a
// URL may be nginx in front of that shard's replicas). The router holds no index and no model; it answers
// the search routes of a single server with the single index's answer:
//   GET /api/tracks/{id}/similar, /api/tracks/{id}/passages, /api/clips/{id}/similar: step 1 asks every
//     shard for the query as it holds it (shard_query=true; the shard holding the id answers, the others
//     404); step 2 sends that query (mess-shard-query/1) to every shard in parallel (POST /api/shard/search)
//     and merges their hits into the top k: score descending, equal scores by track id then segment (the
//     single index's row order, as index build sorts its tracks), ranks renumbered.
//   POST /api/search/audio: the upload is embedded once, by one shard in turn (step 1), then step 2.
//   GET /api/tracks/{id}, …/audio (Range passed on), …/waveform, …/structure: the shard holding the track.
//   GET /api/tracks: every shard's list merged in the single server's order (composer, title, id), pages
//     and totals over the whole collection; with shared_catalog the first shard's answer (one catalog).
//   GET /api/datasets, /api/composers: counts summed over the shards; /api/aspects: the first shard's.
//   GET /health/live; /health/ready (200 when every shard is ready); /health (each shard's state).
// The router has no /metrics and no /openapi.json of its own (the shards have them).
// Not answered (501, naming the route): rerank (its candidate tracks come from every shard's passages; 400),
// the alignment, works and listening routes (they need two tracks' audio, which may sit on two shards).
// A shard that does not answer within shard_timeout_sec, or fails (5xx), makes the answer fail: 502 naming
// the shard ({"error", "status", "shard"}); a shard that is loading (503) gives 503 with Retry-After. No
// partial answer is ever given. Shard errors for the request itself (400, 404) are passed through.
// Exactly equal to the single index for exact (Flat) indexes; approximate families are approximate per shard.
// One known difference: in a modulation search two hits whose interval-adjusted scores are exactly equal are
// ordered by their cosine by the single index, by track id and segment by the router.
struct RouterConfig {
    std::string host = "127.0.0.1";
    int port = 8080;                     // 0: any free port (Router::port)
    std::vector<std::string> shards;     // base URLs, http://host:port, one per shard
    double connect_timeout_sec = 2;      // per shard connection
    double shard_timeout_sec = 30;       // per shard answer (read and write)
    int http_threads = 32;
    bool shared_catalog = false;         // the shards list tracks from one catalog database (ServeConfig::catalog)
    std::size_t max_upload_bytes = 16u << 20;
    std::vector<std::string> cors_origins;  // allowed Origin values; "*" allows any
};

class Router {
public:
    // Errors: Error(usage) for no shards, a shard URL that is not http://host[:port], a bad port or timeouts.
    explicit Router(RouterConfig config);
    ~Router();
    Router(const Router&) = delete;
    Router& operator=(const Router&) = delete;
    void start();  // binds and serves on background threads. Errors: Error(input) when the address cannot be bound.
    int port() const;
    void wait();                     // until stop() or request_stop()
    void request_stop() noexcept;    // async-signal-safe
    void stop();

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace mess
