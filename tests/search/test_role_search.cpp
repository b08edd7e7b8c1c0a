// Passage search restricted to a structural role: query windows at the role's moment, candidates only among
// windows holding that role, modulations ranked by passage and interval. Hand-made structures over a small
// clip index with chosen vectors, so every expected hit and score follows from the definitions.
#include <algorithm>
#include <cmath>

#include <gtest/gtest.h>

#include "mess/search.hpp"

using namespace mess;

namespace {

constexpr std::size_t kDim = 4;

// Tracks a, b, c, d with windows [2.5·i, 2.5·i + 5) for i = 0..5 (17.5 s each). Each window's vector is
// e0 plus a small per-track, per-window direction, so that chosen rows can be made more similar.
struct RoleCorpus {
    std::vector<IndexRecord> records;
    std::vector<float> vectors;

    void add(const std::string& track, const std::array<float, kDim>& bias) {
        for (int i = 0; i < 6; ++i) {
            IndexRecord r;
            r.track_id = r.recording_id = r.work_id = track;
            r.dataset_id = "ds";
            r.id = fmt::format("ds:{}:{:05d}", track, i);
            r.segment_idx = i;
            r.start_sec = 2.5 * i;
            r.end_sec = r.start_sec + 5.0;
            records.push_back(r);
            for (std::size_t j = 0; j < kDim; ++j) vectors.push_back((j == 0 ? 1.0f : 0.0f) + bias[j] * static_cast<float>(1 + i % 2));
        }
    }

    SearchIndex index() const {
        SearchIndex idx = build_index_from_vectors(IndexKind::clip, records, vectors, kDim, "Flat");
        auto s = std::make_shared<std::map<std::string, Structure>>();
        Structure a;  // climax at 8 s (windows 1 and 2 hold it: [5, 10) has centre 7.5, nearest); modulation +2 at 12 s
        a.duration_sec = 17.5;
        a.boundaries = {0, 6, 17.5};
        a.climax = Climax{8.0, 6.0, 10.0, 0.9};
        a.modulations = {{12.0, 0, 2, 2}};
        a.cadences = {{3.0, 0.4, 0}, {14.0, 0.8, 2}};
        Structure b;  // climax at 3 s; modulation +2 at 9 s
        b.duration_sec = 17.5;
        b.climax = Climax{3.0, 2.0, 4.0, 0.8};
        b.modulations = {{9.0, 0, 2, 2}};
        Structure c;  // climax at 16 s; modulation −5 at 9 s
        c.duration_sec = 17.5;
        c.climax = Climax{16.0, 15.0, 17.0, 0.7};
        c.modulations = {{9.0, 0, 7, -5}};
        (*s)["a"] = a;
        (*s)["b"] = b;
        (*s)["c"] = c;  // d: no structure known
        idx.structures = s;
        return idx;
    }
};

Searcher role_searcher() {
    RoleCorpus corpus;
    corpus.add("a", {0.3f, 0, 0, 0});
    corpus.add("b", {0, 0.5f, 0, 0});
    corpus.add("c", {0.3f, 0, 0, 0});   // c's passages are closer to a's than b's are
    corpus.add("d", {0.3f, 0, 0, 0});
    return Searcher(std::make_shared<const SearchIndex>(corpus.index()), {});
}

bool holds(const Hit& h, double t) { return t >= h.record->start_sec && t < h.record->end_sec; }

}  // namespace

TEST(RoleSearch, ClimaxQueryReturnsOnlyOtherClimaxes) {
    const Searcher s = role_searcher();
    SearchRequest r;
    r.track_id = "a";
    r.role = Role::climax;
    r.options.k = 10;
    const SearchResult res = s.search(r);
    ASSERT_TRUE(res.query_moment);
    EXPECT_DOUBLE_EQ(res.query_moment->time, 8.0);
    EXPECT_EQ(res.query_clip_id, "ds:a:00002");  // [5, 10): centre 7.5 is nearer 8 than [7.5, 12.5)'s 10
    ASSERT_EQ(res.hit_moments.size(), res.hits.size());
    // b's climax (3 s) lies in windows 0 and 1, c's (16 s) in window 5 only ([12.5, 17.5)); d has no structure.
    // Windows of one track within a window's length are de-duplicated: one hit per climax.
    ASSERT_EQ(res.hits.size(), 2u);
    for (std::size_t i = 0; i < res.hits.size(); ++i) {
        EXPECT_NE(res.hits[i].record->track_id, "a");
        EXPECT_NE(res.hits[i].record->track_id, "d");
        EXPECT_TRUE(holds(res.hits[i], res.hit_moments[i].time)) << res.hits[i].record->id;
    }
    const auto json = hits_to_json(res);
    EXPECT_EQ(json[0]["role"]["name"], "climax");
    EXPECT_FALSE(json[0]["role"].contains("interval"));
}

TEST(RoleSearch, QueryMomentNearestTheStartAndTheStrongestCadence) {
    const Searcher s = role_searcher();
    SearchRequest r;
    r.track_id = "a";
    r.role = Role::cadence;
    const SearchResult strongest = s.search(r);
    EXPECT_DOUBLE_EQ(strongest.query_moment->time, 14.0);  // strength 0.8 against 0.4
    r.start_sec = 2.0;
    EXPECT_DOUBLE_EQ(s.search(r).query_moment->time, 3.0);
    // No other track has cadences: the one hit is a's own cadence at 14 s (outside the query's neighbourhood).
    const SearchResult own = s.search(r);
    ASSERT_EQ(own.hits.size(), 1u);
    EXPECT_EQ(own.hits[0].record->track_id, "a");
    EXPECT_DOUBLE_EQ(own.hit_moments[0].time, 14.0);
    r.role = Role::boundary;
    r.start_sec.reset();
    EXPECT_DOUBLE_EQ(s.search(r).query_moment->time, 6.0);  // the interior boundary (0 and the end are not moments)
}

TEST(RoleSearch, ModulationsRankByPassageAndInterval) {
    const Searcher s = role_searcher();
    SearchRequest r;
    r.track_id = "a";
    r.role = Role::modulation;
    const SearchResult res = s.search(r);
    ASSERT_EQ(res.query_moment->interval, 2);
    ASSERT_EQ(res.hits.size(), 2u);
    // c's passage is more similar (same bias direction) but modulates by −5 (distance 7 → circular 5 semitones:
    // −0.5); b's modulates by +2 like the query: b first.
    EXPECT_EQ(res.hits[0].record->track_id, "b");
    EXPECT_EQ(res.hits[1].record->track_id, "c");
    EXPECT_EQ(res.hit_moments[1].interval, -5);
    // The scores are the cosines less 0.1 per semitone: recompute c's from the vectors.
    const SearchIndex& idx = s.index();
    const std::size_t q = idx.row_of(res.query_clip_id), row_c = res.hits[1].row;
    const float* vq = idx.index.vector(q);
    const float* vc = idx.index.vector(row_c);
    double dot = 0;
    for (std::size_t j = 0; j < kDim; ++j) dot += vq[j] * vc[j];
    EXPECT_NEAR(res.hits[1].score, dot - 0.5, 1e-5);
    // Without a role, c's passage would rank above b's.
    SearchRequest plain;
    plain.clip_id = res.query_clip_id;
    plain.options.k = 30;
    const auto hits = s.search(plain).hits;
    const auto pos = [&](std::size_t row) { return std::find_if(hits.begin(), hits.end(), [&](const Hit& h) { return h.row == row; }) - hits.begin(); };
    EXPECT_LT(pos(row_c), pos(res.hits[0].row));
}

TEST(RoleSearch, CandidateRestrictionForClipAndVectorQueries) {
    const Searcher s = role_searcher();
    SearchRequest r;
    r.vector = {1, 0.3f, 0, 0};
    r.role = Role::modulation;
    const SearchResult res = s.search(r);
    EXPECT_FALSE(res.query_moment);  // no query track: cosine only
    ASSERT_FALSE(res.hits.empty());
    for (std::size_t i = 0; i < res.hits.size(); ++i) EXPECT_TRUE(holds(res.hits[i], res.hit_moments[i].time));
    EXPECT_EQ(res.hits.size(), 3u);  // a's, b's and c's modulation windows, one per track after de-duplication
}

namespace {

// The search fails with an Error of `kind` whose message contains `text`.
void expect_search_error(const Searcher& s, const SearchRequest& r, ErrorKind kind, const std::string& text) {
    try {
        s.search(r);
        ADD_FAILURE() << "expected an error containing '" << text << "'";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), kind) << e.what();
        EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
    }
}

}  // namespace

TEST(RoleSearch, ErrorsNameTheProblem) {
    const Searcher s = role_searcher();
    SearchRequest r;
    r.track_id = "d";
    r.role = Role::climax;
    expect_search_error(s, r, ErrorKind::input, "no structure");
    r.track_id = "zz";
    EXPECT_THROW(s.search(r), Error);  // unknown id
    r.track_id = "b";
    r.role = Role::cadence;
    expect_search_error(s, r, ErrorKind::input, "no cadence");
    // An index without structures (an artifact from before they were stored) and a track index.
    RoleCorpus corpus;
    corpus.add("a", {0.3f, 0, 0, 0});
    SearchIndex bare = build_index_from_vectors(IndexKind::clip, corpus.records, corpus.vectors, kDim, "Flat");
    const Searcher without(std::make_shared<const SearchIndex>(std::move(bare)), {});
    r.track_id = "a";
    r.role = Role::climax;
    expect_search_error(without, r, ErrorKind::usage, "holds no structure");
    EXPECT_THROW(parse_role("bridge"), Error);
}

TEST(RoleSearch, RoleMomentsFollowTheStructure) {
    Structure s;
    s.boundaries = {0, 5, 12, 20};
    s.modulations = {{7.0, 0, 9, -3}};
    const auto b = role_moments(s, Role::boundary);
    ASSERT_EQ(b.size(), 2u);
    EXPECT_DOUBLE_EQ(b[1].time, 12.0);
    EXPECT_FALSE(b[0].interval);
    const auto m = role_moments(s, Role::modulation);
    ASSERT_EQ(m.size(), 1u);
    EXPECT_EQ(*m[0].interval, -3);
    EXPECT_TRUE(role_moments(s, Role::climax).empty());  // silence: no climax
    EXPECT_EQ(role_moment_to_json(Role::modulation, m[0]).dump(), R"({"interval":-3,"name":"modulation","time":7.0})");
}
