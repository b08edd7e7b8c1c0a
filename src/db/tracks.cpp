#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "backends.hpp"

namespace mess::db {
namespace {

const char* kTrackColumns = "t.dataset_id, t.track_id, t.recording_id, t.work_id, t.composer, t.title, t.metadata";

TrackRow track_of(const CatalogDb::Row& r) {
    TrackRow t{r.at(0), r.at(1), r.at(2), r.at(3), r.at(4), r.at(5), {}};
    const auto meta = nlohmann::json::parse(r.at(6), nullptr, false);
    if (meta.is_object())
        for (const auto& [k, v] : meta.items()) t.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
    return t;
}

// What text search looks in: ids, composer, title and metadata values, lower case.
std::string haystack_of(const TrackRow& t) {
    std::string h = t.track_id + " " + t.recording_id + " " + t.work_id + " " + t.composer + " " + t.title;
    for (const auto& [k, v] : t.metadata) h += " " + v;
    return to_lower(h);
}

}  // namespace

void CatalogDb::upsert_dataset(const DatasetRow& d) {
    if (d.dataset_id.empty()) throw_usage("dataset: an id is required");
    transaction([&] {
        exec("INSERT INTO datasets (dataset_id, kind, audio_dir, updated_at) VALUES ($1, $2, $3, $4)"
             " ON CONFLICT (dataset_id) DO UPDATE SET kind = excluded.kind, audio_dir = excluded.audio_dir,"
             " updated_at = excluded.updated_at",
             {d.dataset_id, d.kind, d.audio_dir, utc_now()});
    });
}

std::vector<DatasetRow> CatalogDb::datasets() {
    std::vector<DatasetRow> out;
    for (const Row& r : exec("SELECT dataset_id, kind, audio_dir FROM datasets ORDER BY dataset_id"))
        out.push_back({r.at(0), r.at(1), r.at(2)});
    return out;
}

void CatalogDb::upsert_tracks(const std::vector<TrackRow>& tracks) {
    transaction([&] {
        for (const TrackRow& t : tracks) {
            if (t.dataset_id.empty() || t.track_id.empty())
                throw_usage("track: dataset id and track id are required (got '{}', '{}')", t.dataset_id, t.track_id);
            nlohmann::json meta = nlohmann::json::object();
            for (const auto& [k, v] : t.metadata) meta[k] = v;
            exec("INSERT INTO tracks (dataset_id, track_id, recording_id, work_id, composer, title, metadata, composer_lc,"
                 " haystack) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (dataset_id, track_id) DO UPDATE SET"
                 " recording_id = excluded.recording_id, work_id = excluded.work_id, composer = excluded.composer,"
                 " title = excluded.title, metadata = excluded.metadata, composer_lc = excluded.composer_lc,"
                 " haystack = excluded.haystack",
                 {t.dataset_id, t.track_id, t.recording_id, t.work_id, t.composer, t.title, meta.dump(),
                  to_lower(t.composer), haystack_of(t)});
            exec("INSERT INTO works (dataset_id, work_id, composer, title, composer_lc) VALUES ($1, $2, $3, $4, $5)"
                 " ON CONFLICT (dataset_id, work_id) DO UPDATE SET composer = excluded.composer, title = excluded.title,"
                 " composer_lc = excluded.composer_lc",
                 {t.dataset_id, t.work_id, t.composer, t.title, to_lower(t.composer)});
            exec("INSERT INTO composers (composer_lc) VALUES ($1) ON CONFLICT (composer_lc) DO NOTHING", {to_lower(t.composer)});
            exec("INSERT INTO recordings (dataset_id, recording_id, work_id) VALUES ($1, $2, $3)"
                 " ON CONFLICT (dataset_id, recording_id) DO UPDATE SET work_id = excluded.work_id",
                 {t.dataset_id, t.recording_id, t.work_id});
        }
    });
}

std::int64_t CatalogDb::remove_tracks_except(const std::string& dataset_id, const std::vector<std::string>& keep) {
    const std::set<std::string> kept(keep.begin(), keep.end());
    std::int64_t removed = 0;
    transaction([&] {
        for (const Row& r : exec("SELECT track_id FROM tracks WHERE dataset_id = $1", {dataset_id})) {
            if (kept.contains(r.at(0))) continue;
            for (const char* table : {"tracks", "audio_files", "clips", "extractions", "targets"})
                exec(fmt::format("DELETE FROM {} WHERE dataset_id = $1 AND track_id = $2", table), {dataset_id, r.at(0)});
            ++removed;
        }
    });
    return removed;
}

std::optional<TrackRow> CatalogDb::track(const std::string& dataset_id, const std::string& track_id) {
    const auto rows = exec(fmt::format("SELECT {} FROM tracks t WHERE t.dataset_id = $1 AND t.track_id = $2", kTrackColumns),
                           {dataset_id, track_id});
    if (rows.empty()) return std::nullopt;
    return track_of(rows[0]);
}

std::vector<TrackRow> CatalogDb::tracks(const std::string& dataset_id) {
    std::vector<TrackRow> out;
    for (const Row& r : exec(fmt::format("SELECT {} FROM tracks t WHERE t.dataset_id = $1 ORDER BY t.track_id", kTrackColumns),
                             {dataset_id}))
        out.push_back(track_of(r));
    return out;
}

TrackPage CatalogDb::list_tracks(const TrackQuery& query) {
    if (query.offset < 0 || query.limit < 1) throw_usage("track list: offset must be ≥ 0 and limit ≥ 1");
    std::vector<std::optional<std::string>> params;
    std::string where = " WHERE 1 = 1";
    auto param = [&](std::string value) {
        params.emplace_back(std::move(value));
        return "$" + std::to_string(params.size());
    };
    if (!query.dataset.empty()) where += " AND t.dataset_id = " + param(query.dataset);
    if (!query.composer.empty()) {  // the matching names first, so that the planner sees the values themselves
        std::string names;
        for (const Row& r : exec("SELECT composer_lc FROM composers WHERE composer_lc LIKE $1",
                                 {"%" + to_lower(query.composer) + "%"}))
            names += (names.empty() ? "" : ", ") + param(r.at(0));
        where += names.empty() ? " AND 1 = 0" : " AND t.composer_lc IN (" + names + ")";
    }
    if (!query.q.empty()) where += text_match("t", param("%" + to_lower(query.q) + "%"));
    for (const auto& [key, value] : query.columns) {
        const std::string k = param(key);
        where += " AND lower(" + json_text("t.metadata", k) + ") = " + param(to_lower(value));
    }
    TrackPage page;
    const bool unfiltered = query.q.empty() && query.composer.empty() && query.columns.empty();
    const std::string count_sql = unfiltered ? "SELECT coalesce(sum(n), 0) FROM track_counts t" + where
                                             : "SELECT count(*) FROM tracks t" + where;
    page.total = std::stoll(exec(count_sql, params).at(0).at(0));
    // A composer or text filter selects through its own index: the page's ids are sorted from the matches'
    // narrow (dataset, track) rows, which the composer index covers — ordering by expressions keeps the planner from walking the whole
    // (dataset_id, track_id) index looking for matches — and only the page's rows are read whole.
    std::string sql = fmt::format("SELECT {} FROM tracks t{} ORDER BY t.dataset_id, t.track_id LIMIT {} OFFSET {}",
                                  kTrackColumns, where, query.limit, query.offset);
    if (!query.composer.empty() || !query.q.empty())
        sql = fmt::format("SELECT {} FROM tracks t WHERE (t.dataset_id, t.track_id) IN (SELECT t.dataset_id, t.track_id"
                          " FROM tracks t{} ORDER BY (t.dataset_id || ''),"
                          " (t.track_id || '') LIMIT {} OFFSET {}) ORDER BY t.dataset_id, t.track_id",
                          kTrackColumns, where, query.limit, query.offset);
    for (const Row& r : exec(sql, params)) page.tracks.push_back(track_of(r));
    return page;
}

std::vector<std::pair<std::string, std::int64_t>> CatalogDb::composers() {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const Row& r : exec("SELECT composer, count(*) FROM tracks WHERE composer <> '' GROUP BY composer ORDER BY composer"))
        out.emplace_back(r.at(0), std::stoll(r.at(1)));
    return out;
}

}  // namespace mess::db
