// Internal to the aspects module: one window through a rung, in double, keeping what the backward pass
// needs (standardised input, the mlp's pre-activations). AspectModel::apply and training share it.
#pragma once

#include <vector>

#include "mess/aspects.hpp"

namespace mess::detail {

struct AspectPass {
    std::vector<double> z, pre, y;  // standardised input [Din]; mlp pre-activations W1 z + b1 [H]; output [k]
    double norm = 0;                // |y| (≥ 1e-12)
};

// The offsets of W1, b1 and W2 in an mlp model's flat weights.
struct MlpLayout {
    std::size_t din, hidden, out, b1, w2;
    explicit MlpLayout(const AspectModel& m);
};

void aspect_forward(const AspectModel& m, const float* x, AspectPass& s);
// grad += ∂(gy · y)/∂weights for the pass `s` (rungs diagonal, linear, mlp).
void aspect_backward(const AspectModel& m, const AspectPass& s, const std::vector<double>& gy, std::vector<double>& grad);

}  // namespace mess::detail
