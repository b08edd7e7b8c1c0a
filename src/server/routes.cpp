// The API's routes: parameters, handlers and their OpenAPI description in one table.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <random>
#include <unistd.h>

#include "mess/search.hpp"
#include "routes.hpp"

namespace mess::server {
namespace fs = std::filesystem;

void send_json(httplib::Response& res, const nlohmann::json& body, int status) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace), "application/json");
}

const char* status_text(int status) {
    switch (status) {
        case 200: return "OK";
        case 201: return "Created";
        case 204: return "No Content";
        case 206: return "Partial Content";
        case 302: return "Found (presigned S3 URL)";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Payload Too Large";
        case 414: return "URI Too Long";
        case 409: return "Conflict (the track's audio is not on this server)";
        case 416: return "Range Not Satisfiable";
        case 422: return "Unprocessable Content (recordings that do not align; no triplet to draw)";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 503: return "Service Unavailable (loading, or the catalog database cannot be reached)";
        default: return "Error";
    }
}

void allow_origin(const httplib::Request& req, httplib::Response& res, const std::vector<std::string>& origins) {
    const std::string origin = req.get_header_value("Origin");
    if (origin.empty()) return;
    for (const auto& allowed : origins)
        if (allowed == "*" || allowed == origin) {
            res.set_header("Access-Control-Allow-Origin", allowed == "*" ? "*" : origin);
            res.set_header("Vary", "Origin");
            return;
        }
}

int bind_http(httplib::Server& http, const std::string& host, int port) {
    const int bound = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
    if (bound <= 0) throw_input("cannot listen on {}:{} (in use, or not an address of this machine)", host, port);
    return bound;
}

std::thread serve_http(httplib::Server& http) {
    std::thread listener([&http] { http.listen_after_bind(); });
    for (int i = 0; i < 500 && !http.is_running(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return listener;
}

nlohmann::json error_body(int status, const std::string& message, const std::string& parameter) {
    nlohmann::json j = {{"error", message}, {"status", status}};
    if (!parameter.empty()) j["parameter"] = parameter;
    return j;
}

// ---- parameters -------------------------------------------------------------------------------

std::string text_param(const Call& c, const std::string& name, const std::string& fallback) {
    return c.req.has_param(name) ? c.req.get_param_value(name) : fallback;
}

double number_param(const Call& c, const std::string& name, double fallback, double lo, double hi) {
    if (!c.req.has_param(name)) return fallback;
    const std::string v = c.req.get_param_value(name);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || end != v.c_str() + v.size() || !std::isfinite(x)) fail(400, fmt::format("{} must be a number (got '{}')", name, v), name);
    if (x < lo || x > hi) fail(400, fmt::format("{} must be in [{}, {}] (got {})", name, lo, hi, v), name);
    return x;
}

const TrackEntry& need_track(const Call& c, const std::string& id, const std::string& parameter) {
    const TrackEntry* t = c.snap->find_track(id);
    if (!t) fail(404, fmt::format("unknown track id '{}'", id), parameter);
    return *t;
}

Param path_id(const char* name, const char* what) { return {name, "path", "string", what, true}; }
Param query(const char* name, const char* type, const char* what) { return {name, "query", type, what, false}; }

std::string route_pattern(const Route& route) {
    std::string out;
    for (std::size_t i = 0; i < route.path.size(); ++i) {
        if (route.path[i] != '{') {
            out += route.path[i];
            continue;
        }
        const std::size_t close = route.path.find('}', i);
        const std::string name = route.path.substr(i + 1, close - i - 1);
        const bool slashes = std::any_of(route.params.begin(), route.params.end(), [&](const Param& p) { return p.in == "path" && p.name == name && p.slashes; });
        out += slashes ? "(.+)" : "([^/]+)";
        i = close;
    }
    return out;
}

namespace {

long int_param(const Call& c, const std::string& name, long fallback, long lo, long hi) {
    const double x = number_param(c, name, static_cast<double>(fallback), static_cast<double>(lo), static_cast<double>(hi));
    if (x != std::floor(x)) fail(400, fmt::format("{} must be a whole number (got {})", name, c.req.get_param_value(name)), name);
    return static_cast<long>(x);
}

bool bool_param(const Call& c, const std::string& name) {
    const std::string v = to_lower(text_param(c, name, "false"));
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    fail(400, fmt::format("{} must be true or false (got '{}')", name, v), name);
}

const LoadedArtifact& need_index(const Call& c, IndexKind kind) {
    const auto& a = kind == IndexKind::track ? c.snap->track : c.snap->clip;
    if (!a)
        fail(404, kind == IndexKind::track ? "this service has no track index (passages: /api/tracks/{track_id}/passages)"
                                           : "this service has no clip index, so no passage search");
    return *a;
}

const Searcher& need_searcher(const Call& c, IndexKind kind) {
    need_index(c, kind);
    return kind == IndexKind::track ? *c.snap->track_search : *c.snap->clip_search;
}

// more, less (aspect names, comma-separated) and text ("like this but slower"): learned directions.
void add_direction_params(const Call& c, const Searcher& searcher, SearchRequest& r) {
    for (const auto& [key, sign] : {std::pair{"more", 1}, std::pair{"less", -1}})
        for (const std::string& a : split(text_param(c, key), ','))
            if (!a.empty() && !r.more_less.emplace(a, sign).second) fail(400, fmt::format("{} is named twice in more/less", a), key);
    r.text = text_param(c, "text");
    if (const std::string rr = text_param(c, "rerank"); !rr.empty()) {
        try {
            r.rerank = RerankParams{parse_reduction(rr), 50, 3};
        } catch (const Error& e) {
            fail(400, e.what(), "rerank");
        }
    }
    if (r.more_less.empty() && r.text.empty()) return;
    try {
        searcher.check_aspects(r);
    } catch (const Error& e) {
        fail(400, e.what(), r.text.empty() ? "more" : "text");
    }
}

// aspect | aspects (learned spaces of the index, else probed layers) and unlike (learned spaces), checked here
// to name the parameter.
void add_aspect_params(const Call& c, const Searcher& searcher, SearchRequest& r) {
    const std::string aspect = text_param(c, "aspect"), aspects = text_param(c, "aspects"), unlike = text_param(c, "unlike");
    add_direction_params(c, searcher, r);
    if (!aspect.empty() && !aspects.empty()) fail(400, "give aspect or aspects, not both", "aspects");
    if (aspect.empty() && aspects.empty() && unlike.empty()) return;
    const char* name = !unlike.empty() && aspect.empty() && aspects.empty() ? "unlike" : aspect.empty() ? "aspects" : "aspect";
    if (searcher.learned_aspects().empty() && (searcher.aspects().empty() || !searcher.index().has_layers()))
        fail(400, "this index has no learned or validated aspects (build it with aspect models, or run mess probe and rebuild)", name);
    try {  // "dynamics:0.7,articulation:0.3" too: a literal '=' inside a query value needs URL-encoding (%3D)
        if (!aspect.empty() || !aspects.empty()) r.aspects = parse_aspect_request(aspect.empty() ? aspects : aspect);
        if (!unlike.empty()) r.unlike = parse_aspect_request(unlike);
        searcher.check_aspects(r);
    } catch (const Error& e) {
        fail(400, e.what(), name);
    }
}

// k, filters, exclusion, aspects and grouping shared by the similarity routes, as a search request.
SearchRequest search_request(const Call& c, IndexKind kind) {
    const Searcher& searcher = need_searcher(c, kind);
    SearchRequest r;
    r.options.k = static_cast<std::size_t>(int_param(c, "k", 10, 1, 200));
    for (std::size_t i = 0; i < c.req.get_param_value_count("filter"); ++i) {
        std::string f = c.req.get_param_value("filter", i);
        if (const auto colon = f.find(':'); f.find('=') == std::string::npos && colon != std::string::npos) f[colon] = '=';  // key:value
        if (f.find('=') == std::string::npos || f.front() == '=')
            fail(400, fmt::format("filter must be key:value or key%3Dvalue (got '{}')", f), "filter");
        r.options.filters.push_back(Filter::parse(f));
    }
    try {
        r.options.exclude_same = parse_same_scope(text_param(c, "exclude_same"));
    } catch (const Error&) {
        fail(400, fmt::format("exclude_same must be track, recording or work (got '{}')", text_param(c, "exclude_same")), "exclude_same");
    }
    r.group_by_track = bool_param(c, "group_by_track");
    if (kind == IndexKind::clip) r.role = role_param(c);
    if (kind == IndexKind::clip) r.context = static_cast<int>(int_param(c, "context", 0, 0, 20));
    r.min_r2 = c.config.min_r2;
    add_aspect_params(c, searcher, r);
    return r;
}

// The one hit form (hits_to_json), with each track's duration for the player.
nlohmann::json hit_json(const SearchResult& result, const Snapshot& s) {
    nlohmann::json out = hits_to_json(result);
    for (auto& h : out)
        if (const TrackEntry* t = s.find_track(h["track_id"].get<std::string>())) h["duration_sec"] = t->duration_sec;
    return out;
}

std::size_t passage_count(const Snapshot& s, const std::string& track_id) {
    try {
        return s.clip ? s.clip->index.rows_of_track(track_id).size() : 0;
    } catch (const Error&) {
        return 0;
    }
}

nlohmann::json track_json(const TrackEntry& t) {
    nlohmann::json j = {{"track_id", t.track_id}, {"dataset_id", t.dataset_id}, {"recording_id", t.recording_id},
                        {"work_id", t.work_id},   {"duration_sec", t.duration_sec}, {"metadata", t.metadata},
                        {"has_audio", t.media != nullptr}};
    return j;
}

// The query part of an answer: the route's own fields, then k, aspects and a role search's query moment.
void complete_query(const Call& c, const SearchRequest& r, std::optional<Role> role, const std::string& clip_id,
                    const std::optional<RoleMoment>& moment, nlohmann::json& query) {
    query["k"] = r.options.k;
    query["aspects"] = text_param(c, "aspects", text_param(c, "aspect"));
    if (role) query["role"] = role_name(*role);
    if (moment) {
        query["clip_id"] = clip_id;
        query["moment"] = role_moment_to_json(*role, *moment);
    }
}

// Searches a router cannot split over shards: they need every candidate's neighbours or passages in one index.
void refuse_split(const SearchRequest& r) {
    if (r.context != 0) fail(400, "context cannot be split over shards: it aligns the query's neighbours with each candidate's", "context");
    if (r.rerank) fail(400, "rerank cannot be split over shards: the candidate tracks come from every shard's passages", "rerank");
}

// shard_query=true (a router's first step): the query as this shard holds it, instead of hits.
void answer_shard_query(Call& c, const Searcher& searcher, const SearchRequest& r, nlohmann::json query) {
    refuse_split(r);
    const ShardQuery q = searcher.shard_query(r);
    complete_query(c, r, r.role, q.record.id, q.moment, query);
    send_json(c.res, {{"query", std::move(query)}, {"shard_query", q.to_json()}});
}

void answer_hits(Call& c, const Searcher& searcher, const SearchRequest& r, nlohmann::json query) {
    if (bool_param(c, "shard_query")) return answer_shard_query(c, searcher, r, std::move(query));
    const SearchResult result = searcher.search(r);
    const IndexKind kind = searcher.index().kind;
    const LoadedArtifact& a = need_index(c, kind);
    complete_query(c, r, result.role, result.query_clip_id, result.query_moment, query);
    send_json(c.res, {{"query", std::move(query)},
                      {"index", {{"kind", to_string(kind)}, {"version_id", a.version_id()}, {"model", a.index.model_name}}},
                      {"layer_weights", result.layer_weights},
                      {"learned_aspects", result.learned_aspects},
                      {"results", hit_json(result, *c.snap)}});
}

// ---- handlers ---------------------------------------------------------------------------------

// A catalog track as /api/tracks shows it: the served index's entry when it has the track (duration,
// audio), else the catalog's row (composer and title as metadata columns, like the index's records).
nlohmann::json catalog_track_json(const db::TrackRow& row, const Snapshot& snap) {
    if (const TrackEntry* t = snap.find_track(row.track_id); t && t->dataset_id == row.dataset_id) return track_json(*t);
    std::map<std::string, std::string> metadata = row.metadata;
    if (!row.composer.empty()) metadata.emplace("composer", row.composer);
    if (!row.title.empty()) metadata.emplace("title", row.title);
    return {{"track_id", row.track_id}, {"dataset_id", row.dataset_id}, {"recording_id", row.recording_id},
            {"work_id", row.work_id}, {"duration_sec", 0.0}, {"metadata", metadata}, {"has_audio", false}};
}

void list_catalog_tracks(Call& c, db::TrackQuery query) {
    db::TrackPage page;
    try {
        page = c.catalog->use([&](db::CatalogDb& db) { return db.list_tracks(query); });
    } catch (const Error& e) {  // the catalog names itself with its password hidden
        if (e.kind() == ErrorKind::usage) fail(400, e.what());
        fail(503, fmt::format("the catalog database that lists the tracks cannot be used: {}", e.what()));
    }
    nlohmann::json tracks = nlohmann::json::array();
    for (const auto& row : page.tracks) tracks.push_back(catalog_track_json(row, *c.snap));
    // An inexact total is a lower bound: a full page may be followed by more.
    const std::int64_t next = query.offset + query.limit;
    const bool more = next < page.total || (!page.total_exact && static_cast<std::int64_t>(page.tracks.size()) == query.limit);
    send_json(c.res, {{"total", page.total}, {"total_exact", page.total_exact}, {"offset", query.offset}, {"limit", query.limit},
                      {"next_offset", more ? nlohmann::json(next) : nlohmann::json()}, {"tracks", std::move(tracks)}});
}

void list_tracks(Call& c) {
    static const std::set<std::string> own = {"q", "dataset", "composer", "offset", "limit"};
    const long offset = int_param(c, "offset", 0, 0, 1L << 40), limit = int_param(c, "limit", 50, 1, 500);
    const std::string q = to_lower(text_param(c, "q")), dataset = text_param(c, "dataset"), composer = to_lower(text_param(c, "composer"));
    std::vector<std::pair<std::string, std::string>> columns;  // exact (case-insensitive) column filters
    for (const auto& [key, value] : c.req.params) {
        if (own.contains(key)) continue;
        if (!c.snap->columns.contains(key)) {
            std::string known = "q, dataset, composer, offset, limit";
            for (const auto& col : c.snap->columns) known += ", " + col;
            fail(400, fmt::format("unknown parameter '{}' (known: {})", key, known), key);
        }
        columns.emplace_back(key, to_lower(value));
    }
    if (c.catalog) return list_catalog_tracks(c, {.q = q, .dataset = dataset, .composer = composer, .columns = columns,
                                                  .offset = offset, .limit = limit});
    nlohmann::json page = nlohmann::json::array();
    std::size_t total = 0;
    for (const TrackEntry& t : c.snap->tracks) {
        if (!dataset.empty() && t.dataset_id != dataset) continue;
        if (!composer.empty()) {
            const auto it = t.metadata.find("composer");
            if (it == t.metadata.end() || to_lower(it->second).find(composer) == std::string::npos) continue;
        }
        if (!q.empty() && t.haystack.find(q) == std::string::npos) continue;
        bool ok = true;
        for (const auto& [key, value] : columns) {
            const auto it = t.metadata.find(key);
            ok = ok && it != t.metadata.end() && to_lower(it->second) == value;
        }
        if (!ok) continue;
        if (total >= static_cast<std::size_t>(offset) && page.size() < static_cast<std::size_t>(limit)) page.push_back(track_json(t));
        ++total;
    }
    const std::size_t next = static_cast<std::size_t>(offset + limit);
    send_json(c.res, {{"total", total}, {"total_exact", true}, {"offset", offset}, {"limit", limit},
                      {"next_offset", next < total ? nlohmann::json(next) : nlohmann::json()},
                      {"tracks", std::move(page)}});
}

void get_track(Call& c) {
    const TrackEntry& t = need_track(c, c.path_param(1));
    nlohmann::json j = track_json(t);
    if (t.media) {
        j["content_type"] = t.media->value("content_type", "");
        j["audio_url"] = "/api/tracks/" + t.track_id + "/audio";
        j["waveform_url"] = "/api/tracks/" + t.track_id + "/waveform";
    }
    if (c.snap->clip) j["passages"] = passage_count(*c.snap, t.track_id);
    send_json(c.res, j);
}

void similar(Call& c) {
    const std::string id = c.path_param(1);
    need_track(c, id);
    SearchRequest r = search_request(c, IndexKind::track);
    r.track_id = id;
    answer_hits(c, *c.snap->track_search, r, {{"track_id", id}});
}

void track_passages(Call& c) {
    const std::string id = c.path_param(1);
    const TrackEntry& t = need_track(c, id);
    SearchRequest r = search_request(c, IndexKind::clip);
    r.track_id = id;
    if (!r.role || c.req.has_param("start")) r.start_sec = number_param(c, "start", 0, 0, std::max(0.0, t.duration_sec));
    if (passage_count(*c.snap, id) == 0) fail(404, fmt::format("track '{}' has no passages in the clip index", id), "track_id");
    answer_hits(c, *c.snap->clip_search, r, {{"track_id", id}, {"start_sec", r.start_sec ? nlohmann::json(*r.start_sec) : nlohmann::json()}});
}

void clip_similar(Call& c) {
    const std::string id = c.path_param(1);
    SearchRequest r = search_request(c, IndexKind::clip);
    try {
        c.snap->clip->index.row_of(id);
    } catch (const Error&) {
        fail(404, fmt::format("unknown clip id '{}'", id), "clip_id");
    }
    r.clip_id = id;
    answer_hits(c, *c.snap->clip_search, r, {{"clip_id", id}});
}

// A file removed when the object dies (an upload handed to the decoder).
class UploadFile {
public:
    explicit UploadFile(const std::string& bytes) {
        static std::atomic<unsigned> counter{0};
        path_ = fs::temp_directory_path() / fmt::format("mess-upload-{}-{}", ::getpid(), counter++);
        write_file_atomic(path_, bytes);
    }
    ~UploadFile() {
        std::error_code ec;
        fs::remove(path_, ec);
    }
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

std::string upload_bytes(const Call& c) {
    std::string bytes = c.req.body;
    if (c.req.is_multipart_form_data()) {
        if (!c.req.has_file("file")) fail(400, "multipart upload needs a field named 'file'", "file");
        bytes = c.req.get_file_value("file").content;
    }
    if (bytes.size() > c.config.max_upload_bytes)
        fail(413, fmt::format("upload of {} bytes is over the limit of {} bytes", bytes.size(), c.config.max_upload_bytes), "file");
    if (bytes.empty()) fail(400, "no audio in the request body (raw bytes, or multipart field 'file')", "file");
    return bytes;
}

void search_audio(Call& c) {
    const std::string kind_text = text_param(c, "kind", c.snap->clip ? "clip" : "track");
    if (kind_text != "clip" && kind_text != "track") fail(400, fmt::format("kind must be clip or track (got '{}')", kind_text), "kind");
    const IndexKind kind = parse_index_kind(kind_text);
    const Searcher& searcher = need_searcher(c, kind);
    SearchRequest r = search_request(c, kind);
    r.start_sec = number_param(c, "start", 0, 0, 1e6);
    const std::string bytes = upload_bytes(c);
    r.encoder = c.snap->encoder();
    r.threads = std::max(1, c.config.query_threads);
    UploadFile file(bytes);
    std::optional<Audio> audio;
    try {
        audio = load_audio(file.path(), r.encoder->info().sampling_rate);
        if (*r.start_sec >= audio->duration_sec())
            fail(400, fmt::format("start {} s is past the end of the upload ({:.2f} s)", *r.start_sec, audio->duration_sec()), "start");
        r.audio = *audio;
        answer_hits(c, searcher, r, {{"upload_bytes", bytes.size()}, {"start_sec", *r.start_sec}});
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) fail(503, e.what());
        std::string why = e.what();  // name the upload, not the server's temporary file
        for (auto p = why.find(file.path().string()); p != std::string::npos; p = why.find(file.path().string()))
            why.replace(p, file.path().string().size(), "upload");
        fail(400, fmt::format("the uploaded audio could not be used: {}", why), "file");
    }
}

// POST /api/shard/search: the hits of a shard query (the body, ShardQuery's JSON) on this shard's index.
void shard_search(Call& c) {
    const std::string kind_text = text_param(c, "kind");
    if (kind_text != "clip" && kind_text != "track") fail(400, fmt::format("kind must be clip or track (got '{}')", kind_text), "kind");
    const IndexKind kind = parse_index_kind(kind_text);
    const Searcher& searcher = need_searcher(c, kind);
    SearchRequest r = search_request(c, kind);
    refuse_split(r);
    try {
        r.shard_query = std::make_shared<const ShardQuery>(ShardQuery::from_json(nlohmann::json::parse(c.req.body)));
    } catch (const nlohmann::json::exception& e) {
        fail(400, fmt::format("the body is not a shard query (JSON): {}", e.what()), "body");
    } catch (const Error& e) {
        fail(400, e.what(), "body");
    }
    answer_hits(c, searcher, r, {{"kind", kind_text}});
}

// The learned aspect spaces of the served indexes: [{"aspect", "indexes", "rung", "validation_accuracy"}].
nlohmann::json learned_aspects_json(const Snapshot& snap) {
    std::map<std::string, nlohmann::json> by_name;
    const std::pair<const Searcher*, const char*> served[] = {{snap.clip_search ? &*snap.clip_search : nullptr, "clip"},
                                                              {snap.track_search ? &*snap.track_search : nullptr, "track"}};
    for (const auto& [searcher, kind] : served) {
        if (!searcher) continue;
        for (const auto& [name, model] : searcher->index().aspect_spaces.models.aspects) {
            auto [it, fresh] = by_name.try_emplace(name, nlohmann::json{{"aspect", name}, {"rung", to_string(model.rung)},
                                                                        {"validation_accuracy", model.info.value("validation_accuracy", nlohmann::json())},
                                                                        {"indexes", nlohmann::json::array()}});
            it->second["indexes"].push_back(kind);
        }
    }
    nlohmann::json out = nlohmann::json::array();
    for (auto& [name, j] : by_name) out.push_back(std::move(j));
    return out;
}

void list_aspects(Call& c) {
    nlohmann::json out = nlohmann::json::array();
    std::map<std::string, nlohmann::json> by_name;
    auto add = [&](const std::vector<ResolvedAspect>& list, const char* kind) {
        for (const auto& a : list) {
            if (a.r2 < c.config.min_r2) continue;
            auto [it, fresh] = by_name.try_emplace(a.name, a.to_json());
            if (fresh) it->second["indexes"] = nlohmann::json::array();
            it->second["indexes"].push_back(kind);
        }
    };
    if (c.snap->clip_search) add(c.snap->clip_search->aspects(), "clip");
    if (c.snap->track_search) add(c.snap->track_search->aspects(), "track");
    for (const Aspect& reg : aspect_registry())
        if (by_name.contains(reg.name)) out.push_back(by_name[reg.name]);
    send_json(c.res, {{"aspects", out}, {"min_r2", c.config.min_r2}, {"learned", learned_aspects_json(*c.snap)}});
}

void list_datasets(Call& c) {
    std::map<std::string, std::size_t> tracks;
    for (const auto& t : c.snap->tracks) ++tracks[t.dataset_id];
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [id, n] : tracks) {
        nlohmann::json d = {{"dataset_id", id}, {"tracks", n}};
        if (c.snap->track) d["model"] = c.snap->track->index.model_name;
        if (c.snap->clip) {
            std::size_t clips = 0;
            for (const auto& r : c.snap->clip->index.records) clips += r.dataset_id == id;
            d["passages"] = clips;
            d["model"] = c.snap->clip->index.model_name;
        }
        out.push_back(std::move(d));
    }
    send_json(c.res, {{"datasets", out}});
}

void list_composers(Call& c) {
    std::map<std::string, std::size_t> count;
    for (const auto& t : c.snap->tracks)
        if (auto it = t.metadata.find("composer"); it != t.metadata.end() && !it->second.empty()) ++count[it->second];
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [name, n] : count) out.push_back({{"composer", name}, {"track_count", n}});
    std::stable_sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a["track_count"] > b["track_count"]; });
    send_json(c.res, {{"composers", out}, {"count", out.size()}});
}

// "bytes=a-b" | "bytes=a-" | "bytes=-n" → [first, last], or nullopt to serve everything (absent, several
// ranges, or not a byte range). Throws 416 when it cannot be satisfied.
std::optional<std::pair<std::uint64_t, std::uint64_t>> byte_range(const std::string& header, std::uint64_t size) {
    if (header.empty() || !header.starts_with("bytes=") || header.find(',') != std::string::npos) return std::nullopt;
    const std::string spec = header.substr(6);
    const auto dash = spec.find('-');
    auto parse = [](const std::string& s, std::uint64_t& out) {
        if (s.empty() || s.find_first_not_of("0123456789") != std::string::npos || s.size() > 18) return false;
        out = std::stoull(s);
        return true;
    };
    std::uint64_t a = 0, b = 0;
    const std::string lo = dash == std::string::npos ? spec : spec.substr(0, dash), hi = dash == std::string::npos ? "" : spec.substr(dash + 1);
    if (dash == std::string::npos) return std::nullopt;
    if (lo.empty()) {  // suffix: the last n bytes
        if (!parse(hi, b)) return std::nullopt;
        if (b == 0 || size == 0) fail(416, fmt::format("range '{}' selects nothing of {} bytes", header, size), "Range");
        return std::pair{size - std::min(b, size), size - 1};
    }
    if (!parse(lo, a) || (!hi.empty() && !parse(hi, b))) return std::nullopt;
    if (!hi.empty() && b < a) return std::nullopt;
    if (a >= size) fail(416, fmt::format("range '{}' starts past the end ({} bytes)", header, size), "Range");
    return std::pair{a, hi.empty() ? size - 1 : std::min(b, size - 1)};
}

void stream_audio(Call& c) {
    const TrackEntry& t = need_track(c, c.path_param(1));
    if (!t.media) fail(404, fmt::format("track '{}' has no audio in this index (built without media)", t.track_id), "track_id");
    const fs::path rel = t.media->value("audio", "");
    if (!c.config.audio_base.empty() && rel.is_relative()) {
        const auto [bucket, prefix] = split_s3_uri(c.config.audio_base);
        const std::string key = (prefix.empty() ? "" : prefix + "/") + rel.generic_string();
        c.res.status = 302;
        c.res.set_header("Location", presign_get_url(S3Config::from_environment(), bucket, key, c.config.presign_expires_sec,
                                                     static_cast<std::int64_t>(std::time(nullptr))));
        c.res.set_header("Cache-Control", "no-store");
        return;
    }
    const fs::path path = rel.is_absolute() ? rel : c.config.data_root / rel;
    std::error_code ec;
    const std::uint64_t size = fs::file_size(path, ec);
    if (ec) fail(404, fmt::format("the audio of track '{}' is not on this server", t.track_id), "track_id");
    const std::string type = t.media->value("content_type", audio_content_type(path));
    std::uint64_t first = 0, last = size ? size - 1 : 0;
    c.res.set_header("Accept-Ranges", "bytes");
    c.res.set_header("Cache-Control", "public, max-age=3600");
    const std::string range = c.req.get_header_value("Range");
    std::optional<std::pair<std::uint64_t, std::uint64_t>> r;
    try {
        r = byte_range(range, size);
    } catch (const HttpError&) {
        c.res.set_header("Content-Range", fmt::format("bytes */{}", size));
        throw;
    }
    if (r) {
        std::tie(first, last) = *r;
        c.res.status = 206;
        c.res.set_header("Content-Range", fmt::format("bytes {}-{}/{}", first, last, size));
    } else {
        c.res.status = 200;
    }
    const std::uint64_t length = size ? last - first + 1 : 0;
    std::shared_ptr<std::FILE> file(std::fopen(path.c_str(), "rb"), [](std::FILE* f) {
        if (f) std::fclose(f);
    });
    if (!file) fail(404, fmt::format("the audio of track '{}' is not readable on this server", t.track_id), "track_id");
    c.res.set_content_provider(static_cast<std::size_t>(length), type, [file, first](std::size_t offset, std::size_t len, httplib::DataSink& sink) {
        char buf[1 << 16];
        if (std::fseek(file.get(), static_cast<long>(first + offset), SEEK_SET) != 0) return false;
        const std::size_t n = std::fread(buf, 1, std::min(len, sizeof buf), file.get());
        if (n == 0) return false;
        sink.write(buf, n);
        return true;
    });
}

void waveform(Call& c) {
    const TrackEntry& t = need_track(c, c.path_param(1));
    if (!t.media) fail(404, fmt::format("track '{}' has no waveform in this index (built without media)", t.track_id), "track_id");
    if (c.req.has_param("per_second") && c.req.has_param("points")) fail(400, "give per_second or points, not both", "points");
    const auto& levels = t.media->at("levels");
    const double duration = t.media->value("duration_sec", 0.0);
    std::vector<int> peaks;
    double per_second = 0;
    if (c.req.has_param("points")) {
        const long points = int_param(c, "points", 1000, 1, 100000);
        const auto& finest = levels.front();
        const auto src = finest.at("peaks").get<std::vector<int>>();
        const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(points), src.size());
        for (std::size_t i = 0; i < n; ++i) {  // max-pool the finest level into n buckets
            const std::size_t lo = i * src.size() / n, hi = std::max(lo + 1, (i + 1) * src.size() / n);
            peaks.push_back(*std::max_element(src.begin() + static_cast<std::ptrdiff_t>(lo), src.begin() + static_cast<std::ptrdiff_t>(hi)));
        }
        per_second = duration > 0 ? static_cast<double>(n) / duration : 0;
    } else {
        const double want = number_param(c, "per_second", 10, 0.01, 1000);
        const nlohmann::json* best = &levels.front();  // the coarsest level at least as fine as asked
        for (const auto& l : levels)
            if (l.at("per_second").get<double>() >= want) best = &l;
        peaks = best->at("peaks").get<std::vector<int>>();
        per_second = best->at("per_second").get<double>();
    }
    nlohmann::json values = nlohmann::json::array();
    for (int p : peaks) values.push_back(p / 1000.0);
    c.res.set_header("Cache-Control", "public, max-age=3600");
    send_json(c.res, {{"track_id", t.track_id}, {"duration_sec", duration}, {"per_second", per_second}, {"peaks", std::move(values)}});
}

// ---- parameter descriptions -------------------------------------------------------------------

// `leading` (the route's own parameters), then k, aspects, filters, exclusion (and grouping for passages).
enum class Results { tracks, passages };

std::vector<Param> similarity_params(std::vector<Param> leading, Results results) {
    std::vector<Param> p = std::move(leading);
    for (Param q : {query("k", "integer", "Results (1…200, default 10)"),
                            query("aspect", "string", "Rank by one validated aspect, e.g. dynamics"),
                            query("aspects", "string", "Weighted aspects: dynamics:0.7,articulation:0.3 (or '=' URL-encoded as %3D); learned aspect spaces of the index rank when it has them"),
                            query("unlike", "string", "Aspects the hits should differ in (learned spaces): tempo or tempo:0.5,dynamics"),
                            query("more", "string", "Only hits with more of these aspects than the query (tempo, dynamics, articulation)"),
                            query("less", "string", "Only hits with less of these aspects than the query"),
                            query("rerank", "string", "Tracks from passages (clip index): min | mean-min | mean-min-sym | best-k | pairs reduction of the passage similarity matrix"),
                            query("text", "string", "Directions in words: like this but slower and more restrained (unknown words: 400)"),
                            query("filter", "string", "key:value (or key%3Dvalue) on record fields or metadata columns (repeatable)"),
                            query("exclude_same", "string", "Drop hits sharing the query's track, recording or work")})
        p.push_back(std::move(q));
    if (results == Results::passages) {
        p.push_back(query("group_by_track", "boolean", "Best passage per track"));
        p.push_back(query("context", "integer", "Score each passage with its neighbours too, 0…20 windows each side (a short alignment "
                                                 "at tempo ratios 0.7…1.4; 3 at the 2.5-s hop = 20 s of audio). Default 0: the window alone"));
        p.push_back(query("role", "string",
                          "Structural role: climax | cadence | boundary | modulation. Only passages holding that role are results; "
                          "a track query takes its passage at the track's moment of that role (the one nearest start when given); "
                          "modulations also rank by their interval"));
    }
    return p;
}

}  // namespace

std::vector<Route> api_routes(std::shared_ptr<JudgementStore> judgements) {
    std::vector<Route> r;
    r.push_back({"GET", "/api/datasets", "Datasets served, with track and passage counts", {}, {503}, {}, "application/json", list_datasets});
    r.push_back({"GET", "/api/composers", "Composers with their track counts", {}, {503}, {}, "application/json", list_composers});
    r.push_back({"GET", "/api/aspects", "Validated aspects with probe R² and confidence", {}, {503}, {}, "application/json", list_aspects});
    r.push_back({"GET", "/api/tracks", "Tracks, paginated; filters by dataset, composer or any metadata column; text search",
                 {query("q", "string", "Text search over id and metadata"), query("dataset", "string", "Dataset id"),
                  query("composer", "string", "Composer (substring, case-insensitive)"), query("offset", "integer", "First row (default 0)"),
                  query("limit", "integer", "Rows (1…500, default 50)")},
                 {400, 503}, {.extra_query = true}, "application/json", list_tracks});
    r.push_back({"GET", "/api/tracks/{track_id}", "One track's metadata", {path_id("track_id", "Track id")}, {404, 503}, {},
                 "application/json", get_track});
    r.push_back({"GET", "/api/tracks/{track_id}/similar", "Tracks similar to a track (track index)",
                 similarity_params({path_id("track_id", "Track id")}, Results::tracks), {400, 404, 503}, {.cached = true}, "application/json", similar});
    r.push_back({"GET", "/api/tracks/{track_id}/passages", "Passages similar to the 5-s passage of a track at a second",
                 similarity_params({path_id("track_id", "Track id"),
                                    query("start", "number", "Second of the query passage (the window starting nearest)")},
                                   Results::passages),
                 {400, 404, 503}, {.cached = true}, "application/json", track_passages});
    r.push_back({"GET", "/api/clips/{clip_id}/similar", "Passages similar to a clip",
                 similarity_params({path_id("clip_id", "Clip id <dataset>:<track>:<segment>")}, Results::passages), {400, 404, 503}, {.cached = true},
                 "application/json", clip_similar});
    r.push_back({"POST", "/api/search/audio", "Search by an uploaded audio excerpt (raw body or multipart field 'file')",
                 similarity_params({query("start", "number", "Second of the upload where the 5-s excerpt starts"),
                                    query("kind", "string", "clip (passages, default) or track")},
                                   Results::passages),
                 {400, 404, 413, 503}, {}, "application/json", search_audio});
    r.push_back({"POST", "/api/shard/search", "For a router (mess route): this shard's hits for a query another shard resolved (shard_query=true)",
                 similarity_params({{"kind", "query", "string", "track or clip: the index searched", true}}, Results::passages), {400, 404, 503}, {},
                 "application/json", shard_search,
                 {{"content", {{"application/json", {{"schema", {{"type", "object"}, {"description", "ShardQuery (mess-shard-query/1)"}}}}}}}}});
    for (Route& route : r)  // the routes a router resolves a query with on the shard that holds it
        if (route.path.find("similar") != std::string::npos || route.path.ends_with("/passages") || route.path == "/api/search/audio")
            route.params.push_back(query("shard_query", "boolean", "For a router (mess route): the query as this shard holds it (mess-shard-query/1), not hits"));
    r.push_back({"GET", "/api/tracks/{track_id}/audio", "The recording; HTTP Range; or a redirect to a presigned S3 URL",
                 {path_id("track_id", "Track id")}, {206, 302, 404, 416, 503}, {}, "audio/*", stream_audio});
    r.push_back({"GET", "/api/tracks/{track_id}/waveform", "Waveform peaks (max |sample| per bucket, 0…1), precomputed at index time",
                 {path_id("track_id", "Track id"), query("per_second", "number", "Peaks per second (levels 50, 10, 2; default 10)"),
                  query("points", "integer", "Exactly this many peaks (max-pooled), instead of per_second")},
                 {400, 404, 503}, {}, "application/json", waveform});
    add_align_routes(r);
    add_listen_routes(r, std::move(judgements));
    add_structure_routes(r);
    return r;
}

nlohmann::json openapi_document(const std::vector<Route>& routes) {
    nlohmann::json paths = nlohmann::json::object();
    for (const Route& route : routes) {
        nlohmann::json params = nlohmann::json::array();
        for (const Param& p : route.params)
            params.push_back({{"name", p.name}, {"in", p.in}, {"required", p.required}, {"description", p.description},
                              {"schema", {{"type", p.type}}}});
        nlohmann::json responses = {{"200", {{"description", "OK"}, {"content", {{route.content_type, nlohmann::json::object()}}}}}};
        for (int s : route.statuses)
            responses[std::to_string(s)] = {{"description", status_text(s)},
                                            {"content", {{"application/json", {{"schema", {{"$ref", "#/components/schemas/Error"}}}}}}}};
        nlohmann::json op = {{"summary", route.summary}, {"parameters", params}, {"responses", responses}};
        if (!route.request_body.is_null())
            op["requestBody"] = route.request_body;
        else if (route.method == "POST")
            op["requestBody"] = {{"content", {{"audio/*", {{"schema", {{"type", "string"}, {"format", "binary"}}}}},
                                              {"multipart/form-data",
                                               {{"schema", {{"type", "object"}, {"properties", {{"file", {{"type", "string"}, {"format", "binary"}}}}}}}}}}}};
        paths[route.path][to_lower(route.method)] = std::move(op);
    }
    return {{"openapi", "3.0.3"},
            {"info", {{"title", "MESS — Music Expressive Similarity Search"}, {"version", "1"}}},
            {"paths", std::move(paths)},
            {"components",
             {{"schemas",
               {{"Error",
                 {{"type", "object"},
                  {"required", {"error", "status"}},
                  {"properties", {{"error", {{"type", "string"}}}, {"status", {{"type", "integer"}}}, {"parameter", {{"type", "string"}}}}}}}}}}}};
}

}  // namespace mess::server
