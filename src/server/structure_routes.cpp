// The structure route: a served track's sections, keys and modulations, climax and cadences, as stored in
// the index artifacts (structure.json.gz). Role-restricted passage search is the `role` parameter of the
// passage routes (routes.cpp).
#include "mess/artifacts.hpp"
#include "mess/structure.hpp"
#include "routes.hpp"

namespace mess::server {
namespace {

// The track's structure from the clip index, else the track index; nullptr when neither holds it.
const Structure* served_structure(const Snapshot& s, const std::string& track_id) {
    for (const auto* a : {s.clip.get(), s.track.get()})
        if (a)
            if (const Structure* st = a->index.structure_of(track_id)) return st;
    return nullptr;
}

void track_structure(Call& c) {
    const TrackEntry& t = need_track(c, c.path_param(1));
    const Structure* s = served_structure(*c.snap, t.track_id);
    if (!s) fail(404, fmt::format("track '{}' has no structure in this index (built with --no-structure, or before structure was stored)", t.track_id),
                 "track_id");
    nlohmann::json j = structure_to_json(*s);
    j["track_id"] = t.track_id;
    c.res.set_header("Cache-Control", "public, max-age=3600");
    send_json(c.res, j);
}

}  // namespace

std::optional<Role> role_param(const Call& c) {
    if (!c.req.has_param("role")) return std::nullopt;
    try {
        return parse_role(c.req.get_param_value("role"));
    } catch (const Error& e) {
        fail(400, e.what(), "role");
    }
}

void add_structure_routes(std::vector<Route>& r) {
    r.push_back({"GET", "/api/tracks/{track_id}/structure",
                 "A track's structure: boundaries, sections labelled by repetition (A, B, A'), key spans, modulations (time, from, "
                 "to, interval), the climax with its extent, cadences with a strength (mess/structure.hpp's JSON form)",
                 {path_id("track_id", "Track id")}, {404, 503}, {}, "application/json", track_structure});
}

}  // namespace mess::server
