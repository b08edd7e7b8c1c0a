// Internal to the probe module: Eigen-based ridge fits shared by the primitives and layer discovery.
#pragma once

#include <span>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include <Eigen/Dense>

#include "mess/probe.hpp"

namespace mess::probe_detail {

using Mat = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// StandardScaler + Ridge fitted on (X, Y); predictions are Z·coef + y_mean with Z the standardised,
// training-centred features.
struct RidgeModel {
    Eigen::RowVectorXd x_mean, x_scale, z_mean, y_mean;
    Mat coef;  // [d, m]
};
RidgeModel fit_ridge(const Mat& X, const Mat& Y, double alpha);
Mat predict_ridge(const RidgeModel& model, const Mat& X);

Mat take_rows(const Mat& M, const std::vector<std::size_t>& rows);
std::vector<std::size_t> complement(const std::vector<std::size_t>& test, std::size_t n);
Mat cross_val_predict(const Mat& X, const Mat& Y, const Folds& folds, double alpha);
// `oof`, when given, receives the multi-output out-of-fold predictions.
CurveScores probe_curve(const Mat& X, const Mat& Y, const Folds& folds, double alpha, Mat* oof = nullptr);
void check_folds(const Folds& folds, std::size_t n);
Mat to_mat(const ProbeMatrix& m);
ProbeMatrix from_mat(const Mat& m);
double r2_of(std::span<const double> truth, std::span<const double> pred);
// Mean over columns of the per-column R² of predictions P for truth Y (same shape).
double mean_column_r2(const Mat& Y, const Mat& P);
// Subspaces of probe coefficients (separability.cpp; also the proxy-target aspects, proxy_aspect.cpp):
// X standardised by the training scaler of `m` (as predict_ridge sees it), projected on `basis` [d, k];
Mat project(const RidgeModel& m, const Mat& X, const Mat& basis);
// the top `directions` left singular vectors of coefficients [d, w] (rank-limited, at least one);
Mat subspace_basis(const Mat& coef, int directions);
// the pooled out-of-fold mean-column R² of YB from YA's subspace, both fitted on each training fold only.
double cross_score(const Mat& X, const Mat& YA, const Mat& YB, const Folds& folds, double alpha, int directions);


// Confidence (confidence.cpp): the R² of each fold's test rows; the bootstrap band over groups numbered
// 0..G-1; both with the fold mean and spread as the JSON fields of a probe result (no band when
// p.resamples is 0).
std::vector<double> fold_scores(const Mat& Y, const Mat& P, const Folds& folds);
R2Band r2_band(const Mat& Y, const Mat& P, const std::vector<std::size_t>& group_of_row, const BandParams& p);
nlohmann::json confidence_fields(const Mat& Y, const Mat& P, const Folds& folds, const std::vector<std::size_t>& group_of_row,
                                 const BandParams& p);
// Layer discovery (discovery.cpp): one layer of each row; each row's layers fused with weights `w` (fuse_layers, as search does);
// a target's values on `rows` [rows, width]; the rows where every column
// of `t` is finite.
Mat fused_rows(const ProbeData& data, const std::vector<double>& w, const std::vector<std::size_t>& rows);
Mat layer_rows(const ProbeData& data, std::size_t layer, const std::vector<std::size_t>& rows);  // one layer, as probed
Mat target_rows(const ProbeTarget& t, const std::vector<std::size_t>& rows);
std::vector<std::size_t> valid_rows(const ProbeTarget& t, std::size_t n);
// Group names → 0..G-1 in sorted name order.
std::vector<std::size_t> group_indices(const std::vector<std::string>& groups);

}  // namespace mess::probe_detail
