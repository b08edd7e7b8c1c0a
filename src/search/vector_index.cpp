// VectorIndex: FAISS indexes over L2-normalised vectors, and the SIMD exact scan.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <shared_mutex>

#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexIVF.h>
#include <faiss/IVFlib.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/utils/distances.h>
#include <immintrin.h>
#include <omp.h>

#include "compressed.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Exact scan: inner products of every row with the query, then a partial sort.
// ---------------------------------------------------------------------------------------------

namespace {

__attribute__((target("avx512f"))) void dots_avx512(const float* rows, std::size_t n, std::size_t dim, const float* q, float* out) {
#pragma omp parallel for schedule(static) if (n * dim > (1u << 20))
    for (std::size_t r = 0; r < n; ++r) {
        const float* x = rows + r * dim;
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
        std::size_t j = 0;
        for (; j + 32 <= dim; j += 32) {
            a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(q + j), a0);
            a1 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j + 16), _mm512_loadu_ps(q + j + 16), a1);
        }
        for (; j + 16 <= dim; j += 16) a0 = _mm512_fmadd_ps(_mm512_loadu_ps(x + j), _mm512_loadu_ps(q + j), a0);
        alignas(64) float lanes[16];  // (_mm512_reduce_add_ps trips a GCC 12 maybe-uninitialized false positive)
        _mm512_store_ps(lanes, _mm512_add_ps(a0, a1));
        float s = 0;
        for (float v : lanes) s += v;
        for (; j < dim; ++j) s += x[j] * q[j];
        out[r] = s;
    }
}

__attribute__((target("avx2,fma"))) void dots_avx2(const float* rows, std::size_t n, std::size_t dim, const float* q, float* out) {
#pragma omp parallel for schedule(static) if (n * dim > (1u << 20))
    for (std::size_t r = 0; r < n; ++r) {
        const float* x = rows + r * dim;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        std::size_t j = 0;
        for (; j + 16 <= dim; j += 16) {
            a0 = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(q + j), a0);
            a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + j + 8), _mm256_loadu_ps(q + j + 8), a1);
        }
        __m256 a = _mm256_add_ps(a0, a1);
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; j < dim; ++j) s += x[j] * q[j];
        out[r] = s;
    }
}

void dots_baseline(const float* rows, std::size_t n, std::size_t dim, const float* q, float* out) {
#pragma omp parallel for schedule(static) if (n * dim > (1u << 20))
    for (std::size_t r = 0; r < n; ++r) {
        const float* x = rows + r * dim;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        std::size_t j = 0;
        for (; j + 8 <= dim; j += 8)
            for (int t = 0; t < 8; ++t) acc[t] += x[j + static_cast<std::size_t>(t)] * q[j + static_cast<std::size_t>(t)];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; j < dim; ++j) s += x[j] * q[j];
        out[r] = s;
    }
}

using DotsFn = void (*)(const float*, std::size_t, std::size_t, const float*, float*);

struct Isa {
    DotsFn fn;
    const char* name;
};
const Isa& isa() {
    static const Isa chosen = [] {
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx512f")) return Isa{dots_avx512, "avx512f"};
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa{dots_avx2, "avx2"};
        return Isa{dots_baseline, "baseline"};
    }();
    return chosen;
}

std::vector<std::pair<std::int64_t, float>> top_k_of(const std::vector<float>& scores, std::size_t k) {
    std::vector<std::int64_t> idx(scores.size());
    for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<std::int64_t>(i);
    k = std::min(k, idx.size());
    auto better = [&](std::int64_t a, std::int64_t b) {
        const float sa = scores[static_cast<std::size_t>(a)], sb = scores[static_cast<std::size_t>(b)];
        return sa > sb || (sa == sb && a < b);  // ties: lower row first, so results are reproducible
    };
    std::partial_sort(idx.begin(), idx.begin() + static_cast<std::ptrdiff_t>(k), idx.end(), better);
    std::vector<std::pair<std::int64_t, float>> out(k);
    for (std::size_t i = 0; i < k; ++i) out[i] = {idx[i], scores[static_cast<std::size_t>(idx[i])]};
    return out;
}

}  // namespace

const char* exact_scan_isa() { return isa().name; }

std::vector<std::pair<std::int64_t, float>> exact_top_k(const float* rows, std::size_t n, std::size_t dim, const float* query,
                                                        std::size_t k) {
    std::vector<float> scores(n);
    if (n) isa().fn(rows, n, dim, query, scores.data());
    return top_k_of(scores, k);
}

std::shared_ptr<const NeighbourLists> compute_neighbour_lists(const VectorIndex& index, std::size_t k,
                                                              const std::function<void(std::size_t, std::size_t)>& on_progress) {
    if (k == 0) throw_usage("neighbour lists need k ≥ 1");
    if (index.is_compressed()) throw_usage("neighbour lists are computed for float32 indexes, not compressed ones");
    const std::size_t n = index.size(), dim = index.dimension();
    auto lists = std::make_shared<NeighbourLists>();
    lists->n = n;
    lists->k = k = std::min(k, n);
    lists->rows.resize(n * k);
    lists->scores.resize(n * k);
    // BLAS sums in another order than the scan: a margin of candidates keeps the boundary row from slipping out.
    const std::size_t candidates = std::min(n, k + 16), block = 1024;
    const auto dots = isa().fn;
    std::vector<float> blas_scores(block * candidates);
    std::vector<std::int64_t> blas_rows(block * candidates);
    for (std::size_t r0 = 0; r0 < n; r0 += block) {
        const std::size_t rows = std::min(block, n - r0);
        faiss::knn_inner_product(index.vector(r0), index.vector(0), dim, rows, n, candidates, blas_scores.data(), blas_rows.data());
#pragma omp parallel for schedule(static)
        for (std::size_t i = 0; i < rows; ++i) {
            // The query as every query is made: the row's vector, normalised (again: a few ulps may move).
            std::vector<float> query(index.vector(r0 + i), index.vector(r0 + i) + dim);
            l2_normalize(query.data(), dim);
            std::vector<std::pair<float, std::int64_t>> rescored(candidates);
            for (std::size_t c = 0; c < candidates; ++c) {
                const std::int64_t row = blas_rows[i * candidates + c];
                float s = 0;
                dots(index.vector(static_cast<std::size_t>(row)), 1, dim, query.data(), &s);
                rescored[c] = {s, row};
            }
            std::sort(rescored.begin(), rescored.end(), [](const auto& a, const auto& b) { return a.first > b.first || (a.first == b.first && a.second < b.second); });
            for (std::size_t j = 0; j < k; ++j) {
                lists->rows[(r0 + i) * k + j] = rescored[j].second;
                lists->scores[(r0 + i) * k + j] = rescored[j].first;
            }
        }
        if (on_progress) on_progress(r0 + rows, n);
    }
    return lists;
}

// ---------------------------------------------------------------------------------------------
// VectorIndex
// ---------------------------------------------------------------------------------------------

VectorIndex::VectorIndex() : ef_mutex_(std::make_unique<std::shared_mutex>()) {}
VectorIndex::~VectorIndex() = default;
VectorIndex::VectorIndex(VectorIndex&&) noexcept = default;
VectorIndex& VectorIndex::operator=(VectorIndex&&) noexcept = default;

bool VectorIndex::is_exact() const { return dynamic_cast<const faiss::IndexFlat*>(index_.get()) != nullptr; }

int VectorIndex::default_nprobe() const {
    const faiss::IndexIVF* ivf = index_ ? faiss::ivflib::try_extract_index_ivf(index_.get()) : nullptr;
    return ivf ? static_cast<int>(ivf->nprobe) : 0;
}

int VectorIndex::default_ef_search() const {
    const auto* hnsw = index_ ? dynamic_cast<const faiss::IndexHNSW*>(index_.get()) : nullptr;
    return hnsw ? hnsw->hnsw.efSearch : 0;
}

namespace {

// The first row holding a NaN or infinity, or n when every value is finite.
std::size_t first_non_finite_row(const std::vector<float>& vectors, std::size_t n, std::size_t dim) {
    return first_non_finite(std::span(vectors).first(n * dim)) / std::max<std::size_t>(1, dim);
}

}  // namespace

// Product quantisation splits a vector into m sub-vectors: FAISS asserts that m divides the dimension.
// Say so in words first, with the sub-vector counts that would fit.
void detail::check_product_quantiser(const std::string& factory, std::size_t dim) {
    for (const std::string& part : split(factory, ',')) {
        if (!part.starts_with("PQ") || part.size() < 3 || !std::isdigit(static_cast<unsigned char>(part[2]))) continue;
        const std::size_t m = std::strtoul(part.c_str() + 2, nullptr, 10);
        if (m == 0 || dim % m == 0) continue;
        std::string fits;
        for (std::size_t k = 1; k <= std::min<std::size_t>(dim, 64); ++k)
            if (dim % k == 0) fits += (fits.empty() ? "" : ", ") + fmt::format("PQ{}", k);
        throw_usage("factory '{}': {} splits each vector into {} parts, but these vectors have {} dimensions, which {} does not "
                    "divide (for {} dimensions: {})", factory, part, m, dim, m, dim, fits);
    }
}

VectorIndex VectorIndex::build(std::vector<float> vectors, std::size_t n, std::size_t dim, const std::string& factory) {
    if (n == 0 || dim == 0) throw_usage("cannot build an index over {} vectors of dimension {}", n, dim);
    if (vectors.size() != n * dim) throw_usage("{} floats given for {} vectors of dimension {}", vectors.size(), n, dim);
    if (const std::size_t bad = first_non_finite_row(vectors, n, dim); bad < n)
        throw_input("vector {} of {} holds non-finite values (NaN or infinity): refusing to index it", bad, n);
    detail::check_product_quantiser(factory, dim);
    for (std::size_t r = 0; r < n; ++r) l2_normalize(vectors.data() + r * dim, dim);
    VectorIndex v;
    v.n_ = n;
    v.dim_ = dim;
    v.factory_ = factory;
    try {
        v.index_.reset(faiss::index_factory(static_cast<int>(dim), factory.c_str(), faiss::METRIC_INNER_PRODUCT));
        // Polysemous training (simulated annealing on PQ codes) only serves Hamming-filtered search, which we
        // do not use, and costs minutes: off.
        if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(v.index_.get())) ivfpq->do_polysemous_training = false;
        if (auto* pq = dynamic_cast<faiss::IndexPQ*>(v.index_.get())) pq->do_polysemous_training = false;
        if (!v.index_->is_trained) v.index_->train(static_cast<faiss::Index::idx_t>(n), vectors.data());
        // HNSW insertion in parallel makes the graph depend on thread timing; up to kDeterministicHnswRows it is
        // built on one thread so that a rebuild is identical.
        const bool serial = dynamic_cast<faiss::IndexHNSW*>(v.index_.get()) && n <= kDeterministicHnswRows;
        const int threads = omp_get_max_threads();
        if (serial) omp_set_num_threads(1);
        v.index_->add(static_cast<faiss::Index::idx_t>(n), vectors.data());
        if (serial) omp_set_num_threads(threads);
        if (auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(v.index_.get())) hnsw->hnsw.efSearch = kDefaultEfSearch;
    } catch (const faiss::FaissException& e) {
        throw_usage("index factory '{}' over {} vectors of dimension {}: {}", factory, n, dim, e.what());
    }
    v.vectors_ = std::move(vectors);
    return v;
}

std::unique_ptr<faiss::Index> detail::read_faiss_index(const std::filesystem::path& path) {
    std::unique_ptr<faiss::Index> index;
    try {
        index.reset(faiss::read_index(path.c_str()));
    } catch (const faiss::FaissException& e) {
        throw_input("{}: not a readable FAISS index: {}", path.string(), e.what());
    }
    if (index->metric_type != faiss::METRIC_INNER_PRODUCT) throw_input("{}: index metric is not inner product", path.string());
    return index;
}

VectorIndex VectorIndex::read(const std::filesystem::path& path, std::vector<float> vectors, const std::string& factory) {
    VectorIndex v;
    v.index_ = detail::read_faiss_index(path);
    v.n_ = static_cast<std::size_t>(v.index_->ntotal);
    v.dim_ = static_cast<std::size_t>(v.index_->d);
    if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(v.index_.get()); flat && vectors.empty())
        vectors.assign(flat->get_xb(), flat->get_xb() + v.n_ * v.dim_);  // a flat index holds the vectors itself
    if (vectors.size() != v.n_ * v.dim_)
        throw_input("{}: index holds {} × {} but {} vector floats were given", path.string(), v.n_, v.dim_, vectors.size());
    if (const std::size_t bad = first_non_finite_row(vectors, v.n_, v.dim_); bad < v.n_)
        throw_input("{}: row {} holds non-finite values (NaN or infinity); rebuild the index from sound features", path.string(), bad);
    v.vectors_ = std::move(vectors);
    v.factory_ = factory;
    return v;
}

void VectorIndex::write(const std::filesystem::path& path) const {
    if (!index_) throw_usage("cannot write an empty index");
    try {
        faiss::write_index(index_.get(), path.c_str());
    } catch (const faiss::FaissException& e) {
        throw_input("{}: cannot write the index: {}", path.string(), e.what());
    }
}

std::vector<std::pair<std::int64_t, float>> VectorIndex::search(const float* query, std::size_t k, const SearchParams& params,
                                                                bool exact) const {
    if (k == 0) throw_usage("k must be at least 1");
    if (!index_ || n_ == 0) return {};
    if (params.nprobe > 0 && !faiss::ivflib::try_extract_index_ivf(index_.get()))
        throw_usage("nprobe applies to IVF indexes, this one is '{}'", factory_);
    if (params.ef_search > 0 && !dynamic_cast<const faiss::IndexHNSW*>(index_.get()))
        throw_usage("efSearch applies to HNSW indexes, this one is '{}'", factory_);
    if (half_) return detail::compressed_search(*index_, *half_, query, k, params.rerank > 0 ? static_cast<std::size_t>(params.rerank) : rerank_,
                                                              params.nprobe, exact);
    if (exact || is_exact()) return exact_top_k(vectors_.data(), n_, dim_, query, k);
    k = std::min(k, n_);
    std::vector<float> d(k);
    std::vector<faiss::Index::idx_t> labels(k);
    faiss::SearchParametersIVF ivf;
    const faiss::SearchParameters* sp = nullptr;
    if (params.nprobe > 0) {
        ivf.nprobe = static_cast<std::size_t>(params.nprobe);
        sp = &ivf;
    }
    auto run = [&] {
        try {
            index_->search(1, query, static_cast<faiss::Index::idx_t>(k), d.data(), labels.data(), sp);
        } catch (const faiss::FaissException& e) {
            throw_internal("index search failed: {}", e.what());
        }
    };
    auto* hnsw = dynamic_cast<faiss::IndexHNSW*>(index_.get());
    if (hnsw && params.ef_search > 0 && params.ef_search != hnsw->hnsw.efSearch) {
        // FAISS 1.7.3 ignores SearchParametersHNSW: a non-default efSearch is set on the index for this
        // search alone, under an exclusive lock (default-efSearch searches share the lock).
        std::unique_lock lock(*ef_mutex_);
        const int saved = hnsw->hnsw.efSearch;
        hnsw->hnsw.efSearch = params.ef_search;
        try {
            run();
        } catch (...) {
            hnsw->hnsw.efSearch = saved;
            throw;
        }
        hnsw->hnsw.efSearch = saved;
    } else if (hnsw) {
        std::shared_lock lock(*ef_mutex_);
        run();
    } else {
        run();
    }
    std::vector<std::pair<std::int64_t, float>> out;
    for (std::size_t i = 0; i < k; ++i)
        if (labels[i] >= 0) out.emplace_back(labels[i], d[i]);
    return out;
}

}  // namespace mess
