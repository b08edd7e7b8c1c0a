#include <limits>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "mess/model.hpp"

namespace mess {
namespace {

using nlohmann::json;

template <class T>
T get_or(const json& j, const char* key, T fallback) {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if constexpr (std::is_same_v<T, int>) {  // a number outside int's range is an error, not a wrapped value
        const json& v = j[key];
        if (v.is_number() && !(v.get<double>() >= std::numeric_limits<int>::min() && v.get<double>() <= std::numeric_limits<int>::max()))
            throw_input("config field '{}' = {} is out of range", key, v.dump());
    } else if constexpr (std::is_same_v<T, std::vector<int>>) {
        for (const json& v : j[key])
            if (v.is_number() && !(v.get<double>() >= std::numeric_limits<int>::min() && v.get<double>() <= std::numeric_limits<int>::max()))
                throw_input("config field '{}' holds {}, out of range", key, v.dump());
    }
    return j[key].get<T>();
}

}  // namespace

std::int64_t ModelConfig::frames_for(std::int64_t samples) const {
    std::int64_t n = samples;
    for (std::size_t i = 0; i < conv_kernel.size(); ++i) {
        if (n < conv_kernel[i]) return 0;
        n = (n - conv_kernel[i]) / conv_stride[i] + 1;
    }
    return n;
}

std::int64_t ModelConfig::min_samples() const {
    std::int64_t need = 1;  // samples needed for one output frame, computed backwards through the stack
    for (std::size_t i = conv_kernel.size(); i-- > 0;) need = (need - 1) * conv_stride[i] + conv_kernel[i];
    return need;
}

namespace {

json parse_config_object(const std::string& config_json) {
    json j;
    try {
        j = json::parse(config_json);
    } catch (const json::exception& e) {
        throw_input("config.json is not valid JSON: {}", e.what());
    }
    if (!j.is_object()) throw_input("config.json must hold a JSON object");
    return j;
}

// model_type and architectures: MERT or HuBERT only.
void read_architecture(const json& j, ModelConfig& c) {
    c.model_type = get_or<std::string>(j, "model_type", "");
    std::vector<std::string> archs = get_or<std::vector<std::string>>(j, "architectures", {});
    c.architecture = archs.empty() ? "" : archs[0];
    static const char* known_types[] = {"mert_model", "hubert"};
    static const char* known_archs[] = {"MERTModel", "HubertModel"};
    bool type_ok = false, arch_ok = archs.empty();
    for (auto* t : known_types) type_ok = type_ok || c.model_type == t;
    for (auto* a : known_archs) arch_ok = arch_ok || c.architecture == a;
    if (!type_ok || !arch_ok)
        throw_input("unsupported architecture (model_type '{}', architectures '{}'); supported: MERTModel "
                    "(mert_model) and HubertModel (hubert)", c.model_type, c.architecture);
}

// Every field config.json may set (json::exception for a field of the wrong type), and the branches no
// released MERT uses, refused.
void read_fields(const json& j, ModelConfig& c) {
    read_architecture(j, c);
    c.hidden_size = get_or(j, "hidden_size", 768);
    c.num_hidden_layers = get_or(j, "num_hidden_layers", 12);
    c.num_attention_heads = get_or(j, "num_attention_heads", 12);
    c.intermediate_size = get_or(j, "intermediate_size", 3072);
    c.conv_dim = get_or<std::vector<int>>(j, "conv_dim", {512, 512, 512, 512, 512, 512, 512});
    c.conv_kernel = get_or<std::vector<int>>(j, "conv_kernel", {10, 3, 3, 3, 3, 2, 2});
    c.conv_stride = get_or<std::vector<int>>(j, "conv_stride", {5, 2, 2, 2, 2, 2, 2});
    c.conv_bias = get_or(j, "conv_bias", false);
    c.feat_extract_norm = get_or<std::string>(j, "feat_extract_norm", "group");
    c.feat_proj_layer_norm = get_or(j, "feat_proj_layer_norm", true);
    c.do_stable_layer_norm = get_or(j, "do_stable_layer_norm", false);
    c.num_conv_pos_embeddings = get_or(j, "num_conv_pos_embeddings", 128);
    c.num_conv_pos_embedding_groups = get_or(j, "num_conv_pos_embedding_groups", 16);
    c.layer_norm_eps = static_cast<float>(get_or(j, "layer_norm_eps", 1e-5));
    c.sampling_rate = get_or(j, "sample_rate", 24000);
    for (const char* key : {"hidden_act", "feat_extract_activation"}) {
        auto act = get_or<std::string>(j, key, "gelu");
        if (act != "gelu") throw_input("{} '{}' is not supported (only exact 'gelu')", key, act);
    }
    if (get_or(j, "deepnorm", false)) throw_input("deepnorm=true is not supported (no released MERT uses it)");
    if (get_or(j, "feature_extractor_cqt", false))
        throw_input("feature_extractor_cqt=true is not supported (no released MERT uses it)");
    if (get_or(j, "conv_pos_batch_norm", false)) throw_input("conv_pos_batch_norm=true is not supported");
}

// The sizes must agree with each other.
void check_sizes(const ModelConfig& c) {
    if (c.feat_extract_norm != "group" && c.feat_extract_norm != "layer")
        throw_input("feat_extract_norm '{}' must be 'group' or 'layer'", c.feat_extract_norm);
    if (c.conv_dim.empty() || c.conv_dim.size() != c.conv_kernel.size() || c.conv_dim.size() != c.conv_stride.size())
        throw_input("conv_dim, conv_kernel and conv_stride must be non-empty and of equal length");
    for (std::size_t i = 0; i < c.conv_dim.size(); ++i)
        if (c.conv_dim[i] <= 0 || c.conv_kernel[i] <= 0 || c.conv_stride[i] <= 0)
            throw_input("conv layer {} has a non-positive size", i);
    if (c.hidden_size <= 0 || c.num_hidden_layers <= 0 || c.num_attention_heads <= 0 || c.intermediate_size <= 0)
        throw_input("sizes must be positive");
    if (c.hidden_size % c.num_attention_heads != 0)
        throw_input("hidden_size {} is not divisible by num_attention_heads {}", c.hidden_size, c.num_attention_heads);
    if (c.num_conv_pos_embedding_groups <= 0 || c.hidden_size % c.num_conv_pos_embedding_groups != 0 ||
        c.num_conv_pos_embeddings <= 0)
        throw_input("hidden_size {} is not divisible by num_conv_pos_embedding_groups {}", c.hidden_size,
                    c.num_conv_pos_embedding_groups);
    if (!(c.layer_norm_eps > 0)) throw_input("layer_norm_eps must be positive");
}

// preprocessor_config.json: do_normalize and the sampling rate (which must agree with config.json's when
// that gives one).
void read_preprocessor(const std::string& preprocessor_json, const json& j, ModelConfig& c) {
    try {
        json p = json::parse(preprocessor_json);
        c.do_normalize = get_or(p, "do_normalize", true);
        int rate = get_or(p, "sampling_rate", c.sampling_rate);
        if (rate != c.sampling_rate && j.contains("sample_rate"))
            throw_input("preprocessor sampling_rate {} differs from config sample_rate {}", rate, c.sampling_rate);
        c.sampling_rate = rate;
    } catch (const json::exception& e) {
        throw_input("preprocessor_config.json is not valid: {}", e.what());
    }
}

}  // namespace

ModelConfig ModelConfig::parse(const std::string& config_json, const std::string& preprocessor_json,
                               const std::string& name) {
    return with_context(name, [&] {
        const json j = parse_config_object(config_json);
        ModelConfig c;
        try {
            read_fields(j, c);
        } catch (const json::exception& e) {
            throw_input("config.json has a field of the wrong type: {}", e.what());
        }
        check_sizes(c);
        if (!preprocessor_json.empty()) read_preprocessor(preprocessor_json, j, c);
        return c;
    });
}

}  // namespace mess
