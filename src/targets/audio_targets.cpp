// Proxy targets from audio (reference/predecessor.md §2.6).
#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <numeric>

#include "mess/dsp.hpp"
#include "mess/npy.hpp"
#include "mess/targets.hpp"
#include "curves.hpp"
#include "stats.hpp"

namespace mess {
namespace {

using targets_detail::mean;
using targets_detail::variance;

constexpr int kHop = 512;
using targets_detail::kCurveFrames;
constexpr double kCurveSeconds = 30.0;

// Mean of x over `frames` equal buckets (bucket of i = floor(i·frames/N)); empty buckets get `fill`.
std::vector<float> pool_to(const std::vector<float>& x, int frames, float fill) {
    std::vector<double> sum(static_cast<std::size_t>(frames), 0.0);
    std::vector<int> count(static_cast<std::size_t>(frames), 0);
    for (std::size_t i = 0; i < x.size(); ++i) {
        const auto b = static_cast<std::size_t>(i * static_cast<std::size_t>(frames) / x.size());
        sum[b] += x[i];
        ++count[b];
    }
    std::vector<float> out(static_cast<std::size_t>(frames), fill);
    for (std::size_t b = 0; b < out.size(); ++b)
        if (count[b]) out[b] = static_cast<float>(sum[b] / count[b]);
    return out;
}

void min_max(std::vector<float>& v) {
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    const double span = static_cast<double>(*hi) - *lo;
    if (span < 1e-12) {
        std::fill(v.begin(), v.end(), 0.0f);
        return;
    }
    const float l = *lo;
    for (auto& x : v) x = static_cast<float>((x - l) / span);
}

// Peaks ≥ height, at least `distance` frames apart (the higher wins), as scipy.signal.find_peaks.
std::size_t count_peaks(const std::vector<float>& x, double height, std::int64_t distance) {
    std::vector<std::size_t> peaks;
    for (std::size_t i = 1; i + 1 < x.size(); ++i)
        if (x[i] > x[i - 1] && x[i] >= x[i + 1] && x[i] >= height) peaks.push_back(i);
    std::vector<std::size_t> order(peaks.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return x[peaks[a]] > x[peaks[b]]; });
    std::vector<bool> keep(peaks.size(), true);
    for (std::size_t o : order) {
        if (!keep[o]) continue;
        for (std::size_t j = 0; j < peaks.size(); ++j)
            if (j != o && keep[j] && std::llabs(static_cast<long long>(peaks[j]) - static_cast<long long>(peaks[o])) < distance) keep[j] = false;
    }
    return static_cast<std::size_t>(std::count(keep.begin(), keep.end(), true));
}

// Entropy of the mean pitch-class distribution.
double harmonic_complexity(const dsp::Matrix& chroma) {
    if (chroma.rows == 0) return 0.0;
    std::vector<double> m(12, 0.0);
    for (std::int64_t t = 0; t < chroma.rows; ++t)
        for (int c = 0; c < 12; ++c) m[static_cast<std::size_t>(c)] += chroma.at(t, c);
    const double total = std::accumulate(m.begin(), m.end(), 0.0) + 1e-8;
    double h = 0.0;
    for (double v : m) {
        const double p = v / total;
        h -= p * std::log(p + 1e-8);
    }
    return h;
}

struct Dynamics {
    double range = 0, variance = 0, crescendo = 0, diminuendo = 0;
};

Dynamics dynamics_of(const std::vector<float>& rms, int max_window) {
    Dynamics d;
    if (rms.empty()) return d;
    const auto [lo, hi] = std::minmax_element(rms.begin(), rms.end());
    d.range = static_cast<double>(*hi) - *lo;
    const double m = mean(rms) + 1e-8;
    std::vector<double> norm(rms.size());
    for (std::size_t i = 0; i < rms.size(); ++i) norm[i] = rms[i] / m;
    d.variance = variance(norm);
    int window = std::min<int>(max_window, static_cast<int>(rms.size()));
    if (window % 2 == 0) --window;
    const auto smooth = window >= 5 ? dsp::savgol_filter(rms, window, 3) : rms;
    d.crescendo = targets_detail::longest_run_strength(smooth, true);
    d.diminuendo = targets_detail::longest_run_strength(smooth, false);
    return d;
}

struct Articulation {
    double slopes = 0, sharpness = 0;
};

Articulation articulation_of(const std::vector<float>& rms, const std::vector<float>& onset_env, double sr) {
    Articulation a;
    if (rms.empty()) return a;
    // dB of the RMS power relative to its maximum.
    const double peak = static_cast<double>(*std::max_element(rms.begin(), rms.end())) * *std::max_element(rms.begin(), rms.end());
    std::vector<double> db(rms.size());
    double top = -1e300;
    for (std::size_t i = 0; i < rms.size(); ++i) {
        db[i] = 10.0 * std::log10(std::max(1e-10, static_cast<double>(rms[i]) * rms[i])) - 10.0 * std::log10(std::max(1e-10, peak));
        top = std::max(top, db[i]);
    }
    for (auto& v : db) v = std::max(v, top - 80.0);
    const auto onsets = dsp::onset_detect(onset_env, sr, kHop);
    const auto window = static_cast<std::int64_t>(std::max(2.0, std::ceil(0.2 * sr / kHop)));
    std::vector<double> slopes;
    for (auto t : onsets) {
        if (t + window > static_cast<std::int64_t>(db.size())) continue;
        double sx = 0, sy = 0, sxx = 0, sxy = 0;  // least-squares slope over the window
        for (std::int64_t i = 0; i < window; ++i) {
            const double x = static_cast<double>(i), y = db[static_cast<std::size_t>(t + i)];
            sx += x, sy += y, sxx += x * x, sxy += x * y;
        }
        const double w = static_cast<double>(window);
        slopes.push_back(std::max(0.0, (w * sxy - sx * sy) / (w * sxx - sx * sx)));
    }
    a.slopes = mean(slopes);
    a.sharpness = targets_detail::forward_step_at(db, onsets);
    return a;
}

// Timbre, dynamics, harmony and articulation values of one stretch of audio (whole track or window).
// What the whole-track scalars share with the track's window values.
struct TrackAnalysis {
    dsp::Matrix chroma;                         // librosa's chroma_cqt, hop 512
    std::vector<float> onset_mean, onset_median;  // onset envelopes (mean and median over mel bands)
};

// With `track`, its analyses are handed out instead of being computed again.
void window_values(std::span<const float> y, double sr, int savgol_window, std::map<std::string, double>& out,
                   TrackAnalysis* track = nullptr) {
    dsp::StftParams p;
    const dsp::Spectra spec = dsp::stft_spectra(y, p);  // one transform: magnitude for the shape, power for the mel bands
    const dsp::Matrix& mag = spec.magnitude;
    const dsp::SpectralShape shape = dsp::spectral_shape(mag, sr, p.n_fft);
    out["timbre/spectral_centroid"] = mean(shape.centroid);
    out["timbre/spectral_rolloff"] = mean(dsp::spectral_rolloff(mag, sr, p.n_fft));
    out["timbre/spectral_bandwidth"] = mean(shape.bandwidth);
    out["timbre/zero_crossing_rate"] = mean(dsp::zero_crossing_rate(y, p));
    const auto rms = dsp::rms(y, p);
    const Dynamics d = dynamics_of(rms, savgol_window);
    out["dynamics/dynamic_range"] = d.range;
    out["dynamics/dynamic_variance"] = d.variance;
    out["dynamics/crescendo_strength"] = d.crescendo;
    out["dynamics/diminuendo_strength"] = d.diminuendo;
    dsp::Matrix c;  // a window's harmonic complexity reads the track's chroma (window_chroma_complexity)
    if (track) {
        c = dsp::chroma_cqt(y, sr, kHop, dsp::estimate_tuning(mag, sr, p.n_fft, 36));
        out["harmony/harmonic_complexity"] = harmonic_complexity(c);
    }
    std::vector<float> env;
    if (track) {
        auto both = dsp::onset_envelopes_from_power(spec.power, sr, p, {});
        env = std::move(both.mean);
        track->onset_median = std::move(both.median);
    } else {
        env = dsp::onset_strength_from_power(spec.power, sr, p, {});
    }
    const Articulation a = articulation_of(rms, env, sr);
    if (track) track->chroma = std::move(c), track->onset_mean = std::move(env);
    out["articulation/attack_slopes"] = a.slopes;
    out["articulation/attack_sharpness"] = a.sharpness;
}

// Harmonic complexity of a window from the track's chroma (one constant-Q analysis per track): the track's frames
// nearest the window's own (frame t of the window is centred on sample start + t·hop, the track frame
// round(start/hop) + t), as many as the window would have (1 + length/hop), clipped to the track. It differs from
// the window's own chroma_cqt by the tuning (the track's), by up to hop/2 samples of frame offset, and at the
// window's edges, where the track's filters read the neighbouring audio instead of zero padding.
double window_chroma_complexity(const dsp::Matrix& track_chroma, std::int64_t start_sample, std::int64_t length) {
    const std::int64_t first = std::min(track_chroma.rows, (start_sample + kHop / 2) / kHop);
    const std::int64_t count = std::min(track_chroma.rows - first, length > 0 ? 1 + length / kHop : 0);
    dsp::Matrix rows{count, track_chroma.cols, {}};
    const auto begin = track_chroma.values.begin() + static_cast<std::ptrdiff_t>(first * track_chroma.cols);
    rows.values.assign(begin, begin + static_cast<std::ptrdiff_t>(count * track_chroma.cols));
    return harmonic_complexity(rows);
}

constexpr double kCurveRate = 22050;

// The norm of frame f's pooled chroma, normalised, as a Tonal Interval Space vector (DFT coefficients 1–6,
// weighted); 0 for a silent frame.
double tis_norm(const std::vector<std::vector<float>>& pooled, int f) {
    static const double weights[] = {3, 8, 11.5, 15, 14.5, 7.5};
    double total = 0;
    for (int c = 0; c < 12; ++c) total += std::fabs(pooled[static_cast<std::size_t>(c)][static_cast<std::size_t>(f)]);
    if (total <= 0) return 0.0;
    double norm2 = 0;
    for (int k = 1; k <= 6; ++k) {
        double re = 0, im = 0;
        for (int c = 0; c < 12; ++c) {
            const double v = pooled[static_cast<std::size_t>(c)][static_cast<std::size_t>(f)] / total;
            re += v * std::cos(2 * std::numbers::pi * k * c / 12.0);
            im -= v * std::sin(2 * std::numbers::pi * k * c / 12.0);
        }
        const double mag = std::hypot(re, im) * weights[k - 1];
        norm2 += mag * mag;
    }
    return std::sqrt(norm2);
}

// T1 tonal tension: the TIS norm per frame of the chroma (hop 512), min-max scaled over the curve.
std::vector<float> tis_tension(const dsp::Matrix& chroma) {
    std::vector<float> tension(kCurveFrames, 0.0f);
    if (chroma.rows == 0) return tension;
    std::vector<std::vector<float>> pooled(12);
    for (int c = 0; c < 12; ++c) {
        std::vector<float> col(static_cast<std::size_t>(chroma.rows));
        for (std::int64_t t = 0; t < chroma.rows; ++t) col[static_cast<std::size_t>(t)] = chroma.at(t, c);
        pooled[static_cast<std::size_t>(c)] = pool_to(col, kCurveFrames, 0.0f);
    }
    for (int f = 0; f < kCurveFrames; ++f) tension[static_cast<std::size_t>(f)] = static_cast<float>(tis_norm(pooled, f));
    min_max(tension);
    return tension;
}

// T2 dynamic arc: RMS dB (floor -60) pooled, Gaussian-smoothed, min-max scaled.
std::vector<float> dynamic_arc(const std::vector<float>& y) {
    std::vector<float> arc(kCurveFrames, 0.0f);
    const auto hop = static_cast<int>(y.size() / (kCurveFrames * 4));
    if (hop < 1) return arc;
    const dsp::StftParams f{std::max(2 * hop, 2048), hop};  // frame = max(2·hop, 2048), centred
    auto r = dsp::rms(y, f);
    arc = pool_to(r, kCurveFrames, 0.0f);
    for (auto& v : arc) v = static_cast<float>(std::max(20.0 * std::log10(v + 1e-10), -60.0));
    arc = dsp::gaussian_filter(arc, 3.0);
    min_max(arc);
    return arc;
}

// Per tempogram frame, the BPM (40–240) of the strongest lag under a log-normal prior around 120 BPM.
std::vector<float> tempogram_bpm(const std::vector<float>& env) {
    const dsp::Matrix tg = dsp::tempogram(env, 384);
    std::vector<float> bpm(static_cast<std::size_t>(tg.rows), 120.0f);
    for (std::int64_t t = 0; t < tg.rows; ++t) {
        double best = -1;
        for (int lag = 1; lag < tg.cols; ++lag) {
            const double b = 60.0 * kCurveRate / (kHop * lag);
            if (b < 40 || b > 240) continue;
            const double z = std::log2(b) - std::log2(120.0);
            const double s = std::log1p(std::max(0.0f, tg.at(t, lag))) * std::exp(-0.5 * z * z);
            if (s > best) best = s, bpm[static_cast<std::size_t>(t)] = static_cast<float>(b);
        }
    }
    return bpm;
}

// T3 local tempo: per-frame tempogram peak, median-filtered, as log2(BPM/60); 1 (120 BPM) without onsets.
std::vector<float> local_tempo(const std::vector<float>& env) {
    const bool has_onsets = std::any_of(env.begin(), env.end(), [](float v) { return v > 1e-6f; });
    if (!has_onsets) return std::vector<float>(kCurveFrames, 1.0f);
    std::vector<float> bpm = dsp::median_filter(tempogram_bpm(env), 5);
    for (auto& b : bpm) b = std::log2(std::clamp(b, 40.0f, 240.0f) / 60.0f);
    return pool_to(bpm, kCurveFrames, 1.0f);
}

// T4 centroid trajectory: log2 of the pooled spectral centroid, standardised (0 for silence or a flat curve).
std::vector<float> centroid_trajectory(const std::vector<float>& y, const dsp::Matrix& magnitude, const dsp::StftParams& p) {
    auto c = dsp::spectral_centroid(magnitude, kCurveRate, p.n_fft);
    auto pooled = pool_to(c, kCurveFrames, 0.0f);
    for (auto& v : pooled) v = std::log2(v + 1.0f);
    const bool silent = std::all_of(y.begin(), y.end(), [](float v) { return std::fabs(v) <= 1e-8f; });
    std::vector<double> d(pooled.begin(), pooled.end());
    const double m = mean(d), sd = targets_detail::stdev(d);
    for (auto& v : pooled) v = silent || sd < 1e-6 ? 0.0f : static_cast<float>((v - m) / (sd + 1e-6));
    return pooled;
}

// The rows of a hop-512 analysis at hop 1024: every second one. Centred frames at twice the hop are the same
// frames (t·1024 = 2t·512), up to 1 + samples/1024 of them; the constant-Q transform at twice the hop also frames
// the same (downsampled) signals at the same centres.
dsp::Matrix every_second_frame(const dsp::Matrix& c, std::int64_t samples) {
    const std::int64_t rows = std::min(1 + samples / 1024, (c.rows + 1) / 2);
    dsp::Matrix out{rows, c.cols, std::vector<float>(static_cast<std::size_t>(rows * c.cols))};
    for (std::int64_t t = 0; t < rows; ++t) std::copy_n(&c.values[static_cast<std::size_t>(2 * t * c.cols)], c.cols, &out.values[static_cast<std::size_t>(t * c.cols)]);
    return out;
}

// T5 novelty: MFCC and chroma (hop 1024) self-similarity, Foote kernel, each scaled to its peak and averaged. The
// MFCCs read every second frame of the curve signal's hop-512 power spectrogram (n_fft 2048).
std::vector<float> novelty(std::int64_t samples, const dsp::Matrix& power512, const dsp::Matrix& chroma512) {
    dsp::Matrix m = dsp::mfcc_from_power(every_second_frame(power512, samples), kCurveRate, 13, 2048, {});
    dsp::Matrix c = every_second_frame(chroma512, samples);
    const std::int64_t n = std::min(m.rows, c.rows);
    if (n < 16) return std::vector<float>(kCurveFrames, 0.0f);
    m.rows = c.rows = n;
    m.values.resize(static_cast<std::size_t>(n * m.cols));
    c.values.resize(static_cast<std::size_t>(n * c.cols));
    std::vector<float> sum(static_cast<std::size_t>(n), 0.0f);
    for (const dsp::Matrix* feat : {&m, &c}) {
        auto nov = dsp::checkerboard_novelty(dsp::cosine_self_similarity(*feat), 8);
        const float mx = *std::max_element(nov.begin(), nov.end());
        if (mx > 1e-10f)
            for (std::size_t i = 0; i < nov.size(); ++i) sum[i] += 0.5f * nov[i] / mx;
    }
    return pool_to(sum, kCurveFrames, 0.0f);
}

// Curves T1–T5 over the first 30 s at 22,050 Hz: one STFT (n_fft 2048, hop 512) for T3's onsets, T4, the tuning
// and T5's MFCCs; one constant-Q chroma for T1 and T5.
void curves(const Audio& audio24k, TargetSet& out) {
    auto y = resample(audio24k.samples, audio24k.sample_rate, static_cast<int>(kCurveRate));
    y.resize(static_cast<std::size_t>(kCurveSeconds * kCurveRate), 0.0f);  // the first 30 s, zero-padded as the predecessor did
    const dsp::StftParams p;
    const dsp::Spectra spec = dsp::stft_spectra(y, p);
    const double tuning = dsp::estimate_tuning(spec.magnitude, kCurveRate, p.n_fft, 36);  // shared by T1 and T5
    const dsp::Matrix chroma = dsp::chroma_cqt(y, kCurveRate, kHop, tuning);  // T1's, and T5's every second frame
    out.arrays["curves/tis_tension"] = tis_tension(chroma);
    out.arrays["curves/dynamic_arc"] = dynamic_arc(y);
    out.arrays["curves/local_tempo"] = local_tempo(dsp::onset_strength_from_power(spec.power, kCurveRate, p, {}));
    out.arrays["curves/centroid_trajectory"] = centroid_trajectory(y, spec.magnitude, p);
    out.arrays["curves/novelty"] = novelty(static_cast<std::int64_t>(y.size()), spec.power, chroma);
}

}  // namespace

namespace targets_detail {
std::vector<float> tis_tension_curve(const std::vector<float>& y, double tuning) {
    return tis_tension(dsp::chroma_cqt(y, kCurveRate, kHop, tuning));
}
std::vector<float> novelty_curve(const std::vector<float>& y, double tuning) {
    return novelty(static_cast<std::int64_t>(y.size()), dsp::power_spectrogram(y, {}), dsp::chroma_cqt(y, kCurveRate, kHop, tuning));
}
}  // namespace targets_detail

const std::vector<std::string>& scalar_target_names() {
    static const std::vector<std::string> n = {
        "rhythm/tempo", "rhythm/tempo_refined", "rhythm/onset_density", "harmony/harmonic_complexity", "timbre/spectral_centroid",
        "timbre/spectral_rolloff", "timbre/spectral_bandwidth", "timbre/zero_crossing_rate", "articulation/attack_slopes",
        "articulation/attack_sharpness", "dynamics/dynamic_range", "dynamics/dynamic_variance", "dynamics/crescendo_strength",
        "dynamics/diminuendo_strength", "phrasing/phrase_regularity", "phrasing/num_phrases"};
    return n;
}

const std::vector<std::string>& window_target_names() {
    static const std::vector<std::string> n = {
        "timbre/spectral_centroid", "timbre/spectral_rolloff", "timbre/spectral_bandwidth", "timbre/zero_crossing_rate",
        "dynamics/dynamic_range", "dynamics/dynamic_variance", "dynamics/crescendo_strength", "dynamics/diminuendo_strength",
        "harmony/harmonic_complexity", "articulation/attack_slopes", "articulation/attack_sharpness"};
    return n;
}

const std::vector<std::string>& curve_target_names() {
    static const std::vector<std::string> n = {"curves/tis_tension", "curves/dynamic_arc", "curves/local_tempo",
                                               "curves/centroid_trajectory", "curves/novelty"};
    return n;
}

float TargetSet::scalar(const std::string& name) const {
    auto it = arrays.find(name);
    if (it == arrays.end() || it->second.size() != 1) throw_usage("no scalar target '{}'", name);
    return it->second[0];
}

TargetSet compute_audio_targets(const Audio& audio, const TargetParams& params) {
    if (audio.sample_rate != kModelSampleRate)
        throw_input("targets need 24 kHz audio (got {} Hz): load it with load_audio", audio.sample_rate);
    dsp::require_finite(audio.samples);
    const double sr = audio.sample_rate, duration = audio.duration_sec();
    TargetSet out;
    std::map<std::string, double> v;
    TrackAnalysis track;
    window_values(audio.samples, sr, 51, v, &track);
    const auto& env = track.onset_mean;
    const dsp::Matrix& chroma = track.chroma;
    v["rhythm/tempo"] = dsp::beat_track_tempo(track.onset_median, sr, kHop);
    v["rhythm/tempo_refined"] = dsp::estimate_tempo(env, sr, kHop);
    v["rhythm/onset_density"] =
        duration > 0 ? static_cast<double>(count_peaks(env, 0.5 * mean(env), static_cast<std::int64_t>(sr * 0.1 / kHop))) / duration : 0.0;
    // Phrasing: agglomerative segments of the chroma; k from the duration.
    const int k = static_cast<int>(std::min<std::int64_t>(std::clamp(static_cast<int>(duration / 15.0), 4, 12), chroma.rows));
    double regularity = 0.0, phrases = 0.0;
    if (k >= 2) {
        auto starts = dsp::agglomerative_segments(chroma, k);
        std::vector<double> lengths;
        for (std::size_t i = 1; i < starts.size(); ++i) lengths.push_back(static_cast<double>(starts[i] - starts[i - 1]));
        phrases = static_cast<double>(lengths.size());
        if (lengths.size() > 1) {
            regularity = targets_detail::stdev(lengths) / mean(lengths);
        }
    }
    v["phrasing/phrase_regularity"] = regularity;
    v["phrasing/num_phrases"] = phrases;
    for (const auto& name : scalar_target_names()) out.arrays[name] = {static_cast<float>(v.at(name))};

    if (params.per_window) {
        const auto windows = plan_windows(static_cast<std::int64_t>(audio.samples.size()), params.windows);
        std::vector<float> starts, ends;
        std::map<std::string, std::vector<float>> per;
        for (const auto& w : windows) {
            starts.push_back(static_cast<float>(w.start_sec));
            ends.push_back(static_cast<float>(w.end_sec));
            std::map<std::string, double> wv;
            window_values(std::span(audio.samples).subspan(static_cast<std::size_t>(w.start_sample), static_cast<std::size_t>(w.length)), sr, 11, wv);
            wv["harmony/harmonic_complexity"] = window_chroma_complexity(chroma, w.start_sample, w.length);
            for (const auto& name : window_target_names()) per[name].push_back(static_cast<float>(wv.at(name)));
        }
        out.arrays["window/start_sec"] = starts;
        out.arrays["window/end_sec"] = ends;
        for (auto& [name, values] : per) out.arrays["window/" + name.substr(name.find('/') + 1)] = std::move(values);
    }
    if (params.curves) curves(audio, out);
    return out;
}

namespace {

constexpr const char* kSourceSize = "source/size_bytes";
constexpr const char* kSourceMtime = "source/mtime_ns";

// The audio stamp of a target file (members source/size_bytes and source/mtime_ns, int64 [1]); nullopt
// for files written before stamps existed. Errors: Error(input) for one member without the other or a
// member of another type.
std::optional<FileStamp> read_source(const NpzMembers& members, const std::filesystem::path& path) {
    const auto size = members.find(kSourceSize), mtime = members.find(kSourceMtime);
    if (size == members.end() && mtime == members.end()) return std::nullopt;
    for (const auto* name : {kSourceSize, kSourceMtime}) {
        const auto it = members.find(name);
        if (it == members.end()) throw_input("{}: member '{}' is missing (the other source/ member is there)", path.string(), name);
        if (it->second.dtype != DType::i64 || it->second.count() != 1 || it->second.shape.size() != 1)
            throw_input("{}: member '{}' is {}, expected int64 [1]", path.string(), name, it->second.describe());
    }
    return FileStamp{static_cast<std::uint64_t>(size->second.view<std::int64_t>()[0]), mtime->second.view<std::int64_t>()[0]};
}

}  // namespace

void write_targets(const std::filesystem::path& path, const TargetSet& t) {
    NpzMembers m;
    for (const auto& [name, values] : t.arrays) {
        if (name.starts_with("source/")) throw_usage("{}: '{}': source/ names the audio's stamp, not a target", path.string(), name);
        m.emplace(name, NpyArray::from(values, {static_cast<std::int64_t>(values.size())}));
    }
    if (t.source) {
        m.emplace(kSourceSize, NpyArray::from(std::vector<std::int64_t>{static_cast<std::int64_t>(t.source->size_bytes)}, {1}));
        m.emplace(kSourceMtime, NpyArray::from(std::vector<std::int64_t>{t.source->mtime_ns}, {1}));
    }
    write_npz(path, m, /*compress=*/true);
}

TargetSet read_targets(const std::filesystem::path& path) {
    TargetSet t;
    const NpzMembers members = read_npz(path);
    t.source = read_source(members, path);
    for (const auto& [name, arr] : members) {
        if (name.starts_with("source/")) continue;
        if (arr.shape.size() != 1) throw_input("{}: member '{}' is {}, expected a 1-D array", path.string(), name, arr.describe());
        if (name.starts_with("curves/") && arr.count() != kCurveFrames)
            throw_input("{}: curve '{}' has {} frames, expected {}", path.string(), name, arr.count(), kCurveFrames);
        t.arrays[name] = arr.to_float32();
    }
    return t;
}

void keep_freed_memory_for_batches(int bytes) {
#if defined(__GLIBC__)
    if (mallopt(M_MMAP_THRESHOLD, bytes) == 0) mallopt(M_MMAP_THRESHOLD, 32 << 20);  // glibc's largest on 64 bits
    mallopt(M_TRIM_THRESHOLD, bytes);
#else
    (void)bytes;
#endif
}

}  // namespace mess
