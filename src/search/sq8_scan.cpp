// MESS's scan of IVF-SQ8 lists: the query folded into one weight per dimension, then a uint8 × float dot per
// row (AVX-512, AVX2 or portable, picked at run time) and a bounded heap of the best candidates across lists.
// Debian's generic FAISS decodes every 8-bit component in scalar code (about 1.1 µs per 768-dimension row);
// this kernel reads 16 codes per instruction.
#include "sq8_scan.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#include <faiss/IndexFlat.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/invlists/InvertedLists.h>
#include <immintrin.h>

#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess::detail {

namespace {

// 16 codes widened to floats (AVX-512; the zero-masked forms: GCC 12 warns that the plain ones read an
// undefined register) and 8 codes (AVX2).
__attribute__((target("avx512f"))) inline __m512 widen16(const std::uint8_t* c) {
    const __m512i wide = _mm512_maskz_cvtepu8_epi32(0xffff, _mm_loadu_si128(reinterpret_cast<const __m128i*>(c)));
    return _mm512_maskz_cvtepi32_ps(0xffff, wide);
}
__attribute__((target("avx2"))) inline __m256 widen8(const std::uint8_t* c) {
    return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(c))));
}

__attribute__((target("avx512f"))) void dots_avx512(const std::uint8_t* codes, std::size_t n, std::size_t dim, const float* w, float* out) {
    for (std::size_t r = 0; r < n; ++r) {
        const std::uint8_t* c = codes + r * dim;
        auto widen = [c](std::size_t j) __attribute__((target("avx512f"))) { return widen16(c + j); };
        __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
        std::size_t j = 0;
        for (; j + 64 <= dim; j += 64) {  // four chains: an FMA's latency is four of its issue slots
            a0 = _mm512_fmadd_ps(widen(j), _mm512_loadu_ps(w + j), a0);
            a1 = _mm512_fmadd_ps(widen(j + 16), _mm512_loadu_ps(w + j + 16), a1);
            a2 = _mm512_fmadd_ps(widen(j + 32), _mm512_loadu_ps(w + j + 32), a2);
            a3 = _mm512_fmadd_ps(widen(j + 48), _mm512_loadu_ps(w + j + 48), a3);
        }
        for (; j + 16 <= dim; j += 16) a0 = _mm512_fmadd_ps(widen(j), _mm512_loadu_ps(w + j), a0);
        alignas(64) float lanes[16];  // (GCC 12's _mm512_reduce_add_ps warns of an undefined register)
        _mm512_store_ps(lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
        float s = 0;
        for (float v : lanes) s += v;
        for (; j < dim; ++j) s += w[j] * static_cast<float>(c[j]);
        out[r] = s;
    }
}

__attribute__((target("avx2,fma"))) void dots_avx2(const std::uint8_t* codes, std::size_t n, std::size_t dim, const float* w, float* out) {
    for (std::size_t r = 0; r < n; ++r) {
        const std::uint8_t* c = codes + r * dim;
        auto widen = [c](std::size_t j) __attribute__((target("avx2"))) { return widen8(c + j); };
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
        std::size_t j = 0;
        for (; j + 32 <= dim; j += 32) {
            a0 = _mm256_fmadd_ps(widen(j), _mm256_loadu_ps(w + j), a0);
            a1 = _mm256_fmadd_ps(widen(j + 8), _mm256_loadu_ps(w + j + 8), a1);
            a2 = _mm256_fmadd_ps(widen(j + 16), _mm256_loadu_ps(w + j + 16), a2);
            a3 = _mm256_fmadd_ps(widen(j + 24), _mm256_loadu_ps(w + j + 24), a3);
        }
        for (; j + 8 <= dim; j += 8) a0 = _mm256_fmadd_ps(widen(j), _mm256_loadu_ps(w + j), a0);
        const __m256 a = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
        __m128 h = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
        h = _mm_add_ps(h, _mm_movehl_ps(h, h));
        h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
        float s = _mm_cvtss_f32(h);
        for (; j < dim; ++j) s += w[j] * static_cast<float>(c[j]);
        out[r] = s;
    }
}

void dots_baseline(const std::uint8_t* codes, std::size_t n, std::size_t dim, const float* w, float* out) {
    for (std::size_t r = 0; r < n; ++r) {
        const std::uint8_t* c = codes + r * dim;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        std::size_t j = 0;
        for (; j + 8 <= dim; j += 8)
            for (std::size_t t = 0; t < 8; ++t) acc[t] += w[j + t] * static_cast<float>(c[j + t]);
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; j < dim; ++j) s += w[j] * static_cast<float>(c[j]);
        out[r] = s;
    }
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline std::int32_t lane_sum(__m512i v) {
    alignas(64) std::int32_t lanes[16];  // (GCC 12's reduce and extract intrinsics warn of an undefined register)
    _mm512_store_si512(lanes, v);
    std::int32_t s = 0;
    for (std::int32_t x : lanes) s += x;
    return s;
}

// The integer dots of R consecutive rows: vpdpbusd multiplies 64 unsigned codes by 64 signed weights and adds
// each group of four products into one of 16 32-bit lanes, R independent chains (a vpdpbusd's latency is
// several of its issue slots). `w` holds dim weights followed by zeros up to a multiple of 64; the codes past
// dim are masked off (read as zero), so no row reads beyond its own bytes.
template <int R>
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void int8_rows(const std::uint8_t* c, std::size_t dim, const std::int8_t* w,
                                                                            std::int32_t* out) {
    const std::size_t full = dim / 64 * 64;
    __m512i acc[R];
    for (int i = 0; i < R; ++i) acc[i] = _mm512_setzero_si512();
    for (std::size_t j = 0; j < full; j += 64) {
        const __m512i wv = _mm512_loadu_si512(w + j);
        for (int i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(c + i * dim + j), wv);
    }
    if (const __mmask64 tail = dim % 64 ? (~0ull >> (64 - dim % 64)) : 0) {
        const __m512i wv = _mm512_loadu_si512(w + full);
        for (int i = 0; i < R; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_maskz_loadu_epi8(tail, c + i * dim + full), wv);
    }
    for (int i = 0; i < R; ++i) out[i] = lane_sum(acc[i]);
}

__attribute__((target("avx512f,avx512bw,avx512vnni"))) void dots_int8_vnni(const std::uint8_t* codes, std::size_t n, std::size_t dim,
                                                                         const std::int8_t* w, std::int32_t* out) {
    std::size_t r = 0;
    for (; r + 4 <= n; r += 4) int8_rows<4>(codes + r * dim, dim, w, out + r);
    for (; r < n; ++r) int8_rows<1>(codes + r * dim, dim, w, out + r);
}

void dots_int8_baseline(const std::uint8_t* codes, std::size_t n, std::size_t dim, const std::int8_t* w, std::int32_t* out) {
    for (std::size_t r = 0; r < n; ++r) {
        const std::uint8_t* c = codes + r * dim;
        std::int32_t s = 0;
        for (std::size_t j = 0; j < dim; ++j) s += static_cast<std::int32_t>(c[j]) * w[j];
        out[r] = s;
    }
}

// The best `capacity` (score, row) pairs seen so far: a min-heap whose top is the worst kept.
class BestCandidates {
public:
    explicit BestCandidates(std::size_t capacity) : capacity_(capacity) { heap_.reserve(capacity); }
    void offer(float score, std::int64_t row) {
        if (heap_.size() < capacity_) {
            heap_.emplace_back(score, row);
            std::push_heap(heap_.begin(), heap_.end(), better);
        } else if (better({score, row}, heap_.front())) {
            std::pop_heap(heap_.begin(), heap_.end(), better);
            heap_.back() = {score, row};
            std::push_heap(heap_.begin(), heap_.end(), better);
        }
    }
    void merge(const BestCandidates& other) {
        for (const auto& [s, r] : other.heap_) offer(s, r);
    }
    std::vector<std::pair<std::int64_t, float>> sorted() {
        std::sort_heap(heap_.begin(), heap_.end(), better);  // best first
        std::vector<std::pair<std::int64_t, float>> out;
        out.reserve(heap_.size());
        for (const auto& [s, r] : heap_) out.emplace_back(r, s);
        return out;
    }

private:
    // Higher score first; ties: lower row first (so that answers are reproducible).
    static bool better(const std::pair<float, std::int64_t>& a, const std::pair<float, std::int64_t>& b) {
        return a.first > b.first || (a.first == b.first && a.second < b.second);
    }
    std::size_t capacity_;
    std::vector<std::pair<float, std::int64_t>> heap_;
};

// The query folded into the codes' arithmetic: weights q_d·vdiff_d/255 and the constant Σ_d q_d·(vmin_d + 0.5·vdiff_d/255);
// for int8 scoring also the weights rounded to multiples k_d of `step` (max |w| / 127), zero-padded to a multiple of 64.
struct FoldedQuery {
    std::vector<float> w;
    float constant = 0;
    Sq8Scoring scoring;
    std::vector<std::int8_t> k;
    float step = 0;
    FoldedQuery(const faiss::ScalarQuantizer& sq, const float* q, std::size_t dim, Sq8Scoring how) : w(dim), scoring(how) {
        const float* vmin = sq.trained.data();
        const float* vdiff = sq.trained.data() + dim;
        double c = 0;
        for (std::size_t d = 0; d < dim; ++d) {
            w[d] = q[d] * vdiff[d] / 255.0f;
            c += static_cast<double>(q[d]) * (vmin[d] + 0.5f * vdiff[d] / 255.0f);
        }
        constant = static_cast<float>(c);
        if (scoring == Sq8Scoring::int8) round_weights();
    }
    // The code-dependent part of `n` rows' scores (the constant and the centroid's share are added by the caller).
    void dots(const std::uint8_t* codes, std::size_t n, std::vector<float>& scores, std::vector<std::int32_t>& ints) const {
        scores.resize(n);
        if (scoring == Sq8Scoring::exact) return sq8_dots(sq8_best_isa(), codes, n, w.size(), w.data(), scores.data());
        ints.resize(n);
        sq8_dots_int8(codes, n, w.size(), k.data(), ints.data());
        for (std::size_t i = 0; i < n; ++i) scores[i] = step * static_cast<float>(ints[i]);
    }

private:
    void round_weights() {
        float top = 0;
        for (float x : w) top = std::max(top, std::fabs(x));
        step = top > 0 ? top / 127.0f : 1.0f;
        k.assign((w.size() + 63) / 64 * 64, 0);
        for (std::size_t d = 0; d < w.size(); ++d) k[d] = static_cast<std::int8_t>(std::clamp(std::lround(w[d] / step), -127l, 127l));
    }
};

// The `nprobe` lists whose centroids have the highest inner product with the query (list, q·centroid), best
// first: MESS's SIMD scan over a flat quantiser's centroids (Debian's FAISS scores one query's centroids with
// its scalar reference loop: about 0.3 ms for 1024 × 768), FAISS's search for any other quantiser.
std::vector<std::pair<std::int64_t, float>> nearest_lists(const faiss::IndexIVFScalarQuantizer& index, const float* query, std::size_t nprobe) {
    nprobe = std::min(nprobe, index.nlist);
    if (const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index.quantizer); flat && flat->metric_type == faiss::METRIC_INNER_PRODUCT)
        return exact_top_k(flat->get_xb(), static_cast<std::size_t>(flat->ntotal), static_cast<std::size_t>(flat->d), query, nprobe);
    std::vector<float> dots(nprobe);
    std::vector<faiss::Index::idx_t> ids(nprobe);
    index.quantizer->search(1, query, static_cast<faiss::Index::idx_t>(nprobe), dots.data(), ids.data());
    std::vector<std::pair<std::int64_t, float>> out;
    for (std::size_t i = 0; i < nprobe; ++i)
        if (ids[i] >= 0) out.emplace_back(ids[i], dots[i]);  // fewer lists than nprobe
    return out;
}

}  // namespace

bool sq8_isa_supported(Sq8Isa isa) {
    __builtin_cpu_init();
    switch (isa) {
        case Sq8Isa::avx512: return __builtin_cpu_supports("avx512f");
        case Sq8Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Sq8Isa::baseline: return true;
    }
    return false;
}

Sq8Isa sq8_best_isa() {
    static const Sq8Isa best = sq8_isa_supported(Sq8Isa::avx512) ? Sq8Isa::avx512
                               : sq8_isa_supported(Sq8Isa::avx2) ? Sq8Isa::avx2
                                                                 : Sq8Isa::baseline;
    return best;
}

const char* sq8_isa_name(Sq8Isa isa) {
    switch (isa) {
        case Sq8Isa::avx512: return "avx512f";
        case Sq8Isa::avx2: return "avx2";
        case Sq8Isa::baseline: return "baseline";
    }
    return "?";
}

bool sq8_int8_fast() {
    __builtin_cpu_init();
    static const bool vnni = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                             __builtin_cpu_supports("avx512vnni");
    return vnni;
}

void sq8_dots_int8(const std::uint8_t* codes, std::size_t n, std::size_t dim, const std::int8_t* w, std::int32_t* out) {
    if (sq8_int8_fast()) return dots_int8_vnni(codes, n, dim, w, out);
    dots_int8_baseline(codes, n, dim, w, out);
}

void sq8_dots(Sq8Isa isa, const std::uint8_t* codes, std::size_t n, std::size_t dim, const float* w, float* out) {
    if (!sq8_isa_supported(isa)) throw_usage("this CPU does not run the {} SQ8 kernel", sq8_isa_name(isa));
    switch (isa) {
        case Sq8Isa::avx512: return dots_avx512(codes, n, dim, w, out);
        case Sq8Isa::avx2: return dots_avx2(codes, n, dim, w, out);
        case Sq8Isa::baseline: return dots_baseline(codes, n, dim, w, out);
    }
}

const faiss::IndexIVFScalarQuantizer* as_sq8(const faiss::Index& index) {
    const auto* ivf = dynamic_cast<const faiss::IndexIVFScalarQuantizer*>(&index);
    if (!ivf || ivf->metric_type != faiss::METRIC_INNER_PRODUCT || ivf->sq.qtype != faiss::ScalarQuantizer::QT_8bit) return nullptr;
    const auto d = static_cast<std::size_t>(ivf->d);
    if (ivf->sq.d != d || ivf->sq.code_size != d || ivf->sq.trained.size() != 2 * d || !ivf->invlists) return nullptr;
    return ivf;
}

namespace {

// One helper thread for the whole process: a query hands it half of its lists and scans the other half itself.
// A query that finds it busy (another query's half) does not wait for it: it scans every list itself.
class ScanHelper {
public:
    static ScanHelper& get() {
        static ScanHelper helper;
        return helper;
    }
    // Starts `work` on the helper and returns true, or returns false when it is busy or there is no second core.
    bool try_start(std::function<void()> work) {
        if (std::thread::hardware_concurrency() < 2) return false;
        std::unique_lock lock(m_);
        if (owned_) return false;
        if (!thread_.joinable()) thread_ = std::thread([this] { loop(); });
        owned_ = true;
        done_ = false;
        error_ = nullptr;
        task_ = std::move(work);
        cv_.notify_all();
        return true;
    }
    // Waits for the work try_start started, rethrowing what it threw, and frees the helper for the next query.
    void finish() {
        std::unique_lock lock(m_);
        cv_.wait(lock, [this] { return done_; });
        owned_ = false;
        if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    }
    ~ScanHelper() {
        {
            std::lock_guard lock(m_);
            stop_ = true;
        }
        cv_.notify_all();
        if (thread_.joinable()) thread_.join();
    }

private:
    ScanHelper() = default;
    void loop() {
        std::unique_lock lock(m_);
        for (;;) {
            cv_.wait(lock, [this] { return stop_ || task_; });
            if (stop_) return;
            auto work = std::exchange(task_, nullptr);
            lock.unlock();
            std::exception_ptr error;
            try {
                work();
            } catch (...) {
                error = std::current_exception();
            }
            lock.lock();
            error_ = error;
            done_ = true;
            cv_.notify_all();
        }
    }
    std::mutex m_;
    std::condition_variable cv_;
    std::function<void()> task_;
    std::exception_ptr error_;
    bool owned_ = false, done_ = false, stop_ = false;
    std::thread thread_;
};

std::atomic<std::size_t> split_scans{0};

using Lists = std::vector<std::pair<std::int64_t, float>>;

// Scores every row of `lists` (list, q·centroid) into `best`.
void scan_lists(const faiss::IndexIVFScalarQuantizer& index, const FoldedQuery& fq, const Lists& lists, BestCandidates& best) {
    std::vector<float> scores;
    std::vector<std::int32_t> ints;
    for (const auto& [list_no, centroid_dot] : lists) {
        const auto list = static_cast<std::size_t>(list_no);
        const std::size_t size = index.invlists->list_size(list);
        if (size == 0) continue;
        faiss::InvertedLists::ScopedCodes codes(index.invlists, list);
        faiss::InvertedLists::ScopedIds ids(index.invlists, list);
        fq.dots(codes.get(), size, scores, ints);
        const float offset = fq.constant + (index.by_residual ? centroid_dot : 0.0f);
        for (std::size_t i = 0; i < size; ++i) best.offer(offset + scores[i], ids[i]);
    }
}

// The lists in two parts of about equal rows (each list to the part with fewer rows so far, nearest first).
std::pair<Lists, Lists> halves(const faiss::IndexIVFScalarQuantizer& index, const Lists& lists) {
    std::pair<Lists, Lists> out;
    std::size_t rows_a = 0, rows_b = 0;
    for (const auto& l : lists) {
        const std::size_t size = index.invlists->list_size(static_cast<std::size_t>(l.first));
        (rows_a <= rows_b ? out.first : out.second).push_back(l);
        (rows_a <= rows_b ? rows_a : rows_b) += size;
    }
    return out;
}

}  // namespace

std::vector<std::pair<std::int64_t, float>> sq8_candidates(const faiss::IndexIVFScalarQuantizer& index, const float* query,
                                                           std::size_t fetch, std::size_t nprobe, Sq8Scoring scoring) {
    if (fetch == 0) throw_usage("an SQ8 scan needs at least one candidate to return");
    const auto dim = static_cast<std::size_t>(index.d);
    const auto lists = nearest_lists(index, query, nprobe > 0 ? nprobe : index.nprobe);
    const FoldedQuery fq(index.sq, query, dim, scoring);
    std::size_t rows = 0;
    for (const auto& l : lists) rows += index.invlists->list_size(static_cast<std::size_t>(l.first));
    BestCandidates best(fetch);
    if (rows * dim < kSplitScanBytes || lists.size() < 2) {
        scan_lists(index, fq, lists, best);
        return best.sorted();
    }
    const auto [mine, theirs] = halves(index, lists);
    BestCandidates other(fetch);
    ScanHelper& helper = ScanHelper::get();
    if (!helper.try_start([&] { scan_lists(index, fq, theirs, other); })) {
        scan_lists(index, fq, lists, best);
        return best.sorted();
    }
    try {
        scan_lists(index, fq, mine, best);
    } catch (...) {
        helper.finish();  // the helper reads this frame's lists and heap: wait for it before unwinding
        throw;
    }
    helper.finish();
    ++split_scans;
    best.merge(other);
    return best.sorted();
}

std::size_t split_scan_count() { return split_scans.load(); }

const faiss::IndexPreTransform* as_projected_sq8(const faiss::Index& index) {
    const auto* pre = dynamic_cast<const faiss::IndexPreTransform*>(&index);
    if (!pre || pre->chain.empty() || !pre->index || !as_sq8(*pre->index) || pre->metric_type != faiss::METRIC_INNER_PRODUCT) return nullptr;
    for (const faiss::VectorTransform* t : pre->chain)
        if (!dynamic_cast<const faiss::LinearTransform*>(t) || !t->is_trained) return nullptr;
    return pre;
}

std::vector<std::pair<std::int64_t, float>> sq8_projected_candidates(const faiss::IndexPreTransform& index, const float* query,
                                                                     std::size_t fetch, std::size_t nprobe, Sq8Scoring scoring) {
    const faiss::IndexIVFScalarQuantizer* sq8 = as_sq8(*index.index);
    if (!sq8) throw_usage("a projected SQ8 scan needs an IVF-SQ8 index behind the projection");
    // The chain applied here, not by FAISS's apply_chain: its matrix product of one query goes through BLAS,
    // whose worker threads then spin waiting for more work (measured at 10 M rows: 30–40 ms of CPU a query
    // whatever nprobe, taken from the scan's two threads).
    std::vector<float> x(query, query + index.d), y;
    for (const faiss::VectorTransform* t : index.chain) {
        const auto& lt = dynamic_cast<const faiss::LinearTransform&>(*t);  // as_projected_sq8 checked it
        const auto d_in = static_cast<std::size_t>(lt.d_in), d_out = static_cast<std::size_t>(lt.d_out);
        y.assign(d_out, 0.0f);
        for (std::size_t i = 0; i < d_out; ++i) {
            const float* a = lt.A.data() + i * d_in;
            float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // eight chains: the compiler vectorises them
            std::size_t j = 0;
            for (; j + 8 <= d_in; j += 8)
                for (std::size_t l = 0; l < 8; ++l) acc[l] += a[j + l] * x[j + l];
            float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
            for (; j < d_in; ++j) s += a[j] * x[j];
            y[i] = s + (lt.have_bias && i < lt.b.size() ? lt.b[i] : 0.0f);
        }
        x.swap(y);
    }
    return sq8_candidates(*sq8, x.data(), fetch, nprobe, scoring);
}

}  // namespace mess::detail
