// The forward pass (reference/mert.md §4) and whole-recording embedding.
#include <algorithm>
#include <chrono>
#include <cmath>

#include <omp.h>
#include <spdlog/spdlog.h>

#include "cuda_backend.hpp"
#include "kernels.hpp"
#include "mess/model.hpp"
#include "weights.hpp"

namespace mess {

using model_detail::Kernels;
using W = Model::Weights;

// Wall time per forward-pass stage, logged at debug level (`--log-level debug`) to show where time goes.
class StageClock {
public:
    explicit StageClock(bool on) : on_(on), last_(std::chrono::steady_clock::now()) {}
    void lap(const char* stage) {
        if (!on_) return;
        auto now = std::chrono::steady_clock::now();
        report_ += fmt::format(" {} {:.1f} ms,", stage, std::chrono::duration<double, std::milli>(now - last_).count());
        last_ = now;
    }
    ~StageClock() {
        if (on_ && !report_.empty()) spdlog::debug("encode:{}", report_.substr(0, report_.size() - 1));
    }

private:
    bool on_;
    std::chrono::steady_clock::time_point last_;
    std::string report_;
};

std::vector<float> normalize_waveform(std::span<const float> clip) {
    // Wav2Vec2FeatureExtractor: (x - mean) / sqrt(var + 1e-7), population variance.
    std::vector<float> out(clip.begin(), clip.end());
    if (clip.empty()) return out;
    double sum = 0.0;
    for (float v : clip) sum += v;
    const double mean = sum / static_cast<double>(clip.size());
    double sq = 0.0;
    for (float v : clip) sq += (v - mean) * (v - mean);
    const double inv = 1.0 / std::sqrt(sq / static_cast<double>(clip.size()) + 1e-7);
    for (auto& v : out) v = static_cast<float>((v - mean) * inv);
    return out;
}

namespace {

// x[n] as bf16 in `buf` (resized).
const std::uint16_t* as_bf16(std::vector<std::uint16_t>& buf, const float* x, std::int64_t n) {
    buf.resize(static_cast<std::size_t>(n));
    model_detail::to_bf16(x, buf.data(), n);
    return buf.data();
}

// Linear layer on rows: y[M, out] = x[M, in] · Wᵀ + b, then GELU when asked (in bf16 when the weights have a
// bf16 copy, with bias and GELU fused into the product).
void linear(Kernels& k, const W::Linear& l, const float* x, std::int64_t rows, float* y, std::vector<std::uint16_t>& a16,
            bool gelu = false) {
    if (!l.w16.empty()) {
        Kernels::MatmulBf16 mm;
        mm.m = rows;
        mm.n = l.out;
        mm.k = l.in;
        mm.a = as_bf16(a16, x, rows * l.in);
        mm.a_row = l.in;
        mm.b = l.w16.data();
        mm.b_row = l.out;
        mm.c = y;
        mm.c_row = l.out;
        mm.constant_b = true;
        mm.bias = l.b.data();
        mm.gelu = gelu;
        k.matmul_bf16(mm);
        return;
    }
    k.gemm(false, false, rows, l.out, l.in, x, l.in, l.w.data(), l.out, 0.0f, y, l.out);
    model_detail::add_bias(y, rows, l.out, l.b.data());
    if (gelu) k.gelu(y, rows * l.out);
}

// Strided conv over a time-major input [t_in, in] → [t_out, out], as GEMMs over taps grouped by the
// stride: for taps j·s .. j·s+s-1 the im2col rows are contiguous, non-overlapping slices of the input
// (row t starts at (t + j)·s·in), so no copy is needed. (Measured here faster than oneDNN's convolution
// primitive for these shapes, and without its per-shape JIT cost.)
// Returns true when GELU was fused into the product (bf16, a layer without a norm).
bool conv_layer(Kernels& k, const W::Conv& cv, const float* in, float* out, std::int64_t t_out,
                std::vector<std::uint16_t>& a16) {
    const std::int64_t s = cv.stride, ld = s * cv.in, row = cv.kernel * cv.in;
    if (!cv.w16.empty()) {
        // bf16: the im2col rows (row t = input rows t·s … t·s + kernel - 1, contiguous) are written while
        // converting, so the layer is one product.
        a16.resize(static_cast<std::size_t>(t_out * row));
#pragma omp parallel for schedule(static)
        for (std::int64_t t = 0; t < t_out; ++t) model_detail::to_bf16(in + t * ld, a16.data() + t * row, row);
        Kernels::MatmulBf16 mm;
        mm.m = t_out;
        mm.n = cv.out;
        mm.k = row;
        mm.a = a16.data();
        mm.a_row = row;
        mm.b = cv.w16.data();
        mm.b_row = cv.out;
        mm.c = out;
        mm.c_row = cv.out;
        mm.constant_b = true;
        mm.bias = cv.bias.empty() ? nullptr : cv.bias.data();
        mm.gelu = cv.norm_w.empty();
        k.matmul_bf16(mm);
        return mm.gelu;
    }
    for (std::int64_t first = 0, j = 0; first < cv.kernel; first += s, ++j) {
        const std::int64_t taps = std::min<std::int64_t>(s, cv.kernel - first);
        k.gemm(false, false, t_out, cv.out, taps * cv.in, in + j * ld, ld, cv.w.data() + first * cv.in * cv.out, cv.out,
               j == 0 ? 0.0f : 1.0f, out, cv.out);
    }
    if (!cv.bias.empty()) model_detail::add_bias(out, t_out, cv.out, cv.bias.data());
    return false;
}

}  // namespace

namespace model_detail {

// One encode() call's clips after its checks: the batch, the frames each clip makes and its valid part.
struct EncodeBatch {
    std::span<const float> waves;                 // [batch, samples]
    std::span<const std::int64_t> valid_samples;  // empty, or one per clip
    std::int64_t batch = 0, samples = 0;
    std::int64_t frames = 0;                      // T = frames_for(samples)
    std::vector<std::int64_t> valid_frames;       // one per clip (T when valid_samples is empty)
    bool normalize = true;

    std::int64_t valid(std::int64_t b) const { return valid_samples.empty() ? samples : valid_samples[static_cast<std::size_t>(b)]; }
    std::span<const float> clip(std::int64_t b) const {
        return waves.subspan(static_cast<std::size_t>(b * samples), static_cast<std::size_t>(samples));
    }
};

// The forward pass of a ModelState on one device, chosen once when the state is made (Model::device()).
class EncoderBackend {
public:
    virtual ~EncoderBackend() = default;
    // Fills what `params` asks for in h, whose sizes (batch, layers, frames, hidden, conv_channels) are set.
    virtual void forward(const EncodeBatch& in, const EncodeParams& params, HiddenStates& h, StageClock& clock) = 0;
};

}  // namespace model_detail

namespace {

using model_detail::EncodeBatch;

// Error(usage) for arguments encode() cannot run on (see ModelState::encode).
void check_encode_args(const ModelConfig& cfg, std::span<const float> waves, std::int64_t batch, std::int64_t samples,
                       const EncodeParams& params, std::span<const std::int64_t> valid_samples) {
    if (params.threads < 1) throw_usage("threads must be ≥ 1 (got {})", params.threads);
    if (batch < 1) throw_usage("batch must be ≥ 1 (got {})", batch);
    if (!params.frames && !params.frame_means) throw_usage("encode: neither frames nor frame means asked for");
    if (samples < cfg.min_samples())
        throw_usage("clip of {} samples is shorter than one frame ({} samples = {:.1f} ms at {} Hz)", samples,
                    cfg.min_samples(), 1000.0 * static_cast<double>(cfg.min_samples()) / cfg.sampling_rate, cfg.sampling_rate);
    if (waves.size() != static_cast<std::size_t>(batch * samples))
        throw_usage("waveform holds {} samples, expected batch {} × {}", waves.size(), batch, samples);
    if (!valid_samples.empty() && valid_samples.size() != static_cast<std::size_t>(batch))
        throw_usage("valid_samples has {} entries for a batch of {}", valid_samples.size(), batch);
    for (auto v : valid_samples)
        if (v < cfg.min_samples() || v > samples) throw_usage("valid_samples {} outside [{}, {}]", v, cfg.min_samples(), samples);
}

EncodeBatch make_batch(const ModelConfig& cfg, std::span<const float> waves, std::int64_t batch, std::int64_t samples,
                       const EncodeParams& params, std::span<const std::int64_t> valid_samples) {
    EncodeBatch in;
    in.waves = waves;
    in.valid_samples = valid_samples;
    in.batch = batch;
    in.samples = samples;
    in.frames = cfg.frames_for(samples);
    in.normalize = params.normalize.value_or(cfg.do_normalize);
    in.valid_frames.assign(static_cast<std::size_t>(batch), in.frames);
    for (std::size_t b = 0; b < valid_samples.size(); ++b) in.valid_frames[b] = cfg.frames_for(valid_samples[b]);
    return in;
}

// The CPU forward pass (reference/mert.md §4), stage by stage; its buffers are kept across calls.
class CpuBackend final : public model_detail::EncoderBackend {
public:
    explicit CpuBackend(const Model& model)
        : cfg_(model.config()), w_(model.weights()), group_norm_(cfg_.feat_extract_norm == "group") {}
    void forward(const EncodeBatch& in, const EncodeParams& params, HiddenStates& h, StageClock& clock) override {
        conv_stack(in);
        clock.lap("conv stack");
        prepare_outputs(params, h);
        project(in);
        positional_conv(in);
        clock.lap("projection + positional conv");
        transformer(in, params, h);
        clock.lap("transformer layers");
    }

private:
    void conv_stack(const EncodeBatch& in);
    void load_clip(const EncodeBatch& in, std::int64_t b);
    const float* conv_clip(std::int64_t samples);
    void prepare_outputs(const EncodeParams& params, HiddenStates& h) const;
    void project(const EncodeBatch& in);
    void positional_conv(const EncodeBatch& in);
    void transformer(const EncodeBatch& in, const EncodeParams& params, HiddenStates& h);
    void attention_block(const W::Layer& layer, const EncodeBatch& in);
    void attention_bf16(const EncodeBatch& in);
    void attention_fp32(const EncodeBatch& in);
    void feed_forward_block(const W::Layer& layer, std::int64_t rows);
    void store(const EncodeBatch& in, const EncodeParams& params, std::int64_t layer, HiddenStates& h) const;

    const ModelConfig& cfg_;  // both owned by the Model the ModelState holds
    const W& w_;
    const bool group_norm_;   // feat_extract_norm "group" (GroupNorm on conv 0), else LayerNorm on every conv
    Kernels k_;
    std::vector<float> clip_, conv_a_, conv_b_;  // one clip through the conv stack (ping-pong)
    std::vector<float> feats_;                   // [B·T, C] conv output
    std::vector<float> x_, tmp_, qkv_, ctx_, ffn_, scores_;
    std::vector<std::uint16_t> a16_, qkv16_, scores16_;  // bf16 copies of activations (Precision::bf16)
};

// 1. Feature encoder, clip by clip (conv 0's GroupNorm spans each clip) → feats_ [B·T, C].
void CpuBackend::conv_stack(const EncodeBatch& in) {
    const std::int64_t T = in.frames, C = cfg_.conv_dim.back();
    feats_.resize(static_cast<std::size_t>(in.batch * T * C));
    for (std::int64_t b = 0; b < in.batch; ++b) {
        load_clip(in, b);
        const float* out = conv_clip(in.samples);
        std::copy(out, out + T * C, feats_.begin() + b * T * C);
    }
}

// Clip b into clip_, normalised over its valid part when asked.
void CpuBackend::load_clip(const EncodeBatch& in, std::int64_t b) {
    std::span<const float> clip = in.clip(b);
    if (in.normalize) {
        clip_ = normalize_waveform(clip.first(static_cast<std::size_t>(in.valid(b))));
        clip_.resize(static_cast<std::size_t>(in.samples), 0.0f);  // HF zeroes the padded tail after normalising
    } else {
        clip_.assign(clip.begin(), clip.end());
    }
}

// The conv layers over clip_ (ping-pong between conv_a_ and conv_b_): conv → norm (where present) → GELU.
// Returns the last layer's output [T, C].
const float* CpuBackend::conv_clip(std::int64_t samples) {
    const float* in = clip_.data();
    std::int64_t t_in = samples;
    for (std::size_t i = 0; i < w_.conv.size(); ++i) {
        const auto& cv = w_.conv[i];
        const std::int64_t t_out = (t_in - cv.kernel) / cv.stride + 1;
        std::vector<float>& out_buf = (i % 2 == 0) ? conv_a_ : conv_b_;
        out_buf.resize(static_cast<std::size_t>(t_out * cv.out));
        const bool gelu_done = conv_layer(k_, cv, in, out_buf.data(), t_out, a16_);
        if (!cv.norm_w.empty()) {
            if (group_norm_)
                model_detail::channel_norm_over_time(out_buf.data(), t_out, cv.out, cv.norm_w.data(), cv.norm_b.data(), 1e-5f);
            else
                k_.layer_norm(out_buf.data(), out_buf.data(), t_out, cv.out, cv.norm_w.data(), cv.norm_b.data(), 1e-5f);
        }
        if (!gelu_done) k_.gelu(out_buf.data(), t_out * cv.out);
        in = out_buf.data();
        t_in = t_out;
    }
    return in;
}

// Sizes the result's buffers for what `params` asks for; the conv features are copied now.
void CpuBackend::prepare_outputs(const EncodeParams& params, HiddenStates& h) const {
    h.values.resize(params.frames ? static_cast<std::size_t>(h.batch * h.layers * h.frames * h.hidden) : 0);
    h.means.resize(params.frame_means ? static_cast<std::size_t>(h.batch * h.layers * h.hidden) : 0);
    if (params.keep_conv_features) h.conv_features.assign(feats_.begin(), feats_.end());
    else h.conv_features.clear();
}

// Hidden state `layer` (x_ [B·T, H]) into h: every frame, and/or each clip's mean over its valid frames.
void CpuBackend::store(const EncodeBatch& in, const EncodeParams& params, std::int64_t layer, HiddenStates& h) const {
    const std::int64_t T = h.frames, H = h.hidden, L1 = h.layers;
    const float* x = x_.data();
    for (std::int64_t b = 0; b < in.batch; ++b) {
        if (params.frames) std::copy(x + b * T * H, x + (b + 1) * T * H, h.values.begin() + ((b * L1 + layer) * T) * H);
        if (params.frame_means) mess::mean_of_rows(x + b * T * H, in.valid_frames[b], H, h.means.data() + (b * L1 + layer) * H);
    }
}

// 2. Feature projection (LayerNorm when present, Linear C → H) into x_; padded frames are zeroed before the
// positional conv.
void CpuBackend::project(const EncodeBatch& in) {
    const std::int64_t T = in.frames, C = cfg_.conv_dim.back(), H = cfg_.hidden_size, BT = in.batch * T;
    x_.resize(static_cast<std::size_t>(BT * H));
    tmp_.resize(static_cast<std::size_t>(BT * std::max(H, C)));
    const float* proj_in = feats_.data();
    if (!w_.proj_norm.w.empty()) {
        k_.layer_norm(feats_.data(), tmp_.data(), BT, C, w_.proj_norm.w.data(), w_.proj_norm.b.data(), cfg_.layer_norm_eps);
        proj_in = tmp_.data();
    }
    linear(k_, w_.proj, proj_in, BT, x_.data(), a16_);
    for (std::int64_t b = 0; b < in.batch; ++b)
        std::fill(x_.begin() + (b * T + in.valid_frames[b]) * H, x_.begin() + (b + 1) * T * H, 0.0f);
}

// 3. Positional conv (grouped, kernel K, last frame dropped) + GELU, added to x_.
void CpuBackend::positional_conv(const EncodeBatch& in) {
    const std::int64_t T = in.frames, H = cfg_.hidden_size, BT = in.batch * T;
    float* pos = tmp_.data();
    Kernels::Conv1d pc;
    pc.batch = in.batch;
    pc.t_in = T;
    pc.c_in = pc.c_out = H;
    pc.groups = w_.pos_groups;
    pc.kernel = w_.pos_kernel;
    pc.pad_before = w_.pos_kernel / 2;
    pc.pad_after = w_.pos_kernel / 2 - 1;  // HF pads K/2 on both sides, then drops the last frame
    pc.weights = w_.pos_w.data();
    pc.bias = w_.pos_b.data();
    pc.gelu = true;
    pc.bf16 = w_.bf16;
    k_.conv1d(pc, x_.data(), pos);
    model_detail::add_inplace(x_.data(), pos, BT * H);
}

// 4. Transformer layers: hidden state 0 is their (post-LN: normalised) input, state l the output of layer l.
void CpuBackend::transformer(const EncodeBatch& in, const EncodeParams& params, HiddenStates& h) {
    const std::int64_t T = in.frames, H = cfg_.hidden_size, BT = in.batch * T, F = cfg_.intermediate_size;
    const bool pre_ln = cfg_.do_stable_layer_norm;
    const float eps = cfg_.layer_norm_eps;
    if (!pre_ln) k_.layer_norm(x_.data(), x_.data(), BT, H, w_.encoder_norm.w.data(), w_.encoder_norm.b.data(), eps);
    store(in, params, 0, h);

    qkv_.resize(static_cast<std::size_t>(BT * 3 * H));
    ctx_.resize(static_cast<std::size_t>(BT * H));
    ffn_.resize(static_cast<std::size_t>(BT * F));
    scores_.resize(static_cast<std::size_t>(T * T));
    for (std::size_t l = 0; l < w_.layers.size(); ++l) {
        attention_block(w_.layers[l], in);
        feed_forward_block(w_.layers[l], BT);
        if (pre_ln && l + 1 == w_.layers.size())  // the last state is replaced by the normalised one
            k_.layer_norm(x_.data(), x_.data(), BT, H, w_.encoder_norm.w.data(), w_.encoder_norm.b.data(), eps);
        store(in, params, static_cast<std::int64_t>(l) + 1, h);
    }
}

// Self-attention on x_ (post-LN) or on layer_norm(x_) (pre-LN), its output projection added to x_.
void CpuBackend::attention_block(const W::Layer& layer, const EncodeBatch& in) {
    const std::int64_t H = cfg_.hidden_size, BT = in.batch * in.frames, hd = cfg_.head_dim();
    const bool pre_ln = cfg_.do_stable_layer_norm;
    const float eps = cfg_.layer_norm_eps;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const float* attn_in = x_.data();
    if (pre_ln) {
        k_.layer_norm(x_.data(), tmp_.data(), BT, H, layer.attn_norm.w.data(), layer.attn_norm.b.data(), eps);
        attn_in = tmp_.data();
    }
    linear(k_, layer.qkv, attn_in, BT, qkv_.data(), a16_);
    for (std::int64_t r = 0; r < BT; ++r) {  // q scaled after its bias, as HF does
        float* q = qkv_.data() + r * 3 * H;
        for (std::int64_t c = 0; c < H; ++c) q[c] *= scale;
    }
    if (w_.bf16) attention_bf16(in);
    else attention_fp32(in);
    linear(k_, layer.out_proj, ctx_.data(), BT, tmp_.data(), a16_);
    model_detail::add_inplace(x_.data(), tmp_.data(), BT * H);
    if (!pre_ln) k_.layer_norm(x_.data(), x_.data(), BT, H, layer.attn_norm.w.data(), layer.attn_norm.b.data(), eps);
}

// softmax(q·kᵀ)·v from qkv_ into ctx_ in bf16: all heads of a clip in one batched product each way.
void CpuBackend::attention_bf16(const EncodeBatch& in) {
    const std::int64_t T = in.frames, H = cfg_.hidden_size, BT = in.batch * T;
    const std::int64_t heads = cfg_.num_attention_heads, hd = cfg_.head_dim();
    const std::uint16_t* qkv16 = as_bf16(qkv16_, qkv_.data(), BT * 3 * H);
    scores_.resize(static_cast<std::size_t>(heads * T * T));
    for (std::int64_t b = 0; b < in.batch; ++b) {
        const std::int64_t vf = in.valid_frames[b];  // masked keys are left out
        const std::uint16_t* q = qkv16 + b * T * 3 * H;
        Kernels::MatmulBf16 qk;  // scores[h] = q_h · k_hᵀ: [T, hd] · [hd, vf]
        qk.batch = heads;
        qk.m = T;
        qk.n = vf;
        qk.k = hd;
        qk.a = q;
        qk.a_batch = hd;
        qk.a_row = 3 * H;
        qk.b = q + H;
        qk.b_batch = hd;
        qk.b_row = 1;
        qk.b_col = 3 * H;
        qk.c = scores_.data();
        qk.c_batch = T * vf;
        qk.c_row = vf;
        k_.matmul_bf16(qk);
        k_.softmax_rows(scores_.data(), heads * T, vf);
        Kernels::MatmulBf16 pv;  // ctx[:, h·hd ...] = p_h · v_h: [T, vf] · [vf, hd]
        pv.batch = heads;
        pv.m = T;
        pv.n = hd;
        pv.k = vf;
        pv.a = as_bf16(scores16_, scores_.data(), heads * T * vf);
        pv.a_batch = T * vf;
        pv.a_row = vf;
        pv.b = q + 2 * H;
        pv.b_batch = hd;
        pv.b_row = 3 * H;
        pv.c = ctx_.data() + b * T * H;
        pv.c_batch = hd;
        pv.c_row = H;
        k_.matmul_bf16(pv);
    }
}

// softmax(q·kᵀ)·v from qkv_ into ctx_ in fp32, head by head.
void CpuBackend::attention_fp32(const EncodeBatch& in) {
    const std::int64_t T = in.frames, H = cfg_.hidden_size, heads = cfg_.num_attention_heads, hd = cfg_.head_dim();
    for (std::int64_t b = 0; b < in.batch; ++b) {
        const std::int64_t vf = in.valid_frames[b];
        for (std::int64_t hh = 0; hh < heads; ++hh) {
            const float* q = qkv_.data() + b * T * 3 * H + hh * hd;  // k at q + H, v at q + 2H
            k_.gemm(false, true, T, vf, hd, q, 3 * H, q + H, 3 * H, 0.0f, scores_.data(), vf);  // masked keys left out
            k_.softmax_rows(scores_.data(), T, vf);
            k_.gemm(false, false, T, hd, vf, scores_.data(), vf, q + 2 * H, 3 * H, 0.0f, ctx_.data() + b * T * H + hh * hd, H);
        }
    }
}

// Feed-forward on x_ (post-LN) or on layer_norm(x_) (pre-LN), added to x_.
void CpuBackend::feed_forward_block(const W::Layer& layer, std::int64_t rows) {
    const std::int64_t H = cfg_.hidden_size;
    const bool pre_ln = cfg_.do_stable_layer_norm;
    const float eps = cfg_.layer_norm_eps;
    const float* ffn_in = x_.data();
    if (pre_ln) {
        k_.layer_norm(x_.data(), tmp_.data(), rows, H, layer.ffn_norm.w.data(), layer.ffn_norm.b.data(), eps);
        ffn_in = tmp_.data();
    }
    linear(k_, layer.ffn_in, ffn_in, rows, ffn_.data(), a16_, true);
    linear(k_, layer.ffn_out, ffn_.data(), rows, tmp_.data(), a16_);
    model_detail::add_inplace(x_.data(), tmp_.data(), rows * H);
    if (!pre_ln) k_.layer_norm(x_.data(), x_.data(), rows, H, layer.ffn_norm.w.data(), layer.ffn_norm.b.data(), eps);
}

// The CUDA forward pass: the batch is normalised here, the rest runs in the plugin (cuda_backend.hpp), whose
// runner is opened on the first encode().
class CudaBackend final : public model_detail::EncoderBackend {
public:
    explicit CudaBackend(const Model& model) : model_(model) {}
    void forward(const EncodeBatch& in, const EncodeParams& params, HiddenStates& h, StageClock& clock) override {
        if (!runner_)  // the model was uploaded, so the plugin is open
            runner_ = model_detail::cuda_runtime(nullptr)->runner(model_.cuda_weights(), [](const std::string& m) { spdlog::warn("{}", m); });
        load_waves(in);
        runner_->encode(waves_.data(), in.batch, in.samples, in.valid_frames, params, h);
        clock.lap("cuda forward pass");
    }

private:
    // The batch into waves_, each clip normalised over its valid part and its padded tail zeroed (as HF).
    void load_waves(const EncodeBatch& in) {
        waves_.assign(in.waves.begin(), in.waves.end());
        if (!in.normalize) return;
        for (std::int64_t b = 0; b < in.batch; ++b) {
            const std::int64_t n = in.valid(b), samples = in.samples;
            const auto clip = normalize_waveform(in.waves.subspan(static_cast<std::size_t>(b * samples), static_cast<std::size_t>(n)));
            std::copy(clip.begin(), clip.end(), waves_.begin() + b * samples);
            std::fill(waves_.begin() + b * samples + n, waves_.begin() + (b + 1) * samples, 0.0f);
        }
    }

    const Model& model_;  // owned by the ModelState
    std::unique_ptr<model_detail::CudaRunner> runner_;
    std::vector<float> waves_;  // the normalised batch handed to the runner
};

}  // namespace

ModelState::ModelState(std::shared_ptr<const Model> model) : model_(std::move(model)) {
    if (model_->device() == Device::cuda) backend_ = std::make_unique<CudaBackend>(*model_);
    else backend_ = std::make_unique<CpuBackend>(*model_);
}
ModelState::~ModelState() = default;

const HiddenStates& ModelState::encode(std::span<const float> waves, std::int64_t batch, std::int64_t samples,
                                       const EncodeParams& params, std::span<const std::int64_t> valid_samples) {
    const ModelConfig& cfg = model_->config();
    check_encode_args(cfg, waves, batch, samples, params, valid_samples);
    omp_set_num_threads(params.threads);  // affects parallel regions started by this thread only
    const EncodeBatch in = make_batch(cfg, waves, batch, samples, params, valid_samples);
    StageClock clock(spdlog::should_log(spdlog::level::debug));
    out_.batch = batch;
    out_.layers = cfg.num_hidden_states();
    out_.frames = in.frames;
    out_.hidden = cfg.hidden_size;
    out_.conv_channels = params.keep_conv_features ? cfg.conv_dim.back() : 0;
    backend_->forward(in, params, out_, clock);
    return out_;
}
Embedding embed_audio(const Model& model, ModelState& state, AudioView audio, const EmbedParams& params,
                      const EncodeParams& encode) {
    const ModelConfig& cfg = model.config();
    if (audio.sample_rate != cfg.sampling_rate)
        throw_input("audio is at {} Hz but the model expects {} Hz (resample first)", audio.sample_rate, cfg.sampling_rate);
    if (params.batch_size < 1) throw_usage("batch size must be ≥ 1 (got {})", params.batch_size);
    WindowParams wp = params.windows;
    wp.sample_rate = cfg.sampling_rate;
    Embedding e;
    e.windows = plan_windows(static_cast<std::int64_t>(audio.samples.size()), wp);
    if (e.windows.empty()) throw_input("no audio samples");
    if (e.windows[0].length < cfg.min_samples())
        throw_input("audio of {} samples is shorter than one model frame ({} samples)", e.windows[0].length, cfg.min_samples());
    // All windows have one length except when the audio is shorter than a window (then there is one).
    const std::int64_t len = e.windows[0].length, S = static_cast<std::int64_t>(e.windows.size());
    HiddenStates& out = e.states;
    EncodeParams ep = encode;
    ep.frames = params.keep_frames;
    ep.frame_means = true;
    std::vector<float> batch;
    for (std::int64_t first = 0; first < S; first += params.batch_size) {
        const std::int64_t n = std::min<std::int64_t>(params.batch_size, S - first);
        batch.resize(static_cast<std::size_t>(n * len));
        for (std::int64_t i = 0; i < n; ++i) {
            const auto& win = e.windows[static_cast<std::size_t>(first + i)];
            std::copy_n(audio.samples.begin() + win.start_sample, len, batch.begin() + i * len);
        }
        const HiddenStates& h = state.encode(batch, n, len, ep);
        if (first == 0) {
            out.batch = S;
            out.layers = h.layers;
            out.frames = h.frames;
            out.hidden = h.hidden;
            out.values.reserve(params.keep_frames ? static_cast<std::size_t>(S * h.layers * h.frames * h.hidden) : 0);
            e.segments.reserve(static_cast<std::size_t>(S * h.layers * h.hidden));
        }
        out.values.insert(out.values.end(), h.values.begin(), h.values.end());
        e.segments.insert(e.segments.end(), h.means.begin(), h.means.end());
        if (params.on_progress) params.on_progress(first + n, S);
    }
    return e;
}

std::vector<float> pool_frames(const HiddenStates& h) {
    if (h.values.size() != static_cast<std::size_t>(h.batch * h.layers * h.frames * h.hidden) || h.values.empty())
        throw_usage("pool_frames: the frames' states were not kept ({} values for [{}, {}, {}, {}])", h.values.size(), h.batch, h.layers,
                    h.frames, h.hidden);
    std::vector<float> out(static_cast<std::size_t>(h.batch * h.layers * h.hidden));
    for (std::int64_t bl = 0; bl < h.batch * h.layers; ++bl)
        mess::mean_of_rows(h.values.data() + bl * h.frames * h.hidden, h.frames, h.hidden, out.data() + bl * h.hidden);
    return out;
}

std::vector<float> pool_windows(std::span<const float> segments, std::int64_t windows, std::int64_t per_window) {
    if (windows < 1 || segments.size() != static_cast<std::size_t>(windows * per_window))
        throw_usage("pool_windows: {} values do not form {} windows of {}", segments.size(), windows, per_window);
    std::vector<float> out(static_cast<std::size_t>(per_window));
    mess::mean_of_rows(segments.data(), windows, per_window, out.data());
    return out;
}

}  // namespace mess
