// Evaluating an aspect model on a factor corpus: triplet accuracy, content leak, value precision, for
// windows and for whole tracks.
#include <limits>
#include <set>
#include <tuple>

#include "mess/aspects.hpp"

namespace mess {

namespace {

// Points in the aspect space (unit rows [n, k]) and the track of each.
struct AspectPoints {
    std::vector<float> y;
    std::vector<std::int32_t> track;
    double cos(std::size_t i, std::size_t j, std::size_t k) const {
        double s = 0;
        for (std::size_t d = 0; d < k; ++d) s += double(y[i * k + d]) * y[j * k + d];
        return s;
    }
};

bool renders_aspect(const FactorWindows& data, std::size_t tr, const std::string& aspect) {
    return (data.track_factor[tr] == aspect || data.track_factor[tr] == "base") && data.track_values[tr].count(aspect);
}

// Each point's nearest point of another track: the share that is the point's own work at another value
// (content leak) and the share that has its value and another work (value precision).
void nearest_neighbour_shares(const AspectPoints& pts, std::size_t k, const FactorWindows& data, const std::string& aspect,
                              std::int64_t* queries, double* leak, double* precision) {
    const std::size_t n = pts.track.size();
    std::int64_t leaks = 0, right = 0, asked = 0;
    for (std::size_t q = 0; q < n; ++q) {
        double best = -std::numeric_limits<double>::infinity();
        std::size_t hit = q;
        for (std::size_t c = 0; c < n; ++c) {
            if (pts.track[c] == pts.track[q]) continue;
            if (const double s = pts.cos(q, c, k); s > best) best = s, hit = c;
        }
        if (hit == q) continue;
        const auto tq = static_cast<std::size_t>(pts.track[q]), th = static_cast<std::size_t>(pts.track[hit]);
        ++asked;
        if (data.track_work[th] == data.track_work[tq]) ++leaks;
        else if (data.track_values[th].at(aspect) == data.track_values[tq].at(aspect)) ++right;
    }
    *queries = asked;
    *leak = asked > 0 ? static_cast<double>(leaks) / static_cast<double>(asked) : 0.0;
    *precision = asked > 0 ? static_cast<double>(right) / static_cast<double>(asked) : 0.0;
}

// Every track's point: the model applied to the mean of its windows (what a track index holds).
std::vector<float> track_points(const AspectModel& model, const FactorWindows& data) {
    const auto tracks = data.track_ids.size(), dim = static_cast<std::size_t>(data.dim);
    std::vector<double> sum(tracks * dim, 0.0);
    std::vector<std::int64_t> count(tracks, 0);
    for (std::int64_t i = 0; i < data.n; ++i) {
        const auto tr = static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)]);
        ++count[tr];
        for (std::size_t d = 0; d < dim; ++d) sum[tr * dim + d] += data.row(i)[d];
    }
    std::vector<float> y;
    std::vector<float> mean(dim);
    for (std::size_t tr = 0; tr < tracks; ++tr) {
        for (std::size_t d = 0; d < dim; ++d) mean[d] = count[tr] > 0 ? static_cast<float>(sum[tr * dim + d] / static_cast<double>(count[tr])) : 0.0f;
        const std::vector<float> v = model.apply_normalised(mean.data(), 1);
        y.insert(y.end(), v.begin(), v.end());
    }
    return y;
}

void evaluate_tracks(const AspectModel& model, const FactorWindows& data, const std::string& aspect, const std::vector<Triplet>& triplets,
                     AspectEval& e) {
    const auto k = static_cast<std::size_t>(model.out_dim);
    AspectPoints all{track_points(model, data), {}};
    std::set<std::tuple<std::int32_t, std::int32_t, std::int32_t>> unique;
    for (const Triplet& t : triplets)
        unique.insert({data.track[static_cast<std::size_t>(t.a)], data.track[static_cast<std::size_t>(t.p)], data.track[static_cast<std::size_t>(t.n)]});
    std::int64_t right = 0;
    for (const auto& [a, p, n] : unique)
        if (all.cos(static_cast<std::size_t>(a), static_cast<std::size_t>(p), k) > all.cos(static_cast<std::size_t>(a), static_cast<std::size_t>(n), k)) ++right;
    e.track_triplets = static_cast<std::int64_t>(unique.size());
    e.track_triplet_accuracy = unique.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(unique.size());
    AspectPoints pts;
    for (std::size_t tr = 0; tr < data.track_ids.size(); ++tr) {
        if (!renders_aspect(data, tr, aspect)) continue;
        pts.track.push_back(static_cast<std::int32_t>(tr));
        pts.y.insert(pts.y.end(), all.y.begin() + static_cast<std::ptrdiff_t>(tr * k), all.y.begin() + static_cast<std::ptrdiff_t>((tr + 1) * k));
    }
    double precision = 0;
    nearest_neighbour_shares(pts, k, data, aspect, &e.track_queries, &e.track_content_leak, &precision);
}

}  // namespace

AspectEval evaluate_aspect(const AspectModel& model, const FactorWindows& data, const std::string& aspect, int triplets, std::uint64_t seed) {
    if (model.in_dim != data.dim) throw_usage("aspect model '{}' takes {} inputs; the data has {}", model.name, model.in_dim, data.dim);
    AspectEval e;
    const std::vector<Triplet> t = draw_triplets(data, aspect, {}, triplets, seed);
    e.triplets = static_cast<std::int64_t>(t.size());
    e.triplet_accuracy = triplet_accuracy(model, data, t);
    // The aspect's renderings (those varying it, and the bases) and their windows in the aspect space.
    AspectPoints pts;
    for (std::int64_t i = 0; i < data.n; ++i) {
        const std::int32_t tr = data.track[static_cast<std::size_t>(i)];
        if (!renders_aspect(data, static_cast<std::size_t>(tr), aspect)) continue;
        const std::vector<float> v = model.apply_normalised(data.row(i), 1);
        pts.y.insert(pts.y.end(), v.begin(), v.end());
        pts.track.push_back(tr);
    }
    nearest_neighbour_shares(pts, static_cast<std::size_t>(model.out_dim), data, aspect, &e.queries, &e.content_leak, &e.value_precision);
    evaluate_tracks(model, data, aspect, t, e);
    return e;
}

}  // namespace mess
