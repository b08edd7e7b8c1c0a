// The state of each shard of a sharded extraction (table extraction_shards, migration 6).
#include <fmt/format.h>

#include "backends.hpp"

namespace mess::db {
namespace {

const char* kShardColumns = "dataset_id, model, precision, shard_index, shard_count, status, run_id, attempts, tracks,"
                            " processed, cached, failed, locked, windows, elapsed_s, error, started_at, updated_at";

ShardRow shard_of(const CatalogDb::Row& r) {
    return {.dataset_id = r.at(0), .model = r.at(1), .precision = r.at(2), .index = std::stoi(r.at(3)),
            .count = std::stoi(r.at(4)), .status = r.at(5), .run_id = r.at(6), .attempts = std::stoi(r.at(7)),
            .tracks = std::stoll(r.at(8)), .processed = std::stoll(r.at(9)), .cached = std::stoll(r.at(10)),
            .failed = std::stoll(r.at(11)), .locked = std::stoll(r.at(12)), .windows = std::stoll(r.at(13)),
            .elapsed_s = std::stod(r.at(14)), .error = r.at(15), .started_at = r.at(16), .updated_at = r.at(17)};
}

void check_shard(const ShardRow& s) {
    if (s.count < 1 || s.index < 0 || s.index >= s.count)
        throw_usage("shard {}/{} of {}: the index must be in 0…count-1", s.index, s.count, s.dataset_id);
    if (s.status != "running" && s.status != "done" && s.status != "failed")
        throw_usage("shard {}/{} of {}: unknown status '{}' (running|done|failed)", s.index, s.count, s.dataset_id, s.status);
    if (s.run_id.empty()) throw_usage("shard {}/{} of {}: a run id is required", s.index, s.count, s.dataset_id);
}

std::vector<std::optional<std::string>> shard_key(const ShardRow& s) {
    return {s.dataset_id, s.model, s.precision, num(static_cast<std::int64_t>(s.count)), num(static_cast<std::int64_t>(s.index))};
}

const char* kShardKey = "dataset_id = $1 AND model = $2 AND precision = $3 AND shard_count = $4 AND shard_index = $5";

}  // namespace

std::string CatalogDb::start_shard(const ShardRow& s) {
    check_shard(s);
    std::string previous;
    transaction([&] {
        auto params = shard_key(s);
        const auto rows = exec(fmt::format("SELECT status, run_id FROM extraction_shards WHERE {}", kShardKey), params);
        previous = !rows.empty() && rows[0].at(0) == "running" && rows[0].at(1) != s.run_id ? rows[0].at(1) : "";
        const std::string now = utc_now();
        params.insert(params.end(), {s.run_id, num(s.tracks), now});
        exec("INSERT INTO extraction_shards (dataset_id, model, precision, shard_count, shard_index, status, run_id, attempts,"
             " tracks, started_at, updated_at) VALUES ($1, $2, $3, $4, $5, 'running', $6, 1, $7, $8, $8)"
             " ON CONFLICT (dataset_id, model, precision, shard_count, shard_index) DO UPDATE SET status = 'running',"
             " run_id = excluded.run_id, attempts = extraction_shards.attempts + 1, tracks = excluded.tracks, processed = 0,"
             " cached = 0, failed = 0, locked = 0, windows = 0, elapsed_s = 0, error = '', started_at = excluded.started_at,"
             " updated_at = excluded.updated_at",
             params);
    });
    return previous;
}

bool CatalogDb::finish_shard(const ShardRow& s) {
    check_shard(s);
    bool updated = false;
    transaction([&] {
        auto params = shard_key(s);
        params.insert(params.end(), {s.run_id, s.status, num(s.tracks), num(s.processed), num(s.cached), num(s.failed),
                                     num(s.locked), num(s.windows), num(s.elapsed_s), s.error, utc_now()});
        updated = !exec(fmt::format("UPDATE extraction_shards SET status = $7, tracks = $8, processed = $9, cached = $10,"
                                    " failed = $11, locked = $12, windows = $13, elapsed_s = $14, error = $15, updated_at = $16"
                                    " WHERE {} AND run_id = $6 RETURNING run_id", kShardKey),
                        params).empty();
    });
    return updated;
}

std::vector<ShardRow> CatalogDb::shards(const std::string& dataset_id, const std::string& model, int count) {
    std::vector<std::optional<std::string>> params = {dataset_id, model};
    if (count > 0) params.push_back(num(static_cast<std::int64_t>(count)));
    std::vector<ShardRow> out;
    for (const Row& r : exec(fmt::format("SELECT {} FROM extraction_shards WHERE dataset_id = $1 AND ($2 = '' OR model = $2){}"
                                         " ORDER BY model, precision, shard_count, shard_index",
                                         kShardColumns, count > 0 ? " AND shard_count = $3" : ""),
                             params))
        out.push_back(shard_of(r));
    return out;
}

}  // namespace mess::db
