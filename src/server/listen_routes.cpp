// The listening-test routes: a triplet of passages to judge (sample_triplet over the clip index), a
// judgement stored in the catalog database (JudgementStore over db::CatalogDb), the judgements exported as
// the triplet CSV `mess eval triplets` reads (listening_csv).
#include <algorithm>
#include <cctype>
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/search.hpp"
#include "routes.hpp"

namespace mess::server {
namespace {

constexpr std::size_t kMaxBodyBytes = 16384;
constexpr std::int64_t kMaxTimeMs = 3600000;

bool listener_ok(const std::string& id) {
    return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '.' || ch == '-';
    });
}

bool printable(const std::string& text, std::size_t max_bytes) {
    return text.size() <= max_bytes && std::none_of(text.begin(), text.end(), [](char ch) { return static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f; });
}

const LoadedArtifact& need_clips(const Call& c) {
    if (!c.snap->clip || !c.snap->clip_search) fail(404, "this service has no clip index: the listening test plays passages");
    return *c.snap->clip;
}

const char* const kListenerRule = "listener must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'";

std::string listener_param(const Call& c, bool required) {
    const std::string id = text_param(c, "listener");
    if (id.empty() && !required) return id;
    if (!listener_ok(id)) fail(400, fmt::format("{} (got '{}')", kListenerRule, id.substr(0, 80)), "listener");
    return id;
}

// An aspect named in a question: "" (overall) or a name of the aspect registry. Errors: HttpError 400 naming `field`.
std::string checked_aspect(const std::string& aspect, const char* field) {
    if (aspect.empty() || aspect == "overall") return {};
    std::string known;
    for (const Aspect& a : aspect_registry()) {
        if (a.name == aspect) return aspect;
        known += (known.empty() ? "" : ", ") + a.name;
    }
    fail(400, fmt::format("unknown aspect '{}' (known: overall, {})", aspect.substr(0, 80), known), field);
}

std::uint64_t whole_param(const Call& c, const std::string& name, double fallback, double hi) {
    const double x = number_param(c, name, fallback, 0, hi);
    if (x != std::floor(x)) fail(400, fmt::format("{} must be a whole number (got {})", name, c.req.get_param_value(name)), name);
    return static_cast<std::uint64_t>(x);
}

SamplerParams sampler_params(const Call& c, const Searcher& searcher, const std::string& aspect) {
    SamplerParams p;
    const bool layered = searcher.index().has_layers();
    const std::string kind = text_param(c, "sampler", layered ? "disagreement" : "random");
    try {
        p.kind = parse_sampler_kind(kind);
    } catch (const Error& e) {
        fail(400, e.what(), "sampler");
    }
    const std::size_t want = p.kind == SamplerKind::disagreement ? 2 : 1;
    const std::string first = aspect.empty() ? "default" : aspect, second = aspect.empty() ? "layer:0" : "default";
    const std::vector<std::string> names = split(text_param(c, "geometries", want == 2 ? first + "," + second : first), ',');
    if (names.size() != want)
        fail(400, fmt::format("the {} sampler takes {} geometr{} (default, layer:N or an aspect; got {})", to_string(p.kind), want,
                              want == 1 ? "y" : "ies", names.size()), "geometries");
    try {
        p.first = parse_geometry(searcher, names[0], c.config.min_r2);
        if (want == 2) p.second = parse_geometry(searcher, names[1], c.config.min_r2);
    } catch (const Error& e) {
        fail(400, e.what(), "geometries");
    }
    p.k = whole_param(c, "k", 10, 1000);
    p.seed = whole_param(c, "seed", 0, 1e15);
    return p;
}

nlohmann::json passage_json(const Call& c, const IndexRecord& r) {
    nlohmann::json j = {{"id", r.id}, {"track_id", r.track_id}, {"start_sec", r.start_sec}, {"end_sec", r.end_sec}, {"metadata", r.metadata}};
    const TrackEntry* t = c.snap->find_track(r.track_id);
    j["audio_url"] = t && t->media ? nlohmann::json("/api/tracks/" + r.track_id + "/audio") : nlohmann::json();
    return j;
}

std::string question_text(const std::string& aspect) {
    if (aspect.empty()) return "Which passage sounds closer to the reference, overall?";
    std::string words = aspect;
    std::replace(words.begin(), words.end(), '_', ' ');
    return fmt::format("Which passage is closer to the reference in its {}?", words);
}

void next_triplet(Call& c, JudgementStore& store) {
    const LoadedArtifact& clips = need_clips(c);
    const std::string listener = listener_param(c, true), aspect = checked_aspect(text_param(c, "aspect"), "aspect");
    const SamplerParams p = sampler_params(c, *c.snap->clip_search, aspect);
    const std::size_t judged = store.list(listener).size();
    const std::uint64_t draw = whole_param(c, "draw", static_cast<double>(judged), 1e15);
    SampledTriplet t;
    try {
        t = sample_triplet(clips.index, p, draw);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        fail(e.kind() == ErrorKind::usage ? 400 : 422, e.what(), e.kind() == ErrorKind::usage ? "k" : "");
    }
    const auto& rec = clips.index.records;
    send_json(c.res, {{"anchor", passage_json(c, rec[t.anchor])},
                      {"a", passage_json(c, rec[t.a])},
                      {"b", passage_json(c, rec[t.b])},
                      {"question", {{"aspect", aspect}, {"text", question_text(aspect)}}},
                      {"sampler", {{"label", sampler_label(p)}, {"seed", p.seed}, {"draw", draw}, {"k", p.k},
                                   {"similarity", {{"first", {t.first_a, t.first_b}}, {"second", {t.second_a, t.second_b}}}}}},
                      {"progress", {{"listener", listener}, {"judged", judged}}}});
}

// The judgement a POST body describes, checked. Errors: HttpError 400 naming the field.
db::Judgement judgement_of(const Call& c) {
    if (c.req.body.size() > kMaxBodyBytes) fail(413, fmt::format("a judgement is at most {} bytes (got {})", kMaxBodyBytes, c.req.body.size()), "body");
    const nlohmann::json body = nlohmann::json::parse(c.req.body, nullptr, false);
    if (!body.is_object()) fail(400, "the body must be a JSON object {anchor, a, b, choice, listener, time_ms[, aspect, sampler]}", "body");
    static const std::vector<std::string> strings = {"anchor", "a", "b", "choice", "aspect", "listener", "sampler"};
    for (const auto& [key, value] : body.items()) {
        const bool text = std::find(strings.begin(), strings.end(), key) != strings.end();
        if (!text && key != "time_ms") fail(400, fmt::format("unknown field '{}' (known: anchor, a, b, choice, aspect, listener, time_ms, sampler)", key), key);
        if (text && !value.is_string()) fail(400, fmt::format("{} must be a string", key), key);
        if (!text && !value.is_number_integer()) fail(400, "time_ms must be a whole number of milliseconds", key);
    }
    for (const char* key : {"anchor", "a", "b", "choice", "listener", "time_ms"})
        if (!body.contains(key)) fail(400, fmt::format("{} is required", key), key);
    auto text = [&](const char* key) { return body.value(key, std::string()); };
    db::Judgement j;
    j.anchor = text("anchor");
    j.a = text("a");
    j.b = text("b");
    j.choice = text("choice");
    j.listener = text("listener");
    j.sampler = text("sampler");
    j.aspect = checked_aspect(text("aspect"), "aspect");
    if (j.choice != "a" && j.choice != "b") fail(400, fmt::format("choice must be 'a' or 'b' (got '{}')", j.choice.substr(0, 80)), "choice");
    if (!listener_ok(j.listener)) fail(400, fmt::format("{} (got '{}')", kListenerRule, j.listener.substr(0, 80)), "listener");
    const std::int64_t ms = body["time_ms"].get<std::int64_t>();
    if (ms < 0 || ms > kMaxTimeMs) fail(400, fmt::format("time_ms must be in [0, {}] (got {})", kMaxTimeMs, ms), "time_ms");
    j.response_ms = static_cast<double>(ms);
    if (!printable(j.sampler, 200)) fail(400, "sampler must be at most 200 printable characters", "sampler");
    if (j.a == j.anchor || j.b == j.anchor) fail(400, "anchor, a and b must be three different passages", "anchor");
    if (j.a == j.b) fail(400, "a and b must be two different passages", "b");
    return j;
}

nlohmann::json judgement_json(const db::Judgement& j) {
    return {{"id", j.id}, {"anchor", j.anchor}, {"a", j.a}, {"b", j.b}, {"choice", j.choice}, {"aspect", j.aspect}, {"listener", j.listener},
            {"time_ms", std::llround(j.response_ms)}, {"sampler", j.sampler}, {"judged_at", j.created_at}};
}

void post_judgement(Call& c, JudgementStore& store) {
    const LoadedArtifact& clips = need_clips(c);
    const db::Judgement j = judgement_of(c);
    for (const auto& [field, id] : {std::pair{"anchor", j.anchor}, std::pair{"a", j.a}, std::pair{"b", j.b}})
        try {
            clips.index.row_of(id);
        } catch (const Error&) {
            fail(404, fmt::format("unknown passage id '{}' in {} (a clip id of the served index)", id.substr(0, 120), field), field);
        }
    const std::int64_t id = store.add(j);
    const std::vector<db::Judgement> mine = store.list(j.listener);
    const auto stored = std::find_if(mine.begin(), mine.end(), [&](const db::Judgement& x) { return x.id == id; });
    send_json(c.res, {{"stored", judgement_json(stored == mine.end() ? j : *stored)}, {"progress", {{"listener", j.listener}, {"judged", mine.size()}}}}, 201);
}

void export_judgements(Call& c, JudgementStore& store) {
    const std::vector<db::Judgement> rows = store.list(listener_param(c, false));
    c.res.set_header("Content-Disposition", "attachment; filename=\"judgements.csv\"");
    c.res.set_header("Cache-Control", "no-store");
    c.res.status = 200;
    c.res.set_content(listening_csv(rows), "text/csv; charset=utf-8");
}

}  // namespace

template <class F>
auto JudgementStore::with_db(F&& fn) {
    std::lock_guard lock(mutex_);
    try {
        if (!db_) db_ = db::CatalogDb::open(url_);
        return fn(*db_);
    } catch (const Error& e) {
        db_.reset();  // reconnect next time
        if (e.kind() == ErrorKind::usage) fail(400, e.what());
        fail(503, fmt::format("the catalog database that keeps the judgements cannot be used: {}", e.what()));
    }
}

std::int64_t JudgementStore::add(const db::Judgement& judgement) {
    return with_db([&](db::CatalogDb& d) { return d.add_judgement(judgement); });
}

std::vector<db::Judgement> JudgementStore::list(const std::string& listener) {
    return with_db([&](db::CatalogDb& d) { return d.judgements({.listener = listener}); });
}

void add_listen_routes(std::vector<Route>& r, std::shared_ptr<JudgementStore> log) {
    const Param listener = query("listener", "string", "Listener id: 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-'");
    Route next{"GET", "/api/listen/next",
               "A triplet to judge: an anchor passage and two candidates (the sampler's draw), the question (overall or an aspect) "
               "and the listener's progress. Every listener gets the same sequence for one seed",
               {{listener.name, "query", "string", listener.description, true},
                query("aspect", "string", "The question: overall (default) or an aspect name"),
                query("sampler", "string", "disagreement (default with per-layer vectors) or random"),
                query("geometries", "string", "Comma-separated: default, layer:N or an aspect (default: default,layer:0; with aspect: ASPECT,default; random: the first)"),
                query("k", "integer", "Candidates per geometry, one passage per track (2…1000, default 10)"),
                query("seed", "integer", "The sequence (default 0)"),
                query("draw", "integer", "The triplet of the sequence (default: the listener's number of judgements)")},
               {400, 404, 422, 503}, {}, "application/json", [log](Call& c) { next_triplet(c, *log); }};
    r.push_back(std::move(next));
    Route post{"POST", "/api/listen/judgements", "Stores a judgement: 201 with it and the listener's count; ids must be passages of the clip index",
               {}, {400, 404, 413, 503}, {}, "application/json", [log](Call& c) { post_judgement(c, *log); }};
    post.request_body = {{"content", {{"application/json", {{"schema", {{"type", "object"},
        {"required", {"anchor", "a", "b", "choice", "listener", "time_ms"}},
        {"properties", {{"anchor", {{"type", "string"}}}, {"a", {{"type", "string"}}}, {"b", {{"type", "string"}}},
                        {"choice", {{"type", "string"}, {"enum", nlohmann::json::array({"a", "b"})}}}, {"aspect", {{"type", "string"}}},
                        {"listener", {{"type", "string"}}}, {"time_ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 3600000}}},
                        {"sampler", {{"type", "string"}}}}}}}}}}}};
    r.push_back(std::move(post));
    r.push_back({"GET", "/api/listen/export",
                 "The judgements as CSV: anchor,a,b,choice,aspect,listener,time_ms,sampler,judged_at (mess eval triplets reads it)",
                 {query("listener", "string", "Only this listener's judgements")}, {400, 503}, {.needs_index = false}, "text/csv",
                 [log](Call& c) { export_judgements(c, *log); }});
}

}  // namespace mess::server

namespace mess {

std::string listening_csv(const std::vector<db::Judgement>& judgements) {
    CsvTable t;
    t.header = {"anchor", "a", "b", "choice", "aspect", "listener", "time_ms", "sampler", "judged_at"};
    for (const db::Judgement& j : judgements)
        t.rows.push_back({j.anchor, j.a, j.b, j.choice, j.aspect, j.listener, std::to_string(std::llround(j.response_ms)), j.sampler, j.created_at});
    return format_csv(t);
}

}  // namespace mess
