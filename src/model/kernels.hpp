// Internal: the CPU compute kernels of the encoder. Matrix products and the transcendental
// element-wise ops go through oneDNN, which picks AVX2/AVX-512/AMX code at run time; the rest are
// plain loops the compiler vectorises. Row-major throughout.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

namespace mess::model_detail {

class Kernels {
public:
    Kernels();
    ~Kernels();
    // C[M,N] = A[M,K]·B[K,N] + beta·C (A transposed when trans_a, B when trans_b; leading dims in floats).
    void gemm(bool trans_a, bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const float* a,
              std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c, std::int64_t ldc);
    // A batch of bf16 matrix products (AVX512-BF16 or AMX through oneDNN) with fp32 accumulation:
    // C[i] = A[i]·B[i] + beta·C[i] for i < batch, A bf16 [M,K], B bf16 [K,N], C fp32 [M,N], each addressed
    // by strides in elements (so B may be a transposed view, and A or C column slices of wider rows).
    // constant_b (weights; batch 1): B is packed once into oneDNN's preferred layout and kept, keyed by its
    // address. One primitive per shape is created on first use and kept.
    // Errors: Error(usage) when this CPU has no bf16 matrix products.
    struct MatmulBf16 {
        std::int64_t batch = 1, m = 0, n = 0, k = 0;
        const std::uint16_t* a = nullptr;
        std::int64_t a_batch = 0, a_row = 0;            // A[i][r][p] at a + i·a_batch + r·a_row + p
        const std::uint16_t* b = nullptr;
        std::int64_t b_batch = 0, b_row = 0, b_col = 1; // B[i][p][j] at b + i·b_batch + p·b_row + j·b_col
        float* c = nullptr;
        std::int64_t c_batch = 0, c_row = 0;            // C[i][r][j] at c + i·c_batch + r·c_row + j
        float beta = 0.0f;                              // 0 or 1
        bool constant_b = false;
        const float* bias = nullptr;                    // [N] added to every row (batch 1), or null
        bool gelu = false;                              // then GELU (erf), fused
    };
    void matmul_bf16(const MatmulBf16& mm);
    // x = 0.5·x·(1 + erf(x/√2)), in place.
    void gelu(float* x, std::int64_t n);
    // Softmax over each row of x[rows, cols], in place.
    void softmax_rows(float* x, std::int64_t rows, std::int64_t cols);
    // y[r,:] = (x[r,:] - mean) / sqrt(var + eps) · gamma + beta (x may equal y).
    void layer_norm(const float* x, float* y, std::int64_t rows, std::int64_t cols, const float* gamma,
                    const float* beta, float eps);

    // 1-D convolution over time, optionally followed by GELU (fused): x [batch, t_in, c_in] and
    // y [batch, t_out, c_out] time-major; weights in PyTorch's layout [c_out, c_in/groups, kernel];
    // bias [c_out] or nullptr; t_out = (t_in + pad_before + pad_after - kernel) / stride + 1.
    // The weights are reordered into oneDNN's preferred layout on first use and kept, one copy per
    // weight tensor per Kernels object.
    struct Conv1d {
        std::int64_t batch = 1, t_in = 0, c_in = 0, c_out = 0, groups = 1, kernel = 1, stride = 1;
        std::int64_t pad_before = 0, pad_after = 0;
        const float* weights = nullptr;
        const float* bias = nullptr;
        bool gelu = false;
        bool bf16 = false;  // x converted to bf16 and the weights packed as bf16; fp32 accumulation and y
        std::int64_t t_out() const { return (t_in + pad_before + pad_after - kernel) / stride + 1; }
    };
    void conv1d(const Conv1d& c, const float* x, float* y);

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

// float → bf16 bit patterns as util's float_to_bf16 (nearest even, NaN stays NaN), vectorised and threaded.
void to_bf16(const float* x, std::uint16_t* y, std::int64_t n);
inline std::vector<std::uint16_t> to_bf16(const std::vector<float>& x) {
    std::vector<std::uint16_t> y(x.size());
    to_bf16(x.data(), y.data(), static_cast<std::int64_t>(x.size()));
    return y;
}

// y[r, :] += bias for every row.
void add_bias(float* y, std::int64_t rows, std::int64_t cols, const float* bias);
// y += x element-wise.
void add_inplace(float* y, const float* x, std::int64_t n);
// GroupNorm with one group per channel over time: x[t, c] normalised per column c (biased variance).
void channel_norm_over_time(float* x, std::int64_t frames, std::int64_t channels, const float* gamma,
                            const float* beta, float eps);

}  // namespace mess::model_detail
