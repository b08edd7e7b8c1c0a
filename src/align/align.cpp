// Aligning two recordings: transposition, multiscale DTW, confidence, and reading the path (align.hpp).
#include <algorithm>
#include <cmath>
#include <future>
#include <random>

#include <nlohmann/json.hpp>

#include "mess/align.hpp"

namespace mess {
namespace {

constexpr double kUnrelatedRatio = 0.62;  // cost ratio from which two recordings count as unrelated (development corpus)
constexpr double kConfidenceSpan = 0.3;   // ratios from 0.62 down to 0.32 map to confidence 0 .. 1
constexpr std::int64_t kTranspositionFrames = 400;  // per side, when trying the 12 shifts (a 10-min piece: 1.5 s blocks)
constexpr float kAnchorDecay = 0.8f;
constexpr double kMaxExactCells = 2e9;    // AlignParams::exact refuses larger step matrices (bytes)
constexpr double kOnsetLead = 0.05;       // s: how early the features see an attack (a 170-ms window reaching it; measured on synthetic notes)
constexpr double kAnchorSalience = 0.2;   // and onset energy ≥ 20 % of the recording's largest (no anchors in release tails)
constexpr double kSlopeSeconds = 1.5;     // tempo used beyond the first and last onsets: of at least this much music
constexpr double kAnchorStrength = 0.3;   // new onset energy of an anchor frame (locally normalised units)

// Mean cost of seeded random frame pairs: what "no relation" costs for these two recordings.
double random_pair_cost(const AlignFeatures& a, const AlignFeatures& b) {
    std::mt19937_64 rng(0x5eed);
    std::uniform_int_distribution<std::int64_t> ia(0, a.frames() - 1), jb(0, b.frames() - 1);
    double total = 0;
    constexpr int kPairs = 4096;
    for (int k = 0; k < kPairs; ++k) total += frame_cost(a, ia(rng), b, jb(rng));
    return total / kPairs;
}

// The cheapest chroma shift of B, from DTW of features averaged down to at most kTranspositionFrames.
int detect_transposition(const AlignFeatures& a, const AlignFeatures& b, const MultiscaleOptions& o) {
    AlignFeatures ca = a, cb = b;
    const std::int64_t coarsest = std::min<std::int64_t>(o.coarsest_frames, kTranspositionFrames);
    for (int factor = 5; std::max(ca.frames(), cb.frames()) > coarsest; factor = 4) {
        ca = downsample_features(ca, factor);
        cb = downsample_features(cb, factor);
    }
    int best = 0;
    double best_cost = std::numeric_limits<double>::infinity();
    for (int shift = 0; shift < 12; ++shift) {
        const double cost = dtw_full(ca, shift_pitch_classes(cb, shift), o.dtw).mean_cost();
        if (cost < best_cost) best = shift, best_cost = cost;
    }
    return best;
}

// A pair of matching moments: x in A's frames (of the path's rows), y in B's frames.
struct Anchor {
    double x, y;
};

// Each row's B position: linear between anchors; before the first and after the last, the slope to the
// nearest anchor at least kSlopeSeconds away (release tails and lead-ins differ between performances, so
// the path's own ends are not trusted there); kept inside [lo, hi], the path's span of B.
std::vector<double> interpolate_anchors(const std::vector<Anchor>& p, std::int64_t rows, double frame_rate, double lo, double hi) {
    const double reach = kSlopeSeconds * frame_rate;
    auto slope = [&](const Anchor& u, const Anchor& v) { return v.x > u.x ? (v.y - u.y) / (v.x - u.x) : 1.0; };
    std::size_t k_head = 1, k_tail = p.size() - 2;
    while (k_head + 1 < p.size() && p[k_head].x - p.front().x < reach) ++k_head;
    while (k_tail > 0 && p.back().x - p[k_tail].x < reach) --k_tail;
    const double head = slope(p.front(), p[k_head]), tail = slope(p[k_tail], p.back());
    std::vector<double> out(static_cast<std::size_t>(rows));
    for (std::int64_t r = 0; r < rows; ++r) {
        const auto x = static_cast<double>(r);
        double v;
        if (x <= p.front().x) v = p.front().y - head * (p.front().x - x);
        else if (x >= p.back().x) v = p.back().y + tail * (x - p.back().x);
        else {
            const auto k = static_cast<std::size_t>(std::upper_bound(p.begin(), p.end(), x, [](double v0, const Anchor& a) { return v0 < a.x; }) - p.begin());
            v = p[k - 1].y + (p[k].y - p[k - 1].y) * (x - p[k - 1].x) / (p[k].x - p[k - 1].x);
        }
        out[static_cast<std::size_t>(r)] = std::clamp(v, lo, hi);
    }
    return out;
}

// New onset energy of each frame: how far its onset chroma rises above the previous frame's decayed value.
std::vector<double> onset_rises(const AlignFeatures& f) {
    std::vector<double> out(static_cast<std::size_t>(f.frames()), 0.0);
    for (std::int64_t t = 1; t < f.frames(); ++t)
        for (int c = 0; c < 12; ++c) out[static_cast<std::size_t>(t)] += std::max(0.0f, f.onsets.at(t, c) - kAnchorDecay * f.onsets.at(t - 1, c));
    return out;
}

// A's onset frames (path rows from `first`): local maxima (±3 frames) of the rise, strong and salient enough.
std::vector<std::int64_t> onset_anchors(const std::vector<double>& rise, const AlignFeatures& a, std::int64_t first, std::int64_t rows) {
    std::vector<std::int64_t> anchors;
    for (std::int64_t r = 1; r + 1 < rows; ++r) {
        const auto at = static_cast<std::size_t>(first + r);
        const auto lo = rise.begin() + static_cast<std::ptrdiff_t>(first + std::max<std::int64_t>(0, r - 3));
        const auto hi = rise.begin() + static_cast<std::ptrdiff_t>(first + std::min(rows - 1, r + 3)) + 1;
        const bool salient = a.onset_salience.empty() || a.onset_salience[at] >= kAnchorSalience;
        if (salient && rise[at] >= kAnchorStrength && rise[at] == *std::max_element(lo, hi)) anchors.push_back(r);
    }
    return anchors;
}

// Where each of A's frames lies in B (in B's frames), from the DTW path. At A's note onsets: among the B
// frames the path pairs with that onset, the one where B's own onset rises most (when B is slower, the
// path dwells on A's onset for several B frames; their middle would lag); between onsets, linear. Inside
// a held note or a rest the features cannot place a moment; the onsets on both sides can.
std::vector<double> anchored_positions(const DtwPath& path, const AlignFeatures& a, const AlignFeatures& b) {
    const std::int64_t first = path.cells.front()[0], rows = path.cells.back()[0] - first + 1;
    std::vector<double> mean(static_cast<std::size_t>(rows), 0.0), count(mean.size(), 0.0);
    std::vector<std::int64_t> run_lo(mean.size(), b.frames()), run_hi(mean.size(), -1);
    for (auto [i, j] : path.cells) {
        const auto r = static_cast<std::size_t>(i - first);
        mean[r] += static_cast<double>(j), count[r] += 1;
        run_lo[r] = std::min(run_lo[r], j), run_hi[r] = std::max(run_hi[r], j);
    }
    for (std::size_t r = 0; r < mean.size(); ++r) mean[r] /= count[r];
    // The features see an attack a little before it happens (the analysis window reaches it early): the
    // matched moments are the events, kOnsetLead after both detections, or a tempo ratio would stretch the lead.
    const double lead = kOnsetLead * a.frame_rate;
    const auto rise_b = onset_rises(b);
    std::vector<Anchor> points;
    for (auto r : onset_anchors(onset_rises(a), a, first, rows)) {
        const auto u = static_cast<std::size_t>(r);
        const auto best = std::max_element(rise_b.begin() + run_lo[u], rise_b.begin() + run_hi[u] + 1);
        points.push_back({static_cast<double>(r) + lead, (*best > 0 ? static_cast<double>(best - rise_b.begin()) : mean[u]) + lead});
    }
    if (points.size() < 2) points = {{0.0, mean.front()}, {static_cast<double>(rows - 1), mean.back()}};  // too few onsets: the path's ends
    return interpolate_anchors(points, rows, a.frame_rate, mean.front(), mean.back());
}

void check_lengths(const AlignFeatures& a, const AlignFeatures& b, const AlignParams& p) {
    const double ratio = std::max(a.duration_sec, b.duration_sec) / std::max(1e-9, std::min(a.duration_sec, b.duration_sec));
    const bool open = p.dtw.dtw.open_begin || p.dtw.dtw.open_end;
    if (!open && ratio > p.max_length_ratio)
        throw_input("the recordings last {:.1f} s and {:.1f} s (1:{:.1f}), more than the 1:{:.1f} tempo ratio an alignment allows; "
                    "if B holds extra material (a repeat, applause), align with open begin/end",
                    a.duration_sec, b.duration_sec, ratio, p.max_length_ratio);
    if (open && b.duration_sec * p.max_length_ratio < a.duration_sec)
        throw_input("A ({:.1f} s) is more than {:.1f}× longer than B ({:.1f} s): with open begin/end, B must hold all of A",
                    a.duration_sec, p.max_length_ratio, b.duration_sec);
}

// B's time on the path at A's frame position x (runs of one A frame give the middle of their B frames).
double interpolate_path(const std::vector<std::array<double, 2>>& path, int axis, double t, double frame_rate) {
    if (path.empty()) throw_usage("the alignment has no path");
    const int other = 1 - axis;
    auto middle_at = [&](double frame_time) {  // mean of the other axis over the cells at this time
        auto lo = std::lower_bound(path.begin(), path.end(), frame_time - 0.25 / frame_rate, [&](const auto& c, double v) { return c[axis] < v; });
        double sum = 0;
        int n = 0;
        for (auto it = lo; it != path.end() && (*it)[axis] <= frame_time + 0.25 / frame_rate; ++it) sum += (*it)[other], ++n;
        return n > 0 ? sum / n : (lo == path.end() ? path.back()[other] : (*lo)[other]);
    };
    const double first = path.front()[axis], last = path.back()[axis];
    t = std::clamp(t, first, last);
    const double x0 = first + std::floor((t - first) * frame_rate + 1e-9) / frame_rate;
    const double x1 = std::min(last, x0 + 1.0 / frame_rate);
    const double y0 = middle_at(x0), y1 = middle_at(x1);
    return x1 > x0 ? y0 + (y1 - y0) * (t - x0) / (x1 - x0) : y0;
}

}  // namespace

void AlignParams::validate() const {
    if (dtw.radius < 1) throw_usage("alignment band radius must be ≥ 1 frame (got {})", dtw.radius);
    if (dtw.coarsest_frames < 50) throw_usage("coarsest_frames must be ≥ 50 (got {})", dtw.coarsest_frames);
    if (!(max_length_ratio > 1.0)) throw_usage("max_length_ratio must be > 1 (got {})", max_length_ratio);
}

Alignment align_features(const AlignFeatures& a, const AlignFeatures& b, const AlignParams& params) {
    params.validate();
    check_lengths(a, b, params);
    Alignment al;
    al.duration_a = a.duration_sec;
    al.duration_b = b.duration_sec;
    al.frame_rate = a.frame_rate;
    const int shift = params.detect_transposition ? detect_transposition(a, b, params.dtw) : 0;
    const AlignFeatures bs = shift_pitch_classes(b, shift);
    if (params.exact && static_cast<double>(a.frames()) * static_cast<double>(b.frames()) > kMaxExactCells)
        throw_usage("exact DTW of {} × {} frames would need {:.1f} GB; the multiscale default needs a few MB", a.frames(), b.frames(),
                    static_cast<double>(a.frames()) * static_cast<double>(b.frames()) / 1e9);
    const DtwPath path = params.exact ? dtw_full(a, bs, params.dtw.dtw) : dtw_multiscale(a, bs, params.dtw);
    al.transposition = shift > 6 ? shift - 12 : shift;
    const auto positions = anchored_positions(path, a, bs);
    al.path_sec.reserve(positions.size());
    for (std::size_t r = 0; r < positions.size(); ++r)
        al.path_sec.push_back({static_cast<double>(path.cells.front()[0] + static_cast<std::int64_t>(r)) / a.frame_rate, positions[r] / b.frame_rate});
    double frame_costs = 0;
    for (auto [i, j] : path.cells) frame_costs += frame_cost(a, i, bs, j);
    al.path_cost = frame_costs / static_cast<double>(path.cells.size());
    al.cost_ratio = al.path_cost / std::max(1e-9, random_pair_cost(a, bs));
    al.confidence = std::clamp((kUnrelatedRatio - al.cost_ratio) / kConfidenceSpan, 0.0, 1.0);
    al.cells_computed = path.cells_computed;
    al.working_bytes = path.working_bytes;
    return al;
}

nlohmann::json alignment_to_json(const Alignment& al) {
    const nlohmann::json span = al.path_sec.empty() ? nlohmann::json::array()
                                                    : nlohmann::json::array({al.path_sec.front()[1], al.path_sec.back()[1]});
    return {{"duration_a", al.duration_a},
            {"duration_b", al.duration_b},
            {"transposition", al.transposition},
            {"mean_tempo_ratio", al.mean_tempo_ratio()},
            {"path_cost", al.path_cost},
            {"cost_ratio", al.cost_ratio},
            {"confidence", al.confidence},
            {"reliable", al.reliable()},
            {"path_rows", al.path_sec.size()},
            {"aligned_span_b", span},
            {"dtw_cells", al.cells_computed},
            {"dtw_working_mb", static_cast<double>(al.working_bytes) / (1024.0 * 1024.0)}};
}

Alignment align_audio(AudioView a, AudioView b, const AlignParams& params) {
    params.validate();
    auto fb = std::async(std::launch::async, [&] { return alignment_features(b); });
    AlignFeatures fa;
    try {
        fa = alignment_features(a);
    } catch (const Error& e) {
        fb.wait();
        throw e.with_context("A");
    }
    AlignFeatures fbv;
    try {
        fbv = fb.get();
    } catch (const Error& e) {
        throw e.with_context("B");
    }
    return align_features(fa, fbv, params);
}

double Alignment::time_b_at(double time_a) const { return interpolate_path(path_sec, 0, time_a, frame_rate); }
double Alignment::time_a_at(double time_b) const { return interpolate_path(path_sec, 1, time_b, frame_rate); }

double Alignment::mean_tempo_ratio() const {
    if (path_sec.size() < 2) return 1.0;
    const double span_a = path_sec.back()[0] - path_sec.front()[0], span_b = path_sec.back()[1] - path_sec.front()[1];
    return span_b > 0 ? span_a / span_b : 1.0;
}

std::vector<double> local_tempo_ratio(const Alignment& al, double step_sec, double window_sec) {
    if (!(step_sec > 0) || !(window_sec > 0)) throw_usage("tempo curve needs a positive step and window (got {} s, {} s)", step_sec, window_sec);
    std::vector<double> out;
    const auto steps = static_cast<std::int64_t>(std::floor(al.duration_a / step_sec + 1e-9));
    for (std::int64_t k = 0; k <= steps; ++k) {
        const double t = static_cast<double>(k) * step_sec;
        const double t0 = std::max(0.0, t - window_sec / 2), t1 = std::min(al.duration_a, t + window_sec / 2);
        const double span_b = std::max(1.0 / al.frame_rate, al.time_b_at(t1) - al.time_b_at(t0));
        out.push_back((t1 - t0) / span_b);
    }
    return out;
}

}  // namespace mess
