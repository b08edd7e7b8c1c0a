// Internal to the targets module: population statistics of small vectors (0 for empty input).
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace mess::targets_detail {

template <class T>
double mean(const std::vector<T>& v) {
    return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}

inline double variance(const std::vector<double>& v) {
    const double m = mean(v);
    double s = 0.0;
    for (double x : v) s += (x - m) * (x - m);
    return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

inline double stdev(const std::vector<double>& v) { return std::sqrt(variance(v)); }

inline double median(std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace mess::targets_detail
