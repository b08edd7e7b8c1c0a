// Internal to the targets module: population statistics of small vectors (0 for empty input).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

namespace mess::targets_detail {

// Frames of every curve target (the original's 60 over the first 30 s).
inline constexpr int kCurveFrames = 60;

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

// The predecessor's crescendo (increasing) / diminuendo strength of a smoothed envelope: its longest run of
// strictly increasing (decreasing) steps — the first one when several are equally long — scored
// |x[end] − x[start]| × steps; 0 without such a step. (Not the run with the largest score.)
inline double longest_run_strength(const std::vector<float>& x, bool increasing) {
    std::size_t best_len = 0, best_start = 0, len = 0, start = 0;
    for (std::size_t i = 0; i + 1 < x.size(); ++i) {
        if (increasing ? x[i + 1] > x[i] : x[i + 1] < x[i]) {
            if (len == 0) start = i;
            if (++len > best_len) best_len = len, best_start = start;
        } else {
            len = 0;
        }
    }
    return best_len == 0 ? 0.0 : std::fabs(static_cast<double>(x[best_start + best_len]) - x[best_start]) * static_cast<double>(best_len);
}

// The predecessor's attack sharpness: the mean of |db[t + 1] − db[t]| (the step after each onset frame t,
// as NumPy's diff indexed at the onset) over the onsets with t + 1 inside the envelope; 0 without any.
inline double forward_step_at(const std::vector<double>& db, const std::vector<std::int64_t>& onsets) {
    std::vector<double> steps;
    for (auto t : onsets)
        if (t >= 0 && t + 1 < static_cast<std::int64_t>(db.size())) steps.push_back(std::fabs(db[static_cast<std::size_t>(t + 1)] - db[static_cast<std::size_t>(t)]));
    return mean(steps);
}

}  // namespace mess::targets_detail
