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

constexpr const char* kPosG = "encoder.pos_conv_embed.conv.weight_g";
constexpr const char* kPosV = "encoder.pos_conv_embed.conv.weight_v";
constexpr const char* kPosParamG = "encoder.pos_conv_embed.conv.parametrizations.weight.original0";
constexpr const char* kPosParamV = "encoder.pos_conv_embed.conv.parametrizations.weight.original1";

std::string shape_str(const Shape& s) {
    std::string out = "[";
    for (std::size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
    return out + "]";
}

// The HF MERT preprocessor_config.json (m-a-p/MERT-v1-95M, current revision).
constexpr const char* kPreprocessorJson =
    R"({"do_normalize": true, "feature_extractor_type": "Wav2Vec2FeatureExtractor", "feature_size": 1, )"
    R"("padding_side": "right", "padding_value": 0, "return_attention_mask": true, "sampling_rate": 24000})";

std::vector<float> take(TensorMap& t, const std::string& name) { return std::move(t.at(name).values); }

// A linear layer from PyTorch's weight [out, in] and bias [out], weight stored transposed as [in, out].
Model::Weights::Linear make_linear(std::vector<float> w_out_in, std::vector<float> bias, int in, int out) {
    Model::Weights::Linear l{in, out, std::vector<float>(w_out_in.size()), std::move(bias), {}};
    for (int o = 0; o < out; ++o)
        for (int i = 0; i < in; ++i)
            l.w[static_cast<std::size_t>(i) * out + o] = w_out_in[static_cast<std::size_t>(o) * in + i];
    return l;
}

}  // namespace

std::vector<TensorSpec> architecture_table(const ModelConfig& c) {
    std::vector<TensorSpec> t;
    const std::int64_t H = c.hidden_size, F = c.intermediate_size;
    t.push_back({"masked_spec_embed", {H}, false});
    for (std::size_t i = 0; i < c.conv_dim.size(); ++i) {
        std::string p = "feature_extractor.conv_layers." + std::to_string(i) + ".";
        std::int64_t in = i == 0 ? 1 : c.conv_dim[i - 1];
        t.push_back({p + "conv.weight", {c.conv_dim[i], in, c.conv_kernel[i]}});
        if (c.conv_bias) t.push_back({p + "conv.bias", {c.conv_dim[i]}});
        if (c.feat_extract_norm == "layer" || i == 0) {
            t.push_back({p + "layer_norm.weight", {c.conv_dim[i]}});
            t.push_back({p + "layer_norm.bias", {c.conv_dim[i]}});
        }
    }
    const std::int64_t C = c.conv_dim.back();
    if (c.feat_proj_layer_norm) {
        t.push_back({"feature_projection.layer_norm.weight", {C}});
        t.push_back({"feature_projection.layer_norm.bias", {C}});
    }
    t.push_back({"feature_projection.projection.weight", {H, C}});
    t.push_back({"feature_projection.projection.bias", {H}});
    t.push_back({kPosG, {1, 1, c.num_conv_pos_embeddings}});
    t.push_back({kPosV, {H, H / c.num_conv_pos_embedding_groups, c.num_conv_pos_embeddings}});
    t.push_back({"encoder.pos_conv_embed.conv.bias", {H}});
    t.push_back({"encoder.layer_norm.weight", {H}});
    t.push_back({"encoder.layer_norm.bias", {H}});
    for (int l = 0; l < c.num_hidden_layers; ++l) {
        std::string p = "encoder.layers." + std::to_string(l) + ".";
        for (const char* proj : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
            t.push_back({p + "attention." + proj + ".weight", {H, H}});
            t.push_back({p + "attention." + proj + ".bias", {H}});
        }
        t.push_back({p + "layer_norm.weight", {H}});
        t.push_back({p + "layer_norm.bias", {H}});
        t.push_back({p + "feed_forward.intermediate_dense.weight", {F, H}});
        t.push_back({p + "feed_forward.intermediate_dense.bias", {F}});
        t.push_back({p + "feed_forward.output_dense.weight", {H, F}});
        t.push_back({p + "feed_forward.output_dense.bias", {H}});
        t.push_back({p + "final_layer_norm.weight", {H}});
        t.push_back({p + "final_layer_norm.bias", {H}});
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


std::shared_ptr<const Model> Model::from_tensors(ModelConfig config, TensorMap tensors, CheckpointReport report, Precision precision,
                                                 Device device) {
    check_device(precision, device);
    const std::string file = report.weights_file.empty() ? "weights" : report.weights_file.filename().string();
    for (const auto& [name, t] : tensors) {
        report.num_parameters += static_cast<std::int64_t>(t.count());
        report.stored_dtypes[t.stored_dtype]++;
    }
    report.num_tensors = static_cast<std::int64_t>(tensors.size());
    // Weight norm: torch>=2.1 parametrization names → the classic weight_g/weight_v.
    report.weight_norm_layout = "weight_g/weight_v";
    if (tensors.count(kPosParamG) || tensors.count(kPosParamV)) {
        report.weight_norm_layout = "parametrizations";
        for (auto [from, to] : {std::pair{kPosParamG, kPosG}, std::pair{kPosParamV, kPosV}}) {
            auto node = tensors.extract(from);
            if (node.empty()) continue;
            if (tensors.count(to)) throw_input("{}: both '{}' and '{}' are present", file, from, to);
            node.key() = to;
            tensors.insert(std::move(node));
        }
    }
    // Check every tensor against the architecture table: names, shapes, values.
    auto table = architecture_table(config);
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
    auto list = [](const std::vector<std::string>& v) {
        std::string s;
        for (std::size_t i = 0; i < v.size() && i < 8; ++i) s += (i ? ", " : "") + ("'" + v[i] + "'");
        if (v.size() > 8) s += fmt::format(" and {} more", v.size() - 8);
        return s;
    };
    if (!missing.empty()) throw_input("{}: missing tensor(s) {}", file, list(missing));
    if (!unexpected.empty()) throw_input("{}: unexpected tensor(s) {} for this config.json", file, list(unexpected));

    // Prepare the weights for the kernels.
    auto w = std::make_unique<Weights>();
    for (std::size_t i = 0; i < config.conv_dim.size(); ++i) {
        std::string p = "feature_extractor.conv_layers." + std::to_string(i) + ".";
        Weights::Conv cv;
        cv.in = i == 0 ? 1 : config.conv_dim[i - 1];
        cv.out = config.conv_dim[i];
        cv.kernel = config.conv_kernel[i];
        cv.stride = config.conv_stride[i];
        const auto& src = tensors.at(p + "conv.weight").values;  // [out, in, kernel]
        cv.w.resize(src.size());
        for (int o = 0; o < cv.out; ++o)
            for (int c = 0; c < cv.in; ++c)
                for (int k = 0; k < cv.kernel; ++k)
                    cv.w[(static_cast<std::size_t>(k) * cv.in + c) * cv.out + o] =
                        src[(static_cast<std::size_t>(o) * cv.in + c) * cv.kernel + k];
        if (config.conv_bias) cv.bias = take(tensors, p + "conv.bias");
        if (tensors.count(p + "layer_norm.weight")) {
            cv.norm_w = take(tensors, p + "layer_norm.weight");
            cv.norm_b = take(tensors, p + "layer_norm.bias");
        }
        w->conv.push_back(std::move(cv));
    }
    if (config.feat_proj_layer_norm)
        w->proj_norm = {take(tensors, "feature_projection.layer_norm.weight"), take(tensors, "feature_projection.layer_norm.bias")};
    const int H = config.hidden_size, C = config.conv_dim.back();
    w->proj = make_linear(take(tensors, "feature_projection.projection.weight"), take(tensors, "feature_projection.projection.bias"), C, H);

    // Positional conv: w[o, i, k] = g[k] · v[o, i, k] / ‖v[:, :, k]‖ (weight norm over dim 2).
    const int K = config.num_conv_pos_embeddings, G = config.num_conv_pos_embedding_groups;
    const auto& g = tensors.at(kPosG).values;
    const auto& v = tensors.at(kPosV).values;  // [H, H/G, K]
    std::vector<double> norm(static_cast<std::size_t>(K), 0.0);
    for (std::size_t idx = 0; idx < v.size(); ++idx) norm[idx % K] += static_cast<double>(v[idx]) * v[idx];
    w->pos_kernel = K;
    w->pos_groups = G;
    w->pos_w.resize(v.size());
    for (std::size_t idx = 0; idx < v.size(); ++idx)
        w->pos_w[idx] = static_cast<float>(g[idx % K] * v[idx] / std::sqrt(norm[idx % K]));
    w->pos_b = take(tensors, "encoder.pos_conv_embed.conv.bias");
    w->encoder_norm = {take(tensors, "encoder.layer_norm.weight"), take(tensors, "encoder.layer_norm.bias")};

    for (int l = 0; l < config.num_hidden_layers; ++l) {
        std::string p = "encoder.layers." + std::to_string(l) + ".";
        Weights::Layer layer;
        std::vector<float> qkv_w, qkv_b;  // q, k, v stacked along the output dimension: [3H, H]
        for (const char* proj : {"q_proj", "k_proj", "v_proj"}) {
            auto pw = take(tensors, p + "attention." + proj + ".weight");
            auto pb = take(tensors, p + "attention." + proj + ".bias");
            qkv_w.insert(qkv_w.end(), pw.begin(), pw.end());
            qkv_b.insert(qkv_b.end(), pb.begin(), pb.end());
        }
        layer.qkv = make_linear(std::move(qkv_w), std::move(qkv_b), H, 3 * H);
        layer.out_proj = make_linear(take(tensors, p + "attention.out_proj.weight"), take(tensors, p + "attention.out_proj.bias"), H, H);
        layer.attn_norm = {take(tensors, p + "layer_norm.weight"), take(tensors, p + "layer_norm.bias")};
        const int F = config.intermediate_size;
        layer.ffn_in = make_linear(take(tensors, p + "feed_forward.intermediate_dense.weight"),
                                   take(tensors, p + "feed_forward.intermediate_dense.bias"), H, F);
        layer.ffn_out = make_linear(take(tensors, p + "feed_forward.output_dense.weight"),
                                    take(tensors, p + "feed_forward.output_dense.bias"), F, H);
        layer.ffn_norm = {take(tensors, p + "final_layer_norm.weight"), take(tensors, p + "final_layer_norm.bias")};
        w->layers.push_back(std::move(layer));
    }

    if (precision == Precision::bf16 && device == Device::cpu) {  // converted once; conv 0 (one input channel) stays fp32
        w->bf16 = true;
        for (std::size_t i = 1; i < w->conv.size(); ++i) w->conv[i].w16 = model_detail::to_bf16(w->conv[i].w);
        w->proj.w16 = model_detail::to_bf16(w->proj.w);
        for (auto& layer : w->layers)
            for (Weights::Linear* l : {&layer.qkv, &layer.out_proj, &layer.ffn_in, &layer.ffn_out}) l->w16 = model_detail::to_bf16(l->w);
    }
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
    auto& g = tensors.at(kPosG).values;
    const auto& v = tensors.at(kPosV).values;
    std::vector<double> norm(g.size(), 0.0);
    for (std::size_t i = 0; i < v.size(); ++i) norm[i % g.size()] += static_cast<double>(v[i]) * v[i];
    for (std::size_t k = 0; k < g.size(); ++k) g[k] = static_cast<float>(std::sqrt(norm[k]));
    if (params.parametrized_weight_norm) {
        for (auto [from, to] : {std::pair{kPosG, kPosParamG}, std::pair{kPosV, kPosParamV}}) {
            auto node = tensors.extract(from);
            node.key() = to;
            tensors.insert(std::move(node));
        }
    }
    write_file_atomic(out_dir / "config.json", config_json);
    write_file_atomic(out_dir / "preprocessor_config.json", kPreprocessorJson);
    if (params.format == "safetensors") write_safetensors(out_dir / "model.safetensors", tensors);
    else write_torch_bin(out_dir / "pytorch_model.bin", tensors);
}

}  // namespace mess
