// Internal to the server module: the route table (handlers and their OpenAPI description).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <httplib.h>

#include "internal.hpp"

namespace mess::server {

struct Param {
    std::string name, in, type, description;  // in: "path" | "query"; type: OpenAPI scalar type
    bool required = false;
};

// What a handler sees: the served snapshot (null for routes that need none) and the configuration.
struct Call {
    const httplib::Request& req;
    httplib::Response& res;
    const Snapshot* snap;
    const ServeConfig& config;
    std::string path_param(std::size_t i) const { return req.matches[static_cast<int>(i)].str(); }
};

struct Route {
    std::string method, path, summary;  // path in OpenAPI form: /api/tracks/{track_id}
    std::vector<Param> params;
    std::vector<int> statuses;          // documented answers besides 200
    struct Behaviour {
        bool needs_index = true;        // 503 while loading
        bool extra_query = false;       // accepts metadata columns as query parameters
        bool cached = false;            // answers are cached per index version
    } behaviour;                        // e.g. {.cached = true}
    std::string content_type = "application/json";
    std::function<void(Call&)> handle;
};

// Every route of the API, in registration order.
std::vector<Route> api_routes();
// The OpenAPI 3 document of `routes`.
nlohmann::json openapi_document(const std::vector<Route>& routes);

// JSON helpers shared by handlers.
void send_json(httplib::Response& res, const nlohmann::json& body, int status = 200);
const char* status_text(int status);
nlohmann::json error_body(int status, const std::string& message, const std::string& parameter = {});

}  // namespace mess::server
