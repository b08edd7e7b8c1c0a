// Probe confidence: per-fold R², a bootstrap band over tracks of the out-of-fold predictions, and the
// label derived from the band's lower bound and the number of tracks.
#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include <nlohmann/json.hpp>

#include "linalg.hpp"
#include "mess/probe.hpp"
#include "mess/util.hpp"

namespace mess {
namespace probe_detail {

std::vector<double> fold_scores(const Mat& Y, const Mat& P, const Folds& folds) {
    std::vector<double> out;
    for (const auto& test : folds) out.push_back(mean_column_r2(take_rows(Y, test), take_rows(P, test)));
    return out;
}

namespace {

// NumPy's percentile with linear interpolation on sorted values.
double percentile_sorted(const std::vector<double>& v, double q) {
    const double pos = q * static_cast<double>(v.size() - 1);
    const auto lo = static_cast<std::size_t>(std::floor(pos));
    const std::size_t hi = std::min(lo + 1, v.size() - 1);
    return v[lo] + (pos - static_cast<double>(lo)) * (v[hi] - v[lo]);
}

}  // namespace

R2Band r2_band(const Mat& Y, const Mat& P, const std::vector<std::size_t>& group_of_row, const BandParams& p) {
    check_band_params(p);
    if (Y.rows() != P.rows() || Y.cols() != P.cols() || group_of_row.size() != static_cast<std::size_t>(Y.rows()))
        throw_usage("confidence band: truth [{}, {}], predictions [{}, {}] and {} groups disagree", Y.rows(), Y.cols(), P.rows(), P.cols(),
                    group_of_row.size());
    const std::size_t n_groups = group_of_row.empty() ? 0 : *std::max_element(group_of_row.begin(), group_of_row.end()) + 1;
    if (n_groups == 0) throw_usage("confidence band: no rows");
    std::vector<std::vector<std::size_t>> members(n_groups);
    for (std::size_t r = 0; r < group_of_row.size(); ++r) members[group_of_row[r]].push_back(r);
    std::mt19937 mt(p.seed);
    std::vector<double> scores;
    std::vector<std::size_t> rows;
    for (int b = 0; b < p.resamples; ++b) {
        rows.clear();
        for (std::size_t g = 0; g < n_groups; ++g) {
            const auto& m = members[static_cast<std::size_t>(mt() % n_groups)];
            rows.insert(rows.end(), m.begin(), m.end());
        }
        scores.push_back(mean_column_r2(take_rows(Y, rows), take_rows(P, rows)));
    }
    std::sort(scores.begin(), scores.end());
    const double tail = (1.0 - p.level) / 2.0;
    return {percentile_sorted(scores, tail), percentile_sorted(scores, 1.0 - tail)};
}

nlohmann::json confidence_fields(const Mat& Y, const Mat& P, const Folds& folds, const std::vector<std::size_t>& group_of_row,
                                 const BandParams& p) {
    const std::vector<double> f = fold_scores(Y, P, folds);
    const double mean = std::accumulate(f.begin(), f.end(), 0.0) / static_cast<double>(f.size());
    double var = 0;
    for (double v : f) var += (v - mean) * (v - mean);
    nlohmann::json out = {{"r2_folds", f}, {"r2_fold_mean", mean}, {"r2_fold_std", std::sqrt(var / static_cast<double>(f.size()))}};
    if (p.resamples > 0) {
        const R2Band band = r2_band(Y, P, group_of_row, p);
        out["r2_band"] = {band.low, band.high};
    }
    return out;
}

std::vector<std::size_t> group_indices(const std::vector<std::string>& groups) {
    std::map<std::string, std::size_t> index;
    for (const auto& g : groups) index.emplace(g, 0);
    std::size_t k = 0;
    for (auto& [name, i] : index) i = k++;
    std::vector<std::size_t> out;
    out.reserve(groups.size());
    for (const auto& g : groups) out.push_back(index[g]);
    return out;
}

}  // namespace probe_detail

void check_band_params(const BandParams& p) {
    if (p.resamples < 0) throw_usage("bootstrap resamples must be ≥ 0, got {}", p.resamples);
    if (!(p.level > 0 && p.level < 1)) throw_usage("confidence band level must be in (0, 1), got {}", p.level);
}

using namespace probe_detail;

R2Band bootstrap_r2_band(const ProbeMatrix& truth, const ProbeMatrix& predicted, const std::vector<std::string>& groups,
                         const BandParams& params) {
    if (params.resamples < 1) throw_usage("bootstrap resamples must be ≥ 1, got {}", params.resamples);
    std::vector<std::size_t> ids(truth.rows);
    if (groups.empty()) std::iota(ids.begin(), ids.end(), std::size_t{0});
    else if (groups.size() == truth.rows) ids = group_indices(groups);
    else throw_usage("confidence band: {} groups for {} rows", groups.size(), truth.rows);
    return r2_band(to_mat(truth), to_mat(predicted), ids, params);
}

std::vector<double> fold_r2(const ProbeMatrix& truth, const ProbeMatrix& predicted, const Folds& folds) {
    if (truth.rows != predicted.rows || truth.cols != predicted.cols) throw_usage("fold R²: truth and predictions differ in shape");
    check_folds(folds, truth.rows);
    return fold_scores(to_mat(truth), to_mat(predicted), folds);
}

const char* confidence_label(double r2_low, std::int64_t n_tracks) {
    if (!std::isfinite(r2_low)) return "low";
    if (r2_low > 0.8 && n_tracks >= kMinTracksHigh) return "high";
    if (r2_low > 0.5 && n_tracks >= kMinTracksMedium) return "medium";
    return "low";
}

}  // namespace mess
