// Internal: the CUDA kernels of the encoder's GPU backend (cuda_kernels.cu), launched on a stream.
// Activations are fp32 row-major; "typed" outputs are in the compute type (fp32, bf16 or fp16) that the
// cuBLAS products read. Each launcher returns cudaGetLastError() after its launch.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace mess::model_detail::cuda {

enum class ValueType { f32, bf16, f16 };

// y[i] = x[i] in the compute type.
cudaError_t convert(const float* x, void* y, std::int64_t n, ValueType type, cudaStream_t s);
// The im2col of a strided conv over a time-major input, typed: row t = in[t·step … t·step + row - 1].
cudaError_t conv_rows(const float* in, void* out, std::int64_t rows, std::int64_t step, std::int64_t row, ValueType type, cudaStream_t s);
// The grouped positional conv's im2col of x [frames, hidden], typed: out[g][t][p·gi + c] = x[t + p - kernel/2][g·gi + c]
// (zero outside the clip), gi = hidden / groups.
cudaError_t pos_im2col(const float* x, void* out, std::int64_t frames, std::int64_t hidden, std::int64_t groups, std::int64_t kernel,
                       ValueType type, cudaStream_t s);
// y[r, c] += bias[c] (bias may be null), then GELU (erf) when asked.
cudaError_t bias_gelu(float* y, const float* bias, std::int64_t rows, std::int64_t cols, bool gelu, cudaStream_t s);
// y += x.
cudaError_t add(float* y, const float* x, std::int64_t n, cudaStream_t s);
// The first `hidden` values of each 3·hidden row times scale (q after its bias, as HF does).
cudaError_t scale_q(float* qkv, std::int64_t rows, std::int64_t hidden, float scale, cudaStream_t s);
// LayerNorm of each row (x may equal y).
cudaError_t layer_norm(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* gamma, const float* beta, float eps,
                       cudaStream_t s);
// GroupNorm with one group per channel of x [frames, channels] over time (biased variance), then GELU, in place.
cudaError_t channel_norm_gelu(float* x, std::int64_t frames, std::int64_t channels, const float* gamma, const float* beta, float eps,
                              cudaStream_t s);
// means[b, layer, c] = the mean of x[b, t, c] over t < valid[b] (accumulated in double) for x [batch, frames,
// hidden] and means [batch, layers, hidden]; valid is a device array of `batch` frame counts.
cudaError_t frame_means(const float* x, const std::int64_t* valid, std::int64_t batch, std::int64_t frames, std::int64_t hidden,
                        std::int64_t layers, std::int64_t layer, float* means, cudaStream_t s);
// Softmax of each row of x [rows, cols] into y, typed.
cudaError_t softmax_rows(const float* x, void* y, std::int64_t rows, std::int64_t cols, ValueType type, cudaStream_t s);

}  // namespace mess::model_detail::cuda
