// Sections: band checkerboard novelty, boundary picking, labels by repetition.
#include <algorithm>
#include <cmath>

#include "internal.hpp"

namespace mess {

namespace {

// Centred moving average of each column over `width` frames (edges average what exists).
dsp::Matrix smooth_rows(const dsp::Matrix& m, int width) {
    dsp::Matrix out{m.rows, m.cols, std::vector<float>(m.values.size(), 0.0f)};
    const int half = width / 2;
    for (std::int64_t c = 0; c < m.cols; ++c) {
        double acc = 0;
        std::int64_t lo = 0, hi = 0;  // the window [lo, hi)
        for (std::int64_t t = 0; t < m.rows; ++t) {
            for (; hi < std::min(m.rows, t + half + 1); ++hi) acc += m.at(hi, c);
            for (; lo < t - half; ++lo) acc -= m.at(lo, c);
            out.at(t, c) = static_cast<float>(acc / static_cast<double>(hi - lo));
        }
    }
    return out;
}

void normalize_rows(dsp::Matrix& m) {
    for (std::int64_t t = 0; t < m.rows; ++t) {
        double s = 0;
        for (std::int64_t c = 0; c < m.cols; ++c) s += static_cast<double>(m.at(t, c)) * m.at(t, c);
        const double n = std::sqrt(s);
        if (n > 1e-10)
            for (std::int64_t c = 0; c < m.cols; ++c) m.at(t, c) = static_cast<float>(m.at(t, c) / n);
    }
}

int frames_of(double sec, double frame_rate) { return std::max(1, static_cast<int>(std::lround(sec * frame_rate))); }

// The rows the climax's novelty compares: [unit chroma, 0.5·timbre], smoothed over smooth_sec.
dsp::Matrix chroma_timbre_rows(const StructureFeatures& f, double smooth_sec) {
    const int width = frames_of(smooth_sec, f.frame_rate);
    dsp::Matrix chroma = smooth_rows(f.chroma, width);
    normalize_rows(chroma);
    const dsp::Matrix timbre = smooth_rows(f.timbre, width);
    dsp::Matrix rows{f.frames(), 19, std::vector<float>(static_cast<std::size_t>(f.frames() * 19))};
    for (std::int64_t t = 0; t < f.frames(); ++t) {
        for (int c = 0; c < 12; ++c) rows.at(t, c) = chroma.at(t, c);
        for (int b = 0; b < 7; ++b) rows.at(t, 12 + b) = 0.5f * timbre.at(t, b);
    }
    return rows;
}

// The rows the boundaries' novelty compares: unit semitone vectors, smoothed over smooth_sec.
dsp::Matrix semitone_rows(const StructureFeatures& f, double smooth_sec) {
    dsp::Matrix unit = f.semitones;
    normalize_rows(unit);
    return smooth_rows(unit, frames_of(smooth_sec, f.frame_rate));
}

// The band novelty of the rows with a kernel of half_sec, in similarity units: the kernel's positive weights
// sum to half its absolute weight, so this is the weighted mean similarity within the two blocks minus that
// across them (0 for a constant signal), clamped to 0..1.
std::vector<float> scaled_novelty(const dsp::Matrix& rows, double half_sec, double frame_rate) {
    if (!(half_sec >= 0.5 && half_sec <= 60)) throw_usage("structure: novelty half-width out of range (0.5..60 s, got {})", half_sec);
    const int half = frames_of(half_sec, frame_rate);
    std::vector<float> nov = band_checkerboard_novelty(rows, half);
    double weight = 0;
    for (int i = -half; i <= half; ++i)
        for (int j = -half; j <= half; ++j)
            if (i != 0 && j != 0) weight += std::exp(-static_cast<double>(i * i + j * j) / (half * half));
    for (float& v : nov) v = static_cast<float>(std::clamp(v / (weight / 2), 0.0, 1.0));
    return nov;
}

// x·y over n floats in eight independent lanes (so the compiler vectorises it).
float dot(const float* x, const float* y, std::int64_t n) {
    float lanes[8] = {};
    std::int64_t c = 0;
    for (; c + 8 <= n; c += 8)
        for (int k = 0; k < 8; ++k) lanes[k] += x[c + k] * y[c + k];
    float sum = 0;
    for (; c < n; ++c) sum += x[c] * y[c];
    for (float v : lanes) sum += v;
    return sum;
}

// Labels: each section's unit chroma resampled to 32 steps; similarity = mean frame cosine at the best rotation.
constexpr int kSteps = 32;
std::vector<std::array<float, 12>> section_profile(const dsp::Matrix& chroma, std::int64_t a, std::int64_t b) {
    std::vector<std::array<float, 12>> steps(kSteps);
    for (int k = 0; k < kSteps; ++k) {
        std::array<float, 12> v{};
        const std::int64_t lo = a + (b - a) * k / kSteps, hi = std::max(lo + 1, a + (b - a) * (k + 1) / kSteps);
        for (std::int64_t t = lo; t < std::min(hi, chroma.rows); ++t)
            for (int c = 0; c < 12; ++c) v[static_cast<std::size_t>(c)] += chroma.at(t, c);
        double n = 0;
        for (float x : v) n += static_cast<double>(x) * x;
        if (n > 0)
            for (float& x : v) x = static_cast<float>(x / std::sqrt(n));
        steps[static_cast<std::size_t>(k)] = v;
    }
    return steps;
}

double profile_similarity(const std::vector<std::array<float, 12>>& x, const std::vector<std::array<float, 12>>& y, int shift) {
    double acc = 0;
    for (int k = 0; k < kSteps; ++k)
        for (int c = 0; c < 12; ++c) acc += x[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)] * y[static_cast<std::size_t>(k)][static_cast<std::size_t>((c + shift) % 12)];
    return acc / kSteps;
}

std::string letter(int n) {
    std::string s;
    do {
        s.insert(s.begin(), static_cast<char>('A' + n % 26));
        n = n / 26 - 1;
    } while (n >= 0);
    return s;
}

// Placement of the boundaries: the frames' unit semitone vectors x, prefix sums for the cost of a section
// [a, b): Σ‖x‖² − ‖Σx‖²/(b − a), its squared deviation from its mean.
class SectionCost {
public:
    explicit SectionCost(const dsp::Matrix& semitones)
        : dims_(semitones.cols), sum_(static_cast<std::size_t>((semitones.rows + 1) * semitones.cols), 0.0),
          sq_(static_cast<std::size_t>(semitones.rows + 1), 0.0) {
        for (std::int64_t t = 0; t < semitones.rows; ++t) {
            double norm = 0;
            for (std::int64_t c = 0; c < dims_; ++c) norm += static_cast<double>(semitones.at(t, c)) * semitones.at(t, c);
            const double inv = norm > 1e-20 ? 1.0 / std::sqrt(norm) : 0.0;
            for (std::int64_t c = 0; c < dims_; ++c) at(t + 1, c) = at(t, c) + semitones.at(t, c) * inv;
            sq_[static_cast<std::size_t>(t + 1)] = sq_[static_cast<std::size_t>(t)] + (inv > 0 ? 1.0 : 0.0);
        }
    }
    std::int64_t frames() const { return static_cast<std::int64_t>(sq_.size()) - 1; }
    double operator()(std::int64_t a, std::int64_t b) const {
        double s2 = 0;
        for (std::int64_t c = 0; c < dims_; ++c) {
            const double d = at(b, c) - at(a, c);
            s2 += d * d;
        }
        return sq_[static_cast<std::size_t>(b)] - sq_[static_cast<std::size_t>(a)] - s2 / static_cast<double>(b - a);
    }

private:
    double& at(std::int64_t t, std::int64_t c) { return sum_[static_cast<std::size_t>(t * dims_ + c)]; }
    double at(std::int64_t t, std::int64_t c) const { return sum_[static_cast<std::size_t>(t * dims_ + c)]; }
    std::int64_t dims_;
    std::vector<double> sum_, sq_;
};

constexpr double kMinGapSec = 2.0;  // placed boundaries at least this far apart (or min_section_sec/2 when less)

// Every peak placed within ±range frames of itself so that the sections' total cost is least: dynamic
// programming over the candidate frames of consecutive peaks (best[i][u]: least cost of the sections up to
// candidate u of peak i).
std::vector<std::int64_t> place_boundaries(const SectionCost& cost, const std::vector<std::int64_t>& peaks, std::int64_t range, std::int64_t gap) {
    const std::int64_t n = cost.frames();
    std::vector<std::vector<std::int64_t>> cand(peaks.size());
    for (std::size_t i = 0; i < peaks.size(); ++i)
        for (std::int64_t u = std::max<std::int64_t>(1, peaks[i] - range); u <= std::min(n - 1, peaks[i] + range); ++u) cand[i].push_back(u);
    constexpr double kNone = 1e300;
    std::vector<std::vector<double>> best(peaks.size());
    std::vector<std::vector<std::size_t>> from(peaks.size());
    for (std::size_t i = 0; i < peaks.size(); ++i) {
        best[i].assign(cand[i].size(), kNone);
        from[i].assign(cand[i].size(), 0);
        for (std::size_t k = 0; k < cand[i].size(); ++k) {
            if (i == 0) {
                best[i][k] = cost(0, cand[i][k]);
                continue;
            }
            for (std::size_t j = 0; j < cand[i - 1].size(); ++j) {
                if (best[i - 1][j] >= kNone || cand[i - 1][j] > cand[i][k] - gap) continue;
                const double v = best[i - 1][j] + cost(cand[i - 1][j], cand[i][k]);
                if (v < best[i][k]) best[i][k] = v, from[i][k] = j;
            }
        }
    }
    std::vector<std::int64_t> out(peaks.size());
    if (peaks.empty()) return out;
    std::size_t k = 0;
    double least = kNone;
    for (std::size_t j = 0; j < cand.back().size(); ++j)
        if (const double v = best.back()[j] + cost(cand.back()[j], n); best.back()[j] < kNone && v < least) least = v, k = j;
    if (least >= kNone) return peaks;  // no placement keeps every peak (a peak with no frame in range, or gaps too tight): leave them
    for (std::size_t i = peaks.size(); i-- > 0;) {
        out[i] = cand[i][k];
        k = from[i][k];
    }
    return out;
}

}  // namespace

std::vector<float> band_checkerboard_novelty(const dsp::Matrix& f, int half) {
    if (half < 1) throw_usage("novelty kernel half-width must be ≥ 1 (got {})", half);
    const std::int64_t n = f.rows, width = 2 * half + 1;
    dsp::Matrix unit = f;
    normalize_rows(unit);
    // band[a·width + d] = cos(row a, row a + d), d = 0..2·half
    std::vector<float> band(static_cast<std::size_t>(n * width), 0.0f);
    for (std::int64_t a = 0; a < n; ++a)
        for (std::int64_t d = 0; d < width && a + d < n; ++d)
            band[static_cast<std::size_t>(a * width + d)] = dot(&unit.values[static_cast<std::size_t>(a * f.cols)], &unit.values[static_cast<std::size_t>((a + d) * f.cols)], f.cols);
    // The kernel by row offset i and lag d ≥ 0: k[(i + half)·width + d] = sign·w_i·w_{i+d}, doubled for d > 0
    // (the pair (i + d, i) weighs the same band cell), so each frame is a sum of contiguous band rows.
    std::vector<double> w(static_cast<std::size_t>(width));
    for (int i = -half; i <= half; ++i) w[static_cast<std::size_t>(i + half)] = std::exp(-static_cast<double>(i * i) / (half * half));
    std::vector<float> k(static_cast<std::size_t>(width * width), 0.0f);
    for (int i = -half; i <= half; ++i)
        for (int j = i; j <= half; ++j)
            if (i != 0 && j != 0)
                k[static_cast<std::size_t>((i + half) * width + (j - i))] = static_cast<float>(((i > 0) == (j > 0) ? 1.0 : -1.0) * (j > i ? 2.0 : 1.0) * w[static_cast<std::size_t>(i + half)] * w[static_cast<std::size_t>(j + half)]);
    std::vector<float> out(static_cast<std::size_t>(n), 0.0f);
    for (std::int64_t t = half; t < n - half; ++t) {
        double acc = 0;
        for (std::int64_t i = -half; i <= half; ++i) {
            const float* row = &band[static_cast<std::size_t>((t + i) * width)];
            const float* kr = &k[static_cast<std::size_t>((i + half) * width)];
            float part = 0;
            for (std::int64_t d = 0; d <= half - i; ++d) part += kr[d] * row[d];
            acc += part;
        }
        out[static_cast<std::size_t>(t)] = static_cast<float>(acc);
    }
    return out;
}

std::vector<float> structure_novelty(const StructureFeatures& f, const StructureParams& p, std::optional<double> half_sec) {
    p.validate();
    if (f.semitones.rows != f.frames()) throw_usage("structure: features without semitones (make them with structure_features)");
    return scaled_novelty(semitone_rows(f, p.novelty_smooth_sec), half_sec.value_or(p.novelty_half_sec), f.frame_rate);
}

std::vector<float> climax_novelty(const StructureFeatures& f, const StructureParams& p) {
    p.validate();
    return scaled_novelty(chroma_timbre_rows(f, kClimaxNoveltySmoothSec), p.climax_novelty_half_sec, f.frame_rate);
}

std::vector<double> pick_boundaries(const StructureFeatures& f, std::span<const float> nov, const StructureParams& p) {
    p.validate();
    const auto n = static_cast<std::int64_t>(nov.size());
    const int med_size = 2 * static_cast<int>(std::lround(10.0 * f.frame_rate)) + 1;
    const std::vector<float> med = n > 0 ? dsp::median_filter(nov, med_size) : std::vector<float>{};
    const auto w = static_cast<std::int64_t>(std::lround(p.min_section_sec / 2 * f.frame_rate));
    std::vector<std::int64_t> peaks;
    for (std::int64_t t = 0; t < n; ++t) {
        const float v = nov[static_cast<std::size_t>(t)];
        if (v <= 0 || v - med[static_cast<std::size_t>(t)] < p.peak_threshold) continue;
        const auto lo = nov.begin() + std::max<std::int64_t>(0, t - w), hi = nov.begin() + std::min(n, t + w + 1);
        if (std::max_element(lo, hi) == nov.begin() + t) peaks.push_back(t);  // the first maximum of its neighbourhood
    }
    std::vector<double> out{0.0};
    if (!peaks.empty() && f.semitones.rows == n) {
        const auto range = static_cast<std::int64_t>(std::lround(p.place_sec * f.frame_rate));
        const std::int64_t gap = std::max<std::int64_t>(1, std::lround(std::min(kMinGapSec, 0.5 * p.min_section_sec) * f.frame_rate));
        peaks = place_boundaries(SectionCost(f.semitones), peaks, range, gap);
    }
    for (const std::int64_t t : peaks) {
        const double sec = static_cast<double>(t) / f.frame_rate;
        if (sec - out.back() >= 0.5 * p.min_section_sec && f.duration_sec - sec >= 0.5 * p.min_section_sec) out.push_back(sec);
    }
    out.push_back(f.duration_sec);
    return out;
}

// Sections between consecutive boundaries, labelled by repetition.
std::vector<Section> label_sections(const StructureFeatures& f, const std::vector<double>& bounds, const StructureParams& p) {
    dsp::Matrix chroma = f.chroma;
    normalize_rows(chroma);
    std::vector<Section> sections;
    std::vector<std::vector<std::array<float, 12>>> profiles;
    int letters = 0;
    for (std::size_t i = 0; i + 1 < bounds.size(); ++i) {
        const auto a = static_cast<std::int64_t>(bounds[i] * f.frame_rate), b = static_cast<std::int64_t>(bounds[i + 1] * f.frame_rate);
        profiles.push_back(section_profile(chroma, std::min(a, chroma.rows), std::clamp(b, a + 1, std::max(a + 1, chroma.rows))));
        std::string label;
        for (std::size_t j = 0; j < i && label.empty(); ++j) {
            if (sections[j].label.back() == '\'') continue;
            if (profile_similarity(profiles[i], profiles[j], 0) >= p.repeat_similarity) label = sections[j].label;
            for (int s = 1; s < 12 && label.empty(); ++s)
                if (profile_similarity(profiles[i], profiles[j], s) >= p.repeat_similarity) label = sections[j].label + "'";
        }
        if (label.empty()) label = letter(letters++);
        sections.push_back({bounds[i], bounds[i + 1], label});
    }
    return sections;
}

}  // namespace mess
