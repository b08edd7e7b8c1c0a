// Tempogram, tempo, self-similarity and novelty.
#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "mess/dsp.hpp"
#include "fft.hpp"

namespace mess::dsp {

namespace {

// Each frame's autocorrelation for lags 0 .. win−1 from its power spectrum: a real FFT of a power-of-two length
// ≥ 2·win − 1 (so the circular correlation is the linear one), |X|², and the same FFT again (the power spectrum is
// real and even, so its forward transform is the inverse one times the length). Several frames per SIMD lane, in
// double precision: equal to the direct sums Σ f[i]·f[i + lag] to double rounding.
struct Autocorrelator {
    static constexpr int L = detail::BatchRealFft<double>::kLanes;
    int win, size;
    detail::BatchRealFft<double> forward, back;
    explicit Autocorrelator(int w) : win(w), size(padded_size(w)), forward(size), back(size) {}
    static int padded_size(int w) {
        int n = 2;
        while (n < 2 * w - 1) n *= 2;
        return n;
    }
    // Lane f's frame, win samples (the rest stays zero).
    double* frame(int f) { return forward.input() + f; }
    void run() {
        forward.run();
        const double *re = forward.re(), *im = forward.im();
        double* s = back.input();
        for (int k = 0; k <= size / 2; ++k)
            for (int f = 0; f < L; ++f) {
                const std::size_t at = static_cast<std::size_t>(k * L + f);
                s[at] = re[at] * re[at] + im[at] * im[at];
                if (k > 0 && k < size / 2) s[static_cast<std::size_t>((size - k) * L + f)] = s[at];
            }
        back.run();
    }
    // Lag l of every lane: L values (the division by the power-of-two size is exact as a product).
    const double* lags(int l) const { return back.re() + static_cast<std::size_t>(l) * L; }
};

// Each lane's lags (lags[lag·L + f], lag < win) times inv_size and divided by the lane's largest |lag value · inv_size|
// (1 when that is below the smallest normal float), as float into out[lag·L + f]. Vectorised across the lanes.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void normalise_lanes(const double* lags, int win, double inv_size, float* out) {
    constexpr int L = Autocorrelator::L;
    double peak[L] = {};
    for (int lag = 0; lag < win; ++lag)
        for (int f = 0; f < L; ++f) peak[f] = std::max(peak[f], std::fabs(lags[lag * L + f] * inv_size));
    for (int f = 0; f < L; ++f) peak[f] = peak[f] > std::numeric_limits<float>::min() ? peak[f] : 1.0;
    for (int lag = 0; lag < win; ++lag)
        for (int f = 0; f < L; ++f) out[lag * L + f] = static_cast<float>(lags[lag * L + f] * inv_size / peak[f]);
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
    std::vector<double> hann(static_cast<std::size_t>(win));
    for (int i = 0; i < win; ++i) hann[static_cast<std::size_t>(i)] = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / win);
    Autocorrelator corr(win);
    constexpr int L = Autocorrelator::L;
    const double inv_size = 1.0 / corr.size;  // a power of two: x·inv_size is x / size exactly
    std::vector<float> scaled(static_cast<std::size_t>(win * L));
    for (std::int64_t t0 = 0; t0 < n; t0 += L) {
        const int count = static_cast<int>(std::min<std::int64_t>(L, n - t0));
        if (count == L && t0 - half >= 0 && t0 + L - 1 - half + win <= n) {  // inside the envelope: sample i of every lane at once
            for (int i = 0; i < win; ++i) {
                const float* e = env.data() + (t0 - half + i);
                const double w = hann[static_cast<std::size_t>(i)];
                double* dst = corr.frame(0) + static_cast<std::ptrdiff_t>(i) * L;
                for (int f = 0; f < L; ++f) dst[f] = static_cast<double>(e[f]) * w;
            }
        } else {
            for (int f = 0; f < count; ++f)
                for (int i = 0; i < win; ++i) corr.frame(f)[i * L] = padded(t0 + f - half + i) * hann[static_cast<std::size_t>(i)];
        }
        corr.run();
        normalise_lanes(corr.lags(0), win, inv_size, scaled.data());
        for (int f = 0; f < count; ++f) {
            float* row = &out.values[static_cast<std::size_t>((t0 + f) * win)];
            for (int lag = 0; lag < win; ++lag) row[lag] = scaled[static_cast<std::size_t>(lag * L + f)];
        }
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
    const std::vector<double> x(f.values.begin(), f.values.end());
    auto set = [&](std::int64_t a, std::int64_t b, double s) {
        out.at(a, b) = out.at(b, a) = static_cast<float>(s / (norm[static_cast<std::size_t>(a)] * norm[static_cast<std::size_t>(b)]));
    };
    for (std::int64_t a = 0; a < f.rows; ++a) {
        const double* xa = &x[static_cast<std::size_t>(a * f.cols)];
        std::int64_t b = a;
        for (; b + 4 <= f.rows; b += 4) {  // four pairs at once: independent sums, each over the columns in order
            const double* xb = &x[static_cast<std::size_t>(b * f.cols)];
            double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
            for (std::int64_t c = 0; c < f.cols; ++c)
                s0 += xa[c] * xb[c], s1 += xa[c] * xb[c + f.cols], s2 += xa[c] * xb[c + 2 * f.cols], s3 += xa[c] * xb[c + 3 * f.cols];
            set(a, b, s0), set(a, b + 1, s1), set(a, b + 2, s2), set(a, b + 3, s3);
        }
        for (; b < f.rows; ++b) {
            double s = 0.0;
            for (std::int64_t c = 0; c < f.cols; ++c) s += xa[c] * x[static_cast<std::size_t>(b * f.cols + c)];
            set(a, b, s);
        }
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
