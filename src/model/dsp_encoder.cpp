// The weightless DSP encoders: "dsp" (four interpretable descriptor groups and their weighted
// combination) and the "mfcc-chroma" baseline. Layer definitions: include/mess/model.hpp.
#include <algorithm>
#include <array>
#include <cmath>
#include <exception>
#include <numeric>

#include "mess/dsp.hpp"
#include "mess/model.hpp"

namespace mess {

namespace {

constexpr int kRate = kModelSampleRate;
constexpr int kHop = 480;          // analysis frames: 50 per second
constexpr int kChromaHop = 1200;   // pitch-class frames: 20 per second
constexpr int kOutHop = 2400;      // output frames: 10 per second
constexpr int kFft = 2048;
constexpr int kMfcc = 20;

// Blocks of the 144-d space.
constexpr int kPatch = 67;  // 2-D Fourier magnitudes of the window's chroma (harmony dims 20..86)
constexpr int kTimbre = 28, kHarmony = 20 + kPatch, kRhythm = 14, kDynamics = 15;
constexpr int kMaxBlock = kHarmony;
constexpr int kDim = kTimbre + kHarmony + kRhythm + kDynamics;
constexpr std::array<int, 4> kBlockSize{kTimbre, kHarmony, kRhythm, kDynamics};
constexpr std::array<int, 4> kBlockStart{0, kTimbre, kTimbre + kHarmony, kTimbre + kHarmony + kRhythm};
// Overall layer: group weights applied after pooling, chosen on the development corpus (bench/dsp_eval.py).
constexpr std::array<float, 4> kOverallWeight{0.10f, 1.00f, 0.10f, 0.05f};
constexpr int kLayers = 6;  // the four groups, overall, expression
static_assert(kDim == 144, "the documented dsp space (include/mess/model.hpp)");

// Tempo-invariant lag ratios of the rhythm block.
constexpr std::array<double, 11> kLagRatios{0.25, 1.0 / 3, 0.5, 2.0 / 3, 0.75, 1.0, 4.0 / 3, 1.5, 2.0, 3.0, 4.0};

// Krumhansl–Kessler key profiles (probe-tone ratings, C major / C minor).
constexpr std::array<double, 12> kMajorProfile{6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
constexpr std::array<double, 12> kMinorProfile{6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17};

// Calibration: mean and standard deviation of each raw descriptor over every frame with sound of the
// corpus bench/dsp_calibrate.sh renders (Debian's PianoBooster MIDI files through FluidR3_GM, with the
// corpus generator's transformations). Fixed numbers: they standardise the descriptors, they are not
// trained for any task.
#include "dsp_calibration.inc"

// The harmony discriminant of the overall layer: directions of the harmony group along which different
// music differs most relative to how the same music moves with its instrument, articulation, level or key,
// learned from the development works' factor corpus (bench/dsp_harmony_projection.py). Rows [k * kHarmony + i].
#include "dsp_harmony_projection.inc"
static_assert(kHarmonyDiscriminant.size() == static_cast<std::size_t>(kHarmonyDiscriminants) * kHarmony);

double pearson(const double* a, const double* b, int n) {
    double ma = 0, mb = 0;
    for (int i = 0; i < n; ++i) ma += a[i], mb += b[i];
    ma /= n;
    mb /= n;
    double sab = 0, saa = 0, sbb = 0;
    for (int i = 0; i < n; ++i) {
        sab += (a[i] - ma) * (b[i] - mb);
        saa += (a[i] - ma) * (a[i] - ma);
        sbb += (b[i] - mb) * (b[i] - mb);
    }
    return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : 0.0;
}

// Mean of the rows of `m` around output frame j: rows [j·f − f/2, j·f + f/2] that exist.
void pool_rows(const dsp::Matrix& m, int factor, std::int64_t frames, float* out, int out_stride, int out_offset) {
    for (std::int64_t j = 0; j < frames; ++j) {
        const std::int64_t lo = std::max<std::int64_t>(0, j * factor - factor / 2);
        const std::int64_t hi = std::min<std::int64_t>(m.rows - 1, j * factor + factor / 2);
        float* dst = out + j * out_stride + out_offset;
        if (hi < lo) continue;
        for (std::int64_t c = 0; c < m.cols; ++c) {
            double acc = 0;
            for (std::int64_t r = lo; r <= hi; ++r) acc += m.at(r, c);
            dst[c] = static_cast<float>(acc / static_cast<double>(hi - lo + 1));
        }
    }
}

// MFCC 1..19 of a 64-band log-mel frame: rows 1..19 of the orthonormal DCT-II, tabled once.
constexpr int kMelBands = 64;
void mel_dct(const float* x, float* out) {
    static const std::vector<double> basis = [] {
        std::vector<double> b(static_cast<std::size_t>((kMfcc - 1) * kMelBands));
        for (int k = 1; k < kMfcc; ++k)
            for (int i = 0; i < kMelBands; ++i)
                b[(k - 1) * kMelBands + i] = std::cos(M_PI * k * (2 * i + 1) / (2.0 * kMelBands)) * std::sqrt(2.0 / kMelBands);
        return b;
    }();
    for (int k = 0; k < kMfcc - 1; ++k) {
        double acc = 0;
        for (int i = 0; i < kMelBands; ++i) acc += basis[k * kMelBands + i] * x[i];
        out[k] = static_cast<float>(acc);
    }
}

dsp::Matrix timbre_frames(const dsp::Spectra& spectra) {
    const dsp::Matrix& magnitude = spectra.magnitude;
    const std::int64_t F = magnitude.rows;
    dsp::Matrix mel = dsp::mel_from_power(spectra.power, kRate, kFft, {kMelBands, 0.0, 12000.0, false});
    const float peak = mel.values.empty() ? 0.0f : *std::max_element(mel.values.begin(), mel.values.end());
    dsp::power_to_db(mel, std::max(peak, 1e-10f));  // relative to the window's peak: gain-invariant
    const auto contrast = dsp::spectral_contrast(magnitude, kRate, kFft);
    const auto centroid = dsp::spectral_centroid(magnitude, kRate, kFft);
    const auto flatness = dsp::spectral_flatness(spectra.power);

    dsp::Matrix out{F, kTimbre, std::vector<float>(static_cast<std::size_t>(F * kTimbre))};
    for (std::int64_t t = 0; t < F; ++t) {
        float* row = &out.at(t, 0);
        mel_dct(&mel.at(t, 0), row);
        for (std::int64_t c = 0; c < contrast.cols; ++c) row[19 + c] = contrast.at(t, c);
        row[26] = centroid[t] > 0 ? static_cast<float>(std::log2(centroid[t] / 1000.0)) : 0.0f;
        row[27] = static_cast<float>(std::log10(std::max(flatness[t], 1e-10f)));
    }
    return out;
}

// CRP chroma (Müller & Ewert 2010, "chroma DCT-reduced log pitch"): log-compressed semitone energies
// (relative to the window's peak, so gain-invariant), their DCT across pitch with the lowest coefficients
// (the spectral envelope: timbre) removed, transformed back, negative pitches clipped, and folded to 12
// pitch classes, unit length.
dsp::Matrix crp_chroma(std::span<const float> y) {
    constexpr int kBands = 84, kDropped = 38;  // 84 semitones; drop the envelope (≈ 55 of 120 in the paper)
    constexpr double kGamma = 1000;            // log compression
    const dsp::Matrix semis = dsp::semitone_spectrogram(y, kRate, kChromaHop);
    const float peak = semis.values.empty() ? 0.0f : *std::max_element(semis.values.begin(), semis.values.end());
    static const std::vector<double> basis = [] {  // orthonormal DCT-II, [k][n]
        std::vector<double> b(kBands * kBands);
        for (int k = 0; k < kBands; ++k)
            for (int n = 0; n < kBands; ++n)
                b[k * kBands + n] = std::cos(M_PI * k * (2 * n + 1) / (2.0 * kBands)) * std::sqrt((k == 0 ? 1.0 : 2.0) / kBands);
        return b;
    }();
    dsp::Matrix out{semis.rows, 12, std::vector<float>(static_cast<std::size_t>(semis.rows * 12), 0.0f)};
    if (peak <= 0) return out;
    std::array<double, kBands> v{}, coef{};
    for (std::int64_t t = 0; t < semis.rows; ++t) {
        for (int n = 0; n < kBands; ++n) v[n] = std::log1p(kGamma * semis.at(t, n) / peak);
        for (int k = 0; k < kBands; ++k) {
            coef[k] = 0;
            if (k < kDropped) continue;
            for (int n = 0; n < kBands; ++n) coef[k] += basis[k * kBands + n] * v[n];
        }
        std::array<double, 12> pc{};
        for (int n = 0; n < kBands; ++n) {
            double x = 0;
            for (int k = kDropped; k < kBands; ++k) x += basis[k * kBands + n] * coef[k];
            pc[n % 12] += std::max(x, 0.0);
        }
        double norm = 0;
        for (double x : pc) norm += x * x;
        if (norm <= 1e-12) continue;
        for (int c = 0; c < 12; ++c) out.at(t, c) = static_cast<float>(pc[c] / std::sqrt(norm));
    }
    return out;
}

// CENS-like smoothing: each row replaced by the Hann-weighted mean of its ±`half` neighbours, unit length.
dsp::Matrix smooth_chroma(const dsp::Matrix& c, int half) {
    dsp::Matrix out{c.rows, c.cols, std::vector<float>(c.values.size(), 0.0f)};
    for (std::int64_t t = 0; t < c.rows; ++t) {
        std::array<double, 12> acc{};
        for (std::int64_t u = std::max<std::int64_t>(0, t - half); u <= std::min(c.rows - 1, t + half); ++u) {
            const double w = 0.5 + 0.5 * std::cos(M_PI * static_cast<double>(u - t) / (half + 1));
            for (int p = 0; p < 12; ++p) acc[p] += w * c.at(u, p);
        }
        double norm = 0;
        for (double x : acc) norm += x * x;
        if (norm <= 1e-12) continue;
        for (int p = 0; p < 12; ++p) out.at(t, p) = static_cast<float>(acc[p] / std::sqrt(norm));
    }
    return out;
}

// Soft key: a weight per rotation r (pitch class r as tonic), the softmax of the Krumhansl–Kessler
// correlations of the window's mean profile (major and minor pooled), and the major-minor score. A soft
// choice moves continuously when two keys are close, where an argmax jumps.
std::array<double, 12> key_weights(const dsp::Matrix& chroma, float* mode, float* clarity) {
    constexpr double kTemperature = 0.1;  // correlation units; chosen on the development corpus
    std::array<double, 12> mean{}, score{}, w{};
    for (std::int64_t t = 0; t < chroma.rows; ++t)
        for (int p = 0; p < 12; ++p) mean[p] += chroma.at(t, p);
    double best_major = -2, best_minor = -2, top = -2;
    for (int r = 0; r < 12; ++r) {
        std::array<double, 12> rotated{};
        for (int p = 0; p < 12; ++p) rotated[p] = mean[(p + r) % 12];
        const double maj = pearson(rotated.data(), kMajorProfile.data(), 12);
        const double min = pearson(rotated.data(), kMinorProfile.data(), 12);
        best_major = std::max(best_major, maj);
        best_minor = std::max(best_minor, min);
        // A minor key counts for its relative major's rotation: both name the same pitch-class set.
        score[r] = std::max(score[r], maj);
        score[(r + 3) % 12] = std::max(score[(r + 3) % 12], min);
        top = std::max({top, maj, min});
    }
    *mode = static_cast<float>(best_major - best_minor);
    *clarity = static_cast<float>(top);
    double sum = 0;
    for (int r = 0; r < 12; ++r) sum += (w[r] = std::exp((score[r] - top) / kTemperature));
    for (double& x : w) x /= sum;
    return w;
}

// 2-D Fourier transform magnitudes of the window's chroma patch [frames, 12] (Bertin-Mahieux & Ellis
// 2012): invariant to transposition (a circular shift in pitch) and to where the window starts (a shift in
// time). Temporal frequencies (cycles per window) pooled in bands {0}, {1}, {2}, {3-4}, {5-7}, {8-12}: a
// change of tempo moves energy within a band more than across; band 0 keeps pitch frequencies 0..6 (the
// others are its mirror), the others all 12. Square-rooted, per frame of the window.
std::array<float, kPatch> chroma_patch_spectrum(const dsp::Matrix& chroma) {
    static constexpr std::array<int, 7> kBandEdge{0, 1, 2, 3, 5, 8, 13};
    std::array<float, kPatch> out{};
    const std::int64_t N = chroma.rows;
    if (N == 0) return out;
    int o = 0;
    for (std::size_t b = 0; b + 1 < kBandEdge.size(); ++b) {
        const int vs = b == 0 ? 7 : 12;
        std::array<double, 12> acc{};
        for (int u = kBandEdge[b]; u < kBandEdge[b + 1]; ++u) {
            std::array<double, 12> re{}, im{};  // DFT over time at frequency u, per pitch class
            for (std::int64_t t = 0; t < N; ++t) {
                const double a = 2 * M_PI * u * static_cast<double>(t) / static_cast<double>(N);
                const double c = std::cos(a), s = std::sin(a);
                for (int p = 0; p < 12; ++p) re[p] += chroma.at(t, p) * c, im[p] -= chroma.at(t, p) * s;
            }
            for (int v = 0; v < vs; ++v) {
                double fr = 0, fi = 0;
                for (int p = 0; p < 12; ++p) {
                    const double a = 2 * M_PI * v * p / 12.0, c = std::cos(a), s = std::sin(a);
                    fr += re[p] * c + im[p] * s;
                    fi += im[p] * c - re[p] * s;
                }
                acc[v] += std::hypot(fr, fi) / static_cast<double>(N);
            }
        }
        for (int v = 0; v < vs; ++v) out[o++] = static_cast<float>(std::sqrt(acc[v] / (kBandEdge[b + 1] - kBandEdge[b])));
    }
    return out;
}

dsp::Matrix harmony_frames(std::span<const float> y) {
    constexpr int kSmooth = 10;  // ±0.5 s of chroma frames
    const dsp::Matrix crp = crp_chroma(y);
    const dsp::Matrix chroma = smooth_chroma(crp, kSmooth);
    const std::array<float, kPatch> patch = chroma_patch_spectrum(crp);
    float mode = 0, clarity = 0;
    const std::array<double, 12> w = key_weights(chroma, &mode, &clarity);
    dsp::Matrix out{chroma.rows, kHarmony, std::vector<float>(static_cast<std::size_t>(chroma.rows * kHarmony))};
    for (std::int64_t t = 0; t < chroma.rows; ++t) {
        double norm = 0;
        for (int p = 0; p < 12; ++p) norm += static_cast<double>(chroma.at(t, p)) * chroma.at(t, p);
        if (norm <= 0) continue;  // no pitched energy: an all-zero row
        float* row = &out.at(t, 0);
        std::array<double, 12> c{};
        for (int r = 0; r < 12; ++r)
            for (int p = 0; p < 12; ++p) c[p] += w[r] * chroma.at(t, (p + r) % 12);
        for (int p = 0; p < 12; ++p) row[p] = static_cast<float>(c[p]);
        for (int k = 1; k <= 6; ++k) {
            double re = 0, im = 0;
            for (int p = 0; p < 12; ++p) {
                re += chroma.at(t, p) * std::cos(2 * M_PI * k * p / 12);
                im -= chroma.at(t, p) * std::sin(2 * M_PI * k * p / 12);
            }
            row[11 + k] = static_cast<float>(std::hypot(re, im));
        }
        row[18] = mode;
        row[19] = clarity;
        std::copy(patch.begin(), patch.end(), row + 20);
    }
    return out;
}

// Value of tempogram row `t` at fractional lag `lag` (0 beyond its last lag).
float lag_value(const dsp::Matrix& tg, std::int64_t t, double lag) {
    if (lag < 0 || lag > static_cast<double>(tg.cols - 1)) return 0.0f;
    const auto i = static_cast<std::int64_t>(lag);
    const double f = lag - static_cast<double>(i);
    const float a = tg.at(t, i), b = i + 1 < tg.cols ? tg.at(t, i + 1) : 0.0f;
    return static_cast<float>(a + f * (b - a));
}

dsp::Matrix rhythm_frames(std::span<const float> y, const dsp::Matrix& power) {
    const std::vector<float> onset = dsp::onset_strength_from_power(power, kRate, {kFft, kHop}, {kMelBands, 0.0, 12000.0, false});
    const auto F = static_cast<std::int64_t>(onset.size());
    dsp::Matrix out{F, kRhythm, std::vector<float>(static_cast<std::size_t>(F * kRhythm))};
    const float peak = onset.empty() ? 0.0f : *std::max_element(onset.begin(), onset.end());
    if (peak <= 0) return out;
    dsp::TempoParams tp;
    tp.ac_seconds = 4.0;
    const double bpm = dsp::estimate_tempo(onset, kRate, kHop, tp);
    const double frames_per_sec = static_cast<double>(kRate) / kHop;
    const double period = bpm > 0 ? 60.0 * frames_per_sec / bpm : 0.0;  // analysis frames per beat
    const dsp::Matrix tg = dsp::tempogram(onset, 200);
    const double seconds = static_cast<double>(y.size()) / kRate;
    const double onsets_per_beat =
        bpm > 0 ? static_cast<double>(dsp::onset_detect(onset, kRate, kHop).size()) / (seconds * bpm / 60.0) : 0.0;
    double mean_rel = 0;
    for (float o : onset) mean_rel += o / peak;
    mean_rel /= static_cast<double>(F);
    for (std::int64_t t = 0; t < F; ++t) {
        float* row = &out.at(t, 0);
        if (period > 0)
            for (std::size_t r = 0; r < kLagRatios.size(); ++r) row[r] = lag_value(tg, t, kLagRatios[r] * period);
        const double rel = onset[t] / peak;
        row[11] = static_cast<float>(onsets_per_beat);
        row[12] = static_cast<float>(rel);
        row[13] = static_cast<float>((rel - mean_rel) * (rel - mean_rel));
    }
    return out;
}

// Soft (triangular) assignment of `x` to bins centred at `centres` (equally spaced); ends saturate.
void soft_bins(double x, const double* centres, int n, float* out) {
    const double step = centres[1] - centres[0];
    const double pos = std::clamp((x - centres[0]) / step, 0.0, static_cast<double>(n - 1));
    const auto i = static_cast<int>(pos);
    const double f = pos - i;
    out[i] += static_cast<float>(1 - f);
    if (i + 1 < n) out[i + 1] += static_cast<float>(f);
}

// Least-squares slope of `x` against its index.
double slope_of(const std::vector<float>& x) {
    if (x.size() < 2) return 0.0;
    const double n = static_cast<double>(x.size()), tm = (n - 1) / 2.0;
    const double xm = std::accumulate(x.begin(), x.end(), 0.0) / n;
    double num = 0, den = 0;
    for (std::size_t t = 0; t < x.size(); ++t) {
        const double dt = static_cast<double>(t) - tm;
        num += dt * (x[t] - xm);
        den += dt * dt;
    }
    return num / den;
}

// Level in dBFS (absolute: how loud the playing is) and relative to the window's peak (the contour),
// the contour's slope and the window's trend.
dsp::Matrix dynamics_frames(std::span<const float> y, std::vector<float>& level_db) {
    const std::vector<float> r = dsp::rms(y, {kFft, kHop});
    const auto F = static_cast<std::int64_t>(r.size());
    level_db.resize(r.size());
    for (std::size_t t = 0; t < r.size(); ++t) level_db[t] = static_cast<float>(20 * std::log10(std::max(r[t], 1e-5f)));
    const float ref = level_db.empty() ? 0.0f : *std::max_element(level_db.begin(), level_db.end());
    std::vector<float> rel(r.size()), abs(r.size());
    for (std::size_t t = 0; t < r.size(); ++t) {
        rel[t] = std::max(level_db[t] - ref, -60.0f);
        abs[t] = std::max(level_db[t], -80.0f);
    }
    const std::vector<float> smooth = dsp::gaussian_filter(rel, 5.0);
    const double per_second = static_cast<double>(kRate) / kHop;
    const double trend = slope_of(rel) * per_second;  // dB per second
    static constexpr double kAbsCentres[6] = {-60, -50, -40, -30, -20, -10};
    static constexpr double kRelCentres[4] = {-30, -20, -10, 0};
    static constexpr double kSlopeCentres[3] = {-30, 0, 30};
    dsp::Matrix out{F, kDynamics, std::vector<float>(static_cast<std::size_t>(F * kDynamics))};
    for (std::int64_t t = 0; t < F; ++t) {
        float* row = &out.at(t, 0);
        soft_bins(abs[t], kAbsCentres, 6, row);
        soft_bins(rel[t], kRelCentres, 4, row + 6);
        const std::int64_t a = std::max<std::int64_t>(0, t - 1), b = std::min<std::int64_t>(F - 1, t + 1);
        const double slope = b > a ? (smooth[b] - smooth[a]) / static_cast<double>(b - a) * per_second : 0.0;
        soft_bins(slope, kSlopeCentres, 3, row + 10);
        row[13] = abs[t] / 60.0f;
        row[14] = static_cast<float>(trend);
    }
    return out;
}

std::int64_t output_frames(std::size_t samples) { return 1 + static_cast<std::int64_t>(samples) / kOutHop; }

// Raw descriptors [T, kDim] of one window, and which output frames have sound.
std::vector<float> raw_window(std::span<const float> y, std::vector<char>* audible) {
    const std::int64_t T = output_frames(y.size());
    std::vector<float> out(static_cast<std::size_t>(T * kDim), 0.0f);
    const dsp::Spectra spectra = dsp::stft_spectra(y, {kFft, kHop});
    pool_rows(timbre_frames(spectra), kOutHop / kHop, T, out.data(), kDim, kBlockStart[0]);
    pool_rows(harmony_frames(y), kOutHop / kChromaHop, T, out.data(), kDim, kBlockStart[1]);
    pool_rows(rhythm_frames(y, spectra.power), kOutHop / kHop, T, out.data(), kDim, kBlockStart[2]);
    std::vector<float> level_db;
    pool_rows(dynamics_frames(y, level_db), kOutHop / kHop, T, out.data(), kDim, kBlockStart[3]);
    if (audible) {
        // A frame has sound when its loudest analysis frame is above −80 dBFS.
        audible->assign(static_cast<std::size_t>(T), 0);
        const int f = kOutHop / kHop;
        for (std::int64_t j = 0; j < T; ++j)
            for (std::int64_t a = std::max<std::int64_t>(0, j * f - f / 2);
                 a <= std::min<std::int64_t>(static_cast<std::int64_t>(level_db.size()) - 1, j * f + f / 2); ++a)
                if (level_db[a] > -80.0f) (*audible)[j] = 1;
    }
    return out;
}

// ---- the expression layer (layer 5): how the window is played, whatever is played ------------------
// Window-level descriptors of tempo (onset rate, inter-onset intervals, tempo estimate), dynamics (level in
// dBFS, its slope inside the window) and articulation (how far the level falls between onsets), in fixed
// units (no calibration, nothing trained), in dims 0..kExpression-1 of every frame; zero for a silent
// window. Not part of the overall layer: the default similarity does not see it.
constexpr int kExpression = 48;
constexpr std::array<double, 13> kIoiCentres{-3.0, -2.75, -2.5, -2.25, -2.0, -1.75, -1.5, -1.25, -1.0, -0.75, -0.5, -0.25, 0.0};
constexpr std::array<double, 12> kPeakCentres{-60, -55, -50, -45, -40, -35, -30, -25, -20, -15, -10, -5};
constexpr std::array<double, 5> kTrendCentres{-6, -3, 0, 3, 6};

// The q-quantile (0..1, nearest rank) of `x` (copied); 0 when empty.
double quantile(std::vector<double> x, double q) {
    if (x.empty()) return 0.0;
    const auto k = static_cast<std::size_t>(std::lround(q * static_cast<double>(x.size() - 1)));
    std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(k), x.end());
    return x[k];
}

// Tempo: dims 0..17 from the onsets of the window (onset_detect at 50 frames/s).
void expression_tempo(const std::vector<float>& onset, double seconds, const std::vector<std::int64_t>& on, float* out) {
    const double fps = static_cast<double>(kRate) / kHop;
    out[0] = static_cast<float>(std::log2(std::max(static_cast<double>(on.size()) / seconds, 0.25)) - 1.5);
    std::vector<double> ioi;
    for (std::size_t i = 1; i < on.size(); ++i) ioi.push_back(static_cast<double>(on[i] - on[i - 1]) / fps);
    const double bpm = dsp::estimate_tempo(onset, kRate, kHop);
    if (bpm > 0) out[4] = static_cast<float>(std::log2(bpm / 120.0));
    if (ioi.empty()) return;
    const double median = std::log2(quantile(ioi, 0.5));
    out[1] = static_cast<float>(median + 1.5);
    out[2] = static_cast<float>(std::log2(quantile(ioi, 0.25)) + 1.5);
    out[3] = static_cast<float>(std::log2(quantile(ioi, 0.75)) + 1.5);
    soft_bins(median, kIoiCentres.data(), static_cast<int>(kIoiCentres.size()), out + 5);
}

// Dynamics: dims 18..37 from the level (dBFS per analysis frame) and its upper envelope (the loudest
// frame of each full 0.5-s block, floored at −80 dBFS: a short last block's lower peak would read as a
// fall in every window's trend).
void expression_dynamics(const std::vector<double>& level, const std::vector<double>& block_max, float* out) {
    std::vector<double> audible;
    for (double l : level)
        if (l > -80) audible.push_back(l);
    double mean = 0;
    for (double l : audible) mean += l / static_cast<double>(audible.size());
    const double peak = quantile(audible, 0.9);
    out[0] = static_cast<float>(mean / 20 + 2);
    out[1] = static_cast<float>(peak / 20 + 2);
    soft_bins(peak, kPeakCentres.data(), static_cast<int>(kPeakCentres.size()), out + 2);
    const std::vector<float> env(block_max.begin(), block_max.end());
    const double trend = slope_of(env) * 2.0;  // dB per second (blocks of 0.5 s)
    out[14] = static_cast<float>(trend / 5);
    soft_bins(trend, kTrendCentres.data(), static_cast<int>(kTrendCentres.size()), out + 15);
}

// Dynamics, the direction of change robust to a jump (a hairpin starting again inside the window): dims
// 44..47 from the 0.5-s level peaks: the median of the slopes between peaks at most 1.5 s apart (dB/s; a
// jump spoils at most a quarter of them), the share of rising steps among the steps between neighbouring
// peaks, the largest fall and the largest rise (dB). `block_max`: full blocks only (a short last block's
// lower peak would read as a fall in every window), floored at −80 dBFS (silence is no 100-dB step).
void expression_direction(const std::vector<double>& block_max, float* out) {
    constexpr std::size_t kMaxLag = 3;  // blocks
    std::vector<double> pair_slopes, steps;
    for (std::size_t i = 0; i < block_max.size(); ++i)
        for (std::size_t j = i + 1; j < block_max.size() && j <= i + kMaxLag; ++j)
            pair_slopes.push_back((block_max[j] - block_max[i]) * 2.0 / static_cast<double>(j - i));
    for (std::size_t i = 1; i < block_max.size(); ++i) steps.push_back(block_max[i] - block_max[i - 1]);
    if (steps.empty()) return;
    double rising = 0;
    for (double d : steps) rising += d > 0 ? 1.0 / static_cast<double>(steps.size()) : 0.0;
    out[0] = static_cast<float>(quantile(pair_slopes, 0.5) / 5);
    out[1] = static_cast<float>(rising - 0.5);
    out[2] = static_cast<float>(std::min(0.0, *std::min_element(steps.begin(), steps.end())) / 20);
    out[3] = static_cast<float>(std::max(0.0, *std::max_element(steps.begin(), steps.end())) / 20);
}

// Articulation: dims 38..43: quantiles of the level under its block's loudest frame, the share of frames
// within 6 dB of it, and the median fall from each onset's peak to the frame before the next onset (at
// most 0.5 s later), in dB and dB/s.
void expression_articulation(const std::vector<double>& level, const std::vector<std::int64_t>& on, int block, float* out) {
    std::vector<double> under;
    double near = 0;
    for (std::size_t t = 0; t < level.size(); ++t) {
        const std::size_t b0 = t / block * block, b1 = std::min(level.size(), b0 + block);
        const double top = *std::max_element(level.begin() + static_cast<std::ptrdiff_t>(b0), level.begin() + static_cast<std::ptrdiff_t>(b1));
        under.push_back(std::max(level[t] - top, -60.0));
        near += under.back() > -6 ? 1.0 / static_cast<double>(level.size()) : 0.0;
    }
    out[0] = static_cast<float>(quantile(under, 0.1) / 20);
    out[1] = static_cast<float>(quantile(under, 0.25) / 20);
    out[2] = static_cast<float>(quantile(under, 0.5) / 20);
    out[3] = static_cast<float>(near);
    const auto n = static_cast<std::int64_t>(level.size());
    std::vector<double> fall, rate;
    for (std::size_t i = 0; i < on.size(); ++i) {
        const std::int64_t end = std::min({i + 1 < on.size() ? on[i + 1] - 1 : n - 1, on[i] + 25, n - 1});
        if (end <= on[i] + 3) continue;
        const double top = *std::max_element(level.begin() + on[i], level.begin() + std::min(on[i] + 3, end) + 1);
        fall.push_back(std::clamp(top - level[static_cast<std::size_t>(end)], 0.0, 60.0));
        rate.push_back(fall.back() * kRate / (kHop * static_cast<double>(end - on[i])));
    }
    out[4] = static_cast<float>(quantile(fall, 0.5) / 20);
    out[5] = static_cast<float>(quantile(rate, 0.5) / 40);
}

// The expression descriptors of window y [kExpression]; all zero when no frame is above −80 dBFS.
std::array<float, kExpression> expression_descriptors(std::span<const float> y) {
    std::array<float, kExpression> out{};
    const std::vector<float> r = dsp::rms(y, {kFft, kHop});
    std::vector<double> level(r.size());
    for (std::size_t t = 0; t < r.size(); ++t) level[t] = 20 * std::log10(std::max(static_cast<double>(r[t]), 1e-5));
    if (level.empty() || *std::max_element(level.begin(), level.end()) <= -80) return out;
    constexpr int kBlock = kRate / kHop / 2;  // 0.5 s of analysis frames
    std::vector<double> block_max;
    for (std::size_t b = 0; b < level.size(); b += kBlock)
        block_max.push_back(*std::max_element(level.begin() + static_cast<std::ptrdiff_t>(b),
                                              level.begin() + static_cast<std::ptrdiff_t>(std::min(level.size(), b + kBlock))));
    const std::vector<float> onset = dsp::onset_strength(y, kRate, {kFft, kHop}, {kMelBands, 0.0, 12000.0, false});
    const float onset_peak = onset.empty() ? 0.0f : *std::max_element(onset.begin(), onset.end());
    const std::vector<std::int64_t> on = onset_peak > 0 ? dsp::onset_detect(onset, kRate, kHop) : std::vector<std::int64_t>{};
    expression_tempo(onset, static_cast<double>(y.size()) / kRate, on, out.data());
    std::vector<double> peaks(block_max.begin(), block_max.begin() + static_cast<std::ptrdiff_t>(level.size() / kBlock));
    for (double& p : peaks) p = std::max(p, -80.0);
    expression_dynamics(level, peaks, out.data() + 18);
    expression_articulation(level, on, kBlock, out.data() + 38);
    expression_direction(peaks, out.data() + 44);
    return out;
}

// Layer 5 of one window: the descriptors in every frame [T, kDim].
void expression_layer(std::span<const float> y, std::int64_t T, float* dst) {
    const std::array<float, kExpression> e = expression_descriptors(y);
    for (std::int64_t t = 0; t < T; ++t) std::copy(e.begin(), e.end(), dst + t * kDim);
}

// The overall layer's harmony group: the window's pooled harmony vector [kHarmony] replaced, in place, by
// its coordinates on the harmony discriminant (kHarmonyDiscriminants values, the rest zero).
void project_harmony(double* harmony) {
    std::array<double, kHarmonyDiscriminants> coords{};
    for (int k = 0; k < kHarmonyDiscriminants; ++k)
        for (int i = 0; i < kHarmony; ++i) coords[k] += kHarmonyDiscriminant[k * kHarmony + i] * harmony[i];
    std::fill_n(harmony, kHarmony, 0.0);
    std::copy(coords.begin(), coords.end(), harmony);
}

// Standardised, per-group unit-length layers of one window: [kLayers, T, kDim]. Group layers hold each
// frame's group vector; the overall layer holds, in every frame, the window's pooled result: each group's
// mean over the window's frames (harmony: its discriminant coordinates), unit length, weighted (weights after
// pooling, not per frame).
void dsp_window_layers(std::span<const float> y, float* dst) {
    std::vector<char> audible;
    const std::vector<float> raw = raw_window(y, &audible);
    const std::int64_t T = output_frames(y.size());
    std::fill_n(dst, kLayers * T * kDim, 0.0f);
    std::array<double, kDim> pooled{};
    for (std::int64_t t = 0; t < T; ++t) {
        if (!audible[t]) continue;  // silence: zero vectors in every layer
        for (std::size_t g = 0; g < kBlockSize.size(); ++g) {
            std::array<float, kMaxBlock> z{};
            double norm = 0;
            for (int i = 0; i < kBlockSize[g]; ++i) {
                const int d = kBlockStart[g] + i;
                z[i] = (raw[t * kDim + d] - kCalibrationMean[d]) / kCalibrationStd[d];
                norm += static_cast<double>(z[i]) * z[i];
            }
            if (norm <= 1e-12) continue;
            const float inv = static_cast<float>(1.0 / std::sqrt(norm));
            float* group = dst + (static_cast<std::int64_t>(g) * T + t) * kDim + kBlockStart[g];
            for (int i = 0; i < kBlockSize[g]; ++i) {
                group[i] = z[i] * inv;
                pooled[kBlockStart[g] + i] += group[i];
            }
        }
    }
    project_harmony(pooled.data() + kBlockStart[1]);
    std::array<float, kDim> overall{};
    for (std::size_t g = 0; g < kBlockSize.size(); ++g) {
        double norm = 0;
        for (int i = 0; i < kBlockSize[g]; ++i) norm += pooled[kBlockStart[g] + i] * pooled[kBlockStart[g] + i];
        if (norm <= 1e-12) continue;
        for (int i = 0; i < kBlockSize[g]; ++i)
            overall[kBlockStart[g] + i] = static_cast<float>(pooled[kBlockStart[g] + i] / std::sqrt(norm) * kOverallWeight[g]);
    }
    for (std::int64_t t = 0; t < T; ++t) std::copy(overall.begin(), overall.end(), dst + (4 * T + t) * kDim);
    expression_layer(y, T, dst + 5 * T * kDim);
}

// The baseline: MFCC 0–19 (128 mel bands, dB re 1) and STFT chroma per frame, each block unit length.
constexpr int kBaseDim = kMfcc + 12;
void baseline_window(std::span<const float> y, float* dst) {
    const dsp::StftParams stft{kFft, 512};
    const dsp::Matrix m = dsp::mfcc(y, kRate, kMfcc, stft, {});
    const dsp::Matrix c = dsp::chroma_stft(y, kRate, stft);
    for (std::int64_t t = 0; t < m.rows; ++t) {
        float* row = dst + t * kBaseDim;
        double nm = 0, nc = 0;
        for (int i = 0; i < kMfcc; ++i) nm += static_cast<double>(m.at(t, i)) * m.at(t, i);
        for (int i = 0; i < 12; ++i) nc += static_cast<double>(c.at(t, i)) * c.at(t, i);
        for (int i = 0; i < kMfcc; ++i) row[i] = nm > 0 ? static_cast<float>(m.at(t, i) / std::sqrt(nm)) : 0.0f;
        for (int i = 0; i < 12; ++i) row[kMfcc + i] = nc > 0 ? static_cast<float>(c.at(t, i) / std::sqrt(nc)) : 0.0f;
    }
}

// Shared by both DSP encoders: windows, checks, per-window analysis in parallel.
class WindowedEncoder : public Encoder {
public:
    using WindowFn = void (*)(std::span<const float>, float*);
    using FramesFn = std::int64_t (*)(std::size_t);
    WindowedEncoder(EncoderInfo info, WindowFn fn, FramesFn frames) : info_(std::move(info)), fn_(fn), frames_(frames) {}
    const EncoderInfo& info() const override { return info_; }

    class WindowSession final : public Session {
    public:
        explicit WindowSession(const WindowedEncoder& e) : e_(e) {}
        Embedding embed(AudioView audio, const EmbedParams& params, int threads) override {
            if (audio.sample_rate != kRate)
                throw_input("audio is at {} Hz but the {} encoder expects {} Hz (resample first)", audio.sample_rate,
                            e_.info_.name, kRate);
            dsp::require_finite(audio.samples);
            WindowParams wp = params.windows;
            wp.sample_rate = kRate;
            Embedding e;
            e.windows = plan_windows(static_cast<std::int64_t>(audio.samples.size()), wp);
            if (e.windows.empty()) throw_input("no audio samples");
            if (e.windows[0].length < kFft / 2)
                throw_input("audio of {} samples is shorter than one analysis frame ({} samples)", e.windows[0].length,
                            kFft / 2);
            const auto S = static_cast<std::int64_t>(e.windows.size());
            const std::int64_t T = e_.frames_(static_cast<std::size_t>(e.windows[0].length));
            const std::int64_t per_window = e_.info_.layers * T * e_.info_.hidden;
            HiddenStates& h = e.states;
            h.batch = S;
            h.layers = e_.info_.layers;
            h.frames = T;
            h.hidden = e_.info_.hidden;
            h.values.assign(static_cast<std::size_t>(S * per_window), 0.0f);
            std::int64_t done = 0;
            std::exception_ptr stopped;  // what on_progress threw: no exception may leave an OpenMP region
#pragma omp parallel for num_threads(std::max(1, threads)) schedule(dynamic)
            for (std::int64_t s = 0; s < S; ++s) {
                bool skip = false;
#pragma omp critical(mess_dsp_progress)
                skip = stopped != nullptr;
                if (skip) continue;
                const Window& w = e.windows[static_cast<std::size_t>(s)];
                e_.fn_(audio.samples.subspan(static_cast<std::size_t>(w.start_sample), static_cast<std::size_t>(w.length)),
                       h.values.data() + s * per_window);
#pragma omp critical(mess_dsp_progress)
                {
                    ++done;
                    try {
                        if (params.on_progress && !stopped) params.on_progress(done, S);
                    } catch (...) {
                        stopped = std::current_exception();
                    }
                }
            }
            if (stopped) std::rethrow_exception(stopped);
            e.segments = pool_frames(h);
            if (!params.keep_frames) {
                h.values.clear();
                h.values.shrink_to_fit();
            }
            return e;
        }

    private:
        const WindowedEncoder& e_;
    };
    std::unique_ptr<Session> session() const override { return std::make_unique<WindowSession>(*this); }

private:
    EncoderInfo info_;
    WindowFn fn_;
    FramesFn frames_;
};

}  // namespace

std::vector<float> dsp_raw_features(std::span<const float> window, std::int64_t* frames) {
    dsp::require_finite(window);
    std::vector<char> audible;
    std::vector<float> raw = raw_window(window, &audible);
    const std::int64_t T = output_frames(window.size());
    // Only frames with sound: silence is not part of the calibration.
    std::vector<float> kept;
    for (std::int64_t t = 0; t < T; ++t)
        if (audible[t]) kept.insert(kept.end(), raw.begin() + t * kDim, raw.begin() + (t + 1) * kDim);
    if (frames) *frames = static_cast<std::int64_t>(kept.size() / kDim);
    return kept;
}

std::shared_ptr<const Encoder> dsp_encoder() {
    static const std::shared_ptr<const Encoder> encoder = [] {
        EncoderInfo i;
        i.name = "dsp";
        i.architecture = "dsp";
        i.sampling_rate = kRate;
        i.layers = kLayers;
        i.hidden = kDim;
        i.frame_rate = static_cast<double>(kRate) / kOutHop;
        i.default_layer = 4;
        i.layer_names = {"timbre", "harmony", "rhythm", "dynamics", "overall", "expression"};
        i.version = 3;
        i.layer_descriptions = {
            "dims 0-27: MFCC 1-19 of a 64-band mel spectrum in dB re the window's peak, spectral contrast (7 bands), "
            "log2 centroid/1 kHz, log10 flatness",
            "dims 28-114: CRP chroma (timbre-robust, negatives clipped) smoothed over 1 s and softly rotated to the "
            "window's key (Krumhansl-Kessler), |DFT| k=1..6, major-minor score, key clarity, 2-D Fourier magnitudes "
            "of the window's chroma patch (transposition- and shift-invariant, 67 dims)",
            "dims 115-128: onset autocorrelation at 1/4,1/3,1/2,2/3,3/4,1,4/3,3/2,2,3,4 beat periods, onsets per "
            "beat, onset strength re the peak and its spread",
            "dims 129-143: level in dBFS in soft 10-dB bins (-60..-10), level re the window's peak in soft bins "
            "(-30..0), level slope in soft bins (-30..30 dB/s), dBFS/60, the window's level trend (dB/s)",
            "each group's window mean, unit length, weighted 0.10/1.00/0.10/0.05 (after pooling); the harmony group "
            "(dims 28-67, 68-114 zero) as its coordinates on the 40 harmony discriminant directions (instrument- and "
            "articulation-robust, learned from the development factor corpus)",
            "dims 0-47 (the rest zero), the window's playing in fixed units, the same in every frame: log2 onset rate, "
            "log2 median/quartile inter-onset intervals, log2 tempo/120, median IOI in soft quarter-octave bins; "
            "mean and 90th-percentile dBFS, the latter in soft 5-dB bins, slope of the 0.5-s level peaks (dB/s, "
            "plain and in soft bins); level under each 0.5 s's peak (quantiles, share within 6 dB), median fall "
            "after an onset (dB, dB/s); the direction of the level peaks robust to a jump (median slope between peaks "
            "up to 1.5 s apart, share of rising steps, largest fall and rise). Not in the overall layer"};
        i.description =
            "weightless DSP descriptors (version 3) at 10 frames/s, each 5-s window analysed on its own: timbre "
            "(gain-invariant MFCC 1-19, spectral contrast, centroid, flatness), harmony (key-relative pitch classes, "
            "their DFT magnitudes and the 2-D Fourier magnitudes of the window's chroma: transposition-invariant, "
            "timbre-robust), rhythm (onset autocorrelation at multiples of the beat period: tempo-invariant), "
            "dynamics (absolute level and its contour, slopes, trend), overall (the four pooled over the "
            "window, harmony on its discriminant directions, then weighted 0.10/1.00/0.10/0.05), and expression (window-level tempo, level and "
            "articulation descriptors in absolute units, for the aspect models)";
        return std::make_shared<WindowedEncoder>(std::move(i), &dsp_window_layers, &output_frames);
    }();
    return encoder;
}

std::shared_ptr<const Encoder> mfcc_chroma_encoder() {
    static const std::shared_ptr<const Encoder> encoder = [] {
        EncoderInfo i;
        i.name = "mfcc-chroma";
        i.architecture = "mfcc-chroma";
        i.sampling_rate = kRate;
        i.layers = 1;
        i.hidden = kBaseDim;
        i.frame_rate = static_cast<double>(kRate) / 512;
        i.default_layer = 0;
        i.layer_names = {"mfcc+chroma"};
        i.layer_descriptions = {"dims 0-19: MFCC 0-19 (128 mel bands), dims 20-31: STFT chroma; each block unit length"};
        i.description = "baseline: per-frame MFCC 0-19 and STFT chroma, each block unit length (their means are the "
                        "classic mean-MFCC + mean-chroma descriptor)";
        return std::make_shared<WindowedEncoder>(
            std::move(i), &baseline_window, +[](std::size_t n) { return 1 + static_cast<std::int64_t>(n) / 512; });
    }();
    return encoder;
}

}  // namespace mess
