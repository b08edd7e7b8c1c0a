// Onset picking, semitone chroma and agglomerative segmentation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <queue>
#include <vector>

#include "mess/dsp.hpp"

namespace mess::dsp {

std::vector<std::int64_t> onset_detect(std::span<const float> env_in, double sr, int hop) {
    if (hop < 1 || !(sr > 0)) throw_usage("onset_detect needs a positive sample rate and hop");
    require_finite(env_in);
    const auto n = static_cast<std::int64_t>(env_in.size());
    if (n == 0) return {};
    std::vector<double> env(env_in.begin(), env_in.end());
    const double lo = *std::min_element(env.begin(), env.end());
    for (auto& v : env) v -= lo;
    const double hi = *std::max_element(env.begin(), env.end());
    for (auto& v : env) v /= hi + std::numeric_limits<float>::min();
    auto frames = [&](double seconds) { return static_cast<std::int64_t>(std::floor(seconds * sr / hop)); };
    const std::int64_t pre_max = frames(0.03), post_max = frames(0.0) + 1, pre_avg = frames(0.10), post_avg = frames(0.10) + 1,
                       wait = frames(0.03);
    const double delta = 0.07;
    std::vector<std::int64_t> out;
    std::int64_t last = -wait - 1;
    for (std::int64_t t = 0; t < n; ++t) {
        const std::int64_t a = std::max<std::int64_t>(0, t - pre_max), b = std::min(n, t + post_max);
        if (env[static_cast<std::size_t>(t)] < *std::max_element(env.begin() + a, env.begin() + b)) continue;
        const std::int64_t c = std::max<std::int64_t>(0, t - pre_avg), d = std::min(n, t + post_avg);
        double mean = 0.0;
        for (std::int64_t i = c; i < d; ++i) mean += env[static_cast<std::size_t>(i)];
        mean /= static_cast<double>(d - c);
        if (env[static_cast<std::size_t>(t)] < mean + delta) continue;
        if (t - last <= wait) continue;
        out.push_back(t);
        last = t;
    }
    return out;
}

Matrix semitone_spectrogram(std::span<const float> y, double sr, int hop) {
    StftParams p{8192, hop};
    Matrix power = power_spectrogram(y, p);
    const auto freqs = fft_frequencies(sr, p.n_fft);
    Matrix out{power.rows, 84, std::vector<float>(static_cast<std::size_t>(power.rows * 84), 0.0f)};
    // Semitone s (0 = C1) has centre 32.703·2^(s/12) Hz; weight of an FFT bin: triangle in semitones.
    std::vector<std::vector<std::pair<std::int64_t, double>>> bands(84);
    for (std::size_t k = 1; k < freqs.size(); ++k) {
        const double semis = 12.0 * std::log2(freqs[k] / 32.703195662574829);
        for (int s = std::max(0, static_cast<int>(std::floor(semis)) - 1); s <= std::min(83, static_cast<int>(std::ceil(semis)) + 1); ++s) {
            const double w = 1.0 - std::fabs(semis - s);
            if (w > 0) bands[static_cast<std::size_t>(s)].emplace_back(static_cast<std::int64_t>(k), w);
        }
    }
    for (std::int64_t t = 0; t < power.rows; ++t)
        for (int s = 0; s < 84; ++s) {
            double acc = 0.0;
            for (auto [k, w] : bands[static_cast<std::size_t>(s)]) acc += w * power.at(t, k);
            out.at(t, s) = static_cast<float>(acc);
        }
    return out;
}

Matrix chroma_semitone(std::span<const float> y, double sr, int hop) {
    const Matrix semis = semitone_spectrogram(y, sr, hop);
    Matrix out{semis.rows, 12, std::vector<float>(static_cast<std::size_t>(semis.rows * 12), 0.0f)};
    for (std::int64_t t = 0; t < semis.rows; ++t) {
        double pc[12] = {};
        for (int s = 0; s < 84; ++s) pc[s % 12] += semis.at(t, s);
        const double peak = *std::max_element(pc, pc + 12);
        for (int c = 0; c < 12; ++c) out.at(t, c) = static_cast<float>(peak > std::numeric_limits<float>::min() ? pc[c] / peak : 0.0);
    }
    return out;
}

std::vector<std::int64_t> agglomerative_segments(const Matrix& f, int k) {
    if (k < 1 || k > f.rows) throw_usage("cannot cut {} frames into {} segments", f.rows, k);
    const auto n = static_cast<std::size_t>(f.rows), dims = static_cast<std::size_t>(f.cols);
    // Segments as a doubly linked list over frame indices (a segment is named by its first frame).
    std::vector<std::int64_t> prev(n), next(n), size(n, 1), version(n, 0);
    std::vector<double> sum(n * dims);
    for (std::size_t t = 0; t < n; ++t) {
        prev[t] = static_cast<std::int64_t>(t) - 1;
        next[t] = t + 1 < n ? static_cast<std::int64_t>(t + 1) : -1;
        for (std::size_t c = 0; c < dims; ++c) sum[t * dims + c] = f.at(static_cast<std::int64_t>(t), static_cast<std::int64_t>(c));
    }
    // Ward: merging A and B raises the within-cluster sum of squares by |A||B|/(|A|+|B|)·‖mean A − mean B‖².
    auto cost = [&](std::size_t a, std::size_t b) {
        double d2 = 0.0;
        for (std::size_t c = 0; c < dims; ++c) {
            const double diff = sum[a * dims + c] / static_cast<double>(size[a]) - sum[b * dims + c] / static_cast<double>(size[b]);
            d2 += diff * diff;
        }
        return static_cast<double>(size[a] * size[b]) / static_cast<double>(size[a] + size[b]) * d2;
    };
    struct Candidate {
        double cost;
        std::size_t left, right;
        std::int64_t left_version, right_version;
        bool operator>(const Candidate& o) const { return cost != o.cost ? cost > o.cost : left > o.left; }
    };
    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
    for (std::size_t t = 0; t + 1 < n; ++t) heap.push({cost(t, t + 1), t, t + 1, 0, 0});
    std::size_t segments = n;
    while (segments > static_cast<std::size_t>(k) && !heap.empty()) {
        Candidate c = heap.top();
        heap.pop();
        // Stale when either side has merged since, or they are no longer neighbours.
        if (version[c.left] != c.left_version || version[c.right] != c.right_version || next[c.left] != static_cast<std::int64_t>(c.right))
            continue;
        for (std::size_t d = 0; d < dims; ++d) sum[c.left * dims + d] += sum[c.right * dims + d];
        size[c.left] += size[c.right];
        next[c.left] = next[c.right];
        if (next[c.left] >= 0) prev[static_cast<std::size_t>(next[c.left])] = static_cast<std::int64_t>(c.left);
        ++version[c.left];
        version[c.right] = -1;  // gone
        --segments;
        if (prev[c.left] >= 0) {
            const auto p = static_cast<std::size_t>(prev[c.left]);
            heap.push({cost(p, c.left), p, c.left, version[p], version[c.left]});
        }
        if (next[c.left] >= 0) {
            const auto q = static_cast<std::size_t>(next[c.left]);
            heap.push({cost(c.left, q), c.left, q, version[c.left], version[q]});
        }
    }
    std::vector<std::int64_t> starts;
    for (std::int64_t t = 0; t >= 0; t = next[static_cast<std::size_t>(t)]) starts.push_back(t);
    return starts;
}

}  // namespace mess::dsp
