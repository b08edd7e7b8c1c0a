// mess train same-work (the same-work geometry in closed form: within-work whitening, LDA) and
// mess eval same-work (track and passage MAP with and without each rung).
#include <fmt/format.h>

#include "aspects_cli.hpp"
#include "catalog_cli.hpp"
#include "cli.hpp"
#include "mess/aspects.hpp"
#include "mess/model.hpp"

namespace mess::cli {

namespace fs = std::filesystem;

namespace {

struct SameWorkOptions {
    DatasetChoice data;
    std::string labels, out, models, rung = "lda";
    std::vector<int> layers;
    SameWorkParams params;
    int cv = 0;                                   // folds over works (0: no cross-validation)
    std::vector<double> shrinkages{0.01, 0.03, 0.1, 0.3};  // candidates of --cv
    std::vector<std::int64_t> dims{16, 32, 64, 128};
};

nlohmann::json eval_json(const SameWorkEval& e) {
    return {{"track_map", e.track_map}, {"passage_map", e.passage_map}, {"track_queries", e.track_queries}, {"passage_queries", e.passage_queries}};
}

// One row per rung: track and passage MAP, each against the rung before.
nlohmann::json print_rungs(const std::vector<AspectModel>& rungs, const std::vector<std::string>& names, const FactorWindows& data, bool json) {
    nlohmann::json out = nlohmann::json::object();
    if (!json) fmt::print("{:<13}{:>10}{:>9}{:>13}{:>9}\n", "rung", "track MAP", "Δ", "passage MAP", "Δ");
    SameWorkEval previous;
    for (std::size_t i = 0; i < rungs.size(); ++i) {
        const SameWorkEval e = evaluate_same_work(rungs[i], data);
        out[names[i]] = eval_json(e);
        if (!json)
            fmt::print("{:<13}{:>10.3f}{:>9}{:>13.3f}{:>9}\n", names[i], e.track_map, i ? fmt::format("{:+.3f}", e.track_map - previous.track_map) : "",
                       e.passage_map, i ? fmt::format("{:+.3f}", e.passage_map - previous.passage_map) : "");
        previous = e;
    }
    return out;
}

// --cv: every (shrinkage, dim) candidate scored by cross-validation over the works; the best mean of track
// and passage MAP wins (ties: the first). Returns the chosen parameters and the table as JSON.
std::pair<SameWorkParams, nlohmann::json> choose_by_cv(const FactorWindows& data, SameWorkRung rung, const SameWorkOptions& o, bool json) {
    std::vector<SameWorkParams> grid;
    for (double s : o.shrinkages)
        for (std::int64_t k : rung == SameWorkRung::lda ? o.dims : std::vector<std::int64_t>{o.params.out_dim})
            grid.push_back(SameWorkParams{k, s, o.params.bin_seconds});
    const std::vector<SameWorkCvRow> rows = cross_validate_same_work(data, rung, grid, o.cv);
    nlohmann::json table = nlohmann::json::array();
    std::size_t best = 0;
    if (!json) fmt::print("{}-fold cross-validation over works ({}):\n{:>10}{:>6}{:>11}{:>13}\n", o.cv, to_string(rung), "shrinkage", "dim", "track MAP", "passage MAP");
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const SameWorkCvRow& r = rows[i];
        table.push_back({{"shrinkage", r.params.shrinkage}, {"dim", r.params.out_dim}, {"track_map", r.track_map}, {"passage_map", r.passage_map}});
        if (!json) fmt::print("{:>10}{:>6}{:>11.3f}{:>13.3f}\n", r.params.shrinkage, r.params.out_dim, r.track_map, r.passage_map);
        if (r.track_map + r.passage_map > rows[best].track_map + rows[best].passage_map) best = i;
    }
    if (!json) fmt::print("chosen: shrinkage {}, dim {}\n", rows[best].params.shrinkage, rows[best].params.out_dim);
    return {rows[best].params, {{"folds", o.cv}, {"candidates", table}, {"chosen", table[best]}}};
}

int run_train_same_work(const Context& ctx, const SameWorkOptions& o, bool json) {
    const Dataset ds = open_dataset(ctx, o.data);
    const FactorWindows data = load_work_windows(ds.features(), o.labels, o.layers);
    const SameWorkRung top = parse_same_work_rung(o.rung);
    nlohmann::json cv;
    SameWorkParams params = o.params;
    if (o.cv > 0 && top >= SameWorkRung::wccn) std::tie(params, cv) = choose_by_cv(data, top, o, json);
    RunRecord run(ctx, "train", {{"dataset", ds.id()}, {"labels", o.labels}, {"geometry", "same_work"}, {"rung", o.rung}, {"dim", params.out_dim},
                                 {"shrinkage", params.shrinkage}, {"bin_seconds", params.bin_seconds}, {"cv_folds", o.cv}});
    if (!json) fmt::print("{} windows of {} tracks, {} inputs, encoder {}; in-sample, each rung against the one before:\n", data.n, data.track_ids.size(),
                          data.dim, data.encoder);
    std::vector<AspectModel> rungs;
    std::vector<std::string> names;
    for (SameWorkRung r : {SameWorkRung::identity, SameWorkRung::standardise, SameWorkRung::wccn, SameWorkRung::lda})
        if (r <= top) rungs.push_back(fit_same_work(data, r, params)), names.emplace_back(to_string(r));
    nlohmann::json report = {{"windows", data.n}, {"encoder", data.encoder}, {"in_sample", print_rungs(rungs, names, data, json)}};
    if (!cv.is_null()) report["cross_validation"] = cv;
    AspectModel model = rungs.back();
    model.info["trained_on"] = ds.id();
    model.info["labels"] = fs::path(o.labels).filename().string();
    if (!cv.is_null()) model.info["cross_validation"] = cv["chosen"];
    AspectSet set = new_aspect_set(data.encoder, data.layers, data.layer_dim);
    set.aspects["same_work"] = std::move(model);
    save_aspect_set(set, o.out);
    run.add_output(o.out);
    run.finish(report);
    if (json) print_json(report);
    else fmt::print("same-work model ({}) → {}/aspects.json\n", o.rung, o.out);
    return 0;
}

int run_eval_same_work(const Context& ctx, const SameWorkOptions& o, bool json) {
    const AspectSet set = load_aspect_set(o.models);
    const auto it = set.aspects.find("same_work");
    if (it == set.aspects.end()) throw_input("{}: no same_work model (mess train same-work --out)", o.models);
    const Dataset ds = open_dataset(ctx, o.data);
    const FactorWindows data = load_work_windows(ds.features(), o.labels, set.layers);
    check_aspect_set_for(set, data.encoder, ds.id(), o.models);
    const AspectModel& m = it->second;
    const std::vector<AspectModel> rungs = rungs_of(m);
    std::vector<std::string> names;
    for (const AspectModel& r : rungs) names.push_back(r.rung == AspectRung::linear ? r.info.value("method", "linear") : to_string(r.rung));
    nlohmann::json report = {{"schema", "mess-eval-same-work/1"}, {"dataset", ds.id()}, {"models", o.models}, {"windows", data.n},
                             {"rungs", print_rungs(rungs, names, data, json)}};
    if (!o.out.empty()) write_file_atomic(o.out, report.dump(2) + "\n");
    if (json) print_json(report);
    return 0;
}

}  // namespace

void register_train_same_work(CLI::App* train, Context& ctx) {
    static SameWorkOptions t;
    auto* cmd = train->add_subcommand("same-work",
        "The same-work geometry in closed form on a corpus of several performances per work (labels: id,\n"
        "work_id, optional time_map as mess eval reads them): windows of one work at one aligned moment\n"
        "(--bin seconds of source time) form a class; the ladder identity → standardise → wccn (within-class\n"
        "whitening) → lda (--dim directions); prints track and passage MAP per rung (in-sample) and saves the\n"
        "top rung as aspect \"same_work\" (mess/aspects.hpp), for mess index build --aspect-models.");
    add_dataset_options(cmd, t.data);
    cmd->add_option("--labels", t.labels, "labels.json of the corpus")->required();
    cmd->add_option("--out", t.out, "Output directory of the model")->required();
    cmd->add_option("--rung", t.rung, "Top rung: identity | standardise | wccn | lda")->capture_default_str();
    cmd->add_option("--layers", t.layers, "Input layers (default: all)");
    cmd->add_option("--dim", t.params.out_dim, "LDA directions")->capture_default_str();
    cmd->add_option("--shrinkage", t.params.shrinkage, "Shrinkage of the within-class covariance, in [0, 1]")->capture_default_str();
    cmd->add_option("--bin", t.params.bin_seconds, "Class width in source seconds")->capture_default_str();
    cmd->add_option("--cv", t.cv, "Choose --shrinkage and --dim by N-fold cross-validation over the works (0: off)")->capture_default_str();
    cmd->add_option("--shrinkage-grid", t.shrinkages, "Shrinkages tried by --cv")->capture_default_str();
    cmd->add_option("--dim-grid", t.dims, "Dimensions tried by --cv (lda)")->capture_default_str();
    bool& tjson = add_json_flag(cmd);
    cmd->callback([&ctx, &tjson] { ctx.run = [&ctx, &tjson] { return run_train_same_work(ctx, t, tjson); }; });
}

void register_eval_same_work(CLI::App* eval, Context& ctx) {
    static SameWorkOptions e;
    auto* ev = eval->add_subcommand("same-work",
        "A same-work model on a corpus never used to train it: track MAP (relevant: the other performances of\n"
        "the work) and passage MAP (relevant: their windows within 2.5 s of the query's aligned moment), for\n"
        "identity, standardise and the model's rung, each against the one before.");
    add_dataset_options(ev, e.data);
    ev->add_option("--labels", e.labels, "labels.json of the corpus")->required();
    ev->add_option("--models", e.models, "Model directory (mess train same-work --out)")->required();
    ev->add_option("--out", e.out, "Write the JSON report here (atomically)");
    bool& ejson = add_json_flag(ev);
    ev->callback([&ctx, &ejson] { ctx.run = [&ctx, &ejson] { return run_eval_same_work(ctx, e, ejson); }; });
}

}  // namespace mess::cli
