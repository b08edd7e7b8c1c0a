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

Dataset open_dataset(const Context& ctx, const std::string& dataset, const std::string& audio_dir, const std::string& id) {
    if (!dataset.empty() && !audio_dir.empty()) throw_usage("give either --dataset or --audio-dir, not both");
    if (!dataset.empty()) return Dataset::open(ctx.config.data_root.value, dataset);
    if (audio_dir.empty()) throw_usage("give --dataset NAME (smd, maestro) or --audio-dir DIR --dataset-id NAME");
    if (id.empty()) throw_usage("--audio-dir needs --dataset-id NAME");
    return Dataset::folder(ctx.config.data_root.value, audio_dir, id);
}

}  // namespace mess::cli
