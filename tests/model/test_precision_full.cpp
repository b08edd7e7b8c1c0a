// bf16 against fp32 on a full-size random MERT-v1-95M checkpoint (the accuracy contract of
// Precision::bf16 in mess/model.hpp): per-layer cosine to MESS's fp32 ≥ 0.999 on 5-s windows of synthetic
// music, and the nearest-neighbour ranking of a small index of clips unchanged for ≥ 95 % of queries.
#include <algorithm>

#include <gtest/gtest.h>

#include "mess/model.hpp"
#include "precision_support.hpp"
#include "support/support.hpp"

using namespace mess;
using test::cosine;
using test::kMinCosine;
using test::music;
using test::worst_layer_cosine;

// A full-size checkpoint: 12 layers of 768, the real conv stack. About a minute on 2 cores (label slow).
TEST(Precision, Bf16FullSizeRandomMertKeepsLayersAndNeighbours) {
    test::TempDir dir;
    RandomCheckpointParams rp;
    rp.seed = 7;
    write_random_checkpoint(preset_config_json("mert-v1-95m"), dir.path(), rp);
    auto fp32 = Model::load(dir.path());
    LoadParams lp;
    lp.precision = Precision::bf16;
    auto bf16 = Model::load(dir.path(), lp);
    ModelState s32(fp32), s16(bf16);
    EncodeParams p;
    p.threads = 2;

    // Two 5-s windows, every layer.
    for (std::uint32_t seed : {1u, 2u}) {
        const auto x = music(seed, 5.0);
        const std::vector<float> a = s32.encode(x, 1, static_cast<std::int64_t>(x.size()), p).values;
        const HiddenStates& b = s16.encode(x, 1, static_cast<std::int64_t>(x.size()), p);
        std::string report;
        const double worst = worst_layer_cosine(a, b.values, b.layers, &report);
        std::printf("[ bf16 ] 95M random, 5-s window %u, per-layer cosine to fp32:%s\n", seed, report.c_str());
        EXPECT_GE(worst, kMinCosine) << report;
    }

    // A small index: 32 one-second clips, each a mean-pooled middle layer; ranks of the 5 nearest clips.
    const std::int64_t clips = 32, layer = 6;
    std::vector<std::vector<float>> v32, v16;
    for (std::int64_t c = 0; c < clips; ++c) {
        const auto x = music(static_cast<std::uint32_t>(100 + c), 1.0);
        for (auto [state, out] : {std::pair{&s32, &v32}, std::pair{&s16, &v16}}) {
            const HiddenStates& h = state->encode(x, 1, static_cast<std::int64_t>(x.size()), p);
            out->push_back(std::vector<float>(static_cast<std::size_t>(h.hidden), 0.0f));
            for (std::int64_t t = 0; t < h.frames; ++t)
                for (std::int64_t d = 0; d < h.hidden; ++d) out->back()[d] += h.values[((layer * h.frames) + t) * h.hidden + d];
        }
    }
    auto top5 = [&](const std::vector<std::vector<float>>& v, std::int64_t q) {
        std::vector<std::pair<double, std::int64_t>> s;
        for (std::int64_t r = 0; r < clips; ++r)
            if (r != q) s.emplace_back(-cosine(v[q].data(), v[r].data(), v[q].size()), r);
        std::sort(s.begin(), s.end());
        std::vector<std::int64_t> out;
        for (int i = 0; i < 5; ++i) out.push_back(s[static_cast<std::size_t>(i)].second);
        return out;
    };
    int same_top1 = 0, same_top5 = 0;
    for (std::int64_t q = 0; q < clips; ++q) {
        const auto a = top5(v32, q), b = top5(v16, q);
        same_top1 += a[0] == b[0];
        same_top5 += a == b;
    }
    std::printf("[ bf16 ] nearest neighbour unchanged for %d/%ld queries, the whole top 5 for %d/%ld\n", same_top1,
                static_cast<long>(clips), same_top5, static_cast<long>(clips));
    EXPECT_GE(same_top1, static_cast<int>(std::ceil(0.95 * clips)));
}
