// Ranking metrics against hand-computed values, labels validation, and the protocols on a small index
// whose answers are known.
#include <array>
#include <cmath>

#include <gtest/gtest.h>

#include "mess/eval.hpp"
#include "support/support.hpp"

using namespace mess;

TEST(Metrics, HandComputed) {
    const std::vector<bool> rel{false, true, false, true};  // relevant at ranks 2 and 4; 3 relevant exist
    EXPECT_DOUBLE_EQ(recall_at_k(rel, 3, 2), 1.0 / 3);
    EXPECT_DOUBLE_EQ(recall_at_k(rel, 3, 4), 2.0 / 3);
    EXPECT_DOUBLE_EQ(precision_at_k(rel, 2), 0.5);
    EXPECT_DOUBLE_EQ(precision_at_k(rel, 10), 0.2);  // K beyond the list: missing ranks are not relevant
    EXPECT_DOUBLE_EQ(reciprocal_rank(rel), 0.5);
    EXPECT_EQ(first_relevant_rank(rel).value(), 2);
    EXPECT_DOUBLE_EQ(average_precision(rel, 3), (1.0 / 2 + 2.0 / 4) / 3);
    const double dcg = 1 / std::log2(3.0) + 1 / std::log2(5.0), ideal = 1 + 1 / std::log2(3.0) + 1 / std::log2(4.0);
    EXPECT_DOUBLE_EQ(ndcg_at_k(rel, 3, 4), dcg / ideal);
    EXPECT_DOUBLE_EQ(ndcg_at_k({true, true, true}, 3, 3), 1.0);
}

TEST(Metrics, EmptyAndDegenerate) {
    EXPECT_EQ(recall_at_k({}, 0, 5), 0.0);  // no relevant item: defined as 0, and the query is left out of means
    EXPECT_EQ(average_precision({false, false}, 0), 0.0);
    EXPECT_EQ(reciprocal_rank({false, false}), 0.0);
    EXPECT_FALSE(first_relevant_rank({}).has_value());
    EXPECT_EQ(ndcg_at_k({}, 2, 3), 0.0);
    EXPECT_THROW(precision_at_k({true}, 0), Error);
    EXPECT_THROW(recall_at_k({true}, 1, -1), Error);
}

namespace {

nlohmann::json item(const std::string& id, const std::string& work, const std::string& tempo) {
    return {{"id", id}, {"work_id", work}, {"recording_id", id}, {"aspects", {{"tempo", tempo}}}};
}

// 3 works × 2 recordings; vectors close within a work, so every query's nearest is its other recording.
SearchIndex known_index(bool ties) {
    std::vector<IndexRecord> recs;
    std::vector<float> v;
    const float dirs[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    for (int w = 0; w < 3; ++w)
        for (int r = 0; r < 2; ++r) {
            IndexRecord rec;
            rec.id = rec.track_id = rec.recording_id = fmt::format("w{}r{}", w, r);
            rec.work_id = fmt::format("w{}", w);
            recs.push_back(rec);
            for (int d = 0; d < 3; ++d) v.push_back(dirs[w][d] + (ties ? 0.0f : 0.1f * static_cast<float>(r) * static_cast<float>(d == (w + 1) % 3)));
        }
    return build_index_from_vectors(IndexKind::track, recs, v, 3, "Flat");
}

// The same works as windows of a clip index: 2 windows per recording, each work's windows in its own
// direction, the second window of a recording turned a little towards the next work's.
SearchIndex known_clip_index() {
    std::vector<IndexRecord> recs;
    std::vector<float> v;
    for (int w = 0; w < 3; ++w)
        for (int r = 0; r < 2; ++r)
            for (int s = 0; s < 2; ++s) {
                IndexRecord rec;
                rec.track_id = rec.recording_id = fmt::format("w{}r{}", w, r);
                rec.work_id = fmt::format("w{}", w);
                rec.segment_idx = s;
                rec.id = fmt::format("ds:{}:{:05d}", rec.track_id, s);
                rec.start_sec = 5.0 * s, rec.end_sec = rec.start_sec + 5;
                recs.push_back(rec);
                for (int d = 0; d < 3; ++d) v.push_back(d == w ? 1.0f : d == (w + 1) % 3 ? 0.3f * static_cast<float>(s + r) : 0.0f);
            }
    return build_index_from_vectors(IndexKind::clip, recs, v, 3, "Flat");
}

Labels known_labels() {
    nlohmann::json items = nlohmann::json::array();
    for (int w = 0; w < 3; ++w)
        for (int r = 0; r < 2; ++r) items.push_back(item(fmt::format("w{}r{}", w, r), fmt::format("w{}", w), r ? "fast" : "slow"));
    items.push_back(item("not-in-index", "w0", "slow"));
    return parse_labels({{"schema", "mess-corpus-labels/1"}, {"items", items}}, "labels");
}

}  // namespace

TEST(Labels, Validation) {
    EXPECT_THROW(parse_labels(nlohmann::json::array(), "x"), Error);
    EXPECT_THROW(parse_labels({{"items", nlohmann::json::array()}}, "x"), Error);
    EXPECT_THROW(parse_labels({{"items", {{{"id", "a"}}}}}, "x"), Error);  // no work_id
    try {
        parse_labels({{"items", {item("a", "w", "slow"), item("a", "w", "fast")}}}, "lab.json");
        FAIL();
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("lab.json: items[1]: duplicate id 'a'"), std::string::npos) << e.what();
    }
    auto bad_map = item("a", "w", "slow");
    bad_map["time_map"] = {{0, 0}, {1, 2}, {0.5, 3}};
    EXPECT_THROW(parse_labels({{"items", {bad_map}}}, "x"), Error);
    const Labels l = parse_labels({{"items", {{{"id", "a"}, {"work_id", "w"}}}}}, "x");
    EXPECT_EQ(l.items[0].recording_id, "a");  // defaults to the id
    test::TempDir dir;
    write_file_atomic(dir / "broken.json", "{\"items\": [");
    EXPECT_THROW(read_labels(dir / "broken.json"), Error);
}

TEST(Evaluate, KnownAnswersAndDeterminism) {
    const Searcher idx(std::make_shared<const SearchIndex>(known_index(false)), {});
    EvalParams p;
    p.ks = {1, 5};
    p.aspects = {"tempo"};
    p.per_query = true;
    const nlohmann::json r = evaluate(idx, known_labels(), p);
    const auto& t = r["protocols"]["track"];
    EXPECT_EQ(t["queries"], 6);
    EXPECT_DOUBLE_EQ(t["same_work"]["map"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(t["same_work"]["recall@1"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(t["same_work"]["precision@5"].get<double>(), 0.2);  // 1 relevant, 5 slots (5 results)
    EXPECT_DOUBLE_EQ(t["same_work"]["mean_first_rank"].get<double>(), 1.0);
    // The nearest is always the other tempo: faithfulness@1 = 0.
    EXPECT_DOUBLE_EQ(t["aspects"]["tempo"]["faithfulness@1"].get<double>(), 0.0);
    EXPECT_EQ(r["dataset"]["works"], 3);
    EXPECT_EQ(t["per_query"].size(), 6u);
    EXPECT_TRUE(t["latency_ms"].contains("p99"));
    // Same inputs, same report (latency aside).
    nlohmann::json again = evaluate(idx, known_labels(), p);
    auto strip = [](nlohmann::json j) {
        j["protocols"]["track"].erase("latency_ms");
        return j;
    };
    EXPECT_EQ(strip(r), strip(again));
    EXPECT_NE(format_report(r).find("track same_work map"), std::string::npos);
    EXPECT_NE(format_comparison(r, again, "a", "b").find("+0.0000"), std::string::npos);
}

// Per variant kind (labels' transform.kind): the AP of its queries, and the rank of each kind's rendering
// when its work's as-written rendering ("original") is the query; vectors chosen so the ranks are known.
TEST(Evaluate, VariantRanksFromTheReference) {
    const std::vector<std::pair<std::string, std::array<float, 3>>> rows{
        {"w0:original", {1, 0, 0}},   {"w0:tempo", {0.95f, 0.05f, 0}}, {"w0:combined", {0.5f, 0, 0.866f}},
        {"w1:original", {0.8f, 0.6f, 0}}, {"w1:tempo", {0.6f, 0.8f, 0}},   {"w1:combined", {0, 1, 0}}};
    std::vector<IndexRecord> recs;
    std::vector<float> v;
    nlohmann::json items = nlohmann::json::array();
    for (const auto& [id, x] : rows) {
        IndexRecord rec;
        rec.id = rec.track_id = rec.recording_id = id;
        rec.work_id = id.substr(0, 2);
        recs.push_back(rec);
        v.insert(v.end(), x.begin(), x.end());
        items.push_back({{"id", id}, {"work_id", rec.work_id}, {"transform", {{"kind", id.substr(3)}}}});
    }
    const Searcher idx(std::make_shared<const SearchIndex>(build_index_from_vectors(IndexKind::track, recs, v, 3, "Flat")), {});
    const nlohmann::json r = evaluate(idx, parse_labels({{"items", items}}, "labels"), EvalParams{});
    const auto& var = r["protocols"]["track"]["variants"];
    // From w0:original: w0:tempo 1st, w1:original, w1:tempo, w0:combined 4th; from w1:original: w1:tempo
    // 1st, w0:original, w0:tempo, w1:combined 4th.
    EXPECT_DOUBLE_EQ(var["tempo"]["mean_rank_from_reference"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(var["combined"]["mean_rank_from_reference"].get<double>(), 4.0);
    EXPECT_EQ(var["combined"]["references"], 2);
    EXPECT_FALSE(var["original"].contains("mean_rank_from_reference"));
    EXPECT_DOUBLE_EQ(var["original"]["map"].get<double>(), 0.75);  // (1/1 + 2/4) / 2 for each reference
    EXPECT_EQ(var["original"]["queries"], 2);
    EXPECT_NE(format_report(r).find("track variant combined mean_rank_from_reference"), std::string::npos);
    // Labels without transform kinds: no variant report.
    EXPECT_FALSE(evaluate(Searcher(std::make_shared<const SearchIndex>(known_index(false)), {}), known_labels(), EvalParams{})["protocols"]["track"].contains("variants"));
}

// Tracks from passages in two stages: one query per labelled track, every other recording of its work first.
TEST(Evaluate, TrackRerankProtocolOnAClipIndex) {
    const Searcher clips(std::make_shared<const SearchIndex>(known_clip_index()), {});
    EvalParams p;
    p.ks = {1};
    const nlohmann::json plain = evaluate(clips, known_labels(), p);
    EXPECT_FALSE(plain["protocols"].contains("track_rerank"));
    p.rerank = RerankParams{Reduction::mean_min_sym, 10, 3};
    const nlohmann::json r = evaluate(clips, known_labels(), p);
    const auto& t = r["protocols"]["track_rerank"];
    EXPECT_EQ(t["queries"], 6);
    EXPECT_DOUBLE_EQ(t["same_work"]["map"].get<double>(), 1.0);
    EXPECT_DOUBLE_EQ(t["same_work"]["recall@1"].get<double>(), 1.0);
    EXPECT_EQ(r["config"]["rerank"]["reduction"], "mean-min-sym");
    EXPECT_NE(format_report(r).find("track_rerank same_work map"), std::string::npos);
    const Searcher tracks(std::make_shared<const SearchIndex>(known_index(false)), {});
    EXPECT_THROW(evaluate(tracks, known_labels(), p), Error);  // a track index has no passages to rerank from
    EvalParams context;
    context.passage_context = 2;
    EXPECT_THROW(evaluate(tracks, known_labels(), context), Error);  // nor passages to give a context
}

TEST(Evaluate, SampledQueriesAndBadParams) {
    const Searcher idx(std::make_shared<const SearchIndex>(known_index(true)), {});  // exact ties within a work
    EvalParams p;
    p.max_queries = 3;
    p.seed = 5;
    const nlohmann::json r = evaluate(idx, known_labels(), p);
    EXPECT_EQ(r["protocols"]["track"]["queries"], 3);
    EXPECT_DOUBLE_EQ(r["protocols"]["track"]["same_work"]["map"].get<double>(), 1.0);  // ties still rank the twin first
    p.ks = {0};
    EXPECT_THROW(evaluate(idx, known_labels(), p), Error);
    p.ks = {1};
    p.layer_weights = {1.0, 2.0};
    EXPECT_THROW(evaluate(idx, known_labels(), p), Error);
    EXPECT_THROW(evaluate(idx, parse_labels({{"items", {item("zzz", "w", "slow")}}}, "x"), EvalParams{}), Error);
}
