// mess runs list|show|compare|shards: the run registry of the catalog, and the shards of sharded extractions.
#include <map>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"

namespace mess::cli {
namespace {

nlohmann::json parsed(const std::string& text) {
    auto j = nlohmann::json::parse(text, nullptr, false);
    return j.is_discarded() ? nlohmann::json(text) : j;
}

nlohmann::json run_json(const db::RunRow& r) {
    return {{"run_id", r.run_id}, {"kind", r.kind}, {"command_line", r.command_line}, {"parameters", parsed(r.parameters)},
            {"version", r.version}, {"started_at", r.started_at}, {"ended_at", r.ended_at}, {"status", r.status},
            {"metrics", parsed(r.metrics)}, {"outputs", parsed(r.outputs)}, {"error", r.error}};
}

db::RunRow need_run(db::CatalogDb& catalog, const std::string& id) {
    auto r = catalog.run(id);
    if (!r) throw_input("run '{}': not in catalog {} (mess runs list)", id, db::redact_url(catalog.url()));
    return *r;
}

int list_runs(const Context& ctx, const std::string& kind, std::int64_t limit, bool json) {
    auto catalog = open_catalog(ctx);
    const auto runs = catalog->runs(kind, limit);
    if (json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& r : runs) j.push_back(run_json(r));
        print_json(j);
        return 0;
    }
    for (const auto& r : runs)
        fmt::print("{:<40} {:<11} {:<8} {:<24} {}\n", r.run_id, r.kind, r.status, r.started_at, r.command_line);
    return 0;
}

int show_run(const Context& ctx, const std::string& id, bool json) {
    auto catalog = open_catalog(ctx);
    const nlohmann::json j = run_json(need_run(*catalog, id));
    if (json) print_json(j);
    else for (const auto& [k, v] : j.items()) fmt::print("{:<13} {}\n", k, v.is_string() ? v.get<std::string>() : v.dump());
    return 0;
}

// Every parameter and metric of the runs side by side, flattened to dotted keys; "differs" marks keys
// whose values are not all equal.
int compare_runs(const Context& ctx, const std::vector<std::string>& ids, bool json) {
    if (ids.size() < 2) throw_usage("runs compare: give two or more run ids");
    auto catalog = open_catalog(ctx);
    std::vector<nlohmann::json> flat;
    std::set<std::string> keys;
    for (const auto& id : ids) {
        const db::RunRow r = need_run(*catalog, id);
        nlohmann::json f = nlohmann::json{{"parameters", parsed(r.parameters)}, {"metrics", parsed(r.metrics)},
                                          {"status", r.status}, {"version", r.version}}.flatten();
        f["/run_id"] = r.run_id;
        for (const auto& [k, v] : f.items()) keys.insert(k);
        flat.push_back(std::move(f));
    }
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& k : keys) {
        nlohmann::json values = nlohmann::json::array();
        for (const auto& f : flat) values.push_back(f.contains(k) ? f[k] : nlohmann::json());
        bool differs = false;
        for (const auto& v : values) differs = differs || v != values[0];
        rows.push_back({{"key", k.substr(1)}, {"values", values}, {"differs", differs}});
    }
    if (json) {
        print_json(rows);
        return 0;
    }
    for (const auto& row : rows) {
        std::string line = fmt::format("{} {:<40}", row["differs"].get<bool>() ? "*" : " ", row["key"].get<std::string>());
        for (const auto& v : row["values"]) line += " " + (v.is_string() ? v.get<std::string>() : v.dump());
        fmt::print("{}\n", line);
    }
    return 0;
}

struct ShardQuery {
    std::string dataset, dataset_id, audio_dir, model;
    int count = 0;
    bool check = false;
};

nlohmann::json shard_json(const db::ShardRow& s) {
    return {{"shard", fmt::format("{}/{}", s.index, s.count)}, {"index", s.index}, {"count", s.count}, {"model", s.model},
            {"precision", s.precision}, {"status", s.status}, {"run_id", s.run_id}, {"attempts", s.attempts},
            {"tracks", s.tracks}, {"processed", s.processed}, {"cached", s.cached}, {"failed", s.failed},
            {"locked", s.locked}, {"windows", s.windows}, {"elapsed_s", s.elapsed_s}, {"error", s.error},
            {"started_at", s.started_at}, {"updated_at", s.updated_at}};
}

// What keeps shard i of `count` from being complete ("" when one of its rows is done).
std::string shard_problem(const std::vector<db::ShardRow>& rows, int index, int count) {
    const db::ShardRow* last = nullptr;
    for (const auto& s : rows) {
        if (s.index != index || s.count != count) continue;
        if (s.status == "done") return "";
        last = &s;
    }
    if (!last) return fmt::format("shard {}/{} missing (no run recorded)", index, count);
    if (last->status == "running")
        return fmt::format("shard {}/{} running since {} (run {}, attempt {}: still running, or killed before it recorded "
                           "its end)", index, count, last->started_at, last->run_id, last->attempts);
    return fmt::format("shard {}/{} failed (run {}, attempt {}: {})", index, count, last->run_id, last->attempts, last->error);
}

// The shards of the dataset's sharded extractions and its tracks' extraction states; --check: every shard
// 0…N-1 of --count N done, else Error(input) naming the others (what the merge job runs first).
int list_shards(const Context& ctx, const ShardQuery& q, bool json) {
    const std::string dataset = !q.dataset.empty() ? q.dataset : q.dataset_id;
    if (dataset.empty()) throw_usage("runs shards: give --dataset NAME or --dataset-id NAME");
    if (q.check && (q.count < 1 || q.model.empty())) throw_usage("runs shards --check: give --count N and --model");
    auto catalog = open_catalog(ctx);
    const auto rows = catalog->shards(dataset, q.model, q.count);
    std::map<std::string, std::int64_t> states;  // the tracks' extraction states
    for (const auto& e : catalog->extractions(dataset, q.model)) states[e.status]++;
    std::vector<std::string> problems;
    for (int i = 0; i < q.count; ++i)
        if (auto p = shard_problem(rows, i, q.count); !p.empty()) problems.push_back(std::move(p));
    if (json) {
        nlohmann::json j = {{"dataset", dataset}, {"model", q.model}, {"count", q.count}, {"shards", nlohmann::json::array()},
                            {"track_states", states}, {"problems", problems}, {"complete", q.count > 0 && problems.empty()}};
        for (const auto& s : rows) j["shards"].push_back(shard_json(s));
        print_json(j);
    } else {
        fmt::print("{:<7} {:<12} {:<5} {:<8} {:>3} {:>6} {:>9} {:>6} {:>6} {:>6} {:>7} {:>7}  {:<36} {}\n", "shard", "model", "prec",
                   "status", "try", "tracks", "processed", "cached", "failed", "locked", "windows", "time_s", "run", "updated");
        for (const auto& s : rows)
            fmt::print("{:<7} {:<12} {:<5} {:<8} {:>3} {:>6} {:>9} {:>6} {:>6} {:>6} {:>7} {:>7.1f}  {:<36} {}\n",
                       fmt::format("{}/{}", s.index, s.count), s.model, s.precision, s.status, s.attempts, s.tracks, s.processed,
                       s.cached, s.failed, s.locked, s.windows, s.elapsed_s, s.run_id, s.updated_at);
        std::string line;
        for (const auto& [status, n] : states) line += fmt::format("{}{} {}", line.empty() ? "" : ", ", n, status);
        fmt::print("tracks of {}: {}\n", dataset, line.empty() ? "no extraction state recorded" : line);
    }
    if (q.check && !problems.empty()) {
        std::string all;
        for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
        throw_input("extraction of {} with model {} is not complete in catalog {}: {}", dataset, q.model,
                    db::redact_url(catalog->url()), all);
    }
    if (q.check) spdlog::info("every shard of {}/{} of {} is done", q.count, q.count, dataset);
    return 0;
}

}  // namespace

void register_runs(CLI::App& app, Context& ctx) {
    auto* runs = app.add_subcommand("runs", "The run registry: every extract, targets, probe, train, index build and eval run");
    runs->require_subcommand(1);
    static std::string kind, id;
    static std::int64_t limit = 50;
    static std::vector<std::string> ids;
    auto* list = runs->add_subcommand("list", "Runs, newest first");
    list->add_option("--kind", kind, "Only runs of this kind (extract, targets, probe, train, index-build, eval)");
    list->add_option("--limit", limit, "At most this many (0 = all; default 50)")->check(CLI::NonNegativeNumber);
    bool& list_json = add_json_flag(list);
    list->callback([&ctx, &list_json] { ctx.run = [&ctx, &list_json] { return list_runs(ctx, kind, limit, list_json); }; });
    auto* show = runs->add_subcommand("show", "One run: command line, parameters, version, times, status, metrics, outputs");
    show->add_option("run_id", id, "Run id (or a unique prefix)")->required();
    bool& show_json = add_json_flag(show);
    show->callback([&ctx, &show_json] { ctx.run = [&ctx, &show_json] { return show_run(ctx, id, show_json); }; });
    static ShardQuery shard_query;
    auto* shards = runs->add_subcommand("shards", "The shards of sharded extractions (mess extract --shard i/N): state, attempts,\n"
                                                  "counts; --check: exit 2 unless every shard of --count N is done (the merge job's check)");
    shards->add_option("--dataset", shard_query.dataset, "Registered dataset: smd | maestro");
    shards->add_option("--dataset-id", shard_query.dataset_id, "Id of an --audio-dir dataset");
    shards->add_option("--audio-dir", shard_query.audio_dir, "Accepted (and unused) so that extract's dataset options can be passed");
    shards->add_option("--model", shard_query.model, "Only this model (as given to mess extract --model)");
    shards->add_option("--count", shard_query.count, "Only splits into N shards")->check(CLI::PositiveNumber);
    shards->add_flag("--check", shard_query.check, "Fail (exit 2) naming every shard of --count N that is missing, running or failed");
    bool& shards_json = add_json_flag(shards);
    shards->callback([&ctx, &shards_json] { ctx.run = [&ctx, &shards_json] { return list_shards(ctx, shard_query, shards_json); }; });
    auto* compare = runs->add_subcommand("compare", "Parameters and metrics of runs side by side (* = values differ)");
    compare->add_option("run_ids", ids, "Two or more run ids (or unique prefixes)")->required();
    bool& compare_json = add_json_flag(compare);
    compare->callback([&ctx, &compare_json] { ctx.run = [&ctx, &compare_json] { return compare_runs(ctx, ids, compare_json); }; });
}

}  // namespace mess::cli
