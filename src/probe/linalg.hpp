// Internal to the probe module: Eigen-based ridge fits shared by the primitives and layer discovery.
#pragma once

#include <span>
#include <vector>

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
CurveScores probe_curve(const Mat& X, const Mat& Y, const Folds& folds, double alpha);
double r2_of(std::span<const double> truth, std::span<const double> pred);
// Mean over columns of the per-column R² of predictions P for truth Y (same shape).
double mean_column_r2(const Mat& Y, const Mat& P);

}  // namespace mess::probe_detail
