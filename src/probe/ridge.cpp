// Cross-validated standardised ridge: folds, StandardScaler + Ridge fits, pooled metrics.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "linalg.hpp"
#include "mess/probe.hpp"
#include "mess/util.hpp"

namespace mess {
namespace probe_detail {

RidgeModel fit_ridge(const Mat& X, const Mat& Y, double alpha) {
    const auto n = static_cast<double>(X.rows());
    const double eps = std::numeric_limits<double>::epsilon();
    RidgeModel m;
    // StandardScaler: population variance; constant features keep scale 1 (scikit-learn's rule).
    m.x_mean = X.colwise().mean();
    m.x_scale.resize(X.cols());
    for (Eigen::Index j = 0; j < X.cols(); ++j) {
        const double var = (X.col(j).array() - m.x_mean(j)).square().sum() / n;
        const double bound = n * eps * var + std::pow(n * m.x_mean(j) * eps, 2);
        const double scale = std::sqrt(var);
        m.x_scale(j) = (var <= bound || scale < 10 * eps) ? 1.0 : scale;
    }
    Mat Z = (X.rowwise() - m.x_mean).array().rowwise() / m.x_scale.array();
    // Ridge(fit_intercept=True): centre the standardised features and the outputs.
    m.z_mean = Z.colwise().mean();
    Z.rowwise() -= m.z_mean;
    m.y_mean = Y.colwise().mean();
    const Mat Yc = Y.rowwise() - m.y_mean;
    if (Z.cols() > Z.rows()) {  // kernel form: (Z Zᵀ + αI)⁻¹ Y, then Zᵀ·dual
        Mat K = Z * Z.transpose();
        K.diagonal().array() += alpha;
        m.coef = Z.transpose() * K.llt().solve(Yc);
    } else {
        Mat A = Z.transpose() * Z;
        A.diagonal().array() += alpha;
        m.coef = A.llt().solve(Z.transpose() * Yc);
    }
    return m;
}

Mat predict_ridge(const RidgeModel& m, const Mat& X) {
    Mat Z = ((X.rowwise() - m.x_mean).array().rowwise() / m.x_scale.array()).matrix();
    Z.rowwise() -= m.z_mean;
    Mat P = Z * m.coef;
    P.rowwise() += m.y_mean;
    return P;
}

Mat take_rows(const Mat& M, const std::vector<std::size_t>& rows) {
    Mat out(static_cast<Eigen::Index>(rows.size()), M.cols());
    for (std::size_t i = 0; i < rows.size(); ++i) out.row(static_cast<Eigen::Index>(i)) = M.row(static_cast<Eigen::Index>(rows[i]));
    return out;
}

std::vector<std::size_t> complement(const std::vector<std::size_t>& test, std::size_t n) {
    std::vector<char> in_test(n, 0);
    for (auto r : test) in_test[r] = 1;
    std::vector<std::size_t> train;
    train.reserve(n - test.size());
    for (std::size_t r = 0; r < n; ++r)
        if (!in_test[r]) train.push_back(r);
    return train;
}

void check_folds(const Folds& folds, std::size_t n) {
    if (folds.size() < 2) throw_usage("cross-validation needs at least 2 folds, got {}", folds.size());
    std::vector<char> seen(n, 0);
    for (const auto& f : folds) {
        if (f.empty()) throw_usage("cross-validation fold is empty");
        for (auto r : f) {
            if (r >= n) throw_usage("fold row {} out of range for {} rows", r, n);
            if (seen[r]) throw_usage("row {} appears in two folds", r);
            seen[r] = 1;
        }
    }
    if (std::find(seen.begin(), seen.end(), 0) != seen.end()) throw_usage("folds do not cover every row");
}

Mat cross_val_predict(const Mat& X, const Mat& Y, const Folds& folds, double alpha) {
    if (!(alpha > 0) || !std::isfinite(alpha)) throw_usage("ridge alpha must be a positive number, got {}", alpha);
    if (X.rows() != Y.rows()) throw_usage("probe features have {} rows but targets {}", X.rows(), Y.rows());
    check_folds(folds, static_cast<std::size_t>(X.rows()));
    Mat out(Y.rows(), Y.cols());
    for (const auto& test : folds) {
        const auto train = complement(test, static_cast<std::size_t>(X.rows()));
        const RidgeModel m = fit_ridge(take_rows(X, train), take_rows(Y, train), alpha);
        const Mat P = predict_ridge(m, take_rows(X, test));
        for (std::size_t i = 0; i < test.size(); ++i) out.row(static_cast<Eigen::Index>(test[i])) = P.row(static_cast<Eigen::Index>(i));
    }
    return out;
}

double r2_of(std::span<const double> truth, std::span<const double> pred) {
    const double mean = std::accumulate(truth.begin(), truth.end(), 0.0) / static_cast<double>(truth.size());
    double ss_res = 0, ss_tot = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
        ss_res += (truth[i] - pred[i]) * (truth[i] - pred[i]);
        ss_tot += (truth[i] - mean) * (truth[i] - mean);
    }
    if (ss_tot == 0) return ss_res == 0 ? 1.0 : 0.0;
    return 1.0 - ss_res / ss_tot;
}

Mat to_mat(const ProbeMatrix& m) {
    return Eigen::Map<const Mat>(m.values.data(), static_cast<Eigen::Index>(m.rows), static_cast<Eigen::Index>(m.cols));
}

ProbeMatrix from_mat(const Mat& m) {
    ProbeMatrix out(static_cast<std::size_t>(m.rows()), static_cast<std::size_t>(m.cols()));
    Eigen::Map<Mat>(out.values.data(), m.rows(), m.cols()) = m;
    return out;
}

double mean_column_r2(const Mat& Y, const Mat& P) {
    double sum = 0;
    for (Eigen::Index c = 0; c < Y.cols(); ++c) {
        const Eigen::VectorXd t = Y.col(c), p = P.col(c);
        sum += r2_of({t.data(), static_cast<std::size_t>(t.size())}, {p.data(), static_cast<std::size_t>(p.size())});
    }
    return sum / static_cast<double>(Y.cols());
}

CurveScores probe_curve(const Mat& X, const Mat& Y, const Folds& folds, double alpha, Mat* oof) {
    const Mat P = cross_val_predict(X, Y, folds, alpha);
    if (oof) *oof = P;
    CurveScores s;
    s.r2_mean = mean_column_r2(Y, P);
    s.rmse_mean = std::sqrt((Y - P).squaredNorm() / static_cast<double>(Y.size()));

    // First principal component, fitted on each training fold.
    std::vector<double> proj_true(static_cast<std::size_t>(Y.rows())), proj_pred(proj_true.size());
    for (const auto& test : folds) {
        const auto train = complement(test, static_cast<std::size_t>(X.rows()));
        const Mat Yt = take_rows(Y, train);
        const Eigen::RowVectorXd mean = Yt.colwise().mean();
        const Mat Yc = Yt.rowwise() - mean;
        Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(Yc.transpose() * Yc);
        Eigen::VectorXd v = eig.eigenvectors().col(Y.cols() - 1);  // eigenvalues ascending
        Eigen::Index arg = 0;
        v.cwiseAbs().maxCoeff(&arg);
        if (v(arg) < 0) v = -v;
        const Mat target = Yc * v;
        const RidgeModel m = fit_ridge(take_rows(X, train), target, alpha);
        const Mat pred = predict_ridge(m, take_rows(X, test));
        const Mat Ytest = take_rows(Y, test);
        const Eigen::VectorXd truth = (Ytest.rowwise() - mean) * v;
        for (std::size_t i = 0; i < test.size(); ++i) {
            proj_true[test[i]] = truth(static_cast<Eigen::Index>(i));
            proj_pred[test[i]] = pred(static_cast<Eigen::Index>(i), 0);
        }
    }
    const double mean = std::accumulate(proj_true.begin(), proj_true.end(), 0.0) / static_cast<double>(proj_true.size());
    double ss_tot = 0;
    for (double v : proj_true) ss_tot += (v - mean) * (v - mean);
    s.r2_pc1 = ss_tot > 0 ? r2_of(proj_true, proj_pred) : 0.0;
    return s;
}

}  // namespace probe_detail

using namespace probe_detail;

Folds shuffled_kfold(std::size_t n, int folds, std::uint32_t seed) {
    if (folds < 2 || static_cast<std::size_t>(folds) > n)
        throw_usage("k-fold needs 2 ≤ folds ≤ rows, got {} folds for {} rows", folds, n);
    std::vector<std::size_t> idx(n);
    std::iota(idx.begin(), idx.end(), 0);
    // NumPy's legacy RandomState(seed).shuffle: MT19937 seeded by init_genrand (as std::mt19937), then
    // Fisher-Yates from the end with bounded draws by masked rejection.
    std::mt19937 mt(seed);
    for (std::size_t i = n - 1; i > 0; --i) {
        std::uint32_t mask = static_cast<std::uint32_t>(i);
        mask |= mask >> 1; mask |= mask >> 2; mask |= mask >> 4; mask |= mask >> 8; mask |= mask >> 16;
        std::uint32_t j;
        while ((j = static_cast<std::uint32_t>(mt()) & mask) > i) {}
        std::swap(idx[i], idx[j]);
    }
    Folds out(static_cast<std::size_t>(folds));
    std::size_t pos = 0;
    for (std::size_t f = 0; f < out.size(); ++f) {
        const std::size_t size = n / out.size() + (f < n % out.size() ? 1 : 0);
        out[f].assign(idx.begin() + static_cast<std::ptrdiff_t>(pos), idx.begin() + static_cast<std::ptrdiff_t>(pos + size));
        std::sort(out[f].begin(), out[f].end());
        pos += size;
    }
    return out;
}

Folds group_kfold(const std::vector<std::string>& groups, int folds) {
    std::map<std::string, std::vector<std::size_t>> members;
    for (std::size_t r = 0; r < groups.size(); ++r) members[groups[r]].push_back(r);
    if (folds < 2 || static_cast<std::size_t>(folds) > members.size())
        throw_usage("group k-fold needs 2 ≤ folds ≤ groups, got {} folds for {} groups", folds, members.size());
    std::vector<const std::pair<const std::string, std::vector<std::size_t>>*> order;
    for (const auto& m : members) order.push_back(&m);
    std::stable_sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->second.size() > b->second.size(); });
    Folds out(static_cast<std::size_t>(folds));
    for (const auto* g : order) {
        auto lightest = std::min_element(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.size() < b.size(); });
        lightest->insert(lightest->end(), g->second.begin(), g->second.end());
    }
    for (auto& f : out) std::sort(f.begin(), f.end());
    return out;
}

ProbeMatrix cross_val_predict_ridge(const ProbeMatrix& X, const ProbeMatrix& Y, const Folds& folds, double alpha) {
    if (X.values.size() != X.rows * X.cols || Y.values.size() != Y.rows * Y.cols)
        throw_usage("probe matrix sizes disagree with their shapes");
    return from_mat(cross_val_predict(to_mat(X), to_mat(Y), folds, alpha));
}

ScalarScores score_scalar(std::span<const double> truth, std::span<const double> predicted) {
    if (truth.size() != predicted.size() || truth.empty())
        throw_usage("scores need equal, non-empty truth and predictions ({} vs {})", truth.size(), predicted.size());
    ScalarScores s;
    s.r2 = r2_of(truth, predicted);
    const double n = static_cast<double>(truth.size());
    const double mt = std::accumulate(truth.begin(), truth.end(), 0.0) / n;
    const double mp = std::accumulate(predicted.begin(), predicted.end(), 0.0) / n;
    double stt = 0, spp = 0, stp = 0, sq = 0;
    for (std::size_t i = 0; i < truth.size(); ++i) {
        stt += (truth[i] - mt) * (truth[i] - mt);
        spp += (predicted[i] - mp) * (predicted[i] - mp);
        stp += (truth[i] - mt) * (predicted[i] - mp);
        sq += (truth[i] - predicted[i]) * (truth[i] - predicted[i]);
    }
    s.correlation = (stt > 0 && spp > 0) ? stp / std::sqrt(stt * spp) : 0.0;
    s.rmse = std::sqrt(sq / n);
    return s;
}

CurveScores probe_curve(const ProbeMatrix& X, const ProbeMatrix& Y, const Folds& folds, double alpha) {
    if (X.values.size() != X.rows * X.cols || Y.values.size() != Y.rows * Y.cols)
        throw_usage("probe matrix sizes disagree with their shapes");
    return probe_curve(to_mat(X), to_mat(Y), folds, alpha);
}

}  // namespace mess
