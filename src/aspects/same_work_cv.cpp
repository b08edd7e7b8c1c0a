// Choosing the same-work geometry's shrinkage and dimension by cross-validation over works: the works are
// split into folds, each fold's works are held out in turn, and every candidate is fitted on the rest and
// scored on them (track and passage MAP), so nothing is tuned on the windows it is scored on.
#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "forward.hpp"

namespace mess {

FactorWindows select_works(const FactorWindows& data, const std::set<std::string>& works) {
    FactorWindows out;
    out.dim = data.dim, out.layers = data.layers, out.layer_dim = data.layer_dim, out.encoder = data.encoder;
    std::vector<std::int32_t> new_id(data.track_ids.size(), -1);
    for (std::size_t t = 0; t < data.track_ids.size(); ++t) {
        if (!works.count(data.track_work[t])) continue;
        new_id[t] = static_cast<std::int32_t>(out.track_ids.size());
        out.track_ids.push_back(data.track_ids[t]), out.track_work.push_back(data.track_work[t]);
        out.track_factor.push_back(t < data.track_factor.size() ? data.track_factor[t] : std::string());
        out.track_values.push_back(t < data.track_values.size() ? data.track_values[t] : std::map<std::string, std::string>{});
    }
    for (std::int64_t i = 0; i < data.n; ++i) {
        const std::int32_t t = new_id[static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)])];
        if (t < 0) continue;
        out.x.insert(out.x.end(), data.row(i), data.row(i) + data.dim);
        out.track.push_back(t);
        out.position.push_back(data.position[static_cast<std::size_t>(i)]);
        out.source_sec.push_back(data.source_sec[static_cast<std::size_t>(i)]);
        ++out.n;
    }
    return out;
}

std::vector<std::vector<std::string>> work_folds(const FactorWindows& data, int folds, std::uint64_t seed) {
    const std::set<std::string> works(data.track_work.begin(), data.track_work.end());
    if (folds < 2 || static_cast<std::size_t>(folds) > works.size() / 2)
        throw_usage("same-work cross-validation: {} folds over {} works (each fold needs ≥ 2 works, and ≥ 2 folds)", folds, works.size());
    std::vector<std::string> all(works.begin(), works.end());
    std::mt19937_64 rng(seed ^ 0x5851f42d4c957f2dull);
    std::shuffle(all.begin(), all.end(), rng);
    std::vector<std::vector<std::string>> out(static_cast<std::size_t>(folds));
    for (std::size_t i = 0; i < all.size(); ++i) out[i % out.size()].push_back(all[i]);
    return out;
}

std::vector<SameWorkCvRow> cross_validate_same_work(const FactorWindows& data, SameWorkRung rung, const std::vector<SameWorkParams>& grid, int folds,
                                                    std::uint64_t seed) {
    if (grid.empty()) throw_usage("same-work cross-validation: no candidate parameters");
    const auto split = work_folds(data, folds, seed);
    std::vector<SameWorkCvRow> rows;
    for (const SameWorkParams& p : grid) rows.push_back({p, 0, 0});
    for (const auto& fold : split) {
        const std::set<std::string> held(fold.begin(), fold.end());
        std::set<std::string> rest;
        for (const auto& w : data.track_work)
            if (!held.count(w)) rest.insert(w);
        const FactorWindows train = select_works(data, rest), test = select_works(data, held);
        for (SameWorkCvRow& row : rows) {
            const SameWorkEval e = evaluate_same_work(fit_same_work(train, rung, row.params), test);
            row.track_map += e.track_map / static_cast<double>(split.size());
            row.passage_map += e.passage_map / static_cast<double>(split.size());
        }
    }
    return rows;
}

}  // namespace mess
