// Savitzky–Golay, Gaussian and median filters.
#include <algorithm>
#include <cmath>

#include "mess/dsp.hpp"

namespace mess::dsp {
namespace {

// Least-squares polynomial through (positions[i], values[i]), evaluated at `at`; solved in double by
// normal equations (orders are small).
std::vector<double> polyfit(const std::vector<double>& pos, const std::vector<double>& val, int order) {
    const int m = order + 1;
    std::vector<double> ata(static_cast<std::size_t>(m * m), 0.0), atb(static_cast<std::size_t>(m), 0.0);
    for (std::size_t i = 0; i < pos.size(); ++i) {
        std::vector<double> pw(static_cast<std::size_t>(m), 1.0);
        for (int j = 1; j < m; ++j) pw[static_cast<std::size_t>(j)] = pw[static_cast<std::size_t>(j - 1)] * pos[i];
        for (int r = 0; r < m; ++r) {
            atb[static_cast<std::size_t>(r)] += pw[static_cast<std::size_t>(r)] * val[i];
            for (int c = 0; c < m; ++c) ata[static_cast<std::size_t>(r * m + c)] += pw[static_cast<std::size_t>(r)] * pw[static_cast<std::size_t>(c)];
        }
    }
    // Gaussian elimination with partial pivoting.
    for (int col = 0; col < m; ++col) {
        int piv = col;
        for (int r = col + 1; r < m; ++r)
            if (std::fabs(ata[static_cast<std::size_t>(r * m + col)]) > std::fabs(ata[static_cast<std::size_t>(piv * m + col)])) piv = r;
        for (int c = 0; c < m; ++c) std::swap(ata[static_cast<std::size_t>(col * m + c)], ata[static_cast<std::size_t>(piv * m + c)]);
        std::swap(atb[static_cast<std::size_t>(col)], atb[static_cast<std::size_t>(piv)]);
        for (int r = col + 1; r < m; ++r) {
            const double f = ata[static_cast<std::size_t>(r * m + col)] / ata[static_cast<std::size_t>(col * m + col)];
            for (int c = col; c < m; ++c) ata[static_cast<std::size_t>(r * m + c)] -= f * ata[static_cast<std::size_t>(col * m + c)];
            atb[static_cast<std::size_t>(r)] -= f * atb[static_cast<std::size_t>(col)];
        }
    }
    std::vector<double> coef(static_cast<std::size_t>(m));
    for (int r = m - 1; r >= 0; --r) {
        double s = atb[static_cast<std::size_t>(r)];
        for (int c = r + 1; c < m; ++c) s -= ata[static_cast<std::size_t>(r * m + c)] * coef[static_cast<std::size_t>(c)];
        coef[static_cast<std::size_t>(r)] = s / ata[static_cast<std::size_t>(r * m + r)];
    }
    return coef;
}

double polyval(const std::vector<double>& coef, double x) {
    double v = 0.0;
    for (std::size_t j = coef.size(); j-- > 0;) v = v * x + coef[j];
    return v;
}

}  // namespace

std::vector<float> savgol_filter(std::span<const float> x, int window, int order) {
    const auto n = static_cast<int>(x.size());
    if (window < 1 || window % 2 == 0) throw_usage("savgol window must be odd and ≥ 1 (got {})", window);
    if (order < 0 || order >= window) throw_usage("savgol order must be in [0, window) (got {} for window {})", order, window);
    if (window > n) throw_usage("savgol window {} is longer than the signal ({} samples)", window, n);
    const int half = window / 2;
    // Interior: the centre value of the polynomial fitted to each window = a fixed set of weights.
    std::vector<double> offsets(static_cast<std::size_t>(window));
    for (int i = 0; i < window; ++i) offsets[static_cast<std::size_t>(i)] = i - half;
    std::vector<double> weights(static_cast<std::size_t>(window));
    for (int i = 0; i < window; ++i) {  // response to a unit impulse at offset i
        std::vector<double> unit(static_cast<std::size_t>(window), 0.0);
        unit[static_cast<std::size_t>(i)] = 1.0;
        weights[static_cast<std::size_t>(i)] = polyfit(offsets, unit, order)[0];
    }
    std::vector<float> out(x.size());
    for (int t = half; t < n - half; ++t) {
        double acc = 0.0;
        for (int i = 0; i < window; ++i) acc += weights[static_cast<std::size_t>(i)] * x[static_cast<std::size_t>(t - half + i)];
        out[static_cast<std::size_t>(t)] = static_cast<float>(acc);
    }
    // Edges: evaluate the polynomial fitted to the first / last window.
    for (int side = 0; side < 2; ++side) {
        const int start = side == 0 ? 0 : n - window;
        std::vector<double> pos(static_cast<std::size_t>(window)), val(static_cast<std::size_t>(window));
        for (int i = 0; i < window; ++i) {
            pos[static_cast<std::size_t>(i)] = i;
            val[static_cast<std::size_t>(i)] = x[static_cast<std::size_t>(start + i)];
        }
        auto coef = polyfit(pos, val, order);
        for (int i = 0; i < half; ++i) {
            const int local = side == 0 ? i : window - half + i;
            out[static_cast<std::size_t>(start + local)] = static_cast<float>(polyval(coef, local));
        }
    }
    return out;
}

std::vector<float> gaussian_filter(std::span<const float> x, double sigma) {
    if (!(sigma > 0)) throw_usage("gaussian sigma must be positive (got {})", sigma);
    const int radius = static_cast<int>(4.0 * sigma + 0.5);
    std::vector<double> k(static_cast<std::size_t>(2 * radius + 1));
    double sum = 0.0;
    for (int i = -radius; i <= radius; ++i) sum += (k[static_cast<std::size_t>(i + radius)] = std::exp(-0.5 * i * i / (sigma * sigma)));
    const auto n = static_cast<std::int64_t>(x.size());
    std::vector<float> out(x.size());
    for (std::int64_t t = 0; t < n; ++t) {
        double acc = 0.0;
        for (int i = -radius; i <= radius; ++i)
            acc += k[static_cast<std::size_t>(i + radius)] * x[static_cast<std::size_t>(std::clamp<std::int64_t>(t + i, 0, n - 1))];
        out[static_cast<std::size_t>(t)] = static_cast<float>(acc / sum);
    }
    return out;
}

std::vector<float> median_filter(std::span<const float> x, int size) {
    if (size < 1 || size % 2 == 0) throw_usage("median filter size must be odd and ≥ 1 (got {})", size);
    const auto n = static_cast<std::int64_t>(x.size());
    const int half = size / 2;
    std::vector<float> out(x.size()), win(static_cast<std::size_t>(size));
    for (std::int64_t t = 0; t < n; ++t) {
        for (int i = -half; i <= half; ++i)
            win[static_cast<std::size_t>(i + half)] = x[static_cast<std::size_t>(std::clamp<std::int64_t>(t + i, 0, n - 1))];
        std::nth_element(win.begin(), win.begin() + half, win.end());
        out[static_cast<std::size_t>(t)] = win[static_cast<std::size_t>(half)];
    }
    return out;
}

}  // namespace mess::dsp
