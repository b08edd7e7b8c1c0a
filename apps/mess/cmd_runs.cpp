// mess runs list|show|compare: the run registry of the catalog.
#include <set>

#include <fmt/format.h>

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
    auto* compare = runs->add_subcommand("compare", "Parameters and metrics of runs side by side (* = values differ)");
    compare->add_option("run_ids", ids, "Two or more run ids (or unique prefixes)")->required();
    bool& compare_json = add_json_flag(compare);
    compare->callback([&ctx, &compare_json] { ctx.run = [&ctx, &compare_json] { return compare_runs(ctx, ids, compare_json); }; });
}

}  // namespace mess::cli
