// STFT, mel, MFCC, chroma.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <tuple>

#include <kissfft/kiss_fftr.h>

#include "mess/dsp.hpp"
#include "fft.hpp"

namespace mess::dsp {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MESS_SIMD_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MESS_SIMD_CLONES
#endif

void StftParams::validate() const {
    if (n_fft < 4 || n_fft % 2 != 0) throw_usage("n_fft must be even and ≥ 4 (got {})", n_fft);
    if (hop < 1) throw_usage("hop must be ≥ 1 sample (got {})", hop);
}

void MelParams::validate(double sr) const {
    const double top = fmax > 0 ? fmax : sr / 2;
    if (n_mels < 1) throw_usage("n_mels must be ≥ 1 (got {})", n_mels);
    if (fmin < 0 || top <= fmin || top > sr / 2 + 1e-9)
        throw_usage("mel range must satisfy 0 ≤ fmin < fmax ≤ sr/2 (got {} .. {} Hz at {} Hz)", fmin, top, sr);
}

void require_finite(std::span<const float> y) {
    // Blocks tested by exponent bits (all ones: Inf or NaN), a branch-free loop; the sample named from a rescan.
    constexpr std::size_t kBlock = 4096;
    for (std::size_t from = 0; from < y.size(); from += kBlock) {
        const std::size_t to = std::min(y.size(), from + kBlock);
        std::uint32_t bad = 0;
        for (std::size_t i = from; i < to; ++i) bad |= (std::bit_cast<std::uint32_t>(y[i]) & 0x7f800000u) == 0x7f800000u ? 1u : 0u;
        if (!bad) continue;
        for (std::size_t i = from; i < to; ++i)
            if (!std::isfinite(y[i])) throw_input("non-finite sample ({}) at index {}", y[i], i);
    }
}

std::vector<double> fft_frequencies(double sr, int n_fft) {
    std::vector<double> f(static_cast<std::size_t>(n_fft / 2 + 1));
    for (std::size_t k = 0; k < f.size(); ++k) f[k] = static_cast<double>(k) * sr / n_fft;
    return f;
}

namespace {

// mag2[i] = re[i]² + im[i]² in double (products and sum rounded one by one: no clone has FMA).
MESS_SIMD_CLONES void squared_magnitudes(const float* re, const float* im, std::size_t n, double* mag2) {
    for (std::size_t i = 0; i < n; ++i) mag2[i] = static_cast<double>(re[i]) * re[i] + static_cast<double>(im[i]) * im[i];
}

// root[i] = √mag2[i] and power[i] = mag2[i], rounded to float (vectorised: mess_dsp builds with -fno-math-errno).
MESS_SIMD_CLONES void roots_and_powers(const double* mag2, std::size_t n, float* root, float* power) {
    for (std::size_t i = 0; i < n; ++i) root[i] = static_cast<float>(std::sqrt(mag2[i])), power[i] = static_cast<float>(mag2[i]);
}

// 10·log10(x) for a normal x > 0 (+∞ for +∞), without a library call so that loops vectorise: x = 2^e·m with m in
// [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1), summed to s^23 (|s| ≤ 0.172: the next term is below 2^−60 of
// the sum). Within a few double ulps of 10·std::log10(x), so what power_to_db rounds to float is the same value
// (0 of 4·10⁷ values from 1e-12 to 1e8 differed).
[[gnu::always_inline]] inline double ten_log10(double x) {
    const auto bits = std::bit_cast<std::uint64_t>(x);
    double e = std::bit_cast<double>((bits >> 52) | 0x4330000000000000ULL) - (4503599627370496.0 + 1023.0);  // exact
    double m = std::bit_cast<double>((bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL);
    const bool big = m > std::numbers::sqrt2;
    m = big ? 0.5 * m : m;
    e = big ? e + 1.0 : e;
    const double s = (m - 1.0) / (m + 1.0), s2 = s * s;
    double p = 1.0 / 23;
    for (int k = 21; k >= 1; k -= 2) p = p * s2 + 1.0 / k;
    const double db = (e * std::numbers::ln2 + 2.0 * s * p) * (10.0 / std::numbers::ln10);
    return x == std::numeric_limits<double>::infinity() ? x : db;
}

// v ← 10·log10(max(amin, v)) − offset for n values; amin: a normal double.
MESS_SIMD_CLONES void decibels(float* v, std::size_t n, double amin, double offset) {
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(ten_log10(std::max(amin, static_cast<double>(v[i]))) - offset);
}

std::vector<float> hann(int n) {
    std::vector<float> window(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) window[static_cast<std::size_t>(i)] = static_cast<float>(0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * i / n));
    return window;
}

// Hann-windowed frame t of the centred (zero-padded) signal (the KissFFT path; batches load through BatchRealFft).
void windowed_frame(std::span<const float> y, const StftParams& p, const std::vector<float>& window, std::int64_t t, float* frame) {
    const std::int64_t n = static_cast<std::int64_t>(y.size()), from = t * p.hop - p.n_fft / 2;
    if (from >= 0 && from + p.n_fft <= n) {
        const float* src = y.data() + from;
        for (std::size_t i = 0; i < window.size(); ++i) frame[i] = src[i] * window[i];
        return;
    }
    for (std::int64_t i = 0; i < p.n_fft; ++i) {
        const std::int64_t src = from + i;
        frame[static_cast<std::size_t>(i)] = src >= 0 && src < n ? y[static_cast<std::size_t>(src)] * window[static_cast<std::size_t>(i)] : 0.0f;
    }
}

// |STFT|² of every frame, in double from the float transform, handed out in blocks of bins: sink(t0, count, k0, k1,
// stride, mag2) gives bins k0 .. k1 − 1 of frames t0 .. t0 + count − 1, bin k of frame t0 + f at mag2[(k − k0)·stride + f]
// (a block small enough to stay in the first-level cache while the sink reads it frame by frame). Power-of-two
// lengths run through the batched FFT (several frames per SIMD vector); others through KissFFT, frame by frame.
template <class Sink>
void stft_mag2(std::span<const float> y, const StftParams& p, std::int64_t frames, Sink&& sink) {
    const std::int64_t bins = p.n_fft / 2 + 1;
    const std::vector<float> window = hann(p.n_fft);
    if (detail::BatchRealFft<float>::supports(p.n_fft)) {
        constexpr int L = detail::BatchRealFft<float>::kLanes;
        constexpr std::int64_t kBins = 32;
        detail::BatchRealFft<float> fft(p.n_fft);
        std::vector<double> mag2(static_cast<std::size_t>(kBins * L));
        for (std::int64_t t0 = 0; t0 < frames; t0 += L) {
            const int count = static_cast<int>(std::min<std::int64_t>(L, frames - t0));
            fft.load_frames(y, t0 * p.hop - p.n_fft / 2, p.hop, count, window.data());
            fft.run();
            for (std::int64_t k0 = 0; k0 < bins; k0 += kBins) {
                const std::int64_t k1 = std::min(bins, k0 + kBins);
                const float *re = fft.re() + k0 * L, *im = fft.im() + k0 * L;
                squared_magnitudes(re, im, static_cast<std::size_t>((k1 - k0) * L), mag2.data());
                sink(t0, count, k0, k1, std::int64_t{L}, mag2.data());
            }
        }
        return;
    }
    std::unique_ptr<std::remove_pointer_t<kiss_fftr_cfg>, decltype(&kiss_fftr_free)> cfg(
        kiss_fftr_alloc(p.n_fft, 0, nullptr, nullptr), &kiss_fftr_free);
    if (!cfg) throw_internal("kiss_fftr_alloc failed for n_fft {}", p.n_fft);
    std::vector<float> frame(window.size());
    std::vector<kiss_fft_cpx> spec(static_cast<std::size_t>(bins));
    std::vector<double> mag2(static_cast<std::size_t>(bins));
    for (std::int64_t t = 0; t < frames; ++t) {
        windowed_frame(y, p, window, t, frame.data());
        kiss_fftr(cfg.get(), frame.data(), spec.data());
        for (std::int64_t k = 0; k < bins; ++k) {
            const double re = spec[static_cast<std::size_t>(k)].r, im = spec[static_cast<std::size_t>(k)].i;
            mag2[static_cast<std::size_t>(k)] = re * re + im * im;
        }
        sink(t, 1, std::int64_t{0}, bins, std::int64_t{1}, mag2.data());
    }
}

}  // namespace

Matrix power_spectrogram(std::span<const float> y, const StftParams& p, double power) {
    p.validate();
    require_finite(y);
    if (!(power > 0)) throw_usage("spectrogram power must be positive (got {})", power);
    const std::int64_t bins = p.n_fft / 2 + 1;
    Matrix out{p.frames(static_cast<std::int64_t>(y.size())), bins, {}};
    out.values.resize(static_cast<std::size_t>(out.rows * bins));
    stft_mag2(y, p, out.rows, [&](std::int64_t t0, int count, std::int64_t k0, std::int64_t k1, std::int64_t stride, const double* mag2) {
        for (int f = 0; f < count; ++f)
            for (std::int64_t k = k0; k < k1; ++k) {
                const double m2 = mag2[(k - k0) * stride + f];
                out.at(t0 + f, k) = static_cast<float>(power == 2.0 ? m2 : power == 1.0 ? std::sqrt(m2) : std::pow(m2, power / 2.0));
            }
    });
    return out;
}

Spectra stft_spectra(std::span<const float> y, const StftParams& p) {
    p.validate();
    require_finite(y);
    const std::int64_t bins = p.n_fft / 2 + 1, rows = p.frames(static_cast<std::int64_t>(y.size()));
    Spectra s{{rows, bins, std::vector<float>(static_cast<std::size_t>(rows * bins))}, {rows, bins, std::vector<float>(static_cast<std::size_t>(rows * bins))}};
    std::vector<float> root, power;
    // Bin k of frame t0 + f at lanes[(k − k0)·stride + f] into row t0 + f of m.
    auto to_rows = [](const float* lanes, std::int64_t t0, int count, std::int64_t k0, std::int64_t k1, std::int64_t stride, Matrix& m) {
        float* row = &m.values[static_cast<std::size_t>(t0 * m.cols + k0)];
        if (stride == detail::BatchRealFft<float>::kLanes) return detail::lanes_to_rows(lanes, k1 - k0, count, row, m.cols);
        for (int f = 0; f < count; ++f)
            for (std::int64_t k = 0; k < k1 - k0; ++k) row[f * m.cols + k] = lanes[k * stride + f];
    };
    stft_mag2(y, p, rows, [&](std::int64_t t0, int count, std::int64_t k0, std::int64_t k1, std::int64_t stride, const double* mag2) {
        const auto n = static_cast<std::size_t>((k1 - k0) * stride);
        root.resize(n), power.resize(n);
        roots_and_powers(mag2, n, root.data(), power.data());
        to_rows(root.data(), t0, count, k0, k1, stride, s.magnitude);
        to_rows(power.data(), t0, count, k0, k1, stride, s.power);
    });
    return s;
}

namespace {

double hz_to_mel(double f, bool htk) {
    if (htk) return 2595.0 * std::log10(1.0 + f / 700.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, logstep = std::log(6.4) / 27.0;
    return f >= min_log_hz ? min_log_hz / f_sp + std::log(f / min_log_hz) / logstep : f / f_sp;
}

double mel_to_hz(double m, bool htk) {
    if (htk) return 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
    const double f_sp = 200.0 / 3, min_log_hz = 1000.0, min_log_mel = min_log_hz / f_sp, logstep = std::log(6.4) / 27.0;
    return m >= min_log_mel ? min_log_hz * std::exp(logstep * (m - min_log_mel)) : f_sp * m;
}

// acc[f] = Σ_{lo ≤ k < hi} w[k]·xt[kBlock·k + f] in double, in the taps' order, for the kBlock frames of a transposed
// block (independent vectors of 8 sums per tap; no clone has FMA, so each product and sum is rounded as the scalar
// loop does).
constexpr int kBlock = 8;
MESS_SIMD_CLONES void taps_of_block(const float* w, const float* xt, std::int64_t lo, std::int64_t hi, double* acc) {
    double a[kBlock] = {};
    for (std::int64_t k = lo; k < hi; ++k) {
        const double g = w[k];
        for (int f = 0; f < kBlock; ++f) a[f] += g * xt[k * kBlock + f];
    }
    for (int f = 0; f < kBlock; ++f) acc[f] = a[f];
}

// y[frames, rows of fb] = x[frames, bins] · fbᵀ, accumulated in double over each filter's non-zero span
// (mel and chroma filters are mostly zeros; skipping exact zeros leaves every sum bit for bit the same). kBlock
// frames at a time, transposed into one block (bin k's kBlock values side by side), vectors of sums per tap; then
// four at a time: four independent sums per tap. Every sum in the taps' order.
Matrix apply_filterbank(const Matrix& x, const Matrix& fb) {
    std::vector<std::pair<std::int64_t, std::int64_t>> span(static_cast<std::size_t>(fb.rows), {0, 0});
    for (std::int64_t m = 0; m < fb.rows; ++m) {
        std::int64_t lo = 0, hi = fb.cols;
        while (lo < hi && fb.at(m, lo) == 0.0f) ++lo;
        while (hi > lo && fb.at(m, hi - 1) == 0.0f) --hi;
        span[static_cast<std::size_t>(m)] = {lo, hi};
    }
    Matrix out{x.rows, fb.rows, std::vector<float>(static_cast<std::size_t>(x.rows * fb.rows))};
    std::int64_t t = 0;
    std::vector<float> xt(static_cast<std::size_t>(kBlock * x.cols));
    for (double acc[kBlock]; t + kBlock <= x.rows; t += kBlock) {
        for (std::int64_t k = 0; k < x.cols; ++k)
            for (int f = 0; f < kBlock; ++f) xt[static_cast<std::size_t>(kBlock * k + f)] = x.at(t + f, k);
        for (std::int64_t m = 0; m < fb.rows; ++m) {
            const auto [lo, hi] = span[static_cast<std::size_t>(m)];
            taps_of_block(&fb.values[static_cast<std::size_t>(m * fb.cols)], xt.data(), lo, hi, acc);
            for (int f = 0; f < kBlock; ++f) out.at(t + f, m) = static_cast<float>(acc[f]);
        }
    }
    for (; t + 4 <= x.rows; t += 4) {
        const float *x0 = &x.values[static_cast<std::size_t>(t * x.cols)], *x1 = x0 + x.cols, *x2 = x1 + x.cols, *x3 = x2 + x.cols;
        for (std::int64_t m = 0; m < fb.rows; ++m) {
            double a0 = 0.0, a1 = 0.0, a2 = 0.0, a3 = 0.0;
            const auto [lo, hi] = span[static_cast<std::size_t>(m)];
            const float* w = &fb.values[static_cast<std::size_t>(m * fb.cols)];
            for (std::int64_t k = lo; k < hi; ++k) {
                const double g = w[k];
                a0 += g * x0[k], a1 += g * x1[k], a2 += g * x2[k], a3 += g * x3[k];
            }
            out.at(t, m) = static_cast<float>(a0), out.at(t + 1, m) = static_cast<float>(a1);
            out.at(t + 2, m) = static_cast<float>(a2), out.at(t + 3, m) = static_cast<float>(a3);
        }
    }
    for (; t < x.rows; ++t)
        for (std::int64_t m = 0; m < fb.rows; ++m) {
            double acc = 0.0;
            const auto [lo, hi] = span[static_cast<std::size_t>(m)];
            for (std::int64_t k = lo; k < hi; ++k) acc += static_cast<double>(fb.at(m, k)) * x.at(t, k);
            out.at(t, m) = static_cast<float>(acc);
        }
    return out;
}

}  // namespace

Matrix mel_filterbank(double sr, int n_fft, const MelParams& p) {
    p.validate(sr);
    const double fmax = p.fmax > 0 ? p.fmax : sr / 2;
    const auto freqs = fft_frequencies(sr, n_fft);
    const double lo = hz_to_mel(p.fmin, p.htk), hi = hz_to_mel(fmax, p.htk);
    std::vector<double> edges(static_cast<std::size_t>(p.n_mels + 2));
    for (std::size_t i = 0; i < edges.size(); ++i)
        edges[i] = mel_to_hz(lo + (hi - lo) * static_cast<double>(i) / static_cast<double>(edges.size() - 1), p.htk);
    Matrix fb{p.n_mels, static_cast<std::int64_t>(freqs.size()), std::vector<float>(static_cast<std::size_t>(p.n_mels) * freqs.size())};
    for (int m = 0; m < p.n_mels; ++m) {
        const auto i = static_cast<std::size_t>(m);
        const double enorm = 2.0 / (edges[i + 2] - edges[i]);  // Slaney: constant area per filter
        for (std::size_t k = 0; k < freqs.size(); ++k) {
            const double lower = (freqs[k] - edges[i]) / (edges[i + 1] - edges[i]);
            const double upper = (edges[i + 2] - freqs[k]) / (edges[i + 2] - edges[i + 1]);
            fb.at(m, static_cast<std::int64_t>(k)) = static_cast<float>(std::max(0.0, std::min(lower, upper)) * enorm);
        }
    }
    return fb;
}

namespace {

// The mel filterbank of (sr, n_fft, params), built once per process: a track's window and curve analyses ask for the
// same few, and building one (exp and log per bin and filter) costs a third of applying it to a 5-s window. At most
// kMelCacheSize are kept.
constexpr std::size_t kMelCacheSize = 16;

std::shared_ptr<const Matrix> cached_mel_filterbank(double sr, int n_fft, const MelParams& p) {
    using Key = std::tuple<double, int, int, double, double, bool>;
    static std::mutex mutex;
    static std::map<Key, std::shared_ptr<const Matrix>> cache;
    const Key key{sr, n_fft, p.n_mels, p.fmin, p.fmax, p.htk};
    {
        const std::lock_guard lock(mutex);
        if (auto it = cache.find(key); it != cache.end()) return it->second;
    }
    auto fb = std::make_shared<const Matrix>(mel_filterbank(sr, n_fft, p));
    const std::lock_guard lock(mutex);
    if (cache.size() >= kMelCacheSize) cache.clear();
    return cache.emplace(key, std::move(fb)).first->second;
}

}  // namespace

Matrix mel_spectrogram(std::span<const float> y, double sr, const StftParams& stft, const MelParams& mel) {
    return mel_from_power(power_spectrogram(y, stft), sr, stft.n_fft, mel);
}

Matrix mel_from_power(const Matrix& power, double sr, int n_fft, const MelParams& mel) {
    if (power.cols != n_fft / 2 + 1) throw_usage("power spectrogram has {} bins, expected 1 + n_fft/2 = {}", power.cols, n_fft / 2 + 1);
    return apply_filterbank(power, *cached_mel_filterbank(sr, n_fft, mel));
}

void power_to_db(Matrix& s, double ref, double amin, double top_db) {
    if (!(amin > 0)) throw_usage("amin must be positive (got {})", amin);
    if (!(top_db >= 0)) throw_usage("top_db must be ≥ 0 (got {})", top_db);
    const double offset = 10.0 * std::log10(std::max(amin, ref));
    if (amin >= std::numeric_limits<double>::min() && amin <= std::numeric_limits<double>::max())
        decibels(s.values.data(), s.values.size(), amin, offset);
    else
        for (auto& v : s.values) v = static_cast<float>(10.0 * std::log10(std::max(amin, static_cast<double>(v))) - offset);
    float top = -std::numeric_limits<float>::infinity();
    for (const float v : s.values) top = std::max(top, v);
    const double peak = s.values.empty() ? -1e300 : static_cast<double>(top);
    const auto floor = static_cast<float>(peak - top_db);
    for (auto& v : s.values) v = std::max(v, floor);
}

Matrix mfcc(std::span<const float> y, double sr, int n_mfcc, const StftParams& stft, const MelParams& mel) {
    if (n_mfcc < 1 || n_mfcc > mel.n_mels) throw_usage("n_mfcc must be in [1, n_mels] (got {})", n_mfcc);
    return mfcc_from_power(power_spectrogram(y, stft), sr, n_mfcc, stft.n_fft, mel);
}

Matrix mfcc_from_power(const Matrix& power, double sr, int n_mfcc, int n_fft, const MelParams& mel) {
    if (n_mfcc < 1 || n_mfcc > mel.n_mels) throw_usage("n_mfcc must be in [1, n_mels] (got {})", n_mfcc);
    Matrix db = mel_from_power(power, sr, n_fft, mel);
    power_to_db(db);
    const std::int64_t N = db.cols;
    Matrix basis{n_mfcc, N, std::vector<float>(static_cast<std::size_t>(n_mfcc * N))};  // DCT-II, orthonormal
    for (std::int64_t k = 0; k < n_mfcc; ++k)
        for (std::int64_t n = 0; n < N; ++n)
            basis.at(k, n) = static_cast<float>(std::cos(std::numbers::pi * static_cast<double>(k * (2 * n + 1)) / (2.0 * static_cast<double>(N))) *
                                                std::sqrt((k == 0 ? 1.0 : 2.0) / static_cast<double>(N)));
    return apply_filterbank(db, basis);
}

Matrix chroma_filterbank(double sr, int n_fft, int n_chroma, double tuning) {
    if (n_chroma < 1) throw_usage("n_chroma must be ≥ 1 (got {})", n_chroma);
    const double nc = n_chroma, a440 = 440.0 * std::pow(2.0, tuning / nc), ctroct = 5.0, octwidth = 2.0;
    // Fractional pitch-class bin of every FFT frequency (bin 0 extrapolated 1.5 octaves below bin 1).
    std::vector<double> frq(static_cast<std::size_t>(n_fft));
    for (int k = 1; k < n_fft; ++k) frq[static_cast<std::size_t>(k)] = nc * std::log2(k * sr / n_fft / (a440 / 16.0));
    frq[0] = frq[1] - 1.5 * nc;
    std::vector<double> width(frq.size(), 1.0);
    for (std::size_t k = 0; k + 1 < frq.size(); ++k) width[k] = std::max(frq[k + 1] - frq[k], 1.0);
    const double half = std::round(nc / 2);
    const int bins = n_fft / 2 + 1;
    Matrix fb{n_chroma, bins, std::vector<float>(static_cast<std::size_t>(n_chroma * bins))};
    for (int k = 0; k < bins; ++k) {
        const auto kk = static_cast<std::size_t>(k);
        std::vector<double> w(static_cast<std::size_t>(n_chroma));
        double l2 = 0.0;
        for (int c = 0; c < n_chroma; ++c) {
            double d = std::fmod(frq[kk] - c + half + 10 * nc, nc);
            if (d < 0) d += nc;
            d -= half;
            w[static_cast<std::size_t>(c)] = std::exp(-0.5 * std::pow(2.0 * d / width[kk], 2.0));
            l2 += w[static_cast<std::size_t>(c)] * w[static_cast<std::size_t>(c)];
        }
        const double octave_weight = std::exp(-0.5 * std::pow((frq[kk] / nc - ctroct) / octwidth, 2.0));
        for (int c = 0; c < n_chroma; ++c) {
            const int row = ((c - 3 * (n_chroma / 12)) % n_chroma + n_chroma) % n_chroma;  // roll so row 0 is C
            fb.at(row, k) = static_cast<float>(w[static_cast<std::size_t>(c)] / std::sqrt(l2) * octave_weight);
        }
    }
    return fb;
}

Matrix chroma_stft(std::span<const float> y, double sr, const StftParams& stft) {
    Matrix c = apply_filterbank(power_spectrogram(y, stft), chroma_filterbank(sr, stft.n_fft));
    for (std::int64_t t = 0; t < c.rows; ++t) {
        float peak = 0.0f;
        for (std::int64_t k = 0; k < c.cols; ++k) peak = std::max(peak, std::fabs(c.at(t, k)));
        if (peak > std::numeric_limits<float>::min())
            for (std::int64_t k = 0; k < c.cols; ++k) c.at(t, k) /= peak;
    }
    return c;
}

}  // namespace mess::dsp
