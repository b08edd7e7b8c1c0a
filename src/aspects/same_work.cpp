// The same-work geometry in closed form: within-work whitening (WCCN) and LDA on windows of different
// performances of one work grouped by aligned source time, and its retrieval measures (track and passage MAP).
#include <algorithm>
#include <cmath>
#include <map>

#include <Eigen/Dense>

#include "forward.hpp"

namespace mess {

const char* to_string(SameWorkRung rung) {
    switch (rung) {
        case SameWorkRung::identity: return "identity";
        case SameWorkRung::standardise: return "standardise";
        case SameWorkRung::wccn: return "wccn";
        case SameWorkRung::lda: return "lda";
    }
    return "?";
}

SameWorkRung parse_same_work_rung(const std::string& text) {
    for (SameWorkRung r : {SameWorkRung::identity, SameWorkRung::standardise, SameWorkRung::wccn, SameWorkRung::lda})
        if (text == to_string(r)) return r;
    throw_usage("unknown same-work rung '{}' (identity | standardise | wccn | lda)", text);
}

std::vector<std::int64_t> same_work_classes(const FactorWindows& data, double bin_seconds) {
    if (!(bin_seconds > 0)) throw_usage("same-work bin must be positive seconds");
    std::map<std::pair<std::string, std::int64_t>, std::int64_t> ids;
    std::vector<std::int64_t> out(static_cast<std::size_t>(data.n));
    for (std::size_t i = 0; i < out.size(); ++i) {
        const auto bin = static_cast<std::int64_t>(std::floor(data.source_sec.at(i) / bin_seconds));
        const auto key = std::make_pair(data.track_work[static_cast<std::size_t>(data.track[i])], bin);
        out[i] = ids.try_emplace(key, static_cast<std::int64_t>(ids.size())).first->second;
    }
    return out;
}

namespace {

using Mat = Eigen::MatrixXd;

// Standardised rows Z [n, D] of the model's mean and scale.
Mat standardised(const FactorWindows& data, const AspectModel& m) {
    Mat z(data.n, data.dim);
    for (std::int64_t i = 0; i < data.n; ++i)
        for (std::int64_t j = 0; j < data.dim; ++j) z(i, j) = (double(data.row(i)[j]) - m.mean[static_cast<std::size_t>(j)]) / m.scale[static_cast<std::size_t>(j)];
    return z;
}

// Within-class scatter (shrunk towards its mean variance) and between-class scatter of Z.
std::pair<Mat, Mat> scatter(const Mat& z, const std::vector<std::int64_t>& cls, double shrinkage) {
    const std::int64_t nc = *std::max_element(cls.begin(), cls.end()) + 1;
    Mat means = Mat::Zero(nc, z.cols());
    Eigen::VectorXd count = Eigen::VectorXd::Zero(nc);
    for (Eigen::Index i = 0; i < z.rows(); ++i) means.row(cls[static_cast<std::size_t>(i)]) += z.row(i), count(cls[static_cast<std::size_t>(i)]) += 1;
    for (Eigen::Index c = 0; c < nc; ++c) means.row(c) /= std::max(count(c), 1.0);
    Mat within = z;
    for (Eigen::Index i = 0; i < z.rows(); ++i) within.row(i) -= means.row(cls[static_cast<std::size_t>(i)]);
    Mat sw = within.transpose() * within / static_cast<double>(z.rows());
    const double mean_var = sw.trace() / static_cast<double>(z.cols());
    sw = (1 - shrinkage) * sw + shrinkage * std::max(mean_var, 1e-12) * Mat::Identity(z.cols(), z.cols());
    const Eigen::RowVectorXd grand = z.colwise().mean();
    Mat between = Mat::Zero(z.cols(), z.cols());
    for (Eigen::Index c = 0; c < nc; ++c) {
        const Eigen::RowVectorXd d = means.row(c) - grand;
        between += count(c) * d.transpose() * d;
    }
    return {sw, between / static_cast<double>(z.rows())};
}

void set_linear(AspectModel& m, const Mat& w) {
    m.rung = AspectRung::linear;
    m.out_dim = w.rows();
    m.weights.resize(static_cast<std::size_t>(w.rows() * w.cols()));
    for (Eigen::Index k = 0; k < w.rows(); ++k)
        for (Eigen::Index j = 0; j < w.cols(); ++j) m.weights[static_cast<std::size_t>(k * w.cols() + j)] = static_cast<float>(w(k, j));
}

}  // namespace

AspectModel fit_same_work(const FactorWindows& data, SameWorkRung rung, const SameWorkParams& p) {
    if (!(p.shrinkage >= 0 && p.shrinkage <= 1)) throw_usage("same-work shrinkage must be in [0, 1]");
    if (p.out_dim < 1) throw_usage("same-work out_dim must be ≥ 1");
    const std::vector<std::int64_t> cls = same_work_classes(data, p.bin_seconds);
    std::map<std::string, int> works;
    for (std::int64_t i = 0; i < data.n; ++i) ++works[data.track_work[static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)])]];
    if (works.size() < 2) throw_usage("same-work geometry: {} work(s) in the data; needs at least 2", works.size());
    AspectModel m = identity_model("same_work", data.dim);
    if (rung == SameWorkRung::identity) return m;
    m.rung = AspectRung::standardise;
    m.mean.assign(static_cast<std::size_t>(data.dim), 0.0f);
    m.scale.assign(static_cast<std::size_t>(data.dim), 1.0f);
    Mat z = standardised(data, m);
    const Eigen::RowVectorXd mu = z.colwise().mean();
    const Eigen::RowVectorXd sd = ((z.rowwise() - mu).array().square().colwise().mean()).sqrt();
    for (std::int64_t j = 0; j < data.dim; ++j)
        m.mean[static_cast<std::size_t>(j)] = static_cast<float>(mu(j)), m.scale[static_cast<std::size_t>(j)] = static_cast<float>(std::max(sd(j), 1e-4));
    m.info = {{"method", to_string(rung)}, {"shrinkage", p.shrinkage}, {"bin_seconds", p.bin_seconds}, {"works", works.size()}};
    if (rung == SameWorkRung::standardise) return m;
    z = standardised(data, m);
    const auto [sw, sb] = scatter(z, cls, p.shrinkage);
    if (rung == SameWorkRung::wccn) {  // W = Sw^(−1/2): within-work variation whitened, everything else kept
        const Eigen::SelfAdjointEigenSolver<Mat> es(sw);
        set_linear(m, es.eigenvectors() * es.eigenvalues().cwiseMax(1e-12).cwiseInverse().cwiseSqrt().asDiagonal() * es.eigenvectors().transpose());
        return m;
    }
    // LDA: the k directions of largest between-class over within-class variance (Sb v = λ Sw v, vᵀ Sw v = 1).
    // Sw must be positive definite (it is factorised): unshrunk, fewer windows than dimensions leave it singular.
    const Eigen::VectorXd within = Eigen::SelfAdjointEigenSolver<Mat>(sw, Eigen::EigenvaluesOnly).eigenvalues();
    if (!(within.minCoeff() > 1e-10 * within.maxCoeff()))
        throw_input("same-work LDA: the within-work scatter of {} windows in {} dimensions is singular; use a shrinkage above 0", data.n, data.dim);
    const Eigen::GeneralizedSelfAdjointEigenSolver<Mat> es(sb, sw);
    if (es.info() != Eigen::Success || !es.eigenvectors().allFinite()) throw_internal("same-work LDA: the eigensolver did not converge");
    const Eigen::Index k = std::min<Eigen::Index>(p.out_dim, data.dim);
    set_linear(m, es.eigenvectors().rightCols(k).rowwise().reverse().transpose());
    return m;
}

namespace {

// Average precision of a ranking by score (descending; ties by index) of candidates with relevance flags.
double average_precision(std::vector<std::pair<double, bool>>& scored) {
    std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    double hits = 0, sum = 0;
    for (std::size_t r = 0; r < scored.size(); ++r)
        if (scored[r].second) hits += 1, sum += hits / static_cast<double>(r + 1);
    return hits > 0 ? sum / hits : -1;
}

double dot(const float* a, const float* b, std::size_t k) {
    double s = 0;
    for (std::size_t j = 0; j < k; ++j) s += double(a[j]) * b[j];
    return s;
}

}  // namespace

SameWorkEval evaluate_same_work(const AspectModel& model, const FactorWindows& data, double passage_tolerance_sec) {
    if (model.in_dim != data.dim) throw_usage("model '{}' takes {} inputs; the data has {}", model.name, model.in_dim, data.dim);
    const auto k = static_cast<std::size_t>(model.out_dim);
    const std::vector<float> y = model.apply_normalised(data.x.data(), data.n);
    const std::size_t tracks = data.track_ids.size();
    std::vector<float> track_y(tracks * k, 0.0f);  // each track: the normalised mean of its windows
    for (std::int64_t i = 0; i < data.n; ++i)
        for (std::size_t j = 0; j < k; ++j) track_y[static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)]) * k + j] += y[static_cast<std::size_t>(i) * k + j];
    for (std::size_t t = 0; t < tracks; ++t) {
        const double n = std::sqrt(dot(&track_y[t * k], &track_y[t * k], k));
        for (std::size_t j = 0; j < k; ++j) track_y[t * k + j] = n > 0 ? static_cast<float>(track_y[t * k + j] / n) : 0.0f;
    }
    SameWorkEval e;
    std::vector<std::pair<double, bool>> scored;
    for (std::size_t q = 0; q < tracks; ++q) {
        scored.clear();
        for (std::size_t c = 0; c < tracks; ++c)
            if (c != q) scored.emplace_back(dot(&track_y[q * k], &track_y[c * k], k), data.track_work[c] == data.track_work[q]);
        if (const double ap = average_precision(scored); ap >= 0) e.track_map += ap, ++e.track_queries;
    }
    for (std::int64_t q = 0; q < data.n; ++q) {
        scored.clear();
        const auto tq = static_cast<std::size_t>(data.track[static_cast<std::size_t>(q)]);
        for (std::int64_t c = 0; c < data.n; ++c) {
            const auto tc = static_cast<std::size_t>(data.track[static_cast<std::size_t>(c)]);
            if (tc == tq) continue;
            const bool rel = data.track_work[tc] == data.track_work[tq] &&
                             std::fabs(data.source_sec[static_cast<std::size_t>(c)] - data.source_sec[static_cast<std::size_t>(q)]) <= passage_tolerance_sec;
            scored.emplace_back(dot(&y[static_cast<std::size_t>(q) * k], &y[static_cast<std::size_t>(c) * k], k), rel);
        }
        if (const double ap = average_precision(scored); ap >= 0) e.passage_map += ap, ++e.passage_queries;
    }
    if (e.track_queries) e.track_map /= static_cast<double>(e.track_queries);
    if (e.passage_queries) e.passage_map /= static_cast<double>(e.passage_queries);
    return e;
}

}  // namespace mess
