#include <cstdio>
#include <deque>
#include <memory>

#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"

namespace mess::cli {

bool& add_json_flag(CLI::App* cmd) {
    static std::deque<bool> storage;  // stable addresses, one per registered command
    storage.push_back(false);
    cmd->add_flag("--json", storage.back(), "Print machine-readable JSON on stdout instead of text");
    return storage.back();
}

std::function<void(std::int64_t, std::int64_t)> progress_sink(Progress& progress) {
    auto last = std::make_shared<std::int64_t>(0);
    return [&progress, last](std::int64_t done, std::int64_t total) {
        progress.set_total(total);
        progress.advance(done - *last);
        *last = done;
    };
}

void print_json(const nlohmann::json& j) { std::puts(j.dump(2).c_str()); }

void add_dataset_options(CLI::App* cmd, DatasetChoice& choice) {
    cmd->add_option("--dataset", choice.dataset, "Registered dataset: smd | maestro");
    cmd->add_option("--audio-dir", choice.audio_dir, "Any folder of audio (recursive), with --dataset-id");
    cmd->add_option("--dataset-id", choice.dataset_id, "Id for --audio-dir (names embeddings/<id>-emb, metadata/<id>_*.csv)");
}

Dataset open_dataset(const Context& ctx, const DatasetChoice& c) {
    if (!c.dataset.empty() && !c.audio_dir.empty()) throw_usage("give either --dataset or --audio-dir, not both");
    if (!c.dataset.empty()) return Dataset::open(ctx.config.data_root.value, c.dataset);
    if (c.audio_dir.empty()) throw_usage("give --dataset NAME (smd, maestro) or --audio-dir DIR --dataset-id NAME");
    if (c.dataset_id.empty()) throw_usage("--audio-dir needs --dataset-id NAME");
    return Dataset::folder(ctx.config.data_root.value, c.audio_dir, c.dataset_id);
}

namespace {
std::string& stored_command_line() {
    static std::string line;
    return line;
}
}  // namespace

void set_command_line(int argc, char** argv) {
    std::string& line = stored_command_line();
    line.clear();
    for (int i = 0; i < argc; ++i) line += (i ? " " : "") + db::redact_url(argv[i]);
}
const std::string& command_line() { return stored_command_line(); }

std::unique_ptr<db::CatalogDb> open_catalog(const Context& ctx) {
    return db::CatalogDb::open(db::catalog_setting(ctx.flags, ctx.config).value);
}

RunRecord::RunRecord(const Context& ctx, std::string kind, const nlohmann::json& parameters) : catalog_(open_catalog(ctx)) {
    id_ = catalog_->start_run({.kind = std::move(kind), .command_line = command_line(), .parameters = parameters.dump(),
                               .version = MESS_VERSION});
    spdlog::info("run {} (mess runs show {})", id_, id_);
}

RunRecord::~RunRecord() {
    if (finished_) return;
    try {
        catalog_->finish_run(id_, "failed", "{}", outputs_.dump(),
                             std::uncaught_exceptions() > 0 ? "stopped by an error (see the command's output)" : "not finished");
    } catch (const Error& e) {
        spdlog::warn("run {}: could not record its end: {}", id_, e.what());
    }
}

void RunRecord::finish(const nlohmann::json& metrics, const std::string& status, const std::string& error) {
    catalog_->finish_run(id_, status, metrics.dump(), outputs_.dump(), error);
    finished_ = true;
}

}  // namespace mess::cli
