// Compressed indexes: float16 rows streamed and mapped, IVF-SQ8 / IVF-PQ codes with exact re-ranking against
// brute force on overlapping clusters, and the errors of bad rows files and configurations.
#include <limits>
#include <random>
#include <set>

#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/index_io.h>
#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

// `n` rows of `dim` over `clusters` centres with noise of the centres' own scale (anisotropic: a scale per
// dimension and cluster), so that exact neighbours cross cluster borders.
std::vector<float> overlapping(std::size_t n, std::size_t dim, std::size_t clusters, std::uint32_t seed) {
    std::mt19937 g(11);
    std::normal_distribution<float> d(0, 1);
    std::uniform_real_distribution<float> aniso(0.8f, 2.0f);
    std::vector<float> centres(clusters * dim), scales(clusters * dim), out(n * dim);
    for (std::size_t i = 0; i < centres.size(); ++i) {
        centres[i] = d(g);
        scales[i] = aniso(g);
    }
    std::mt19937 r(seed);
    std::uniform_int_distribution<std::size_t> pick(0, clusters - 1);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = pick(r);
        for (std::size_t j = 0; j < dim; ++j) out[i * dim + j] = centres[c * dim + j] + scales[c * dim + j] * d(r);
    }
    return out;
}

std::shared_ptr<const HalfRows> write_rows(const fs::path& path, const std::vector<float>& v, std::size_t dim) {
    HalfRowsWriter w(path, dim);
    const std::size_t n = v.size() / dim, half = n / 2;
    w.append(v.data(), half);  // two chunks: appending in pieces is the same as one
    w.append(v.data() + half * dim, n - half);
    return w.finish();
}

// Exact top-k over the float16 rows, by brute force in double precision.
std::vector<std::int64_t> brute_force(const HalfRows& rows, const float* q, std::size_t k) {
    std::vector<std::pair<double, std::int64_t>> s;
    for (std::size_t r = 0; r < rows.size(); ++r) {
        double dot = 0;
        for (std::size_t j = 0; j < rows.dimension(); ++j) dot += static_cast<double>(half_to_float(rows.row(r)[j])) * q[j];
        s.emplace_back(-dot, static_cast<std::int64_t>(r));
    }
    std::partial_sort(s.begin(), s.begin() + static_cast<std::ptrdiff_t>(k), s.end());
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < k; ++i) out.push_back(s[i].second);
    return out;
}

}  // namespace

// SQ8, SQ8 of the top 32 principal components (re-ranked over all 64 dimensions) and PQ. Cost: about 1.3 s
// of CPU (3000 × 64 rows, three IVF trainings, 4-bit PQ to keep its training cheap, 40 queries).
TEST(Compressed, RecallAgainstBruteForceOnOverlappingClusters) {
    test::TempDir dir;
    const std::size_t n = 3000, dim = 64, nq = 40;
    const auto rows = write_rows(dir.path() / "rows.npy", overlapping(n, dim, 40, 1), dim);
    auto queries = overlapping(nq, dim, 40, 2);
    for (std::size_t i = 0; i < nq; ++i) l2_normalize(queries.data() + i * dim, dim);
    for (const std::string factory : {"IVF32,SQ8", "PCA32,IVF32,SQ8", "IVF32,PQ16x4"}) {
        CompressedParams p;
        p.factory = factory;
        p.rerank = 100;
        p.nprobe = 8;
        const VectorIndex idx = VectorIndex::build_compressed(rows, p);
        EXPECT_TRUE(idx.is_compressed());
        EXPECT_FALSE(idx.is_exact());
        EXPECT_EQ(idx.default_nprobe(), 8);
        double hits = 0;
        for (std::size_t i = 0; i < nq; ++i) {
            const float* q = queries.data() + i * dim;
            const auto truth = brute_force(*rows, q, 10);
            const std::set<std::int64_t> want(truth.begin(), truth.end());
            const auto got = idx.search(q, 10);
            for (const auto& [row, score] : got) {
                hits += static_cast<double>(want.count(row));
                EXPECT_NEAR(score, rows->dot(static_cast<std::size_t>(row), q), 1e-6) << "re-ranked scores are exact";
            }
            // exact = true scans every float16 row: the brute-force answer (up to float rounding among near ties).
            const auto exact = idx.search(q, 10, {}, /*exact=*/true);
            EXPECT_EQ(exact.front().first, truth.front()) << factory << " query " << i;
        }
        // The bound leaves room for FAISS version differences (measured: SQ8 0.990, PCA32 SQ8 0.973, PQ16x4 0.978).
        std::printf("%s recall@10 %.3f\n", factory.c_str(), hits / (nq * 10.0));
        EXPECT_GE(hits / (nq * 10.0), 0.93) << factory;
        // A deeper re-rank never loses recall: rerank = n is exact.
        const auto all = idx.search(queries.data(), 10, {static_cast<int>(32), 0, static_cast<int>(n)});
        EXPECT_EQ(all.front().first, brute_force(*rows, queries.data(), 1).front());
    }
}

// The exact scan reads the rows in blocks of 64 Ki and releases each block's pages: rows past the first block
// are found, and the scan leaves the answers of brute force. Cost: about 0.2 s (70 000 × 8 rows, IVF16,SQ8).
TEST(Compressed, ExactScanCoversEveryBlock) {
    test::TempDir dir;
    constexpr std::size_t n = 70000, dim = 8;
    const auto v = overlapping(n, dim, 16, 5);
    CompressedParams p;
    p.factory = "IVF16,SQ8";
    const VectorIndex idx = VectorIndex::build_compressed(write_rows(dir.path() / "rows.npy", v, dim), p);
    for (const std::size_t row : {std::size_t{3}, std::size_t{65535}, std::size_t{65536}, n - 1}) {
        std::vector<float> q(v.begin() + static_cast<std::ptrdiff_t>(row * dim), v.begin() + static_cast<std::ptrdiff_t>((row + 1) * dim));
        l2_normalize(q.data(), dim);
        const auto exact = idx.search(q.data(), 5, {}, /*exact=*/true);
        ASSERT_EQ(exact.size(), 5u);
        EXPECT_EQ(exact.front().first, brute_force(*idx.half_rows(), q.data(), 1).front()) << "query row " << row;
        EXPECT_NEAR(exact.front().second, idx.half_rows()->dot(static_cast<std::size_t>(exact.front().first), q.data()), 1e-6);
    }
}

// Cost: milliseconds.
TEST(Compressed, RowsFileIsNumpyFloat16AndDamageIsNamed) {
    test::TempDir dir;
    const fs::path p = dir.path() / "rows.npy";
    const std::vector<float> v = {3, 4, 0, 0, 0, 0, 0, 2};
    const auto rows = write_rows(p, v, 4);
    const NpyArray a = read_npy(p);  // what numpy.load reads
    EXPECT_EQ(a.dtype, DType::f16);
    EXPECT_EQ(a.shape, (std::vector<std::int64_t>{2, 4}));
    const std::vector<float> want = {0.6f, 0.8f, 0, 0, 0, 0, 0, 1};  // normalised, then rounded to float16
    const auto got = a.to_float32();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got[i], half_to_float(float_to_half(want[i])));
    const std::vector<float> q = {0, 0, 0, 1};
    EXPECT_FLOAT_EQ(rows->dot(1, q.data()), 1.0f);
    EXPECT_EQ(rows->read_dot(1, q.data()), rows->dot(1, q.data())) << "read with pread, the same row";
    EXPECT_NE(test::error_message([&] { rows->read_dot(2, q.data()); }).find("row 2 of 2: past the end"), std::string::npos);
    std::vector<float> many(3);  // several rows at once, out of file order and repeated: each answer in its place
    rows->read_dots({1, 0, 1}, q.data(), many.data());
    EXPECT_EQ(many, (std::vector<float>{rows->dot(1, q.data()), rows->dot(0, q.data()), rows->dot(1, q.data())}));
    EXPECT_NE(test::error_message([&] { rows->read_dots({0, 2}, q.data(), many.data()); }).find("row 2 of 2: past the end"),
              std::string::npos);
    // Truncated: the header says 2 × 4, the file holds less.
    const fs::path cut = dir.path() / "cut.npy";
    std::string bytes = read_file(p);
    write_file_atomic(cut, bytes.substr(0, bytes.size() - 3));
    const std::string m = test::error_message([&] { HalfRows::open(cut, 2, 4); });
    EXPECT_NE(m.find("cut.npy"), std::string::npos) << m;
    EXPECT_NE(m.find("truncated"), std::string::npos) << m;
    // Another shape than the index's, and a file that is not .npy at all.
    EXPECT_NE(test::error_message([&] { HalfRows::open(p, 3, 4); }).find("float16 [3, 4] is expected"), std::string::npos);
    write_file_atomic(cut, "not an array");
    EXPECT_NE(test::error_message([&] { HalfRows::open(cut, 2, 4); }).find("cut.npy"), std::string::npos);
    // A non-finite row is refused, naming its number; the unfinished file is removed.
    {
        HalfRowsWriter w(dir.path() / "bad.npy", 2);
        const std::vector<float> bad = {1, 0, 0, std::numeric_limits<float>::quiet_NaN()};
        EXPECT_NE(test::error_message([&] { w.append(bad.data(), 2); }).find("vector 1 holds non-finite"), std::string::npos);
    }
    EXPECT_FALSE(fs::exists(dir.path() / "bad.npy"));
}

// Cost: milliseconds.
TEST(Compressed, ConfigurationErrorsAndFactoryGoldenValues) {
    test::TempDir dir;
    // nlist: the largest power of two ≤ 4·√rows (1 M rows: 4000 → 2048); PQ: 8 dimensions per byte.
    EXPECT_EQ(compressed_factory("ivf-sq8", 1000000, 768), "IVF2048,SQ8");
    EXPECT_EQ(compressed_factory("ivf-pq", 10000000, 768), "IVF8192,PQ96");
    EXPECT_EQ(compressed_factory("ivf-pq", 100, 60), "IVF32,PQ6");
    EXPECT_EQ(compressed_factory("auto", 1000, 768), "Flat");
    EXPECT_EQ(resolve_index_type("auto", kAutoCompressRows + 1), "pca-ivf-sq8");
    EXPECT_EQ(resolve_index_type("auto", kAutoCompressRows), "flat");
    // pca-ivf-sq8 keeps a third of the dimensions, a multiple of 16 (768 → 256, 64 → 16), all of short vectors.
    EXPECT_EQ(compressed_factory("pca-ivf-sq8", 10000000, 768), "PCA256,IVF8192,SQ8");
    EXPECT_EQ(compressed_factory("pca-ivf-sq8", 10000000, 768, 2048), "PCA256,IVF2048,SQ8");  // --nlist
    EXPECT_EQ(compressed_factory("flat", 100, 768, 4096), "Flat");                           // not an IVF: ignored
    EXPECT_NE(test::error_message([] { compressed_factory("ivf-sq8", 1000, 768, 2000); }, ErrorKind::usage).find("more lists than the 1000 rows"),
              std::string::npos);
    EXPECT_NE(test::error_message([] { compressed_factory("ivf-sq8", 10000000, 768, 131072); }, ErrorKind::usage).find("at most 65536"),
              std::string::npos);
    EXPECT_EQ(pca_dims(64), 16u);
    EXPECT_EQ(pca_dims(47), 47u);
    EXPECT_NE(test::error_message([] { resolve_index_type("ivf-hnsw", 10); }, ErrorKind::usage).find("'ivf-hnsw'"), std::string::npos);
    const auto rows = write_rows(dir.path() / "rows.npy", overlapping(100, 16, 4, 1), 16);
    CompressedParams p;
    p.factory = "Flat";
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("needs an IVF factory"),
              std::string::npos);
    p.factory = "IVF256,SQ8";
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("at least 256 rows"),
              std::string::npos);
    p.factory = "IVF4,PQ5";
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("PQ5"), std::string::npos);
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(nullptr, p); }, ErrorKind::usage).find("no rows"), std::string::npos);
    // Row vectors of a compressed index come from the float16 rows.
    p.factory = "IVF4,SQ8";
    const VectorIndex idx = VectorIndex::build_compressed(rows, p);
    const auto v = idx.row_vector(3);
    EXPECT_EQ(v[0], half_to_float(rows->row(3)[0]));
    EXPECT_NE(test::error_message([&] { compute_neighbour_lists(idx, 5); }, ErrorKind::usage).find("compressed"), std::string::npos);
}

// pca-ivf-sq8 written and read back (what mess index build and mess serve do): the same answers, and the PCA
// as trained on the sample made linear (no bias: scores are q·P·x, the mean's share the same for every row).
// Cost: about 0.3 s (3000 × 64 rows, one IVF32 training, 40 queries twice).
TEST(Compressed, ProjectedIndexRoundTripIsLinear) {
    test::TempDir dir;
    const std::size_t dim = 64, nq = 40;
    const auto rows = write_rows(dir.path() / "rows.npy", overlapping(3000, dim, 40, 1), dim);
    const auto queries = overlapping(nq, dim, 40, 2);
    CompressedParams p;
    p.factory = "PCA32,IVF32,SQ8";
    p.rerank = 100;
    p.nprobe = 8;
    const VectorIndex idx = VectorIndex::build_compressed(rows, p);
    EXPECT_EQ(idx.dimension(), dim);
    idx.write(dir.path() / "index.faiss");
    const VectorIndex loaded = VectorIndex::read_compressed(dir.path() / "index.faiss", rows, p.factory, 100);
    EXPECT_EQ(loaded.default_nprobe(), 8);
    for (std::size_t i = 0; i < nq; ++i)
        EXPECT_EQ(loaded.search(queries.data() + i * dim, 10), idx.search(queries.data() + i * dim, 10)) << "query " << i;
    std::unique_ptr<faiss::Index> raw(faiss::read_index((dir.path() / "index.faiss").c_str()));
    const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(raw.get());
    ASSERT_NE(pre, nullptr);
    const auto* pca = dynamic_cast<const faiss::PCAMatrix*>(pre->chain.at(0));
    ASSERT_NE(pca, nullptr);
    EXPECT_EQ(pca->d_out, 32);
    for (float b : pca->b) EXPECT_EQ(b, 0.0f) << "the projection is linear";
    EXPECT_EQ(pre->index->d, 32);
}

// Cost: milliseconds (the refusals come before any training but the PCA's, on 100 × 16 rows).
TEST(Compressed, ProjectionConfigurationErrors) {
    test::TempDir dir;
    const auto rows = write_rows(dir.path() / "rows.npy", overlapping(100, 16, 4, 1), 16);
    CompressedParams p;
    p.factory = "PCA32,IVF4,SQ8";
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("PCA32"), std::string::npos);
    p.factory = "RR16,IVF4,SQ8";
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("PCA<d> projection only"),
              std::string::npos);
    p.factory = "PCA8,IVF4,SQ8";
    p.train_rows = 10;  // fewer training rows than dimensions: no covariance to take components from
    EXPECT_NE(test::error_message([&] { VectorIndex::build_compressed(rows, p); }, ErrorKind::usage).find("at least 16 training rows"),
              std::string::npos);
}
