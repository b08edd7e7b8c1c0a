// The `mess` command line: shared context and the registration function of each subcommand file.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "mess/aspects.hpp"
#include "mess/catalog.hpp"
#include "mess/server.hpp"
#include "mess/structure.hpp"
#include "mess/util.hpp"

namespace mess::cli {

// Global flags and the resolved configuration, shared by every subcommand.
struct Context {
    ConfigFlags flags;           // filled from --data-root, --device, ... (only those given)
    std::string data_root, device, log_level;
    int workers = 0, batch_size = 0;
    Config config;               // resolved after parsing
    // The action of the chosen subcommand, returning the exit code.
    std::function<int()> run;
};

// Adds a `--json` flag to `cmd`; returns the bool it sets.
bool& add_json_flag(CLI::App* cmd);
// A (done, total) callback that drives `progress` (for jobs whose total is known only once they start).
std::function<void(std::int64_t, std::int64_t)> progress_sink(Progress& progress);
// Prints a JSON document to stdout (pretty, newline-terminated).
void print_json(const nlohmann::json& j);

// Which dataset a command works on: --dataset NAME, or --audio-dir DIR with --dataset-id NAME.
struct DatasetChoice {
    std::string dataset, audio_dir, dataset_id;
};
// Adds --dataset, --audio-dir and --dataset-id to `cmd`.
void add_dataset_options(CLI::App* cmd, DatasetChoice& choice);
// The chosen dataset (exactly one of the two ways). Errors: Error(usage) for a missing or contradictory choice.
Dataset open_dataset(const Context& ctx, const DatasetChoice& choice);

void register_config(CLI::App& app, Context& ctx);
void register_audio(CLI::App& app, Context& ctx);
void register_model(CLI::App& app, Context& ctx);
void register_embed(CLI::App& app, Context& ctx);
void register_extract(CLI::App& app, Context& ctx);
void register_targets(CLI::App& app, Context& ctx);
void register_probe(CLI::App& app, Context& ctx);
void register_search(CLI::App& app, Context& ctx);
void register_eval(CLI::App& app, Context& ctx);
void register_align(CLI::App& app, Context& ctx);
void register_structure(CLI::App& app, Context& ctx);
// The analysis parameters of mess structure, shared with mess eval structure.
void add_structure_params(CLI::App* cmd, StructureParams& params);
// The structure parameters as the run registry records them.
nlohmann::json structure_params_json(const StructureParams& params);
void register_demo(CLI::App& app, Context& ctx);
void register_serve(CLI::App& app, Context& ctx);
void register_route(CLI::App& app, Context& ctx);
void register_listen(CLI::App& app, Context& ctx);
void register_train(CLI::App& app, Context& ctx);
// mess eval aspects (cmd_train.cpp), under `mess eval`.
void register_eval_aspects(CLI::App* eval, Context& ctx);
// The rungs below a trained aspect model that its saved arrays define, then the model: identity, standardise
// (from its mean and scale, when it has them), the model (cmd_train.cpp).
std::vector<AspectModel> rungs_of(const AspectModel& m);
// mess train same-work and mess eval same-work (cmd_same_work.cpp).
void register_train_same_work(CLI::App* train, Context& ctx);
void register_eval_same_work(CLI::App* eval, Context& ctx);

// mess serve's configuration from the context (data root, workers, the built web UI) and its main loop:
// serves until SIGINT/SIGTERM, reloads on SIGHUP; `on_ready` runs once listening.
ServeConfig serve_config(const Context& ctx, const std::string& index, const std::string& host, int port);
int run_server(ServeConfig config, const std::function<void(const Server&)>& on_ready);

}  // namespace mess::cli
