// Moments: the climax (loudness × novelty × register) and cadences (V7 → I arrivals).
#include <algorithm>
#include <cmath>

#include "internal.hpp"

namespace mess {

namespace {

// Weights of novelty and register in the climax curve (loudness dominates; tuned on the beginner corpus).
constexpr float kNoveltyWeight = 0.1f, kRegisterWeight = 0.1f;

// Maps x to 0..1 between `lo` and `hi` (0.5 everywhere when hi ≤ lo).
void rescale(std::vector<float>& x, double lo, double hi) {
    for (float& v : x) v = hi > lo ? static_cast<float>(std::clamp((v - lo) / (hi - lo), 0.0, 1.0)) : 0.5f;
}

double percentile(std::vector<float> x, double q) {
    if (x.empty()) return 0;
    const auto k = static_cast<std::size_t>(std::clamp(q, 0.0, 1.0) * static_cast<double>(x.size() - 1));
    std::nth_element(x.begin(), x.begin() + static_cast<std::ptrdiff_t>(k), x.end());
    return x[k];
}

// The register smoothed over sounding frames only, mapped min..max → 0..1.
std::vector<float> register_curve(const StructureFeatures& f, double sigma) {
    std::vector<float> weighted(f.register_semitone.size()), voiced(f.register_semitone.size());
    for (std::size_t t = 0; t < weighted.size(); ++t) {
        voiced[t] = f.register_semitone[t] > 0 ? 1.0f : 0.0f;
        weighted[t] = f.register_semitone[t];
    }
    weighted = dsp::gaussian_filter(weighted, sigma);
    voiced = dsp::gaussian_filter(voiced, sigma);
    double lo = 1e9, hi = -1e9;
    for (std::size_t t = 0; t < weighted.size(); ++t) {
        if (voiced[t] < 0.05f) continue;
        weighted[t] /= voiced[t];
        lo = std::min(lo, static_cast<double>(weighted[t]));
        hi = std::max(hi, static_cast<double>(weighted[t]));
    }
    for (std::size_t t = 0; t < weighted.size(); ++t)
        if (voiced[t] < 0.05f) weighted[t] = static_cast<float>(lo);
    rescale(weighted, lo, hi);
    return weighted;
}

// Unit vector of the chroma summed over frames [a, b).
std::array<double, 12> mean_chroma(const StructureFeatures& f, std::int64_t a, std::int64_t b) {
    std::array<double, 12> v{};
    for (std::int64_t t = std::max<std::int64_t>(0, a); t < std::min(b, f.frames()); ++t)
        for (int c = 0; c < 12; ++c) v[static_cast<std::size_t>(c)] += f.chroma.at(t, c);
    double n = 0;
    for (double x : v) n += x * x;
    if (n > 0)
        for (double& x : v) x /= std::sqrt(n);
    return v;
}

// Cosine of a unit chroma with the binary template of `pcs` (pitch classes mod 12).
double chord_match(const std::array<double, 12>& v, std::initializer_list<int> pcs) {
    double acc = 0;
    for (int pc : pcs) acc += v[static_cast<std::size_t>(((pc % 12) + 12) % 12)];
    return acc / std::sqrt(static_cast<double>(pcs.size()));
}

double mean_db(const StructureFeatures& f, std::int64_t a, std::int64_t b) {
    double acc = 0;
    std::int64_t n = 0;
    for (std::int64_t t = std::max<std::int64_t>(0, a); t < std::min(b, f.frames()); ++t, ++n) acc += f.loudness_db[static_cast<std::size_t>(t)];
    return n > 0 ? acc / static_cast<double>(n) : -100.0;
}

// Onset peaks: local maxima within ±2 frames above the mean onset.
std::vector<std::int64_t> onset_peaks(const StructureFeatures& f) {
    double mean = 0;
    for (float v : f.onset) mean += v;
    mean /= static_cast<double>(std::max<std::size_t>(1, f.onset.size()));
    std::vector<std::int64_t> peaks;
    const auto n = static_cast<std::int64_t>(f.onset.size());
    for (std::int64_t t = 0; t < n; ++t) {
        const float v = f.onset[static_cast<std::size_t>(t)];
        bool is_max = v > mean;
        for (std::int64_t u = std::max<std::int64_t>(0, t - 2); u <= std::min(n - 1, t + 2) && is_max; ++u)
            if (f.onset[static_cast<std::size_t>(u)] > v || (f.onset[static_cast<std::size_t>(u)] == v && u < t)) is_max = false;
        if (is_max) peaks.push_back(t);
    }
    return peaks;
}

const KeySpan* key_at(const Structure& s, double time) {
    for (const auto& k : s.keys)
        if (time >= k.start && time < k.end) return &k;
    return nullptr;
}

// The strength of a cadence arriving at onset frame t in `key` (see the header), given the IOI after it.
double cadence_strength(const StructureFeatures& f, const Structure& s, std::int64_t t, int key, double ioi_ratio) {
    const double fr = f.frame_rate;
    const auto before = mean_chroma(f, t - static_cast<std::int64_t>(fr), t - 1);
    const auto after = mean_chroma(f, t + 1, t + static_cast<std::int64_t>(0.8 * fr));
    const int tonic = key % 12, dom = tonic + 7;
    const double arrival = std::max(0.0, chord_match(before, {dom, dom + 4, dom + 7, dom + 10})) *
                           std::max(0.0, chord_match(after, {tonic, tonic + (key < 12 ? 4 : 3), tonic + 7}));
    const double lengthening = std::clamp((ioi_ratio - 1.0) / 2.0, 0.0, 1.0);
    const double time = static_cast<double>(t) / fr;
    double release = std::clamp((mean_db(f, t - static_cast<std::int64_t>(fr), t) - mean_db(f, t + 1, t + static_cast<std::int64_t>(fr))) / 6.0, 0.0, 1.0);
    for (std::size_t i = 1; i + 1 < s.boundaries.size(); ++i)
        if (s.boundaries[i] > time && s.boundaries[i] - time <= 1.5) release = 1.0;
    return arrival * (0.5 + 0.25 * lengthening + 0.25 * release);
}

}  // namespace

std::optional<Climax> find_climax(const StructureFeatures& f, const Structure& s, const StructureParams& p) {
    if (f.silent || f.frames() == 0) return std::nullopt;
    const double sigma = p.climax_smooth_sec * f.frame_rate;
    std::vector<float> loud = dsp::gaussian_filter(f.loudness_db, sigma);
    rescale(loud, percentile(loud, 0.1), *std::max_element(loud.begin(), loud.end()));
    std::vector<float> nov = dsp::gaussian_filter(s.novelty, sigma);
    const float nmax = nov.empty() ? 0.0f : *std::max_element(nov.begin(), nov.end());
    rescale(nov, 0.0, nmax);
    const std::vector<float> reg = register_curve(f, sigma);
    std::vector<float> c(loud.size());
    for (std::size_t t = 0; t < c.size(); ++t) c[t] = loud[t] * (1.0f - kNoveltyWeight + kNoveltyWeight * (t < nov.size() ? nov[t] : 0.0f)) * (1.0f - kRegisterWeight + kRegisterWeight * reg[t]);
    const auto peak = static_cast<std::size_t>(std::max_element(c.begin(), c.end()) - c.begin());
    const double med = percentile(c, 0.5), level = med + 0.75 * (c[peak] - med);
    std::size_t a = peak, b = peak;
    while (a > 0 && c[a - 1] >= level) --a;
    while (b + 1 < c.size() && c[b + 1] >= level) ++b;
    return Climax{static_cast<double>(peak) / f.frame_rate, static_cast<double>(a) / f.frame_rate,
                  std::min(f.duration_sec, static_cast<double>(b + 1) / f.frame_rate), c[peak]};
}

std::vector<Cadence> find_cadences(const StructureFeatures& f, const Structure& s, const StructureParams& p) {
    if (f.silent) return {};
    const std::vector<std::int64_t> peaks = onset_peaks(f);
    std::vector<float> iois;
    for (std::size_t i = 1; i < peaks.size(); ++i) iois.push_back(static_cast<float>(peaks[i] - peaks[i - 1]));
    const double median_ioi = std::max(1.0, percentile(iois, 0.5));
    std::vector<Cadence> found;
    for (std::size_t i = 0; i < peaks.size(); ++i) {
        const double time = static_cast<double>(peaks[i]) / f.frame_rate;
        const KeySpan* key = key_at(s, time);
        if (!key) continue;
        const double ioi = i + 1 < peaks.size() ? static_cast<double>(peaks[i + 1] - peaks[i]) : static_cast<double>(f.frames() - peaks[i]);
        const double strength = cadence_strength(f, s, peaks[i], key->key, ioi / median_ioi);
        if (strength < p.cadence_threshold) continue;
        if (!found.empty() && time - found.back().time < 2.0) {  // the strongest within ±2 s
            if (strength > found.back().strength) found.back() = {time, strength, key->key};
            continue;
        }
        found.push_back({time, strength, key->key});
    }
    return found;
}

}  // namespace mess
