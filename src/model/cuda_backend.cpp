// The CUDA plugin of the encoder (cuda_backend.hpp): weights on the device, scratch, cuBLAS products and
// the forward pass of reference/mert.md §4, mirroring encoder.cpp step by step.
#include "cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "cuda_kernels.hpp"
#include "weights.hpp"

namespace mess::model_detail {

namespace {

using cuda::ValueType;

struct DeviceOutOfMemory : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(cudaError_t e, const char* what) {
    if (e == cudaSuccess) return;
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();  // an allocation failure is not sticky: clear it
        throw DeviceOutOfMemory(what);
    }
    throw_internal("CUDA {}: {}", what, cudaGetErrorString(e));
}

void check(cublasStatus_t s, const char* what) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    if (s == CUBLAS_STATUS_ALLOC_FAILED) throw DeviceOutOfMemory(what);
    throw_internal("cuBLAS {}: status {}", what, static_cast<int>(s));
}

// A device allocation that grows on demand and is freed with its owner.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(o.p_), bytes_(o.bytes_) {
        o.p_ = nullptr;
        o.bytes_ = 0;
    }
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    ~DeviceBuffer() { release(); }
    void release() {
        if (p_) cudaFree(p_);
        p_ = nullptr;
        bytes_ = 0;
    }
    void* reserve(std::size_t bytes, const char* what) {
        if (bytes <= bytes_) return p_;
        release();
        check(cudaMalloc(&p_, std::max<std::size_t>(bytes, 256)), what);
        bytes_ = bytes;
        return p_;
    }
    void* get() const { return p_; }
    template <class T>
    T* as() const {
        return static_cast<T*>(p_);
    }

private:
    void* p_ = nullptr;
    std::size_t bytes_ = 0;
};

ValueType value_type(Precision p) { return p == Precision::bf16 ? ValueType::bf16 : p == Precision::fp16 ? ValueType::f16 : ValueType::f32; }
cudaDataType blas_type(Precision p) { return p == Precision::bf16 ? CUDA_R_16BF : p == Precision::fp16 ? CUDA_R_16F : CUDA_R_32F; }

}  // namespace

// ---- weights ----------------------------------------------------------------------------------------

struct CudaWeights {
    struct Linear {
        int in = 0, out = 0;
        DeviceBuffer w;  // [in, out] in the compute type
        DeviceBuffer b;  // [out] fp32
    };
    struct Conv {
        int in = 0, out = 0, kernel = 0, stride = 0;
        DeviceBuffer w;                     // [kernel·in, out] in the compute type
        DeviceBuffer bias, norm_w, norm_b;  // fp32, possibly empty
        bool has_bias = false, has_norm = false;
    };
    struct Norm {
        DeviceBuffer w, b;
        bool present = false;
    };
    struct Layer {
        Linear qkv, out_proj, ffn_in, ffn_out;
        Norm attn_norm, ffn_norm;
    };
    ModelConfig config;
    Precision precision = Precision::fp32;
    std::size_t elem = 4;  // bytes per compute-type value
    int device = 0;
    std::vector<Conv> conv;
    Norm proj_norm, encoder_norm;
    Linear proj;
    int pos_kernel = 0, pos_groups = 0;
    DeviceBuffer pos_w;  // [groups][kernel·gi][go] in the compute type
    DeviceBuffer pos_b;  // fp32 [H]
    std::vector<Layer> layers;
};

namespace {

DeviceBuffer upload_f32(const std::vector<float>& v, const char* what) {
    DeviceBuffer b;
    if (v.empty()) return b;
    b.reserve(v.size() * sizeof(float), what);
    check(cudaMemcpy(b.get(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), what);
    return b;
}

// A host fp32 array as a device array in the compute type.
DeviceBuffer upload_typed(const std::vector<float>& v, const CudaWeights& w, const char* what) {
    DeviceBuffer f32 = upload_f32(v, what);
    if (w.precision == Precision::fp32) return f32;
    DeviceBuffer out;
    out.reserve(v.size() * w.elem, what);
    check(cuda::convert(f32.as<float>(), out.get(), static_cast<std::int64_t>(v.size()), value_type(w.precision), nullptr), what);
    check(cudaDeviceSynchronize(), what);
    return out;
}

CudaWeights::Linear upload_linear(const Model::Weights::Linear& l, const CudaWeights& w) {
    CudaWeights::Linear d;
    d.in = l.in;
    d.out = l.out;
    d.w = upload_typed(l.w, w, "upload a linear layer");
    d.b = upload_f32(l.b, "upload a bias");
    return d;
}

CudaWeights::Norm upload_norm(const Model::Weights::Norm& n) {
    CudaWeights::Norm d;
    d.present = !n.w.empty();
    d.w = upload_f32(n.w, "upload a norm");
    d.b = upload_f32(n.b, "upload a norm");
    return d;
}

}  // namespace

namespace {

int device_count(std::string* why) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        cudaGetLastError();
        if (why) *why = cudaGetErrorString(e);
        return 0;
    }
    if (n == 0 && why) *why = "no CUDA device";
    return n;
}

std::shared_ptr<const CudaWeights> upload_weights(const Model::Weights& src, const ModelConfig& config, Precision precision) {
    std::string why;
    if (device_count(&why) == 0) throw_usage("device cuda: no usable CUDA device ({}); use --device cpu", why);
    auto w = std::make_shared<CudaWeights>();
    w->config = config;
    w->precision = precision;
    w->elem = precision == Precision::fp32 ? 4 : 2;
    check(cudaGetDevice(&w->device), "cudaGetDevice");
    try {
        for (const auto& c : src.conv) {
            CudaWeights::Conv d;
            d.in = c.in;
            d.out = c.out;
            d.kernel = c.kernel;
            d.stride = c.stride;
            d.w = upload_typed(c.w, *w, "upload a conv layer");
            d.has_bias = !c.bias.empty();
            d.bias = upload_f32(c.bias, "upload a conv bias");
            d.has_norm = !c.norm_w.empty();
            d.norm_w = upload_f32(c.norm_w, "upload a conv norm");
            d.norm_b = upload_f32(c.norm_b, "upload a conv norm");
            w->conv.push_back(std::move(d));
        }
        w->proj_norm = upload_norm(src.proj_norm);
        w->proj = upload_linear(src.proj, *w);
        w->encoder_norm = upload_norm(src.encoder_norm);
        // Positional conv weights [H, gi, K] (= [g][o][c][p]) → per group [p·gi + c][o].
        const std::size_t H = static_cast<std::size_t>(config.hidden_size), G = static_cast<std::size_t>(src.pos_groups),
                          K = static_cast<std::size_t>(src.pos_kernel), gi = H / G, go = H / G;
        std::vector<float> pos(H * gi * K);
        for (std::size_t g = 0; g < G; ++g)
            for (std::size_t o = 0; o < go; ++o)
                for (std::size_t c = 0; c < gi; ++c)
                    for (std::size_t p = 0; p < K; ++p) pos[((g * K + p) * gi + c) * go + o] = src.pos_w[((g * go + o) * gi + c) * K + p];
        w->pos_kernel = src.pos_kernel;
        w->pos_groups = src.pos_groups;
        w->pos_w = upload_typed(pos, *w, "upload the positional conv");
        w->pos_b = upload_f32(src.pos_b, "upload the positional conv bias");
        for (const auto& l : src.layers) {
            CudaWeights::Layer d;
            d.qkv = upload_linear(l.qkv, *w);
            d.out_proj = upload_linear(l.out_proj, *w);
            d.ffn_in = upload_linear(l.ffn_in, *w);
            d.ffn_out = upload_linear(l.ffn_out, *w);
            d.attn_norm = upload_norm(l.attn_norm);
            d.ffn_norm = upload_norm(l.ffn_norm);
            w->layers.push_back(std::move(d));
        }
    } catch (const DeviceOutOfMemory& e) {
        throw_input("device cuda: the model's weights do not fit in GPU memory ({})", e.what());
    }
    return w;
}

// ---- the runner -----------------------------------------------------------------------------------

// The sizes of one forward pass of the runner.
struct Pass {
    std::int64_t batch = 0, samples = 0;
    std::int64_t T = 0, C = 0, H = 0;            // frames per clip, conv channels, hidden size
    std::int64_t heads = 0, hd = 0, L1 = 0, BT = 0;  // attention heads, head size, hidden states, batch · T
    const std::int64_t* valid_frames = nullptr;  // host, one per clip
};

// Frames the conv stack makes of `samples` (ModelConfig::frames_for lives in mess_model, outside the plugin).
std::int64_t frames_for(const CudaWeights& w, std::int64_t samples) {
    std::int64_t t = samples;
    for (const auto& cv : w.conv) t = t < cv.kernel ? 0 : (t - cv.kernel) / cv.stride + 1;
    return t;
}

struct Runner final : CudaRunner {
    std::function<void(const std::string&)> warn;
    std::shared_ptr<const CudaWeights> w;
    ValueType type = ValueType::f32;
    cudaStream_t stream = nullptr;
    cublasHandle_t blas = nullptr;
    std::int64_t cap = 0;     // the largest batch known to fit after running out of memory (0: no cap)
    std::size_t budget = 0;   // MESS_CUDA_MEMORY_BUDGET_MB in bytes (0: none)
    DeviceBuffer wave, conv_a, conv_b, col, feats, x, tmp, typed, qkv, qkv_t, scores, probs, ctx, ffn, pos_col, states, means, valid;
    float* pinned_in = nullptr;
    float* pinned_out = nullptr;
    std::size_t pinned_in_bytes = 0, pinned_out_bytes = 0;

    Runner(std::shared_ptr<const CudaWeights> weights, std::function<void(const std::string&)> warn_fn);
    void encode(const float* waves, std::int64_t batch, std::int64_t samples, const std::vector<std::int64_t>& valid_frames,
                const EncodeParams& outputs, HiddenStates& out) override;

    ~Runner() override {
        release_scratch();
        if (pinned_in) cudaFreeHost(pinned_in);
        if (pinned_out) cudaFreeHost(pinned_out);
        if (blas) cublasDestroy(blas);
        if (stream) cudaStreamDestroy(stream);
    }

    const void* as_typed(const float* x_in, std::int64_t n) {
        if (w->precision == Precision::fp32) return x_in;
        check(cuda::convert(x_in, typed.get(), n, type, stream), "convert activations");
        return typed.get();
    }

    // Row-major C[i] = A[i]·B[i] for i < batch, B [K,N] (or [N,K] read transposed), fp32 C; strides in elements.
    // cuBLAS is column-major, so it computes Cᵀ = Bᵀ·Aᵀ on the same memory.
    void gemm(bool trans_b, std::int64_t m, std::int64_t n, std::int64_t k, const void* a, std::int64_t lda, std::int64_t stride_a,
              const void* b, std::int64_t ldb, std::int64_t stride_b, float* c, std::int64_t ldc, std::int64_t stride_c, std::int64_t batch = 1) {
        const float alpha = 1.0f, beta = 0.0f;
        const cudaDataType t = blas_type(w->precision);
        check(cublasGemmStridedBatchedEx(blas, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, static_cast<int>(n), static_cast<int>(m),
                                         static_cast<int>(k), &alpha, b, t, static_cast<int>(ldb), stride_b, a, t, static_cast<int>(lda),
                                         stride_a, &beta, c, CUDA_R_32F, static_cast<int>(ldc), stride_c, static_cast<int>(batch),
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmStridedBatchedEx");
    }

    void linear(const CudaWeights::Linear& l, const float* in, std::int64_t rows, float* out, bool gelu) {
        gemm(false, rows, l.out, l.in, as_typed(in, rows * l.in), l.in, 0, l.w.get(), l.out, 0, out, l.out, 0);
        check(cuda::bias_gelu(out, l.b.as<float>(), rows, l.out, gelu, stream), "bias/GELU");
    }

    void layer_norm(const float* in, float* out, std::int64_t rows, std::int64_t cols, const CudaWeights::Norm& n) {
        check(cuda::layer_norm(in, out, rows, cols, n.w.as<float>(), n.b.as<float>(), w->config.layer_norm_eps, stream), "layer norm");
    }

    // Every buffer sized for `batch` clips of `samples` and the outputs asked for. Throws DeviceOutOfMemory
    // (also past the budget).
    void reserve(std::int64_t batch, std::int64_t samples, const EncodeParams& o) {
        const ModelConfig& c = w->config;
        const std::size_t T = static_cast<std::size_t>(frames_for(*w, samples)), C = static_cast<std::size_t>(c.conv_dim.back()),
                          H = static_cast<std::size_t>(c.hidden_size), F = static_cast<std::size_t>(c.intermediate_size),
                          heads = static_cast<std::size_t>(c.num_attention_heads), L1 = static_cast<std::size_t>(c.num_hidden_states()),
                          B = static_cast<std::size_t>(batch), N = static_cast<std::size_t>(samples), BT = B * T,
                          K = static_cast<std::size_t>(w->pos_kernel);
        std::size_t conv_max = 0, col_max = 0;
        std::int64_t t_in = samples;
        for (const auto& cv : w->conv) {
            const std::int64_t t_out = (t_in - cv.kernel) / cv.stride + 1;
            conv_max = std::max(conv_max, static_cast<std::size_t>(t_out * cv.out));
            col_max = std::max(col_max, static_cast<std::size_t>(t_out * cv.kernel * cv.in));
            t_in = t_out;
        }
        const std::size_t e = w->elem, f = sizeof(float), typed_n = BT * std::max({H, C, F});
        const std::size_t states_n = o.frames ? B * L1 * T * H : 0, means_n = o.frame_means ? B * L1 * H : 0;
        const std::size_t need = B * N * f + 2 * conv_max * f + col_max * e + BT * C * f + BT * H * f + BT * std::max(H, C) * f + typed_n * e +
                                 BT * 3 * H * (f + e) + heads * T * T * (f + e) + BT * H * f + BT * F * f + T * K * H * e +
                                 (states_n + means_n) * f + B * sizeof(std::int64_t);
        if (budget && need > budget) throw DeviceOutOfMemory("the memory budget (MESS_CUDA_MEMORY_BUDGET_MB)");
        wave.reserve(B * N * f, "waveforms");
        conv_a.reserve(conv_max * f, "conv activations");
        conv_b.reserve(conv_max * f, "conv activations");
        col.reserve(col_max * e, "conv im2col");
        feats.reserve(BT * C * f, "conv features");
        x.reserve(BT * H * f, "hidden states");
        tmp.reserve(BT * std::max(H, C) * f, "scratch");
        typed.reserve(typed_n * e, "converted activations");
        qkv.reserve(BT * 3 * H * f, "qkv");
        qkv_t.reserve(BT * 3 * H * e, "qkv");
        scores.reserve(heads * T * T * f, "attention scores");
        probs.reserve(heads * T * T * e, "attention probabilities");
        ctx.reserve(BT * H * f, "attention context");
        ffn.reserve(BT * F * f, "feed-forward");
        pos_col.reserve(T * K * H * e, "positional im2col");
        if (states_n) states.reserve(states_n * f, "output states");
        if (means_n) means.reserve(means_n * f, "frame means");
        valid.reserve(B * sizeof(std::int64_t), "valid frame counts");
        auto pinned = [](float*& p, std::size_t& have, std::size_t bytes) {
            if (bytes <= have) return;
            if (p) cudaFreeHost(p);
            p = nullptr;
            have = 0;
            check(cudaMallocHost(reinterpret_cast<void**>(&p), bytes), "pinned host memory");
            have = bytes;
        };
        pinned(pinned_in, pinned_in_bytes, B * N * f);
        pinned(pinned_out, pinned_out_bytes, (states_n + means_n) * f);
    }

    void release_scratch() {
        for (DeviceBuffer* b : {&wave, &conv_a, &conv_b, &col, &feats, &x, &tmp, &typed, &qkv, &qkv_t, &scores, &probs, &ctx, &ffn, &pos_col, &states,
                                &means, &valid})
            b->release();
    }

    // One forward pass of `batch` clips; results into out at clip offset `first`.
    void run(const float* waves, std::int64_t batch, std::int64_t samples, const std::int64_t* valid_frames, const EncodeParams& o,
             HiddenStates& out, std::int64_t first) {
        const ModelConfig& c = w->config;
        Pass p;
        p.batch = batch;
        p.samples = samples;
        p.valid_frames = valid_frames;
        p.T = frames_for(*w, samples);
        p.C = c.conv_dim.back();
        p.H = c.hidden_size;
        p.heads = c.num_attention_heads;
        p.hd = c.head_dim();
        p.L1 = c.num_hidden_states();
        p.BT = batch * p.T;
        reserve(batch, samples, o);
        upload(waves, p, o);
        conv_stack(p);
        project(p);
        positional_conv(p);
        if (!c.do_stable_layer_norm) layer_norm(x.as<float>(), x.as<float>(), p.BT, p.H, w->encoder_norm);
        store(p, o, 0);
        transformer_layers(p, o);
        download(p, o, out, first);
    }

    // The valid frame counts (for the frame means) and the waveforms to the device, through pinned memory.
    void upload(const float* waves, const Pass& p, const EncodeParams& o) {
        const std::int64_t batch = p.batch, samples = p.samples;
        const std::size_t f = sizeof(float);
        if (o.frame_means)  // pageable source: staged before the call returns
            check(cudaMemcpyAsync(valid.get(), p.valid_frames, static_cast<std::size_t>(batch) * sizeof(std::int64_t), cudaMemcpyHostToDevice,
                                  stream),
                  "upload valid frame counts");
        std::memcpy(pinned_in, waves, static_cast<std::size_t>(batch * samples) * f);
        check(cudaMemcpyAsync(wave.get(), pinned_in, static_cast<std::size_t>(batch * samples) * f, cudaMemcpyHostToDevice, stream),
              "upload waveforms");
    }

    // 1. Conv stack, clip by clip (conv 0's GroupNorm spans each clip): im2col → product → norm → GELU.
    void conv_stack(const Pass& p) {
        const ModelConfig& c = w->config;
        const std::int64_t batch = p.batch, samples = p.samples, T = p.T, C = p.C;
        const std::size_t f = sizeof(float);
        for (std::int64_t b = 0; b < batch; ++b) {
            const float* in = wave.as<float>() + b * samples;
            std::int64_t t_in = samples;
            for (std::size_t i = 0; i < w->conv.size(); ++i) {
                const auto& cv = w->conv[i];
                const std::int64_t t_out = (t_in - cv.kernel) / cv.stride + 1, row = static_cast<std::int64_t>(cv.kernel) * cv.in;
                float* out_buf = (i % 2 == 0 ? conv_a : conv_b).as<float>();
                check(cuda::conv_rows(in, col.get(), t_out, static_cast<std::int64_t>(cv.stride) * cv.in, row, type, stream), "conv im2col");
                gemm(false, t_out, cv.out, row, col.get(), row, 0, cv.w.get(), cv.out, 0, out_buf, cv.out, 0);
                const float* bias = cv.has_bias ? cv.bias.as<float>() : nullptr;
                if (cv.has_norm) {
                    if (bias) check(cuda::bias_gelu(out_buf, bias, t_out, cv.out, false, stream), "conv bias");
                    if (c.feat_extract_norm == "group") {
                        check(cuda::channel_norm_gelu(out_buf, t_out, cv.out, cv.norm_w.as<float>(), cv.norm_b.as<float>(), 1e-5f, stream),
                              "conv group norm");
                    } else {
                        check(cuda::layer_norm(out_buf, out_buf, t_out, cv.out, cv.norm_w.as<float>(), cv.norm_b.as<float>(), 1e-5f, stream),
                              "conv layer norm");
                        check(cuda::bias_gelu(out_buf, nullptr, t_out, cv.out, true, stream), "conv GELU");
                    }
                } else {
                    check(cuda::bias_gelu(out_buf, bias, t_out, cv.out, true, stream), "conv GELU");
                }
                in = out_buf;
                t_in = t_out;
            }
            check(cudaMemcpyAsync(feats.as<float>() + b * T * C, in, static_cast<std::size_t>(T * C) * f, cudaMemcpyDeviceToDevice, stream),
                  "conv features");
        }
    }

    // 2. Feature projection; padded frames zeroed before the positional conv.
    void project(const Pass& p) {
        const std::int64_t batch = p.batch, T = p.T, C = p.C, H = p.H, BT = p.BT;
        const std::int64_t* valid_frames = p.valid_frames;
        const std::size_t f = sizeof(float);
        const float* proj_in = feats.as<float>();
        if (w->proj_norm.present) {
            layer_norm(feats.as<float>(), tmp.as<float>(), BT, C, w->proj_norm);
            proj_in = tmp.as<float>();
        }
        linear(w->proj, proj_in, BT, x.as<float>(), false);
        for (std::int64_t b = 0; b < batch; ++b)
            if (valid_frames[b] < T)
                check(cudaMemsetAsync(x.as<float>() + (b * T + valid_frames[b]) * H, 0, static_cast<std::size_t>((T - valid_frames[b]) * H) * f,
                                      stream),
                      "zero padded frames");
    }

    // 3. Grouped positional conv (K/2 padding, last frame dropped) + bias + GELU, added to x: per clip,
    // one product per group over the group's im2col.
    void positional_conv(const Pass& p) {
        const std::int64_t batch = p.batch, T = p.T, H = p.H;
        const std::int64_t G = w->pos_groups, K = w->pos_kernel, gi = H / G;
        for (std::int64_t b = 0; b < batch; ++b) {
            float* xb = x.as<float>() + b * T * H;
            check(cuda::pos_im2col(xb, pos_col.get(), T, H, G, K, type, stream), "positional im2col");
            gemm(false, T, gi, K * gi, pos_col.get(), K * gi, T * K * gi, w->pos_w.get(), gi, K * gi * gi, tmp.as<float>(), H, gi, G);
            check(cuda::bias_gelu(tmp.as<float>(), w->pos_b.as<float>(), T, H, true, stream), "positional bias/GELU");
            check(cuda::add(xb, tmp.as<float>(), T * H, stream), "positional add");
        }
    }

    // Hidden state `layer` (x) into the output states and/or the frame means, on the device.
    void store(const Pass& p, const EncodeParams& o, std::int64_t layer) {
        const std::int64_t batch = p.batch, T = p.T, H = p.H, L1 = p.L1;
        const std::size_t f = sizeof(float);
        if (o.frames)
            for (std::int64_t b = 0; b < batch; ++b)
                check(cudaMemcpyAsync(states.as<float>() + ((b * L1 + layer) * T) * H, x.as<float>() + b * T * H,
                                      static_cast<std::size_t>(T * H) * f, cudaMemcpyDeviceToDevice, stream),
                      "store a hidden state");
        if (o.frame_means)
            check(cuda::frame_means(x.as<float>(), valid.as<std::int64_t>(), batch, T, H, L1, layer, means.as<float>(), stream),
                  "frame means");
    }

    // 4. Transformer layers, each output stored as hidden state l + 1.
    void transformer_layers(const Pass& p, const EncodeParams& o) {
        const bool pre_ln = w->config.do_stable_layer_norm;
        for (std::size_t l = 0; l < w->layers.size(); ++l) {
            const auto& layer = w->layers[l];
            attention(layer, p);
            feed_forward(layer, p);
            if (pre_ln && l + 1 == w->layers.size()) layer_norm(x.as<float>(), x.as<float>(), p.BT, p.H, w->encoder_norm);
            store(p, o, static_cast<std::int64_t>(l) + 1);
        }
    }

    // Self-attention with its residual; attention per clip, all heads in one batched product each way.
    void attention(const CudaWeights::Layer& layer, const Pass& p) {
        const std::int64_t batch = p.batch, T = p.T, H = p.H, BT = p.BT, heads = p.heads, hd = p.hd;
        const bool pre_ln = w->config.do_stable_layer_norm;
        const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
        const std::size_t e = w->elem;
        const float* attn_in = x.as<float>();
        if (pre_ln) {
            layer_norm(x.as<float>(), tmp.as<float>(), BT, H, layer.attn_norm);
            attn_in = tmp.as<float>();
        }
        linear(layer.qkv, attn_in, BT, qkv.as<float>(), false);
        check(cuda::scale_q(qkv.as<float>(), BT, H, scale, stream), "scale q");
        const void* q_all = qkv.get();
        if (w->precision != Precision::fp32) {
            check(cuda::convert(qkv.as<float>(), qkv_t.get(), BT * 3 * H, type, stream), "convert qkv");
            q_all = qkv_t.get();
        }
        for (std::int64_t b = 0; b < batch; ++b) {
            const std::int64_t vf = p.valid_frames[b];  // masked keys are left out
            const char* q = static_cast<const char*>(q_all) + static_cast<std::size_t>(b * T * 3 * H) * e;
            const char* k = q + static_cast<std::size_t>(H) * e;
            const char* v = q + static_cast<std::size_t>(2 * H) * e;
            gemm(true, T, vf, hd, q, 3 * H, hd, k, 3 * H, hd, scores.as<float>(), vf, T * vf, heads);
            check(cuda::softmax_rows(scores.as<float>(), probs.get(), heads * T, vf, type, stream), "softmax");
            gemm(false, T, hd, vf, probs.get(), vf, T * vf, v, 3 * H, hd, ctx.as<float>() + b * T * H, H, hd, heads);
        }
        linear(layer.out_proj, ctx.as<float>(), BT, tmp.as<float>(), false);
        check(cuda::add(x.as<float>(), tmp.as<float>(), BT * H, stream), "residual");
        if (!pre_ln) layer_norm(x.as<float>(), x.as<float>(), BT, H, layer.attn_norm);
    }

    // Feed-forward with its residual.
    void feed_forward(const CudaWeights::Layer& layer, const Pass& p) {
        const std::int64_t H = p.H, BT = p.BT;
        const bool pre_ln = w->config.do_stable_layer_norm;
        const float* ffn_in = x.as<float>();
        if (pre_ln) {
            layer_norm(x.as<float>(), tmp.as<float>(), BT, H, layer.ffn_norm);
            ffn_in = tmp.as<float>();
        }
        linear(layer.ffn_in, ffn_in, BT, ffn.as<float>(), true);
        linear(layer.ffn_out, ffn.as<float>(), BT, tmp.as<float>(), false);
        check(cuda::add(x.as<float>(), tmp.as<float>(), BT * H, stream), "residual");
        if (!pre_ln) layer_norm(x.as<float>(), x.as<float>(), BT, H, layer.ffn_norm);
    }

    // Only what was asked for comes back: the frame means alone are 1/T of the states.
    void download(const Pass& p, const EncodeParams& o, HiddenStates& out, std::int64_t first) {
        const std::int64_t batch = p.batch, T = p.T, C = p.C, H = p.H, L1 = p.L1, BT = p.BT;
        const std::size_t f = sizeof(float);
        const std::size_t n_states = o.frames ? static_cast<std::size_t>(batch * L1 * T * H) : 0,
                          n_means = o.frame_means ? static_cast<std::size_t>(batch * L1 * H) : 0;
        if (n_states) check(cudaMemcpyAsync(pinned_out, states.get(), n_states * f, cudaMemcpyDeviceToHost, stream), "download states");
        if (n_means) check(cudaMemcpyAsync(pinned_out + n_states, means.get(), n_means * f, cudaMemcpyDeviceToHost, stream), "download means");
        check(cudaStreamSynchronize(stream), "forward pass");
        if (n_states) std::memcpy(out.values.data() + first * L1 * T * H, pinned_out, n_states * f);
        if (n_means) std::memcpy(out.means.data() + first * L1 * H, pinned_out + n_states, n_means * f);
        if (o.keep_conv_features)
            check(cudaMemcpy(out.conv_features.data() + first * T * C, feats.get(), static_cast<std::size_t>(BT * C) * f, cudaMemcpyDeviceToHost),
                  "download conv features");
    }
};

Runner::Runner(std::shared_ptr<const CudaWeights> weights, std::function<void(const std::string&)> warn_fn)
    : warn(std::move(warn_fn)), w(std::move(weights)) {
    type = value_type(w->precision);
    if (const char* b = std::getenv("MESS_CUDA_MEMORY_BUDGET_MB"); b && *b) budget = static_cast<std::size_t>(std::atoll(b)) << 20;
    check(cudaSetDevice(w->device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    check(cublasCreate(&blas), "cublasCreate");
    check(cublasSetStream(blas, stream), "cublasSetStream");
    if (w->precision == Precision::fp32) check(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode");  // no TF32
}

void Runner::encode(const float* waves, std::int64_t batch, std::int64_t samples, const std::vector<std::int64_t>& valid_frames,
                    const EncodeParams& outputs, HiddenStates& out) {
    const ModelConfig& c = w->config;
    const std::int64_t T = frames_for(*w, samples), L1 = c.num_hidden_states(), H = c.hidden_size, C = c.conv_dim.back();
    check(cudaSetDevice(w->device), "cudaSetDevice");
    out.values.resize(outputs.frames ? static_cast<std::size_t>(batch * L1 * T * H) : 0);
    out.means.resize(outputs.frame_means ? static_cast<std::size_t>(batch * L1 * H) : 0);
    out.conv_features.resize(outputs.keep_conv_features ? static_cast<std::size_t>(batch * T * C) : 0);
    // In pieces of at most `cap` clips; on running out of memory, halve and remember.
    std::int64_t at = 0;
    while (at < batch) {
        const std::int64_t n = std::min(batch - at, cap > 0 ? cap : batch);
        try {
            run(waves + at * samples, n, samples, valid_frames.data() + at, outputs, out, at);
            at += n;
        } catch (const DeviceOutOfMemory& e) {
            release_scratch();
            cudaStreamSynchronize(stream);
            cudaGetLastError();
            if (n == 1) throw_input("device cuda: one window does not fit in GPU memory ({})", e.what());
            cap = n / 2;
            if (warn) warn(fmt::format("GPU memory ran out ({}) at a batch of {} windows; continuing with {}", e.what(), n, cap));
        }
    }
}

class Runtime final : public CudaRuntime {
public:
    int device_count(std::string* why) override { return model_detail::device_count(why); }
    std::shared_ptr<const CudaWeights> upload(const Model::Weights& weights, const ModelConfig& config, Precision precision) override {
        return upload_weights(weights, config, precision);
    }
    std::unique_ptr<CudaRunner> runner(std::shared_ptr<const CudaWeights> weights, std::function<void(const std::string&)> warn) override {
        return std::make_unique<Runner>(std::move(weights), std::move(warn));
    }
};

}  // namespace

}  // namespace mess::model_detail

extern "C" mess::model_detail::CudaRuntime* mess_cuda_runtime_v2() {
    static mess::model_detail::Runtime runtime;
    return &runtime;
}
