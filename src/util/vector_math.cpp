// Vector arithmetic shared by the feature store, probing and search.
#include <cmath>
#include <vector>

#include "mess/util.hpp"

namespace mess {

void l2_normalize(float* v, std::size_t dim) noexcept {
    double s = 0;
    for (std::size_t i = 0; i < dim; ++i) s += static_cast<double>(v[i]) * v[i];
    if (s <= 0) return;
    const float inv = static_cast<float>(1.0 / std::sqrt(s));
    for (std::size_t i = 0; i < dim; ++i) v[i] *= inv;
}

std::size_t first_non_finite(std::span<const float> v) noexcept {
    for (std::size_t i = 0; i < v.size(); ++i)
        if (!std::isfinite(v[i])) return i;
    return v.size();
}

void mean_of_rows(const float* x, std::int64_t rows, std::int64_t cols, float* out) {
    std::vector<double> acc(static_cast<std::size_t>(cols), 0.0);
    for (std::int64_t r = 0; r < rows; ++r)
        for (std::int64_t c = 0; c < cols; ++c) acc[static_cast<std::size_t>(c)] += x[r * cols + c];
    for (std::int64_t c = 0; c < cols; ++c)
        out[c] = rows > 0 ? static_cast<float>(acc[static_cast<std::size_t>(c)] / static_cast<double>(rows)) : 0.0f;
}

}  // namespace mess
