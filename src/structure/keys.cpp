// Local keys: Krumhansl–Kessler profile correlation over sliding windows, a Viterbi pass, modulations.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <optional>

#include "internal.hpp"

namespace mess {

namespace {

constexpr double kMajor[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
constexpr double kMinor[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17};
constexpr const char* kNames[12] = {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};
constexpr int kNoKey = 24;

double pearson(const double* x, const double* y) {
    double mx = 0, my = 0;
    for (int i = 0; i < 12; ++i) mx += x[i], my += y[i];
    mx /= 12, my /= 12;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 12; ++i) sxy += (x[i] - mx) * (y[i] - my), sxx += (x[i] - mx) * (x[i] - mx), syy += (y[i] - my) * (y[i] - my);
    return sxx > 0 && syy > 0 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

// The 24 profiles rotated to every tonic: profile[key][pitch class].
const std::array<std::array<double, 12>, 24>& profiles() {
    static const auto table = [] {
        std::array<std::array<double, 12>, 24> t{};
        for (int k = 0; k < 24; ++k)
            for (int c = 0; c < 12; ++c) t[static_cast<std::size_t>(k)][static_cast<std::size_t>(c)] = (k < 12 ? kMajor : kMinor)[(c - k % 12 + 12) % 12];
        return t;
    }();
    return table;
}

// Viterbi over 24 keys + "no key": the best state per step.
std::vector<int> viterbi(const dsp::Matrix& scores, const StructureParams& p) {
    const std::int64_t n = scores.rows;
    std::vector<int> back(static_cast<std::size_t>(n * 25));
    std::vector<double> acc(25, 0.0), next(25);
    auto score = [&](std::int64_t t, int s) { return s == kNoKey ? p.no_key_score : static_cast<double>(scores.at(t, s)); };
    for (int s = 0; s < 25; ++s) acc[static_cast<std::size_t>(s)] = score(0, s);
    for (std::int64_t t = 1; t < n; ++t) {
        const int best = static_cast<int>(std::max_element(acc.begin(), acc.end()) - acc.begin());
        for (int s = 0; s < 25; ++s) {
            const double stay = acc[static_cast<std::size_t>(s)], move = acc[static_cast<std::size_t>(best)] - p.key_change_penalty;
            const bool moved = best != s && move > stay;
            next[static_cast<std::size_t>(s)] = (moved ? move : stay) + score(t, s);
            back[static_cast<std::size_t>(t * 25 + s)] = moved ? best : s;
        }
        acc.swap(next);
    }
    std::vector<int> path(static_cast<std::size_t>(n));
    if (n == 0) return path;
    int s = static_cast<int>(std::max_element(acc.begin(), acc.end()) - acc.begin());
    for (std::int64_t t = n - 1; t >= 0; --t) {
        path[static_cast<std::size_t>(t)] = s;
        s = back[static_cast<std::size_t>(t * 25 + s)];
    }
    return path;
}

// Summed chroma over [a, b) seconds.
std::array<double, 12> span_chroma(const StructureFeatures& f, double a, double b) {
    std::array<double, 12> v{};
    for (auto t = static_cast<std::int64_t>(std::max(0.0, a) * f.frame_rate); t < std::min(f.frames(), static_cast<std::int64_t>(b * f.frame_rate)); ++t)
        for (int c = 0; c < 12; ++c) v[static_cast<std::size_t>(c)] += f.chroma.at(t, c);
    return v;
}

// The pitch-class rotation that best maps the chroma before a key change (up to 15 s) onto the chroma
// after it: when it is not 0 and matches with correlation ≥ kRotationMinCorrelation, the modulation is that
// transposition of the old key (the profile decoding confuses relative and neighbouring keys more often than
// the rotation). 0.75: the middle of the plateau 0.6–0.8 where the interval was right in 10/10 and 9/10
// modulations of two development corpora (beginner MIDI, seeds 2 and 3; 0.9 gave 7/10 and 6/10).
constexpr double kRotationMinCorrelation = 0.75;
// At a section boundary (`cut`) the chroma compared is that of the 15 s before and after it whatever the key
// spans; elsewhere, that of the two key spans within 15 s of the key change.
void correct_interval(const StructureFeatures& f, const KeySpan& before, const KeySpan& after, std::optional<double> cut, Modulation& m) {
    const bool at_boundary = cut.has_value();
    const double pivot = cut.value_or(m.time);
    const auto x = span_chroma(f, std::max(at_boundary ? 0.0 : before.start, pivot - 15.0), pivot);
    const auto y = span_chroma(f, pivot, std::min(at_boundary ? f.duration_sec : after.end, pivot + 15.0));
    int best = 0;
    double best_r = -2;
    for (int shift = 0; shift < 12; ++shift) {
        double rotated[12];
        for (int c = 0; c < 12; ++c) rotated[c] = y[static_cast<std::size_t>((c + shift) % 12)];
        if (const double r = pearson(x.data(), rotated); r > best_r) best_r = r, best = shift;
    }
    if (best == 0 || best_r < kRotationMinCorrelation) return;
    m.interval = best > 6 ? best - 12 : best;
    m.to = (m.from % 12 + best) % 12 + (m.from >= 12 ? 12 : 0);
}

// The interior section boundary nearest a key change when it lies within kCutSec of it (a modulation at a
// section change starts there: the chroma before and after are compared across it), else none.
constexpr double kCutSec = 3.0;
std::optional<double> section_cut(const std::vector<double>& bounds, double time) {
    std::optional<double> best;
    double distance = kCutSec;
    for (std::size_t i = 1; i + 1 < bounds.size(); ++i)
        if (std::fabs(bounds[i] - time) <= distance) best = bounds[i], distance = std::fabs(bounds[i] - time);
    return best;
}

}  // namespace

std::string key_name(int key) {
    if (key < 0 || key > 23) throw_usage("key must be 0..23 (got {})", key);
    return std::string(kNames[key % 12]) + (key < 12 ? " major" : " minor");
}

int parse_key(std::string_view name) {
    const auto space = name.find(' ');
    if (space == std::string_view::npos || space == 0) throw_input("'{}' is not a key (e.g. \"C major\", \"F# minor\")", name);
    std::string tonic(name.substr(0, space)), mode(name.substr(space + 1));
    tonic[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(tonic[0])));
    static const std::pair<const char*, int> spelled[] = {{"C", 0}, {"C#", 1}, {"Db", 1}, {"D", 2}, {"D#", 3}, {"Eb", 3}, {"E", 4},
                                                          {"F", 5}, {"F#", 6}, {"Gb", 6}, {"G", 7}, {"G#", 8}, {"Ab", 8}, {"A", 9},
                                                          {"A#", 10}, {"Bb", 10}, {"B", 11}, {"Cb", 11}, {"E#", 5}, {"Fb", 4}, {"B#", 0}};
    for (const auto& [text, pc] : spelled)
        if (tonic == text && (mode == "major" || mode == "minor")) return pc + (mode == "minor" ? 12 : 0);
    throw_input("'{}' is not a key (e.g. \"C major\", \"F# minor\")", name);
}

int key_interval(int from, int to) {
    int d = ((to % 12) - (from % 12) + 12) % 12;
    return d > 6 ? d - 12 : d;
}

int best_key(std::span<const double, 12> pc, double* correlation) {
    int best = 0;
    double best_r = -2;
    for (int k = 0; k < 24; ++k)
        if (const double r = pearson(pc.data(), profiles()[static_cast<std::size_t>(k)].data()); r > best_r) best_r = r, best = k;
    if (correlation) *correlation = best_r;
    return best;
}

dsp::Matrix key_scores(const StructureFeatures& f, const StructureParams& p) {
    p.validate();
    const auto step = std::max<std::int64_t>(1, std::lround(p.key_step_sec * f.frame_rate));
    const auto half = std::max<std::int64_t>(1, std::lround(p.key_window_sec / 2 * f.frame_rate));
    const std::int64_t steps = f.frames() == 0 ? 0 : (f.frames() + step - 1) / step;
    dsp::Matrix out{steps, 24, std::vector<float>(static_cast<std::size_t>(steps * 24), 0.0f)};
    std::vector<double> prefix(static_cast<std::size_t>((f.frames() + 1) * 12), 0.0);  // running chroma sums
    for (std::int64_t t = 0; t < f.frames(); ++t)
        for (int c = 0; c < 12; ++c)
            prefix[static_cast<std::size_t>((t + 1) * 12 + c)] = prefix[static_cast<std::size_t>(t * 12 + c)] + f.chroma.at(t, c);
    for (std::int64_t s = 0; s < steps; ++s) {
        const std::int64_t centre = s * step + step / 2, lo = std::max<std::int64_t>(0, centre - half), hi = std::min(f.frames(), centre + half);
        double v[12];
        for (int c = 0; c < 12; ++c) v[c] = prefix[static_cast<std::size_t>(hi * 12 + c)] - prefix[static_cast<std::size_t>(lo * 12 + c)];
        for (int k = 0; k < 24; ++k) out.at(s, k) = static_cast<float>(pearson(v, profiles()[static_cast<std::size_t>(k)].data()));
    }
    return out;
}

void estimate_keys(const StructureFeatures& f, const StructureParams& p, Structure& s) {
    const dsp::Matrix scores = key_scores(f, p);
    const std::vector<int> path = viterbi(scores, p);
    const double step_sec = static_cast<double>(std::max<std::int64_t>(1, std::lround(p.key_step_sec * f.frame_rate))) / f.frame_rate;
    for (std::size_t t = 0; t < path.size(); ++t) {
        const double start = static_cast<double>(t) * step_sec, end = std::min(f.duration_sec, start + step_sec);
        if (path[t] == kNoKey) continue;
        if (!s.keys.empty() && s.keys.back().key == path[t] && path[t - 1] == path[t]) s.keys.back().end = end;
        else s.keys.push_back({start, end, path[t]});
    }
    for (std::size_t i = 1; i < s.keys.size(); ++i)
        if (s.keys[i].key != s.keys[i - 1].key) {
            Modulation m{s.keys[i].start, s.keys[i - 1].key, s.keys[i].key, key_interval(s.keys[i - 1].key, s.keys[i].key)};
            correct_interval(f, s.keys[i - 1], s.keys[i], section_cut(s.boundaries, m.time), m);
            s.modulations.push_back(m);
        }
}

}  // namespace mess
