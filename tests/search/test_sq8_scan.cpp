// MESS's scan of IVF-SQ8 lists (src/search/sq8_scan.cpp): the uint8 × float kernel of every instruction set
// against hand-computed and double-precision values, the candidates against FAISS's own search of the same
// index (same rows and scores), FAISS's decoder as the definition of a code's value, and degenerate indexes.
#include <algorithm>
#include <future>
#include <random>

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_io.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/index_factory.h>
#include <gtest/gtest.h>
#include <omp.h>

#include "../../src/search/sq8_scan.hpp"  // the scan under test (internal to the module)
#include "mess/search.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
using detail::Sq8Isa;

namespace {

// FAISS's OpenMP regions on one thread while it lives: k-means over a few thousand rows opens hundreds of
// teams, and on a loaded machine each waits for a descheduled thread (6.7 s instead of 0.03 s here).
class OneThread {
public:
    OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
    ~OneThread() { omp_set_num_threads(saved_); }
    OneThread(const OneThread&) = delete;
    OneThread& operator=(const OneThread&) = delete;

private:
    int saved_;
};

std::vector<Sq8Isa> supported_isas() {
    std::vector<Sq8Isa> out;
    for (Sq8Isa isa : {Sq8Isa::avx512, Sq8Isa::avx2, Sq8Isa::baseline})
        if (detail::sq8_isa_supported(isa)) out.push_back(isa);
    return out;
}

// `n` normalised rows around `clusters` centres, the spread comparable to the centres' (neighbours cross borders).
std::vector<float> clustered(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed) {
    std::mt19937 g(3);
    std::normal_distribution<float> normal(0, 1);
    std::vector<float> centres(clusters * dim), out(n * dim);
    for (float& c : centres) c = normal(g);
    std::mt19937 r(seed);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = r() % clusters;
        for (std::size_t j = 0; j < dim; ++j) out[i * dim + j] = centres[c * dim + j] + 0.8f * normal(r);
        l2_normalize(out.data() + i * dim, dim);
    }
    return out;
}

// An IVF-SQ8 index (inner product) trained on `train` rows, holding the first `add` of them.
std::unique_ptr<faiss::IndexIVFScalarQuantizer> sq8_index(const std::vector<float>& rows, std::size_t dim, std::size_t nlist,
                                                          std::size_t add, bool by_residual) {
    std::unique_ptr<faiss::Index> idx(faiss::index_factory(static_cast<int>(dim), fmt::format("IVF{},SQ8", nlist).c_str(),
                                                            faiss::METRIC_INNER_PRODUCT));
    auto* sq = dynamic_cast<faiss::IndexIVFScalarQuantizer*>(idx.get());
    EXPECT_NE(sq, nullptr);
    idx.release();
    std::unique_ptr<faiss::IndexIVFScalarQuantizer> out(sq);
    out->by_residual = by_residual;
    out->train(static_cast<faiss::Index::idx_t>(rows.size() / dim), rows.data());
    out->add(static_cast<faiss::Index::idx_t>(add), rows.data());
    return out;
}

using Candidates = std::vector<std::pair<std::int64_t, float>>;

// FAISS's own search of `index` for one query over `nprobe` lists (through a projected index's transform).
std::pair<std::vector<float>, std::vector<faiss::Index::idx_t>> faiss_search(const faiss::Index& index, const float* query, std::size_t fetch,
                                                                              std::size_t nprobe) {
    std::vector<float> d(fetch);
    std::vector<faiss::Index::idx_t> ids(fetch);
    faiss::SearchParametersIVF ivf;
    ivf.nprobe = nprobe;
    faiss::SearchParametersPreTransform pre;
    pre.index_params = &ivf;
    const bool projected = dynamic_cast<const faiss::IndexPreTransform*>(&index) != nullptr;
    index.search(1, query, static_cast<faiss::Index::idx_t>(fetch), d.data(), ids.data(), projected ? &pre : static_cast<faiss::SearchParameters*>(&ivf));
    return {d, ids};
}

// `got` holds FAISS's scores (float tolerance) in FAISS's order, and FAISS's rows wherever scores are not tied.
void expect_faiss_order(const Candidates& got, const std::vector<float>& d, const std::vector<faiss::Index::idx_t>& ids) {
    ASSERT_EQ(got.size(), d.size());
    for (std::size_t i = 0; i < d.size(); ++i) {
        EXPECT_NEAR(got[i].second, d[i], 1e-4) << "rank " << i;
        const bool tied = (i > 0 && std::abs(d[i] - d[i - 1]) < 1e-4) || (i + 1 < d.size() && std::abs(d[i + 1] - d[i]) < 1e-4);
        if (!tied) {
            EXPECT_EQ(got[i].first, ids[i]) << "rank " << i;
        }
    }
}

}  // namespace

// Golden values by hand: 0·1 + 255·2 + 128·3 = 894; 768 codes of 255 with weight 1 = 195 840 (exact in float).
// Then 101 dimensions (every block width and a tail) against a double-precision sum. Cost: microseconds.
TEST(Sq8Scan, KernelGoldenValuesOnEveryInstructionSet) {
    const std::vector<std::uint8_t> small = {0, 255, 128};
    const std::vector<float> w3 = {1, 2, 3};
    const std::vector<std::uint8_t> full(768, 255);
    const std::vector<float> ones(768, 1.0f);
    std::mt19937 g(5);
    constexpr std::size_t dim = 101, n = 3;
    std::vector<std::uint8_t> codes(n * dim);
    std::vector<float> w(dim);
    for (auto& c : codes) c = static_cast<std::uint8_t>(g() & 255);
    for (auto& x : w) x = std::uniform_real_distribution<float>(-1, 1)(g);
    for (Sq8Isa isa : supported_isas()) {
        SCOPED_TRACE(detail::sq8_isa_name(isa));
        float out = 0;
        detail::sq8_dots(isa, small.data(), 1, 3, w3.data(), &out);
        EXPECT_EQ(out, 894.0f);
        detail::sq8_dots(isa, full.data(), 1, 768, ones.data(), &out);
        EXPECT_EQ(out, 195840.0f);
        std::vector<float> got(n);
        detail::sq8_dots(isa, codes.data(), n, dim, w.data(), got.data());
        for (std::size_t r = 0; r < n; ++r) {
            double want = 0;
            for (std::size_t j = 0; j < dim; ++j) want += static_cast<double>(w[j]) * codes[r * dim + j];
            EXPECT_NEAR(got[r], want, 1e-4 * std::max(1.0, std::abs(want))) << "row " << r;
        }
    }
    EXPECT_EQ(detail::sq8_isa_name(detail::sq8_best_isa()), std::string(sq8_scan_isa()));
    EXPECT_STREQ(sq8_scan_isa(), exact_scan_isa());  // the same CPU features pick both (avx512f, avx2 + fma, baseline)
}

// The integer kernel (VNNI where the CPU has it) against a plain integer sum: exact equality for every block
// shape (dims 3, 64, 101, 256, 768: no full block, one, a masked tail; 7 rows: four at a time and the rest), with
// the extreme values (255 × ±127 everywhere). Cost: microseconds.
TEST(Sq8Scan, Int8KernelEqualsTheIntegerSum) {
    std::mt19937 g(11);
    for (const std::size_t dim : {3u, 64u, 101u, 256u, 768u})
        for (const bool extreme : {false, true}) {
        SCOPED_TRACE(fmt::format("dim {}{}", dim, extreme ? ", extremes" : ""));
        constexpr std::size_t n = 7;
        std::vector<std::uint8_t> codes(n * dim);
        std::vector<std::int8_t> w((dim + 63) / 64 * 64, 0);  // zero-padded to a multiple of 64, as documented
        for (auto& c : codes) c = extreme ? std::uint8_t{255} : static_cast<std::uint8_t>(g() & 255);
        for (std::size_t j = 0; j < dim; ++j)
            w[j] = static_cast<std::int8_t>(extreme ? 127 : static_cast<int>(g() % 255) - 127);
        std::vector<std::int32_t> got(n);
        detail::sq8_dots_int8(codes.data(), n, dim, w.data(), got.data());
        for (std::size_t r = 0; r < n; ++r) {
            std::int64_t want = 0;
            for (std::size_t j = 0; j < dim; ++j) want += static_cast<std::int64_t>(codes[r * dim + j]) * w[j];
            EXPECT_EQ(got[r], want) << "row " << r;
        }
    }
    std::int32_t none = 7;
    detail::sq8_dots_int8(nullptr, 0, 64, nullptr, &none);
    EXPECT_EQ(none, 7) << "no rows: nothing written";
}

// 8-bit query weights: every candidate's score within the documented bound of its exact code score (s/2 · Σ c_d
// ≤ max|w|/254 · 255 · dim), and the exact re-ranking of the candidates (what the compressed index does) gives
// the same top 10 as re-ranking the exact scan's candidates, on clustered rows whose neighbours cross list
// borders. Cost: about 0.1 s (4000 × 64 rows, IVF16, two trainings).
TEST(Sq8Scan, Int8ScoringStaysWithinItsBoundAndKeepsTheReRankedTop) {
    const OneThread one;
    constexpr std::size_t dim = 64, n = 4000, nlist = 16, fetch = 40, nprobe = 4, k = 10;
    const auto rows = clustered(n, dim, 24, 4);
    const auto queries = clustered(8, dim, 24, 5);
    for (const bool residual : {true, false}) {
        SCOPED_TRACE(residual ? "by residual" : "direct");
        auto index = sq8_index(rows, dim, nlist, n, residual);
        index->make_direct_map(true);
        const float* vdiff = index->sq.trained.data() + dim;
        for (std::size_t q = 0; q < 8; ++q) {
            const float* query = queries.data() + q * dim;
            float top = 0;
            for (std::size_t d = 0; d < dim; ++d) top = std::max(top, std::abs(query[d] * vdiff[d] / 255.0f));
            const double bound = top / 254.0 * 255.0 * dim + 1e-4;
            const auto exact = detail::sq8_candidates(*index, query, fetch, nprobe, detail::Sq8Scoring::exact);
            const auto rounded = detail::sq8_candidates(*index, query, fetch, nprobe, detail::Sq8Scoring::int8);
            ASSERT_EQ(rounded.size(), exact.size());
            auto reranked = [&](const Candidates& c) {
                std::vector<std::pair<double, std::int64_t>> scored;
                for (const auto& [row, code_score] : c) {
                    std::vector<float> x(dim);
                    index->reconstruct(row, x.data());
                    double dot = 0;
                    for (std::size_t j = 0; j < dim; ++j) dot += static_cast<double>(x[j]) * query[j];
                    EXPECT_LE(std::abs(code_score - dot), &c == &rounded ? bound : 1e-4) << "row " << row;
                    const float* original = rows.data() + static_cast<std::size_t>(row) * dim;
                    double exact_dot = 0;
                    for (std::size_t j = 0; j < dim; ++j) exact_dot += static_cast<double>(original[j]) * query[j];
                    scored.emplace_back(-exact_dot, row);
                }
                std::sort(scored.begin(), scored.end());
                std::vector<std::int64_t> best;
                for (std::size_t i = 0; i < k; ++i) best.push_back(scored[i].second);
                return best;
            };
            EXPECT_EQ(reranked(rounded), reranked(exact)) << "query " << q;
        }
    }
}

// The candidates are FAISS's own: the same scores (float tolerance) in the same order, the same rows wherever
// the scores are not tied, with and without residual encoding; and each score is the query's inner product
// with the vector FAISS's decoder reconstructs. Cost: 0.03 s idle, 0.5 s on the loaded 2-core machine (2000 × 48 rows, IVF16, two trainings).
TEST(Sq8Scan, CandidatesEqualFaissSearchAndDecoder) {
    const OneThread one;
    constexpr std::size_t dim = 48, n = 2000, nlist = 16, fetch = 40, nprobe = 4;
    const auto rows = clustered(n, dim, 24, 1);
    const auto queries = clustered(8, dim, 24, 2);
    for (const bool residual : {true, false}) {
        SCOPED_TRACE(residual ? "by residual" : "direct");
        auto index = sq8_index(rows, dim, nlist, n, residual);
        ASSERT_EQ(detail::as_sq8(*index), index.get());
        index->make_direct_map(true);
        for (std::size_t q = 0; q < 8; ++q) {
            const float* query = queries.data() + q * dim;
            const auto [d, ids] = faiss_search(*index, query, fetch, nprobe);
            const auto got = detail::sq8_candidates(*index, query, fetch, nprobe);
            expect_faiss_order(got, d, ids);
            for (std::size_t i = 0; i < got.size(); ++i) {
                std::vector<float> x(dim);
                index->reconstruct(got[i].first, x.data());  // centroid + decoded residual, by FAISS
                double dot = 0;
                for (std::size_t j = 0; j < dim; ++j) dot += static_cast<double>(x[j]) * query[j];
                EXPECT_NEAR(got[i].second, dot, 1e-4) << "rank " << i;
            }
        }
    }
}

// Most lists empty (5 rows in 16 lists), nprobe past nlist (every list), more candidates asked than rows
// held, an empty index, a zero count, and the indexes the scan leaves to FAISS. Cost: 0.02–0.2 s.
TEST(Sq8Scan, DegenerateIndexesAndWhatItDoesNotHandle) {
    const OneThread one;
    constexpr std::size_t dim = 32, n = 1000;
    const auto rows = clustered(n, dim, 10, 3);
    const float* q = rows.data() + 7 * dim;
    const auto few = sq8_index(rows, dim, 16, 5, true);
    const auto got = detail::sq8_candidates(*few, q, 50, 100);
    ASSERT_EQ(got.size(), 5u);
    std::vector<float> d(50);
    std::vector<faiss::Index::idx_t> ids(50);
    faiss::SearchParametersIVF sp;
    sp.nprobe = 16;
    few->search(1, q, 50, d.data(), ids.data(), &sp);
    for (std::size_t i = 0; i < 5; ++i) EXPECT_NEAR(got[i].second, d[i], 1e-4);
    EXPECT_EQ(ids[5], -1) << "FAISS too holds only five";
    // nprobe 0: the index's own (1 by default in FAISS): one list, so no more rows than that list holds.
    EXPECT_LE(detail::sq8_candidates(*few, q, 50, 0).size(), 5u);
    const auto empty = sq8_index(rows, dim, 16, 0, true);
    EXPECT_TRUE(detail::sq8_candidates(*empty, q, 10, 16).empty());
    EXPECT_NE(test::error_message([&] { detail::sq8_candidates(*few, q, 0, 4); }, ErrorKind::usage).find("at least one candidate"),
              std::string::npos);
    for (const char* other : {"IVF16,SQ4", "IVF16,SQfp16", "IVF16,PQ8", "IVF16,Flat"}) {
        std::unique_ptr<faiss::Index> idx(faiss::index_factory(static_cast<int>(dim), other, faiss::METRIC_INNER_PRODUCT));
        EXPECT_EQ(detail::as_sq8(*idx), nullptr) << other;
    }
    std::unique_ptr<faiss::Index> l2(faiss::index_factory(static_cast<int>(dim), "IVF16,SQ8", faiss::METRIC_L2));
    EXPECT_EQ(detail::as_sq8(*l2), nullptr) << "L2 distance";
}

// Through VectorIndex (what mess search and the server call): k beyond the rows returns every row once, the
// re-ranked scores exact, in the order of brute force. Cost: about 0.06 s (300 × 32 rows, IVF4,SQ8).
TEST(Sq8Scan, VectorIndexAsksForMoreThanTheRows) {
    test::TempDir dir;
    constexpr std::size_t dim = 32, n = 300;
    const auto v = clustered(n, dim, 6, 4);
    HalfRowsWriter w(dir.path() / "rows.npy", dim);
    w.append(v.data(), n);
    CompressedParams p;
    p.factory = "IVF4,SQ8";
    p.rerank = 10;
    const VectorIndex idx = VectorIndex::build_compressed(w.finish(), p);
    const float* q = v.data() + 11 * dim;
    const auto got = idx.search(q, 500);
    ASSERT_EQ(got.size(), n);
    EXPECT_EQ(got.front().first, 11);
    for (std::size_t i = 0; i < n; ++i) {
        EXPECT_FLOAT_EQ(got[i].second, idx.half_rows()->dot(static_cast<std::size_t>(got[i].first), q));
        if (i > 0) {
            EXPECT_GE(got[i - 1].second, got[i].second);
        }
    }
}

// A projected index (PCA in front of the lists): the scan maps the query by the index's own chain and its
// candidates are FAISS's search of the same index (scores within float tolerance, same rows where not tied),
// whatever the transform's bias (FAISS's PCA trained as FAISS trains it). Cost: about 0.1 s (2000 × 48 rows).
TEST(Sq8Scan, ProjectedCandidatesEqualFaissSearch) {
    const OneThread one;
    constexpr std::size_t dim = 48, n = 2000, fetch = 30, nprobe = 4;
    const auto rows = clustered(n, dim, 24, 6);
    const auto queries = clustered(6, dim, 24, 7);
    std::unique_ptr<faiss::Index> idx(faiss::index_factory(static_cast<int>(dim), "PCA16,IVF16,SQ8", faiss::METRIC_INNER_PRODUCT));
    idx->train(static_cast<faiss::Index::idx_t>(n), rows.data());
    idx->add(static_cast<faiss::Index::idx_t>(n), rows.data());
    const auto* pre = detail::as_projected_sq8(*idx);
    ASSERT_NE(pre, nullptr);
    EXPECT_EQ(detail::as_sq8(*idx), nullptr) << "the projected form is not the plain one";
    for (std::size_t q = 0; q < 6; ++q) {
        const float* query = queries.data() + q * dim;
        const auto [d, ids] = faiss_search(*idx, query, fetch, nprobe);
        expect_faiss_order(detail::sq8_projected_candidates(*pre, query, fetch, nprobe), d, ids);
    }
    for (const char* other : {"PCA16,IVF16,SQ4", "PCA16,IVF16,Flat", "IVF16,SQ8"}) {
        std::unique_ptr<faiss::Index> o(faiss::index_factory(static_cast<int>(dim), other, faiss::METRIC_INNER_PRODUCT));
        EXPECT_EQ(detail::as_projected_sq8(*o), nullptr) << other;
    }
    std::unique_ptr<faiss::Index> untrained(faiss::index_factory(static_cast<int>(dim), "PCA16,IVF16,SQ8", faiss::METRIC_INNER_PRODUCT));
    EXPECT_EQ(detail::as_projected_sq8(*untrained), nullptr) << "an untrained PCA maps nothing yet";
}

// Lists holding more than kSplitScanBytes of codes are scanned on two threads: the candidates are those of
// FAISS's search whatever the split, also with four queries at once (the helper busy: the others scan alone).
// Cost: about 0.4 s (24 000 × 96 rows, IVF8: 2.3 MB of codes per query).
TEST(Sq8Scan, SplitScanEqualsFaissSearchAndConcurrentQueries) {
    const OneThread one;
    constexpr std::size_t dim = 96, n = 24000, nlist = 8, fetch = 50;
    static_assert(n * dim > detail::kSplitScanBytes, "every query must be large enough to split");
    const auto rows = clustered(n, dim, 30, 8);
    const auto queries = clustered(8, dim, 30, 9);
    auto index = sq8_index(rows, dim, nlist, n, true);
    auto check = [&](std::size_t q, const Candidates& got) {
        SCOPED_TRACE(q);
        const auto [d, ids] = faiss_search(*index, queries.data() + q * dim, fetch, nlist);
        expect_faiss_order(got, d, ids);
    };
    const std::size_t split0 = sq8_split_scans();
    for (std::size_t q = 0; q < 4; ++q) check(q, detail::sq8_candidates(*index, queries.data() + q * dim, fetch, nlist));
    if (std::thread::hardware_concurrency() >= 2) {
        EXPECT_EQ(sq8_split_scans() - split0, 4u) << "every query split (the helper is free between sequential queries)";
    }
    std::vector<std::future<Candidates>> at_once;
    for (std::size_t q = 4; q < 8; ++q)
        at_once.push_back(std::async(std::launch::async, [&, q] { return detail::sq8_candidates(*index, queries.data() + q * dim, fetch, nlist); }));
    for (std::size_t q = 4; q < 8; ++q) check(q, at_once[q - 4].get());
    // A small query (one list of a few rows) is not split.
    const std::size_t split1 = sq8_split_scans();
    detail::sq8_candidates(*index, queries.data(), 5, 1);
    EXPECT_EQ(sq8_split_scans(), split1);
}
