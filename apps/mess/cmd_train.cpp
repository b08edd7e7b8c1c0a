// mess train aspects (learned aspect geometry on a factor corpus), mess eval aspects and mess eval triplets.
#include <numeric>
#include <optional>
#include <set>

#include <fmt/format.h>

#include "aspects_cli.hpp"
#include "catalog_cli.hpp"
#include "cli.hpp"
#include "mess/artifacts.hpp"
#include "mess/aspects.hpp"
#include "mess/eval.hpp"
#include "mess/model.hpp"
#include "mess/probe.hpp"

namespace mess::cli {

namespace fs = std::filesystem;

namespace {

struct TrainOptions {
    DatasetChoice data;
    std::string labels, out, rung = "linear", loss = "triplet";
    std::vector<std::string> aspects = {"tempo", "dynamics", "articulation", "timbre"};
    std::vector<int> layers;
    std::int64_t dim = 32, hidden = 64;
    int epochs = 30, triplets = 4000, restarts = 1;
    double learning_rate = 0.01, temperature = 0.1;
    std::uint64_t seed = 0;
    bool quiet = false, pick_best = false, ensemble = false;
    std::vector<std::string> from_targets;  // ASPECT=target[,target...]
    double alpha = 1.0;
    bool replace = false;
};

nlohmann::json ladder_json(const AspectTraining& t) {
    nlohmann::json rows = nlohmann::json::array();
    for (const auto& r : t.ladder)
        rows.push_back({{"rung", to_string(r.rung)}, {"validation_accuracy", r.validation_accuracy}, {"train_loss", r.train_loss},
                        {"best_epoch", r.best_epoch}, {"seconds", r.seconds}});
    return rows;
}

void print_ladder(const std::string& aspect, const AspectTraining& t) {
    fmt::print("{}: validation triplet accuracy by rung (each against the one before)\n", aspect);
    double previous = 0;
    for (std::size_t i = 0; i < t.ladder.size(); ++i) {
        const auto& r = t.ladder[i];
        fmt::print("  {:<12} {:.3f}{}  ({:.1f} s{})\n", to_string(r.rung), r.validation_accuracy,
                   i ? fmt::format("  {:+.3f}", r.validation_accuracy - previous) : std::string("       "), r.seconds,
                   r.best_epoch ? fmt::format(", best epoch {}", r.best_epoch) : "");
        previous = r.validation_accuracy;
    }
}

// Saves the set, records the run and reports it.
int save_trained(const AspectSet& set, const std::string& out, RunRecord& run, const nlohmann::json& report, bool json) {
    save_aspect_set(set, out);
    run.add_output(out);
    run.finish(report);
    if (json) print_json(report);
    else fmt::print("aspect models → {}/aspects.json\n", out);
    return 0;
}

// The set proxy-target aspects are added to: --out's when it holds one (the layers and encoder it was
// trained on), else a new one for the store's encoder and every layer.
AspectSet proxy_target_set(const TrainOptions& o, const ProbeData& data, const Dataset& ds) {
    if (fs::exists(fs::path(o.out) / "aspects.json")) return load_aspect_set(o.out);
    std::vector<int> layers(data.layers);
    std::iota(layers.begin(), layers.end(), 0);
    return new_aspect_set(ds.features().read_sidecar(data.groups.at(0)).model, layers, static_cast<std::int64_t>(data.dim));
}

// --from-targets: aspect subspaces from the ridge directions to per-window proxy targets (mess/probe.hpp).
int run_train_proxy(const Context& ctx, const TrainOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.data);
    const ProbeData data = load_probe_data(ds, ProbeLevel::window);
    AspectSet set = proxy_target_set(o, data, ds);
    RunRecord run(ctx, "train", {{"dataset", ds.id()}, {"from_targets", o.from_targets}, {"alpha", o.alpha}});
    nlohmann::json report = {{"dataset", ds.id()}, {"encoder", set.encoder}, {"aspects", nlohmann::json::object()}};
    std::set<std::string> named;
    for (const auto& spec : o.from_targets) {
        auto [aspect, targets] = parse_proxy_aspect_spec(spec);
        if (!named.insert(aspect).second) throw_usage("--from-targets names aspect {} twice", aspect);
        if (set.aspects.contains(aspect) && !o.replace)
            throw_usage("aspect {} already exists in {} (trained {}); pass --replace to refit it", aspect, o.out,
                        set.aspects.at(aspect).info.value("method", std::string("on factors")));
        ProxyAspectFit fit = fit_proxy_aspect(data, set.layers, aspect, targets, {o.alpha, 5});
        fit.model.info["trained_on"] = ds.id();
        report["aspects"][aspect] = fit.model.info;
        if (!json) {
            fmt::print("{}: {} directions from {} windows of {} tracks; held-out R² from the subspace:", aspect, fit.model.out_dim, fit.windows, fit.tracks);
            for (std::size_t i = 0; i < targets.size(); ++i) fmt::print(" {} {:.3f}", targets[i], fit.cv_r2[i]);
            fmt::print("\n");
        }
        set.aspects[aspect] = std::move(fit.model);
    }
    return save_trained(set, o.out, run, report, json);
}

int run_train(const Context& ctx, const TrainOptions& o, bool json) {
    if (!o.from_targets.empty()) return run_train_proxy(ctx, o, json);
    if (o.labels.empty()) throw_usage("train aspects needs --labels (a factor corpus) or --from-targets");
    const Dataset ds = open_dataset(ctx, o.data);
    const FactorWindows data = load_factor_windows(ds.features(), o.labels, o.layers);
    if (!json) fmt::print("{} windows of {} tracks, {} inputs ({} layers × {}), encoder {}\n", data.n, data.track_ids.size(), data.dim,
                          data.layers.size(), data.layer_dim, data.encoder);
    RunRecord run(ctx, "train", {{"dataset", ds.id()}, {"labels", o.labels}, {"aspects", o.aspects}, {"rung", o.rung},
                                 {"dim", o.dim}, {"hidden", o.hidden}, {"loss", o.loss}, {"pick_best", o.pick_best}, {"epochs", o.epochs}, {"seed", o.seed}, {"restarts", o.restarts},
                                 {"ensemble", o.ensemble}});
    AspectSet set = new_aspect_set(data.encoder, data.layers, data.layer_dim);
    nlohmann::json report = {{"windows", data.n}, {"encoder", data.encoder}, {"labels", fs::path(o.labels).filename().string()}, {"aspects", nlohmann::json::object()}};
    for (const auto& aspect : o.aspects) {
        AspectTrainParams p;
        p.rung = parse_aspect_rung(o.rung);
        p.out_dim = o.dim, p.epochs = o.epochs, p.triplets_per_epoch = o.triplets, p.learning_rate = o.learning_rate, p.seed = o.seed;
        p.hidden_dim = o.hidden, p.loss = parse_aspect_loss(o.loss), p.temperature = o.temperature, p.pick_best = o.pick_best;
        p.restarts = o.restarts, p.ensemble = o.ensemble;
        if (!json && !o.quiet)
            p.on_epoch = [&](AspectRung r, int epoch, double loss, double acc) {
                fmt::print("  {} {:<9} epoch {:>3}/{}  loss {:.4f}  validation accuracy {:.3f}\n", aspect, to_string(r), epoch, p.epochs, loss, acc);
                std::fflush(stdout);
            };
        AspectTraining t = train_aspect(data, aspect, p);
        t.model.info["trained_on"] = ds.id();
        t.model.info["labels"] = fs::path(o.labels).filename().string();
        if (fit_direction(t.model, data, aspect)) t.model.info["direction"] = "more = faster | louder | more legato (fit_direction)";
        if (!json) print_ladder(aspect, t);
        if (!json && o.pick_best) fmt::print("  kept: {}\n", to_string(t.model.rung));
        if (!json && o.restarts > 1)
            fmt::print("  restarts: validation accuracy {:.3f}; kept {}\n", fmt::join(t.model.info["restarts_validation_accuracy"].get<std::vector<double>>(), " "),
                       t.model.info.contains("ensemble") ? fmt::format("all {} as one model ({:.3f})", t.model.info["ensemble"].get<int>(),
                                                                       t.model.info["ensemble_validation_accuracy"].get<double>())
                                                         : fmt::format("seed {}", t.model.info["seed"].get<std::uint64_t>()));
        report["aspects"][aspect] = ladder_json(t);
        report["kept"][aspect] = to_string(t.model.rung);
        set.aspects[aspect] = std::move(t.model);
    }
    return save_trained(set, o.out, run, report, json);
}

struct EvalAspectOptions {
    DatasetChoice data;
    std::string labels, models, out;
    std::vector<std::string> aspects;
    int triplets = 4000;
};

// A proxy-target aspect on held-out windows: per target, the projection's rank correlation and the R² of
// the target from the subspace.
nlohmann::json report_proxy_aspect(const AspectModel& model, const ProbeData& windows, const std::vector<int>& layers, bool json) {
    const ProxyAspectEval e = evaluate_proxy_aspect(model, windows, layers, {});
    if (!json)
        for (std::size_t i = 0; i < e.targets.size(); ++i)
            fmt::print("{:<14}{:<13} {}: Spearman {:.3f} of the projection, R² {:.3f} from the subspace ({} windows)\n", model.name,
                       "proxy", e.targets[i], e.spearman[i], e.r2[i], e.windows);
    return e.to_json();
}

int run_eval_aspects(const Context& ctx, const EvalAspectOptions& o, bool json) {
    const AspectSet set = load_aspect_set(o.models);
    const Dataset ds = open_dataset(ctx, o.data);
    const FactorWindows data = load_factor_windows(ds.features(), o.labels, set.layers);
    check_aspect_set_for(set, data.encoder, ds.id(), o.models);
    nlohmann::json report = {{"schema", "mess-eval-aspects/1"}, {"dataset", ds.id()}, {"models", o.models}, {"aspects", nlohmann::json::object()}};
    if (!json) fmt::print("{:<14}{:<13}{:>10}{:>14}{:>12}{:>16}{:>14}\n", "aspect", "rung", "triplets", "content leak", "value P@1", "track triplets", "track leak");
    std::optional<ProbeData> windows;  // per-window targets, read once for the proxy-target aspects
    for (const auto& [name, model] : set.aspects) {
        if (!o.aspects.empty() && std::find(o.aspects.begin(), o.aspects.end(), name) == o.aspects.end()) continue;
        if (model.info.value("method", std::string()) == "proxy_targets") {
            if (!windows) windows = load_probe_data(ds, ProbeLevel::window);
            report["proxy_aspects"][name] = report_proxy_aspect(model, *windows, set.layers, json);
            continue;
        }
        for (const AspectModel& m : rungs_of(model)) {
            const AspectEval e = evaluate_aspect(m, data, name, o.triplets);
            report["aspects"][name][to_string(m.rung)] = {{"triplet_accuracy", e.triplet_accuracy}, {"content_leak", e.content_leak},
                                                          {"value_precision_at_1", e.value_precision}, {"triplets", e.triplets}, {"queries", e.queries},
                                                          {"tracks", {{"triplet_accuracy", e.track_triplet_accuracy}, {"content_leak", e.track_content_leak},
                                                                      {"triplets", e.track_triplets}, {"queries", e.track_queries}}}};
            if (!json)
                fmt::print("{:<14}{:<13}{:>10.3f}{:>14.3f}{:>12.3f}{:>16.3f}{:>14.3f}\n", name, to_string(m.rung), e.triplet_accuracy, e.content_leak,
                           e.value_precision, e.track_triplet_accuracy, e.track_content_leak);
        }
    }
    if (!o.out.empty()) write_file_atomic(o.out, report.dump(2) + "\n");
    if (json) print_json(report);
    return 0;
}

struct EvalTripletOptions {
    std::string file, index, name, out;
};

int run_eval_triplets(const EvalTripletOptions& o, bool json) {
    const std::vector<TripletJudgement> judgements = read_triplet_judgements(o.file);
    const LoadedArtifact art = load_artifact(resolve_artifact_dir(o.index, o.name));
    const TripletEvalReport rep = evaluate_triplet_judgements(art.index, judgements);
    nlohmann::json report = rep.to_json();
    report["file"] = o.file;
    report["index"] = {{"dir", art.dir.string()}, {"version_id", art.version_id()}};
    if (!o.out.empty()) write_file_atomic(o.out, report.dump(2) + "\n");
    if (json) print_json(report);
    else fmt::print("{}", rep.format());
    if (rep.judgements == 0) throw_input("{}: no usable judgement ({} skipped)", o.file, rep.skipped.size());
    return 0;
}

void register_eval_triplets(CLI::App* eval, Context& ctx) {
    static EvalTripletOptions o;
    auto* cmd = eval->add_subcommand("triplets",
        "Agreement of each geometry of an index (its own vectors, each learned aspect space) with human triplet\n"
        "judgements: a CSV with columns anchor,a,b,choice[,aspect] (others ignored); anchor, a, b are clip ids,\n"
        "track ids or track@seconds; choice is a or b. Per geometry: the share of judgements it makes too.");
    cmd->add_option("FILE", o.file, "Judgements CSV")->required();
    cmd->add_option("--index", o.index, "Artifact directory, or an artifact root with --name")->required();
    cmd->add_option("--name", o.name, "Artifact name under --index (newest version)");
    cmd->add_option("--out", o.out, "Write the JSON report here (atomically)");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&json] { return run_eval_triplets(o, json); }; });
}

}  // namespace

std::vector<AspectModel> rungs_of(const AspectModel& m) {
    std::vector<AspectModel> out{identity_model(m.name, m.in_dim)};
    if (m.rung >= AspectRung::diagonal) {
        AspectModel s = m;
        s.rung = AspectRung::standardise, s.out_dim = m.in_dim, s.hidden_dim = 0, s.weights.clear();
        out.push_back(s);
    }
    if (m.rung != AspectRung::identity) out.push_back(m);
    return out;
}

void register_eval_aspects(CLI::App* eval, Context& ctx) {
    register_eval_triplets(eval, ctx);
    register_eval_same_work(eval, ctx);
    static EvalAspectOptions o;
    auto* cmd = eval->add_subcommand("aspects",
        "Aspect models on a factor corpus never used to train them: per aspect and rung, factor triplet\n"
        "accuracy (cos(anchor, positive) > cos(anchor, negative)), content leak (share of windows whose nearest\n"
        "window of another rendering is the query's own work at another value) and value precision at 1. Aspects\n"
        "fitted from proxy targets (--from-targets) are scored on the dataset's per-window targets (mess targets):\n"
        "the rank correlation of the projection with each target and its R² from the subspace.");
    add_dataset_options(cmd, o.data);
    cmd->add_option("--labels", o.labels, "labels.json of a factor corpus (mess corpus render --factors)")->required();
    cmd->add_option("--models", o.models, "Aspect model directory (mess train aspects --out)")->required();
    cmd->add_option("--aspect", o.aspects, "Only these aspects (repeatable)");
    cmd->add_option("--triplets", o.triplets, "Triplets drawn per aspect")->capture_default_str();
    cmd->add_option("--out", o.out, "Write the JSON report here (atomically)");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_eval_aspects(ctx, o, json); }; });
}

void register_train(CLI::App& app, Context& ctx) {
    auto* train = app.add_subcommand("train", "Learn geometry from frozen embeddings");
    train->require_subcommand(1);
    register_train_same_work(train, ctx);
    static TrainOptions o;
    auto* cmd = train->add_subcommand("aspects",
        "Aspect models on a factor corpus (mess corpus render --factors, extracted with any encoder): per\n"
        "aspect, the ladder identity → standardise → diagonal → linear (rank --dim) → 2-layer MLP (--hidden),\n"
        "soft triplet or InfoNCE loss on factor triplets, Adam, works split into train and validation; progress\n"
        "and the validation curve printed, each rung against the one before; the top rung is kept, or with\n"
        "--pick-best the rung of best validation accuracy. Saves .npy arrays + aspects.json (mess/aspects.hpp).");
    add_dataset_options(cmd, o.data);
    cmd->add_option("--labels", o.labels, "labels.json of the factor corpus (not with --from-targets)");
    cmd->add_option("--from-targets", o.from_targets,
                    "ASPECT=target[,target...] (repeatable): the aspect's subspace from the directions of a standardised\n"
                    "ridge to these per-window proxy targets (mess targets first), e.g.\n"
                    "brightness=timbre/spectral_centroid,timbre/spectral_rolloff; added to --out's set when it has one");
    cmd->add_option("--alpha", o.alpha, "Ridge penalty of --from-targets")->capture_default_str();
    cmd->add_flag("--replace", o.replace, "With --from-targets: refit an aspect --out's set already holds");
    cmd->add_option("--out", o.out, "Output directory of the aspect models")->required();
    cmd->add_option("--aspect", o.aspects, "Aspects (factors) to train (repeatable)")->capture_default_str();
    cmd->add_option("--rung", o.rung, "Top rung: identity | standardise | diagonal | linear | mlp")->capture_default_str();
    cmd->add_option("--loss", o.loss, "Training loss: triplet | infonce")->capture_default_str();
    cmd->add_option("--hidden", o.hidden, "Hidden units of the mlp rung (≥ 2 × --dim starts it at the linear map)")->capture_default_str();
    cmd->add_option("--temperature", o.temperature, "InfoNCE temperature")->capture_default_str();
    cmd->add_flag("--pick-best", o.pick_best, "Keep the rung of best validation accuracy, not the top one");
    cmd->add_option("--layers", o.layers, "Input layers (default: all)");
    cmd->add_option("--dim", o.dim, "Rank of the linear map")->capture_default_str();
    cmd->add_option("--epochs", o.epochs, "Epochs per trained rung")->capture_default_str();
    cmd->add_option("--triplets", o.triplets, "Triplets per epoch")->capture_default_str();
    cmd->add_option("--lr", o.learning_rate, "Adam learning rate")->capture_default_str();
    cmd->add_option("--seed", o.seed, "Seed (split, triplets, initialisation)")->capture_default_str();
    cmd->add_option("--restarts", o.restarts,
                    "Train the ladder this many times (seeds --seed, --seed + 1, ...; the same split) and keep the run of best\n"
                    "validation accuracy")->capture_default_str();
    cmd->add_flag("--ensemble", o.ensemble,
                  "With --restarts N and the mlp rung: keep the N runs as one model (outputs concatenated, rank N × --dim)\n"
                  "when that does at least as well on validation as the best run");
    cmd->add_flag("--quiet", o.quiet, "Only the ladder, not every epoch");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_train(ctx, o, json); }; });
}

}  // namespace mess::cli
