// One window through a rung and back: the forward pass AspectModel::apply and training share, and the
// gradients of the learned rungs (diagonal, linear, mlp).
#include "forward.hpp"

#include <algorithm>
#include <cmath>

namespace mess::detail {

MlpLayout::MlpLayout(const AspectModel& m)
    : din(static_cast<std::size_t>(m.in_dim)), hidden(static_cast<std::size_t>(m.hidden_dim)), out(static_cast<std::size_t>(m.out_dim)),
      b1(din * hidden), w2(din * hidden + hidden) {}

namespace {

// y[r] = Σ_j w[r, j] x[j] (+ bias[r]) for a row-major [rows, cols] block of floats.
void matvec(const float* w, const float* bias, const std::vector<double>& x, std::size_t rows, std::vector<double>& y) {
    const std::size_t cols = x.size();
    y.assign(rows, 0.0);
    for (std::size_t r = 0; r < rows; ++r) {
        const float* row = w + r * cols;
        double acc = bias ? bias[r] : 0.0;
        for (std::size_t j = 0; j < cols; ++j) acc += row[j] * x[j];
        y[r] = acc;
    }
}

void mlp_forward(const AspectModel& m, AspectPass& s) {
    const MlpLayout l(m);
    matvec(m.weights.data(), m.weights.data() + l.b1, s.z, l.hidden, s.pre);
    std::vector<double> h(l.hidden);
    for (std::size_t u = 0; u < l.hidden; ++u) h[u] = std::max(s.pre[u], 0.0);
    matvec(m.weights.data() + l.w2, nullptr, h, l.out, s.y);
}

void mlp_backward(const AspectModel& m, const AspectPass& s, const std::vector<double>& gy, std::vector<double>& grad) {
    const MlpLayout l(m);
    std::vector<double> ga(l.hidden, 0.0);  // ∂/∂pre: W2ᵀ gy where the unit is active
    for (std::size_t k = 0; k < l.out; ++k) {
        const float* w2 = m.weights.data() + l.w2 + k * l.hidden;
        double* g2 = grad.data() + l.w2 + k * l.hidden;
        for (std::size_t u = 0; u < l.hidden; ++u) {
            if (s.pre[u] <= 0) continue;
            g2[u] += gy[k] * s.pre[u];
            ga[u] += gy[k] * w2[u];
        }
    }
    for (std::size_t u = 0; u < l.hidden; ++u) {
        if (ga[u] == 0) continue;
        double* g1 = grad.data() + u * l.din;
        for (std::size_t j = 0; j < l.din; ++j) g1[j] += ga[u] * s.z[j];
        grad[l.b1 + u] += ga[u];
    }
}

}  // namespace

void aspect_forward(const AspectModel& m, const float* x, AspectPass& s) {
    const auto din = static_cast<std::size_t>(m.in_dim);
    s.z.resize(din);
    for (std::size_t j = 0; j < din; ++j) s.z[j] = m.rung == AspectRung::identity ? x[j] : (double(x[j]) - m.mean[j]) / m.scale[j];
    if (m.rung == AspectRung::linear) {
        matvec(m.weights.data(), nullptr, s.z, static_cast<std::size_t>(m.out_dim), s.y);
    } else if (m.rung == AspectRung::mlp) {
        mlp_forward(m, s);
    } else {
        s.y = s.z;
        if (m.rung == AspectRung::diagonal)
            for (std::size_t j = 0; j < din; ++j) s.y[j] *= m.weights[j];
    }
    double n2 = 0;
    for (double v : s.y) n2 += v * v;
    s.norm = std::max(std::sqrt(n2), 1e-12);
}

void aspect_backward(const AspectModel& m, const AspectPass& s, const std::vector<double>& gy, std::vector<double>& grad) {
    const auto din = static_cast<std::size_t>(m.in_dim);
    if (m.rung == AspectRung::diagonal) {
        for (std::size_t j = 0; j < din; ++j) grad[j] += gy[j] * s.z[j];
    } else if (m.rung == AspectRung::linear) {
        for (std::size_t k = 0; k < gy.size(); ++k) {
            double* row = grad.data() + k * din;
            for (std::size_t j = 0; j < din; ++j) row[j] += gy[k] * s.z[j];
        }
    } else if (m.rung == AspectRung::mlp) {
        mlp_backward(m, s, gy, grad);
    }
}

}  // namespace mess::detail
