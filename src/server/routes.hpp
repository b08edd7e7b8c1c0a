// Internal to the server module: the route table (handlers and their OpenAPI description).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <type_traits>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "internal.hpp"
#include "mess/db.hpp"

namespace mess::server {

struct Param {
    std::string name, in, type, description;  // in: "path" | "query"; type: OpenAPI scalar type
    bool required = false;
    bool slashes = false;  // a path parameter that may hold '/' (work ids: "Composer | Title K. 330/300h")
};

// What a handler sees: the served snapshot (null for routes that need none) and the configuration.
struct Call {
    const httplib::Request& req;
    httplib::Response& res;
    const Snapshot* snap;
    const ServeConfig& config;
    class CatalogPool* catalog = nullptr;  // the catalog's connections when ServeConfig::catalog is set
    std::string path_param(std::size_t i) const { return req.matches[static_cast<int>(i)].str(); }
};

struct Route {
    std::string method, path, summary;  // path in OpenAPI form: /api/tracks/{track_id}
    std::vector<Param> params;
    std::vector<int> statuses;          // documented answers besides 200
    struct Behaviour {
        bool needs_index = true;        // 503 while loading
        bool extra_query = false;       // accepts metadata columns as query parameters
        bool cached = false;            // answers (200, and a handler's own 422) are cached per index version
    } behaviour;                        // e.g. {.cached = true}
    std::string content_type = "application/json";
    std::function<void(Call&)> handle;
    nlohmann::json request_body = nlohmann::json();  // the OpenAPI requestBody of a POST; null: an audio upload
};

// The listening test's judgements in the catalog database, opened on first use and shared by the request
// threads: one connection under a lock (a CatalogDb belongs to one thread at a time). A failed operation
// drops the connection, so the next one reconnects. Errors: HttpError 503 naming the catalog (password
// removed) when it cannot be opened or used.
class JudgementStore {
public:
    explicit JudgementStore(std::string url) : url_(std::move(url)) {}
    std::int64_t add(const db::Judgement& judgement);
    std::vector<db::Judgement> list(const std::string& listener);

private:
    template <class F>
    auto with_db(F&& fn);
    std::mutex mutex_;
    std::string url_;
    std::unique_ptr<db::CatalogDb> db_;
};

// Connections to the catalog database, one per request at a time, kept for the next request.
class CatalogPool {
public:
    // Connects on first use, so a replica starts (and serves everything else) while its catalog is down;
    // the routes that need the catalog answer 503 until it can be reached.
    explicit CatalogPool(std::string url);
    // Runs fn(CatalogDb&) on a connection of its own; a connection that threw is dropped, not reused.
    template <class F>
    auto use(F&& fn) {
        std::unique_ptr<db::CatalogDb> db = take();
        auto give_back = [&] { give(std::move(db)); };
        if constexpr (std::is_void_v<decltype(fn(*db))>) {
            fn(*db);
            give_back();
        } else {
            auto out = fn(*db);
            give_back();
            return out;
        }
    }

private:
    std::unique_ptr<db::CatalogDb> take();
    void give(std::unique_ptr<db::CatalogDb> db);
    std::string url_;
    std::mutex mutex_;
    std::vector<std::unique_ptr<db::CatalogDb>> idle_;
};

// Every route of the API, in registration order; the listening-test routes keep judgements in `judgements`.
std::vector<Route> api_routes(std::shared_ptr<JudgementStore> judgements);
// The OpenAPI 3 document of `routes`.
nlohmann::json openapi_document(const std::vector<Route>& routes);

// The regular expression httplib matches a route's path with: "/api/tracks/{track_id}/similar" →
// "/api/tracks/([^/]+)/similar"; a parameter with `slashes` matches "(.+)".
std::string route_pattern(const Route& route);

// Parameter readers shared by the route files. Errors: HttpError 400 naming the parameter.
std::string text_param(const Call& c, const std::string& name, const std::string& fallback = {});
double number_param(const Call& c, const std::string& name, double fallback, double lo, double hi);
// A served track by id. Errors: HttpError 404 naming `parameter`.
const TrackEntry& need_track(const Call& c, const std::string& id, const std::string& parameter = "track_id");
// Parameter descriptions.
Param path_id(const char* name, const char* what);
Param query(const char* name, const char* type, const char* what);

// The alignment routes (align_routes.cpp): /api/align, /api/works, /api/works/{work_id}/compare.
void add_align_routes(std::vector<Route>& routes);
// The listening-test routes (listen_routes.cpp): /api/listen/next, /api/listen/judgements, /api/listen/export.
void add_listen_routes(std::vector<Route>& routes, std::shared_ptr<JudgementStore> judgements);
// The structure route (structure_routes.cpp): /api/tracks/{track_id}/structure.
void add_structure_routes(std::vector<Route>& routes);
// The `role` parameter of the passage routes (climax | cadence | boundary | modulation), when given.
// Errors: HttpError 400 naming it.
std::optional<Role> role_param(const Call& c);

// JSON helpers shared by handlers.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
const char* status_text(int status);
nlohmann::json error_body(int status, const std::string& message, const std::string& parameter = {});
// CORS: Access-Control-Allow-Origin (and Vary) when the request's Origin is one of `origins` ("*": any).
void allow_origin(const httplib::Request& req, httplib::Response& res, const std::vector<std::string>& origins);

// Binds `http` to host:port (port 0: one the kernel hands out) and returns the port.
// Errors: Error(input) when the address is in use or not one of this machine's.
int bind_http(httplib::Server& http, const std::string& host, int port);
// Serves the bound `http` on a new thread, returned once it accepts (stop() needs it running).
std::thread serve_http(httplib::Server& http);

}  // namespace mess::server
