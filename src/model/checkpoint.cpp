// The architecture table, checkpoint loading and checking, and random checkpoints.
#include <algorithm>
#include <cmath>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "mess/model.hpp"
#include "cuda_backend.hpp"
#include "kernels.hpp"
#include "weights.hpp"

namespace mess {
namespace {

namespace fs = std::filesystem;
using Shape = std::vector<std::int64_t>;
using Weights = Model::Weights;

// The architecture's logical tensors.
enum class Tn {
    masked_spec_embed,
    conv_w, conv_b, conv_norm_w, conv_norm_b,                // per conv layer
    proj_norm_w, proj_norm_b, proj_w, proj_b,
    pos_g, pos_v, pos_b,                                      // weight-normed positional conv
    enc_norm_w, enc_norm_b,
    q_w, q_b, k_w, k_b, v_w, v_b, out_w, out_b,               // per transformer layer
    attn_norm_w, attn_norm_b, ffn_in_w, ffn_in_b, ffn_out_w, ffn_out_b, ffn_norm_w, ffn_norm_b,
    count
};

// Their names in a Hugging Face checkpoint, the one place they are spelled (as llama.cpp's LLM_TENSOR_NAMES):
// "{}" stands for the conv or transformer layer index. `alias`: the name torch ≥ 2.1 writes for the
// positional conv's weight norm (parametrizations), renamed to the classic weight_g/weight_v at load.
struct TensorName {
    Tn id;
    const char* name;
    const char* alias = nullptr;
};
constexpr TensorName kTensorNames[] = {
    {Tn::masked_spec_embed, "masked_spec_embed"},
    {Tn::conv_w, "feature_extractor.conv_layers.{}.conv.weight"},
    {Tn::conv_b, "feature_extractor.conv_layers.{}.conv.bias"},
    {Tn::conv_norm_w, "feature_extractor.conv_layers.{}.layer_norm.weight"},
    {Tn::conv_norm_b, "feature_extractor.conv_layers.{}.layer_norm.bias"},
    {Tn::proj_norm_w, "feature_projection.layer_norm.weight"},
    {Tn::proj_norm_b, "feature_projection.layer_norm.bias"},
    {Tn::proj_w, "feature_projection.projection.weight"},
    {Tn::proj_b, "feature_projection.projection.bias"},
    {Tn::pos_g, "encoder.pos_conv_embed.conv.weight_g", "encoder.pos_conv_embed.conv.parametrizations.weight.original0"},
    {Tn::pos_v, "encoder.pos_conv_embed.conv.weight_v", "encoder.pos_conv_embed.conv.parametrizations.weight.original1"},
    {Tn::pos_b, "encoder.pos_conv_embed.conv.bias"},
    {Tn::enc_norm_w, "encoder.layer_norm.weight"},
    {Tn::enc_norm_b, "encoder.layer_norm.bias"},
    {Tn::q_w, "encoder.layers.{}.attention.q_proj.weight"},
    {Tn::q_b, "encoder.layers.{}.attention.q_proj.bias"},
    {Tn::k_w, "encoder.layers.{}.attention.k_proj.weight"},
    {Tn::k_b, "encoder.layers.{}.attention.k_proj.bias"},
    {Tn::v_w, "encoder.layers.{}.attention.v_proj.weight"},
    {Tn::v_b, "encoder.layers.{}.attention.v_proj.bias"},
    {Tn::out_w, "encoder.layers.{}.attention.out_proj.weight"},
    {Tn::out_b, "encoder.layers.{}.attention.out_proj.bias"},
    {Tn::attn_norm_w, "encoder.layers.{}.layer_norm.weight"},
    {Tn::attn_norm_b, "encoder.layers.{}.layer_norm.bias"},
    {Tn::ffn_in_w, "encoder.layers.{}.feed_forward.intermediate_dense.weight"},
    {Tn::ffn_in_b, "encoder.layers.{}.feed_forward.intermediate_dense.bias"},
    {Tn::ffn_out_w, "encoder.layers.{}.feed_forward.output_dense.weight"},
    {Tn::ffn_out_b, "encoder.layers.{}.feed_forward.output_dense.bias"},
    {Tn::ffn_norm_w, "encoder.layers.{}.final_layer_norm.weight"},
    {Tn::ffn_norm_b, "encoder.layers.{}.final_layer_norm.bias"},
};
constexpr bool names_in_order() {
    for (std::size_t i = 0; i < std::size(kTensorNames); ++i)
        if (static_cast<std::size_t>(kTensorNames[i].id) != i) return false;
    return std::size(kTensorNames) == static_cast<std::size_t>(Tn::count);
}
static_assert(names_in_order(), "kTensorNames lists every Tn once, in order");

// The checkpoint name of tensor `id` of conv or transformer layer `index` (ignored for the others).
std::string tensor_name(Tn id, std::size_t index = 0) {
    std::string name = kTensorNames[static_cast<std::size_t>(id)].name;
    if (const auto at = name.find("{}"); at != std::string::npos) name.replace(at, 2, std::to_string(index));
    return name;
}
// The weight-norm tensors with their torch ≥ 2.1 names: {alias, name}.
std::vector<std::pair<std::string, std::string>> weight_norm_aliases() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& t : kTensorNames)
        if (t.alias) out.emplace_back(t.alias, t.name);
    return out;
}

std::string shape_str(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// The HF MERT preprocessor_config.json (m-a-p/MERT-v1-95M, current revision).
constexpr const char* kPreprocessorJson =
    R"({"do_normalize": true, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, )"
    R"("padding_side": "right", "padding_value": 0, "return_attention_mask": true, "sampling_rate": 24000})";

std::vector<float> take(TensorMap& t, Tn id, std::size_t index = 0) { return std::move(t.at(tensor_name(id, index)).values); }

// A linear layer from PyTorch's weight [out, in] and bias [out], weight stored transposed as [in, out].
Weights::Linear make_linear(std::vector<float> w_out_in, std::vector<float> bias, int in, int out) {
    Weights::Linear l{in, out, std::vector<float>(w_out_in.size()), std::move(bias), {}};
    for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i)
            l.w[static_cast<std::size_t>(i) * out + o] = w_out_in[static_cast<std::size_t>(o) * in + i];
    return l;
}
Weights::Linear take_linear(TensorMap& t, Tn weight, Tn bias, std::size_t index, int in, int out) {
    return make_linear(take(t, weight, index), take(t, bias, index), in, out);
}
Weights::Norm take_norm(TensorMap& t, Tn weight, Tn bias, std::size_t index = 0) { return {take(t, weight, index), take(t, bias, index)}; }

}  // namespace

std::vector<TensorSpec> architecture_table(const ModelConfig& c) {
    std::vector<TensorSpec> t;
    auto add = [&t](Tn id, std::size_t index, Shape shape, bool required = true) {
        t.push_back({tensor_name(id, index), std::move(shape), required});
    };
    const std::int64_t H = c.hidden_size, F = c.intermediate_size, C = c.conv_dim.back(), K = c.num_conv_pos_embeddings;
    add(Tn::masked_spec_embed, 0, {H}, false);
    for (std::size_t i = 0; i < c.conv_dim.size(); ++i) {
        const std::int64_t out = c.conv_dim[i], in = i == 0 ? 1 : c.conv_dim[i - 1];
        add(Tn::conv_w, i, {out, in, c.conv_kernel[i]});
        if (c.conv_bias) add(Tn::conv_b, i, {out});
        if (c.feat_extract_norm == "layer" || i == 0) {
            add(Tn::conv_norm_w, i, {out});
            add(Tn::conv_norm_b, i, {out});
        }
    }
    if (c.feat_proj_layer_norm) {
        add(Tn::proj_norm_w, 0, {C});
        add(Tn::proj_norm_b, 0, {C});
    }
    add(Tn::proj_w, 0, {H, C});
    add(Tn::proj_b, 0, {H});
    add(Tn::pos_g, 0, {1, 1, K});
    add(Tn::pos_v, 0, {H, H / c.num_conv_pos_embedding_groups, K});
    add(Tn::pos_b, 0, {H});
    add(Tn::enc_norm_w, 0, {H});
    add(Tn::enc_norm_b, 0, {H});
    for (std::size_t l = 0; l < static_cast<std::size_t>(c.num_hidden_layers); ++l) {
        for (auto [w, b] : {std::pair{Tn::q_w, Tn::q_b}, std::pair{Tn::k_w, Tn::k_b}, std::pair{Tn::v_w, Tn::v_b},
                            std::pair{Tn::out_w, Tn::out_b}}) {
            add(w, l, {H, H});
            add(b, l, {H});
        }
        add(Tn::attn_norm_w, l, {H});
        add(Tn::attn_norm_b, l, {H});
        add(Tn::ffn_in_w, l, {F, H});
        add(Tn::ffn_in_b, l, {F});
        add(Tn::ffn_out_w, l, {H, F});
        add(Tn::ffn_out_b, l, {H});
        add(Tn::ffn_norm_w, l, {H});
        add(Tn::ffn_norm_b, l, {H});
    }
    return t;
}

Model::~Model() = default;

namespace {

void check_device(Precision precision, Device device) {
    if (device == Device::cuda && !cuda_backend_built())
        throw_usage("device cuda: this build of MESS has no CUDA backend (CMake did not find the CUDA toolkit); use --device cpu "
                    "(bf16 on the CPU: --precision bf16)");
    if (device == Device::cpu && precision == Precision::fp16)
        throw_usage("precision fp16 runs on --device cuda; on the CPU use bf16 (or fp32)");
}

}  // namespace

#ifdef MESS_WITH_CUDA
bool cuda_backend_built() { return true; }
#else
bool cuda_backend_built() { return false; }
#endif

int cuda_devices(std::string* why) {
    model_detail::CudaRuntime* rt = model_detail::cuda_runtime(why);
    return rt ? rt->device_count(why) : 0;
}

std::shared_ptr<const Model> Model::load(const fs::path& dir, const LoadParams& params) {
    check_device(params.precision, params.device);
    return with_context(dir.string(), [&] {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) throw_input("not a model directory (expected config.json and weights)");
        if (!fs::exists(dir / "config.json")) throw_input("config.json is missing");
        std::string preprocessor;
        if (fs::exists(dir / "preprocessor_config.json")) preprocessor = read_file(dir / "preprocessor_config.json");
        else spdlog::warn("{}: no preprocessor_config.json; normalising input as MERT does (do_normalize=true)", dir.string());
        ModelConfig config = ModelConfig::parse(read_file(dir / "config.json"), preprocessor, "config.json");

        const fs::path st = dir / "model.safetensors", bin = dir / "pytorch_model.bin";
        const bool has_st = fs::exists(st), has_bin = fs::exists(bin);
        if (!has_st && !has_bin) throw_input("no weights: neither model.safetensors nor pytorch_model.bin");
        CheckpointReport report;
        TensorMap tensors;
        if (has_st && (params.prefer != "bin" || !has_bin)) {
            report.weights_file = st;
            report.weights_format = "safetensors";
            tensors = read_safetensors(st);
        } else {
            report.weights_file = bin;
            report.weights_format = "pytorch_bin";
            tensors = read_torch_bin(bin);
        }
        return from_tensors(std::move(config), std::move(tensors), std::move(report), params.precision, params.device);
    });
}

const char* to_string(Precision p) { return p == Precision::bf16 ? "bf16" : p == Precision::fp16 ? "fp16" : "fp32"; }

Precision parse_precision(const std::string& text) {
    if (text == "fp32") return Precision::fp32;
    if (text == "bf16") return Precision::bf16;
    if (text == "fp16") return Precision::fp16;
    throw_usage("precision '{}': expected fp32, bf16 or fp16", text);
}

const char* to_string(Device d) { return d == Device::cuda ? "cuda" : "cpu"; }

Device parse_device(const std::string& text) {
    if (text == "cpu") return Device::cpu;
    if (text == "cuda") return Device::cuda;
    throw_usage("unknown device '{}' (expected cpu or cuda)", text);
}

namespace {

// What the file holds, before any check: parameter and tensor counts, stored dtypes.
void count_tensors(const TensorMap& tensors, CheckpointReport& report) {
    for (const auto& [name, t] : tensors) {
        report.num_parameters += static_cast<std::int64_t>(t.count());
        report.stored_dtypes[t.stored_dtype]++;
    }
    report.num_tensors = static_cast<std::int64_t>(tensors.size());
}

// Weight norm: torch>=2.1 parametrization names → the classic weight_g/weight_v.
void rename_weight_norm(TensorMap& tensors, CheckpointReport& report, const std::string& file) {
    const auto aliases = weight_norm_aliases();
    report.weight_norm_layout = "weight_g/weight_v";
    if (std::none_of(aliases.begin(), aliases.end(), [&](const auto& a) { return tensors.count(a.first) > 0; })) return;
    report.weight_norm_layout = "parametrizations";
    for (const auto& [from, to] : aliases) {
        auto node = tensors.extract(from);
        if (node.empty()) continue;
        if (tensors.count(to)) throw_input("{}: both '{}' and '{}' are present", file, from, to);
        node.key() = to;
        tensors.insert(std::move(node));
    }
}

// Up to 8 quoted names, then how many more.
std::string name_list(const std::vector<std::string>& v) {
    std::string s;
    for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + ("'" + v[i] + "'");
    if (v.size() > 8) s += fmt::format(" and {} more", v.size() - 8);
    return s;
}

// Checks every tensor against the architecture table: names, shapes, values. Optional tensors that are
// present go to report.ignored.
void check_tensors(const ModelConfig& config, const TensorMap& tensors, CheckpointReport& report, const std::string& file) {
    const auto table = architecture_table(config);
    std::vector<std::string> missing, unexpected;
    for (const auto& spec : table) {
        auto it = tensors.find(spec.name);
        if (it == tensors.end()) {
            if (spec.required) missing.push_back(spec.name);
            continue;
        }
        if (it->second.shape != spec.shape)
            throw_input("{}: tensor '{}' has shape {}, expected {} for this config.json", file, spec.name,
                        shape_str(it->second.shape), shape_str(spec.shape));
        if (!spec.required) {
            report.ignored.push_back(spec.name);
            continue;
        }
        std::size_t bad = 0;
        for (float v : it->second.values) bad += std::isfinite(v) ? 0 : 1;
        if (bad) throw_input("{}: tensor '{}' holds {} NaN/Inf values", file, spec.name, bad);
    }
    for (const auto& [name, t] : tensors) {
        bool known = std::any_of(table.begin(), table.end(), [&](const TensorSpec& s) { return s.name == name; });
        if (!known) unexpected.push_back(name);
    }
    if (!missing.empty()) throw_input("{}: missing tensor(s) {}", file, name_list(missing));
    if (!unexpected.empty()) throw_input("{}: unexpected tensor(s) {} for this config.json", file, name_list(unexpected));
}

// Conv layer i, its weight [out, in, kernel] reordered to the im2col layout [kernel·in, out].
Weights::Conv take_conv(const ModelConfig& config, TensorMap& tensors, std::size_t i) {
    Weights::Conv cv;
    cv.in = i == 0 ? 1 : config.conv_dim[i - 1];
    cv.out = config.conv_dim[i];
    cv.kernel = config.conv_kernel[i];
    cv.stride = config.conv_stride[i];
    const auto& src = tensors.at(tensor_name(Tn::conv_w, i)).values;  // [out, in, kernel]
    cv.w.resize(src.size());
    for (int o = 0; o < cv.out; ++o)
        for (int c = 0; c < cv.in; ++c)
            for (int k = 0; k < cv.kernel; ++k)
                cv.w[(static_cast<std::size_t>(k) * cv.in + c) * cv.out + o] = src[(static_cast<std::size_t>(o) * cv.in + c) * cv.kernel + k];
    if (config.conv_bias) cv.bias = take(tensors, Tn::conv_b, i);
    if (tensors.count(tensor_name(Tn::conv_norm_w, i))) {
        cv.norm_w = take(tensors, Tn::conv_norm_w, i);
        cv.norm_b = take(tensors, Tn::conv_norm_b, i);
    }
    return cv;
}

// Positional conv: w[o, i, k] = g[k] · v[o, i, k] / ‖v[:, :, k]‖ (weight norm over dim 2).
void take_positional_conv(const ModelConfig& config, TensorMap& tensors, Weights& w) {
    const int K = config.num_conv_pos_embeddings, G = config.num_conv_pos_embedding_groups;
    const auto& g = tensors.at(tensor_name(Tn::pos_g)).values;
    const auto& v = tensors.at(tensor_name(Tn::pos_v)).values;  // [H, H/G, K]
    std::vector<double> norm(static_cast<std::size_t>(K), 0.0);
    for (std::size_t idx = 0; idx < v.size(); ++idx) norm[idx % K] += static_cast<double>(v[idx]) * v[idx];
    w.pos_kernel = K;
    w.pos_groups = G;
    w.pos_w.resize(v.size());
    for (std::size_t idx = 0; idx < v.size(); ++idx) w.pos_w[idx] = static_cast<float>(g[idx % K] * v[idx] / std::sqrt(norm[idx % K]));
    w.pos_b = take(tensors, Tn::pos_b);
}

// Transformer layer l, with q, k and v stacked along the output dimension: [3H, H].
Weights::Layer take_layer(const ModelConfig& config, TensorMap& tensors, std::size_t l) {
    const int H = config.hidden_size, F = config.intermediate_size;
    Weights::Layer layer;
    std::vector<float> qkv_w, qkv_b;
    for (auto [wt, bt] : {std::pair{Tn::q_w, Tn::q_b}, std::pair{Tn::k_w, Tn::k_b}, std::pair{Tn::v_w, Tn::v_b}}) {
        auto pw = take(tensors, wt, l);
        auto pb = take(tensors, bt, l);
        qkv_w.insert(qkv_w.end(), pw.begin(), pw.end());
        qkv_b.insert(qkv_b.end(), pb.begin(), pb.end());
    }
    layer.qkv = make_linear(std::move(qkv_w), std::move(qkv_b), H, 3 * H);
    layer.out_proj = take_linear(tensors, Tn::out_w, Tn::out_b, l, H, H);
    layer.attn_norm = take_norm(tensors, Tn::attn_norm_w, Tn::attn_norm_b, l);
    layer.ffn_in = take_linear(tensors, Tn::ffn_in_w, Tn::ffn_in_b, l, H, F);
    layer.ffn_out = take_linear(tensors, Tn::ffn_out_w, Tn::ffn_out_b, l, F, H);
    layer.ffn_norm = take_norm(tensors, Tn::ffn_norm_w, Tn::ffn_norm_b, l);
    return layer;
}

// The checked tensors laid out for the kernels (moved out of `tensors`).
std::unique_ptr<Weights> prepare_weights(const ModelConfig& config, TensorMap& tensors) {
    auto w = std::make_unique<Weights>();
    for (std::size_t i = 0; i < config.conv_dim.size(); ++i) w->conv.push_back(take_conv(config, tensors, i));
    if (config.feat_proj_layer_norm) w->proj_norm = take_norm(tensors, Tn::proj_norm_w, Tn::proj_norm_b);
    w->proj = take_linear(tensors, Tn::proj_w, Tn::proj_b, 0, config.conv_dim.back(), config.hidden_size);
    take_positional_conv(config, tensors, *w);
    w->encoder_norm = take_norm(tensors, Tn::enc_norm_w, Tn::enc_norm_b);
    for (std::size_t l = 0; l < static_cast<std::size_t>(config.num_hidden_layers); ++l) w->layers.push_back(take_layer(config, tensors, l));
    return w;
}

// Precision::bf16 on the CPU: the weights converted once; conv 0 (one input channel) stays fp32.
void add_bf16_copies(Weights& w) {
    w.bf16 = true;
    for (std::size_t i = 1; i < w.conv.size(); ++i) w.conv[i].w16 = model_detail::to_bf16(w.conv[i].w);
    w.proj.w16 = model_detail::to_bf16(w.proj.w);
    for (auto& layer : w.layers)
        for (Weights::Linear* l : {&layer.qkv, &layer.out_proj, &layer.ffn_in, &layer.ffn_out}) l->w16 = model_detail::to_bf16(l->w);
}

}  // namespace

std::shared_ptr<const Model> Model::from_tensors(ModelConfig config, TensorMap tensors, CheckpointReport report, Precision precision,
                                                 Device device) {
    check_device(precision, device);
    const std::string file = report.weights_file.empty() ? "weights" : report.weights_file.filename().string();
    count_tensors(tensors, report);
    rename_weight_norm(tensors, report, file);
    check_tensors(config, tensors, report, file);
    auto w = prepare_weights(config, tensors);
    if (precision == Precision::bf16 && device == Device::cpu) add_bf16_copies(*w);
    std::shared_ptr<Model> m(new Model());
    m->precision_ = precision;
    m->device_ = device;
    if (device == Device::cuda) {
        std::string why;
        model_detail::CudaRuntime* rt = model_detail::cuda_runtime(&why);
        if (!rt) throw_usage("device cuda: {}; use --device cpu", why);
        m->cuda_weights_ = rt->upload(*w, config, precision);
    }
    m->config_ = std::move(config);
    m->report_ = std::move(report);
    m->weights_ = std::move(w);
    return m;
}

std::string preset_config_json(std::string_view name) {
    nlohmann::json j = {{"architectures", {"MERTModel"}}, {"model_type", "mert_model"}, {"conv_bias", false},
                        {"conv_dim", std::vector<int>(7, 512)}, {"conv_kernel", {10, 3, 3, 3, 3, 2, 2}},
                        {"conv_stride", {5, 2, 2, 2, 2, 2, 2}}, {"feat_extract_norm", "group"},
                        {"feat_extract_activation", "gelu"}, {"hidden_act", "gelu"}, {"feat_proj_layer_norm", true},
                        {"num_conv_pos_embeddings", 128}, {"num_conv_pos_embedding_groups", 16},
                        {"layer_norm_eps", 1e-5}, {"sample_rate", 24000}, {"deepnorm", false},
                        {"feature_extractor_cqt", false}, {"torch_dtype", "float32"}};
    if (name == "mert-v1-95m") {
        j.update({{"hidden_size", 768}, {"num_hidden_layers", 12}, {"num_attention_heads", 12},
                  {"intermediate_size", 3072}, {"do_stable_layer_norm", false}});
    } else if (name == "mert-v1-330m") {
        j.update({{"hidden_size", 1024}, {"num_hidden_layers", 24}, {"num_attention_heads", 16},
                  {"intermediate_size", 4096}, {"do_stable_layer_norm", true}});
    } else {
        throw_usage("unknown preset '{}' (mert-v1-95m, mert-v1-330m)", name);
    }
    return j.dump(2) + "\n";
}

void write_random_checkpoint(const std::string& config_json, const fs::path& out_dir, const RandomCheckpointParams& params) {
    if (params.format != "safetensors" && params.format != "bin")
        throw_usage("unknown checkpoint format '{}' (safetensors | bin)", params.format);
    ModelConfig config = ModelConfig::parse(config_json, "", "config");
    std::error_code ec;
    fs::create_directories(out_dir, ec);
    if (ec) throw_input("{}: cannot create directory: {}", out_dir.string(), ec.message());

    std::mt19937_64 rng(params.seed);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    TensorMap tensors;
    for (const auto& spec : architecture_table(config)) {
        Tensor t;
        t.shape = spec.shape;
        t.values.resize(t.count());
        const bool norm_scale = spec.name.find("norm") != std::string::npos && spec.name.ends_with(".weight");
        for (auto& x : t.values) x = norm_scale ? 1.0f + 0.1f * normal(rng) : 0.02f * normal(rng);
        tensors.emplace(spec.name, std::move(t));
    }
    // weight_g = ‖v[:, :, k]‖ makes the effective positional weight equal v, as at initialisation.
    auto& g = tensors.at(tensor_name(Tn::pos_g)).values;
    const auto& v = tensors.at(tensor_name(Tn::pos_v)).values;
    std::vector<double> norm(g.size(), 0.0);
    for (std::size_t i = 0; i < v.size(); ++i) norm[i % g.size()] += static_cast<double>(v[i]) * v[i];
    for (std::size_t k = 0; k < g.size(); ++k) g[k] = static_cast<float>(std::sqrt(norm[k]));
    if (params.parametrized_weight_norm) {
        for (const auto& [alias, name] : weight_norm_aliases()) {
            auto node = tensors.extract(name);
            node.key() = alias;
            tensors.insert(std::move(node));
        }
    }
    write_file_atomic(out_dir / "config.json", config_json);
    write_file_atomic(out_dir / "preprocessor_config.json", kPreprocessorJson);
    if (params.format == "safetensors") write_safetensors(out_dir / "model.safetensors", tensors);
    else write_torch_bin(out_dir / "pytorch_model.bin", tensors);
}

}  // namespace mess
