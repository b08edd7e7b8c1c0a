// Evaluating an aspect model on a factor corpus: triplet accuracy, content leak, value precision.
#include <limits>

#include "mess/aspects.hpp"

namespace mess {

AspectEval evaluate_aspect(const AspectModel& model, const FactorWindows& data, const std::string& aspect, int triplets, std::uint64_t seed) {
    if (model.in_dim != data.dim) throw_usage("aspect model '{}' takes {} inputs; the data has {}", model.name, model.in_dim, data.dim);
    AspectEval e;
    const std::vector<Triplet> t = draw_triplets(data, aspect, {}, triplets, seed);
    e.triplets = static_cast<std::int64_t>(t.size());
    e.triplet_accuracy = triplet_accuracy(model, data, t);
    // The aspect's renderings (those varying it, and the bases) and their windows in the aspect space.
    std::vector<std::int64_t> rows;
    for (std::int64_t i = 0; i < data.n; ++i) {
        const auto tr = static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)]);
        if ((data.track_factor[tr] == aspect || data.track_factor[tr] == "base") && data.track_values[tr].count(aspect)) rows.push_back(i);
    }
    std::vector<float> y;
    for (std::int64_t r : rows) {
        const std::vector<float> v = model.apply_normalised(data.row(r), 1);
        y.insert(y.end(), v.begin(), v.end());
    }
    const auto k = static_cast<std::size_t>(model.out_dim);
    std::int64_t leaks = 0, right = 0;
    for (std::size_t q = 0; q < rows.size(); ++q) {
        const auto tq = static_cast<std::size_t>(data.track[static_cast<std::size_t>(rows[q])]);
        double best = -std::numeric_limits<double>::infinity();
        std::size_t hit = q;
        for (std::size_t c = 0; c < rows.size(); ++c) {
            if (static_cast<std::size_t>(data.track[static_cast<std::size_t>(rows[c])]) == tq) continue;
            double s = 0;
            for (std::size_t j = 0; j < k; ++j) s += double(y[q * k + j]) * y[c * k + j];
            if (s > best) best = s, hit = c;
        }
        if (hit == q) continue;
        const auto th = static_cast<std::size_t>(data.track[static_cast<std::size_t>(rows[hit])]);
        ++e.queries;
        if (data.track_work[th] == data.track_work[tq]) ++leaks;
        else if (data.track_values[th].at(aspect) == data.track_values[tq].at(aspect)) ++right;
    }
    if (e.queries > 0) {
        e.content_leak = static_cast<double>(leaks) / static_cast<double>(e.queries);
        e.value_precision = static_cast<double>(right) / static_cast<double>(e.queries);
    }
    return e;
}

}  // namespace mess
