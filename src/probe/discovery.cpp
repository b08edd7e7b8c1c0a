// Layer discovery: probe data from the feature store and proxy targets, per-layer probes, the nested
// weighted-sum probe and the shuffled-target control.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "linalg.hpp"
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

}  // namespace

ProbeData load_probe_data(const Dataset& dataset, ProbeLevel level) {
    ProbeData data;
    data.dataset = dataset.id();
    data.level = level;
    std::vector<TrackRows> kept;
    auto tracks = dataset.tracks();
    std::sort(tracks.begin(), tracks.end(), [](const Track& a, const Track& b) { return a.track_id < b.track_id; });
    const fs::path target_dir = dataset.data_root() / "proxy_targets";
    for (const auto& t : tracks) {
        const fs::path agg = dataset.view_path("aggregated", t.track_id), seg = dataset.view_path("segments", t.track_id);
        const fs::path tpath = target_dir / (t.track_id + ".targets.npz");
        const bool use_agg = level == ProbeLevel::track && fs::exists(agg);
        if (!use_agg && !fs::exists(seg)) {
            data.skipped_tracks[t.track_id] = level == ProbeLevel::track ? "no aggregated or segments view" : "no segments view";
            continue;
        }
        if (!fs::exists(tpath)) {
            data.skipped_tracks[t.track_id] = "no proxy targets (run mess targets)";
            continue;
        }
        TrackRows row{t.track_id, read_npy(use_agg ? agg : seg), read_targets(tpath)};
        const auto& shape = row.features.shape;
        const std::size_t want_rank = use_agg ? 2 : 3;
        if (shape.size() != want_rank)
            throw_input("{}: expected a {}-D view, got {}", (use_agg ? agg : seg).string(), want_rank, row.features.describe());
        if (level == ProbeLevel::window) {
            auto it = row.targets.arrays.find("window/start_sec");
            const std::size_t s = static_cast<std::size_t>(shape[0]);
            if (it == row.targets.arrays.end() || it->second.size() != s) {
                data.skipped_tracks[t.track_id] = fmt::format(
                    "window count differs: features {} windows, targets {}", s,
                    it == row.targets.arrays.end() ? std::string("none") : std::to_string(it->second.size()));
                continue;
            }
        }
        const auto L = static_cast<std::size_t>(shape[shape.size() - 2]), D = static_cast<std::size_t>(shape.back());
        if (kept.empty()) {
            data.layers = L;
            data.dim = D;
        } else if (L != data.layers || D != data.dim) {
            throw_input("track {}: features have {} layers × {} dims, earlier tracks {} × {}", t.track_id, L, D, data.layers, data.dim);
        }
        kept.push_back(std::move(row));
    }
    if (kept.empty()) throw_input("dataset {}: no track has both features and proxy targets ({} tracks skipped)",
                                  dataset.id(), data.skipped_tracks.size());

    // Target names (union) and widths (first seen); other widths count as missing.
    std::map<std::string, std::size_t> widths;
    for (const auto& k : kept)
        for (const auto& [name, v] : k.targets.arrays)
            if (is_probe_target(name, level)) widths.emplace(name, level == ProbeLevel::window ? 1 : v.size());
    for (const auto& [name, w] : widths) data.targets.push_back({name, w, {}});

    const std::size_t LD = data.layers * data.dim;
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const auto& k : kept) {
        const auto f = k.features.to_float32();
        const std::size_t windows = level == ProbeLevel::window ? static_cast<std::size_t>(k.features.shape[0]) : 1;
        if (level == ProbeLevel::track) {
            if (k.features.shape.size() == 2) {
                data.features.insert(data.features.end(), f.begin(), f.end());
            } else {  // mean of the segments, accumulated in double
                const std::size_t s = static_cast<std::size_t>(k.features.shape[0]);
                std::vector<double> acc(LD, 0.0);
                for (std::size_t i = 0; i < s; ++i)
                    for (std::size_t j = 0; j < LD; ++j) acc[j] += f[i * LD + j];
                for (double a : acc) data.features.push_back(static_cast<float>(a / static_cast<double>(s)));
            }
            data.row_ids.push_back(k.track_id);
        } else {
            data.features.insert(data.features.end(), f.begin(), f.end());
            for (std::size_t s = 0; s < windows; ++s) {
                data.row_ids.push_back(make_clip_id(dataset.id(), k.track_id, static_cast<int>(s)));
                data.groups.push_back(k.track_id);
            }
        }
        for (auto& target : data.targets) {
            auto it = k.targets.arrays.find(target.name);
            for (std::size_t s = 0; s < windows; ++s) {
                for (std::size_t c = 0; c < target.width; ++c) {
                    double v = nan;
                    if (it != k.targets.arrays.end()) {
                        if (level == ProbeLevel::window) v = it->second[s];
                        else if (it->second.size() == target.width) v = it->second[c];
                    }
                    target.values.push_back(v);
                }
            }
        }
    }
    return data;
}

// ---------------------------------------------------------------------------------------------
// Discovery
// ---------------------------------------------------------------------------------------------

namespace {

struct Problem {
    const ProbeData& data;
    const DiscoveryParams& params;

    Mat layer_rows(std::size_t layer, const std::vector<std::size_t>& rows) const {
        Mat X(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(data.dim));
        for (std::size_t i = 0; i < rows.size(); ++i) {
            const float* src = data.features.data() + (rows[i] * data.layers + layer) * data.dim;
            for (std::size_t j = 0; j < data.dim; ++j) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = src[j];
        }
        return X;
    }

    // Σ_l w_l · x_l / ‖x_l‖ per row — the same fusion search uses.
    Mat fused_rows(const std::vector<double>& w, const std::vector<std::size_t>& rows) const {
        Mat X = Mat::Zero(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(data.dim));
        for (std::size_t i = 0; i < rows.size(); ++i) {
            for (std::size_t l = 0; l < data.layers; ++l) {
                if (w[l] == 0) continue;
                const float* src = data.features.data() + (rows[i] * data.layers + l) * data.dim;
                double norm = 0;
                for (std::size_t j = 0; j < data.dim; ++j) norm += static_cast<double>(src[j]) * src[j];
                if (norm <= 0) continue;
                const double s = w[l] / std::sqrt(norm);
                for (std::size_t j = 0; j < data.dim; ++j) X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) += s * src[j];
            }
        }
        return X;
    }

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

Mat target_rows(const ProbeTarget& t, const std::vector<std::size_t>& rows) {
    Mat Y(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(t.width));
    for (std::size_t i = 0; i < rows.size(); ++i)
        for (std::size_t c = 0; c < t.width; ++c) Y(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(c)) = t.values[rows[i] * t.width + c];
    return Y;
}

std::span<const double> column_span(const Eigen::VectorXd& v) { return {v.data(), static_cast<std::size_t>(v.size())}; }

nlohmann::json scalar_metrics(const Eigen::VectorXd& truth, const Eigen::VectorXd& pred) {
    const ScalarScores s = score_scalar(column_span(truth), column_span(pred));
    return {{"r2_score", s.r2}, {"correlation", s.correlation}, {"rmse", s.rmse}};
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
                                  const Folds& outer) {
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

nlohmann::json discover_layers(const ProbeData& data, const DiscoveryParams& params) {
    if (!(params.alpha > 0) || !std::isfinite(params.alpha)) throw_usage("--alpha must be a positive number, got {}", params.alpha);
    if (params.folds < 2) throw_usage("--folds must be at least 2, got {}", params.folds);
    if (params.control_permutations < 0) throw_usage("control permutations must be ≥ 0");
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
    for (float v : data.features)
        if (!std::isfinite(v)) throw_input("probe features contain non-finite values");

    const Problem problem{data, params};
    const bool do_ws = params.mode != ProbeMode::best_layer;  // per-layer probes always run (best layer, gains, controls)
    nlohmann::json results = nlohmann::json::object(), skipped = nlohmann::json::object();
    for (std::size_t l = 0; l < data.layers; ++l) results[std::to_string(l)] = nlohmann::json::object();

    // Valid rows per target; constant or empty targets are skipped with a reason.
    struct Job {
        const ProbeTarget* target;
        std::vector<std::size_t> rows;
        nlohmann::json base;  // n_valid, coverage
    };
    std::vector<Job> jobs;
    for (const auto& t : data.targets) {
        std::vector<std::size_t> rows;
        for (std::size_t r = 0; r < n; ++r) {
            bool ok = true;
            for (std::size_t c = 0; c < t.width && ok; ++c) ok = std::isfinite(t.values[r * t.width + c]);
            if (ok) rows.push_back(r);
        }
        if (rows.empty()) {
            skipped[t.name] = "no valid rows";
            continue;
        }
        bool varies = false;
        for (std::size_t c = 0; c < t.width && !varies; ++c) {
            double mean = 0, var = 0;
            for (auto r : rows) mean += t.values[r * t.width + c];
            mean /= static_cast<double>(rows.size());
            for (auto r : rows) var += std::pow(t.values[r * t.width + c] - mean, 2);
            varies = std::sqrt(var / static_cast<double>(rows.size())) > 1e-10;
        }
        if (!varies) {
            skipped[t.name] = "constant over the valid rows";
            continue;
        }
        jobs.push_back({&t, std::move(rows), {}});
        jobs.back().base = {{"n_valid", jobs.back().rows.size()},
                            {"coverage", static_cast<double>(jobs.back().rows.size()) / static_cast<double>(n)}};
    }

    const std::int64_t total = static_cast<std::int64_t>(jobs.size()) *
                               (static_cast<std::int64_t>(data.layers) + (do_ws ? 1 : 0) + (params.control_permutations > 0 ? 1 : 0));
    std::int64_t done = 0;
    auto tick = [&](std::int64_t k) {
        done += k;
        if (params.on_progress) params.on_progress(done, total);
    };

    // Scalars sharing a set of valid rows are fitted jointly (one factorisation per fold and layer).
    std::map<std::vector<std::size_t>, std::vector<Job*>> scalar_groups;
    for (auto& j : jobs)
        if (j.target->width == 1) scalar_groups[j.rows].push_back(&j);
    std::map<std::string, std::pair<int, double>> best_layer;  // target → (layer, score)
    auto note_best = [&](const std::string& name, std::size_t l, const nlohmann::json& m) {
        const double s = probe_score(m);
        auto& b = best_layer.try_emplace(name, -1, -std::numeric_limits<double>::infinity()).first->second;
        if (std::isfinite(s) && s > b.second) b = {static_cast<int>(l), s};
    };
    std::map<const Job*, Folds> folds_of;
    for (auto& j : jobs) folds_of[&j] = problem.folds_for(j.rows, params.seed);

    for (auto& [rows, group] : scalar_groups) {
        const Folds& folds = folds_of[group.front()];
        Mat Y(static_cast<Eigen::Index>(rows.size()), static_cast<Eigen::Index>(group.size()));
        for (std::size_t k = 0; k < group.size(); ++k) Y.col(static_cast<Eigen::Index>(k)) = target_rows(*group[k]->target, rows).col(0);
        for (std::size_t l = 0; l < data.layers; ++l) {
            const Mat P = folds.empty() ? Mat() : cross_val_predict(problem.layer_rows(l, rows), Y, folds, params.alpha);
            for (std::size_t k = 0; k < group.size(); ++k) {
                nlohmann::json m = folds.empty() ? nlohmann::json{{"undersampled", true}}
                                                 : scalar_metrics(Y.col(static_cast<Eigen::Index>(k)), P.col(static_cast<Eigen::Index>(k)));
                m.update(group[k]->base);
                note_best(group[k]->target->name, l, m);
                results[std::to_string(l)][group[k]->target->name] = std::move(m);
            }
            tick(static_cast<std::int64_t>(group.size()));
        }
    }
    for (auto& j : jobs) {
        if (j.target->width == 1) continue;
        const Folds& folds = folds_of[&j];
        const Mat Y = target_rows(*j.target, j.rows);
        for (std::size_t l = 0; l < data.layers; ++l) {
            nlohmann::json m = folds.empty() ? nlohmann::json{{"undersampled", true}}
                                             : curve_metrics(probe_curve(problem.layer_rows(l, j.rows), Y, folds, params.alpha));
            m.update(j.base);
            note_best(j.target->name, l, m);
            results[std::to_string(l)][j.target->name] = std::move(m);
            tick(1);
        }
    }

    if (do_ws) {
        nlohmann::json ws = nlohmann::json::object();
        for (auto& j : jobs) {
            const Folds& folds = folds_of[&j];
            nlohmann::json m = folds.empty() ? nlohmann::json{{"undersampled", true}} : weighted_sum_probe(problem, *j.target, j.rows, folds);
            m.update(j.base);
            if (auto b = best_layer.find(j.target->name); b != best_layer.end() && b->second.first >= 0 && std::isfinite(probe_score(m)))
                m["r2_gain_over_best_single"] = probe_score(m) - b->second.second;
            ws[j.target->name] = std::move(m);
            tick(1);
        }
        results["weighted_sum"] = std::move(ws);
    }

    if (params.control_permutations > 0) {
        nlohmann::json control = nlohmann::json::object();
        for (auto& j : jobs) {
            const auto b = best_layer.find(j.target->name);
            const Folds& folds = folds_of[&j];
            if (folds.empty() || b == best_layer.end() || b->second.first < 0) {
                tick(1);
                continue;
            }
            const Mat X = problem.layer_rows(static_cast<std::size_t>(b->second.first), j.rows);
            const Mat Y = target_rows(*j.target, j.rows);
            double sum = 0, mx = -std::numeric_limits<double>::infinity();
            for (int k = 0; k < params.control_permutations; ++k) {
                const auto perm = permutation(j.rows.size(), params.seed + 1000u + static_cast<std::uint32_t>(k));
                const double s = cv_score(X, take_rows(Y, perm), folds, params.alpha);
                sum += s;
                mx = std::max(mx, s);
            }
            control[j.target->name] = {{"layer", b->second.first}, {"r2_mean", sum / params.control_permutations},
                                       {"r2_max", mx}, {"permutations", params.control_permutations}};
            tick(1);
        }
        results["control"] = std::move(control);
    }

    std::set<std::string> groups(data.groups.begin(), data.groups.end());
    nlohmann::json names = nlohmann::json::array();
    for (const auto& j : jobs) names.push_back(j.target->name);
    results["skipped_targets"] = std::move(skipped);
    results["run"] = {{"dataset", data.dataset},
                      {"level", to_string(data.level)},
                      {"alpha", params.alpha},
                      {"folds", params.folds},
                      {"seed", params.seed},
                      {"mode", to_string(params.mode)},
                      {"cv", data.groups.empty() ? "shuffled_kfold" : "group_kfold_by_track"},
                      {"n_rows", n},
                      {"n_tracks", data.groups.empty() ? n : groups.size()},
                      {"layers", data.layers},
                      {"dim", data.dim},
                      {"targets", std::move(names)},
                      {"skipped_tracks", data.skipped_tracks}};
    return results;
}

}  // namespace mess
