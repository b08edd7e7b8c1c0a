// Shard queries: the query as the shard holding it sees it, searched on every shard of an index split by
// track, gives the single index's answer; its JSON form round-trips exactly and bad bodies are named.
#include <cstring>
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/search.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

namespace mess {
namespace {

constexpr std::size_t kLayers = 2, kDim = 6;

// Tracks t000… with random [2 × 6] stacks (vector: the flattened stack; layers stored normalised), two
// performances per work, composer A or B; `keep` chooses the tracks of one shard (empty: all).
SearchIndex random_index(std::size_t n, const std::function<bool(std::size_t)>& keep = {}) {
    std::mt19937 g(5);
    std::normal_distribution<float> d(0, 1);
    std::vector<IndexRecord> records;
    std::vector<float> vectors;
    std::vector<std::uint16_t> layers;
    for (std::size_t i = 0; i < n; ++i) {
        std::vector<float> stack(kLayers * kDim);
        for (auto& v : stack) v = d(g);
        if (keep && !keep(i)) continue;
        IndexRecord r;
        r.id = r.track_id = r.recording_id = fmt::format("t{:03d}", i);
        r.work_id = fmt::format("w{:03d}", i / 2);
        r.dataset_id = "ds";
        r.metadata["composer"] = i % 3 == 0 ? "A" : "B";
        records.push_back(r);
        vectors.insert(vectors.end(), stack.begin(), stack.end());
        for (std::size_t l = 0; l < kLayers; ++l) {
            std::vector<float> x(stack.begin() + static_cast<std::ptrdiff_t>(l * kDim), stack.begin() + static_cast<std::ptrdiff_t>((l + 1) * kDim));
            l2_normalize(x.data(), kDim);
            for (float f : x) layers.push_back(float_to_half(f));
        }
    }
    return build_index_from_vectors(IndexKind::track, records, vectors, kLayers * kDim, "Flat", layers, kLayers, kDim);
}

std::vector<std::pair<std::string, float>> ranked(const std::vector<Hit>& hits) {
    std::vector<std::pair<std::string, float>> out;
    for (const Hit& h : hits) out.emplace_back(h.record->id, h.score);
    return out;
}

// Cost: milliseconds.
TEST(ShardQuery, ShardsAnswerWhatTheSingleIndexAnswers) {
    const std::size_t n = 90;
    auto in_a = [](std::size_t i) { return (i * 7 + 3) % 5 < 2; };  // an uneven split by track
    const Searcher whole(std::make_shared<const SearchIndex>(random_index(n)), {});
    const Searcher a(std::make_shared<const SearchIndex>(random_index(n, in_a)), {});
    const Searcher b(std::make_shared<const SearchIndex>(random_index(n, [&](std::size_t i) { return !in_a(i); })), {});
    ASSERT_EQ(a.index().size() + b.index().size(), n);
    for (std::size_t i = 0; i < n; i += 7) {
        for (int variant = 0; variant < 4; ++variant) {
            SearchRequest r;
            r.track_id = fmt::format("t{:03d}", i);
            r.options.k = variant == 1 ? 60 : 8;  // 60: more than shard a holds
            if (variant == 2) r.options.exclude_same = SameScope::work, r.options.filters = {Filter::parse("composer=B")};
            if (variant == 3) r.layer_weights = {0.2, 0.8};
            const Searcher& holder = in_a(i) ? a : b;
            SearchRequest shard = r;
            shard.track_id.clear();
            shard.shard_query = std::make_shared<const ShardQuery>(ShardQuery::from_json(holder.shard_query(r).to_json()));
            const auto merged = merge_shard_hits({a.search(shard).hits, b.search(shard).hits}, r.options.k);
            std::vector<Hit> got;
            for (const auto& h : merged) got.push_back(h.hit);
            EXPECT_FALSE(got.empty());
            EXPECT_EQ(ranked(got), ranked(whole.search(r).hits)) << r.track_id << " variant " << variant;
        }
    }
}

TEST(ShardQuery, ErrorsNameTheProblem) {
    const Searcher s(std::make_shared<const SearchIndex>(random_index(10)), {});
    SearchRequest r;
    r.track_id = "t001";
    const ShardQuery q = s.shard_query(r);
    EXPECT_EQ(q.record.track_id, "t001");
    EXPECT_EQ(q.input.size(), kLayers * kDim);
    // The holder names an unknown id; a shard query cannot rerank or be sent to an index of the other kind.
    r.track_id = "nope";
    EXPECT_NE(test::error_message([&] { s.shard_query(r); }).find("nope"), std::string::npos);
    SearchRequest with;
    with.shard_query = std::make_shared<const ShardQuery>(q);
    with.rerank = RerankParams{};
    EXPECT_NE(test::error_message([&] { s.search(with); }, ErrorKind::usage).find("rerank"), std::string::npos);
    ShardQuery clip = q;
    clip.kind = IndexKind::clip;
    EXPECT_NE(test::error_message([&] { search_shard_query(s.index(), clip, {}); }).find("clip"), std::string::npos);
    ShardQuery aspects = q;
    aspects.aspects["tempo"] = {1, 0};
    EXPECT_NE(test::error_message([&] { search_shard_query(s.index(), aspects, {}); }).find("tempo"), std::string::npos);
    ShardQuery short_input = q;
    short_input.input.pop_back();
    EXPECT_THROW(search_shard_query(s.index(), short_input, {}), Error);
}

// Floats survive JSON bit for bit; every malformed field is named (what a router's body could hold).
TEST(ShardQuery, JsonRoundTripIsExactAndBadBodiesAreNamed) {
    ShardQuery q;
    q.kind = IndexKind::clip;
    q.input = {0.1f, 1e-38f, -3.4028235e38f, 0.33333334f};
    q.aspects["dynamics"] = {0.70710677f, -0.70710677f};
    q.record.id = "ds:t:00003";
    q.record.track_id = "t";
    q.record.work_id = "w";
    q.record.start_sec = 7.5;
    q.record.end_sec = 12.5;
    q.moment = RoleMoment{9.25, -5};
    const ShardQuery back = ShardQuery::from_json(nlohmann::json::parse(q.to_json().dump()));
    EXPECT_EQ(back.kind, IndexKind::clip);
    ASSERT_EQ(back.input.size(), q.input.size());
    EXPECT_EQ(std::memcmp(back.input.data(), q.input.data(), q.input.size() * sizeof(float)), 0);
    EXPECT_EQ(back.aspects, q.aspects);
    EXPECT_EQ(back.record.id, q.record.id);
    EXPECT_EQ(back.record.start_sec, 7.5);
    ASSERT_TRUE(back.moment && back.moment->interval);
    EXPECT_EQ(*back.moment->interval, -5);
    const nlohmann::json good = q.to_json();
    const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> broken = {
        {[](nlohmann::json& j) { j["schema"] = "other/1"; }, "schema"},
        {[](nlohmann::json& j) { j.erase("kind"); }, "kind"},
        {[](nlohmann::json& j) { j["kind"] = "album"; }, "kind"},
        {[](nlohmann::json& j) { j["input"][1] = "x"; }, "input"},
        {[](nlohmann::json& j) { j["aspects"] = nlohmann::json::array(); }, "aspects"},
        {[](nlohmann::json& j) { j["aspects"]["dynamics"] = 3; }, "aspects.dynamics"},
        {[](nlohmann::json& j) { j["record"].erase("track_id"); }, "track_id"},
        {[](nlohmann::json& j) { j["record"]["start_sec"] = "late"; }, "start_sec"},
        {[](nlohmann::json& j) { j["moment"].erase("time"); }, "time"},
        {[](nlohmann::json& j) { j["moment"]["interval"] = 1.5; }, "interval"},
        {[](nlohmann::json& j) { j["input"] = nlohmann::json::array(), j["aspects"] = nlohmann::json::object(); }, "neither"},
        {[](nlohmann::json& j) { j = nlohmann::json::array(); }, "schema"},
    };
    for (const auto& [edit, field] : broken) {
        nlohmann::json j = good;
        edit(j);
        EXPECT_NE(test::error_message([&] { ShardQuery::from_json(j); }).find(field), std::string::npos) << field << ": " << j.dump();
    }
}

}  // namespace
}  // namespace mess
