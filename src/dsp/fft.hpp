// Internal to dsp: real FFTs of a power-of-two length computed for several frames at once, one frame per SIMD
// lane (the same radix-2 steps in every lane, so the compiler's vectors carry 64 bytes of frames: 16 float or 8
// double). The kernel is built for AVX-512, AVX2 and baseline x86-64 and picked at run time; other machines get
// the portable build. What KissFFT's kiss_fftr computes (the complex FFT of the even/odd samples packed as one
// complex signal of n/2 points, then split), to float or double rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>
#include <span>
#include <utility>
#include <vector>

namespace mess::dsp::detail {

// 64-byte aligned storage (one SIMD vector of lanes per sample). resize(n) leaves new elements uninitialised (the
// transform writes every element of its work arrays before it reads it); assign(n, v) sets them.
template <class T>
struct Aligned64 {
    using value_type = T;
    Aligned64() = default;
    template <class U>
    Aligned64(const Aligned64<U>&) {}
    T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
    void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
    template <class U, class... Args>
    void construct(U* p, Args&&... args) {
        if constexpr (sizeof...(Args) == 0) ::new (static_cast<void*>(p)) U;
        else ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
    }
    friend bool operator==(const Aligned64&, const Aligned64&) { return true; }
};

template <class T>
class BatchRealFft {
public:
    static constexpr int kLanes = 64 / static_cast<int>(sizeof(T));

    // n: a power of two ≥ 2. Error(usage) otherwise.
    explicit BatchRealFft(int n);
    int size() const { return n_; }
    static bool supports(std::int64_t n) { return n >= 2 && (n & (n - 1)) == 0; }

    // Sample i of lane f at input()[i·kLanes + f], n·kLanes values (kept between runs; lanes not written keep
    // what they held).
    T* input() { return in_.data(); }
    // Lanes 0 .. count−1 ← frames of y: lane f holds y[start + f·hop + i] for i < n (zero outside y), times
    // window[i] when a window is given. Inside y, written in blocks of samples, frame by frame (contiguous reads).
    void load_frames(std::span<const float> y, std::int64_t start, std::int64_t hop, int count, const float* window);
    // Bins 0 .. n/2 of each lane's DFT (X[k] = Σ x[i]·e^{−2πik/n}): bin k of lane f at re()[k·kLanes + f].
    void run();
    const T* re() const { return xr_.data(); }
    const T* im() const { return xi_.data(); }

private:
    int n_;
    std::vector<T, Aligned64<T>> in_, zr_, zi_, xr_, xi_;
    std::vector<std::int32_t> rev_;   // bit reversal over n/2 points
    std::vector<T> twr_, twi_;        // per stage of the complex FFT: the stage's half-length twiddles, concatenated
    std::vector<T> postc_, posts_;    // cos, −sin of 2πk/n for the split into real bins
};

// rows[f·stride + k] = lanes[k·kLanes + f] for bins k < bins and lanes f < count (BatchRealFft<float>'s lane-major
// layout to one row per frame): 16 × 16 blocks transposed in registers when all lanes are wanted.
void lanes_to_rows(const float* lanes, std::int64_t bins, int count, float* rows, std::int64_t stride);

extern template class BatchRealFft<float>;
extern template class BatchRealFft<double>;

}  // namespace mess::dsp::detail
