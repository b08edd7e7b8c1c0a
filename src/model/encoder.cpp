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

struct ModelState::Scratch {
    Kernels k;
    std::vector<float> clip, conv_a, conv_b;  // one clip through the conv stack (ping-pong)
    std::vector<float> feats;                 // [B·T, C] conv output
    std::vector<float> x, tmp, qkv, ctx, ffn, scores;
    std::vector<std::uint16_t> a16, qkv16, scores16;  // bf16 copies of activations (Precision::bf16)
    HiddenStates out;                         // the last result, buffers reused across calls
    std::unique_ptr<model_detail::CudaRunner> cuda;  // device "cuda"
    std::vector<float> waves;                        // the normalised batch handed to it
};

ModelState::ModelState(std::shared_ptr<const Model> model) : model_(std::move(model)), scratch_(std::make_unique<Scratch>()) {}
ModelState::~ModelState() = default;

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

const HiddenStates& ModelState::encode(std::span<const float> waves, std::int64_t batch, std::int64_t samples,
                                const EncodeParams& params, std::span<const std::int64_t> valid_samples) {
    const ModelConfig& cfg = model_->config();
    const W& w = model_->weights();
    Scratch& s = *scratch_;
    Kernels& k = s.k;
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
    omp_set_num_threads(params.threads);  // affects parallel regions started by this thread only

    const bool normalize = params.normalize.value_or(cfg.do_normalize);
    const std::int64_t T = cfg.frames_for(samples), C = cfg.conv_dim.back(), H = cfg.hidden_size;
    const std::int64_t BT = batch * T, L1 = cfg.num_hidden_states();
    std::vector<std::int64_t> valid_frames(static_cast<std::size_t>(batch), T);
    StageClock clock(spdlog::should_log(spdlog::level::debug));
    for (std::size_t b = 0; b < valid_samples.size(); ++b) valid_frames[b] = cfg.frames_for(valid_samples[b]);

    HiddenStates& h = s.out;
    h.batch = batch;
    h.layers = L1;
    h.frames = T;
    h.hidden = H;
    h.conv_channels = params.keep_conv_features ? C : 0;

    if (model_->device() == Device::cuda) {  // the model was uploaded, so the plugin is open
        if (!s.cuda)
            s.cuda = model_detail::cuda_runtime(nullptr)->runner(model_->cuda_weights(), [](const std::string& m) { spdlog::warn("{}", m); });
        s.waves.assign(waves.begin(), waves.end());
        if (normalize)
            for (std::int64_t b = 0; b < batch; ++b) {
                const std::int64_t n = valid_samples.empty() ? samples : valid_samples[static_cast<std::size_t>(b)];
                const auto clip = normalize_waveform(waves.subspan(static_cast<std::size_t>(b * samples), static_cast<std::size_t>(n)));
                std::copy(clip.begin(), clip.end(), s.waves.begin() + b * samples);
                std::fill(s.waves.begin() + b * samples + n, s.waves.begin() + (b + 1) * samples, 0.0f);  // as HF
            }
        s.cuda->encode(s.waves.data(), batch, samples, valid_frames, params, h);
        clock.lap("cuda forward pass");
        return h;
    }

    // 1. Feature encoder, clip by clip (conv 0's GroupNorm spans each clip).
    s.feats.resize(static_cast<std::size_t>(BT * C));
    for (std::int64_t b = 0; b < batch; ++b) {
        std::span<const float> clip = waves.subspan(static_cast<std::size_t>(b * samples), static_cast<std::size_t>(samples));
        if (normalize) {
            const std::int64_t n = valid_samples.empty() ? samples : valid_samples[static_cast<std::size_t>(b)];
            s.clip = normalize_waveform(clip.first(static_cast<std::size_t>(n)));
            s.clip.resize(static_cast<std::size_t>(samples), 0.0f);  // HF zeroes the padded tail after normalising
        } else {
            s.clip.assign(clip.begin(), clip.end());
        }
        const float* in = s.clip.data();
        std::int64_t t_in = samples;
        for (std::size_t i = 0; i < w.conv.size(); ++i) {
            const auto& cv = w.conv[i];
            const std::int64_t t_out = (t_in - cv.kernel) / cv.stride + 1;
            std::vector<float>& out_buf = (i % 2 == 0) ? s.conv_a : s.conv_b;
            out_buf.resize(static_cast<std::size_t>(t_out * cv.out));
            const bool gelu_done = conv_layer(k, cv, in, out_buf.data(), t_out, s.a16);
            if (!cv.norm_w.empty()) {
                if (cfg.feat_extract_norm == "group")
                    model_detail::channel_norm_over_time(out_buf.data(), t_out, cv.out, cv.norm_w.data(), cv.norm_b.data(), 1e-5f);
                else
                    k.layer_norm(out_buf.data(), out_buf.data(), t_out, cv.out, cv.norm_w.data(), cv.norm_b.data(), 1e-5f);
            }
            if (!gelu_done) k.gelu(out_buf.data(), t_out * cv.out);
            in = out_buf.data();
            t_in = t_out;
        }
        std::copy(in, in + T * C, s.feats.begin() + b * T * C);
    }
    clock.lap("conv stack");

    h.values.resize(params.frames ? static_cast<std::size_t>(batch * L1 * T * H) : 0);
    h.means.resize(params.frame_means ? static_cast<std::size_t>(batch * L1 * H) : 0);
    if (params.keep_conv_features) h.conv_features.assign(s.feats.begin(), s.feats.end());
    else h.conv_features.clear();
    auto store = [&](std::int64_t layer, const float* x) {
        for (std::int64_t b = 0; b < batch; ++b) {
            if (params.frames) std::copy(x + b * T * H, x + (b + 1) * T * H, h.values.begin() + ((b * L1 + layer) * T) * H);
            if (params.frame_means) model_detail::mean_of_rows(x + b * T * H, valid_frames[b], H, h.means.data() + (b * L1 + layer) * H);
        }
    };

    // 2. Feature projection.
    s.x.resize(static_cast<std::size_t>(BT * H));
    s.tmp.resize(static_cast<std::size_t>(BT * std::max(H, C)));
    const float* proj_in = s.feats.data();
    if (!w.proj_norm.w.empty()) {
        k.layer_norm(s.feats.data(), s.tmp.data(), BT, C, w.proj_norm.w.data(), w.proj_norm.b.data(), cfg.layer_norm_eps);
        proj_in = s.tmp.data();
    }
    linear(k, w.proj, proj_in, BT, s.x.data(), s.a16);
    for (std::int64_t b = 0; b < batch; ++b)  // padded frames are zeroed before the positional conv
        std::fill(s.x.begin() + (b * T + valid_frames[b]) * H, s.x.begin() + (b + 1) * T * H, 0.0f);

    // 3. Positional conv (grouped, kernel K, last frame dropped) + GELU, added to x.
    float* pos = s.tmp.data();
    Kernels::Conv1d pc;
    pc.batch = batch;
    pc.t_in = T;
    pc.c_in = pc.c_out = H;
    pc.groups = w.pos_groups;
    pc.kernel = w.pos_kernel;
    pc.pad_before = w.pos_kernel / 2;
    pc.pad_after = w.pos_kernel / 2 - 1;  // HF pads K/2 on both sides, then drops the last frame
    pc.weights = w.pos_w.data();
    pc.bias = w.pos_b.data();
    pc.gelu = true;
    pc.bf16 = w.bf16;
    k.conv1d(pc, s.x.data(), pos);
    model_detail::add_inplace(s.x.data(), pos, BT * H);
    clock.lap("projection + positional conv");

    const bool pre_ln = cfg.do_stable_layer_norm;
    const float eps = cfg.layer_norm_eps;
    if (!pre_ln) k.layer_norm(s.x.data(), s.x.data(), BT, H, w.encoder_norm.w.data(), w.encoder_norm.b.data(), eps);
    store(0, s.x.data());

    // 4. Transformer layers.
    const std::int64_t heads = cfg.num_attention_heads, hd = cfg.head_dim(), F = cfg.intermediate_size;
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    s.qkv.resize(static_cast<std::size_t>(BT * 3 * H));
    s.ctx.resize(static_cast<std::size_t>(BT * H));
    s.ffn.resize(static_cast<std::size_t>(BT * F));
    s.scores.resize(static_cast<std::size_t>(T * T));
    for (std::size_t l = 0; l < w.layers.size(); ++l) {
        const auto& layer = w.layers[l];
        // Attention on x (post-LN) or on layer_norm(x) (pre-LN).
        const float* attn_in = s.x.data();
        if (pre_ln) {
            k.layer_norm(s.x.data(), s.tmp.data(), BT, H, layer.attn_norm.w.data(), layer.attn_norm.b.data(), eps);
            attn_in = s.tmp.data();
        }
        linear(k, layer.qkv, attn_in, BT, s.qkv.data(), s.a16);
        for (std::int64_t r = 0; r < BT; ++r) {  // q scaled after its bias, as HF does
            float* q = s.qkv.data() + r * 3 * H;
            for (std::int64_t c = 0; c < H; ++c) q[c] *= scale;
        }
        if (w.bf16) {  // all heads of a clip in one batched product each way
            const std::uint16_t* qkv16 = as_bf16(s.qkv16, s.qkv.data(), BT * 3 * H);
            s.scores.resize(static_cast<std::size_t>(heads * T * T));
            for (std::int64_t b = 0; b < batch; ++b) {
                const std::int64_t vf = valid_frames[b];
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
                qk.c = s.scores.data();
                qk.c_batch = T * vf;
                qk.c_row = vf;
                k.matmul_bf16(qk);
                k.softmax_rows(s.scores.data(), heads * T, vf);
                Kernels::MatmulBf16 pv;  // ctx[:, h·hd ...] = p_h · v_h: [T, vf] · [vf, hd]
                pv.batch = heads;
                pv.m = T;
                pv.n = hd;
                pv.k = vf;
                pv.a = as_bf16(s.scores16, s.scores.data(), heads * T * vf);
                pv.a_batch = T * vf;
                pv.a_row = vf;
                pv.b = q + 2 * H;
                pv.b_batch = hd;
                pv.b_row = 3 * H;
                pv.c = s.ctx.data() + b * T * H;
                pv.c_batch = hd;
                pv.c_row = H;
                k.matmul_bf16(pv);
            }
        } else {
            for (std::int64_t b = 0; b < batch; ++b) {
                const std::int64_t vf = valid_frames[b];
                for (std::int64_t hh = 0; hh < heads; ++hh) {
                    const float* q = s.qkv.data() + b * T * 3 * H + hh * hd;  // k at q + H, v at q + 2H
                    k.gemm(false, true, T, vf, hd, q, 3 * H, q + H, 3 * H, 0.0f, s.scores.data(), vf);  // masked keys left out
                    k.softmax_rows(s.scores.data(), T, vf);
                    k.gemm(false, false, T, hd, vf, s.scores.data(), vf, q + 2 * H, 3 * H, 0.0f, s.ctx.data() + b * T * H + hh * hd, H);
                }
            }
        }
        linear(k, layer.out_proj, s.ctx.data(), BT, s.tmp.data(), s.a16);
        model_detail::add_inplace(s.x.data(), s.tmp.data(), BT * H);
        if (!pre_ln) k.layer_norm(s.x.data(), s.x.data(), BT, H, layer.attn_norm.w.data(), layer.attn_norm.b.data(), eps);

        // Feed-forward.
        const float* ffn_in = s.x.data();
        if (pre_ln) {
            k.layer_norm(s.x.data(), s.tmp.data(), BT, H, layer.ffn_norm.w.data(), layer.ffn_norm.b.data(), eps);
            ffn_in = s.tmp.data();
        }
        linear(k, layer.ffn_in, ffn_in, BT, s.ffn.data(), s.a16, true);
        linear(k, layer.ffn_out, s.ffn.data(), BT, s.tmp.data(), s.a16);
        model_detail::add_inplace(s.x.data(), s.tmp.data(), BT * H);
        if (!pre_ln) k.layer_norm(s.x.data(), s.x.data(), BT, H, layer.ffn_norm.w.data(), layer.ffn_norm.b.data(), eps);

        if (pre_ln && l + 1 == w.layers.size())  // the last state is replaced by the normalised one
            k.layer_norm(s.x.data(), s.x.data(), BT, H, w.encoder_norm.w.data(), w.encoder_norm.b.data(), eps);
        store(static_cast<std::int64_t>(l) + 1, s.x.data());
    }
    clock.lap("transformer layers");
    return h;
}

Embedding embed_audio(const Model& model, ModelState& state, const Audio& audio, const EmbedParams& params,
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
        model_detail::mean_of_rows(h.values.data() + bl * h.frames * h.hidden, h.frames, h.hidden, out.data() + bl * h.hidden);
    return out;
}

std::vector<float> pool_windows(std::span<const float> segments, std::int64_t windows, std::int64_t per_window) {
    if (windows < 1 || segments.size() != static_cast<std::size_t>(windows * per_window))
        throw_usage("pool_windows: {} values do not form {} windows of {}", segments.size(), windows, per_window);
    std::vector<float> out(static_cast<std::size_t>(per_window));
    model_detail::mean_of_rows(segments.data(), windows, per_window, out.data());
    return out;
}

}  // namespace mess
