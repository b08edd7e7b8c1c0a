// CUDA kernels of the encoder's GPU backend and their launchers (cuda_kernels.hpp).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>

#include "cuda_kernels.hpp"

namespace mess::model_detail::cuda {

namespace {

// ---- kernels ------------------------------------------------------------------------------------

constexpr int kThreads = 256;

unsigned blocks_for(std::int64_t n) { return static_cast<unsigned>(std::min<std::int64_t>((n + kThreads - 1) / kThreads, 65535 * 8)); }
unsigned rows_grid(std::int64_t rows) { return static_cast<unsigned>(rows); }

template <class T>
__device__ T from_float(float v);
template <>
__device__ float from_float<float>(float v) { return v; }
template <>
__device__ __nv_bfloat16 from_float<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <>
__device__ __half from_float<__half>(float v) { return __float2half_rn(v); }

__device__ float gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }

// The reduction of v over the block (every thread gets it); blockDim.x a multiple of 32.
template <class Op>
__device__ float block_reduce(float v, Op op) {
    __shared__ float partial[32];
    for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
    __syncthreads();  // an earlier reduction has read partial[0]
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < warps ? partial[lane] : Op::identity();
        for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0) partial[0] = v;
    }
    __syncthreads();
    return partial[0];
}

struct Sum {
    __device__ float operator()(float a, float b) const { return a + b; }
    __device__ static float identity() { return 0.0f; }
};
struct Max {
    __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
    __device__ static float identity() { return -INFINITY; }
};

template <class T>
__global__ void convert_kernel(const float* x, T* y, std::int64_t n) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        y[i] = from_float<T>(x[i]);
}

// The im2col of a strided conv over a time-major input: row t = input values t·step … t·step + row - 1.
template <class T>
__global__ void conv_rows_kernel(const float* in, T* out, std::int64_t rows, std::int64_t step, std::int64_t row) {
    const std::int64_t n = rows * row;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        out[i] = from_float<T>(in[(i / row) * step + i % row]);
}

// The grouped positional conv's im2col: out[g][t][p·gi + c] = x[t + p - pad][g·gi + c] (0 outside the clip).
template <class T>
__global__ void pos_im2col_kernel(const float* x, T* out, std::int64_t frames, std::int64_t hidden, std::int64_t groups,
                                  std::int64_t gi, std::int64_t kernel, std::int64_t pad) {
    const std::int64_t n = groups * frames * kernel * gi;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        const std::int64_t c = i % gi, p = (i / gi) % kernel, t = (i / (gi * kernel)) % frames, g = i / (gi * kernel * frames);
        const std::int64_t src = t + p - pad;
        out[i] = from_float<T>(src >= 0 && src < frames ? x[src * hidden + g * gi + c] : 0.0f);
    }
}

__global__ void bias_gelu_kernel(float* y, const float* bias, std::int64_t rows, std::int64_t cols, int gelu) {
    const std::int64_t n = rows * cols;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
        float v = y[i] + (bias ? bias[i % cols] : 0.0f);
        y[i] = gelu ? gelu_erf(v) : v;
    }
}

__global__ void add_kernel(float* y, const float* x, std::int64_t n) {
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        y[i] += x[i];
}

// q (the first H of each 3H row) scaled after its bias, as HF does.
__global__ void scale_q_kernel(float* qkv, std::int64_t rows, std::int64_t hidden, float scale) {
    const std::int64_t n = rows * hidden;
    for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<std::int64_t>(gridDim.x) * blockDim.x)
        qkv[(i / hidden) * 3 * hidden + i % hidden] *= scale;
}

// One block per row; x may equal y.
__global__ void layer_norm_kernel(const float* x, float* y, std::int64_t cols, const float* gamma, const float* beta, float eps) {
    const float* xr = x + blockIdx.x * cols;
    float* yr = y + blockIdx.x * cols;
    float s = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += xr[c];
    const float mean = block_reduce(s, Sum{}) / static_cast<float>(cols);
    float v = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) v += (xr[c] - mean) * (xr[c] - mean);
    const float inv = rsqrtf(block_reduce(v, Sum{}) / static_cast<float>(cols) + eps);
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = (xr[c] - mean) * inv * gamma[c] + beta[c];
}

// GroupNorm with one group per channel over time, then GELU: one block per channel of x [frames, channels].
__global__ void channel_norm_gelu_kernel(float* x, std::int64_t frames, std::int64_t channels, const float* gamma, const float* beta, float eps) {
    const std::int64_t ch = blockIdx.x;
    float s = 0.0f;
    for (std::int64_t t = threadIdx.x; t < frames; t += blockDim.x) s += x[t * channels + ch];
    const float mean = block_reduce(s, Sum{}) / static_cast<float>(frames);
    float v = 0.0f;
    for (std::int64_t t = threadIdx.x; t < frames; t += blockDim.x) v += (x[t * channels + ch] - mean) * (x[t * channels + ch] - mean);
    const float scale = gamma[ch] * rsqrtf(block_reduce(v, Sum{}) / static_cast<float>(frames) + eps), shift = beta[ch] - mean * scale;
    for (std::int64_t t = threadIdx.x; t < frames; t += blockDim.x) x[t * channels + ch] = gelu_erf(x[t * channels + ch] * scale + shift);
}

// One block per row of x [rows, cols]: y = softmax(x) in the compute type.
template <class T>
__global__ void softmax_kernel(const float* x, T* y, std::int64_t cols) {
    const float* xr = x + blockIdx.x * cols;
    T* yr = y + blockIdx.x * cols;
    float m = -INFINITY;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, xr[c]);
    m = block_reduce(m, Max{});
    float s = 0.0f;
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) s += __expf(xr[c] - m);
    const float inv = 1.0f / block_reduce(s, Sum{});
    for (std::int64_t c = threadIdx.x; c < cols; c += blockDim.x) yr[c] = from_float<T>(__expf(xr[c] - m) * inv);
}

// One thread per (clip, column): the column's mean over the clip's valid frames; reads are coalesced
// across the threads of a block.
__global__ void frame_means_kernel(const float* x, const std::int64_t* valid, std::int64_t frames, std::int64_t hidden,
                                   std::int64_t layers, std::int64_t layer, float* means) {
    const std::int64_t b = blockIdx.y, c = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
    if (c >= hidden) return;
    const std::int64_t n = valid[b];
    const float* col = x + b * frames * hidden + c;
    double sum = 0.0;
    for (std::int64_t t = 0; t < n; ++t) sum += col[t * hidden];
    means[(b * layers + layer) * hidden + c] = n > 0 ? static_cast<float>(sum / static_cast<double>(n)) : 0.0f;
}

template <class F>
void by_type(ValueType type, F&& f) {
    switch (type) {
        case ValueType::f32: f(float{}); break;
        case ValueType::bf16: f(__nv_bfloat16{}); break;
        case ValueType::f16: f(__half{}); break;
    }
}

}  // namespace

cudaError_t convert(const float* x, void* y, std::int64_t n, ValueType type, cudaStream_t s) {
    by_type(type, [&](auto v) {
        using T = decltype(v);
        convert_kernel<T><<<blocks_for(n), kThreads, 0, s>>>(x, static_cast<T*>(y), n);
    });
    return cudaGetLastError();
}

cudaError_t conv_rows(const float* in, void* out, std::int64_t rows, std::int64_t step, std::int64_t row, ValueType type, cudaStream_t s) {
    by_type(type, [&](auto v) {
        using T = decltype(v);
        conv_rows_kernel<T><<<blocks_for(rows * row), kThreads, 0, s>>>(in, static_cast<T*>(out), rows, step, row);
    });
    return cudaGetLastError();
}

cudaError_t pos_im2col(const float* x, void* out, std::int64_t frames, std::int64_t hidden, std::int64_t groups, std::int64_t kernel,
                       ValueType type, cudaStream_t s) {
    by_type(type, [&](auto v) {
        using T = decltype(v);
        pos_im2col_kernel<T><<<blocks_for(frames * kernel * hidden), kThreads, 0, s>>>(x, static_cast<T*>(out), frames, hidden, groups,
                                                                                      hidden / groups, kernel, kernel / 2);
    });
    return cudaGetLastError();
}

cudaError_t bias_gelu(float* y, const float* bias, std::int64_t rows, std::int64_t cols, bool gelu, cudaStream_t s) {
    bias_gelu_kernel<<<blocks_for(rows * cols), kThreads, 0, s>>>(y, bias, rows, cols, gelu ? 1 : 0);
    return cudaGetLastError();
}

cudaError_t add(float* y, const float* x, std::int64_t n, cudaStream_t s) {
    add_kernel<<<blocks_for(n), kThreads, 0, s>>>(y, x, n);
    return cudaGetLastError();
}

cudaError_t scale_q(float* qkv, std::int64_t rows, std::int64_t hidden, float scale, cudaStream_t s) {
    scale_q_kernel<<<blocks_for(rows * hidden), kThreads, 0, s>>>(qkv, rows, hidden, scale);
    return cudaGetLastError();
}

cudaError_t layer_norm(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* gamma, const float* beta, float eps,
                       cudaStream_t s) {
    layer_norm_kernel<<<rows_grid(rows), kThreads, 0, s>>>(x, y, cols, gamma, beta, eps);
    return cudaGetLastError();
}

cudaError_t channel_norm_gelu(float* x, std::int64_t frames, std::int64_t channels, const float* gamma, const float* beta, float eps,
                              cudaStream_t s) {
    channel_norm_gelu_kernel<<<rows_grid(channels), kThreads, 0, s>>>(x, frames, channels, gamma, beta, eps);
    return cudaGetLastError();
}

cudaError_t frame_means(const float* x, const std::int64_t* valid, std::int64_t batch, std::int64_t frames, std::int64_t hidden,
                        std::int64_t layers, std::int64_t layer, float* means, cudaStream_t s) {
    const dim3 grid(static_cast<unsigned>((hidden + kThreads - 1) / kThreads), static_cast<unsigned>(batch));
    frame_means_kernel<<<grid, kThreads, 0, s>>>(x, valid, frames, hidden, layers, layer, means);
    return cudaGetLastError();
}

cudaError_t softmax_rows(const float* x, void* y, std::int64_t rows, std::int64_t cols, ValueType type, cudaStream_t s) {
    by_type(type, [&](auto v) {
        using T = decltype(v);
        softmax_kernel<T><<<rows_grid(rows), kThreads, 0, s>>>(x, static_cast<T*>(y), cols);
    });
    return cudaGetLastError();
}

}  // namespace mess::model_detail::cuda
