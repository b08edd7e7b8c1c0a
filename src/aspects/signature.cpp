// Which encoder an aspect set belongs to: its identity, its version (a fingerprint of a fixed test
// signal), and the refusal to apply a set to another encoder's features, or to features of another build of it.
#include "mess/aspects.hpp"
#include "mess/model.hpp"

namespace mess {

nlohmann::json encoder_signature(const Encoder& encoder) {
    const EncoderInfo& info = encoder.info();
    nlohmann::json j = {{"name", info.name},     {"architecture", info.architecture}, {"layers", info.layers},
                        {"hidden", info.hidden}, {"layer_names", info.layer_names},   {"fingerprint", nullptr}};
    if (std::vector<float> f = encoder_fingerprint(encoder); !f.empty()) j["fingerprint"] = std::move(f);
    return j;
}

void check_aspect_encoder(const AspectSet& set, const Encoder& encoder, const std::string& what) {
    const EncoderInfo& info = encoder.info();
    if (set.encoder != info.name)
        throw_input("{}: aspect models trained on encoder '{}', the features are from '{}'", what, set.encoder, info.name);
    const nlohmann::json& sig = set.encoder_signature;
    if (sig.is_null()) return;
    const nlohmann::json now = encoder_signature(encoder);
    for (const char* key : {"architecture", "layers", "hidden", "layer_names"})
        if (sig.value(key, nlohmann::json()) != now[key])
            throw_input("{}: aspect models trained on {} {} of encoder '{}', this build's encoder has {}: retrain them (scripts/train-aspects)",
                        what, key, sig.value(key, nlohmann::json()).dump(), info.name, now[key].dump());
    if (sig.value("fingerprint", nlohmann::json()).is_null() || now["fingerprint"].is_null()) return;
    const auto a = now["fingerprint"].get<std::vector<float>>(), b = sig["fingerprint"].get<std::vector<float>>();
    const double d = fingerprint_distance(a, b);
    if (d > kSameFingerprint)
        throw_input("{}: the encoder '{}' changed since these aspect models were trained (its fingerprint differs by {:.3g} relative): "
                    "retrain them (scripts/train-aspects)", what, info.name, d);
}

std::vector<float> aspect_set_digest(const AspectSet& set) {
    const nlohmann::json f = set.encoder_signature.is_object() ? set.encoder_signature.value("fingerprint", nlohmann::json()) : nlohmann::json();
    return f.is_array() ? fingerprint_digest(f.get<std::vector<float>>()) : std::vector<float>{};
}

void check_aspect_features(const std::vector<float>& set_digest, const Sidecar& side) {
    if (set_digest.empty()) return;
    if (side.encoder_digest.empty())
        throw_input("track {}: its features record no encoder digest (extracted by an older build of '{}'), so the aspect models "
                    "cannot tell whether they fit: re-extract (mess extract), or build without them (--no-aspect-models)",
                    side.track_id, side.model);
    if (const double d = fingerprint_distance(side.encoder_digest, set_digest); d > kSameFingerprint)
        throw_input("track {}: its features come from another build of the encoder '{}' than the aspect models (fingerprint moved by "
                    "{:.3g} relative): re-extract (mess extract), or retrain the models (scripts/train-aspects)", side.track_id, side.model, d);
}

std::vector<float> AspectSet::input_of(const float* stack, std::size_t layers_in_stack, std::size_t dim) const {
    if (static_cast<std::int64_t>(dim) != layer_dim) throw_input("aspect models take layers of {} values, the features have {}", layer_dim, dim);
    std::vector<float> out;
    out.reserve(layers.size() * dim);
    for (int l : layers) {
        if (l < 0 || static_cast<std::size_t>(l) >= layers_in_stack)
            throw_input("aspect models read layer {}, the features have {} layers", l, layers_in_stack);
        out.insert(out.end(), stack + l * dim, stack + (l + 1) * dim);
    }
    return out;
}

std::optional<std::filesystem::path> default_aspect_models_dir(const std::string& encoder) {
    namespace fs = std::filesystem;
    if (!is_builtin_encoder(encoder)) return std::nullopt;
    std::vector<fs::path> candidates;
    if (const char* env = std::getenv("MESS_ASPECT_MODELS"); env && *env) candidates.push_back(fs::path(env) / encoder);
    std::error_code ec;
    if (const fs::path exe = fs::read_symlink("/proc/self/exe", ec); !ec)
        candidates.push_back(exe.parent_path() / ".." / "share" / "mess" / "aspects" / encoder);
#ifdef MESS_SOURCE_ASPECT_MODELS
    candidates.push_back(fs::path(MESS_SOURCE_ASPECT_MODELS) / encoder);
#endif
    for (const auto& c : candidates)
        if (fs::is_regular_file(c / "aspects.json", ec)) return c;
    return std::nullopt;
}

}  // namespace mess
