// Passage search restricted to a structural role: the query passage at the role's moment of the query track,
// candidates only among windows holding a moment of that role, modulations compared by interval as well.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/search.hpp"
#include "mess/structure.hpp"

namespace mess {

const Structure* SearchIndex::structure_of(const std::string& track_id) const {
    if (!structures) return nullptr;
    const auto it = structures->find(track_id);
    return it == structures->end() ? nullptr : &it->second;
}

std::vector<RoleMoment> role_moments(const Structure& s, Role role) {
    std::vector<RoleMoment> out;
    if (role == Role::modulation) {
        for (const auto& m : s.modulations) out.push_back({m.time, m.interval});
        return out;
    }
    for (double t : role_times(s, role)) out.push_back({t, std::nullopt});
    return out;
}

nlohmann::json role_moment_to_json(Role role, const RoleMoment& m) {
    nlohmann::json j = {{"name", role_name(role)}, {"time", m.time}};
    if (m.interval) j["interval"] = *m.interval;
    return j;
}

namespace {

// Circular distance between two intervals in semitones (0..6).
int interval_distance(int a, int b) {
    const int d = ((a - b) % 12 + 12) % 12;
    return std::min(d, 12 - d);
}

// The moment inside [start, end) (window_roles' rule) nearest the window's centre.
std::optional<RoleMoment> moment_in(const std::vector<RoleMoment>& moments, double start, double end) {
    std::optional<RoleMoment> best;
    const double centre = 0.5 * (start + end);
    for (const auto& m : moments)
        if (m.time >= start && m.time < end && (!best || std::abs(m.time - centre) < std::abs(best->time - centre))) best = m;
    return best;
}

// Per row of a clip index: whether its window holds a moment of the role, and which.
struct RoleRows {
    std::vector<bool> allowed;
    std::vector<RoleMoment> moment;
    std::size_t count = 0;
};

std::shared_ptr<RoleRows> role_rows(const SearchIndex& idx, Role role) {
    auto out = std::make_shared<RoleRows>();
    out->allowed.assign(idx.size(), false);
    out->moment.resize(idx.size());
    std::map<std::string, std::vector<RoleMoment>> by_track;
    for (std::size_t row = 0; row < idx.size(); ++row) {
        const IndexRecord& rec = idx.records[row];
        auto it = by_track.find(rec.track_id);
        if (it == by_track.end()) {
            const Structure* s = idx.structure_of(rec.track_id);
            it = by_track.emplace(rec.track_id, s ? role_moments(*s, role) : std::vector<RoleMoment>{}).first;
        }
        if (const auto m = moment_in(it->second, rec.start_sec, rec.end_sec)) {
            out->allowed[row] = true;
            out->moment[row] = *m;
            ++out->count;
        }
    }
    return out;
}

// The query track's moment: the one nearest `near` when given, else the climax, the strongest cadence, or the
// first boundary or modulation.
RoleMoment pick_moment(const Structure& s, Role role, std::optional<double> near, const std::string& track_id) {
    const std::vector<RoleMoment> ms = role_moments(s, role);
    if (ms.empty()) throw_input("track '{}' has no {} in its structure", track_id, role_name(role));
    if (near)
        return *std::min_element(ms.begin(), ms.end(),
                                 [&](const RoleMoment& a, const RoleMoment& b) { return std::abs(a.time - *near) < std::abs(b.time - *near); });
    if (role == Role::cadence) {
        const auto strongest = std::max_element(s.cadences.begin(), s.cadences.end(),
                                                [](const Cadence& a, const Cadence& b) { return a.strength < b.strength; });
        return ms[static_cast<std::size_t>(strongest - s.cadences.begin())];
    }
    return ms.front();
}

// The track's window holding time t whose centre is nearest it (the nearest centre when none holds it).
std::size_t query_window(const SearchIndex& idx, const std::string& track_id, double t) {
    const auto& rows = idx.rows_of_track(track_id);
    auto cost = [&](std::size_t r) {
        const IndexRecord& c = idx.records[r];
        const bool holds = t >= c.start_sec && t < c.end_sec;
        return (holds ? 0.0 : 1e9) + std::abs(0.5 * (c.start_sec + c.end_sec) - t);
    };
    return *std::min_element(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return cost(a) < cost(b); });
}

// Modulations: cosine − 0.1 per semitone of circular distance between the intervals; best first, k kept.
void rescore_by_interval(std::vector<Hit>& hits, const RoleRows& rows, int interval, std::size_t k) {
    for (auto& h : hits) h.score -= 0.1f * static_cast<float>(interval_distance(interval, rows.moment[h.row].interval.value_or(interval)));
    std::stable_sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.score > b.score; });
    if (hits.size() > k) hits.resize(k);
}

}  // namespace

std::optional<std::pair<std::size_t, RoleMoment>> Searcher::role_query_window(const SearchRequest& r) const {
    if (r.track_id.empty() || !r.clip_id.empty()) return std::nullopt;
    const SearchIndex& idx = *index_;
    const Structure* s = idx.structure_of(r.track_id);
    if (!s) {
        idx.rows_of_track(r.track_id);  // an unknown id is named with the closest known ones
        throw_input("track '{}' has no structure in this index", r.track_id);
    }
    const RoleMoment moment = pick_moment(*s, *r.role, r.start_sec, r.track_id);
    return std::pair{query_window(idx, r.track_id, moment.time), moment};
}

void Searcher::role_search(const SearchRequest& r, PassageQuery& pq, SearchResult& out) const {
    const SearchIndex& idx = *index_;
    const Role role = *r.role;
    if (idx.kind != IndexKind::clip) throw_usage("a search by role ({}) needs a clip index (index build --kind clip)", role_name(role));
    if (!idx.structures || idx.structures->empty())
        throw_usage("this index holds no structure: rebuild it with mess index build, which stores each track's structure");
    out.role = role;
    const std::shared_ptr<RoleRows> rows = role_rows(idx, role);
    pq.options.allowed_rows = std::shared_ptr<const std::vector<bool>>(rows, &rows->allowed);
    if (r.shard_query && r.shard_query->moment) {  // the moment the shard holding the track chose
        out.query_moment = r.shard_query->moment;
        out.query_clip_id = r.shard_query->record.id;
    } else if (const auto window = role_query_window(r)) {
        out.query_moment = window->second;
        pq.clip_id = out.query_clip_id = idx.records[window->first].id;
        pq.track_id.clear();
    }
    const std::optional<int> interval = out.query_moment ? out.query_moment->interval : std::nullopt;
    if (rows->count == 0) return;
    const std::size_t k = pq.options.k;
    if (interval) pq.options.k = rows->count;  // every candidate, then ranked by passage and interval
    if (r.shard_query) out.hits = search_shard_query(idx, *r.shard_query, pq.options, &pq);
    else if (r.audio || !r.vector.empty()) out.hits = search_vector(idx, r.audio ? audio_query(r, !pq.options.layer_weights.empty() || !pq.options.learned_aspects.empty()) : r.vector, pq.options, &pq);
    else out.hits = similar_passages(idx, pq);
    if (interval) rescore_by_interval(out.hits, *rows, *interval, k);
    for (const auto& h : out.hits) out.hit_moments.push_back(rows->moment[h.row]);
}

}  // namespace mess
