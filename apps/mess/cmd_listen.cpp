// mess listen export: the listening test's judgements (the catalog database's judgements table, filled by
// the server's /api/listen/judgements) as the triplet CSV `mess eval triplets` reads (listening_csv).
#include <set>

#include <fmt/format.h>

#include "catalog_cli.hpp"
#include "cli.hpp"

namespace mess::cli {
namespace {

struct ExportOptions {
    std::string out, listener;
};

int run_export(const Context& ctx, const ExportOptions& o, bool json) {
    const auto catalog = open_catalog(ctx);
    const std::vector<db::Judgement> rows = catalog->judgements({.listener = o.listener});
    write_file_atomic(o.out, listening_csv(rows));
    std::set<std::string> listeners;
    for (const db::Judgement& j : rows) listeners.insert(j.listener);
    if (json)
        print_json({{"out", o.out}, {"judgements", rows.size()}, {"listeners", listeners.size()}, {"catalog", db::redact_url(catalog->url())}});
    else
        fmt::print("{} judgement(s) of {} listener(s) written to {}\n", rows.size(), listeners.size(), o.out);
    return 0;
}

}  // namespace

void register_listen(CLI::App& app, Context& ctx) {
    auto* listen = app.add_subcommand("listen", "The listening test: human triplet judgements collected by the web UI's Listen page");
    listen->require_subcommand(1);
    auto o = std::make_shared<ExportOptions>();
    auto* cmd = listen->add_subcommand("export",
        "Writes the judgements kept in the catalog database (--catalog) as CSV:\n"
        "anchor,a,b,choice,aspect,listener,time_ms,sampler,judged_at (the file mess eval triplets reads;\n"
        "anchor, a and b are clip ids, choice is a or b, aspect empty for overall).\n"
        "Example: mess listen export --out triplets.csv");
    cmd->add_option("--out", o->out, "CSV file to write (atomically)")->required();
    cmd->add_option("--listener", o->listener, "Only this listener's judgements");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, o, &json] { ctx.run = [&ctx, o, &json] { return run_export(ctx, *o, json); }; });
}

}  // namespace mess::cli
