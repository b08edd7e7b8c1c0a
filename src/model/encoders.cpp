// The Encoder interface: MERT checkpoints behind it, and the choice of backend by name.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <numbers>

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

namespace {

// 5 s of a ramped A-minor triad (220, 261.63, 329.63 Hz) with a click every 0.5 s, at `rate` Hz.
std::vector<float> fingerprint_signal(int rate) {
    const auto n = static_cast<std::size_t>(5 * rate);
    std::vector<float> x(n);
    const double freqs[] = {220.0, 261.63, 329.63};
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate, gain = 0.05 + 0.45 * t / 5.0;
        double v = 0;
        for (double f : freqs) v += std::sin(2 * std::numbers::pi * f * t) / 3;
        const double since_click = std::fmod(t, 0.5);
        if (since_click < 0.005) v += 0.8 * (1 - since_click / 0.005);
        x[i] = static_cast<float>(gain * v);
    }
    return x;
}

}  // namespace

std::vector<float> encoder_fingerprint(const Encoder& encoder) {
    if (!is_builtin_encoder(encoder.info().name)) return {};
    const int rate = encoder.info().sampling_rate;
    const std::vector<float> x = fingerprint_signal(rate);
    EmbedParams p;
    p.keep_frames = false;
    const Embedding e = encoder.session()->embed(AudioView(x, rate), p, 1);
    const std::size_t per = e.windows.empty() ? 0 : e.segments.size() / e.windows.size();
    return std::vector<float>(e.segments.begin(), e.segments.begin() + static_cast<std::ptrdiff_t>(per));  // the one window
}

std::vector<float> fingerprint_digest(const std::vector<float>& fingerprint) {
    constexpr int kProjections = 16;
    if (fingerprint.empty()) return {};
    std::vector<float> out(kProjections);
    std::uint64_t state = 0x9E3779B97F4A7C15ULL;  // a fixed sequence of signs (xorshift64)
    const double scale = 1.0 / std::sqrt(static_cast<double>(fingerprint.size()));
    for (int k = 0; k < kProjections; ++k) {
        double acc = 0;
        for (float v : fingerprint) {
            state ^= state << 13, state ^= state >> 7, state ^= state << 17;
            acc += (state & 1) ? v : -v;
        }
        out[static_cast<std::size_t>(k)] = static_cast<float>(acc * scale);
    }
    return out;
}

double fingerprint_distance(const std::vector<float>& a, const std::vector<float>& b) {
    if (a.size() != b.size()) return 1.0;
    double d = 0, n = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        d += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
        n += double(b[i]) * b[i];
    }
    return std::sqrt(d) / std::max(std::sqrt(n), 1e-12);
}

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
