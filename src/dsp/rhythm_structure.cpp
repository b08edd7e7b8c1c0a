// Tempogram, tempo, self-similarity and novelty.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "mess/dsp.hpp"

namespace mess::dsp {

namespace {

// Σ x[i]·x[i + lag] over i < count, in four interleaved partial sums (independent additions pipeline;
// the order of the terms within each sum is unchanged).
double lagged_dot(const double* x, int count, int lag) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    int i = 0;
    for (; i + 4 <= count; i += 4) {
        s0 += x[i] * x[i + lag];
        s1 += x[i + 1] * x[i + 1 + lag];
        s2 += x[i + 2] * x[i + 2 + lag];
        s3 += x[i + 3] * x[i + 3 + lag];
    }
    for (; i < count; ++i) s0 += x[i] * x[i + lag];
    return (s0 + s1) + (s2 + s3);
}

}  // namespace

Matrix tempogram(std::span<const float> env, int win) {
    if (win < 2) throw_usage("tempogram window must be ≥ 2 frames (got {})", win);
    require_finite(env);
    const auto n = static_cast<std::int64_t>(env.size());
    const std::int64_t half = win / 2;
    // Linear ramps from 0 up to the end values (numpy pad mode "linear_ramp", end values 0).
    auto padded = [&](std::int64_t i) -> double {  // index into the envelope, possibly outside it
        if (n == 0) return 0.0;
        if (i < 0) return env[0] * static_cast<double>(i + half) / static_cast<double>(half);
        if (i >= n) return env[static_cast<std::size_t>(n - 1)] * static_cast<double>(half - (i - n + 1)) / static_cast<double>(half);
        return env[static_cast<std::size_t>(i)];
    };
    Matrix out{n, win, std::vector<float>(static_cast<std::size_t>(n * win))};
    std::vector<double> hann(static_cast<std::size_t>(win)), frame(hann.size()), ac(hann.size());
    for (int i = 0; i < win; ++i) hann[static_cast<std::size_t>(i)] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / win);
    for (std::int64_t t = 0; t < n; ++t) {
        for (int i = 0; i < win; ++i) frame[static_cast<std::size_t>(i)] = padded(t - half + i) * hann[static_cast<std::size_t>(i)];
        double peak = 0.0;
        for (int lag = 0; lag < win; ++lag) {
            ac[static_cast<std::size_t>(lag)] = lagged_dot(frame.data(), win - lag, lag);
            peak = std::max(peak, std::fabs(ac[static_cast<std::size_t>(lag)]));
        }
        for (int lag = 0; lag < win; ++lag)
            out.at(t, lag) = static_cast<float>(peak > std::numeric_limits<float>::min() ? ac[static_cast<std::size_t>(lag)] / peak
                                                                                        : ac[static_cast<std::size_t>(lag)]);
    }
    return out;
}

void TempoParams::validate() const {
    if (!(start_bpm > 0) || !(std_bpm > 0)) throw_usage("tempo prior needs positive start_bpm and std_bpm");
    if (!(min_bpm > 0) || !(max_bpm > min_bpm)) throw_usage("tempo range must satisfy 0 < min_bpm < max_bpm");
    if (!(ac_seconds > 0)) throw_usage("ac_seconds must be positive");
}

double estimate_tempo(std::span<const float> env, double sr, int hop, const TempoParams& p) {
    p.validate();
    if (hop < 1 || !(sr > 0)) throw_usage("tempo needs a positive sample rate and hop");
    const int win = std::max(2, static_cast<int>(std::floor(p.ac_seconds * sr / hop)));
    Matrix tg = tempogram(env, win);
    if (tg.rows == 0) return 0.0;
    std::vector<double> mean(static_cast<std::size_t>(win), 0.0);
    for (std::int64_t t = 0; t < tg.rows; ++t)
        for (int lag = 0; lag < win; ++lag) mean[static_cast<std::size_t>(lag)] += tg.at(t, lag);
    double energy = 0.0;
    for (auto& v : mean) energy += std::fabs(v /= static_cast<double>(tg.rows));
    if (energy <= 0.0) return 0.0;
    auto bpm_of = [&](double lag) { return 60.0 * sr / (hop * lag); };
    std::vector<double> score(static_cast<std::size_t>(win), -std::numeric_limits<double>::infinity());
    for (int lag = 1; lag < win; ++lag) {
        const double bpm = bpm_of(lag);
        if (bpm < p.min_bpm || bpm > p.max_bpm) continue;
        const double z = (std::log2(bpm) - std::log2(p.start_bpm)) / p.std_bpm;
        score[static_cast<std::size_t>(lag)] = std::log1p(1e6 * std::max(0.0, mean[static_cast<std::size_t>(lag)])) - 0.5 * z * z;
    }
    const auto best = static_cast<int>(std::max_element(score.begin(), score.end()) - score.begin());
    if (!std::isfinite(score[static_cast<std::size_t>(best)])) return 0.0;
    double lag = best;
    if (best > 1 && best + 1 < win) {  // parabola through the tempogram peak and its neighbours
        const double a = mean[static_cast<std::size_t>(best - 1)], b = mean[static_cast<std::size_t>(best)], c = mean[static_cast<std::size_t>(best + 1)];
        const double denom = a - 2 * b + c;
        if (denom < 0) lag += std::clamp(0.5 * (a - c) / denom, -0.5, 0.5);
    }
    return bpm_of(lag);
}

double beat_track_tempo(std::span<const float> env, double sr, int hop) {
    if (hop < 1 || !(sr > 0)) throw_usage("tempo needs a positive sample rate and hop");
    if (std::all_of(env.begin(), env.end(), [](float v) { return v == 0.0f; })) return 0.0;
    const int win = static_cast<int>(std::floor(8.0 * sr / hop));
    if (win < 2) throw_usage("tempo: an 8-s window is under two frames at hop {}", hop);
    const Matrix tg = tempogram(env, win);
    std::vector<double> mean(static_cast<std::size_t>(win), 0.0);
    for (std::int64_t t = 0; t < tg.rows; ++t)
        for (int lag = 0; lag < win; ++lag) mean[static_cast<std::size_t>(lag)] += tg.at(t, lag);
    double best = -std::numeric_limits<double>::infinity();
    int best_lag = 1;
    for (int lag = 1; lag < win; ++lag) {
        const double bpm = 60.0 * sr / (hop * static_cast<double>(lag));
        if (bpm >= 320.0) continue;
        const double z = std::log2(bpm) - std::log2(120.0);
        const double score = std::log1p(1e6 * std::max(0.0, mean[static_cast<std::size_t>(lag)] / static_cast<double>(tg.rows))) - 0.5 * z * z;
        if (score > best) best = score, best_lag = lag;
    }
    return 60.0 * sr / (hop * static_cast<double>(best_lag));
}

Matrix cosine_self_similarity(const Matrix& f) {
    std::vector<double> norm(static_cast<std::size_t>(f.rows));
    for (std::int64_t r = 0; r < f.rows; ++r) {
        double s = 0.0;
        for (std::int64_t c = 0; c < f.cols; ++c) s += static_cast<double>(f.at(r, c)) * f.at(r, c);
        norm[static_cast<std::size_t>(r)] = std::max(std::sqrt(s), 1e-10);
    }
    Matrix out{f.rows, f.rows, std::vector<float>(static_cast<std::size_t>(f.rows * f.rows))};
    for (std::int64_t a = 0; a < f.rows; ++a)
        for (std::int64_t b = a; b < f.rows; ++b) {
            double s = 0.0;
            for (std::int64_t c = 0; c < f.cols; ++c) s += static_cast<double>(f.at(a, c)) * f.at(b, c);
            out.at(a, b) = out.at(b, a) = static_cast<float>(s / (norm[static_cast<std::size_t>(a)] * norm[static_cast<std::size_t>(b)]));
        }
    return out;
}

std::vector<float> checkerboard_novelty(const Matrix& s, int half) {
    if (half < 1) throw_usage("novelty kernel half-width must be ≥ 1 (got {})", half);
    if (s.rows != s.cols) throw_usage("self-similarity must be square (got {}×{})", s.rows, s.cols);
    std::vector<float> out(static_cast<std::size_t>(s.rows), 0.0f);
    auto weight = [&](int i, int j) {
        return (i > 0 ? 1.0 : -1.0) * (j > 0 ? 1.0 : -1.0) * std::exp(-static_cast<double>(i * i + j * j) / (half * half));
    };
    for (std::int64_t t = half; t < s.rows - half; ++t) {
        double acc = 0.0;
        for (int i = -half; i <= half; ++i)
            for (int j = -half; j <= half; ++j)
                if (i != 0 && j != 0) acc += weight(i, j) * s.at(t + i, t + j);
        out[static_cast<std::size_t>(t)] = static_cast<float>(acc);
    }
    return out;
}

}  // namespace mess::dsp
