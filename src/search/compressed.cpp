// Compressed indexes: float16 rows on disk (written in a stream, memory-mapped), FAISS codes trained on a
// sample and filled in chunks, and exact re-ranking of the candidates.
#include "compressed.hpp"
#include "sq8_scan.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <faiss/IVFlib.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/FaissException.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <fcntl.h>
#include <immintrin.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mess/npy.hpp"
#include "mess/util.hpp"

namespace mess {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Index types
// ---------------------------------------------------------------------------------------------

std::string resolve_index_type(const std::string& type, std::size_t rows) {
    if (type == "auto") return rows > kAutoCompressRows ? "pca-ivf-sq8" : "flat";
    if (type == "flat" || type == "ivf-sq8" || type == "pca-ivf-sq8" || type == "ivf-pq") return type;
    throw_usage("index type '{}' is not one of auto, flat, ivf-sq8, pca-ivf-sq8, ivf-pq", type);
}

std::size_t pca_dims(std::size_t dim) { return dim < 48 ? dim : dim / 3 / 16 * 16; }

std::string compressed_factory(const std::string& type, std::size_t rows, std::size_t dim, std::size_t nlist) {
    const std::string t = resolve_index_type(type, rows);
    if (t == "flat") return "Flat";
    if (nlist > 65536) throw_usage("--nlist {}: at most 65536 IVF lists", nlist);
    if (nlist > rows) throw_usage("--nlist {}: more lists than the {} rows to index", nlist, rows);
    if (nlist == 0) {
        nlist = 16;
        while (nlist < 65536 && nlist * 2 <= static_cast<std::size_t>(4 * std::sqrt(static_cast<double>(rows)))) nlist *= 2;
    }
    if (t == "ivf-sq8") return fmt::format("IVF{},SQ8", nlist);
    if (t == "pca-ivf-sq8") return fmt::format("PCA{},IVF{},SQ8", pca_dims(dim), nlist);
    std::size_t m = std::max<std::size_t>(1, dim / 8);  // 8 dimensions per byte of code, m dividing dim
    while (m > 1 && dim % m != 0) --m;
    return fmt::format("IVF{},PQ{}", nlist, m);
}

// ---------------------------------------------------------------------------------------------
// Float16 rows
// ---------------------------------------------------------------------------------------------

namespace {

__attribute__((target("avx2,fma,f16c"))) float dot_f16c(const std::uint16_t* x, const float* q, std::size_t dim) {
    __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
    std::size_t j = 0;
    for (; j + 16 <= dim; j += 16) {
        const __m256 x0 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j)));
        const __m256 x1 = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + j + 8)));
        a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(q + j), a0);
        a1 = _mm256_fmadd_ps(x1, _mm256_loadu_ps(q + j + 8), a1);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, _mm256_add_ps(a0, a1));
    float s = 0;
    for (float v : lanes) s += v;
    for (; j < dim; ++j) s += half_to_float(x[j]) * q[j];
    return s;
}

float dot_baseline(const std::uint16_t* x, const float* q, std::size_t dim) {
    float s = 0;
    for (std::size_t j = 0; j < dim; ++j) s += half_to_float(x[j]) * q[j];
    return s;
}

using HalfDot = float (*)(const std::uint16_t*, const float*, std::size_t);
HalfDot half_dot() {
    static const HalfDot fn = [] {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") ? dot_f16c : dot_baseline;
    }();
    return fn;
}

// The .npy header of float16 [n, dim], padded to a fixed 128 bytes so that it can be rewritten in place.
std::string half_npy_header(std::size_t n, std::size_t dim) {
    std::string dict = fmt::format("{{'descr': '<f2', 'fortran_order': False, 'shape': ({}, {}), }}", n, dim);
    constexpr std::size_t kTotal = 128, kPrefix = 10;
    dict.resize(kTotal - kPrefix - 1, ' ');
    dict += '\n';
    std::string h = "\x93NUMPY";
    h += '\x01';
    h += '\x00';
    h += static_cast<char>(dict.size() & 0xff);
    h += static_cast<char>(dict.size() >> 8);
    return h + dict;
}

}  // namespace

std::shared_ptr<const HalfRows> HalfRows::open(const fs::path& path, std::size_t n, std::size_t dim, bool remove_on_close) {
    const NpyHeader h = read_npy_header(path);  // checks the file's length against its header
    if (h.dtype != DType::f16 || h.fortran_order || h.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(n), static_cast<std::int64_t>(dim)})
        throw_input("{}: {} but float16 [{}, {}] is expected", path.string(), h.describe(), n, dim);
    std::shared_ptr<HalfRows> r(new HalfRows());
    r->path_ = path;
    r->n_ = n;
    r->dim_ = dim;
    r->remove_ = remove_on_close;
    r->map_bytes_ = h.data_offset + h.data_bytes;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw_input("{}: cannot open: {}", path.string(), std::strerror(errno));
    r->fd_ = fd;  // closed by the destructor, also when mapping fails
    // read_dot's rows are scattered: without this each missed row read ahead 128 KB or more, and on a machine
    // whose page cache cannot hold the file every query paid for reclaiming it (65 ms of CPU at 10 M rows).
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    void* m = ::mmap(nullptr, r->map_bytes_, PROT_READ, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) throw_input("{}: cannot map {} bytes: {}", path.string(), r->map_bytes_, std::strerror(errno));
    ::madvise(m, r->map_bytes_, MADV_RANDOM);  // re-ranking reads scattered rows
    r->map_ = m;
    r->data_ = reinterpret_cast<const std::uint16_t*>(static_cast<const char*>(m) + h.data_offset);
    r->data_offset_ = h.data_offset;
    return r;
}

HalfRows::~HalfRows() {
    if (map_) ::munmap(map_, map_bytes_);
    if (fd_ >= 0) ::close(fd_);
    if (remove_) {
        std::error_code ec;
        fs::remove(path_, ec);
    }
}

void HalfRows::to_float(std::size_t first, std::size_t count, float* out) const {
    const std::uint16_t* src = row(first);
    for (std::size_t i = 0; i < count * dim_; ++i) out[i] = half_to_float(src[i]);
}

void HalfRows::release(std::size_t first, std::size_t count) const { advise(first, count, MADV_DONTNEED); }
void HalfRows::prefetch(std::size_t first, std::size_t count) const { advise(first, count, MADV_WILLNEED); }

void HalfRows::advise(std::size_t first, std::size_t count, int advice) const {
    const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
    const auto begin = reinterpret_cast<std::uintptr_t>(row(first)) & ~(page - 1);
    const auto end = reinterpret_cast<std::uintptr_t>(row(std::min(n_, first + count)));
    if (end > begin) ::madvise(reinterpret_cast<void*>(begin), end - begin, advice);
}

float HalfRows::dot(std::size_t r, const float* query) const { return half_dot()(row(r), query, dim_); }

float HalfRows::read_dot(std::size_t r, const float* query) const {
    thread_local std::vector<std::uint16_t> buf;
    buf.resize(dim_);
    const std::size_t bytes = dim_ * sizeof(std::uint16_t);
    const auto at = static_cast<off_t>(data_offset_ + r * bytes);
    if (r >= n_) throw_input("{}: cannot read row {} of {}: past the end", path_.string(), r, n_);
    const ssize_t got = ::pread(fd_, buf.data(), bytes, at);
    if (got != static_cast<ssize_t>(bytes))  // a short read: the file shrank under the mapping
        throw_input("{}: cannot read row {} of {}: {}", path_.string(), r, n_, got < 0 ? std::strerror(errno) : "the file is shorter than its header says");
    return half_dot()(buf.data(), query, dim_);
}

void HalfRows::read_dots(const std::vector<std::size_t>& rows, const float* query, float* out) const {
    const std::size_t bytes = dim_ * sizeof(std::uint16_t);
    for (std::size_t r : rows)
        if (r < n_) ::posix_fadvise(fd_, static_cast<off_t>(data_offset_ + r * bytes), static_cast<off_t>(bytes), POSIX_FADV_WILLNEED);
    std::vector<std::size_t> order(rows.size());
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return rows[a] < rows[b]; });
    for (std::size_t i : order) out[i] = read_dot(rows[i], query);
}

HalfRowsWriter::HalfRowsWriter(fs::path path, std::size_t dim) : path_(std::move(path)), dim_(dim) {
    if (dim == 0) throw_usage("float16 rows need a dimension ≥ 1");
    file_ = std::fopen(path_.c_str(), "wb");
    if (!file_) throw_input("{}: cannot write: {}", path_.string(), std::strerror(errno));
    const std::string h = half_npy_header(0, dim_);
    if (std::fwrite(h.data(), 1, h.size(), file_) != h.size()) throw_input("{}: write failed", path_.string());
}

HalfRowsWriter::~HalfRowsWriter() {
    if (!file_) return;
    std::fclose(file_);
    std::error_code ec;
    fs::remove(path_, ec);
}

void HalfRowsWriter::append(const float* rows, std::size_t count) {
    if (!file_) throw_usage("{}: rows appended after finish()", path_.string());
    std::vector<float> v(dim_);
    std::vector<std::uint16_t> h(dim_);
    for (std::size_t r = 0; r < count; ++r) {
        std::copy(rows + r * dim_, rows + (r + 1) * dim_, v.begin());
        if (first_non_finite(std::span<const float>(v)) < dim_)
            throw_input("vector {} holds non-finite values (NaN or infinity): refusing to index it", n_ + r);
        l2_normalize(v.data(), dim_);
        for (std::size_t j = 0; j < dim_; ++j) h[j] = float_to_half(v[j]);
        if (std::fwrite(h.data(), 2, dim_, file_) != dim_) throw_input("{}: write failed (disk full?)", path_.string());
    }
    n_ += count;
}

std::shared_ptr<const HalfRows> HalfRowsWriter::finish(bool remove_on_close) {
    if (!file_) throw_usage("{}: finished twice", path_.string());
    const std::string h = half_npy_header(n_, dim_);
    const bool ok = std::fseek(file_, 0, SEEK_SET) == 0 && std::fwrite(h.data(), 1, h.size(), file_) == h.size() &&
                    std::fflush(file_) == 0 && ::fsync(fileno(file_)) == 0;
    std::fclose(file_);
    file_ = nullptr;
    if (!ok) throw_input("{}: write failed", path_.string());
    return HalfRows::open(path_, n_, dim_, remove_on_close);
}

// ---------------------------------------------------------------------------------------------
// Compressed VectorIndex
// ---------------------------------------------------------------------------------------------

namespace {

std::vector<std::pair<std::int64_t, float>> best_k(std::vector<std::pair<std::int64_t, float>> scored, std::size_t k) {
    k = std::min(k, scored.size());
    std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k), scored.end(),
                      [](const auto& a, const auto& b) { return a.second > b.second || (a.second == b.second && a.first < b.first); });
    scored.resize(k);
    return scored;
}

// Runs this thread's OpenMP regions on `n` threads while it lives (the setting is the calling thread's own).
class OmpThreads {
public:
    explicit OmpThreads(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
    ~OmpThreads() { omp_set_num_threads(saved_); }
    OmpThreads(const OmpThreads&) = delete;
    OmpThreads& operator=(const OmpThreads&) = delete;

private:
    int saved_;
};

// The quantiser's training sample: every stride-th row, widened to float. The mapped pages are released every
// 4096 sampled rows: a page fault maps the cached pages around the row too (the kernel's fault-around), so
// sampling 65 536 rows of a 10 M-row file left 4 GB of it resident before the whole was released at the end.
std::vector<float> training_sample(const HalfRows& rows, std::size_t count) {
    const std::size_t n = rows.size(), dim = rows.dimension(), stride = std::max<std::size_t>(1, n / count);
    count = std::min(count, n);
    std::vector<float> out(count * dim);
    constexpr std::size_t kBlock = 4096;
    for (std::size_t i0 = 0; i0 < count; i0 += kBlock) {
        const std::size_t i1 = std::min(count, i0 + kBlock);
        for (std::size_t i = i0; i < i1; ++i) rows.to_float(i * stride, 1, out.data() + i * dim);
        rows.release(i0 * stride, (i1 - 1 - i0) * stride + 1);
    }
    rows.release(0, n);
    return out;
}

// The `fetch` best candidates by code score: MESS's own scan for 8-bit scalar codes (sq8_scan.cpp), FAISS's
// search for the other families (PQ: table look-ups, already fast in FAISS). The candidates are re-ranked
// exactly afterwards, so the SQ8 scan scores with 8-bit query weights where the CPU has VNNI (about twice the
// rows a second; at 10 M rows the same recall@10, docs/INDEXES.md).
std::vector<std::pair<std::int64_t, float>> code_candidates(const faiss::Index& index, const float* query, std::size_t fetch, int nprobe) {
    const std::size_t np = nprobe > 0 ? static_cast<std::size_t>(nprobe) : 0;
    const auto scoring = detail::sq8_int8_fast() ? detail::Sq8Scoring::int8 : detail::Sq8Scoring::exact;
    if (const auto* sq8 = detail::as_sq8(index)) return detail::sq8_candidates(*sq8, query, fetch, np, scoring);
    if (const auto* pre = detail::as_projected_sq8(index)) return detail::sq8_projected_candidates(*pre, query, fetch, np, scoring);
    std::vector<float> d(fetch);
    std::vector<faiss::Index::idx_t> labels(fetch);
    faiss::SearchParametersIVF ivf;
    if (nprobe > 0) ivf.nprobe = static_cast<std::size_t>(nprobe);
    index.search(1, query, static_cast<faiss::Index::idx_t>(fetch), d.data(), labels.data(), nprobe > 0 ? &ivf : nullptr);
    std::vector<std::pair<std::int64_t, float>> out;
    for (std::size_t i = 0; i < fetch; ++i)
        if (labels[i] >= 0) out.emplace_back(labels[i], d[i]);
    return out;
}

// A PCA in front of the lists ("PCA<d'>,IVF<nlist>,SQ8"): trained on the sample before the lists, and then
// made linear (y = A·x, FAISS's bias −A·mean dropped). Then (A·q)·(A·x) = q·P·x with P = AᵀA, and
// q·x − q·P·x = q·(I − P)·x: with the mean's own share q·(I − P)·mean the same for every row of a query, the
// ranking error is q·(I − P)·(x − mean), which the top d' principal components make as small as d' allows.
// With FAISS's bias the row-dependent term −mean·P·x would bias every score. FAISS's IndexPreTransform then
// trains only what is untrained (the lists, on the projected sample).
void train_linear_projection(faiss::Index& index, std::size_t n, const float* sample) {
    auto* pre = dynamic_cast<faiss::IndexPreTransform*>(&index);
    if (!pre) return;
    if (pre->chain.size() > 1) throw_usage("a compressed index takes one PCA<d> projection at most");
    for (faiss::VectorTransform* t : pre->chain) {
        auto* pca = dynamic_cast<faiss::PCAMatrix*>(t);
        if (!pca) throw_usage("a compressed index takes a PCA<d> projection only, not another transform");
        if (pca->d_out > pca->d_in) throw_usage("PCA{} projects {} dimensions: it cannot keep more than there are", pca->d_out, pca->d_in);
        if (n < static_cast<std::size_t>(pca->d_in)) throw_usage("PCA{} needs at least {} training rows, there are {}", pca->d_out, pca->d_in, n);
        pca->train(static_cast<faiss::Index::idx_t>(n), sample);
        pca->b.assign(static_cast<std::size_t>(pca->d_out), 0.0f);
    }
}

}  // namespace

namespace detail {

std::vector<std::pair<std::int64_t, float>> compressed_search(const faiss::Index& index, const HalfRows& rows, const float* query,
                                                              std::size_t k, std::size_t rerank, int nprobe, bool exact) {
    const std::size_t n = rows.size();
    std::vector<std::pair<std::int64_t, float>> scored;
    if (exact) {  // in blocks whose pages are released after scoring: a scan of 15 GB leaves none counted as resident
        scored.resize(n);
        constexpr std::size_t kBlock = 65536;
        rows.prefetch(0, std::min(kBlock, n));
        for (std::size_t r0 = 0; r0 < n; r0 += kBlock) {
            const std::size_t r1 = std::min(n, r0 + kBlock);
            if (r1 < n) rows.prefetch(r1, std::min(kBlock, n - r1));  // the next block is read while this one is scored
#pragma omp parallel for schedule(static)
            for (std::size_t r = r0; r < r1; ++r) scored[r] = {static_cast<std::int64_t>(r), rows.dot(r, query)};
            rows.release(r0, r1 - r0);
        }
        return best_k(std::move(scored), k);
    }
    const std::size_t fetch = std::min(n, std::max(k, rerank));
    // One query: FAISS would open an OpenMP team for the coarse quantiser's few thousand centroids, which
    // costs more than it saves (and on a loaded machine waits for a second core). The thread count is this
    // thread's own setting, so concurrent queries are unaffected.
    try {
        const OmpThreads one(1);
        scored = code_candidates(index, query, fetch, nprobe);
    } catch (const faiss::FaissException& e) {
        throw_internal("index search failed: {}", e.what());
    }
    std::vector<std::size_t> candidates(scored.size());
    std::vector<float> scores(scored.size());
    for (std::size_t i = 0; i < scored.size(); ++i) candidates[i] = static_cast<std::size_t>(scored[i].first);
    rows.read_dots(candidates, query, scores.data());
    for (std::size_t i = 0; i < scored.size(); ++i) scored[i].second = scores[i];
    return best_k(std::move(scored), k);
}

}  // namespace detail

VectorIndex VectorIndex::build_compressed(std::shared_ptr<const HalfRows> rows, const CompressedParams& params) {
    if (!rows || rows->size() == 0) throw_usage("cannot build a compressed index over no rows");
    const std::size_t n = rows->size(), dim = rows->dimension();
    detail::check_product_quantiser(params.factory, dim);
    VectorIndex v;
    v.n_ = n;
    v.dim_ = dim;
    v.factory_ = params.factory;
    v.rerank_ = params.rerank ? params.rerank : kDefaultRerank;
    try {
        v.index_.reset(faiss::index_factory(static_cast<int>(dim), params.factory.c_str(), faiss::METRIC_INNER_PRODUCT));
        auto* ivf = faiss::ivflib::try_extract_index_ivf(v.index_.get());
        if (!ivf) throw_usage("a compressed index needs an IVF factory (IVF<nlist>,SQ8 or IVF<nlist>,PQ<m>), not '{}'", params.factory);
        if (auto* ivfpq = dynamic_cast<faiss::IndexIVFPQ*>(ivf)) ivfpq->do_polysemous_training = false;
        // FAISS's k-means samples 256 rows per list at most; a larger sample would only be thrown away.
        const std::size_t train = std::min(n, params.train_rows ? params.train_rows : std::max<std::size_t>(65536, 64 * ivf->nlist));
        if (train < ivf->nlist) throw_usage("'{}' needs at least {} rows to train, there are {}", params.factory, ivf->nlist, n);
        const std::vector<float> sample = training_sample(*rows, train);
        {
            // k-means opens an OpenMP team per block of distances (PQ96: ~40 000 teams of a few microseconds'
            // work); on a loaded machine each one waits for a descheduled thread (10 ms), which made a 20 k-row
            // PQ96 training take 380 s instead of 33 s. The distances themselves are BLAS (its own threads).
            const OmpThreads one(1);
            train_linear_projection(*v.index_, train, sample.data());
            v.index_->train(static_cast<faiss::Index::idx_t>(train), sample.data());
        }
        constexpr std::size_t kChunk = 65536;
        std::vector<float> chunk(kChunk * dim);
        for (std::size_t r0 = 0; r0 < n; r0 += kChunk) {
            const std::size_t c = std::min(kChunk, n - r0);
            rows->to_float(r0, c, chunk.data());
            rows->release(r0, c);
            v.index_->add(static_cast<faiss::Index::idx_t>(c), chunk.data());
            if (params.on_progress) params.on_progress(r0 + c, n);
        }
        ivf->nprobe = static_cast<std::size_t>(params.nprobe > 0 ? params.nprobe : kDefaultCompressedNprobe);
    } catch (const faiss::FaissException& e) {
        throw_usage("index factory '{}' over {} vectors of dimension {}: {}", params.factory, n, dim, e.what());
    }
    v.half_ = std::move(rows);
    return v;
}

VectorIndex VectorIndex::read_compressed(const fs::path& path, std::shared_ptr<const HalfRows> rows, const std::string& factory,
                                         std::size_t rerank) {
    VectorIndex v;
    v.index_ = detail::read_faiss_index(path);
    v.n_ = static_cast<std::size_t>(v.index_->ntotal);
    v.dim_ = static_cast<std::size_t>(v.index_->d);
    if (!faiss::ivflib::try_extract_index_ivf(v.index_.get())) throw_input("{}: a compressed index must be IVF", path.string());
    if (rows->size() != v.n_ || rows->dimension() != v.dim_)
        throw_input("{}: index holds {} × {} but {} holds {} × {}", path.string(), v.n_, v.dim_, rows->path().string(), rows->size(),
                    rows->dimension());
    v.half_ = std::move(rows);
    v.factory_ = factory;
    v.rerank_ = rerank ? rerank : kDefaultRerank;
    return v;
}

const char* sq8_scan_isa() { return detail::sq8_isa_name(detail::sq8_best_isa()); }
std::size_t sq8_split_scans() { return detail::split_scan_count(); }

std::vector<float> VectorIndex::row_vector(std::size_t row) const {
    if (row >= n_) throw_usage("row {} of an index of {} rows", row, n_);
    std::vector<float> out(dim_);
    if (half_) half_->to_float(row, 1, out.data());
    else std::copy(vector(row), vector(row) + dim_, out.begin());
    return out;
}

}  // namespace mess
