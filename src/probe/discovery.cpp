// Layer discovery: probe data from the feature store and proxy targets, per-layer probes, the nested
// weighted-sum probe and the shuffled-target control.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <variant>

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "linalg.hpp"
#include "mess/features.hpp"
#include "mess/npy.hpp"
#include "mess/probe.hpp"
#include "mess/targets.hpp"
#include "mess/util.hpp"

namespace mess {
namespace fs = std::filesystem;
using namespace probe_detail;

ProbeLevel parse_probe_level(const std::string& text) {
    if (text == "track") return ProbeLevel::track;
    if (text == "window") return ProbeLevel::window;
    throw_usage("unknown probe level '{}' (expected track or window)", text);
}
ProbeMode parse_probe_mode(const std::string& text) {
    if (text == "best_layer") return ProbeMode::best_layer;
    if (text == "weighted_sum") return ProbeMode::weighted_sum;
    if (text == "both") return ProbeMode::both;
    throw_usage("unknown probe mode '{}' (expected best_layer, weighted_sum or both)", text);
}
const char* to_string(ProbeLevel level) { return level == ProbeLevel::track ? "track" : "window"; }
const char* to_string(ProbeMode mode) {
    switch (mode) {
        case ProbeMode::best_layer: return "best_layer";
        case ProbeMode::weighted_sum: return "weighted_sum";
        default: return "both";
    }
}

fs::path default_results_path(const fs::path& data_root, const std::string& dataset, ProbeLevel level) {
    return data_root / "probing" / dataset /
           (level == ProbeLevel::track ? "layer_discovery_results.json" : "layer_discovery_results_window.json");
}

double probe_score(const nlohmann::json& metrics) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    if (!metrics.is_object() || metrics.value("undersampled", false)) return nan;
    for (const char* key : {"r2_score", "r2_mean"})
        if (auto it = metrics.find(key); it != metrics.end() && it->is_number()) return it->get<double>();
    return nan;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

namespace {

bool is_probe_target(const std::string& name, ProbeLevel level) {
    if (level == ProbeLevel::window) return name.starts_with("window/") && name != "window/start_sec" && name != "window/end_sec";
    return !name.starts_with("window/") && name != "midi/available";
}

struct TrackRows {
    std::string track_id;
    NpyArray features;            // [L, D] or [S, L, D]
    TargetSet targets;
};

// Why a track has no targets file of its dataset: none at all, or only one in the old flat layout, which
// may be another dataset's and is never read (mess/catalog.hpp, migrate_flat_targets).
std::string missing_targets_reason(const Dataset& dataset, const std::string& track_id) {
    std::error_code ec;
    if (!fs::exists(flat_targets_path(dataset, track_id), ec)) return "no proxy targets (run mess targets)";
    return fmt::format("no proxy targets in {}, only {} of the old shared layout, which may be another dataset's: run mess "
                       "targets (it adopts the file when it is provably this dataset's, else computes the targets again)",
                       dataset.targets_dir().string(), flat_targets_path(dataset, track_id).string());
}

// A track's features and targets, or the reason it cannot be probed.
std::variant<TrackRows, std::string> read_track_rows(const Dataset& dataset, const FeatureStore& store, const std::string& track_id,
                                                     ProbeLevel level) {
    const bool use_agg = level == ProbeLevel::track && store.has_view(View::aggregated, track_id);
    if (!use_agg && !store.has_view(View::segments, track_id))
        return std::string(level == ProbeLevel::track ? "no aggregated or segments view" : "no segments view");
    const fs::path tpath = dataset.targets_path(track_id);
    if (!fs::exists(tpath)) return missing_targets_reason(dataset, track_id);
    TrackRows row{track_id, store.read_view(use_agg ? View::aggregated : View::segments, track_id), read_targets(tpath)};
    if (level == ProbeLevel::window) {
        auto it = row.targets.arrays.find("window/start_sec");
        const auto s = static_cast<std::size_t>(row.features.shape[0]);
        if (it == row.targets.arrays.end() || it->second.size() != s)
            return fmt::format("window count differs: features {} windows, targets {}", s,
                               it == row.targets.arrays.end() ? std::string("none") : std::to_string(it->second.size()));
    }
    return row;
}

// The probed targets: the union of names, each with the width first seen (other widths count as missing).
std::vector<ProbeTarget> target_columns(const std::vector<TrackRows>& kept, ProbeLevel level) {
    std::map<std::string, std::size_t> widths;
    for (const auto& k : kept)
        for (const auto& [name, v] : k.targets.arrays)
            if (is_probe_target(name, level)) widths.emplace(name, level == ProbeLevel::window ? 1 : v.size());
    std::vector<ProbeTarget> out;
    for (const auto& [name, w] : widths) out.push_back({name, w, {}});
    return out;
}

// Appends one track's feature rows (track level: its [L, D] stack, the mean of its segments when only they
// exist; window level: every window) and target values.
void append_track(ProbeData& data, const TrackRows& k) {
    const auto f = k.features.to_float32();
    const std::size_t LD = data.layers * data.dim;
    const bool window_level = data.level == ProbeLevel::window;
    const std::size_t windows = window_level ? static_cast<std::size_t>(k.features.shape[0]) : 1;
    if (!window_level && k.features.shape.size() == 3) {
        std::vector<float> mean(LD);
        mean_of_rows(f.data(), k.features.shape[0], static_cast<std::int64_t>(LD), mean.data());
        data.features.insert(data.features.end(), mean.begin(), mean.end());
    } else {
        data.features.insert(data.features.end(), f.begin(), f.end());
    }
    for (std::size_t s = 0; s < windows; ++s) {
        data.row_ids.push_back(window_level ? make_clip_id(data.dataset, k.track_id, static_cast<int>(s)) : k.track_id);
        if (window_level) data.groups.push_back(k.track_id);
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (auto& target : data.targets) {
        auto it = k.targets.arrays.find(target.name);
        for (std::size_t s = 0; s < windows; ++s)
            for (std::size_t c = 0; c < target.width; ++c) {
                double v = nan;
                if (it != k.targets.arrays.end()) {
                    if (window_level) v = it->second[s];
                    else if (it->second.size() == target.width) v = it->second[c];
                }
                target.values.push_back(v);
            }
    }
}

}  // namespace

ProbeData load_probe_data(const Dataset& dataset, ProbeLevel level) {
    ProbeData data;
    data.dataset = dataset.id();
    data.level = level;
    std::vector<TrackRows> kept;
    auto tracks = dataset.tracks();
    std::sort(tracks.begin(), tracks.end(), [](const Track& a, const Track& b) { return a.track_id < b.track_id; });
    const FeatureStore store = dataset.features();
    for (const auto& t : tracks) {
        auto read = read_track_rows(dataset, store, t.track_id, level);
        if (auto* why = std::get_if<std::string>(&read)) {
            data.skipped_tracks[t.track_id] = *why;
            continue;
        }
        TrackRows& row = std::get<TrackRows>(read);
        const auto& shape = row.features.shape;
        const auto L = static_cast<std::size_t>(shape[shape.size() - 2]), D = static_cast<std::size_t>(shape.back());
        if (kept.empty()) {
            data.layers = L;
            data.dim = D;
        } else if (L != data.layers || D != data.dim) {
            throw_input("track {}: features have {} layers × {} dims, earlier tracks {} × {}", t.track_id, L, D, data.layers, data.dim);
        }
        kept.push_back(std::move(row));
    }
    if (kept.empty()) {
        if (data.skipped_tracks.empty()) throw_input("dataset {}: no tracks", dataset.id());
        const auto& [first, why] = *data.skipped_tracks.begin();
        throw_input("dataset {}: no track has both features and proxy targets ({} tracks skipped; {}: {})", dataset.id(),
                    data.skipped_tracks.size(), first, why);
    }
    data.targets = target_columns(kept, level);
    for (const auto& k : kept) append_track(data, k);
    return data;
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

namespace probe_detail {

Mat layer_rows(const ProbeData& data, std::size_t layer, const std::vector<std::size_t>& rows) {
    Mat X(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(data.dim));
    for (std::size_t i = 0; i < rows.size(); ++i) {
        const float* src = data.features.data() + (rows[i] * data.layers + layer) * data.dim;
        for (std::size_t j = 0; j < data.dim; ++j) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = src[j];
    }
    return X;
}

Mat fused_rows(const ProbeData& data, const std::vector<double>& w, const std::vector<std::size_t>& rows) {
    Mat X(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(data.dim));
    std::vector<float> fused(data.dim);
    for (std::size_t i = 0; i < rows.size(); ++i) {
        fuse_layers(data.features.data() + rows[i] * data.layers * data.dim, data.layers, data.dim, w, fused.data());
        for (std::size_t j = 0; j < data.dim; ++j) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = fused[j];
    }
    return X;
}

Mat target_rows(const ProbeTarget& t, const std::vector<std::size_t>& rows) {
    Mat Y(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(t.width));
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t c = 0; c < t.width; ++c) Y(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = t.values[rows[i] * t.width + c];
    return Y;
}

// The rows where every column of `t` is finite.
std::vector<std::size_t> valid_rows(const ProbeTarget& t, std::size_t n) {
    std::vector<std::size_t> rows;
    for (std::size_t r = 0; r < n; ++r) {
        bool ok = true;
        for (std::size_t c = 0; c < t.width && ok; ++c) ok = std::isfinite(t.values[r * t.width + c]);
        if (ok) rows.push_back(r);
    }
    return rows;
}

}  // namespace probe_detail

namespace {

struct Problem {
    const ProbeData& data;
    const DiscoveryParams& params;

    Mat layer_rows(std::size_t layer, const std::vector<std::size_t>& rows) const { return probe_detail::layer_rows(data, layer, rows); }

    // The fused vector of each row: fuse_layers, the one fusion search uses too.
    Mat fused_rows(const std::vector<double>& w, const std::vector<std::size_t>& rows) const { return probe_detail::fused_rows(data, w, rows); }

    // Folds over a subset of rows (indices into the subset). Empty when undersampled.
    Folds folds_for(const std::vector<std::size_t>& rows, std::uint32_t seed) const {
        if (data.groups.empty()) {
            if (rows.size() < static_cast<std::size_t>(params.folds)) return {};
            return shuffled_kfold(rows.size(), params.folds, seed);
        }
        std::vector<std::string> g;
        for (auto r : rows) g.push_back(data.groups[r]);
        const std::size_t n_groups = std::set<std::string>(g.begin(), g.end()).size();
        if (n_groups < 2 || rows.size() < static_cast<std::size_t>(params.folds)) return {};
        return group_kfold(g, static_cast<int>(std::min<std::size_t>(n_groups, static_cast<std::size_t>(params.folds))));
    }
};


std::span<const double> column_span(const Eigen::VectorXd& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

nlohmann::json scalar_metrics(const Eigen::VectorXd& truth, const Eigen::VectorXd& pred) {
    const ScalarScores s = score_scalar(column_span(truth), column_span(pred));
    return {{"r2_score", s.r2}, {"correlation", s.correlation}, {"rmse", s.rmse}};
}

BandParams band_params(const DiscoveryParams& p) { return {p.bootstrap, p.band_level, p.seed}; }

// The track (0..G-1) of each of `rows`: the rows themselves at track level.
std::vector<std::size_t> row_groups(const ProbeData& data, const std::vector<std::size_t>& rows) {
    if (data.groups.empty()) {
        std::vector<std::size_t> ids(rows.size());
        std::iota(ids.begin(), ids.end(), std::size_t{0});
        return ids;
    }
    std::vector<std::string> g;
    for (auto r : rows) g.push_back(data.groups[r]);
    return group_indices(g);
}

nlohmann::json curve_metrics(const CurveScores& s) {
    return {{"r2_mean", s.r2_mean}, {"r2_pc1", s.r2_pc1}, {"rmse_mean", s.rmse_mean}};
}

// The score a fit is selected by: pooled R² (scalars) or mean per-column R² (curves).
double cv_score(const Mat& X, const Mat& Y, const Folds& folds, double alpha) {
    return mean_column_r2(Y, cross_val_predict(X, Y, folds, alpha));
}

std::vector<double> softmax(const std::vector<double>& base, double tau) {
    std::vector<double> w(base.size());
    const double mx = *std::max_element(base.begin(), base.end());
    double sum = 0;
    for (std::size_t i = 0; i < base.size(); ++i) sum += (w[i] = std::exp((base[i] - mx) / tau));
    for (double& x : w) x /= sum;
    return w;
}

struct Selection {
    std::vector<double> weights;
    double score = -std::numeric_limits<double>::infinity();
    std::string base;
    double temperature = 0;
};

// The weighted-sum grid on `rows` with `folds` (over the rows): warm start from per-layer scores.
Selection select_weights(const Problem& p, const ProbeTarget& t, const std::vector<std::size_t>& rows, const Folds& folds) {
    const Mat Y = target_rows(t, rows);
    std::vector<double> layer_score(p.data.layers);
    for (std::size_t l = 0; l < p.data.layers; ++l) layer_score[l] = cv_score(p.layer_rows(l, rows), Y, folds, p.params.alpha);
    std::vector<double> warm(layer_score.size()), spike(layer_score.size(), 0.0);
    for (std::size_t l = 0; l < warm.size(); ++l) warm[l] = std::max(0.0, layer_score[l]);
    spike[static_cast<std::size_t>(std::max_element(layer_score.begin(), layer_score.end()) - layer_score.begin())] = 1.0;
    Selection best;
    auto consider = [&](std::vector<double> w, const char* base, double tau) {
        const double s = cv_score(p.fused_rows(w, rows), Y, folds, p.params.alpha);
        if (s > best.score) best = {std::move(w), s, base, tau};
    };
    consider(std::vector<double>(p.data.layers, 1.0 / static_cast<double>(p.data.layers)), "uniform", 0.0);
    for (double tau : p.params.temperatures) {
        consider(softmax(warm, tau), "warm", tau);
        consider(softmax(spike, tau), "spike", tau);
    }
    return best;
}

nlohmann::json weighted_sum_probe(const Problem& p, const ProbeTarget& t, const std::vector<std::size_t>& rows,
                                  const Folds& outer, const std::vector<std::size_t>& groups) {
    const Mat Y = target_rows(t, rows);
    Mat oof(Y.rows(), Y.cols());
    for (std::size_t k = 0; k < outer.size(); ++k) {
        const auto train = complement(outer[k], rows.size());
        std::vector<std::size_t> train_rows, test_rows;
        for (auto i : train) train_rows.push_back(rows[i]);
        for (auto i : outer[k]) test_rows.push_back(rows[i]);
        Folds inner = p.folds_for(train_rows, p.params.seed + static_cast<std::uint32_t>(k) + 1);
        if (inner.empty()) return {{"undersampled", true}};
        const Selection s = select_weights(p, t, train_rows, inner);
        const RidgeModel m = fit_ridge(p.fused_rows(s.weights, train_rows), take_rows(Y, train), p.params.alpha);
        const Mat pred = predict_ridge(m, p.fused_rows(s.weights, test_rows));
        for (std::size_t i = 0; i < outer[k].size(); ++i) oof.row(static_cast<Eigen::Index>(outer[k][i])) = pred.row(static_cast<Eigen::Index>(i));
    }
    nlohmann::json out;
    if (t.width == 1) {
        out = scalar_metrics(Y.col(0), oof.col(0));
    } else {
        out = {{"r2_mean", mean_column_r2(Y, oof)}, {"rmse_mean", std::sqrt((Y - oof).squaredNorm() / static_cast<double>(Y.size()))}};
    }
    out.update(confidence_fields(Y, oof, outer, groups, band_params(p.params)));
    const Selection final_sel = select_weights(p, t, rows, outer);  // the weights reported: chosen on all rows
    out["layer_weights"] = final_sel.weights;
    out["selection"] = {{"base", final_sel.base}, {"temperature", final_sel.temperature}, {"cv_score_in_sample", final_sel.score}};
    out["nested_cv"] = true;
    return out;
}

// Fisher-Yates with MT19937 draws, so permutations are identical on every platform.
std::vector<std::size_t> permutation(std::size_t n, std::uint32_t seed) {
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    std::mt19937 mt(seed);
    for (std::size_t i = n; i > 1; --i) std::swap(idx[i - 1], idx[static_cast<std::size_t>(mt() % i)]);
    return idx;
}

}  // namespace

namespace {

void check_discovery_input(const ProbeData& data, const DiscoveryParams& params) {
    if (!(params.alpha > 0) || !std::isfinite(params.alpha)) throw_usage("--alpha must be a positive number, got {}", params.alpha);
    if (params.folds < 2) throw_usage("--folds must be at least 2, got {}", params.folds);
    if (params.control_permutations < 0) throw_usage("control permutations must be ≥ 0");
    check_band_params(band_params(params));
    for (double tau : params.temperatures)
        if (!(tau > 0)) throw_usage("weighted-sum temperatures must be positive, got {}", tau);
    const std::size_t n = data.rows();
    if (n == 0 || data.layers == 0 || data.dim == 0) throw_input("probe data is empty");
    if (data.features.size() != n * data.layers * data.dim)
        throw_input("probe features hold {} values, expected {} rows × {} layers × {} dims", data.features.size(), n, data.layers, data.dim);
    if (!data.groups.empty() && data.groups.size() != n) throw_input("probe data has {} groups for {} rows", data.groups.size(), n);
    for (const auto& t : data.targets)
        if (t.width == 0 || t.values.size() != n * t.width)
            throw_input("target {} holds {} values, expected {} rows × {}", t.name, t.values.size(), n, t.width);
    if (first_non_finite(data.features) < data.features.size()) throw_input("probe features contain non-finite values");
}


bool varies_over(const ProbeTarget& t, const std::vector<std::size_t>& rows) {
    for (std::size_t c = 0; c < t.width; ++c) {
        double mean = 0, var = 0;
        for (auto r : rows) mean += t.values[r * t.width + c];
        mean /= static_cast<double>(rows.size());
        for (auto r : rows) var += std::pow(t.values[r * t.width + c] - mean, 2);
        if (std::sqrt(var / static_cast<double>(rows.size())) > 1e-10) return true;
    }
    return false;
}

// One probed target: its valid rows, their folds, and the fields every result of it carries.
struct Job {
    const ProbeTarget* target;
    std::vector<std::size_t> rows;
    nlohmann::json base;  // n_valid, coverage, n_tracks
    Folds folds;
    std::vector<std::size_t> groups;  // the track (0..G-1) of each row

};

nlohmann::json undersampled() { return {{"undersampled", true}}; }

// Layer discovery in stages: per-layer probes (scalars jointly, then curves), the weighted sum, the
// shuffled-target control, and the run record.
class Discovery {
public:
    Discovery(const ProbeData& data, const DiscoveryParams& params) : data_(data), params_(params), problem_{data, params} {}

    nlohmann::json run() {
        make_jobs();
        for (std::size_t l = 0; l < data_.layers; ++l) results_[std::to_string(l)] = nlohmann::json::object();
        probe_scalar_layers();
        probe_curve_layers();
        if (params_.mode != ProbeMode::best_layer) results_["weighted_sum"] = probe_weighted_sums();
        if (params_.control_permutations > 0) results_["control"] = shuffled_controls();
        results_["skipped_targets"] = std::move(skipped_);
        results_["run"] = run_record();
        return std::move(results_);
    }

private:
    // Valid rows per target; constant or empty targets are skipped with a reason.
    void make_jobs() {
        const std::size_t n = data_.rows();
        for (const auto& t : data_.targets) {
            std::vector<std::size_t> rows = valid_rows(t, n);
            if (rows.empty()) {
                skipped_[t.name] = "no valid rows";
            } else if (!varies_over(t, rows)) {
                skipped_[t.name] = "constant over the valid rows";
            } else {
                std::vector<std::size_t> groups = row_groups(data_, rows);
                const std::size_t tracks = groups.empty() ? 0 : *std::max_element(groups.begin(), groups.end()) + 1;
                nlohmann::json base = {{"n_valid", rows.size()}, {"coverage", static_cast<double>(rows.size()) / static_cast<double>(n)},
                                       {"n_tracks", tracks}};
                Folds folds = problem_.folds_for(rows, params_.seed);
                jobs_.push_back({&t, std::move(rows), std::move(base), std::move(folds), std::move(groups)});
            }
        }
        const bool ws = params_.mode != ProbeMode::best_layer;
        total_ = static_cast<std::int64_t>(jobs_.size()) *
                 (static_cast<std::int64_t>(data_.layers) + (ws ? 1 : 0) + (params_.control_permutations > 0 ? 1 : 0));
    }

    void tick(std::int64_t k) {
        done_ += k;
        if (params_.on_progress) params_.on_progress(done_, total_);
    }

    void record_layer(const Job& j, std::size_t l, nlohmann::json m) {
        m.update(j.base);
        const double s = probe_score(m);
        auto& b = best_layer_.try_emplace(j.target->name, -1, -std::numeric_limits<double>::infinity()).first->second;
        if (std::isfinite(s) && s > b.second) b = {static_cast<int>(l), s};
        results_[std::to_string(l)][j.target->name] = std::move(m);
    }

    // Scalars sharing a set of valid rows are fitted jointly (one factorisation per fold and layer).
    void probe_scalar_layers() {
        std::map<std::vector<std::size_t>, std::vector<const Job*>> groups;
        for (const auto& j : jobs_)
            if (j.target->width == 1) groups[j.rows].push_back(&j);
        for (const auto& [rows, group] : groups) {
            const Folds& folds = group.front()->folds;
            Mat Y(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(group.size()));
            for (std::size_t k = 0; k < group.size(); ++k) Y.col(static_cast<Eigen::Index>(k)) = target_rows(*group[k]->target, rows).col(0);
            for (std::size_t l = 0; l < data_.layers; ++l) {
                const Mat P = folds.empty() ? Mat() : cross_val_predict(problem_.layer_rows(l, rows), Y, folds, params_.alpha);
                for (std::size_t k = 0; k < group.size(); ++k) {
                    const auto col = static_cast<Eigen::Index>(k);
                    if (folds.empty()) {
                        record_layer(*group[k], l, undersampled());
                        continue;
                    }
                    nlohmann::json m = scalar_metrics(Y.col(col), P.col(col));
                    m.update(confidence_fields(Y.col(col), P.col(col), folds, group[k]->groups, band_params(params_)));
                    record_layer(*group[k], l, std::move(m));
                }
                tick(static_cast<std::int64_t>(group.size()));
            }
        }
    }

    void probe_curve_layers() {
        for (const auto& j : jobs_) {
            if (j.target->width == 1) continue;
            const Mat Y = target_rows(*j.target, j.rows);
            for (std::size_t l = 0; l < data_.layers; ++l) {
                if (j.folds.empty()) {
                    record_layer(j, l, undersampled());
                } else {
                    Mat oof;
                    nlohmann::json m = curve_metrics(probe_curve(problem_.layer_rows(l, j.rows), Y, j.folds, params_.alpha, &oof));
                    m.update(confidence_fields(Y, oof, j.folds, j.groups, band_params(params_)));
                    record_layer(j, l, std::move(m));
                }
                tick(1);
            }
        }
    }

    nlohmann::json probe_weighted_sums() {
        nlohmann::json ws = nlohmann::json::object();
        for (const auto& j : jobs_) {
            nlohmann::json m = j.folds.empty() ? undersampled() : weighted_sum_probe(problem_, *j.target, j.rows, j.folds, j.groups);
            m.update(j.base);
            if (auto b = best_layer_.find(j.target->name); b != best_layer_.end() && b->second.first >= 0 && std::isfinite(probe_score(m)))
                m["r2_gain_over_best_single"] = probe_score(m) - b->second.second;
            ws[j.target->name] = std::move(m);
            tick(1);
        }
        return ws;
    }

    // The best layer's score on shuffled targets: what chance alone reaches with these rows and folds.
    nlohmann::json shuffled_control(const Job& j, int layer) const {
        const Mat X = problem_.layer_rows(static_cast<std::size_t>(layer), j.rows);
        const Mat Y = target_rows(*j.target, j.rows);
        double sum = 0, mx = -std::numeric_limits<double>::infinity();
        for (int k = 0; k < params_.control_permutations; ++k) {
            const auto perm = permutation(j.rows.size(), params_.seed + 1000u + static_cast<std::uint32_t>(k));
            const double s = cv_score(X, take_rows(Y, perm), j.folds, params_.alpha);
            sum += s;
            mx = std::max(mx, s);
        }
        return {{"layer", layer}, {"r2_mean", sum / params_.control_permutations}, {"r2_max", mx},
                {"permutations", params_.control_permutations}};
    }

    nlohmann::json shuffled_controls() {
        nlohmann::json control = nlohmann::json::object();
        for (const auto& j : jobs_) {
            const auto b = best_layer_.find(j.target->name);
            if (!j.folds.empty() && b != best_layer_.end() && b->second.first >= 0)
                control[j.target->name] = shuffled_control(j, b->second.first);
            tick(1);
        }
        return control;
    }

    nlohmann::json run_record() const {
        const std::size_t n = data_.rows();
        std::set<std::string> groups(data_.groups.begin(), data_.groups.end());
        nlohmann::json names = nlohmann::json::array();
        for (const auto& j : jobs_) names.push_back(j.target->name);
        return {{"dataset", data_.dataset},
                {"level", to_string(data_.level)},
                {"alpha", params_.alpha},
                {"folds", params_.folds},
                {"seed", params_.seed},
                {"mode", to_string(params_.mode)},
                {"cv", data_.groups.empty() ? "shuffled_kfold" : "group_kfold_by_track"},
                {"n_rows", n},
                {"n_tracks", data_.groups.empty() ? n : groups.size()},
                {"layers", data_.layers},
                {"dim", data_.dim},
                {"targets", std::move(names)},
                {"skipped_tracks", data_.skipped_tracks},
                {"band", {{"method", "bootstrap_tracks_percentile"}, {"level", params_.band_level}, {"resamples", params_.bootstrap},
                          {"seed", params_.seed}}}};
    }

    const ProbeData& data_;
    const DiscoveryParams& params_;
    const Problem problem_;
    std::vector<Job> jobs_;
    nlohmann::json results_ = nlohmann::json::object(), skipped_ = nlohmann::json::object();
    std::map<std::string, std::pair<int, double>> best_layer_;  // target → (layer, score)
    std::int64_t done_ = 0, total_ = 0;
};

}  // namespace

nlohmann::json discover_layers(const ProbeData& data, const DiscoveryParams& params) {
    check_discovery_input(data, params);
    return Discovery(data, params).run();
}

}  // namespace mess
