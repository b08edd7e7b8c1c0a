// The same moment in the other performances of a work (search.hpp: same_moment).
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "mess/search.hpp"

namespace mess {
namespace {

// The clip of `track_id` whose window centre is nearest to `t` (clip indexes), or "".
std::string clip_at(const SearchIndex& index, const std::string& track_id, double t) {
    if (index.kind != IndexKind::clip) return {};
    const IndexRecord* best = nullptr;
    for (const auto& r : index.records)
        if (r.track_id == track_id && (!best || std::fabs((r.start_sec + r.end_sec) / 2 - t) < std::fabs((best->start_sec + best->end_sec) / 2 - t)))
            best = &r;
    return best ? best->id : std::string();
}

AlignFeatures features_of(const AudioLocator& locate, const std::string& track_id) {
    const auto path = locate(track_id);
    try {
        return alignment_features(load_audio(path));
    } catch (const Error& e) {
        throw e.with_context(track_id);
    }
}

SameMoment moment_in(const AlignFeatures& query, double at_sec, const std::string& track_id, const AudioLocator& locate,
                     const AlignParams& params) {
    SameMoment m;
    m.track_id = track_id;
    try {
        const Alignment al = align_features(query, features_of(locate, track_id), params);
        m.confidence = al.confidence;
        m.transposition = al.transposition;
        if (!al.reliable()) {
            m.error = fmt::format("no reliable alignment (confidence {:.2f})", al.confidence);
            return m;
        }
        m.time_sec = al.time_b_at(at_sec);
    } catch (const Error& e) {
        m.error = e.what();
    }
    return m;
}

}  // namespace

std::vector<SameMoment> same_moment(const SearchIndex& index, const std::string& track_id, double at_sec, const AudioLocator& locate,
                                    const AlignParams& params) {
    const IndexRecord* query = nullptr;
    for (const auto& r : index.records)
        if (r.track_id == track_id) query = query ? query : &r;
    if (!query) throw_input("unknown track '{}'", track_id);
    if (query->work_id.empty()) throw_usage("track '{}' has no work id: its other performances are unknown", track_id);
    const AlignFeatures q = features_of(locate, track_id);
    if (!(at_sec >= 0) || at_sec > q.duration_sec) throw_input("second {} lies outside track '{}' ({:.2f} s)", at_sec, track_id, q.duration_sec);
    std::vector<SameMoment> out;
    std::set<std::string> seen{track_id};
    for (const auto& r : index.records) {
        if (r.work_id != query->work_id || !seen.insert(r.track_id).second) continue;
        out.push_back(moment_in(q, at_sec, r.track_id, locate, params));
        if (out.back().error.empty()) out.back().clip_id = clip_at(index, r.track_id, out.back().time_sec);
    }
    return out;
}

nlohmann::json same_moment_to_json(const std::vector<SameMoment>& moments) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& m : moments) {
        nlohmann::json j = {{"track_id", m.track_id}, {"time_sec", m.time_sec}, {"confidence", m.confidence}, {"transposition", m.transposition}};
        if (!m.clip_id.empty()) j["clip_id"] = m.clip_id;
        if (!m.error.empty()) j["error"] = m.error;
        out.push_back(std::move(j));
    }
    return out;
}

}  // namespace mess
