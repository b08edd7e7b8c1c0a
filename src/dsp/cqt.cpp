// Tuning estimation, constant-Q transform and constant-Q chroma (librosa 0.11's estimate_tuning, cqt, chroma_cqt).
#include <algorithm>
#include <cmath>
#include <complex>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <numbers>
#include <tuple>

#include <kissfft/kiss_fft.h>
#include <kissfft/kiss_fftr.h>

#include "mess/dsp.hpp"
#include "fft.hpp"

namespace mess::dsp {

namespace {

constexpr double kHannBandwidth = 1.50018310546875;  // equivalent noise bandwidth of the Hann window, in bins
constexpr double kFastestRolloff = 0.85;             // the resampler roll-off librosa assumes for early downsampling

// One spectral peak of a magnitude frame: its interpolated frequency and magnitude.
struct Peak {
    double hz, mag;
};

// The peaks of frame t between 150 Hz and min(4 kHz, sr/2), as piptrack finds them: local maxima (greater than the
// bin below, not less than the bin above) of the frame with values ≤ 0.1·frame max zeroed, refined by a parabola.
void frame_peaks(const Matrix& s, std::int64_t t, double sr, int n_fft, std::vector<Peak>& out) {
    const std::int64_t bins = s.cols;
    const float* x = &s.values[static_cast<std::size_t>(t * bins)];
    float lane[8];  // the frame's maximum from eight running maxima (k mod 8): independent, vectorised, the same maximum
    std::fill_n(lane, 8, x[0]);
    std::int64_t k0 = 1;
    for (; k0 + 8 <= bins; k0 += 8)
        for (int j = 0; j < 8; ++j) lane[j] = x[k0 + j] > lane[j] ? x[k0 + j] : lane[j];
    float peak = *std::max_element(lane, lane + 8);
    for (std::int64_t k = k0; k < bins; ++k) peak = x[k] > peak ? x[k] : peak;
    const double ref = 0.1 * peak;
    auto masked = [&](std::int64_t k) { return x[k] > ref ? static_cast<double>(x[k]) : 0.0; };
    const double fmax = std::min(4000.0, sr / 2);
    const auto from = std::max<std::int64_t>(1, static_cast<std::int64_t>(150.0 * n_fft / sr) - 1);  // below: under 150 Hz
    for (std::int64_t k = from; k < bins; ++k) {
        const double f = static_cast<double>(k) * sr / n_fft;
        if (f >= fmax) break;
        if (f < 150.0) continue;
        if (!(masked(k) > masked(k - 1)) || (k + 1 < bins && !(masked(k) >= masked(k + 1)))) continue;
        double shift = 0.0, avg = 0.0;
        if (k + 1 < bins) {
            const double a = static_cast<double>(x[k + 1]) + x[k - 1] - 2.0 * x[k], b = 0.5 * (static_cast<double>(x[k + 1]) - x[k - 1]);
            shift = std::fabs(b) >= std::fabs(a) ? 0.0 : -b / a;
            avg = b;
        } else {
            avg = static_cast<double>(x[k]) - x[k - 1];
        }
        out.push_back({(static_cast<double>(k) + shift) * sr / n_fft, x[k] + 0.5 * avg * shift});
    }
}

// Median as NumPy computes it (mean of the two middle values for an even count).
double median_of(std::vector<double> v) {
    const std::size_t n = v.size(), h = n / 2;
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h), v.end());
    if (n % 2) return v[h];
    const double hi = v[h];
    return 0.5 * (*std::max_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(h)) + hi);
}

// The most common deviation from the equal-tempered grid (A440), in fractions of a bin: the left edge of the fullest
// of 100 histogram bins over [-0.5, 0.5] (librosa's pitch_tuning, resolution 0.01).
double pitch_tuning(const std::vector<double>& hz, int bins_per_octave) {
    if (hz.empty()) return 0.0;
    std::vector<double> edge(101);
    for (int i = 0; i <= 100; ++i) edge[static_cast<std::size_t>(i)] = static_cast<double>(i) * 0.01 + -0.5;
    std::vector<int> counts(100, 0);
    for (double f : hz) {
        double r = std::fmod(bins_per_octave * std::log2(f / (440.0 / 16.0)), 1.0);
        if (r < 0) r += 1.0;
        if (r >= 0.5) r -= 1.0;
        auto i = std::clamp(static_cast<int>(std::floor((r + 0.5) * 100.0)), 0, 99);
        if (r < edge[static_cast<std::size_t>(i)]) --i;  // NumPy's correction against the exact edges
        else if (i < 99 && r >= edge[static_cast<std::size_t>(i + 1)]) ++i;
        ++counts[static_cast<std::size_t>(std::clamp(i, 0, 99))];
    }
    return edge[static_cast<std::size_t>(std::max_element(counts.begin(), counts.end()) - counts.begin())];
}

}  // namespace

double estimate_tuning(const Matrix& magnitude, double sr, int n_fft, int bins_per_octave) {
    if (bins_per_octave < 1 || !(sr > 0) || magnitude.cols != n_fft / 2 + 1) throw_usage("estimate_tuning: inconsistent parameters");
    std::vector<Peak> peaks;
    for (std::int64_t t = 0; t < magnitude.rows; ++t) frame_peaks(magnitude, t, sr, n_fft, peaks);
    std::vector<double> mags;
    for (const auto& p : peaks)
        if (p.hz > 0) mags.push_back(p.mag);
    if (mags.empty()) return 0.0;
    const double threshold = median_of(mags);
    std::vector<double> hz;
    for (const auto& p : peaks)
        if (p.hz > 0 && p.mag >= threshold) hz.push_back(p.hz);
    return pitch_tuning(hz, bins_per_octave);
}

double estimate_tuning(std::span<const float> y, double sr, int bins_per_octave) {
    const StftParams p{2048, 512};
    return estimate_tuning(power_spectrogram(y, p, 1.0), sr, p.n_fft, bins_per_octave);
}

const std::vector<double>& halfband_taps() {
    static const std::vector<double> taps = [] {
        const int half = kHalfbandRadius;
        std::vector<double> h(static_cast<std::size_t>(2 * half + 1));
        const double i0b = std::cyl_bessel_i(0.0, kHalfbandBeta);
        double sum = 0.0;
        for (int m = -half; m <= half; ++m) {
            const double x = m / 2.0, r = static_cast<double>(m) / half;
            const double sinc = m == 0 ? 1.0 : std::sin(std::numbers::pi * x) / (std::numbers::pi * x);
            sum += h[static_cast<std::size_t>(m + half)] = 0.5 * sinc * std::cyl_bessel_i(0.0, kHalfbandBeta * std::sqrt(1.0 - r * r)) / i0b;
        }
        for (auto& v : h) v /= sum;
        return h;
    }();
    return taps;
}

std::vector<float> halve_rate(std::span<const float> y) {
    const auto& h = halfband_taps();
    const auto n = static_cast<std::int64_t>(y.size()), half = static_cast<std::int64_t>(kHalfbandRadius);
    std::vector<float> out(static_cast<std::size_t>((n + 1) / 2));
    auto at = [&](std::int64_t i) { return i >= 0 && i < n ? static_cast<double>(y[static_cast<std::size_t>(i)]) : 0.0; };
    // The even taps other than the centre are zero: output j is the centre tap times y[2j] plus, for odd m, the pairs
    // y[2j ± m] — odd samples, contiguous in j, so a block of outputs is summed tap by tap (each output's terms in the
    // same order as one at a time).
    auto edge = [&](std::int64_t j) {
        double acc = h[static_cast<std::size_t>(half)] * at(2 * j);
        for (std::int64_t m = 1; m <= half; m += 2) acc += h[static_cast<std::size_t>(half + m)] * (at(2 * j + m) + at(2 * j - m));
        out[static_cast<std::size_t>(j)] = static_cast<float>(acc * std::numbers::sqrt2);
    };
    const std::int64_t inner_lo = (half + 1) / 2, inner_hi = std::max(inner_lo, (n - half + 1) / 2);  // 2j ≥ half, 2j + half < n
    for (std::int64_t j = 0; j < std::min<std::int64_t>(inner_lo, static_cast<std::int64_t>(out.size())); ++j) edge(j);
    constexpr std::int64_t kBlock = 256;
    double acc[kBlock], odd[kBlock + kHalfbandRadius + 1];  // odd[i]: y[2(j0 + i) − half − 1 ...], every second sample
    for (std::int64_t j0 = inner_lo; j0 < inner_hi; j0 += kBlock) {
        const std::int64_t count = std::min(kBlock, inner_hi - j0);
        const float* c = y.data() + 2 * j0;
        for (std::int64_t i = 0; i < count + half - 1; ++i) odd[i] = c[2 * i - half + 1];  // y[2j ± m] = odd[j − j0 + (half ± m − 1)/2]
        for (std::int64_t b = 0; b < count; ++b) acc[b] = h[static_cast<std::size_t>(half)] * static_cast<double>(c[2 * b]);
        std::int64_t b0 = 0;
        for (; b0 + 16 <= count; b0 += 16) {  // sixteen outputs held in registers across the taps
            double a[16];
            for (int j = 0; j < 16; ++j) a[j] = acc[b0 + j];
            for (std::int64_t m = 1; m <= half; m += 2) {
                const double g = h[static_cast<std::size_t>(half + m)];
                const double *up = odd + b0 + (half + m - 1) / 2, *down = odd + b0 + (half - m - 1) / 2;
                for (int j = 0; j < 16; ++j) a[j] += g * (up[j] + down[j]);
            }
            for (int j = 0; j < 16; ++j) acc[b0 + j] = a[j];
        }
        for (std::int64_t m = 1; m <= half; m += 2) {
            const double g = h[static_cast<std::size_t>(half + m)];
            const double *up = odd + (half + m - 1) / 2, *down = odd + (half - m - 1) / 2;
            for (std::int64_t b = b0; b < count; ++b) acc[b] += g * (up[b] + down[b]);
        }
        for (std::int64_t b = 0; b < count; ++b) out[static_cast<std::size_t>(j0 + b)] = static_cast<float>(acc[b] * std::numbers::sqrt2);
    }
    for (std::int64_t j = std::max(inner_lo, inner_hi); j < static_cast<std::int64_t>(out.size()); ++j) edge(j);
    return out;
}

namespace {

// One octave's filters in the frequency domain: for each filter, its non-zero bins (after sparsification).
struct OctaveBasis {
    int n_fft = 0;
    std::vector<std::vector<std::pair<int, std::complex<double>>>> filters;
};

// Keeps the entries of `row` not smaller in magnitude than the one at which the sorted magnitudes' cumulative share
// of the row's L1 norm first reaches `quantile` (librosa's sparsify_rows).
std::vector<std::pair<int, std::complex<double>>> sparsify(const std::vector<std::complex<double>>& row, double quantile) {
    std::vector<double> mags(row.size());
    double norm = 0.0;
    for (std::size_t i = 0; i < row.size(); ++i) norm += mags[i] = std::abs(row[i]);
    std::vector<double> sorted = mags;
    std::sort(sorted.begin(), sorted.end());
    double cumulative = 0.0, cut = sorted.empty() ? 0.0 : sorted[0];
    for (double m : sorted) {
        cumulative += m / norm;
        cut = m;
        if (!(cumulative < quantile)) break;
    }
    std::vector<std::pair<int, std::complex<double>>> out;
    for (std::size_t i = 0; i < row.size(); ++i)
        if (mags[i] >= cut) out.emplace_back(static_cast<int>(i), row[i]);
    return out;
}

// The time-domain filter of centre `hz` (length Q·sr/hz): a Hann-windowed complex exponential, L1-normalised,
// centred in n_fft samples and scaled by length/n_fft; its FFT's non-negative half, sparsified and times `gain`.
std::vector<std::pair<int, std::complex<double>>> filter_fft(double hz, double length, double sr, int n_fft, double gain) {
    const auto start = static_cast<std::int64_t>(std::floor(-length / 2)), stop = static_cast<std::int64_t>(std::floor(length / 2));
    const std::int64_t count = stop - start, lpad = (n_fft - count) / 2;
    if (count > n_fft) throw_internal("constant-Q filter of {} samples exceeds n_fft {}", count, n_fft);
    std::vector<kiss_fft_cpx> in(static_cast<std::size_t>(n_fft), kiss_fft_cpx{0, 0}), out(in.size());
    std::vector<std::complex<double>> sig(static_cast<std::size_t>(count));
    double l1 = 0.0;
    for (std::int64_t j = 0; j < count; ++j) {
        const double w = 0.5 - 0.5 * std::cos(2.0 * std::numbers::pi * static_cast<double>(j) / static_cast<double>(count));
        sig[static_cast<std::size_t>(j)] = w * std::polar(1.0, 2.0 * std::numbers::pi * hz / sr * static_cast<double>(start + j));
        l1 += std::abs(sig[static_cast<std::size_t>(j)]);
    }
    const double scale = (l1 > 0 ? 1.0 / l1 : 1.0) * length / n_fft;
    for (std::int64_t j = 0; j < count; ++j) {
        const auto v = sig[static_cast<std::size_t>(j)] * scale;
        in[static_cast<std::size_t>(lpad + j)] = {static_cast<float>(v.real()), static_cast<float>(v.imag())};
    }
    std::unique_ptr<std::remove_pointer_t<kiss_fft_cfg>, decltype(&kiss_fft_free)> cfg(kiss_fft_alloc(n_fft, 0, nullptr, nullptr), &kiss_fft_free);
    if (!cfg) throw_internal("kiss_fft_alloc failed for n_fft {}", n_fft);
    kiss_fft(cfg.get(), in.data(), out.data());
    std::vector<std::complex<double>> row(static_cast<std::size_t>(n_fft / 2 + 1));
    for (std::size_t k = 0; k < row.size(); ++k) row[k] = std::complex<double>(out[k].r, out[k].i) * gain;
    return sparsify(row, 0.01);
}

OctaveBasis make_octave_basis(std::span<const double> hz, double q, double sr, double gain) {
    OctaveBasis b;
    double longest = 0.0;
    for (double f : hz) longest = std::max(longest, q * sr / f);
    b.n_fft = static_cast<int>(std::exp2(std::ceil(std::log2(longest))));
    for (double f : hz) b.filters.push_back(filter_fft(f, q * sr / f, sr, b.n_fft, gain));
    return b;
}

// The octave's basis, built once per (frequencies, Q, rate, gain) in this process: a file's track, window and curve
// analyses share bases (tuning comes in steps of 0.01 bin, so few keys recur), and building one costs as much as
// applying it to a 30-s signal (a complex FFT, sines and a sort per filter). At most kBasisCacheSize are kept.
// cqt_magnitude asks with frequencies in cycles per sample, rate 1 and gain 1: every whole octave of one transform
// then shares the top octave's basis (halving the rate halves the frequencies), its gain applied to the magnitudes.
constexpr std::size_t kBasisCacheSize = 64;

std::shared_ptr<const OctaveBasis> octave_basis(std::span<const double> hz, double q, double sr, double gain) {
    using Key = std::tuple<std::vector<double>, double, double, double>;
    static std::mutex mutex;
    static std::map<Key, std::shared_ptr<const OctaveBasis>> cache;
    Key key{std::vector<double>(hz.begin(), hz.end()), q, sr, gain};
    {
        const std::lock_guard lock(mutex);
        if (auto it = cache.find(key); it != cache.end()) return it->second;
    }
    auto basis = std::make_shared<const OctaveBasis>(make_octave_basis(hz, q, sr, gain));
    const std::lock_guard lock(mutex);
    if (cache.size() >= kBasisCacheSize) cache.clear();
    return cache.emplace(std::move(key), std::move(basis)).first->second;
}

// The bins any of the octave's filters reads: [lo, hi].
std::pair<int, int> bin_range(const OctaveBasis& b) {
    int lo = b.n_fft, hi = -1;
    for (const auto& f : b.filters)
        for (const auto& [k, w] : f) lo = std::min(lo, k), hi = std::max(hi, k);
    return {lo, hi};
}

// Filter outputs of one frame's spectrum bins [lo, ...] into row t of `out`.
template <class Bins>
void apply_basis(const OctaveBasis& b, const Bins& x, int lo, std::int64_t t, std::int64_t first, double gain, Matrix& out) {
    for (std::size_t f = 0; f < b.filters.size(); ++f) {
        double re = 0.0, im = 0.0;  // written out: std::complex's product checks for NaN on every call
        for (const auto& [k, w] : b.filters[f]) {
            const double xr = x[static_cast<std::size_t>(k - lo)].real(), xi = x[static_cast<std::size_t>(k - lo)].imag();
            re += w.real() * xr - w.imag() * xi;
            im += w.real() * xi + w.imag() * xr;
        }
        out.at(t, first + static_cast<std::int64_t>(f)) = static_cast<float>(gain * std::sqrt(re * re + im * im));
    }
}

// Whether the sliding DFT below is cheaper than an FFT per frame: the hop divides n_fft and updating the bins the
// filters read (hop + 3 complex operations per bin and frame, in double, one frame at a time) costs less than a
// frame's share of the batched FFT (about n_fft·log2(n_fft)/8 operations: several frames per SIMD vector). At
// hop 512 and 24 kHz: the octaves at hop 8 slide; those at hop 16 and above (sliding before the FFT was batched)
// take the FFT, measured 1.8 times fewer instructions for a 30-s chroma_cqt.
bool sliding_pays(const OctaveBasis& b, int hop) {
    const auto [lo, hi] = bin_range(b);
    return hi >= lo && b.n_fft % hop == 0 && static_cast<double>(hi - lo + 1) * (hop + 3) < 0.125 * b.n_fft * std::log2(b.n_fft);
}

// The same frames' spectra at the bins the filters read, in double precision, from chunks (the octaves where the
// hop is small next to n_fft: one FFT per frame would transform mostly the same samples again). With J =
// n_fft/hop and chunk s the hop samples from s·hop − n_fft/2, C_s[k] = Σ_m y[s·hop − n_fft/2 + m]·W^{k(s·hop + m)}
// (W = e^{−2πi/n_fft}), frame t's bin k is X_t[k] = W^{−k·t·hop}·Σ_{s=t}^{t+J−1} C_s[k]. The window sums come
// from running sums within blocks of J chunks (the suffix of one block plus the prefix of the next), never by
// subtraction: no cancellation, silent frames exactly 0. Equal to the FFT's bins up to rounding.
void octave_response_sliding(std::span<const float> y, int hop, const OctaveBasis& b, std::int64_t first, double gain, Matrix& out) {
    const int n_fft = b.n_fft, J = n_fft / hop;
    const auto [lo, hi] = bin_range(b);
    const auto nb = static_cast<std::size_t>(hi - lo + 1);
    const auto n = static_cast<std::int64_t>(y.size()), pad = static_cast<std::int64_t>(n_fft / 2);
    std::vector<std::complex<double>> tw(static_cast<std::size_t>(n_fft));
    for (int q = 0; q < n_fft; ++q) tw[static_cast<std::size_t>(q)] = std::polar(1.0, -2.0 * std::numbers::pi * q / n_fft);
    auto w = [&](std::size_t k, std::int64_t at) { return tw[static_cast<std::size_t>((lo + static_cast<std::int64_t>(k)) * at % n_fft)]; };
    const std::int64_t chunks = (out.rows + 2 * J - 1) / J * J;  // whole blocks covering every frame's chunks
    std::vector<std::complex<double>> pre(static_cast<std::size_t>(chunks) * nb, {0.0, 0.0});
    for (std::int64_t s = 0; s < chunks; ++s) {
        auto* c = &pre[static_cast<std::size_t>(s) * nb];
        for (int m = 0; m < hop; ++m) {
            const std::int64_t i = s * hop - pad + m;
            if (i < 0 || i >= n || y[static_cast<std::size_t>(i)] == 0.0f) continue;
            const double v = y[static_cast<std::size_t>(i)];
            const std::int64_t at = (s * hop + m) % n_fft;  // the phase index steps by `at` from bin to bin
            std::int64_t q = static_cast<std::int64_t>(lo) * at % n_fft;
            for (std::size_t k = 0; k < nb; ++k, q = q + at >= n_fft ? q + at - n_fft : q + at) {
                const auto& e = tw[static_cast<std::size_t>(q)];
                c[k] = {c[k].real() + v * e.real(), c[k].imag() + v * e.imag()};
            }
        }
    }
    std::vector<std::complex<double>> suf = pre, x(nb);
    for (std::int64_t s = 0; s < chunks; ++s) {  // prefix sums forward, suffix sums backward, within each block
        if (s % J != 0)
            for (std::size_t k = 0; k < nb; ++k) pre[static_cast<std::size_t>(s) * nb + k] += pre[static_cast<std::size_t>(s - 1) * nb + k];
        const std::int64_t r = chunks - 1 - s;
        if (r % J != J - 1)
            for (std::size_t k = 0; k < nb; ++k) suf[static_cast<std::size_t>(r) * nb + k] += suf[static_cast<std::size_t>(r + 1) * nb + k];
    }
    for (std::int64_t t = 0; t < out.rows; ++t) {
        const auto* head = &suf[static_cast<std::size_t>(t) * nb];
        const auto* tail = &pre[static_cast<std::size_t>(t + J - 1) * nb];
        for (std::size_t k = 0; k < nb; ++k) x[k] = std::conj(w(k, t * hop % n_fft)) * (t % J == 0 ? head[k] : head[k] + tail[k]);
        apply_basis(b, x, lo, t, first, gain, out);
    }
}

// Σ over taps of w·x for every lane: bin[t] of the lane-major spectra (xr, xi: kLanes values per bin) times the
// tap (wr, wi), added to (re, im) in double, the taps in order. Built for AVX-512, AVX2 and baseline x86-64.
constexpr int kLanes = detail::BatchRealFft<float>::kLanes;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx512f", "avx2", "default")))
#endif
void taps_across_lanes(const float* xr, const float* xi, const std::int32_t* bin, const double* wr, const double* wi, std::size_t taps,
                       double* re_out, double* im_out) {
    double re[kLanes] = {}, im[kLanes] = {};
    for (std::size_t t = 0; t < taps; ++t) {
        const float *a = xr + static_cast<std::ptrdiff_t>(bin[t]) * kLanes, *b = xi + static_cast<std::ptrdiff_t>(bin[t]) * kLanes;
        for (int l = 0; l < kLanes; ++l) {
            re[l] += wr[t] * a[l] - wi[t] * b[l];
            im[l] += wr[t] * b[l] + wi[t] * a[l];
        }
    }
    for (int l = 0; l < kLanes; ++l) re_out[l] = re[l], im_out[l] = im[l];
}

// An octave's filters as flat arrays (bins, real and imaginary weights; filter f's taps from start[f]).
struct FlatBasis {
    std::vector<std::int32_t> bin;
    std::vector<double> wr, wi;
    std::vector<std::size_t> start;
    explicit FlatBasis(const OctaveBasis& b) {
        for (const auto& filter : b.filters) {
            start.push_back(bin.size());
            for (const auto& [k, w] : filter) bin.push_back(k), wr.push_back(w.real()), wi.push_back(w.imag());
        }
        start.push_back(bin.size());
    }
};

// apply_basis for the frames of one batched FFT: each tap multiplies the same bin of every frame (the lanes), so
// the sums run across the lanes, in double and in the taps' order as apply_basis does.
void apply_basis_lanes(const FlatBasis& b, const detail::BatchRealFft<float>& fft, std::int64_t t0, int count, std::int64_t first,
                       double gain, Matrix& out) {
    double re[kLanes], im[kLanes];
    for (std::size_t f = 0; f + 1 < b.start.size(); ++f) {
        const std::size_t s = b.start[f];
        taps_across_lanes(fft.re(), fft.im(), b.bin.data() + s, b.wr.data() + s, b.wi.data() + s, b.start[f + 1] - s, re, im);
        for (int l = 0; l < count; ++l) out.at(t0 + l, first + static_cast<std::int64_t>(f)) = static_cast<float>(gain * std::sqrt(re[l] * re[l] + im[l] * im[l]));
    }
}

// |basis · STFT| (ones window, centred, zero padding) into columns [first, first + filters) of `out` for its rows;
// the frames' real FFTs run several at a time (one per SIMD lane, detail::BatchRealFft).
void octave_response(std::span<const float> y, int hop, const OctaveBasis& b, std::int64_t first, double gain, Matrix& out) {
    if (sliding_pays(b, hop)) return octave_response_sliding(y, hop, b, first, gain, out);
    constexpr int L = kLanes;
    detail::BatchRealFft<float> fft(b.n_fft);
    const FlatBasis flat(b);
    for (std::int64_t t0 = 0; t0 < out.rows; t0 += L) {
        const int count = static_cast<int>(std::min<std::int64_t>(L, out.rows - t0));
        fft.load_frames(y, t0 * hop - b.n_fft / 2, hop, count, nullptr);
        fft.run();
        apply_basis_lanes(flat, fft, t0, count, first, gain, out);
    }
}

int two_factors(int x) {
    int n = 0;
    while (x > 0 && x % 2 == 0) x /= 2, ++n;
    return n;
}

}  // namespace

void CqtParams::validate(double sr) const {
    if (hop < 1 || n_bins < 1 || bins_per_octave < 1 || !(fmin > 0)) throw_usage("constant-Q: hop, n_bins, bins_per_octave and fmin must be positive");
    if (!(tuning >= -0.5 && tuning < 0.5)) throw_usage("constant-Q: tuning must lie in [-0.5, 0.5) bins (got {})", tuning);
    const double top = fmin * std::exp2((tuning + n_bins - 1) / bins_per_octave);
    const double alpha = (std::exp2(2.0 / bins_per_octave) - 1) / (std::exp2(2.0 / bins_per_octave) + 1);
    if (top * (1 + 0.5 * kHannBandwidth * alpha) > sr / 2)
        throw_usage("constant-Q: the top bin ({:.1f} Hz) reaches past the Nyquist frequency ({} Hz)", top, sr / 2);
}

Matrix cqt_magnitude(std::span<const float> y_in, double sr_in, const CqtParams& p) {
    p.validate(sr_in);
    require_finite(y_in);
    const int bpo = p.bins_per_octave, n_octaves = (p.n_bins + bpo - 1) / bpo, n_filters = std::min(bpo, p.n_bins);
    std::vector<double> hz(static_cast<std::size_t>(p.n_bins));
    for (int k = 0; k < p.n_bins; ++k) hz[static_cast<std::size_t>(k)] = p.fmin * std::exp2(p.tuning / bpo) * std::exp2(static_cast<double>(k) / bpo);
    const double alpha = (std::exp2(2.0 / bpo) - 1) / (std::exp2(2.0 / bpo) + 1), q = 1.0 / alpha;
    const double cutoff = hz.back() * (1 + 0.5 * kHannBandwidth / q);
    // Early downsampling while the top octave stays far below the Nyquist frequency and the hop allows it.
    const int early = std::min(std::max(0, static_cast<int>(std::ceil(std::log2(kFastestRolloff * sr_in / 2 / cutoff))) - 2),
                               std::max(0, two_factors(p.hop) - n_octaves + 1));
    std::vector<float> y(y_in.begin(), y_in.end());
    for (int i = 0; i < early; ++i) y = halve_rate(y);
    const double sr = sr_in / std::exp2(early);
    int hop = p.hop >> early;
    if (y.empty()) return Matrix{0, p.n_bins, {}};
    // Frames: the fewest any octave's signal gives.
    std::int64_t frames = std::numeric_limits<std::int64_t>::max(), len = static_cast<std::int64_t>(y.size());
    for (int i = 0, h = hop; i < n_octaves; ++i) {
        frames = std::min(frames, 1 + len / h);
        if (h % 2 == 0) h /= 2, len = (len + 1) / 2;
    }
    Matrix out{frames, p.n_bins, std::vector<float>(static_cast<std::size_t>(frames * p.n_bins), 0.0f)};
    double my_sr = sr;
    for (int i = 0; i < n_octaves; ++i) {
        const int top = p.n_bins - i * n_filters, first = std::max(0, top - n_filters);
        std::vector<double> cycles(static_cast<std::size_t>(top - first));  // per sample at this octave's rate
        for (int k = first; k < top; ++k)  // a whole octave reads the top octave's (the same filters, half the rate)
            cycles[static_cast<std::size_t>(k - first)] = top - first == n_filters ? hz[static_cast<std::size_t>(k + i * n_filters)] / sr : hz[static_cast<std::size_t>(k)] / my_sr;
        octave_response(y, hop, *octave_basis(cycles, q, 1.0, 1.0), first, std::sqrt(sr / my_sr), out);
        if (hop % 2 == 0) hop /= 2, my_sr /= 2, y = halve_rate(y);
    }
    for (std::int64_t t = 0; t < frames; ++t)
        for (int k = 0; k < p.n_bins; ++k) out.at(t, k) = static_cast<float>(out.at(t, k) / std::sqrt(q * sr / hz[static_cast<std::size_t>(k)]));
    return out;
}

Matrix chroma_cqt(std::span<const float> y, double sr, int hop) {
    return chroma_cqt(y, sr, hop, estimate_tuning(y, sr, 36));
}

Matrix chroma_cqt(std::span<const float> y, double sr, int hop, double tuning) {
    CqtParams p;
    p.hop = hop;
    p.tuning = tuning;
    const Matrix c = cqt_magnitude(y, sr, p);
    Matrix out{c.rows, 12, std::vector<float>(static_cast<std::size_t>(c.rows * 12), 0.0f)};
    for (std::int64_t t = 0; t < c.rows; ++t) {
        double pc[12] = {};
        for (int b = 0; b < c.cols; ++b) pc[((b % 36) + 1) / 3 % 12] += c.at(t, b);
        const double peak = *std::max_element(pc, pc + 12);
        for (int k = 0; k < 12; ++k) out.at(t, k) = static_cast<float>(peak < std::numeric_limits<float>::min() ? pc[k] : pc[k] / peak);
    }
    return out;
}

}  // namespace mess::dsp
