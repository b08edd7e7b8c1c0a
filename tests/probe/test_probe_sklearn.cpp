// Probe numbers against scikit-learn 1.2 (Debian's python3-sklearn) on the same float64 data: shuffled
// k-fold splits, cross_val_predict of StandardScaler + Ridge, r2/correlation/RMSE, and the curve probe.
#include <random>

#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "mess/probe.hpp"
#include "support/support.hpp"

using namespace mess;

namespace {

ProbeMatrix random_matrix(std::size_t rows, std::size_t cols, std::uint32_t seed, double scale = 1.0) {
    std::mt19937 g(seed);
    std::normal_distribution<double> d(0.0, scale);
    ProbeMatrix m(rows, cols);
    for (double& v : m.values) v = d(g);
    return m;
}

void add_case(NpzMembers& out, const std::string& name, const ProbeMatrix& X, const ProbeMatrix& Y, double alpha, int folds,
              std::uint32_t seed) {
    const Folds f = shuffled_kfold(X.rows, folds, seed);
    std::vector<std::int64_t> fold_of_row(X.rows);
    for (std::size_t k = 0; k < f.size(); ++k)
        for (auto r : f[k]) fold_of_row[r] = static_cast<std::int64_t>(k);
    const ProbeMatrix P = cross_val_predict_ridge(X, Y, f, alpha);
    auto put = [&](const std::string& key, std::vector<double> v, std::vector<std::int64_t> shape) {
        out[name + "/" + key] = NpyArray::from(v, std::move(shape));
    };
    put("X", X.values, {static_cast<std::int64_t>(X.rows), static_cast<std::int64_t>(X.cols)});
    put("Y", Y.values, {static_cast<std::int64_t>(Y.rows), static_cast<std::int64_t>(Y.cols)});
    put("pred", P.values, {static_cast<std::int64_t>(P.rows), static_cast<std::int64_t>(P.cols)});
    put("alpha", {alpha}, {1});
    put("seed", {static_cast<double>(seed)}, {1});
    out[name + "/fold_of_row"] = NpyArray::from(fold_of_row, {static_cast<std::int64_t>(X.rows)});
    out[name + "/kfold_test_of_row"] = NpyArray::from(fold_of_row, {static_cast<std::int64_t>(X.rows)});
    if (Y.cols == 1) {
        const ScalarScores s = score_scalar(Y.values, P.values);
        put("r2", {s.r2}, {1});
        put("corr", {s.correlation}, {1});
        put("rmse", {s.rmse}, {1});
    } else {
        const CurveScores s = probe_curve(X, Y, f, alpha);
        put("r2_mean", {s.r2_mean}, {1});
        put("r2_pc1", {s.r2_pc1}, {1});
        put("rmse_mean", {s.rmse_mean}, {1});
    }
}

}  // namespace

TEST(ProbeSklearn, RidgePipelineMatchesScikitLearn) {
    NpzMembers cases;
    // More rows than features (primal solve), a planted linear signal plus noise.
    ProbeMatrix X1 = random_matrix(60, 12, 1, 3.0), Y1(60, 1);
    for (std::size_t r = 0; r < 60; ++r) Y1.at(r, 0) = 2.0 * X1.at(r, 3) - X1.at(r, 7) + 0.5 * random_matrix(1, 1, 100 + static_cast<std::uint32_t>(r)).values[0];
    add_case(cases, "primal", X1, Y1, 1.0, 5, 42);
    // Fewer rows than features (kernel solve), a constant feature column, alpha 10, 4 folds, another seed.
    ProbeMatrix X2 = random_matrix(23, 64, 2);
    for (std::size_t r = 0; r < 23; ++r) X2.at(r, 5) = 7.0;
    ProbeMatrix Y2 = random_matrix(23, 1, 3);
    add_case(cases, "kernel", X2, Y2, 10.0, 4, 7);
    // Multi-output curve targets [n, 60] built from a latent linear in the features.
    ProbeMatrix X3 = random_matrix(40, 30, 4), Y3(40, 60);
    for (std::size_t r = 0; r < 40; ++r)
        for (std::size_t c = 0; c < 60; ++c) Y3.at(r, c) = (X3.at(r, 0) + 0.3 * X3.at(r, 1)) * std::sin(0.1 * static_cast<double>(c)) + 0.2 * random_matrix(1, 1, 1000 + static_cast<std::uint32_t>(r * 60 + c)).values[0];
    add_case(cases, "curve", X3, Y3, 1.0, 5, 42);
    // A constant target: R² 0 (or 1 when predicted exactly), correlation 0.
    ProbeMatrix Y4(30, 1);
    for (double& v : Y4.values) v = 3.0;
    add_case(cases, "constant", random_matrix(30, 8, 5), Y4, 1.0, 5, 42);

    test::TempDir dir;
    write_npz(dir / "cases.npz", cases, false);
    const auto r = test::run_command(std::string(MESS_PYTHON) + " " + test::quote(std::string(MESS_SOURCE_DIR) + "/tests/probe/sklearn_parity.py") +
                                     " " + test::quote((dir / "cases.npz").string()));
    std::printf("%s", r.out.c_str());
    EXPECT_EQ(r.exit_code, 0) << r.out;
}
