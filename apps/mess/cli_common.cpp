#include <cstdio>
#include <deque>
#include <memory>

#include "cli.hpp"

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

}  // namespace mess::cli
