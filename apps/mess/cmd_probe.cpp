// mess probe (layer discovery) and mess aspects (aspects resolved to layers).
#include <cmath>
#include <limits>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"
#include "mess/probe.hpp"

namespace mess::cli {
namespace {

struct ProbeOptions {
    DatasetChoice source;
    std::string mode, level = "track", out;
    double alpha = 1.0, min_r2 = -std::numeric_limits<double>::infinity();
    int folds = 5, controls = 5, bootstrap = 200, directions = 4;
    std::uint32_t seed = 42;
    bool separability = false;
};

std::string cell(double v) { return std::isfinite(v) ? fmt::format("{:6.2f}", v) : std::string("     -"); }

// The best layer's fold spread, band and confidence label: "  ±0.04 [0.61, 0.93] low (8 tracks)".
std::string band_text(const nlohmann::json& m) {
    std::string out = m.contains("r2_fold_std") ? fmt::format("  ±{:.2f}", m["r2_fold_std"].get<double>()) : std::string();
    double low = NAN;
    if (m.contains("r2_band")) {
        low = m["r2_band"][0].get<double>();
        out += fmt::format(" [{:.2f}, {:.2f}]", low, m["r2_band"][1].get<double>());
    }
    const auto tracks = m.value("n_tracks", std::int64_t{0});
    return out + fmt::format(" {} ({} tracks)", confidence_label(low, tracks), tracks);
}

// Target × layer table with the best layer marked, then the weighted sum and the chance control.
void print_table(const nlohmann::json& r) {
    const std::size_t layers = r["run"]["layers"].get<std::size_t>();
    std::string head = fmt::format("{:<32}", "target (R², * = best layer)");
    for (std::size_t l = 0; l < layers; ++l) head += fmt::format(" {:>6}", fmt::format("L{}", l));
    head += fmt::format(" {:>7} {:>7}  {}", "wsum", "chance", "best layer: fold spread, 95% band, confidence");
    fmt::print("{}\n", head);
    for (const auto& name : r["run"]["targets"]) {
        const std::string t = name.get<std::string>();
        std::vector<double> s(layers);
        int best = -1;
        for (std::size_t l = 0; l < layers; ++l) {
            s[l] = probe_score(r[std::to_string(l)].value(t, nlohmann::json()));
            if (std::isfinite(s[l]) && (best < 0 || s[l] > s[static_cast<std::size_t>(best)])) best = static_cast<int>(l);
        }
        std::string line = fmt::format("{:<32}", t.size() > 32 ? t.substr(0, 31) + "…" : t);
        for (std::size_t l = 0; l < layers; ++l) line += cell(s[l]) + (static_cast<int>(l) == best ? "*" : " ");
        const double ws = r.contains("weighted_sum") ? probe_score(r["weighted_sum"].value(t, nlohmann::json())) : NAN;
        const double chance = r.contains("control") && r["control"].contains(t) ? r["control"][t]["r2_mean"].get<double>() : NAN;
        line += " " + cell(ws) + "  " + cell(chance);
        fmt::print("{}{}\n", line, best < 0 ? std::string() : band_text(r[std::to_string(best)][t]));
    }
    for (auto it = r["skipped_targets"].begin(); it != r["skipped_targets"].end(); ++it)
        fmt::print("skipped target {}: {}\n", it.key(), it->get<std::string>());
}

int run_probe(const Context& ctx, const ProbeOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    DiscoveryParams p;
    p.alpha = o.alpha;
    p.folds = o.folds;
    p.seed = o.seed;
    p.control_permutations = o.controls;
    p.bootstrap = o.bootstrap;
    const ProbeLevel level = parse_probe_level(o.level);
    // Nested weighted sums over thousands of windows are slow: window level defaults to the best layer.
    p.mode = parse_probe_mode(o.mode.empty() ? (level == ProbeLevel::track ? "both" : "best_layer") : o.mode);
    RunRecord run(ctx, "probe", {{"dataset", ds.id()}, {"level", o.level}, {"alpha", o.alpha}, {"folds", o.folds},
                                 {"seed", o.seed}, {"controls", o.controls}});
    ProbeData data = load_probe_data(ds, level);
    for (const auto& [track, why] : data.skipped_tracks) spdlog::warn("track {} not probed: {}", track, why);
    Progress progress(fmt::format("probe {} ({} rows, {} targets)", ds.id(), data.rows(), data.targets.size()), 0);
    p.on_progress = progress_sink(progress);
    nlohmann::json results = discover_layers(data, p);
    progress.finish();
    const std::filesystem::path out = o.out.empty() ? default_results_path(ctx.config.data_root.value, ds.id(), level) : std::filesystem::path(o.out);
    std::filesystem::create_directories(out.parent_path().empty() ? "." : out.parent_path());
    write_file_atomic(out, results.dump(2) + "\n");
    run.add_output(out);
    run.finish(results);
    if (json) {
        print_json({{"results_path", out.string()}, {"results", results}});
    } else {
        print_table(results);
        fmt::print("{} rows ({} level), {} layers → {}\n", data.rows(), o.level, data.layers, out.string());
        const auto tracks = results["run"]["n_tracks"].get<std::int64_t>();
        if (tracks < kMinTracksHigh)
            fmt::print("warning: only {} tracks: no confidence is \"high\" below {} tracks (\"medium\" needs {}); R² on so few "
                       "tracks is not evidence\n", tracks, kMinTracksHigh, kMinTracksMedium);
    }
    return 0;
}

// The separability matrix of the aspects resolved from existing results (rows: from, columns: to).
int run_separability(const Context& ctx, const ProbeOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    const ProbeLevel level = parse_probe_level(o.level);
    const std::filesystem::path results_path = o.out.empty() ? default_results_path(ctx.config.data_root.value, ds.id(), level) : std::filesystem::path(o.out);
    AspectParams ap;
    ap.min_r2 = o.min_r2;
    const auto aspects = resolve_aspects(read_discovery_results(results_path), ap);
    if (aspects.empty()) throw_input("no aspect resolves with R² ≥ {} in {}", o.min_r2, results_path.string());
    const ProbeData data = load_probe_data(ds, level);
    const SeparabilityReport report = separability(data, aspects, {o.alpha, o.folds, o.seed, o.directions});
    std::filesystem::path out = results_path;
    out.replace_filename(level == ProbeLevel::track ? "separability.json" : "separability_window.json");
    write_file_atomic(out, report.to_json().dump(2) + "\n");
    if (json) {
        print_json({{"separability_path", out.string()}, {"results_path", results_path.string()}, {"separability", report.to_json()}});
        return 0;
    }
    fmt::print("R² of each column's target from each row's aspect subspace (out-of-fold; high off the diagonal = not separable)\n");
    std::string head = fmt::format("{:<24}", "from \\ to");
    for (const auto& a : report.aspects) head += fmt::format(" {:>8}", a.substr(0, 8));
    fmt::print("{}\n", head);
    for (std::size_t i = 0; i < report.aspects.size(); ++i) {
        std::string line = fmt::format("{:<24}", report.aspects[i]);
        for (double v : report.r2[i]) line += "   " + cell(v);
        fmt::print("{}\n", line);
    }
    fmt::print("targets: ");
    for (std::size_t i = 0; i < report.aspects.size(); ++i) fmt::print("{}{}={}", i ? ", " : "", report.aspects[i], report.targets[i]);
    fmt::print("\n→ {}\n", out.string());
    return 0;
}

struct AspectOptions {
    std::string dataset = "", results, mode = "auto", level = "track";
    double min_r2 = 0.5, gain = 0.02;
    bool all = false;
};

int run_aspects(const Context& ctx, const AspectOptions& o, bool json) {
    if (o.results.empty() && o.dataset.empty()) throw_usage("give --dataset NAME or --results FILE");
    const std::filesystem::path path = o.results.empty()
        ? default_results_path(ctx.config.data_root.value, o.dataset, parse_probe_level(o.level)) : std::filesystem::path(o.results);
    AspectParams p;
    p.min_r2 = o.min_r2;
    p.gain = o.gain;
    p.mode = parse_aspect_mode(o.mode);
    if (o.all) p.min_r2 = -std::numeric_limits<double>::infinity();
    const auto aspects = resolve_aspects(read_discovery_results(path), p);
    if (json) {
        nlohmann::json j = nlohmann::json::array();
        for (const auto& a : aspects) j.push_back(a.to_json());
        print_json({{"results_path", path.string()}, {"min_r2", o.min_r2}, {"aspects", j}});
        return 0;
    }
    if (aspects.empty()) fmt::print("no aspect reaches R² ≥ {} in {}\n", o.min_r2, path.string());
    for (const auto& a : aspects) {
        std::string where = a.mode == AspectMode::best_layer ? fmt::format("layer {}", a.layer) : std::string("weights");
        if (a.mode == AspectMode::weighted_sum)
            for (double w : a.layer_weights) where += fmt::format(" {:.2f}", w);
        const std::string band = std::isfinite(a.band.low) ? fmt::format("[{:.2f}, {:.2f}]", a.band.low, a.band.high) : std::string("[no band]");
        fmt::print("{:<24} R² {:6.3f} {:<14} {:<7} {:>4} tracks  {:<30} {}\n", a.name, a.r2, band, a.confidence, a.n_tracks, a.target, where);
    }
    return 0;
}

}  // namespace

void register_probe(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("probe",
        "Layer discovery: for every proxy target, a standardised ridge probe on every layer,\n"
        "cross-validated (pooled out-of-fold R², correlation, RMSE), a nested-CV weighted sum over\n"
        "layers and a shuffled-target control (chance R²). Needs features (mess extract) and targets\n"
        "(mess targets). Writes probing/<dataset>/layer_discovery_results.json under the data root.");
    static ProbeOptions o;
    add_dataset_options(cmd, o.source);
    cmd->add_option("--alpha", o.alpha, "Ridge penalty (> 0)")->capture_default_str();
    cmd->add_option("--folds", o.folds, "Cross-validation folds (≥ 2)")->capture_default_str();
    cmd->add_option("--seed", o.seed, "Fold shuffling and control permutations")->capture_default_str();
    cmd->add_option("--mode", o.mode, "best_layer | weighted_sum | both (default: both at track level, best_layer at window level)");
    cmd->add_option("--level", o.level, "track (aggregated views, track targets) | window (segment views, per-window targets, folds by track)")
        ->capture_default_str();
    cmd->add_option("--controls", o.controls, "Permutations for the chance control (0 = none)")->capture_default_str();
    cmd->add_option("--out", o.out, "Results file (default: <data root>/probing/<dataset>/layer_discovery_results[_window].json)");
    cmd->add_option("--bootstrap", o.bootstrap, "Resamples of tracks for the 95% R² band (0 = no band)")->capture_default_str();
    cmd->add_flag("--separability", o.separability,
                  "Instead of probing: from the existing results (--out), the matrix of how well each aspect's probe\n"
                  "subspace predicts every other aspect's target (separability[_window].json beside the results)");
    cmd->add_option("--directions", o.directions, "--separability: directions per aspect subspace (≥ 1)")->capture_default_str();
    cmd->add_option("--min-r2", o.min_r2, "--separability: only aspects whose probe R² reaches this (default: all that resolve)");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] {
        ctx.run = [&ctx, &json] { return o.separability ? run_separability(ctx, o, json) : run_probe(ctx, o, json); };
    });

    auto* asp = app.add_subcommand("aspects",
        "Musical aspects (brightness, dynamics, articulation, ...) resolved to layers from the probing\n"
        "results: each aspect's best target, its R², its 95% band, confidence (high: band's lower bound > 0.8\n"
        "and ≥ 30 tracks; medium: > 0.5 and ≥ 10 tracks) and a layer\n"
        "or dense layer weights. Only aspects with R² ≥ --min-r2 are validated for aspect search.");
    static AspectOptions a;
    asp->add_option("--dataset", a.dataset, "Dataset whose probing results to read");
    asp->add_option("--results", a.results, "A layer_discovery_results.json file instead");
    asp->add_option("--level", a.level, "track | window results of --dataset")->capture_default_str();
    asp->add_option("--min-r2", a.min_r2, "Validation threshold")->capture_default_str();
    asp->add_option("--mode", a.mode, "auto | best_layer | weighted_sum")->capture_default_str();
    asp->add_option("--gain", a.gain, "auto: weighted sum must beat the best layer by more than this")->capture_default_str();
    asp->add_flag("--all", a.all, "List every aspect that resolves, validated or not");
    bool& ajson = add_json_flag(asp);
    asp->callback([&ctx, &ajson] { ctx.run = [&ctx, &ajson] { return run_aspects(ctx, a, ajson); }; });
}

}  // namespace mess::cli
