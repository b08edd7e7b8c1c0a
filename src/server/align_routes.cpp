// The alignment routes: two served tracks aligned, the performances of a work compared (mess/align.hpp).
// Both decode the tracks' audio files and align them on the request's worker thread (about 0.1–0.5 s per
// pair of minutes-long recordings); their answers are cached per index version like the searches'.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/align.hpp"
#include "mess/artifacts.hpp"
#include "routes.hpp"

namespace mess::server {
namespace {
namespace fs = std::filesystem;

// Performances per comparison: each is decoded whole at 24 kHz (as `mess compare` does, so that both answer
// alike), about 58 MB per 10 minutes, and aligned in turn.
constexpr std::size_t kMaxPerformances = 8;
constexpr double kMaxPoints = 100000;         // path rows or curve points per performance

double round_ms(double t) { return std::round(t * 1000.0) / 1000.0; }

// The local file of a track's recording: 404 when the index has no media for it, 409 when the file is
// not on this server (its audio is served from object storage through audio_base, or was removed).
fs::path local_audio(const Call& c, const TrackEntry& t, const std::string& parameter) {
    if (!t.media) fail(404, fmt::format("track '{}' has no audio in this index (built without media)", t.track_id), parameter);
    const fs::path rel = t.media->value("audio", "");
    std::error_code ec;
    if (!rel.empty()) {
        const fs::path path = media_audio_path(*t.media, c.config.data_root);
        if (fs::is_regular_file(path, ec)) return path;
    }
    if (!c.config.audio_base.empty() && rel.is_relative())
        fail(409, fmt::format("the audio of track '{}' is in object storage ({}), not on this server: aligning needs the recording here",
                              t.track_id, c.config.audio_base), parameter);
    fail(409, fmt::format("the audio of track '{}' is not on this server", t.track_id), parameter);
}

Audio decode_track(const Call& c, const TrackEntry& t, const std::string& parameter) {
    const fs::path path = local_audio(c, t, parameter);
    try {
        return load_audio(path);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        fail(422, fmt::format("the audio of track '{}' cannot be used: {}", t.track_id, e.what()), parameter);
    }
}

// The path sampled every `step` seconds of A from its first aligned second, and at its last:
// [[time_a, time_b], ...] in milliseconds' precision, monotone in both.
nlohmann::json sampled_path(const Alignment& al, double step) {
    nlohmann::json out = nlohmann::json::array();
    const double first = al.path_sec.front()[0], last = al.path_sec.back()[0];
    const auto n = static_cast<std::int64_t>(std::floor((last - first) / step + 1e-9));
    for (std::int64_t k = 0; k <= n; ++k) {
        const double t = first + static_cast<double>(k) * step;
        out.push_back({round_ms(t), round_ms(al.time_b_at(t))});
    }
    if (first + static_cast<double>(n) * step < last - 5e-4) out.push_back({round_ms(last), round_ms(al.time_b_at(last))});
    return out;
}

nlohmann::json alignment_summary(const std::string& a, const std::string& b, const Alignment& al) {
    return {{"a", a},
            {"b", b},
            {"duration_a", al.duration_a},
            {"duration_b", al.duration_b},
            {"transposition", al.transposition},
            {"mean_tempo_ratio", al.mean_tempo_ratio()},
            {"cost_ratio", al.cost_ratio},
            {"confidence", al.confidence},
            {"reliable", al.reliable()}};
}

const TrackEntry& required_track(const Call& c, const std::string& name) {
    const std::string id = text_param(c, name);
    if (id.empty()) fail(400, fmt::format("{} (a track id) is required", name), name);
    return need_track(c, id, name);
}

void align_pair(Call& c) {
    const TrackEntry& ta = required_track(c, "a");
    const TrackEntry& tb = required_track(c, "b");
    const double resolution = number_param(c, "resolution", 0.1, 0.02, 60);
    if (ta.duration_sec / resolution > kMaxPoints)
        fail(400, fmt::format("resolution {} s gives more than {} path rows over {:.0f} s; choose a coarser one", resolution, kMaxPoints, ta.duration_sec), "resolution");
    const Audio a = decode_track(c, ta, "a"), b = decode_track(c, tb, "b");
    Alignment al;
    try {
        al = align_audio(a, b, {});
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        fail(422, fmt::format("tracks '{}' and '{}' cannot be aligned: {}", ta.track_id, tb.track_id, e.what()));
    }
    nlohmann::json out = alignment_summary(ta.track_id, tb.track_id, al);
    if (!al.reliable()) {  // said, not hidden behind an invented path
        nlohmann::json body = error_body(422, fmt::format("tracks '{}' and '{}' have too little in common to align (confidence {:.2f}): "
                                                          "are they performances of one piece?", ta.track_id, tb.track_id, al.confidence));
        body.update(out);
        send_json(c.res, body, 422);
        return;
    }
    out["resolution"] = resolution;
    out["path"] = sampled_path(al, resolution);
    send_json(c.res, out);
}

// ---- works ----------------------------------------------------------------------------------------

// The tracks of each work, works in catalogue order (composer, title), tracks in catalogue order.
std::vector<std::pair<std::string, std::vector<const TrackEntry*>>> works_of(const Snapshot& s) {
    std::vector<std::pair<std::string, std::vector<const TrackEntry*>>> works;
    std::map<std::string, std::size_t> at;
    for (const TrackEntry& t : s.tracks) {
        if (t.work_id.empty()) continue;
        const auto [it, fresh] = at.try_emplace(t.work_id, works.size());
        if (fresh) works.push_back({t.work_id, {}});
        works[it->second].second.push_back(&t);
    }
    return works;
}

std::string meta(const TrackEntry& t, const char* column) {
    const auto it = t.metadata.find(column);
    return it == t.metadata.end() ? std::string() : it->second;
}

void list_works(Call& c) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& [work, tracks] : works_of(*c.snap)) {
        if (tracks.size() < 2) continue;
        nlohmann::json list = nlohmann::json::array();
        std::size_t with_audio = 0;
        for (const TrackEntry* t : tracks) {
            list.push_back({{"track_id", t->track_id}, {"duration_sec", t->duration_sec}, {"has_audio", t->media != nullptr}, {"metadata", t->metadata}});
            with_audio += t->media != nullptr;
        }
        out.push_back({{"work_id", work}, {"title", meta(*tracks.front(), "title")}, {"composer", meta(*tracks.front(), "composer")},
                       {"performances", tracks.size()}, {"with_audio", with_audio}, {"tracks", std::move(list)}});
    }
    const std::size_t count = out.size();
    send_json(c.res, {{"works", std::move(out)}, {"count", count}});
}

// ---- comparing the performances of a work ---------------------------------------------------------

// The tracks the request names (tracks=a,b,...), each of the work, no repeats; or every track of the
// work with audio. `ref` first.
std::vector<const TrackEntry*> chosen_performances(const Call& c, const std::string& work) {
    std::vector<const TrackEntry*> chosen;
    const std::string list = text_param(c, "tracks");
    for (const std::string& id : list.empty() ? std::vector<std::string>{} : split(list, ',')) {
        if (id.empty()) fail(400, fmt::format("tracks must be comma-separated track ids (got '{}')", list), "tracks");
        const TrackEntry& t = need_track(c, id, "tracks");
        if (t.work_id != work) fail(400, fmt::format("track '{}' is a performance of '{}', not of '{}'", id, t.work_id, work), "tracks");
        if (std::find(chosen.begin(), chosen.end(), &t) != chosen.end()) fail(400, fmt::format("track '{}' is listed twice", id), "tracks");
        chosen.push_back(&t);
    }
    if (list.empty())
        for (const TrackEntry& t : c.snap->tracks)
            if (t.work_id == work && t.media) chosen.push_back(&t);
    if (const std::string ref = text_param(c, "ref"); !ref.empty()) {
        const TrackEntry& r = need_track(c, ref, "ref");
        const auto it = std::find(chosen.begin(), chosen.end(), &r);
        if (it == chosen.end())
            fail(400, fmt::format("ref '{}' is not one of the performances compared (a track of '{}'{})", ref, work, list.empty() ? " with audio" : " in tracks"), "ref");
        std::rotate(chosen.begin(), it, it + 1);
    }
    return chosen;
}

std::vector<const TrackEntry*> performances_of(const Call& c, const std::string& work) {
    if (std::none_of(c.snap->tracks.begin(), c.snap->tracks.end(), [&](const TrackEntry& t) { return t.work_id == work; }))
        fail(404, fmt::format("unknown work id '{}' (see /api/works)", work), "work_id");
    std::vector<const TrackEntry*> chosen = chosen_performances(c, work);
    if (chosen.size() < 2) {
        if (c.req.has_param("tracks")) fail(400, "tracks must name at least two performances", "tracks");
        fail(409, fmt::format("work '{}' has {} performance(s) with audio on this server; a comparison needs two", work, chosen.size()), "work_id");
    }
    if (chosen.size() > kMaxPerformances)
        fail(400, fmt::format("{} performances: choose at most {} with tracks=", chosen.size(), kMaxPerformances), "tracks");
    return chosen;
}

CompareParams compare_params(const Call& c) {
    CompareParams p;
    p.start_sec = number_param(c, "start", 0, 0, 1e6);
    p.end_sec = number_param(c, "end", 0, 0, 1e6);
    if (c.req.has_param("end") && p.end_sec <= p.start_sec) fail(400, fmt::format("end ({} s) must be after start ({} s)", p.end_sec, p.start_sec), "end");
    p.step_sec = number_param(c, "step", 0.1, 0.02, 10);
    p.tempo_window_sec = number_param(c, "window", 3.0, 0.2, 60);
    p.reference_bpm = number_param(c, "bpm", 0, 0, 1000);
    return p;
}

// The passage checked against the reference's duration (an end a rounding past it is its end).
void fit_passage(CompareParams& p, double duration) {
    if (p.start_sec >= duration) fail(400, fmt::format("start {} s is past the end of the reference ({:.2f} s)", p.start_sec, duration), "start");
    if (p.end_sec > duration + 0.05) fail(400, fmt::format("end {} s is past the end of the reference ({:.2f} s)", p.end_sec, duration), "end");
    if (p.end_sec > duration) p.end_sec = duration;
    if (duration / p.step_sec > kMaxPoints)
        fail(400, fmt::format("step {} s gives more than {} points over the reference ({:.0f} s); choose a coarser one", p.step_sec, kMaxPoints, duration), "step");
}

void compare_work(Call& c) {
    const std::string work = c.path_param(1);
    const std::vector<const TrackEntry*> chosen = performances_of(c, work);
    CompareParams params = compare_params(c);
    std::vector<Performance> takes;
    for (const TrackEntry* t : chosen) takes.push_back({t->track_id, decode_track(c, *t, c.req.has_param("tracks") ? "tracks" : "work_id")});
    fit_passage(params, takes.front().audio.duration_sec());
    Comparison cmp;
    try {
        cmp = compare_performances(takes, params);
    } catch (const Error& e) {
        if (e.kind() == ErrorKind::internal) throw;
        fail(e.kind() == ErrorKind::usage ? 400 : 422, fmt::format("the performances of '{}' cannot be compared: {}", work, e.what()));
    }
    nlohmann::json out = comparison_to_json(cmp);
    out["work_id"] = work;
    out["step_sec"] = params.step_sec;
    for (std::size_t k = 0; k < cmp.performances.size(); ++k) {
        out["performances"][k]["track_id"] = chosen[k]->track_id;
        out["performances"][k]["metadata"] = chosen[k]->metadata;
        out["performances"][k]["path"] = sampled_path(cmp.performances[k].alignment, params.step_sec);
    }
    send_json(c.res, out);
}

}  // namespace

void add_align_routes(std::vector<Route>& r) {
    r.push_back({"GET", "/api/align",
                 "The alignment of two served tracks (performances of one piece): for every moment of a, the same moment in b; "
                 "422 with the confidence when they do not align",
                 {{"a", "query", "string", "Track id of A (the path's time axis)", true},
                  {"b", "query", "string", "Track id of B", true},
                  query("resolution", "number", "Path step in seconds of A (0.02…60, default 0.1)")},
                 {400, 404, 409, 422, 503}, {.cached = true}, "application/json", align_pair});
    r.push_back({"GET", "/api/works", "Works with at least two performances served, with their tracks", {}, {503}, {}, "application/json", list_works});
    Param work = path_id("work_id", "Work id (may contain '/'; URL-encode it)");
    work.slashes = true;
    r.push_back({"GET", "/api/works/{work_id}/compare",
                 "Performances of a work compared on the reference's time axis: alignment paths, local tempo and loudness curves, "
                 "who takes longest over a passage (schema mess-compare/1, plus track_id, metadata and path per performance)",
                 {work,
                  query("tracks", "string", "Comma-separated track ids of the work (default: every one with audio here; at most 8)"),
                  query("ref", "string", "The reference track, one of them (default: the first)"),
                  query("start", "number", "Passage start, seconds of the reference (default 0)"),
                  query("end", "number", "Passage end, seconds of the reference (default: its end)"),
                  query("step", "number", "Curve and path step, seconds of the reference (0.02…10, default 0.1)"),
                  query("window", "number", "Window of the local tempo ratio, seconds (0.2…60, default 3)"),
                  query("bpm", "number", "The reference's tempo when known: tempo curves in BPM too")},
                 {400, 404, 409, 422, 503}, {.cached = true}, "application/json", compare_work});
}

}  // namespace mess::server
