// Aspect subspaces from proxy targets: the directions of a standardised multi-output ridge (mess/probe.hpp).
#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "linalg.hpp"
#include "mess/probe.hpp"
#include "mess/targets.hpp"
#include "mess/util.hpp"

namespace mess {
using namespace probe_detail;

namespace {

std::string trimmed(const std::string& s) {
    const auto b = s.find_first_not_of(" \t");
    return b == std::string::npos ? std::string() : s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The window-level column of a "<category>/<field>" per-window target name ("window/<field>").
const ProbeTarget& window_column(const ProbeData& data, const std::string& name) {
    const auto& known = window_target_names();
    if (std::find(known.begin(), known.end(), name) == known.end())
        throw_usage("unknown per-window target '{}'; known: {}", name, fmt::format("{}", fmt::join(known, ", ")));
    const std::string column = "window/" + name.substr(name.find('/') + 1);
    for (const auto& t : data.targets)
        if (t.name == column) return t;
    throw_input("{}: no per-window values of {} (run `mess targets` on the dataset)", data.dataset, name);
}

struct Rows {
    Mat X, Y;                         // [n, Din] concatenated layers, [n, m] targets (raw)
    std::vector<std::string> groups;  // the track of each row
};

// The rows whose targets are all finite: the chosen layers concatenated, and the targets.
Rows gather_rows(const ProbeData& data, const std::vector<int>& layers_in, const std::vector<std::string>& targets) {
    if (data.level != ProbeLevel::window) throw_usage("proxy-target aspects need window-level probe data");
    std::vector<int> layers = layers_in;
    if (layers.empty()) {
        layers.resize(data.layers);
        std::iota(layers.begin(), layers.end(), 0);
    }
    for (int l : layers)
        if (l < 0 || static_cast<std::size_t>(l) >= data.layers) throw_usage("layer {} out of range: the data has {} layers", l, data.layers);
    std::vector<const ProbeTarget*> cols;
    for (const auto& t : targets) cols.push_back(&window_column(data, t));
    std::vector<std::size_t> keep;
    for (std::size_t r = 0; r < data.rows(); ++r)
        if (std::all_of(cols.begin(), cols.end(), [&](const ProbeTarget* t) { return std::isfinite(t->values[r]); })) keep.push_back(r);
    Rows out{Mat(static_cast<Eigen::Index>(keep.size()), static_cast<Eigen::Index>(layers.size() * data.dim)),
             Mat(static_cast<Eigen::Index>(keep.size()), static_cast<Eigen::Index>(cols.size())), {}};
    for (std::size_t i = 0; i < keep.size(); ++i) {
        const float* row = data.features.data() + keep[i] * data.layers * data.dim;
        for (std::size_t a = 0; a < layers.size(); ++a)
            for (std::size_t d = 0; d < data.dim; ++d)
                out.X(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(a * data.dim + d)) = row[static_cast<std::size_t>(layers[a]) * data.dim + d];
        for (std::size_t j = 0; j < cols.size(); ++j) out.Y(static_cast<Eigen::Index>(i), static_cast<Eigen::Index>(j)) = cols[j]->values[keep[i]];
        out.groups.push_back(data.groups.empty() ? data.row_ids[keep[i]] : data.groups[keep[i]]);
    }
    return out;
}

Folds track_folds(const Rows& rows, const ProxyAspectParams& p, const std::string& dataset) {
    const auto tracks = static_cast<int>(std::set<std::string>(rows.groups.begin(), rows.groups.end()).size());
    if (tracks < 2 || rows.X.rows() < p.folds) throw_input("{}: {} valid windows of {} tracks; need at least {} windows of 2 tracks", dataset, rows.X.rows(), tracks, p.folds);
    return group_kfold(rows.groups, std::min(tracks, p.folds));
}

void check_params(const ProxyAspectParams& p) {
    if (!(p.alpha > 0) || !std::isfinite(p.alpha)) throw_usage("ridge alpha must be a positive number, got {}", p.alpha);
    if (p.folds < 2) throw_usage("folds must be at least 2, got {}", p.folds);
}

// Each target column standardised (population deviation); a constant one is refused by name.
Mat standardised_targets(const Mat& Y, const std::vector<std::string>& names, const std::string& dataset) {
    Mat out = Y.rowwise() - Y.colwise().mean();
    for (Eigen::Index j = 0; j < Y.cols(); ++j) {
        const double sd = std::sqrt(out.col(j).squaredNorm() / static_cast<double>(Y.rows()));
        if (!(sd > 1e-12 * std::max(1.0, Y.col(j).cwiseAbs().maxCoeff())))
            throw_usage("target {} is constant over the {} windows of {}: it defines no direction", names[static_cast<std::size_t>(j)], Y.rows(), dataset);
        out.col(j) /= sd;
    }
    return out;
}

// Orthonormal basis [d, k] of the coefficients' span, each column signed by its largest-magnitude entry.
Mat signed_basis(const Mat& coef) {
    Mat U = subspace_basis(coef, static_cast<int>(coef.cols()));
    for (Eigen::Index c = 0; c < U.cols(); ++c) {
        Eigen::Index at = 0;
        U.col(c).cwiseAbs().maxCoeff(&at);
        if (U(at, c) < 0) U.col(c) *= -1.0;
    }
    return U;
}

std::vector<float> to_floats(const Eigen::RowVectorXd& v) {
    std::vector<float> out(static_cast<std::size_t>(v.size()));
    for (Eigen::Index i = 0; i < v.size(); ++i) out[static_cast<std::size_t>(i)] = static_cast<float>(v(i));
    return out;
}

AspectModel linear_model(const std::string& aspect, const RidgeModel& fit, const Mat& U) {
    AspectModel m;
    m.name = aspect;
    m.rung = AspectRung::linear;
    m.in_dim = U.rows();
    m.out_dim = U.cols();
    m.mean = to_floats(fit.x_mean);
    m.scale = to_floats(fit.x_scale);
    for (Eigen::Index r = 0; r < U.cols(); ++r)
        for (Eigen::Index c = 0; c < U.rows(); ++c) m.weights.push_back(static_cast<float>(U(c, r)));
    const Eigen::VectorXd dir = U.transpose() * fit.coef.rowwise().sum();
    if (!(dir.norm() > 0)) throw_usage("aspect {}: the targets' coefficients cancel out; no direction", aspect);
    m.direction = to_floats((dir / dir.norm()).transpose());
    return m;
}

// Average ranks (ties share the mean of their positions).
std::vector<double> ranks(const std::vector<double>& v) {
    std::vector<std::size_t> order(v.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return v[a] < v[b]; });
    std::vector<double> r(v.size());
    for (std::size_t i = 0; i < order.size();) {
        std::size_t j = i;
        while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
        for (std::size_t k = i; k <= j; ++k) r[order[k]] = 0.5 * static_cast<double>(i + j);
        i = j + 1;
    }
    return r;
}

}  // namespace

std::pair<std::string, std::vector<std::string>> parse_proxy_aspect_spec(const std::string& text) {
    const auto eq = text.find('=');
    if (eq == std::string::npos) throw_usage("'{}': expected ASPECT=target[,target...]", text);
    const std::string name = trimmed(text.substr(0, eq));
    if (name.empty()) throw_usage("'{}': the aspect name is empty", text);
    std::vector<std::string> targets;
    for (const auto& t : split(text.substr(eq + 1), ','))
        if (!trimmed(t).empty()) targets.push_back(trimmed(t));
    if (targets.empty()) throw_usage("'{}': no target named for aspect {}", text, name);
    return {name, targets};
}

ProxyAspectFit fit_proxy_aspect(const ProbeData& data, const std::vector<int>& layers, const std::string& aspect,
                                const std::vector<std::string>& targets, const ProxyAspectParams& params) {
    check_params(params);
    if (targets.empty()) throw_usage("aspect {}: no target", aspect);
    if (std::set<std::string>(targets.begin(), targets.end()).size() != targets.size()) throw_usage("aspect {}: a target is named twice", aspect);
    const Rows rows = gather_rows(data, layers, targets);
    const Folds folds = track_folds(rows, params, data.dataset);
    const Mat Y = standardised_targets(rows.Y, targets, data.dataset);
    const RidgeModel fit = fit_ridge(rows.X, Y, params.alpha);
    ProxyAspectFit out{linear_model(aspect, fit, signed_basis(fit.coef)), targets, {}, rows.X.rows(),
                       static_cast<std::int64_t>(std::set<std::string>(rows.groups.begin(), rows.groups.end()).size())};
    nlohmann::json cv = nlohmann::json::object();
    for (Eigen::Index j = 0; j < Y.cols(); ++j) {
        out.cv_r2.push_back(cross_score(rows.X, Y, Y.col(j), folds, params.alpha, static_cast<int>(Y.cols())));
        cv[targets[static_cast<std::size_t>(j)]] = out.cv_r2.back();
    }
    out.model.info = {{"method", "proxy_targets"}, {"targets", targets}, {"alpha", params.alpha}, {"cv_r2", cv},
                      {"windows", out.windows}, {"tracks", out.tracks}, {"direction", "more = larger targets (fit_proxy_aspect)"}};
    return out;
}

ProxyAspectEval evaluate_proxy_aspect(const AspectModel& model, const ProbeData& data, const std::vector<int>& layers,
                                      const ProxyAspectParams& params) {
    check_params(params);
    if (!model.info.contains("targets") || model.direction.empty()) throw_usage("aspect {} was not fitted from proxy targets", model.name);
    ProxyAspectEval out;
    out.targets = model.info.at("targets").get<std::vector<std::string>>();
    const Rows rows = gather_rows(data, layers, out.targets);
    if (rows.X.cols() != model.in_dim) throw_usage("aspect {} takes {} inputs; the data's layers give {}", model.name, model.in_dim, rows.X.cols());
    const Folds folds = track_folds(rows, params, data.dataset);
    out.windows = rows.X.rows();
    out.tracks = static_cast<std::int64_t>(std::set<std::string>(rows.groups.begin(), rows.groups.end()).size());
    std::vector<float> x(static_cast<std::size_t>(rows.X.cols()));
    Mat coords(rows.X.rows(), model.out_dim);
    std::vector<double> predicted;
    for (Eigen::Index i = 0; i < rows.X.rows(); ++i) {
        for (Eigen::Index d = 0; d < rows.X.cols(); ++d) x[static_cast<std::size_t>(d)] = static_cast<float>(rows.X(i, d));
        const std::vector<float> y = model.apply(x.data());
        for (Eigen::Index k = 0; k < model.out_dim; ++k) coords(i, k) = y[static_cast<std::size_t>(k)];
        predicted.push_back(model.predict(model.apply_normalised(x.data(), 1).data()));
    }
    const std::vector<double> rp = ranks(predicted);
    for (Eigen::Index j = 0; j < rows.Y.cols(); ++j) {
        std::vector<double> t(static_cast<std::size_t>(rows.Y.rows()));
        for (Eigen::Index i = 0; i < rows.Y.rows(); ++i) t[static_cast<std::size_t>(i)] = rows.Y(i, j);
        const std::vector<double> rt = ranks(t);
        out.spearman.push_back(score_scalar(rt, rp).correlation);
        out.r2.push_back(mean_column_r2(rows.Y.col(j), cross_val_predict(coords, rows.Y.col(j), folds, params.alpha)));
    }
    return out;
}

nlohmann::json ProxyAspectEval::to_json() const {
    nlohmann::json j = {{"windows", windows}, {"tracks", tracks}, {"targets", nlohmann::json::object()}};
    for (std::size_t i = 0; i < targets.size(); ++i) j["targets"][targets[i]] = {{"spearman", spearman[i]}, {"r2_from_subspace", r2[i]}};
    return j;
}

}  // namespace mess
