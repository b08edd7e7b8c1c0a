// Listening-test triplets drawn from an index: random neighbours, or the pair two geometries disagree on
// (mess/search.hpp).
#include <algorithm>
#include <cmath>
#include <random>
#include <set>

#include "mess/search.hpp"

namespace mess {
namespace {

// std::mt19937_64, whose output sequence the C++ standard fixes, reduced by modulo (the standard's
// distributions are not fixed): a (seed, draw) names one triplet with every compiler.
struct Rng {
    std::mt19937_64 gen;
    std::uint64_t next() { return gen(); }
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(gen() % n); }
};

// Every row's similarity to the anchor in one geometry.
class Scores {
public:
    Scores(const SearchIndex& index, const Geometry& g) : index_(index) {
        if (!g.layer_weights.empty()) fused_ = index.fused_vectors(g.layer_weights);
    }
    std::vector<float> of(std::size_t anchor) const {
        const float* rows = fused_ ? fused_->data() : index_.index.vectors().data();
        const std::size_t dim = fused_ ? index_.layer_dim : index_.index.dimension();
        std::vector<float> out(index_.size());
        const float* q = rows + anchor * dim;
        for (std::size_t r = 0; r < out.size(); ++r) {
            const float* v = rows + r * dim;
            double s = 0;
            for (std::size_t d = 0; d < dim; ++d) s += static_cast<double>(q[d]) * v[d];
            out[r] = static_cast<float>(s);
        }
        return out;
    }

private:
    const SearchIndex& index_;
    std::shared_ptr<const std::vector<float>> fused_;
};

bool excluded(const IndexRecord& anchor, const IndexRecord& r, SameScope scope) {
    if (scope == SameScope::none) return false;
    const std::string v = anchor.field(to_string(scope));
    return !v.empty() && r.field(to_string(scope)) == v;
}

// The k best rows for the anchor, one per track, none excluded: best first.
std::vector<std::size_t> nearest(const SearchIndex& index, std::size_t anchor, const std::vector<float>& scores, const SamplerParams& p) {
    std::vector<std::size_t> order;
    for (std::size_t r = 0; r < index.size(); ++r)
        if (r != anchor && !excluded(index.records[anchor], index.records[r], p.exclude_same)) order.push_back(r);
    std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return scores[x] != scores[y] ? scores[x] > scores[y] : x < y; });
    std::vector<std::size_t> out;
    std::set<std::string> tracks;
    for (std::size_t r : order) {
        if (out.size() == p.k) break;
        if (tracks.insert(index.records[r].track_id).second) out.push_back(r);
    }
    return out;
}

struct Pair {
    std::size_t a = 0, b = 0;
    double strength = -1;
};

// The candidate pair the two geometries rank in opposite order, most strongly; strength < 0 when none.
Pair most_disagreeing(const std::vector<std::size_t>& candidates, const std::vector<float>& s1, const std::vector<float>& s2) {
    Pair best;
    for (std::size_t i = 0; i < candidates.size(); ++i)
        for (std::size_t j = i + 1; j < candidates.size(); ++j) {
            const std::size_t x = candidates[i], y = candidates[j];
            const double d1 = static_cast<double>(s1[x]) - s1[y], d2 = static_cast<double>(s2[x]) - s2[y];
            if (d1 * d2 >= 0) continue;
            const double strength = std::min(std::fabs(d1), std::fabs(d2));
            if (strength > best.strength) best = {x, y, strength};
        }
    return best;
}

SampledTriplet presented(std::size_t anchor, std::size_t x, std::size_t y, Rng& rng, const std::vector<float>& s1, const std::vector<float>& s2) {
    if (rng.next() & 1) std::swap(x, y);
    return {anchor, x, y, s1[x], s1[y], s2.empty() ? 0.f : s2[x], s2.empty() ? 0.f : s2[y]};
}

}  // namespace

Geometry parse_geometry(const Searcher& searcher, const std::string& spec, double min_r2) {
    const SearchIndex& index = searcher.index();
    if (spec == "default") return {spec, {}};
    if (spec.starts_with("layer:")) {
        const std::string n = spec.substr(6);
        if (!index.has_layers()) throw_usage("geometry '{}': this index stores no per-layer vectors (build it with layers)", spec);
        if (n.empty() || n.size() > 4 || n.find_first_not_of("0123456789") != std::string::npos || std::stoul(n) >= index.layers)
            throw_usage("geometry '{}': the layer must be a whole number in [0, {}]", spec, index.layers - 1);
        std::vector<double> w(index.layers, 0.0);
        w[std::stoul(n)] = 1.0;
        return {spec, std::move(w)};
    }
    try {
        return {spec, searcher.layer_weights({{spec, 1.0}}, min_r2)};
    } catch (const Error& e) {
        throw_usage("geometry '{}' is not 'default', 'layer:N' or an aspect this index ranks by: {}", spec, e.what());
    }
}

SamplerKind parse_sampler_kind(const std::string& text) {
    if (text == "random") return SamplerKind::random;
    if (text == "disagreement") return SamplerKind::disagreement;
    throw_usage("sampler must be random or disagreement (got '{}')", text);
}

const char* to_string(SamplerKind kind) { return kind == SamplerKind::random ? "random" : "disagreement"; }

std::string sampler_label(const SamplerParams& p) {
    std::string out = std::string(to_string(p.kind)) + ":" + p.first.name;
    if (p.kind == SamplerKind::disagreement) out += "/" + p.second.name;
    return out;
}

SampledTriplet sample_triplet(const SearchIndex& index, const SamplerParams& p, std::uint64_t draw) {
    if (p.k < 2 || p.k > 1000) throw_usage("sampler k must be in [2, 1000] (got {})", p.k);
    if (index.size() < 3) throw_input("an index of {} rows has no triplets (three passages are needed)", index.size());
    Rng rng{std::mt19937_64(p.seed * 0x9e3779b97f4a7c15ull ^ (draw + 1) * 0xd1b54a32d192ed03ull)};
    const Scores first(index, p.first);
    const bool both = p.kind == SamplerKind::disagreement;
    const Scores second(index, both ? p.second : p.first);  // random: unused
    const std::size_t tries = both ? std::max<std::size_t>(1, p.max_anchors) : 16;
    for (std::size_t t = 0; t < tries; ++t) {
        const std::size_t anchor = rng.below(index.size());
        const std::vector<float> s1 = first.of(anchor);
        std::vector<std::size_t> candidates = nearest(index, anchor, s1, p);
        if (!both) {
            if (candidates.size() < 2) continue;
            const std::size_t i = rng.below(candidates.size());
            std::size_t j = rng.below(candidates.size() - 1);
            if (j >= i) ++j;
            return presented(anchor, candidates[i], candidates[j], rng, s1, {});
        }
        const std::vector<float> s2 = second.of(anchor);
        for (std::size_t r : nearest(index, anchor, s2, p))
            if (std::find(candidates.begin(), candidates.end(), r) == candidates.end()) candidates.push_back(r);
        const Pair best = most_disagreeing(candidates, s1, s2);
        if (best.strength >= 0) return presented(anchor, best.a, best.b, rng, s1, s2);
    }
    throw_input("no triplet found after {} anchors: {}", tries,
                both ? fmt::format("geometries '{}' and '{}' rank every candidate pair alike", p.first.name, p.second.name)
                     : std::string("too few passages outside the anchor's ") + to_string(p.exclude_same));
}

}  // namespace mess
