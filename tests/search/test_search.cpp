// Search: the predecessor's golden ranking, approximate indexes against exact search, passage rules,
// filters, aspect fusion and errors.
#include <cmath>
#include <limits>
#include <random>
#include <atomic>
#include <set>
#include <numeric>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> ids(const std::vector<Hit>& hits) {
    std::vector<std::string> out;
    for (const auto& h : hits) out.push_back(h.record->id);
    return out;
}

// retrieval_tiny.json as the predecessor used it: each 6-d segment vector in layer 0 of [13, 768].
struct Tiny {
    nlohmann::json fixture = nlohmann::json::parse(read_file(std::string(MESS_FIXTURES_DIR) + "/predecessor/retrieval_tiny.json"));
    static constexpr std::size_t L = 13, D = 768;

    SearchIndex tracks() const {
        std::vector<IndexRecord> recs;
        std::vector<float> vectors;
        for (const auto& t : fixture["tracks"]) {
            IndexRecord r;
            r.id = r.track_id = t["track_id"];
            r.recording_id = t["recording_id"];
            r.work_id = t["work_id"];
            r.dataset_id = fixture["dataset_id"];
            std::vector<float> stack(L * D, 0.0f);
            for (const auto& seg : t["segments"])
                for (std::size_t j = 0; j < 6; ++j) stack[j] += seg[j].get<float>() / static_cast<float>(t["segments"].size());
            const auto v = LayerSpec::parse("0").apply(stack.data(), L, D);
            vectors.insert(vectors.end(), v.begin(), v.end());
            recs.push_back(r);
        }
        return build_index_from_vectors(IndexKind::track, recs, vectors, D, "Flat");
    }
    SearchIndex clips() const {
        std::vector<IndexRecord> recs;
        std::vector<float> vectors;
        for (const auto& t : fixture["tracks"]) {
            int s = 0;
            for (const auto& seg : t["segments"]) {
                IndexRecord r;
                r.track_id = t["track_id"];
                r.id = "smd:" + r.track_id + fmt::format(":{:05d}", s);
                r.segment_idx = s;
                r.start_sec = 2.5 * s;
                r.end_sec = r.start_sec + 5.0;
                r.work_id = t["work_id"];
                ++s;
                std::vector<float> v(D, 0.0f);
                for (std::size_t j = 0; j < 6; ++j) v[j] = seg[j].get<float>();
                vectors.insert(vectors.end(), v.begin(), v.end());
                recs.push_back(r);
            }
        }
        return build_index_from_vectors(IndexKind::clip, recs, vectors, D, "Flat");
    }
};

}  // namespace

TEST(Search, PredecessorGoldenRanking) {
    Tiny tiny;
    const SearchIndex idx = tiny.tracks();
    QueryOptions q;
    q.k = 4;
    const auto hits = similar_tracks(idx, "bach_a", q);
    EXPECT_EQ(ids(hits), (std::vector<std::string>{"bach_b", "chopin_b", "chopin_a", "noise_a"}));
    for (std::size_t i = 0; i < hits.size(); ++i) {
        EXPECT_LE(hits[i].score, 1.0f + 1e-6f);
        EXPECT_GE(hits[i].score, -1.0f - 1e-6f);
        if (i) {
            EXPECT_GE(hits[i - 1].score, hits[i].score);
        }
    }
    const SearchIndex rebuilt = tiny.tracks();  // a rebuilt index: identical ids and scores
    const auto again = similar_tracks(rebuilt, "bach_a", q);
    for (std::size_t i = 0; i < hits.size(); ++i) {
        EXPECT_EQ(again[i].record->id, hits[i].record->id);
        EXPECT_NEAR(again[i].score, hits[i].score, 1e-8);
    }
    // Every positive pair ranks its partner first; noise_a is never in anyone's top 2.
    for (auto it = tiny.fixture["positive_tracks"].begin(); it != tiny.fixture["positive_tracks"].end(); ++it) {
        q.k = 2;
        const auto h = ids(similar_tracks(idx, it.key(), q));
        EXPECT_EQ(h[0], (*it)[0].get<std::string>()) << it.key();
        EXPECT_EQ(std::count(h.begin(), h.end(), "noise_a"), 0);
    }
    EXPECT_EQ(tiny.clips().size(), 15u);
}

TEST(Search, PassagesExcludeTheQueryNeighbourhoodAndDeduplicate) {
    Tiny tiny;
    const SearchIndex idx = tiny.clips();
    PassageQuery pq;
    pq.clip_id = "smd:bach_a:00001";  // start 2.5: windows at 0 and 5.0 of bach_a overlap it
    pq.options.k = 20;
    const auto hits = similar_passages(idx, pq);
    for (const auto& h : hits) EXPECT_NE(h.record->track_id, "bach_a") << h.record->id;
    // De-duplication: within a track, accepted hits are at least a window apart (0 and 5.0 only).
    std::map<std::string, std::vector<double>> starts;
    for (const auto& h : hits) starts[h.record->track_id].push_back(h.record->start_sec);
    for (const auto& [t, s] : starts) {
        EXPECT_LE(s.size(), 2u) << t;
        if (s.size() == 2) {
            EXPECT_GE(std::abs(s[0] - s[1]), 5.0) << t;
        }
    }
    EXPECT_EQ(hits.front().record->track_id, "bach_b");
    // Track + second picks the nearest window; grouping keeps one passage per track.
    PassageQuery by_time;
    by_time.track_id = "chopin_a";
    by_time.start_sec = 4.0;  // nearest start: 5.0
    by_time.group_by_track = true;
    by_time.options.k = 10;
    const auto grouped = similar_passages(idx, by_time);
    std::set<std::string> tracks;
    for (const auto& h : grouped) EXPECT_TRUE(tracks.insert(h.record->track_id).second);
    // chopin_a's windows at 2.5 and 5.0 overlap the query; its window at 0 does not and may be returned.
    EXPECT_EQ(grouped.size(), 5u);
    for (const auto& h : grouped)
        if (h.record->track_id == "chopin_a") {
            EXPECT_EQ(h.record->id, "smd:chopin_a:00000");
        }
    EXPECT_EQ(grouped.front().record->track_id, "chopin_b");
    // Filters and exclude_same.
    PassageQuery f = pq;
    f.options.filters = {Filter::parse("work_id=WORK_CHOPIN")};  // case-insensitive
    for (const auto& h : similar_passages(idx, f)) EXPECT_EQ(h.record->work_id, "work_chopin");
    PassageQuery x = pq;
    x.options.exclude_same = SameScope::work;
    for (const auto& h : similar_passages(idx, x)) EXPECT_NE(h.record->work_id, "work_bach");
}

TEST(Search, ErrorsNameTheProblem) {
    Tiny tiny;
    const SearchIndex tracks = tiny.tracks(), clips = tiny.clips();
    QueryOptions q;
    EXPECT_NE(test::error_message([&] { similar_tracks(tracks, "nope", q); }).find("unknown track id 'nope'"), std::string::npos);
    PassageQuery pq;
    pq.clip_id = "smd:bach_a:00099";
    EXPECT_NE(test::error_message([&] { similar_passages(clips, pq); }).find("unknown clip id"), std::string::npos);
    q.k = 0;
    EXPECT_THROW(similar_tracks(tracks, "bach_a", q), Error);
    q.k = 3;
    EXPECT_THROW(parse_same_scope("composer"), Error);
    EXPECT_THROW(similar_passages(tracks, pq), Error);  // passages need a clip index
    EXPECT_THROW(LayerSpec::parse("layer6"), Error);
    EXPECT_THROW(LayerSpec::parse("weights:1,-2"), Error);
    EXPECT_THROW(LayerSpec::parse("5").apply(std::vector<float>(8).data(), 2, 4), Error);
    EXPECT_THROW(Filter::parse("composer"), Error);
    EXPECT_NE(test::error_message([&] { VectorIndex::build(std::vector<float>(64), 8, 8, "NotAnIndex"); }, ErrorKind::usage).find("NotAnIndex"),
              std::string::npos);
    SearchParams sp;
    sp.nprobe = 4;
    std::vector<float> qv(768, 0.0f);
    qv[0] = 1;
    EXPECT_THROW(tracks.index.search(qv.data(), 2, sp), Error);  // nprobe on a flat index
    q = {};
    q.layer_weights = std::vector<double>(13, 1.0);
    EXPECT_NE(test::error_message([&] { similar_tracks(tracks, "bach_a", q); }, ErrorKind::usage).find("per-layer"), std::string::npos);
}

namespace {

// Clustered vectors: `clusters` centres (fixed), points = centre + noise drawn with `seed`.
std::vector<float> clustered(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed) {
    std::mt19937 c0(1);
    std::mt19937 g(seed);
    std::normal_distribution<float> d(0, 1);
    std::vector<float> centres(clusters * dim), out(n * dim);
    for (auto& c : centres) c = d(c0);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = i % clusters;
        for (std::size_t j = 0; j < dim; ++j) out[i * dim + j] = centres[c * dim + j] + 0.6f * d(g);
    }
    return out;
}

double recall_at_10(const VectorIndex& approx, const VectorIndex& exact, const std::vector<float>& queries, std::size_t nq,
                    const SearchParams& p) {
    const std::size_t dim = exact.dimension();
    double hit = 0;
    for (std::size_t i = 0; i < nq; ++i) {
        std::vector<float> q(queries.begin() + static_cast<std::ptrdiff_t>(i * dim), queries.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
        l2_normalize(q.data(), dim);
        std::set<std::int64_t> truth;
        for (const auto& [r, s] : exact.search(q.data(), 10)) truth.insert(r);
        for (const auto& [r, s] : approx.search(q.data(), 10, p)) hit += static_cast<double>(truth.count(r));
    }
    return hit / static_cast<double>(nq * 10);
}

}  // namespace

TEST(Search, ApproximateIndexesAgainstExactSearch) {
    const std::size_t n = 6000, dim = 48;
    const auto data = clustered(n, dim, 40, 3);
    const auto queries = clustered(100, dim, 40, 4);
    const VectorIndex exact = VectorIndex::build(data, n, dim, "Flat");
    // Exact scan equals a double-precision brute force.
    std::vector<float> q(queries.begin(), queries.begin() + dim);
    l2_normalize(q.data(), dim);
    const auto top = exact.search(q.data(), 5);
    std::vector<std::pair<double, std::int64_t>> brute;
    for (std::size_t r = 0; r < n; ++r) {
        double s = 0;
        for (std::size_t j = 0; j < dim; ++j) s += static_cast<double>(exact.vector(r)[j]) * q[j];
        brute.emplace_back(-s, static_cast<std::int64_t>(r));
    }
    std::sort(brute.begin(), brute.end());
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(top[i].first, brute[i].second);
        EXPECT_NEAR(top[i].second, -brute[i].first, 1e-5);
    }
    std::printf("exact scan ISA: %s\n", exact_scan_isa());

    struct Family {
        const char* factory;
        SearchParams params;
        double min_recall;
    };
    SearchParams ivf, hnsw, none;
    ivf.nprobe = 8;
    hnsw.ef_search = 64;
    for (const Family& f : {Family{"IVF64,Flat", ivf, 0.9}, Family{"HNSW32", hnsw, 0.95}, Family{"IVF64,PQ12", ivf, 0.35},
                            Family{"PQ12", none, 0.35}, Family{"HNSW32,Flat", hnsw, 0.95}}) {
        const VectorIndex a = VectorIndex::build(data, n, dim, f.factory);
        const double r = recall_at_10(a, exact, queries, 100, f.params);
        std::printf("%-14s recall@10 vs exact = %.3f\n", f.factory, r);
        EXPECT_GE(r, f.min_recall) << f.factory;
        // Training is reproducible: a second build answers identically.
        const VectorIndex b = VectorIndex::build(data, n, dim, f.factory);
        EXPECT_EQ(a.search(q.data(), 10, f.params), b.search(q.data(), 10, f.params)) << f.factory;
    }
    // efSearch is honoured (FAISS 1.7.3 ignores it in search parameters; MESS sets it per search), also from
    // concurrent threads with different values.
    const VectorIndex graph = VectorIndex::build(data, n, dim, "HNSW16");
    EXPECT_EQ(graph.default_ef_search(), kDefaultEfSearch);
    SearchParams ef1, ef200;
    ef1.ef_search = 1;
    ef200.ef_search = 200;
    EXPECT_LT(recall_at_10(graph, exact, queries, 100, ef1), recall_at_10(graph, exact, queries, 100, ef200));
    std::vector<std::vector<std::pair<std::int64_t, float>>> want1, want200;
    for (std::size_t i = 0; i < 20; ++i) {
        want1.push_back(graph.search(queries.data() + i * dim, 10, ef1));
        want200.push_back(graph.search(queries.data() + i * dim, 10, ef200));
    }
    std::atomic<int> mismatches{0};
    auto worker = [&](const SearchParams& p, const std::vector<std::vector<std::pair<std::int64_t, float>>>& want) {
        for (int round = 0; round < 20; ++round)
            for (std::size_t i = 0; i < 20; ++i)
                if (graph.search(queries.data() + i * dim, 10, p) != want[i]) ++mismatches;
    };
    std::thread t1(worker, std::cref(ef1), std::cref(want1)), t2(worker, std::cref(ef200), std::cref(want200));
    t1.join();
    t2.join();
    EXPECT_EQ(mismatches.load(), 0);

    // More probes → recall does not drop.
    const VectorIndex ivf_index = VectorIndex::build(data, n, dim, "IVF64,Flat");
    SearchParams one, all;
    one.nprobe = 1;
    all.nprobe = 64;
    EXPECT_LE(recall_at_10(ivf_index, exact, queries, 100, one), recall_at_10(ivf_index, exact, queries, 100, all));
    EXPECT_NEAR(recall_at_10(ivf_index, exact, queries, 100, all), 1.0, 1e-9);
}

TEST(Search, AspectFusionRanksTheLayerMatchedTrackFirst) {
    // 3 tracks × 3 layers × 4 dims: "twin" matches the query in layer 2 only, "other" in layers 0-1 only.
    const std::size_t L = 3, D = 4;
    auto stack = [&](std::vector<std::vector<float>> layers) {
        std::vector<float> s;
        for (auto& l : layers) s.insert(s.end(), l.begin(), l.end());
        return s;
    };
    const auto query = stack({{1, 0, 0, 0}, {0, 1, 0, 0}, {0, 0, 1, 0}});
    const auto twin = stack({{0, 0, 0, 1}, {0, 0, 1, 0}, {0, 0, 1, 0.1f}});
    const auto other = stack({{1, 0, 0, 0.1f}, {0, 1, 0, 0}, {1, 0, 0, 0}});
    std::vector<IndexRecord> recs(3);
    std::vector<float> vectors;
    std::vector<std::uint16_t> layers;
    const char* names[] = {"query", "twin", "other"};
    int i = 0;
    for (const auto* s : {&query, &twin, &other}) {
        recs[static_cast<std::size_t>(i)].id = recs[static_cast<std::size_t>(i)].track_id = names[i];
        ++i;
        const auto v = LayerSpec::parse("flatten").apply(s->data(), L, D);
        vectors.insert(vectors.end(), v.begin(), v.end());
        for (std::size_t l = 0; l < L; ++l) {
            std::vector<float> x(s->begin() + static_cast<std::ptrdiff_t>(l * D), s->begin() + static_cast<std::ptrdiff_t>((l + 1) * D));
            l2_normalize(x.data(), D);
            for (float f : x) layers.push_back(float_to_half(f));
        }
    }
    const SearchIndex idx = build_index_from_vectors(IndexKind::track, recs, vectors, L * D, "Flat", layers, L, D);
    QueryOptions q;
    q.k = 2;
    EXPECT_EQ(ids(similar_tracks(idx, "query", q)).front(), "other");
    q.layer_weights = {0, 0, 1};
    EXPECT_EQ(ids(similar_tracks(idx, "query", q)).front(), "twin");
    q.layer_weights = {0.5, 0.5, 0};
    EXPECT_EQ(ids(similar_tracks(idx, "query", q)).front(), "other");
    // An outside query as a layer stack goes through the same fusion.
    q.layer_weights = {0, 0, 1};
    EXPECT_EQ(ids(search_vector(idx, query, q)).at(1), "twin");  // the query row itself is first
    q.layer_weights = {1, 1};
    EXPECT_THROW(similar_tracks(idx, "query", q), Error);
}

// Precomputed neighbour lists answer exactly what a scan answers: identical rows and score bits for every
// row (ties included: duplicated vectors), with filters and exclusions that the lists serve or hand to
// the scan when they run out; aspect queries and approximate families never read them.
TEST(Search, NeighbourListsEqualTheExactScan) {
    const std::size_t n = 1500, dim = 40;
    auto data = clustered(n, dim, 12, 11);
    for (std::size_t r = 0; r < 50; ++r)  // 50 exact duplicates of other rows: ties broken by row
        std::copy_n(data.begin() + static_cast<std::ptrdiff_t>((r + 100) * dim), dim, data.begin() + static_cast<std::ptrdiff_t>(r * dim));
    std::vector<IndexRecord> recs(n);
    for (std::size_t r = 0; r < n; ++r) {
        recs[r].id = recs[r].track_id = recs[r].recording_id = fmt::format("t{:04d}", r);
        recs[r].work_id = fmt::format("w{}", r % 7);
        recs[r].metadata["composer"] = r % 3 == 0 ? "Bach" : "Chopin";
    }
    SearchIndex idx = build_index_from_vectors(IndexKind::track, recs, data, dim, "Flat");
    std::size_t progress_calls = 0, last_done = 0;
    const auto lists = compute_neighbour_lists(idx.index, 30, [&](std::size_t done, std::size_t total) {
        ++progress_calls;
        last_done = done;
        EXPECT_EQ(total, n);
    });
    EXPECT_EQ(lists->k, 30u);
    EXPECT_EQ(progress_calls, 2u);
    EXPECT_EQ(last_done, n);
    for (std::size_t r = 0; r < n; ++r) {
        std::vector<float> q(idx.index.vector(r), idx.index.vector(r) + dim);
        l2_normalize(q.data(), dim);  // as every query is
        const auto scan = exact_top_k(idx.index.vectors().data(), n, dim, q.data(), 30);
        for (std::size_t j = 0; j < 30; ++j) {
            ASSERT_EQ(lists->rows[r * 30 + j], scan[j].first) << "row " << r << " rank " << j;
            ASSERT_EQ(lists->scores[r * 30 + j], scan[j].second) << "row " << r << " rank " << j;
        }
    }

    std::vector<QueryOptions> cases(5);
    cases[1].k = 5;
    cases[1].filters.push_back(Filter::parse("composer=bach"));  // a third pass: the lists serve it
    cases[2].k = 25;
    cases[2].filters.push_back(Filter::parse("composer=bach"));  // 25 Bach rows need > 30 candidates: scan
    cases[3].exclude_same = SameScope::work;
    cases[4].k = 60;                                              // beyond the lists: scan
    SearchIndex with_lists = build_index_from_vectors(IndexKind::track, recs, data, dim, "Flat");
    with_lists.neighbours = lists;
    for (const QueryOptions& q : cases)
        for (std::size_t r = 0; r < n; r += 37) {
            const auto a = similar_tracks(idx, recs[r].id, q), b = similar_tracks(with_lists, recs[r].id, q);
            ASSERT_EQ(a.size(), b.size());
            for (std::size_t i = 0; i < a.size(); ++i) {
                EXPECT_EQ(a[i].row, b[i].row);
                EXPECT_EQ(a[i].score, b[i].score);
            }
        }

    EXPECT_THROW(compute_neighbour_lists(idx.index, 0), Error);
    // k above n: every row, itself first.
    const SearchIndex small = build_index_from_vectors(IndexKind::track, {recs[0], recs[1], recs[2]},
                                                       std::vector<float>(data.begin() + 100 * dim, data.begin() + 103 * dim), dim, "Flat");
    const auto all = compute_neighbour_lists(small.index, 10);
    EXPECT_EQ(all->k, 3u);
    for (std::size_t r = 0; r < 3; ++r) EXPECT_EQ(all->rows[r * 3], static_cast<std::int64_t>(r));
}

// Wrong answers are refused, not given: non-finite vectors are never indexed, and a query that cannot rank
// (zero, NaN, silent audio) is an error naming why.
TEST(Search, NonFiniteVectorsAndEmptyQueriesAreRefused) {
    std::vector<float> vectors = {1, 0, 0, 1, std::nanf(""), 0};
    EXPECT_NE(test::error_message([&] { VectorIndex::build(vectors, 3, 2, "Flat"); }).find("vector 2 of 3 holds non-finite values"),
              std::string::npos);
    const Tiny tiny;
    const Searcher searcher(std::make_shared<const SearchIndex>(tiny.tracks()), {});
    SearchRequest r;
    r.vector.assign(Tiny::D, 0.0f);
    EXPECT_NE(test::error_message([&] { searcher.search(r); }).find("query vector is zero"), std::string::npos);
    r.vector[0] = std::numeric_limits<float>::infinity();
    EXPECT_NE(test::error_message([&] { searcher.search(r); }).find("non-finite"), std::string::npos);
    r.vector[0] = 1.0f;
    EXPECT_FALSE(searcher.search(r).hits.empty());  // a sound vector ranks
    // An audio query that is silent where it starts.
    Audio silence;
    silence.sample_rate = 24000;
    silence.samples.assign(24000 * 3, 0.0f);
    const auto dsp = open_encoder("dsp");
    EXPECT_NE(test::error_message([&] { embed_query_stack(*dsp, silence, 0.5, IndexKind::clip, 1); }).find("silent"), std::string::npos);
}

// A NaN in the feature store stops the index build and names the track (it would rank first for every query).
TEST(Search, IndexBuildRefusesNonFiniteFeaturesNamingTheTrack) {
    test::TempDir dir;
    fs::create_directories(dir / "audio");
    const Dataset ds = Dataset::folder(dir / "data", dir / "audio", "set");
    const FeatureStore store = ds.features();
    store.create();
    for (const std::string id : {"good", "poisoned"}) {
        write_file_atomic(dir / "audio" / (id + ".wav"), "x");  // listed by name; never decoded here
        std::vector<float> seg(2 * 3 * 4, 0.25f), agg(3 * 4, 0.25f);
        if (id == "poisoned") seg[5] = agg[5] = std::nanf("");
        write_npy(store.view_path(View::segments, id), NpyArray::from(seg, {2, 3, 4}));
        write_npy(store.view_path(View::aggregated, id), NpyArray::from(agg, {3, 4}));
        Sidecar side;
        side.track_id = id;
        side.windows = {{0.0, 5.0}, {2.5, 7.5}};
        side.views = {View::segments, View::aggregated};
        store.write_sidecar(side);
    }
    for (IndexKind kind : {IndexKind::track, IndexKind::clip}) {
        BuildParams p;
        p.kind = kind;
        const std::string msg = test::error_message([&] { build_index(ds, p); });
        EXPECT_NE(msg.find("track poisoned"), std::string::npos) << msg;
        EXPECT_NE(msg.find("non-finite"), std::string::npos) << msg;
    }
}

// What a new user meets: an unknown id suggests the closest ones, a filter on a column nobody has is an
// error (not an empty answer), and a product quantiser that does not divide the dimension says so in words.
TEST(Search, HelpfulErrorsForIdsFiltersAndFactories) {
    const Tiny tiny;
    const Searcher searcher(std::make_shared<const SearchIndex>(tiny.tracks()), {});
    const std::string some = searcher.index().records.front().track_id;
    SearchRequest r;
    r.track_id = some.substr(0, some.size() - 1);  // one character short
    const std::string msg = test::error_message([&] { searcher.search(r); });
    EXPECT_NE(msg.find("closest: " + some), std::string::npos) << msg;
    r.track_id = some;
    r.options.filters = {Filter::parse("composer=Bach")};
    const std::string filter = test::error_message([&] { searcher.search(r); }, ErrorKind::usage);
    EXPECT_NE(filter.find("unknown filter column 'composer'"), std::string::npos) << filter;
    EXPECT_NE(filter.find("work_id"), std::string::npos) << filter;
    r.options.filters = {Filter::parse("work=nope")};
    EXPECT_TRUE(searcher.search(r).hits.empty());  // a known column with no match: an empty answer
    std::vector<float> v(40 * 76, 0.5f);
    const std::string pq = test::error_message([&] { VectorIndex::build(v, 40, 76, "IVF4,PQ32"); }, ErrorKind::usage);
    EXPECT_NE(pq.find("76 dimensions, which 32 does not divide"), std::string::npos) << pq;
    EXPECT_NE(pq.find("PQ19"), std::string::npos) << pq;
}

namespace {

// A diagonal aspect model over 2 layers × 2 dims that keeps only the dims of `keep` (mean 0, scale 1).
AspectModel keep_dims(const std::string& name, std::vector<float> keep) {
    AspectModel m;
    m.name = name;
    m.rung = AspectRung::diagonal;
    m.in_dim = m.out_dim = 4;
    m.mean.assign(4, 0.0f);
    m.scale.assign(4, 1.0f);
    m.weights = std::move(keep);
    return m;
}

// Four tracks with raw [2 layers × 2 dims] stacks; aspect "tempo" reads layer 0, "dynamics" layer 1.
SearchIndex learned_index() {
    const std::vector<std::vector<float>> stacks = {{1, 0, 1, 0}, {1, 0.1f, 0, 1}, {0, 1, 1, 0.1f}, {0.7f, 0.7f, 0.7f, 0.7f}};
    const char* names[] = {"query", "same_tempo", "same_dynamics", "between"};
    std::vector<IndexRecord> recs(4);
    std::vector<float> vectors;
    for (std::size_t i = 0; i < 4; ++i) {
        recs[i].id = recs[i].track_id = names[i];
        vectors.insert(vectors.end(), stacks[i].begin(), stacks[i].end());
    }
    SearchIndex idx = build_index_from_vectors(IndexKind::track, recs, vectors, 4, "Flat");
    AspectSpaces& sp = idx.aspect_spaces;
    sp.models.encoder = "dsp";
    sp.models.layers = {0, 1};
    sp.models.layer_dim = 2;
    sp.stack_layers = 2;
    sp.models.aspects["tempo"] = keep_dims("tempo", {1, 1, 0, 0});
    sp.models.aspects["dynamics"] = keep_dims("dynamics", {0, 0, 1, 1});
    for (const auto& [name, m] : sp.models.aspects)
        for (const auto& s : stacks) {
            const auto y = m.apply_normalised(s.data(), 1);
            sp.vectors[name].insert(sp.vectors[name].end(), y.begin(), y.end());
        }
    return idx;
}

}  // namespace

// Learned aspect spaces rank by the named aspect's space only, `unlike` turns an aspect against the
// ranking, and every hit carries its cosine in each space (hand-computed: tempo space of "same_tempo" is
// (1, 0.1)/|.| against the query's (1, 0): 0.995; its dynamics space (0, 1) against (1, 0): 0).
TEST(Search, LearnedAspectSpacesRankAndExplainHits) {
    const auto idx = std::make_shared<const SearchIndex>(learned_index());
    const Searcher searcher(idx, {});
    SearchRequest r;
    r.track_id = "query";
    r.options.k = 3;
    r.aspects = {{"tempo", 1.0}};
    SearchResult res = searcher.search(r);
    EXPECT_EQ(ids(res.hits).front(), "same_tempo");
    EXPECT_NEAR(res.hits.front().score, 1 / std::sqrt(1.01), 1e-5);
    EXPECT_NEAR(res.hits.front().aspect_scores.at("tempo"), 1 / std::sqrt(1.01), 1e-5);
    EXPECT_NEAR(res.hits.front().aspect_scores.at("dynamics"), 0.0, 1e-6);
    EXPECT_EQ(res.learned_aspects.at("tempo"), 1.0);
    r.aspects = {{"dynamics", 1.0}};
    EXPECT_EQ(ids(searcher.search(r).hits).front(), "same_dynamics");
    // Similar dynamics but unlike tempo: "same_dynamics" (tempo cosine 0) beats "between" (tempo 0.707).
    r.unlike = {{"tempo", 1.0}};
    res = searcher.search(r);
    EXPECT_EQ(ids(res.hits).front(), "same_dynamics");
    EXPECT_EQ(ids(res.hits).back(), "same_tempo");
    // An outside query as a raw [2 × 2] stack is mapped by the models; the JSON form explains each hit.
    SearchRequest v;
    v.vector = {1, 0, 1, 0};
    v.aspects = {{"tempo", 1.0}};
    v.options.k = 1;
    const SearchResult vr = searcher.search(v);
    EXPECT_TRUE(ids(vr.hits).front() == "query" || ids(vr.hits).front() == "same_tempo");
    EXPECT_TRUE(hits_to_json(vr)[0].contains("aspects"));
    // Errors: an unknown unlike aspect; an aspect without a learned space (probed layers rank then: this index has
    // none); a stack of the wrong size.
    r.unlike = {{"timbre", 1.0}};
    EXPECT_THROW(searcher.search(r), Error);
    r.unlike.clear();
    r.aspects = {{"tempo", 1.0}, {"harmony", 1.0}};
    EXPECT_THROW(searcher.search(r), Error);
    v.vector = {1, 0, 1};
    EXPECT_THROW(searcher.search(v), Error);
}

// Words map to directions through the documented vocabulary; unknown words are reported, never guessed.
TEST(Search, TextQueriesMapWordsToDirections) {
    TextQuery t = parse_text_query("like this but slower and more restrained");
    EXPECT_EQ(t.more_less, (std::map<std::string, int>{{"tempo", -1}, {"dynamics", -1}}));
    EXPECT_TRUE(t.unknown.empty());
    t = parse_text_query("Like this, but darker, less intense and groovier");
    EXPECT_EQ(t.more_less, (std::map<std::string, int>{{"brightness", -1}, {"dynamics", -1}}));
    EXPECT_EQ(t.unknown, std::vector<std::string>{"groovier"});
    EXPECT_THROW(parse_text_query("faster but slower"), Error);
    EXPECT_TRUE(parse_text_query("").more_less.empty());
}

// More/less keep only the rows whose predicted amount (the space's direction) passes the query's; the
// ranking is unchanged. Tempo's direction reads the second dim of layer 0 (query 0: every other row more),
// dynamics' the first dim of layer 1 (query 1: no row more).
TEST(Search, MoreAndLessFilterByLearnedDirections) {
    SearchIndex built = learned_index();
    built.aspect_spaces.models.aspects["tempo"].direction = {0, 1, 0, 0};
    built.aspect_spaces.models.aspects["dynamics"].direction = {0, 0, 1, 0};
    const Searcher searcher(std::make_shared<const SearchIndex>(std::move(built)), {});
    SearchRequest r;
    r.track_id = "query";
    r.options.k = 3;
    r.aspects = {{"tempo", 1.0}};
    r.more_less = {{"tempo", 1}};
    EXPECT_EQ(ids(searcher.search(r).hits), (std::vector<std::string>{"same_tempo", "between", "same_dynamics"}));
    r.more_less = {{"tempo", -1}};
    EXPECT_TRUE(searcher.search(r).hits.empty());
    r.more_less = {{"dynamics", 1}};
    EXPECT_TRUE(searcher.search(r).hits.empty());
    r.more_less.clear();
    r.text = "like this but less intense";
    EXPECT_EQ(searcher.search(r).hits.size(), 3u);
    r.text = "like this but groovier";
    EXPECT_THROW(searcher.search(r), Error);
    r.text = "brighter";  // a known word, but this index has no brightness direction
    EXPECT_THROW(searcher.search(r), Error);
}

// The reductions of a passage similarity matrix, by hand: S = [[.9, .1], [.2, .8], [.7, .6]] and
// T = [[.9, .85], [.88, .1]] (greedy pairs take .9, then only .1 is left: .5).
TEST(Search, RerankReductionsGolden) {
    const std::vector<float> s = {0.9f, 0.1f, 0.2f, 0.8f, 0.7f, 0.6f}, t = {0.9f, 0.85f, 0.88f, 0.1f};
    auto red = [](const std::vector<float>& m, std::size_t rows, std::size_t cols, Reduction r, std::size_t k = 3) {
        return reduce_similarities(m, rows, cols, RerankParams{r, 50, k});
    };
    EXPECT_NEAR(red(s, 3, 2, Reduction::min), 0.9, 1e-6);
    EXPECT_NEAR(red(s, 3, 2, Reduction::mean_min), 0.8, 1e-6);
    EXPECT_NEAR(red(s, 3, 2, Reduction::best_k, 2), 0.85, 1e-6);
    EXPECT_NEAR(red(s, 3, 2, Reduction::pairs), 0.85, 1e-6);
    EXPECT_NEAR(red(t, 2, 2, Reduction::pairs), 0.5, 1e-6);
    EXPECT_NEAR(red(t, 2, 2, Reduction::best_k, 2), 0.89, 1e-6);
    // Both ways: S's row maxima .9, .8, .7 (mean .8) and column maxima .9, .8 (.85): .825; the transpose agrees.
    const std::vector<float> st = {0.9f, 0.2f, 0.7f, 0.1f, 0.8f, 0.6f};
    EXPECT_NEAR(red(s, 3, 2, Reduction::mean_min_sym), 0.825, 1e-6);
    EXPECT_NEAR(red(st, 2, 3, Reduction::mean_min_sym), 0.825, 1e-6);
    EXPECT_NEAR(red(st, 2, 3, Reduction::mean_min), 0.85, 1e-6);  // one way, it is not symmetric
    EXPECT_NEAR(red(t, 2, 2, Reduction::mean_min_sym), (0.89 + 0.875) / 2, 1e-6);
    EXPECT_EQ(parse_reduction("mean-min-sym"), Reduction::mean_min_sym);
    EXPECT_THROW(red({}, 0, 0, Reduction::min), Error);
    EXPECT_EQ(parse_reduction("mean-min"), Reduction::mean_min);
    EXPECT_THROW(parse_reduction("avg"), Error);
}

// Tracks from passages: "one" matches only the query's first window exactly, "both" both windows well;
// the closest pair prefers "one", the mean of row minima "both".
TEST(Search, RerankRanksTracksFromPassageMatrices) {
    const std::vector<std::pair<std::string, std::vector<float>>> windows = {
        {"query", {1, 0}}, {"query", {0, 1}}, {"one", {1, 0}}, {"one", {1, 0}}, {"both", {0.9f, 0.44f}}, {"both", {0.44f, 0.9f}}};
    std::vector<IndexRecord> recs;
    std::vector<float> vectors;
    for (std::size_t i = 0; i < windows.size(); ++i) {
        IndexRecord r;
        r.track_id = windows[i].first;
        r.segment_idx = static_cast<int>(i % 2);
        r.id = fmt::format("ds:{}:{:05d}", r.track_id, r.segment_idx);
        r.start_sec = 10.0 * r.segment_idx;
        r.end_sec = r.start_sec + 5;
        recs.push_back(r);
        vectors.insert(vectors.end(), windows[i].second.begin(), windows[i].second.end());
    }
    const Searcher searcher(std::make_shared<const SearchIndex>(build_index_from_vectors(IndexKind::clip, recs, vectors, 2, "Flat")), {});
    SearchRequest r;
    r.track_id = "query";
    r.options.k = 2;
    r.rerank = RerankParams{Reduction::min, 10, 3};
    SearchResult res = searcher.search(r);
    ASSERT_EQ(res.hits.size(), 2u);
    EXPECT_EQ(res.hits[0].record->track_id, "one");
    EXPECT_NEAR(res.hits[0].score, 1.0, 1e-5);
    r.rerank->reduction = Reduction::mean_min;
    res = searcher.search(r);
    EXPECT_EQ(res.hits[0].record->track_id, "both");
    EXPECT_NEAR(res.hits[0].score, 0.9 / std::hypot(0.9, 0.44), 1e-5);
}

// Passages with context: "perf" plays the query's sequence A B C D E (each window a little off), "decoy"
// holds C exactly between unrelated windows. The window alone prefers the decoy; with two windows of context
// each side the performance wins, at the mean of its five pairs' cosine (2/√5). The query's own track is
// never a hit (every window of it shares audio with the query's context).
TEST(Search, ContextScoresPassagesByTheirNeighbours) {
    const std::size_t dim = 6;
    auto unit = [&](int i, int j, float w) {
        std::vector<float> v(dim, 0.0f);
        v[static_cast<std::size_t>(i)] += 1.0f;
        if (j >= 0) v[static_cast<std::size_t>(j)] += w;
        const float n = std::sqrt(std::inner_product(v.begin(), v.end(), v.begin(), 0.0f));
        for (float& x : v) x /= n;
        return v;
    };
    std::vector<IndexRecord> recs;
    std::vector<float> vectors;
    auto add = [&](const std::string& track, const std::vector<std::vector<float>>& windows) {
        for (std::size_t i = 0; i < windows.size(); ++i) {
            IndexRecord r;
            r.track_id = r.recording_id = r.work_id = track;
            r.segment_idx = static_cast<int>(i);
            r.id = fmt::format("ds:{}:{:05d}", track, i);
            r.start_sec = 2.5 * static_cast<double>(i);
            r.end_sec = r.start_sec + 5;
            recs.push_back(r);
            vectors.insert(vectors.end(), windows[i].begin(), windows[i].end());
        }
    };
    add("query", {unit(0, -1, 0), unit(1, -1, 0), unit(2, -1, 0), unit(3, -1, 0), unit(4, -1, 0)});
    add("perf", {unit(0, 1, 0.5f), unit(1, 2, 0.5f), unit(2, 3, 0.5f), unit(3, 4, 0.5f), unit(4, 0, 0.5f)});
    add("decoy", {unit(5, -1, 0), unit(5, -1, 0), unit(2, -1, 0), unit(5, -1, 0), unit(5, -1, 0)});
    const Searcher searcher(std::make_shared<const SearchIndex>(build_index_from_vectors(IndexKind::clip, recs, vectors, dim, "Flat")), {});
    SearchRequest r;
    r.clip_id = "ds:query:00002";
    r.options.k = 3;
    SearchResult alone = searcher.search(r);
    ASSERT_FALSE(alone.hits.empty());
    EXPECT_EQ(alone.hits[0].record->id, "ds:decoy:00002");
    r.context = 2;
    const SearchResult with = searcher.search(r);
    ASSERT_FALSE(with.hits.empty());
    EXPECT_EQ(with.hits[0].record->id, "ds:perf:00002");
    EXPECT_NEAR(with.hits[0].score, 2 / std::sqrt(5.0), 1e-5);
    for (const Hit& h : with.hits) EXPECT_NE(h.record->track_id, "query");
    // A track id and start name the same window.
    SearchRequest by_start = r;
    by_start.clip_id.clear();
    by_start.track_id = "query";
    by_start.start_sec = 5.2;
    EXPECT_EQ(searcher.search(by_start).hits[0].record->id, "ds:perf:00002");
    // Refused: out of range, an outside vector, together with a track reranking.
    SearchRequest bad = r;
    bad.context = -1;
    EXPECT_THROW(searcher.search(bad), Error);
    bad = r;
    bad.clip_id.clear();
    bad.vector = unit(2, -1, 0);
    EXPECT_THROW(searcher.search(bad), Error);
    bad = r;
    bad.rerank = RerankParams{};
    EXPECT_THROW(searcher.search(bad), Error);
}

// Cost: milliseconds.
TEST(Search, ShardsSplitByTrackMergeToTheSingleIndexAnswer) {
    std::mt19937 g(21);
    std::normal_distribution<float> d(0, 1);
    const std::size_t n = 400, dim = 24;
    std::vector<IndexRecord> all, part[2];
    std::vector<float> vectors(n * dim), part_vectors[2];
    for (auto& v : vectors) v = d(g);
    for (std::size_t i = 0; i < n; ++i) {
        IndexRecord r;
        r.id = r.track_id = r.recording_id = r.work_id = fmt::format("t{:03d}", i);
        r.dataset_id = "ds";
        all.push_back(r);
        const std::size_t s = (i * 7 + 3) % 5 < 2 ? 0 : 1;  // an uneven split by track
        part[s].push_back(r);
        part_vectors[s].insert(part_vectors[s].end(), vectors.begin() + static_cast<std::ptrdiff_t>(i * dim),
                               vectors.begin() + static_cast<std::ptrdiff_t>((i + 1) * dim));
    }
    const SearchIndex whole = build_index_from_vectors(IndexKind::track, all, vectors, dim, "Flat");
    const SearchIndex shard0 = build_index_from_vectors(IndexKind::track, part[0], part_vectors[0], dim, "Flat");
    const SearchIndex shard1 = build_index_from_vectors(IndexKind::track, part[1], part_vectors[1], dim, "Flat");
    QueryOptions o;
    o.k = 10;
    for (int q = 0; q < 20; ++q) {
        std::vector<float> query(dim);
        for (auto& v : query) v = d(g);
        const auto want = search_vector(whole, query, o);
        const auto got = merge_shard_hits({search_vector(shard0, query, o), search_vector(shard1, query, o)}, o.k);
        ASSERT_EQ(got.size(), want.size());
        for (std::size_t i = 0; i < want.size(); ++i) {
            EXPECT_EQ(got[i].hit.record->id, want[i].record->id) << "query " << q << " rank " << i;
            EXPECT_EQ(got[i].hit.score, want[i].score);
        }
    }
    EXPECT_TRUE(merge_shard_hits({}, 5).empty());
}

// A compressed build streams the rows through a float16 scratch file (removed with the index) and keeps no
// float32 vectors or layers; a track filter (one shard) indexes only its tracks. Cost: about 0.1 s.
TEST(Search, CompressedBuildFromTheStoreAndOneShard) {
    test::TempDir dir;
    fs::create_directories(dir / "audio");
    const Dataset ds = Dataset::folder(dir / "data", dir / "audio", "set");
    const FeatureStore store = ds.features();
    store.create();
    std::mt19937 g(4);
    std::normal_distribution<float> d(0, 1);
    for (int t = 0; t < 20; ++t) {
        const std::string id = fmt::format("track{:02d}", t);
        write_file_atomic(dir / "audio" / (id + ".wav"), "x");  // listed by name; never decoded here
        std::vector<float> seg(8 * 3 * 16);
        for (auto& v : seg) v = d(g);
        write_npy(store.view_path(View::segments, id), NpyArray::from(seg, {8, 3, 16}));
        Sidecar side;
        side.track_id = id;
        for (int w = 0; w < 8; ++w) side.windows.push_back({2.5 * w, 2.5 * w + 5});
        side.views = {View::segments};
        store.write_sidecar(side);
    }
    BuildParams p;
    p.kind = IndexKind::clip;
    p.layer_spec = LayerSpec::parse("1");
    const SearchIndex flat = build_index(ds, p);
    p.index_type = "ivf-sq8";
    p.scratch_dir = dir / "scratch";
    {
        const SearchIndex idx = build_index(ds, p);
        ASSERT_TRUE(idx.index.is_compressed());
        EXPECT_EQ(idx.size(), 160u);
        EXPECT_EQ(idx.index.factory(), "IVF32,SQ8");
        EXPECT_FALSE(idx.has_layers());
        EXPECT_TRUE(idx.index.vectors().empty());
        QueryOptions o;
        o.k = 5;
        o.exact = true;
        for (std::size_t row : {0u, 77u, 159u}) {  // an exact scan of the float16 rows finds the row itself first
            const auto hits = search_vector(idx, flat.index.row_vector(row), o);
            EXPECT_EQ(hits.front().record->id, flat.records[row].id);
            EXPECT_NEAR(hits.front().score, 1.0f, 1e-3);
        }
        EXPECT_EQ(std::distance(fs::directory_iterator(dir / "scratch"), fs::directory_iterator()), 1);
    }
    EXPECT_EQ(std::distance(fs::directory_iterator(dir / "scratch"), fs::directory_iterator()), 0);
    p.nlist = 8;  // mess index build --nlist
    EXPECT_EQ(build_index(ds, p).index.factory(), "IVF8,SQ8");
    p.nlist = 0;
    p.index_type = "flat";
    p.track_filter = [](const std::string& id) { return id < "track05"; };
    std::vector<std::string> skipped;
    const SearchIndex part = build_index(ds, p, &skipped);
    EXPECT_EQ(part.size(), 5u * 8u);
    EXPECT_TRUE(skipped.empty());
}
