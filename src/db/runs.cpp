#include <random>

#include <fmt/format.h>

#include "backends.hpp"

namespace mess::db {
namespace {

const char* kRunColumns = "run_id, kind, command_line, parameters, version, started_at, ended_at, status, metrics, outputs, error";

RunRow run_of(const CatalogDb::Row& r) {
    return {r.at(0), r.at(1), r.at(2), r.at(3), r.at(4), r.at(5), r.at(6), r.at(7), r.at(8), r.at(9), r.at(10)};
}

// 20261201T142233Z-extract-3f2a9c: sortable by start, unique across processes and machines.
std::string new_run_id(const std::string& kind, const std::string& started_at) {
    std::string stamp;
    for (char c : started_at.substr(0, 19)) if (c != '-' && c != ':') stamp += c;
    std::random_device rd;
    return fmt::format("{}Z-{}-{:06x}", stamp, kind, rd() & 0xffffff);
}

}  // namespace

std::string CatalogDb::start_run(const RunRow& run) {
    if (run.kind.empty()) throw_usage("run: a kind is required (extract, targets, probe, train, index-build, eval)");
    const std::string started = utc_now();
    for (int attempt = 0;; ++attempt) {
        const std::string id = new_run_id(run.kind, started);
        bool taken = false;
        transaction([&] {
            taken = !exec("SELECT 1 FROM runs WHERE run_id = $1", {id}).empty();
            if (taken) return;
            exec("INSERT INTO runs (run_id, kind, command_line, parameters, version, started_at, status) VALUES"
                 " ($1, $2, $3, $4, $5, $6, 'running')",
                 {id, run.kind, run.command_line, run.parameters.empty() ? "{}" : run.parameters, run.version, started});
        });
        if (!taken) return id;
        if (attempt > 10) throw_internal("run: no free run id after {} tries", attempt);
    }
}

void CatalogDb::finish_run(const std::string& run_id, const std::string& status, const std::string& metrics_json,
                           const std::string& outputs_json, const std::string& error) {
    if (status != "ok" && status != "failed") throw_usage("run {}: status must be ok or failed, got '{}'", run_id, status);
    transaction([&] {
        const auto rows = exec("UPDATE runs SET status = $1, ended_at = $2, metrics = $3, outputs = $4, error = $5"
                               " WHERE run_id = $6 RETURNING run_id",
                               {status, utc_now(), metrics_json.empty() ? "{}" : metrics_json,
                                outputs_json.empty() ? "[]" : outputs_json, error, run_id});
        if (rows.empty()) throw_input("run {}: no such run in catalog {}", run_id, redact_url(url()));
    });
}

std::optional<RunRow> CatalogDb::run(const std::string& run_id) {
    auto rows = exec(fmt::format("SELECT {} FROM runs WHERE run_id = $1", kRunColumns), {run_id});
    if (rows.empty()) {
        rows = exec(fmt::format("SELECT {} FROM runs WHERE run_id LIKE $1 ORDER BY run_id LIMIT 2", kRunColumns),
                    {replace_all(replace_all(run_id, "%", ""), "_", "") + "%"});
        if (rows.size() > 1) throw_usage("run '{}': the prefix names more than one run ({}, {} …)", run_id, rows[0].at(0), rows[1].at(0));
    }
    if (rows.empty()) return std::nullopt;
    return run_of(rows[0]);
}

std::vector<RunRow> CatalogDb::runs(const std::string& kind, std::int64_t limit) {
    std::string sql = fmt::format("SELECT {} FROM runs WHERE ($1 = '' OR kind = $1) ORDER BY started_at DESC, run_id DESC", kRunColumns);
    if (limit > 0) sql += " LIMIT " + num(limit);
    std::vector<RunRow> out;
    for (const Row& r : exec(sql, {kind})) out.push_back(run_of(r));
    return out;
}

}  // namespace mess::db
