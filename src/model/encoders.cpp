// The Encoder interface: MERT checkpoints behind it, and the choice of backend by name.
#include <filesystem>

#include <nlohmann/json.hpp>

#include "mess/model.hpp"

namespace mess {

nlohmann::json EncoderInfo::to_json() const {
    return {{"name", name},           {"architecture", architecture}, {"sampling_rate", sampling_rate},
            {"layers", layers},       {"hidden_size", hidden},        {"frame_rate", frame_rate},
            {"default_layer", default_layer}, {"layer_names", layer_names},
            {"layer_descriptions", layer_descriptions}, {"description", description},
            {"precision", precision}, {"device", device}, {"version", version}};
}

namespace {

class MertEncoder final : public Encoder {
public:
    MertEncoder(std::shared_ptr<const Model> model, std::string name) : model_(std::move(model)) {
        const ModelConfig& c = model_->config();
        info_.name = std::move(name);
        info_.architecture = c.architecture;
        info_.sampling_rate = c.sampling_rate;
        info_.layers = c.num_hidden_states();
        info_.hidden = c.hidden_size;
        long hop = 1;
        for (int stride : c.conv_stride) hop *= stride;
        info_.frame_rate = static_cast<double>(c.sampling_rate) / static_cast<double>(hop);
        info_.default_layer = c.num_hidden_states() / 2;
        for (int l = 0; l < info_.layers; ++l) info_.layer_names.push_back(std::to_string(l));
        info_.description = "transformer hidden states: 0 = projected conv features, 1.." +
                            std::to_string(c.num_hidden_layers) + " = transformer layers";
        info_.precision = to_string(model_->precision());
        info_.device = to_string(model_->device());
    }
    const EncoderInfo& info() const override { return info_; }

    class MertSession final : public Session {
    public:
        explicit MertSession(std::shared_ptr<const Model> model) : model_(model), state_(std::move(model)) {}
        Embedding embed(AudioView audio, const EmbedParams& params, int threads) override {
            EncodeParams ep;
            ep.threads = threads;
            return embed_audio(*model_, state_, audio, params, ep);
        }

    private:
        std::shared_ptr<const Model> model_;
        ModelState state_;
    };
    std::unique_ptr<Session> session() const override { return std::make_unique<MertSession>(model_); }

private:
    std::shared_ptr<const Model> model_;
    EncoderInfo info_;
};

}  // namespace

std::shared_ptr<const Encoder> mert_encoder(std::shared_ptr<const Model> model, std::string name) {
    return std::make_shared<MertEncoder>(std::move(model), std::move(name));
}

bool is_builtin_encoder(std::string_view spec) { return spec == "dsp" || spec == "mfcc-chroma"; }

std::shared_ptr<const Encoder> open_encoder(const std::string& spec, const LoadParams& params) {
    if (is_builtin_encoder(spec) && params.precision != Precision::fp32)
        throw_usage("precision {} applies to MERT checkpoints; the built-in encoder '{}' computes in fp32", to_string(params.precision), spec);
    if (is_builtin_encoder(spec) && params.device != Device::cpu)
        throw_usage("device {}: the built-in encoder '{}' runs on the CPU", to_string(params.device), spec);
    if (spec == "dsp") return dsp_encoder();
    if (spec == "mfcc-chroma") return mfcc_chroma_encoder();
    if (!std::filesystem::is_directory(spec))
        throw_input("model '{}': not a model directory, and not a built-in encoder (dsp, mfcc-chroma)", spec);
    return mert_encoder(Model::load(spec, params), spec);
}

}  // namespace mess
