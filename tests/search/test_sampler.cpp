// Listening-test triplets (sample_triplet): a hand-computed index whose two layers disagree for every
// anchor, the disagreement rule against every candidate pair, random neighbours, determinism, errors.
#include <algorithm>
#include <cmath>
#include <map>
#include <numbers>
#include <random>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "mess/search.hpp"
#include "mess/util.hpp"

using namespace mess;

namespace {

// A clip index from per-row layer stacks [L, D] (the index's own vectors: the flattened stack).
SearchIndex layered_index(const std::vector<std::vector<float>>& stacks, std::size_t L, std::size_t D, const std::vector<std::string>& tracks) {
    std::vector<IndexRecord> recs;
    std::vector<float> vectors;
    std::vector<std::uint16_t> layers;
    std::map<std::string, int> segment;
    for (std::size_t i = 0; i < stacks.size(); ++i) {
        IndexRecord r;
        r.track_id = r.recording_id = tracks[i];
        r.segment_idx = segment[tracks[i]]++;
        r.id = fmt::format("t:{}:{:05d}", tracks[i], r.segment_idx);
        r.start_sec = 2.5 * r.segment_idx;
        r.end_sec = r.start_sec + 5;
        recs.push_back(r);
        const auto v = LayerSpec::parse("flatten").apply(stacks[i].data(), L, D);
        vectors.insert(vectors.end(), v.begin(), v.end());
        for (std::size_t l = 0; l < L; ++l) {
            std::vector<float> x(stacks[i].begin() + static_cast<std::ptrdiff_t>(l * D), stacks[i].begin() + static_cast<std::ptrdiff_t>((l + 1) * D));
            l2_normalize(x.data(), D);
            for (float f : x) layers.push_back(float_to_half(f));
        }
    }
    return build_index_from_vectors(IndexKind::clip, recs, vectors, L * D, "Flat", layers, L, D);
}

std::vector<float> unit(double degrees) {
    const double r = degrees * std::numbers::pi / 180.0;
    return {static_cast<float>(std::cos(r)), static_cast<float>(std::sin(r))};
}

// Three passages of three tracks on the unit circle: layer 0 at 0°, 30°, 90°; layer 1 at 0°, 90°, 30°.
// For every anchor the layers order the other two oppositely (anchor 0: cos 30° > cos 90° in layer 0, the
// reverse in layer 1; anchor 1: cos 30° > cos 60° vs 0 < cos 60°; anchor 2: cos 60° > 0 vs cos 30° > cos 60°).
SearchIndex circle_index() {
    std::vector<std::vector<float>> stacks;
    for (auto [l0, l1] : {std::pair{0.0, 0.0}, std::pair{30.0, 90.0}, std::pair{90.0, 30.0}}) {
        auto s = unit(l0);
        const auto b = unit(l1);
        s.insert(s.end(), b.begin(), b.end());
        stacks.push_back(s);
    }
    return layered_index(stacks, 2, 2, {"x", "y", "z"});
}

// 12 tracks × 4 passages, 3 layers of 8 dimensions, from a fixed generator.
SearchIndex random_index() {
    std::mt19937 gen(1234);
    std::normal_distribution<float> n(0.f, 1.f);
    std::vector<std::vector<float>> stacks;
    std::vector<std::string> tracks;
    for (int t = 0; t < 12; ++t)
        for (int s = 0; s < 4; ++s) {
            std::vector<float> v(24);
            for (float& x : v) x = n(gen);
            stacks.push_back(v);
            tracks.push_back(fmt::format("track{:02d}", t));
        }
    return layered_index(stacks, 3, 8, tracks);
}

// Cosine of two rows' stored (float16) layer vectors, each normalised again (as the fused vectors are).
float cosine(const SearchIndex& idx, std::size_t layer, std::size_t x, std::size_t y) {
    double s = 0, nx = 0, ny = 0;
    for (std::size_t d = 0; d < idx.layer_dim; ++d) {
        const double u = half_to_float(idx.layer_vectors[(x * idx.layers + layer) * idx.layer_dim + d]);
        const double v = half_to_float(idx.layer_vectors[(y * idx.layers + layer) * idx.layer_dim + d]);
        s += u * v;
        nx += u * u;
        ny += v * v;
    }
    return static_cast<float>(s / std::sqrt(nx * ny));
}

SamplerParams params(const Searcher& s, const char* first, const char* second, SamplerKind kind = SamplerKind::disagreement) {
    SamplerParams p;
    p.kind = kind;
    p.first = parse_geometry(s, first);
    p.second = parse_geometry(s, second);
    return p;
}

}  // namespace

TEST(Sampler, HandComputedDisagreementOnTheCircle) {
    const Searcher s(std::make_shared<const SearchIndex>(circle_index()), {});
    const SamplerParams p = params(s, "layer:0", "layer:1");
    EXPECT_EQ(sampler_label(p), "disagreement:layer:0/layer:1");
    const double c30 = std::cos(std::numbers::pi / 6), c60 = 0.5;
    // anchor → {candidate: (layer-0 similarity, layer-1 similarity)}
    const std::map<std::size_t, std::map<std::size_t, std::pair<double, double>>> expected = {
        {0, {{1, {c30, 0.0}}, {2, {0.0, c30}}}}, {1, {{0, {c30, 0.0}}, {2, {c60, c60}}}}, {2, {{0, {0.0, c30}}, {1, {c60, c60}}}}};
    std::set<std::size_t> anchors;
    for (std::uint64_t draw = 0; draw < 12; ++draw) {
        const SampledTriplet t = sample_triplet(s.index(), p, draw);
        anchors.insert(t.anchor);
        const auto& want = expected.at(t.anchor);
        ASSERT_TRUE(want.contains(t.a) && want.contains(t.b) && t.a != t.b) << draw;
        EXPECT_NEAR(t.first_a, want.at(t.a).first, 2e-3);
        EXPECT_NEAR(t.first_b, want.at(t.b).first, 2e-3);
        EXPECT_NEAR(t.second_a, want.at(t.a).second, 2e-3);
        EXPECT_NEAR(t.second_b, want.at(t.b).second, 2e-3);
        EXPECT_LT((t.first_a - t.first_b) * (t.second_a - t.second_b), 0.f) << "the geometries order a and b oppositely";
    }
    EXPECT_EQ(anchors.size(), 3u) << "twelve draws reach every anchor";
    // One geometry twice never disagrees with itself.
    EXPECT_THROW(sample_triplet(s.index(), params(s, "layer:0", "layer:0"), 0), Error);
}

TEST(Sampler, DisagreementPicksTheStrongestOpposedPair) {
    const Searcher s(std::make_shared<const SearchIndex>(random_index()), {});
    const SearchIndex& idx = s.index();
    SamplerParams p = params(s, "layer:0", "layer:2");
    p.k = 5;
    for (std::uint64_t draw = 0; draw < 10; ++draw) {
        const SampledTriplet t = sample_triplet(idx, p, draw);
        const auto& anchor = idx.records[t.anchor];
        EXPECT_NE(idx.records[t.a].track_id, anchor.track_id);
        EXPECT_NE(idx.records[t.b].track_id, anchor.track_id);
        EXPECT_NEAR(t.first_a, cosine(idx, 0, t.anchor, t.a), 1e-5);
        EXPECT_NEAR(t.second_b, cosine(idx, 2, t.anchor, t.b), 1e-5);
        const double strength = std::min(std::fabs(t.first_a - t.first_b), std::fabs(t.second_a - t.second_b));
        // No pair of the anchor's candidates (best passage per other track, top 5 in either layer) is more opposed.
        std::set<std::size_t> candidates;
        for (std::size_t layer : {0u, 2u}) {
            std::vector<std::pair<float, std::size_t>> best;  // best passage per track
            std::map<std::string, std::pair<float, std::size_t>> per_track;
            for (std::size_t r = 0; r < idx.size(); ++r) {
                if (idx.records[r].track_id == anchor.track_id) continue;
                const float c = cosine(idx, layer, t.anchor, r);
                auto [it, fresh] = per_track.try_emplace(idx.records[r].track_id, c, r);
                if (!fresh && c > it->second.first) it->second = {c, r};
            }
            for (const auto& [track, cr] : per_track) best.push_back(cr);
            std::sort(best.rbegin(), best.rend());
            for (std::size_t i = 0; i < 5; ++i) candidates.insert(best[i].second);
        }
        ASSERT_TRUE(candidates.contains(t.a) && candidates.contains(t.b));
        for (std::size_t x : candidates)
            for (std::size_t y : candidates) {
                const double d0 = cosine(idx, 0, t.anchor, x) - cosine(idx, 0, t.anchor, y), d2 = cosine(idx, 2, t.anchor, x) - cosine(idx, 2, t.anchor, y);
                if (x < y && d0 * d2 < 0) {
                    EXPECT_LE(std::min(std::fabs(d0), std::fabs(d2)), strength + 1e-4) << draw;
                }
            }
    }
}

TEST(Sampler, RandomNeighboursAndDeterminism) {
    const Searcher s(std::make_shared<const SearchIndex>(random_index()), {});
    const SearchIndex& idx = s.index();
    SamplerParams p = params(s, "default", "default", SamplerKind::random);
    p.k = 4;
    p.seed = 99;
    EXPECT_EQ(sampler_label(p), "random:default");
    std::set<std::tuple<std::size_t, std::size_t, std::size_t>> seen;
    for (std::uint64_t draw = 0; draw < 20; ++draw) {
        const SampledTriplet t = sample_triplet(idx, p, draw);
        const SampledTriplet again = sample_triplet(idx, p, draw);
        EXPECT_EQ(std::tie(t.anchor, t.a, t.b), std::tie(again.anchor, again.a, again.b)) << "same seed and draw, same triplet";
        seen.insert({t.anchor, t.a, t.b});
        // a and b are among the 4 nearest other tracks by the index's own vectors.
        SearchRequest r;
        r.clip_id = idx.records[t.anchor].id;
        r.options.k = 4;
        r.options.exclude_same = SameScope::track;
        r.group_by_track = true;
        std::set<std::size_t> top;
        for (const Hit& h : s.search(r).hits) top.insert(h.row);
        EXPECT_TRUE(top.contains(t.a) && top.contains(t.b)) << draw;
        EXPECT_NE(t.a, t.b);
    }
    EXPECT_GT(seen.size(), 15u) << "draws differ";
    SamplerParams other = p;
    other.seed = 100;
    int same = 0;
    for (std::uint64_t draw = 0; draw < 20; ++draw) {
        const SampledTriplet x = sample_triplet(idx, p, draw), y = sample_triplet(idx, other, draw);
        same += std::tie(x.anchor, x.a, x.b) == std::tie(y.anchor, y.a, y.b);
    }
    EXPECT_LT(same, 3) << "another seed, another sequence";
}

TEST(Sampler, InvalidConfigurationAndDegenerateIndexes) {
    const Searcher s(std::make_shared<const SearchIndex>(random_index()), {});
    EXPECT_EQ(parse_geometry(s, "default").layer_weights.size(), 0u);
    EXPECT_EQ(parse_geometry(s, "layer:2").layer_weights, (std::vector<double>{0, 0, 1}));
    for (const char* bad : {"layer:3", "layer:", "layer:-1", "layer:x", "dynamics", ""})
        EXPECT_THROW(parse_geometry(s, bad), Error) << bad;
    try {
        parse_geometry(s, "layer:7");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::usage);
        EXPECT_NE(std::string(e.what()).find("[0, 2]"), std::string::npos) << e.what();
    }
    EXPECT_THROW(parse_sampler_kind("closest"), Error);
    EXPECT_EQ(parse_sampler_kind("random"), SamplerKind::random);
    SamplerParams p = params(s, "layer:0", "layer:1");
    for (std::size_t k : {0u, 1u, 1001u}) {
        p.k = k;
        EXPECT_THROW(sample_triplet(s.index(), p, 0), Error) << k;
    }
    // Two passages, or every passage in one track: no triplet.
    const SearchIndex two = layered_index({{1, 0, 0, 1}, {0, 1, 1, 0}}, 2, 2, {"x", "y"});
    p.k = 10;
    p.first = {"layer:0", {1, 0}};
    p.second = {"layer:1", {0, 1}};
    EXPECT_THROW(sample_triplet(two, p, 0), Error);
    const SearchIndex one_track = layered_index({{1, 0, 0, 1}, {0, 1, 1, 0}, {1, 1, 1, 1}}, 2, 2, {"x", "x", "x"});
    try {
        sample_triplet(one_track, p, 0);
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input) << e.what();
    }
    // An index without per-layer vectors has only its default geometry.
    const Searcher flat(std::make_shared<const SearchIndex>(build_index_from_vectors(IndexKind::clip, s.index().records,
        std::vector<float>(s.index().index.vectors()), s.index().index.dimension(), "Flat")), {});
    EXPECT_THROW(parse_geometry(flat, "layer:0"), Error);
}
