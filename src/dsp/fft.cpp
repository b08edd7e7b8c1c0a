// Batched real FFT (fft.hpp): radix-2 decimation in time over n/2 complex points, one frame per SIMD lane. The
// butterflies are those of plain radix-2 stages, grouped into fewer passes over memory (from 16 points: the bit
// reversal with stages 1, 2, 4 in registers; stages two at a time, three on AVX-512; the last stage with the split
// into real bins), so every value is the same as stage by stage.
#include "fft.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <utility>
#include <numbers>

#include "mess/util.hpp"

namespace mess::dsp::detail {

namespace {

template <class T>
struct VecOf;
template <>
struct VecOf<float> {
    typedef float type __attribute__((vector_size(64)));
};
template <>
struct VecOf<double> {
    typedef double type __attribute__((vector_size(64)));
};
template <class T>
using Vec = typename VecOf<T>::type;

template <class T>
struct Work {
    int n;
    const T *in;
    T *zr, *zi, *xr, *xi;
    const std::int32_t* rev;
    const T *twr, *twi, *postc, *posts;
};

// One radix-2 butterfly pair (u, u + h) with twiddle (cr, ci): u ← u + w·v, v ← u − w·v.
#define MESS_FFT_BUTTERFLY(ur, ui, vr_, vi_, cr, ci)                                       \
    do {                                                                                   \
        const V br = (vr_), bi = (vi_);                                                    \
        const V tr = br * (cr) - bi * (ci), ti = br * (ci) + bi * (cr);                   \
        const V ar = (ur), ai = (ui);                                                      \
        (ur) = ar + tr, (ui) = ai + ti, (vr_) = ar - tr, (vi_) = ai - ti;                  \
    } while (0)

// The stages of the complex FFT of m = n/2 points, in place on split arrays (input in bit-reversed order): radix-2
// stages of half-length 1, 2, 4, ... m/2, each butterfly u ← u + w·v, v ← u − w·v with the stage's twiddle table. The
// passes differ only in how many stages they take per visit of the points; every butterfly is the same in all.
template <class T>
[[gnu::always_inline]] inline void stage_one(Vec<T>* zr, Vec<T>* zi, int m) {  // length-2 butterflies: twiddle 1
    using V = Vec<T>;
    for (int i = 0; i + 1 < m; i += 2) {
        const V ar = zr[i], ai = zi[i], br = zr[i + 1], bi = zi[i + 1];
        zr[i] = ar + br, zi[i] = ai + bi, zr[i + 1] = ar - br, zi[i + 1] = ai - bi;
    }
}

// Stages h and 2h in one pass over groups of 4h points (twr, twi: stage h's table, then stage 2h's).
template <class T>
[[gnu::always_inline]] inline void stage_pair(Vec<T>* zr, Vec<T>* zi, int m, int half, const T* twr, const T* twi) {
    using V = Vec<T>;
    const T *w1r = twr, *w1i = twi, *w2r = twr + half, *w2i = twi + half;
    for (int i = 0; i < m; i += 4 * half)
        for (int k = 0; k < half; ++k) {
            V* r = zr + i + k;
            V* q = zi + i + k;
            MESS_FFT_BUTTERFLY(r[0], q[0], r[half], q[half], w1r[k], w1i[k]);
            MESS_FFT_BUTTERFLY(r[2 * half], q[2 * half], r[3 * half], q[3 * half], w1r[k], w1i[k]);
            MESS_FFT_BUTTERFLY(r[0], q[0], r[2 * half], q[2 * half], w2r[k], w2i[k]);
            MESS_FFT_BUTTERFLY(r[half], q[half], r[3 * half], q[3 * half], w2r[k + half], w2i[k + half]);
        }
}

// Stages h, 2h and 4h in one pass over groups of 8h points, the eight points of a butterfly group in registers
// (twr, twi: the tables of stages h, 2h, 4h). Wants 32 vector registers (AVX-512).
template <class T>
[[gnu::always_inline]] inline void stage_triple(Vec<T>* zr, Vec<T>* zi, int m, int half, const T* twr, const T* twi) {
    using V = Vec<T>;
    const T *w1r = twr, *w1i = twi, *w2r = twr + half, *w2i = twi + half, *w4r = twr + 3 * half, *w4i = twi + 3 * half;
    for (int i = 0; i < m; i += 8 * half)
        for (int k = 0; k < half; ++k) {
            V r[8], q[8];
            for (int t = 0; t < 8; ++t) r[t] = zr[i + k + t * half], q[t] = zi[i + k + t * half];
            for (int t = 0; t < 8; t += 2) MESS_FFT_BUTTERFLY(r[t], q[t], r[t + 1], q[t + 1], w1r[k], w1i[k]);
            for (int t : {0, 1, 4, 5}) MESS_FFT_BUTTERFLY(r[t], q[t], r[t + 2], q[t + 2], w2r[k + (t & 1) * half], w2i[k + (t & 1) * half]);
            for (int t = 0; t < 4; ++t) MESS_FFT_BUTTERFLY(r[t], q[t], r[t + 4], q[t + 4], w4r[k + t * half], w4i[k + t * half]);
            for (int t = 0; t < 8; ++t) zr[i + k + t * half] = r[t], zi[i + k + t * half] = q[t];
        }
}

template <class T>
[[gnu::always_inline]] inline void stage_single(Vec<T>* zr, Vec<T>* zi, int m, int half, const T* twr, const T* twi) {
    using V = Vec<T>;
    for (int i = 0; i < m; i += 2 * half)
        for (int k = 0; k < half; ++k) MESS_FFT_BUTTERFLY(zr[i + k], zi[i + k], zr[i + k + half], zi[i + k + half], twr[k], twi[k]);
}

// The bit reversal and stages 1, 2 and 4 in registers, eight points at a time: point p of the bit-reversed order
// is the input's sample pair rev[p] (the reversal is its own inverse). m ≥ 8; twr, twi: the tables of stages 2, 4.
template <class T>
[[gnu::always_inline]] inline void first_stages(const Vec<T>* in, const std::int32_t* rev, Vec<T>* zr, Vec<T>* zi, int m, const T* twr,
                                                const T* twi) {
    using V = Vec<T>;
    for (int i = 0; i < m; i += 8) {
        V r[8], q[8];
        for (int t = 0; t < 8; ++t) r[t] = in[2 * rev[i + t]], q[t] = in[2 * rev[i + t] + 1];
        stage_one<T>(r, q, 8);
        stage_pair<T>(r, q, 8, 2, twr, twi);
        for (int t = 0; t < 8; ++t) zr[i + t] = r[t], zi[i + t] = q[t];
    }
}

// Real-input bin q from bins q and m − q of the complex transform Z (b = Z[m − q]): the even part (Z[q] + conj b) / 2
// plus e^{−2πiq/n} times the odd part (Z[q] − conj b) / 2i.
template <class T>
[[gnu::always_inline]] inline void split_bin(Vec<T> ar, Vec<T> ai, Vec<T> br, Vec<T> b_im, T c, T s, Vec<T>& xr, Vec<T>& xi) {
    using V = Vec<T>;
    const V bi = -b_im;
    const V er = (ar + br) * T(0.5), ei = (ai + bi) * T(0.5);   // even part
    const V orr = (ai - bi) * T(0.5), oi = (br - ar) * T(0.5);  // odd part: (a − b) / 2i
    xr = er + orr * c - oi * s;
    xi = ei + oi * c + orr * s;
}

// The last stage (half-length h = m/2) and the split into real bins in one pass: butterflies k and h − k give
// Z[k], Z[k + h], Z[h − k] and Z[m − k], all that bins k, m − k, h − k and h + k read.
template <class T>
[[gnu::always_inline]] inline void last_stage_split(const Work<T>& w, Vec<T>* zr, Vec<T>* zi, int m, const T* twr, const T* twi) {
    using V = Vec<T>;
    V *xr = reinterpret_cast<V*>(w.xr), *xi = reinterpret_cast<V*>(w.xi);
    const int h = m / 2;
    const T *c = w.postc, *s = w.posts;
    V r0 = zr[0], q0 = zi[0], rh = zr[h], qh = zi[h];
    MESS_FFT_BUTTERFLY(r0, q0, rh, qh, twr[0], twi[0]);
    const V zero = r0 - r0;
    xr[0] = r0 + q0, xi[0] = zero;
    xr[m] = r0 - q0, xi[m] = zero;
    split_bin<T>(rh, qh, rh, qh, c[h], s[h], xr[h], xi[h]);
    for (int k = 1; 2 * k <= h; ++k) {
        const int j = h - k;  // the partner butterfly (j = k in the middle)
        // {re, im} of Z[k] = A, Z[k + h] = B, Z[h − k] = C, Z[m − k] = D.
        V A[2] = {zr[k], zi[k]}, B[2] = {zr[k + h], zi[k + h]};
        MESS_FFT_BUTTERFLY(A[0], A[1], B[0], B[1], twr[k], twi[k]);
        V C[2] = {A[0], A[1]}, D[2] = {B[0], B[1]};
        if (j != k) {
            C[0] = zr[j], C[1] = zi[j], D[0] = zr[j + h], D[1] = zi[j + h];
            MESS_FFT_BUTTERFLY(C[0], C[1], D[0], D[1], twr[j], twi[j]);
        }
        split_bin<T>(A[0], A[1], D[0], D[1], c[k], s[k], xr[k], xi[k]);
        split_bin<T>(D[0], D[1], A[0], A[1], c[m - k], s[m - k], xr[m - k], xi[m - k]);
        if (j != k) {
            split_bin<T>(C[0], C[1], B[0], B[1], c[j], s[j], xr[j], xi[j]);
            split_bin<T>(B[0], B[1], C[0], C[1], c[h + k], s[h + k], xr[h + k], xi[h + k]);
        }
    }
}
#undef MESS_FFT_BUTTERFLY

// Pack even/odd samples as one complex signal (bit-reversed), transform, split into the n/2 + 1 real-input bins.
// From m = 16 points the first three stages run in registers with the bit reversal and the last with the split;
// the stages between two at a time.
template <class T, bool kTriples>
[[gnu::always_inline]] inline void transform(const Work<T>& w) {
    using V = Vec<T>;
    const int m = w.n / 2;
    const V* in = reinterpret_cast<const V*>(w.in);
    V *zr = reinterpret_cast<V*>(w.zr), *zi = reinterpret_cast<V*>(w.zi);
    const T *twr = w.twr, *twi = w.twi;
    if (m >= 16) {
        first_stages<T>(in, w.rev, zr, zi, m, twr, twi);
        twr += 6, twi += 6;
        int half = 8;
        if constexpr (kTriples)
            for (; 8 * half < m; twr += 7 * half, twi += 7 * half, half *= 8) stage_triple<T>(zr, zi, m, half, twr, twi);
        for (; 4 * half < m; twr += 3 * half, twi += 3 * half, half *= 4) stage_pair<T>(zr, zi, m, half, twr, twi);
        if (2 * half < m) stage_single<T>(zr, zi, m, half, twr, twi), twr += half, twi += half;
        return last_stage_split<T>(w, zr, zi, m, twr, twi);
    }
    for (int j = 0; j < m; ++j) zr[w.rev[j]] = in[2 * j], zi[w.rev[j]] = in[2 * j + 1];
    stage_one<T>(zr, zi, m);
    int half = 2;
    for (; 2 * half < m; twr += 3 * half, twi += 3 * half, half *= 4) stage_pair<T>(zr, zi, m, half, twr, twi);
    if (half < m) stage_single<T>(zr, zi, m, half, twr, twi);
    V *xr = reinterpret_cast<V*>(w.xr), *xi = reinterpret_cast<V*>(w.xi);
    const V zero = zr[0] - zr[0];
    xr[0] = zr[0] + zi[0], xi[0] = zero;
    xr[m] = zr[0] - zi[0], xi[m] = zero;
    for (int k = 1; k < m; ++k) split_bin<T>(zr[k], zi[k], zr[m - k], zi[m - k], w.postc[k], w.posts[k], xr[k], xi[k]);
}

// r[i][j] ← r[j][i] for a W × W block of floats held as W vectors of W (W = 16: AVX-512; W = 8: AVX2): log2 W stages
// of two-vector shuffles, stage h swapping the h × h blocks off the diagonal of every 2h × 2h block (vector j takes
// element x of itself where x & h is 0, else element x − h of vector j + h; vector j + h the rest).
typedef float V16 __attribute__((vector_size(64)));
typedef std::int32_t M16 __attribute__((vector_size(64)));
typedef float V8 __attribute__((vector_size(32)));
typedef std::int32_t M8 __attribute__((vector_size(32)));

template <class V, class M, int W>
[[gnu::always_inline]] inline void transpose_stages(V* r, const M* low, const M* high) {
    for (int s = 0, h = W / 2; h >= 1; ++s, h /= 2)
        for (int j = 0; j < W; ++j)
            if ((j & h) == 0) {
                const V a = r[j], b = r[j + h];
                r[j] = __builtin_shuffle(a, b, low[s]), r[j + h] = __builtin_shuffle(a, b, high[s]);
            }
}

[[gnu::always_inline]] inline void transpose(V16* r) {
    static constexpr M16 low[4] = {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
                                   {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
                                   {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
                                   {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
    static constexpr M16 high[4] = {{8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
                                    {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
                                    {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
                                    {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
    transpose_stages<V16, M16, 16>(r, low, high);
}

[[gnu::always_inline]] inline void transpose(V8* r) {
    static constexpr M8 low[3] = {{0, 1, 2, 3, 8, 9, 10, 11}, {0, 1, 8, 9, 4, 5, 12, 13}, {0, 8, 2, 10, 4, 12, 6, 14}};
    static constexpr M8 high[3] = {{4, 5, 6, 7, 12, 13, 14, 15}, {2, 3, 10, 11, 6, 7, 14, 15}, {1, 9, 3, 11, 5, 13, 7, 15}};
    transpose_stages<V8, M8, 8>(r, low, high);
}

// 16 full frames of floats into the lanes, W × W blocks (W samples of W frames) at a time: each block read as W
// contiguous vectors (one per frame), transposed, each sample's vector then times the window's value and stored —
// the scalar load's float products, a vector at a time. n: a multiple of 16.
template <int W>
[[gnu::always_inline]] inline void load16(const float* y, std::int64_t hop, int n, const float* window, float* in) {
    using V = std::conditional_t<W == 16, V16, V8>;
    for (int i0 = 0; i0 < n; i0 += W)
        for (int f0 = 0; f0 < 16; f0 += W) {
            V r[W];
            for (int f = 0; f < W; ++f) std::memcpy(&r[f], y + (f0 + f) * hop + i0, sizeof(V));
            transpose(r);
            for (int i = 0; i < W; ++i) {
                if (window) r[i] *= window[i0 + i];
                std::memcpy(in + static_cast<std::ptrdiff_t>(i0 + i) * 16 + f0, &r[i], sizeof(V));
            }
        }
}

// rows[f·stride + k] = lanes[k·16 + f] for k < bins and the 16 lanes f, W × W blocks at a time (bins: a multiple of 16).
template <int W>
[[gnu::always_inline]] inline void rows16(const float* lanes, std::int64_t bins, float* rows, std::int64_t stride) {
    using V = std::conditional_t<W == 16, V16, V8>;
    for (std::int64_t k0 = 0; k0 < bins; k0 += W)
        for (int f0 = 0; f0 < 16; f0 += W) {
            V r[W];
            for (int k = 0; k < W; ++k) std::memcpy(&r[k], lanes + (k0 + k) * 16 + f0, sizeof(V));
            transpose(r);
            for (int f = 0; f < W; ++f) std::memcpy(rows + (f0 + f) * stride + k0, &r[f], sizeof(V));
        }
}

#if defined(__x86_64__) && defined(__GNUC__)
#define MESS_FFT_DISPATCH 1
__attribute__((target("avx512f"))) void transform_avx512(const Work<float>& w) { transform<float, true>(w); }
__attribute__((target("avx512f"))) void transform_avx512(const Work<double>& w) { transform<double, true>(w); }
__attribute__((target("avx2,fma"))) void transform_avx2(const Work<float>& w) { transform<float, false>(w); }
__attribute__((target("avx2,fma"))) void transform_avx2(const Work<double>& w) { transform<double, false>(w); }
__attribute__((target("avx512f"))) void load16_avx512(const float* y, std::int64_t hop, int n, const float* window, float* in) { load16<16>(y, hop, n, window, in); }
__attribute__((target("avx2"))) void load16_avx2(const float* y, std::int64_t hop, int n, const float* window, float* in) { load16<8>(y, hop, n, window, in); }
__attribute__((target("avx512f"))) void rows16_avx512(const float* lanes, std::int64_t bins, float* rows, std::int64_t stride) { rows16<16>(lanes, bins, rows, stride); }
__attribute__((target("avx2"))) void rows16_avx2(const float* lanes, std::int64_t bins, float* rows, std::int64_t stride) { rows16<8>(lanes, bins, rows, stride); }
#endif
void transform_base(const Work<float>& w) { transform<float, false>(w); }
void transform_base(const Work<double>& w) { transform<double, false>(w); }

// The transposing load and store for this processor, chosen once; null without AVX2 (SSE's shuffles of 16 floats
// cost more than the scalar copies).
using Load16 = void (*)(const float*, std::int64_t, int, const float*, float*);
using Rows16 = void (*)(const float*, std::int64_t, float*, std::int64_t);

std::pair<Load16, Rows16> pick_transposes() {
#ifdef MESS_FFT_DISPATCH
    if (__builtin_cpu_supports("avx512f")) return {load16_avx512, rows16_avx512};
    if (__builtin_cpu_supports("avx2")) return {load16_avx2, rows16_avx2};
#endif
    return {nullptr, nullptr};
}

template <class T>
void (*pick())(const Work<T>&) {
#ifdef MESS_FFT_DISPATCH
    if (__builtin_cpu_supports("avx512f")) return static_cast<void (*)(const Work<T>&)>(transform_avx512);
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return static_cast<void (*)(const Work<T>&)>(transform_avx2);
#endif
    return static_cast<void (*)(const Work<T>&)>(transform_base);
}

}  // namespace

template <class T>
BatchRealFft<T>::BatchRealFft(int n) : n_(n) {
    if (!supports(n)) throw_usage("batched FFT: length {} is not a power of two ≥ 2", n);
    const auto lanes = static_cast<std::size_t>(kLanes), m = static_cast<std::size_t>(n / 2);
    in_.assign(static_cast<std::size_t>(n) * lanes, T(0));  // lanes not loaded read zeros
    zr_.resize(m * lanes), zi_.resize(m * lanes);             // work arrays: written before they are read
    xr_.resize((m + 1) * lanes), xi_.resize((m + 1) * lanes);
    int bits = 0;
    while ((std::size_t{1} << bits) < m) ++bits;
    rev_.resize(m);
    for (std::size_t j = 0; j < m; ++j) {
        std::size_t r = 0;
        for (int b = 0; b < bits; ++b) r |= ((j >> b) & 1u) << (bits - 1 - b);
        rev_[j] = static_cast<std::int32_t>(r);
    }
    for (std::size_t half = 2; half < m; half *= 2)
        for (std::size_t k = 0; k < half; ++k) {
            const double a = -std::numbers::pi * static_cast<double>(k) / static_cast<double>(half);
            twr_.push_back(static_cast<T>(std::cos(a))), twi_.push_back(static_cast<T>(std::sin(a)));
        }
    for (std::size_t k = 0; k <= m; ++k) {
        const double a = 2.0 * std::numbers::pi * static_cast<double>(k) / n;
        postc_.push_back(static_cast<T>(std::cos(a))), posts_.push_back(static_cast<T>(-std::sin(a)));
    }
}

template <class T>
void BatchRealFft<T>::load_frames(std::span<const float> y, std::int64_t start, std::int64_t hop, int count, const float* window) {
    const auto len = static_cast<std::int64_t>(y.size()), lanes = static_cast<std::int64_t>(kLanes);
    if (start >= 0 && start + (count - 1) * hop + n_ <= len) {
        if constexpr (kLanes == 16 && std::is_same_v<T, float>) {
            static const Load16 load = pick_transposes().first;
            if (load && count == kLanes && n_ % 16 == 0) return load(y.data() + start, hop, n_, window, in_.data());
        }
        // Blocks of kBlock samples, frame by frame within a block: each frame's samples read in a contiguous run, the
        // block's lanes (kBlock cache lines) written while they stay in the first-level cache; no frame is read with
        // a stride of hop samples (hop a power of two: every frame's line in the same few cache sets).
        constexpr std::int64_t kBlock = 64;
        for (std::int64_t i0 = 0; i0 < n_; i0 += kBlock) {
            const std::int64_t i1 = std::min<std::int64_t>(n_, i0 + kBlock);
            for (int f = 0; f < count; ++f) {
                const float* src = y.data() + start + f * hop;
                T* dst = in_.data() + f;
                if (window)
                    for (std::int64_t i = i0; i < i1; ++i) dst[i * lanes] = static_cast<T>(src[i]) * static_cast<T>(window[i]);
                else
                    for (std::int64_t i = i0; i < i1; ++i) dst[i * lanes] = static_cast<T>(src[i]);
            }
        }
        return;
    }
    for (std::int64_t i = 0; i < n_; ++i) {
        T* dst = in_.data() + i * lanes;
        const T w = window ? static_cast<T>(window[i]) : T(1);
        for (int f = 0; f < count; ++f) {
            const std::int64_t at = start + f * hop + i;
            dst[f] = at >= 0 && at < len ? (window ? static_cast<T>(y[static_cast<std::size_t>(at)]) * w : static_cast<T>(y[static_cast<std::size_t>(at)])) : T(0);
        }
    }
}

void lanes_to_rows(const float* lanes, std::int64_t bins, int count, float* rows, std::int64_t stride) {
    constexpr int L = BatchRealFft<float>::kLanes;
    std::int64_t k0 = 0;
    static const Rows16 kernel = pick_transposes().second;
    if (kernel && count == L && L == 16) {
        k0 = bins / 16 * 16;
        kernel(lanes, k0, rows, stride);
    }
    for (int f = 0; f < count; ++f)
        for (std::int64_t k = k0; k < bins; ++k) rows[f * stride + k] = lanes[k * L + f];
}

template <class T>
void BatchRealFft<T>::run() {
    static const auto kernel = pick<T>();
    kernel(Work<T>{n_, in_.data(), zr_.data(), zi_.data(), xr_.data(), xi_.data(), rev_.data(), twr_.data(), twi_.data(), postc_.data(),
                   posts_.data()});
}

template class BatchRealFft<float>;
template class BatchRealFft<double>;

}  // namespace mess::dsp::detail
