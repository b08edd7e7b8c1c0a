// mess catalog sync|import|export|show and mess runs list|show|compare.
#include <fmt/format.h>

#include "catalog_cli.hpp"
#include "mess/artifacts.hpp"

namespace mess::cli {
namespace {

struct CatalogOptions {
    DatasetChoice source;
    std::string file;
    bool hash = false;
};

int run_sync(const Context& ctx, const CatalogOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.source);
    auto catalog = open_catalog(ctx);
    SyncParams params;
    if (o.hash) params.hasher = [](const std::filesystem::path& p) { return sha256_file(p); };
    const SyncReport r = sync_dataset(*catalog, ds, ds.metadata(), params);
    const nlohmann::json j = {{"dataset", ds.id()}, {"catalog", db::redact_url(catalog->url())}, {"tracks", r.tracks},
                              {"removed", r.removed}, {"audio_files", r.files}, {"problems", r.problems}};
    if (json) print_json(j);
    else {
        fmt::print("catalog {}: dataset {}: {} track(s), {} audio file(s), {} removed\n", db::redact_url(catalog->url()),
                   ds.id(), r.tracks, r.files, r.removed);
        for (const auto& p : r.problems) fmt::print("  unreadable header: {}\n", p);
    }
    return r.problems.empty() ? 0 : 2;
}

int run_import(const Context& ctx, const CatalogOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.source);
    const std::filesystem::path file = o.file.empty() ? ds.metadata_path() : std::filesystem::path(o.file);
    const MetadataTable meta = MetadataTable::read(file);
    auto catalog = open_catalog(ctx);
    const std::int64_t n = import_metadata(*catalog, ds, meta);
    if (json) print_json({{"dataset", ds.id()}, {"file", file.string()}, {"tracks", n}});
    else fmt::print("catalog {}: dataset {}: {} track(s) from {}\n", db::redact_url(catalog->url()), ds.id(), n, file.string());
    return 0;
}

int run_export(const Context& ctx, const CatalogOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.source);
    const std::filesystem::path file = o.file.empty() ? ds.metadata_path() : std::filesystem::path(o.file);
    auto catalog = open_catalog(ctx);
    const MetadataTable meta = catalog_metadata(*catalog, ds.id());
    meta.write(file);
    if (json) print_json({{"dataset", ds.id()}, {"file", file.string()}, {"tracks", meta.rows().size()}});
    else fmt::print("{}: {} track(s) of dataset {}\n", file.string(), meta.rows().size(), ds.id());
    return 0;
}

CLI::App* dataset_command(CLI::App* parent, const char* name, const char* help, CatalogOptions& o) {
    auto* cmd = parent->add_subcommand(name, help);
    add_dataset_options(cmd, o.source);
    return cmd;
}

}  // namespace

void register_catalog(CLI::App& app, Context& ctx) {
    auto* cat = app.add_subcommand("catalog", "The catalog database (SQLite by default, PostgreSQL with --catalog postgresql://…):\n"
                                              "datasets, tracks, audio files, extraction state, runs, judgements");
    cat->require_subcommand(1);
    static CatalogOptions o;
    auto* sync = dataset_command(cat, "sync", "Register a dataset's tracks, metadata and audio files (size, duration, rate)", o);
    sync->add_flag("--hash", o.hash, "Also record each audio file's SHA-256 (reads every byte)");
    auto* imp = dataset_command(cat, "import", "Read a metadata CSV (default metadata/<dataset>_metadata.csv) into the catalog", o);
    imp->add_option("--file", o.file, "Metadata CSV: recording_id, work_id, track_id, then free columns");
    auto* exp = dataset_command(cat, "export", "Write the catalog's tracks of a dataset as a metadata CSV (atomic)", o);
    exp->add_option("--file", o.file, "Output CSV (default metadata/<dataset>_metadata.csv)");
    for (auto [cmd, fn] : {std::pair{sync, &run_sync}, std::pair{imp, &run_import}, std::pair{exp, &run_export}}) {
        bool& json = add_json_flag(cmd);
        cmd->callback([&ctx, &json, fn = fn] { ctx.run = [&ctx, &json, fn] { return fn(ctx, o, json); }; });
    }
}

}  // namespace mess::cli
