// Separability: how well one aspect's probe subspace predicts another aspect's target (mess/probe.hpp).
#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "linalg.hpp"
#include "mess/probe.hpp"
#include "mess/util.hpp"

namespace mess {
namespace probe_detail {

// X standardised by the training scaler of `m` (as predict_ridge sees it), projected on `basis` [d, k].
Mat project(const RidgeModel& m, const Mat& X, const Mat& basis) {
    Mat Z = ((X.rowwise() - m.x_mean).array().rowwise() / m.x_scale.array()).matrix();
    Z.rowwise() -= m.z_mean;
    return Z * basis;
}

// The top `directions` left singular vectors of the probe coefficients [d, w] (rank-limited).
Mat subspace_basis(const Mat& coef, int directions) {
    Eigen::JacobiSVD<Eigen::MatrixXd> svd(Eigen::MatrixXd(coef), Eigen::ComputeThinU);
    const auto& sv = svd.singularValues();
    Eigen::Index k = 0;
    while (k < sv.size() && k < directions && sv(k) > 1e-12 * std::max(sv(0), 1e-300)) ++k;
    return svd.matrixU().leftCols(std::max<Eigen::Index>(k, 1));
}

// Out-of-fold R² of B's target from A's subspace, both fitted on each training fold only.
double cross_score(const Mat& X, const Mat& YA, const Mat& YB, const Folds& folds, double alpha, int directions) {
    Mat oof(YB.rows(), YB.cols());
    for (const auto& test : folds) {
        const auto train = complement(test, static_cast<std::size_t>(X.rows()));
        const Mat Xtr = take_rows(X, train);
        const RidgeModel probe = fit_ridge(Xtr, take_rows(YA, train), alpha);
        const Mat basis = subspace_basis(probe.coef, directions);
        const RidgeModel reader = fit_ridge(project(probe, Xtr, basis), take_rows(YB, train), alpha);
        const Mat P = predict_ridge(reader, project(probe, take_rows(X, test), basis));
        for (std::size_t i = 0; i < test.size(); ++i) oof.row(static_cast<Eigen::Index>(test[i])) = P.row(static_cast<Eigen::Index>(i));
    }
    return mean_column_r2(YB, oof);
}

}  // namespace probe_detail

using namespace probe_detail;

namespace {

const ProbeTarget& find_target(const ProbeData& data, const ResolvedAspect& a) {
    for (const auto& t : data.targets)
        if (t.name == a.target) return t;
    throw_usage("aspect {}: its target {} is not in the probe data of {}", a.name, a.target, data.dataset);
}

// Shuffled k-fold over rows (track level) or group k-fold by track (window level); empty when undersampled.
Folds pair_folds(const ProbeData& data, const std::vector<std::size_t>& rows, const SeparabilityParams& p) {
    if (rows.size() < static_cast<std::size_t>(p.folds)) return {};
    if (data.groups.empty()) return shuffled_kfold(rows.size(), p.folds, p.seed);
    std::vector<std::string> g;
    for (auto r : rows) g.push_back(data.groups[r]);
    const std::size_t n_groups = std::set<std::string>(g.begin(), g.end()).size();
    if (n_groups < 2) return {};
    return group_kfold(g, static_cast<int>(std::min<std::size_t>(n_groups, static_cast<std::size_t>(p.folds))));
}

void check_separability_input(const ProbeData& data, const std::vector<ResolvedAspect>& aspects, const SeparabilityParams& p) {
    if (!(p.alpha > 0) || !std::isfinite(p.alpha)) throw_usage("--alpha must be a positive number, got {}", p.alpha);
    if (p.folds < 2) throw_usage("--folds must be at least 2, got {}", p.folds);
    if (p.directions < 1) throw_usage("--directions must be at least 1, got {}", p.directions);
    if (aspects.empty()) throw_usage("separability needs at least one resolved aspect");
    const std::size_t n = data.rows();
    if (n == 0 || data.layers == 0 || data.dim == 0) throw_input("probe data is empty");
    if (data.features.size() != n * data.layers * data.dim)
        throw_input("probe features hold {} values, expected {} rows × {} layers × {} dims", data.features.size(), n, data.layers, data.dim);
    if (!data.groups.empty() && data.groups.size() != n) throw_input("probe data has {} groups for {} rows", data.groups.size(), n);
    for (const auto& a : aspects) {
        const ProbeTarget& t = find_target(data, a);
        if (t.width == 0 || t.values.size() != n * t.width) throw_input("target {} holds {} values, expected {} rows × {}", t.name, t.values.size(), n, t.width);
        (void)a.weights(data.layers);  // Error(usage) when the layer or weights do not fit the data
    }
}

}  // namespace

SeparabilityReport separability(const ProbeData& data, const std::vector<ResolvedAspect>& aspects, const SeparabilityParams& p) {
    check_separability_input(data, aspects, p);
    SeparabilityReport report;
    report.params = p;
    const std::size_t k = aspects.size();
    report.r2.assign(k, std::vector<double>(k, std::numeric_limits<double>::quiet_NaN()));
    report.rows.assign(k, std::vector<std::int64_t>(k, 0));
    for (const auto& a : aspects) {
        report.aspects.push_back(a.name);
        report.targets.push_back(a.target);
    }
    for (std::size_t i = 0; i < k; ++i) {
        const ProbeTarget& ta = find_target(data, aspects[i]);
        const std::vector<std::size_t> valid_a = valid_rows(ta, data.rows());
        for (std::size_t j = 0; j < k; ++j) {
            const ProbeTarget& tb = find_target(data, aspects[j]);
            const std::vector<std::size_t> valid_b = valid_rows(tb, data.rows());
            std::vector<std::size_t> rows;
            std::set_intersection(valid_a.begin(), valid_a.end(), valid_b.begin(), valid_b.end(), std::back_inserter(rows));
            report.rows[i][j] = static_cast<std::int64_t>(rows.size());
            const Folds folds = pair_folds(data, rows, p);
            if (folds.empty()) continue;
            // A's representation as probing scored it: its layer as is, or its L2-normalised fused layers.
            const Mat X = aspects[i].mode == AspectMode::weighted_sum ? fused_rows(data, aspects[i].weights(data.layers), rows)
                                                                      : layer_rows(data, static_cast<std::size_t>(aspects[i].layer), rows);
            report.r2[i][j] = cross_score(X, target_rows(ta, rows), target_rows(tb, rows), folds, p.alpha, p.directions);
        }
    }
    return report;
}

nlohmann::json SeparabilityReport::to_json() const {
    nlohmann::json matrix = nlohmann::json::array();
    for (const auto& row : r2) {
        nlohmann::json out = nlohmann::json::array();
        for (double v : row) out.push_back(std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr));
        matrix.push_back(std::move(out));
    }
    return {{"aspects", aspects},
            {"targets", targets},
            {"r2", std::move(matrix)},
            {"rows", rows},
            {"params", {{"alpha", params.alpha}, {"folds", params.folds}, {"seed", params.seed}, {"directions", params.directions}}}};
}

}  // namespace mess
