// Batched real FFT (fft.hpp): radix-2 decimation in time over n/2 complex points, one frame per SIMD lane.
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

// The complex FFT of m = n/2 points in place on split arrays (input in bit-reversed order): radix-2 stages of
// half-length 1, 2, 4, ... m/2, the stages after the first taken two at a time (half-lengths h and 2h in one pass
// over groups of 4h points: the same butterflies, twiddles and order, half the passes over memory).
template <class T>
[[gnu::always_inline]] inline void complex_stages(Vec<T>* zr, Vec<T>* zi, int m, const T* twr, const T* twi) {
    using V = Vec<T>;
    for (int i = 0; i + 1 < m; i += 2) {  // length-2 butterflies: twiddle 1
        const V ar = zr[i], ai = zi[i], br = zr[i + 1], bi = zi[i + 1];
        zr[i] = ar + br, zi[i] = ai + bi, zr[i + 1] = ar - br, zi[i + 1] = ai - bi;
    }
    int half = 2;
    for (; 2 * half < m; twr += 3 * half, twi += 3 * half, half *= 4) {
        const T *w1r = twr, *w1i = twi, *w2r = twr + half, *w2i = twi + half;  // the tables of stages h and 2h
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
    if (half < m)  // one stage left
        for (int k = 0; k < half; ++k) MESS_FFT_BUTTERFLY(zr[k], zi[k], zr[k + half], zi[k + half], twr[k], twi[k]);
}
#undef MESS_FFT_BUTTERFLY

// Pack even/odd samples as one complex signal (bit-reversed), transform, split into the n/2 + 1 real-input bins.
template <class T>
[[gnu::always_inline]] inline void transform(const Work<T>& w) {
    using V = Vec<T>;
    const int m = w.n / 2;
    const V* in = reinterpret_cast<const V*>(w.in);
    V *zr = reinterpret_cast<V*>(w.zr), *zi = reinterpret_cast<V*>(w.zi);
    V *xr = reinterpret_cast<V*>(w.xr), *xi = reinterpret_cast<V*>(w.xi);
    for (int j = 0; j < m; ++j) zr[w.rev[j]] = in[2 * j], zi[w.rev[j]] = in[2 * j + 1];
    complex_stages<T>(zr, zi, m, w.twr, w.twi);
    const V zero = zr[0] - zr[0];
    xr[0] = zr[0] + zi[0], xi[0] = zero;
    xr[m] = zr[0] - zi[0], xi[m] = zero;
    for (int k = 1; k < m; ++k) {
        const V ar = zr[k], ai = zi[k], br = zr[m - k], bi = -zi[m - k];
        const V er = (ar + br) * T(0.5), ei = (ai + bi) * T(0.5);  // even part
        const V orr = (ai - bi) * T(0.5), oi = (br - ar) * T(0.5);  // odd part: (a − b) / 2i
        const T c = w.postc[k], s = w.posts[k];
        xr[k] = er + orr * c - oi * s;
        xi[k] = ei + oi * c + orr * s;
    }
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
__attribute__((target("avx512f"))) void transform_avx512(const Work<float>& w) { transform<float>(w); }
__attribute__((target("avx512f"))) void transform_avx512(const Work<double>& w) { transform<double>(w); }
__attribute__((target("avx2,fma"))) void transform_avx2(const Work<float>& w) { transform<float>(w); }
__attribute__((target("avx2,fma"))) void transform_avx2(const Work<double>& w) { transform<double>(w); }
__attribute__((target("avx512f"))) void load16_avx512(const float* y, std::int64_t hop, int n, const float* window, float* in) { load16<16>(y, hop, n, window, in); }
__attribute__((target("avx2"))) void load16_avx2(const float* y, std::int64_t hop, int n, const float* window, float* in) { load16<8>(y, hop, n, window, in); }
__attribute__((target("avx512f"))) void rows16_avx512(const float* lanes, std::int64_t bins, float* rows, std::int64_t stride) { rows16<16>(lanes, bins, rows, stride); }
__attribute__((target("avx2"))) void rows16_avx2(const float* lanes, std::int64_t bins, float* rows, std::int64_t stride) { rows16<8>(lanes, bins, rows, stride); }
#endif
void transform_base(const Work<float>& w) { transform<float>(w); }
void transform_base(const Work<double>& w) { transform<double>(w); }

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
    in_.assign(static_cast<std::size_t>(n) * lanes, T(0));
    zr_.assign(m * lanes, T(0)), zi_ = zr_;
    xr_.assign((m + 1) * lanes, T(0)), xi_ = xr_;
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
