// Comparing performances of one piece on the reference's time axis (align.hpp: compare_performances).
#include <algorithm>
#include <cmath>
#include <numeric>

#include <nlohmann/json.hpp>

#include "mess/align.hpp"

namespace mess {
namespace {

// RMS level in dBFS over 100-ms windows every 20 ms (floor −100 dB).
std::vector<double> loudness_envelope(const Audio& a) {
    const auto window = static_cast<std::int64_t>(0.1 * a.sample_rate), hop = static_cast<std::int64_t>(a.sample_rate / kAlignFrameRate);
    const auto n = static_cast<std::int64_t>(a.samples.size());
    std::vector<double> out;
    for (std::int64_t centre = 0; centre <= n; centre += std::max<std::int64_t>(hop, 1)) {
        const std::int64_t lo = std::max<std::int64_t>(0, centre - window / 2), hi = std::min(n, centre + window / 2);
        double sum = 0;
        for (std::int64_t k = lo; k < hi; ++k) sum += static_cast<double>(a.samples[static_cast<std::size_t>(k)]) * a.samples[static_cast<std::size_t>(k)];
        const double rms = hi > lo ? std::sqrt(sum / static_cast<double>(hi - lo)) : 0.0;
        out.push_back(std::max(-100.0, 20.0 * std::log10(std::max(rms, 1e-10))));
    }
    return out;
}

double envelope_at(const std::vector<double>& env, double t) {
    const double x = std::clamp(t * kAlignFrameRate, 0.0, static_cast<double>(env.size() - 1));
    const auto i = static_cast<std::size_t>(x);
    const double f = x - static_cast<double>(i);
    return i + 1 < env.size() ? env[i] * (1 - f) + env[i + 1] * f : env[i];
}

double pearson(const std::vector<double>& x, const std::vector<double>& y) {
    const double n = static_cast<double>(x.size());
    const double mx = std::accumulate(x.begin(), x.end(), 0.0) / n, my = std::accumulate(y.begin(), y.end(), 0.0) / n;
    double sxy = 0, sxx = 0, syy = 0;
    for (std::size_t k = 0; k < x.size(); ++k) {
        sxy += (x[k] - mx) * (y[k] - my);
        sxx += (x[k] - mx) * (x[k] - mx);
        syy += (y[k] - my) * (y[k] - my);
    }
    return sxx > 1e-18 && syy > 1e-18 ? sxy / std::sqrt(sxx * syy) : 0.0;
}

// The identity alignment of the reference with itself (the reference's row of every table).
Alignment identity(double duration) {
    Alignment al;
    al.duration_a = al.duration_b = duration;
    al.confidence = 1.0;
    const auto frames = static_cast<std::int64_t>(std::floor(duration * kAlignFrameRate + 1e-9));
    for (std::int64_t k = 0; k <= frames; ++k) {
        const double t = static_cast<double>(k) / kAlignFrameRate;
        al.path_sec.push_back({t, t});
    }
    return al;
}

PerformanceCurves curves_of(const Performance& p, Alignment al, const std::vector<double>& times, const CompareParams& params,
                            double start, double end) {
    PerformanceCurves c;
    c.name = p.name;
    const auto env = loudness_envelope(p.audio);
    const auto tempo_all = local_tempo_ratio(al, params.step_sec, params.tempo_window_sec);
    for (double t : times) {
        const auto k = std::min(tempo_all.size() - 1, static_cast<std::size_t>(std::lround(t / params.step_sec)));
        c.tempo_ratio.push_back(tempo_all[k]);
        if (params.reference_bpm > 0) c.bpm.push_back(tempo_all[k] * params.reference_bpm);
        c.loudness_db.push_back(envelope_at(env, al.time_b_at(t)));
    }
    c.passage_start = al.time_b_at(start);
    c.passage_end = al.time_b_at(end);
    c.alignment = std::move(al);
    return c;
}

}  // namespace

void CompareParams::validate() const {
    align.validate();
    if (!(step_sec >= 0.02)) throw_usage("curve step must be ≥ 0.02 s (got {})", step_sec);
    if (!(tempo_window_sec >= 0.2)) throw_usage("tempo window must be ≥ 0.2 s (got {})", tempo_window_sec);
    if (!(start_sec >= 0) || !(end_sec >= 0) || (end_sec > 0 && end_sec <= start_sec))
        throw_usage("passage must satisfy 0 ≤ start < end (got {} to {} s)", start_sec, end_sec);
    if (!(reference_bpm >= 0)) throw_usage("reference BPM must be ≥ 0 (got {})", reference_bpm);
}

Comparison compare_performances(const std::vector<Performance>& perfs, const CompareParams& params) {
    params.validate();
    if (perfs.size() < 2) throw_usage("a comparison needs a reference and at least one other performance (got {})", perfs.size());
    const AlignFeatures ref = [&] {
        try {
            return alignment_features(perfs[0].audio);
        } catch (const Error& e) {
            throw e.with_context(perfs[0].name);
        }
    }();
    Comparison c;
    c.start_sec = params.start_sec;
    c.end_sec = params.end_sec > 0 ? params.end_sec : ref.duration_sec;
    if (c.start_sec >= ref.duration_sec || c.end_sec > ref.duration_sec + 1e-6)
        throw_input("passage {:.2f}–{:.2f} s lies outside the reference {} ({:.2f} s)", c.start_sec, c.end_sec, perfs[0].name, ref.duration_sec);
    const auto steps = static_cast<std::int64_t>(std::floor((c.end_sec - c.start_sec) / params.step_sec + 1e-9));
    for (std::int64_t k = 0; k <= steps; ++k) c.times.push_back(c.start_sec + static_cast<double>(k) * params.step_sec);
    c.performances.push_back(curves_of(perfs[0], identity(ref.duration_sec), c.times, params, c.start_sec, c.end_sec));
    for (std::size_t k = 1; k < perfs.size(); ++k) {
        Alignment al;
        try {
            al = align_features(ref, alignment_features(perfs[k].audio), params.align);
        } catch (const Error& e) {
            throw e.with_context(perfs[k].name);
        }
        if (!al.reliable())
            throw_input("{} does not align with the reference {} (confidence {:.2f}): is it the same piece?", perfs[k].name, perfs[0].name, al.confidence);
        c.performances.push_back(curves_of(perfs[k], std::move(al), c.times, params, c.start_sec, c.end_sec));
    }
    c.longest_first.resize(perfs.size());
    std::iota(c.longest_first.begin(), c.longest_first.end(), 0);
    std::stable_sort(c.longest_first.begin(), c.longest_first.end(), [&](std::size_t x, std::size_t y) {
        return c.performances[x].passage_duration() > c.performances[y].passage_duration();
    });
    const std::size_t n = perfs.size() - 1;
    c.tempo_correlation.assign(n, std::vector<double>(n, 1.0));
    for (std::size_t x = 0; x < n; ++x)
        for (std::size_t y = x + 1; y < n; ++y)
            c.tempo_correlation[x][y] = c.tempo_correlation[y][x] = pearson(c.performances[x + 1].tempo_ratio, c.performances[y + 1].tempo_ratio);
    return c;
}

nlohmann::json comparison_to_json(const Comparison& c) {
    nlohmann::json perfs = nlohmann::json::array(), ranking = nlohmann::json::array(), names = nlohmann::json::array();
    for (const auto& p : c.performances) {
        nlohmann::json j = {{"name", p.name},
                            {"duration_sec", p.alignment.duration_b},
                            {"transposition", p.alignment.transposition},
                            {"confidence", p.alignment.confidence},
                            {"mean_tempo_ratio", p.alignment.mean_tempo_ratio()},
                            {"passage", {{"start", p.passage_start}, {"end", p.passage_end}, {"duration", p.passage_duration()}}},
                            {"tempo_ratio", p.tempo_ratio},
                            {"loudness_db", p.loudness_db}};
        if (!p.bpm.empty()) j["bpm"] = p.bpm;
        perfs.push_back(std::move(j));
    }
    for (std::size_t k : c.longest_first)
        ranking.push_back({{"name", c.performances[k].name}, {"passage_duration", c.performances[k].passage_duration()}});
    for (std::size_t k = 1; k < c.performances.size(); ++k) names.push_back(c.performances[k].name);
    return {{"schema", "mess-compare/1"}, {"reference", c.performances.front().name}, {"start_sec", c.start_sec}, {"end_sec", c.end_sec},
            {"times", c.times}, {"performances", perfs}, {"ranking", ranking},
            {"tempo_correlation", {{"names", names}, {"matrix", c.tempo_correlation}}}};
}

}  // namespace mess
