// Frame descriptors: RMS, zero-crossing rate, spectral shape, onset strength.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "mess/dsp.hpp"

namespace mess::dsp {

namespace {

// Σ y² over [from, to) ∩ [0, n), in double.
double energy(std::span<const float> y, std::int64_t from, std::int64_t to) {
    from = std::max<std::int64_t>(from, 0), to = std::min<std::int64_t>(to, static_cast<std::int64_t>(y.size()));
    double acc = 0.0;
    for (std::int64_t i = from; i < to; ++i) acc += static_cast<double>(y[static_cast<std::size_t>(i)]) * y[static_cast<std::size_t>(i)];
    return acc;
}

}  // namespace

std::vector<float> rms(std::span<const float> y, const StftParams& p) {
    p.validate();
    require_finite(y);
    const std::int64_t n = static_cast<std::int64_t>(y.size()), pad = p.n_fft / 2;
    std::vector<float> out(static_cast<std::size_t>(p.frames(n)));
    if (pad % p.hop == 0 && p.n_fft % p.hop == 0) {  // frames are whole hops: add the hops' energies (no subtraction)
        const std::int64_t before = pad / p.hop, per = p.n_fft / p.hop;
        std::vector<double> hop_energy(out.size() + static_cast<std::size_t>(per));
        for (std::size_t j = 0; j < hop_energy.size(); ++j)
            hop_energy[j] = energy(y, (static_cast<std::int64_t>(j) - before) * p.hop, (static_cast<std::int64_t>(j) - before + 1) * p.hop);
        for (std::size_t t = 0; t < out.size(); ++t) {
            double acc = 0.0;
            for (std::int64_t c = 0; c < per; ++c) acc += hop_energy[t + static_cast<std::size_t>(c)];
            out[t] = static_cast<float>(std::sqrt(acc / p.n_fft));
        }
        return out;
    }
    for (std::size_t t = 0; t < out.size(); ++t) {
        const std::int64_t from = static_cast<std::int64_t>(t) * p.hop - pad;
        out[t] = static_cast<float>(std::sqrt(energy(y, from, from + p.n_fft) / p.n_fft));
    }
    return out;
}

std::vector<float> zero_crossing_rate(std::span<const float> y, const StftParams& p) {
    p.validate();
    require_finite(y);
    const std::int64_t n = static_cast<std::int64_t>(y.size()), pad = p.n_fft / 2;
    std::vector<float> out(static_cast<std::size_t>(p.frames(n)));
    auto negative = [&](std::int64_t i) {  // |x| ≤ 1e-10 is zero, zero is positive
        const float v = y[static_cast<std::size_t>(i)];
        return std::fabs(v) > 1e-10f && v < 0.0f;
    };
    // Edge padding repeats the end samples, so pairs outside the signal never change sign; a frame counts the
    // pairs (i − 1, i) whose second sample i is in it, its own first sample excepted.
    auto flips = [&](std::int64_t from, std::int64_t to) {  // sign changes of the pairs ending in [from, to)
        from = std::max<std::int64_t>(from, 1), to = std::min(to, n);
        std::int64_t c = 0;
        for (std::int64_t i = from; i < to; ++i) c += negative(i) != negative(i - 1) ? 1 : 0;
        return c;
    };
    if (pad % p.hop == 0 && p.n_fft % p.hop == 0) {  // frames are whole hops: add the hops' counts
        const std::int64_t before = pad / p.hop, per = p.n_fft / p.hop;
        std::vector<std::int64_t> hop_count(out.size() + static_cast<std::size_t>(per));
        for (std::size_t j = 0; j < hop_count.size(); ++j) {
            const std::int64_t from = (static_cast<std::int64_t>(j) - before) * p.hop;
            hop_count[j] = flips(from, from + p.hop);
        }
        for (std::size_t t = 0; t < out.size(); ++t) {
            std::int64_t c = 0;
            for (std::int64_t h = 0; h < per; ++h) c += hop_count[t + static_cast<std::size_t>(h)];
            const std::int64_t start = static_cast<std::int64_t>(t) * p.hop - pad;
            c -= flips(start, start + 1);
            out[t] = static_cast<float>(static_cast<double>(c) / p.n_fft);
        }
        return out;
    }
    std::vector<std::int64_t> upto(static_cast<std::size_t>(n + 1), 0);  // upto[j]: sign changes of the pairs ending before j
    for (std::int64_t i = 1; i < n; ++i) upto[static_cast<std::size_t>(i + 1)] = upto[static_cast<std::size_t>(i)] + flips(i, i + 1);
    for (std::size_t t = 0; t < out.size(); ++t) {
        const std::int64_t start = static_cast<std::int64_t>(t) * p.hop - pad;
        const std::int64_t from = std::clamp<std::int64_t>(start + 1, 0, n), to = std::clamp<std::int64_t>(start + p.n_fft, 0, n);
        out[t] = static_cast<float>(static_cast<double>(to > from ? upto[static_cast<std::size_t>(to)] - upto[static_cast<std::size_t>(from)] : 0) / p.n_fft);
    }
    return out;
}

namespace {

void check_bins(const Matrix& m, int n_fft) {
    if (m.cols != n_fft / 2 + 1) throw_usage("spectrogram has {} bins, expected 1 + n_fft/2 = {}", m.cols, n_fft / 2 + 1);
}

// Σ x[k] and Σ x[k]·f[k] over the n bins of one frame (with `centre`, Σ x[k]·(f[k] − centre)² instead), in four
// partial sums (bin k into sum k mod 4, the bins in order: independent additions pipeline), each a vector lane.
// Built for AVX2 and baseline x86-64 (neither contracts to FMA: the same sums bit for bit).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
void moment_sums(const float* x, const double* f, std::size_t n, const double* centre, double* first, double* second) {
    typedef double V __attribute__((vector_size(32)));
    V a = {}, b = {};
    const std::size_t whole = n / 4 * 4;
    if (centre) {
        const V c = {*centre, *centre, *centre, *centre};
        for (std::size_t k = 0; k < whole; k += 4) {
            const V xv = {x[k], x[k + 1], x[k + 2], x[k + 3]}, fv = {f[k], f[k + 1], f[k + 2], f[k + 3]};
            a += xv * (fv - c) * (fv - c);
        }
        for (std::size_t k = whole; k < n; ++k) a[k % 4] += x[k] * (f[k] - *centre) * (f[k] - *centre);
        *first = (a[0] + a[1]) + (a[2] + a[3]);
        return;
    }
    for (std::size_t k = 0; k < whole; k += 4) {
        const V xv = {x[k], x[k + 1], x[k + 2], x[k + 3]}, fv = {f[k], f[k + 1], f[k + 2], f[k + 3]};
        a += xv, b += xv * fv;
    }
    for (std::size_t k = whole; k < n; ++k) a[k % 4] += x[k], b[k % 4] += x[k] * f[k];
    *first = (a[0] + a[1]) + (a[2] + a[3]), *second = (b[0] + b[1]) + (b[2] + b[3]);
}

// Per frame: the mean frequency of the spectrum normalised to sum 1 (silent frames: 0), and with `spread` the
// deviation around it (p = 2).
SpectralShape spectral_moments(const Matrix& mag, double sr, int n_fft, bool spread) {
    check_bins(mag, n_fft);
    const auto f = fft_frequencies(sr, n_fft);
    SpectralShape m{std::vector<float>(static_cast<std::size_t>(mag.rows)), std::vector<float>(spread ? static_cast<std::size_t>(mag.rows) : 0)};
    for (std::int64_t t = 0; t < mag.rows; ++t) {
        const float* x = &mag.values[static_cast<std::size_t>(t * mag.cols)];
        double sum = 0, weighted = 0, deviation = 0;
        moment_sums(x, f.data(), f.size(), nullptr, &sum, &weighted);
        const double scale = sum > std::numeric_limits<float>::min() ? sum : 1.0;
        const double centre = weighted / scale;
        m.centroid[static_cast<std::size_t>(t)] = static_cast<float>(centre);
        if (!spread) continue;
        moment_sums(x, f.data(), f.size(), &centre, &deviation, nullptr);
        m.bandwidth[static_cast<std::size_t>(t)] = static_cast<float>(std::sqrt(deviation / scale));
    }
    return m;
}

}  // namespace

std::vector<float> spectral_centroid(const Matrix& mag, double sr, int n_fft) { return spectral_moments(mag, sr, n_fft, false).centroid; }
std::vector<float> spectral_bandwidth(const Matrix& mag, double sr, int n_fft) { return spectral_moments(mag, sr, n_fft, true).bandwidth; }
SpectralShape spectral_shape(const Matrix& mag, double sr, int n_fft) { return spectral_moments(mag, sr, n_fft, true); }

std::vector<float> spectral_rolloff(const Matrix& mag, double sr, int n_fft, double roll_percent) {
    check_bins(mag, n_fft);
    if (!(roll_percent > 0 && roll_percent < 1)) throw_usage("roll_percent must be in (0, 1) (got {})", roll_percent);
    const auto f = fft_frequencies(sr, n_fft);
    const auto bins = static_cast<std::size_t>(mag.cols);
    std::vector<float> out(static_cast<std::size_t>(mag.rows));
    // Running sums of four frames at once (four independent chains), each in bin order: the last is the frame's
    // total; the roll-off is the first bin whose running sum reaches roll_percent of it.
    constexpr std::int64_t kFrames = 4;
    std::vector<double> cum(bins * kFrames);
    for (std::int64_t t0 = 0; t0 < mag.rows; t0 += kFrames) {
        const std::int64_t count = std::min(kFrames, mag.rows - t0);
        double run[kFrames] = {};
        for (std::size_t k = 0; k < bins; ++k)
            for (std::int64_t j = 0; j < kFrames; ++j) {
                run[j] += j < count ? mag.values[static_cast<std::size_t>(t0 + j) * bins + k] : 0.0f;
                cum[k * kFrames + static_cast<std::size_t>(j)] = run[j];
            }
        for (std::int64_t j = 0; j < count; ++j) {
            const double threshold = roll_percent * run[j];
            std::size_t k = 0;
            while (k < bins && !(cum[k * kFrames + static_cast<std::size_t>(j)] >= threshold)) ++k;
            out[static_cast<std::size_t>(t0 + j)] = static_cast<float>(f[std::min(k, f.size() - 1)]);
        }
    }
    return out;
}

Matrix spectral_contrast(const Matrix& mag, double sr, int n_fft, int n_bands, double fmin, double quantile) {
    check_bins(mag, n_fft);
    if (n_bands < 1 || !(fmin > 0) || !(quantile > 0 && quantile < 1))
        throw_usage("spectral contrast needs n_bands ≥ 1, fmin > 0 and 0 < quantile < 1");
    const auto f = fft_frequencies(sr, n_fft);
    if (fmin * std::pow(2.0, n_bands - 1) >= sr / 2)  // the last band starts below Nyquist and extends to it
        throw_usage("spectral contrast: the top band starts at {} Hz, above the Nyquist frequency {} Hz", fmin * std::pow(2.0, n_bands - 1), sr / 2);
    const auto bins = static_cast<std::int64_t>(f.size());
    Matrix peak{mag.rows, n_bands + 1, std::vector<float>(static_cast<std::size_t>(mag.rows * (n_bands + 1)))};
    Matrix valley = peak;
    std::vector<float> column;
    for (int k = 0; k <= n_bands; ++k) {
        const double lo = k == 0 ? 0.0 : fmin * std::pow(2.0, k - 1), hi = fmin * std::pow(2.0, k);
        std::int64_t first = -1, last = -1;
        for (std::int64_t b = 0; b < bins; ++b)
            if (f[static_cast<std::size_t>(b)] >= lo && f[static_cast<std::size_t>(b)] <= hi) {
                if (first < 0) first = b;
                last = b;
            }
        if (first < 0) throw_usage("spectral contrast: band {} ({:.0f}–{:.0f} Hz) holds no FFT bin; use a larger n_fft", k, lo, hi);
        std::int64_t count = last - first + 1;  // bins in the band, as counted for the quantile
        if (k > 0) --first, ++count;             // borrow the bin below the lower edge
        if (k == n_bands) count += bins - 1 - last, last = bins - 1;  // the last band reaches Nyquist
        const std::int64_t end = k < n_bands ? last : last + 1;       // other bands drop their top bin
        const auto q = static_cast<std::size_t>(std::max<double>(1.0, std::nearbyint(quantile * static_cast<double>(count))));
        for (std::int64_t t = 0; t < mag.rows; ++t) {
            column.assign(mag.values.begin() + t * mag.cols + first, mag.values.begin() + t * mag.cols + end);
            const std::size_t take = std::min(q, column.size()), n = column.size();
            // The `take` smallest ascending and the `take` largest descending: the ends a full sort would
            // give, summed in its order (bit-identical), without sorting the middle of the band.
            const auto top = column.begin() + static_cast<std::ptrdiff_t>(take);
            if (2 * take <= n) {
                std::partial_sort(column.begin(), top, column.end());
                std::partial_sort(top, top + static_cast<std::ptrdiff_t>(take), column.end(), std::greater<float>());
            } else {
                std::sort(column.begin(), column.end());
            }
            double lo_sum = 0.0, hi_sum = 0.0;
            for (std::size_t i = 0; i < take; ++i) lo_sum += column[i], hi_sum += column[2 * take <= n ? take + i : n - 1 - i];
            valley.at(t, k) = static_cast<float>(lo_sum / static_cast<double>(take));
            peak.at(t, k) = static_cast<float>(hi_sum / static_cast<double>(take));
        }
    }
    power_to_db(peak);
    power_to_db(valley);
    for (std::size_t i = 0; i < peak.values.size(); ++i) peak.values[i] -= valley.values[i];
    return peak;
}

std::vector<float> spectral_flatness(const Matrix& power, double amin) {
    if (!(amin > 0)) throw_usage("amin must be positive (got {})", amin);
    std::vector<float> out(static_cast<std::size_t>(power.rows));
    for (std::int64_t t = 0; t < power.rows; ++t) {
        double log_sum = 0.0, sum = 0.0;
        for (std::int64_t k = 0; k < power.cols; ++k) {
            const double v = std::max(amin, static_cast<double>(power.at(t, k)));
            log_sum += std::log(v);
            sum += v;
        }
        out[static_cast<std::size_t>(t)] = static_cast<float>(std::exp(log_sum / static_cast<double>(power.cols)) / (sum / static_cast<double>(power.cols)));
    }
    return out;
}

namespace {

Matrix mel_db(const Matrix& power, double sr, const StftParams& stft, const MelParams& mel) {
    stft.validate();
    Matrix db = mel_from_power(power, sr, stft.n_fft, mel);
    power_to_db(db);
    return db;
}

// Median over bands of the positive rises of a dB mel spectrogram, delayed as onset_strength's mean.
std::vector<float> median_rises(const Matrix& db, const StftParams& stft) {
    std::vector<float> out(static_cast<std::size_t>(db.rows), 0.0f), rises(static_cast<std::size_t>(db.cols));
    const std::int64_t delay = 1 + stft.n_fft / (2 * stft.hop);
    const auto mid = static_cast<std::ptrdiff_t>(rises.size() / 2);
    for (std::int64_t t = 1; t + delay - 1 < db.rows; ++t) {
        for (std::int64_t m = 0; m < db.cols; ++m) rises[static_cast<std::size_t>(m)] = std::max(0.0f, db.at(t, m) - db.at(t - 1, m));
        std::nth_element(rises.begin(), rises.begin() + mid, rises.end());
        double med = rises[static_cast<std::size_t>(mid)];
        if (rises.size() % 2 == 0) med = 0.5 * (med + *std::max_element(rises.begin(), rises.begin() + mid));
        out[static_cast<std::size_t>(t - 1 + delay)] = static_cast<float>(med);
    }
    return out;
}

std::vector<float> mean_rises(const Matrix& db, const StftParams& stft) {
    std::vector<float> out(static_cast<std::size_t>(db.rows), 0.0f);
    const std::int64_t delay = 1 + stft.n_fft / (2 * stft.hop);  // lag 1 + centring
    for (std::int64_t t = 1; t < db.rows; ++t) {
        double acc = 0.0;
        for (std::int64_t m = 0; m < db.cols; ++m) acc += std::max(0.0f, db.at(t, m) - db.at(t - 1, m));
        const std::int64_t dst = t - 1 + delay;
        if (dst < db.rows) out[static_cast<std::size_t>(dst)] = static_cast<float>(acc / static_cast<double>(db.cols));
    }
    return out;
}

}  // namespace

std::vector<float> onset_strength_median(std::span<const float> y, double sr, const StftParams& stft, const MelParams& mel) {
    return median_rises(mel_db(power_spectrogram(y, stft), sr, stft, mel), stft);
}

std::vector<float> onset_strength(std::span<const float> y, double sr, const StftParams& stft, const MelParams& mel) {
    return mean_rises(mel_db(power_spectrogram(y, stft), sr, stft, mel), stft);
}

OnsetEnvelopes onset_envelopes(std::span<const float> y, double sr, const StftParams& stft, const MelParams& mel) {
    const Matrix db = mel_db(power_spectrogram(y, stft), sr, stft, mel);
    return {mean_rises(db, stft), median_rises(db, stft)};
}

OnsetEnvelopes onset_envelopes_from_power(const Matrix& power, double sr, const StftParams& stft, const MelParams& mel) {
    const Matrix db = mel_db(power, sr, stft, mel);
    return {mean_rises(db, stft), median_rises(db, stft)};
}

std::vector<float> onset_strength_from_power(const Matrix& power, double sr, const StftParams& stft, const MelParams& mel) {
    return mean_rises(mel_db(power, sr, stft, mel), stft);
}

}  // namespace mess::dsp
