#include <algorithm>
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

namespace {

// A statement's parameters, numbered $1… in the order they are added.
struct Params {
    std::vector<std::optional<std::string>> values;
    std::string add(std::string value) {
        values.emplace_back(std::move(value));
        return "$" + std::to_string(values.size());
    }
};

// A composer page merges each matching name's run of the composer index while this costs at most so many
// index entries (names × (offset + limit)) and names (one subquery each: SQLite allows 500 in a compound
// SELECT); beyond, it sorts all its matches.
constexpr std::int64_t kMergeEntries = 50'000;
constexpr std::size_t kMergeNames = 64;

std::vector<TrackRow> rows_of(CatalogDb& db, const std::string& sql, const Params& p) {
    std::vector<TrackRow> out;
    for (const CatalogDb::Row& r : db.exec(sql, p.values)) out.push_back(track_of(r));
    return out;
}

// The page's rows read whole, by the (dataset_id, track_id) keys that `keys_sql` selects.
std::vector<TrackRow> rows_by_keys(CatalogDb& db, const std::string& keys_sql, const Params& p) {
    return rows_of(db, fmt::format("SELECT {} FROM tracks t WHERE (t.dataset_id, t.track_id) IN ({}) ORDER BY t.dataset_id,"
                                   " t.track_id", kTrackColumns, keys_sql), p);
}

// The composer names matching the query's composer filter (within its dataset), with their track counts.
std::vector<std::pair<std::string, std::int64_t>> composer_groups(CatalogDb& db, const TrackQuery& q) {
    Params p;
    std::string where = " WHERE 1 = 1";
    if (!q.dataset.empty()) where += " AND dataset_id = " + p.add(q.dataset);
    if (!q.composer.empty()) where += " AND composer_lc LIKE " + p.add("%" + to_lower(q.composer) + "%");
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const CatalogDb::Row& r : db.exec("SELECT composer_lc, sum(n) FROM track_groups" + where +
                                           " GROUP BY composer_lc HAVING sum(n) > 0 ORDER BY composer_lc", p.values))
        out.emplace_back(r.at(0), std::stoll(r.at(1)));
    return out;
}

// All matches of `where` sorted, then the page: the matches' narrow (dataset, track) keys are sorted (ordering
// by expressions keeps the planner from walking the whole (dataset_id, track_id) index looking for matches)
// and only the page's rows are read whole.
std::vector<TrackRow> sorted_page(CatalogDb& db, const std::string& from, const std::string& where, Params p, const TrackQuery& q) {
    const std::string limit = p.add(num(q.limit)), offset = p.add(num(q.offset));
    return rows_by_keys(db, fmt::format("SELECT t.dataset_id, t.track_id FROM {} WHERE 1 = 1{} ORDER BY (t.dataset_id || ''),"
                                        " (t.track_id || '') LIMIT {} OFFSET {}", from, where, limit, offset), p);
}

// Each composer's tracks in order from the composer index (composer, dataset, track), at most offset + limit
// of each, merged: the page without reading the other matches.
std::vector<TrackRow> merged_page(CatalogDb& db, const TrackQuery& q, const std::vector<std::pair<std::string, std::int64_t>>& names) {
    Params p;
    const std::string dataset = q.dataset.empty() ? "" : " AND t.dataset_id = " + p.add(q.dataset);
    const std::string run = p.add(num(q.offset + q.limit));
    std::string runs;
    for (std::size_t i = 0; i < names.size(); ++i)
        runs += fmt::format("{}SELECT dataset_id, track_id FROM (SELECT t.dataset_id, t.track_id FROM tracks t WHERE t.composer_lc = {}{}"
                            " ORDER BY t.dataset_id, t.track_id LIMIT {}) r{}", i == 0 ? "" : " UNION ALL ", p.add(names[i].first),
                            dataset, run, i);
    const std::string limit = p.add(num(q.limit)), offset = p.add(num(q.offset));
    return rows_by_keys(db, fmt::format("SELECT dataset_id, track_id FROM ({}) m ORDER BY dataset_id, track_id LIMIT {} OFFSET {}",
                                        runs, limit, offset), p);
}

// The words that every track matching the search text holds whole: those between two spaces of the text,
// when made of ASCII letters and digits only (every tokenizer reads such a word alone), quoted: '"w1" "w2"'.
std::string whole_words(const std::string& q) {
    std::vector<std::string> parts;
    for (std::size_t at = 0;;) {
        const std::size_t space = q.find(' ', at);
        parts.push_back(q.substr(at, space == std::string::npos ? std::string::npos : space - at));
        if (space == std::string::npos) break;
        at = space + 1;
    }
    std::string words;
    for (std::size_t i = 1; i + 1 < parts.size(); ++i) {
        const std::string& w = parts[i];
        const bool alnum = !w.empty() && std::all_of(w.begin(), w.end(), [](char c) {
            return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        });
        if (alnum) words += (words.empty() ? "\"" : " \"") + w + "\"";
    }
    return words;
}

// Pages without text or column filters: exact totals from the counts per (dataset, composer).
TrackPage counted_page(CatalogDb& db, const TrackQuery& q) {
    const auto names = composer_groups(db, q);
    TrackPage page;
    for (const auto& [name, n] : names) page.total += n;
    if (q.offset >= page.total) return page;
    Params p;
    const std::string dataset = q.dataset.empty() ? "" : " AND t.dataset_id = " + p.add(q.dataset);
    if (q.composer.empty()) {  // the (dataset_id, track_id) index in order
        const std::string limit = p.add(num(q.limit)), offset = p.add(num(q.offset));
        page.tracks = rows_of(db, fmt::format("SELECT {} FROM tracks t WHERE 1 = 1{} ORDER BY t.dataset_id, t.track_id LIMIT {}"
                                              " OFFSET {}", kTrackColumns, dataset, limit, offset), p);
    } else if (names.size() <= kMergeNames && static_cast<std::int64_t>(names.size()) * (q.offset + q.limit) <= kMergeEntries) {
        page.tracks = merged_page(db, q, names);
    } else {
        std::string in;
        for (const auto& [name, n] : names) in += (in.empty() ? "" : ", ") + p.add(name);
        page.tracks = sorted_page(db, "tracks t", dataset + " AND t.composer_lc IN (" + in + ")", std::move(p), q);
    }
    return page;
}

// Counts the matches of `where` up to `cap` (the scan stops there).
std::int64_t count_to(CatalogDb& db, const std::string& from, const std::string& where, Params p, std::int64_t cap) {
    const std::string limit = p.add(num(cap));
    return std::stoll(db.exec(fmt::format("SELECT count(*) FROM (SELECT 1 FROM {} WHERE 1 = 1{} LIMIT {}) s", from, where, limit),
                              p.values).at(0).at(0));
}

// A filter read two ways: through the text index (`from`, `where`, pages in `order`), or row by row (`plain`,
// over `tracks t` in catalog order), which finds a common word's first matches without walking its index.
struct Filter {
    std::string from, where, order, plain;
    Params p;
};

// The first `dense_rows` tracks of the catalog (by id: catalog order) read row by row, when the catalog holds
// more. When they hold more than count_limit matches, or the page and one match more (and the first tenth of
// them one match at least, so that a rare word reads a tenth of them), the page comes from
// them in catalog order (total: the matches seen there, "more than total" when fewer than count_limit + 1).
std::optional<TrackPage> dense_page(CatalogDb& db, const Filter& f, const TrackQuery& q) {
    const auto ids = db.exec("SELECT (SELECT min(id) FROM tracks), (SELECT max(id) FROM tracks)");
    if (ids.at(0).at(0).empty()) return std::nullopt;  // no tracks
    const std::int64_t end = std::stoll(ids.at(0).at(0)) + q.dense_rows;
    if (std::stoll(ids.at(0).at(1)) < end) return std::nullopt;  // the window is the whole catalog: count it all
    Params p = f.p;
    const std::string tenth = f.plain + " AND t.id < " + p.add(num(end - q.dense_rows + std::max<std::int64_t>(1, q.dense_rows / 10)));
    if (count_to(db, "tracks t", tenth, p, 1) == 0) return std::nullopt;  // a rare word: no need to read them all
    p = f.p;
    const std::string window = f.plain + " AND t.id < " + p.add(num(end));
    const std::int64_t seen = count_to(db, "tracks t", window, p, q.count_limit + 1);
    if (seen <= q.offset + q.limit) return std::nullopt;
    TrackPage page{.total = std::min(seen, q.count_limit + 1) - 1, .total_exact = false};
    const std::string limit = p.add(num(q.limit)), offset = p.add(num(q.offset));
    page.tracks = rows_of(db, fmt::format("SELECT {} FROM tracks t WHERE 1 = 1{} ORDER BY t.id LIMIT {} OFFSET {}", kTrackColumns,
                                          window, limit, offset), p);
    return page;
}

// Pages with text or column filters: the matches are counted up to count_limit + 1. Few: sorted as usual, the
// total exact. Many: the page in the scan's own order (the text index's, or the tracks' ids), which stops after
// offset + limit matches, the total "more than count_limit". Dense (the page within the catalog's first
// dense_rows tracks): see dense_page.
TrackPage bounded_page(CatalogDb& db, Filter f, const TrackQuery& q) {
    if (auto dense = dense_page(db, f, q)) return std::move(*dense);
    TrackPage page;
    page.total = count_to(db, f.from, f.where, f.p, q.count_limit + 1);
    if (page.total <= q.count_limit) {
        if (q.offset < page.total) page.tracks = sorted_page(db, f.from, f.where, std::move(f.p), q);
        return page;
    }
    page.total = q.count_limit;
    page.total_exact = false;
    const std::string limit = f.p.add(num(q.limit)), offset = f.p.add(num(q.offset));
    page.tracks = rows_of(db, fmt::format("SELECT {} FROM {} WHERE 1 = 1{} ORDER BY {} LIMIT {} OFFSET {}", kTrackColumns, f.from,
                                          f.where, f.order, limit, offset), f.p);
    return page;
}

}  // namespace

TrackPage CatalogDb::list_tracks(const TrackQuery& query) {
    if (query.offset < 0 || query.limit < 1 || query.count_limit < 1 || query.dense_rows < 1)
        throw_usage("track list: offset must be ≥ 0, limit ≥ 1, count_limit ≥ 1 and dense_rows ≥ 1");
    if (query.q.empty() && query.columns.empty()) return counted_page(*this, query);
    Filter f{"tracks t", "", "t.id", "", {}};
    if (!query.q.empty()) {
        const std::string q = to_lower(query.q), words = whole_words(q);
        const std::string pattern = f.p.add("%" + q + "%");
        const std::string words_param = words.empty() ? "" : f.p.add(words);
        const TextScan scan = text_scan("t", pattern, words_param);
        // Row by row the pattern alone decides; the words are named (always true) as PostgreSQL types every parameter.
        const std::string named = words.empty() ? "" : " AND length(CAST(" + words_param + " AS TEXT)) > 0";
        f = {scan.from, scan.condition, scan.order, " AND (t.haystack || '') LIKE " + pattern + named, std::move(f.p)};
    }
    std::string where;
    if (!query.dataset.empty()) where += " AND t.dataset_id = " + f.p.add(query.dataset);
    if (!query.composer.empty()) {  // the matching names themselves, so that the planner sees the values
        std::string names;
        for (const auto& [name, n] : composer_groups(*this, query)) names += (names.empty() ? "" : ", ") + f.p.add(name);
        where += names.empty() ? " AND 1 = 0" : " AND t.composer_lc IN (" + names + ")";
    }
    for (const auto& [key, value] : query.columns) {
        const std::string k = f.p.add(key);
        where += " AND lower(" + json_text("t.metadata", k) + ") = " + f.p.add(to_lower(value));
    }
    f.where += where;
    f.plain += where;
    return bounded_page(*this, std::move(f), query);
}

std::vector<std::pair<std::string, std::int64_t>> CatalogDb::composers() {
    std::vector<std::pair<std::string, std::int64_t>> out;
    for (const Row& r : exec("SELECT composer, count(*) FROM tracks WHERE composer <> '' GROUP BY composer ORDER BY composer"))
        out.emplace_back(r.at(0), std::stoll(r.at(1)));
    return out;
}

}  // namespace mess::db
