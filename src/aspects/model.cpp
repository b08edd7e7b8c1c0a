// Aspect models: applying a rung, and the saved form (.npy arrays + aspects.json).
#include <cmath>
#include <fstream>

#include "forward.hpp"
#include "mess/npy.hpp"

namespace mess {

namespace fs = std::filesystem;

const char* to_string(AspectRung rung) {
    switch (rung) {
        case AspectRung::identity: return "identity";
        case AspectRung::standardise: return "standardise";
        case AspectRung::diagonal: return "diagonal";
        case AspectRung::linear: return "linear";
        case AspectRung::mlp: return "mlp";
    }
    return "?";
}

AspectRung parse_aspect_rung(const std::string& text) {
    for (AspectRung r : {AspectRung::identity, AspectRung::standardise, AspectRung::diagonal, AspectRung::linear, AspectRung::mlp})
        if (text == to_string(r)) return r;
    throw_usage("unknown rung '{}' (identity | standardise | diagonal | linear | mlp)", text);
}

const char* to_string(AspectLoss loss) { return loss == AspectLoss::infonce ? "infonce" : "triplet"; }

AspectLoss parse_aspect_loss(const std::string& text) {
    if (text == "triplet") return AspectLoss::triplet;
    if (text == "infonce") return AspectLoss::infonce;
    throw_usage("unknown loss '{}' (triplet | infonce)", text);
}

std::vector<float> AspectModel::apply(const float* x) const {
    detail::AspectPass pass;
    detail::aspect_forward(*this, x, pass);
    return std::vector<float>(pass.y.begin(), pass.y.end());
}

std::vector<float> AspectModel::apply_normalised(const float* x, std::int64_t n) const {
    std::vector<float> out;
    out.reserve(static_cast<std::size_t>(n * out_dim));
    for (std::int64_t i = 0; i < n; ++i) {
        std::vector<float> y = apply(x + i * in_dim);
        double norm = 0;
        for (float v : y) norm += double(v) * v;
        const double inv = norm > 0 ? 1 / std::sqrt(norm) : 0;
        for (float v : y) out.push_back(static_cast<float>(v * inv));
    }
    return out;
}

AspectModel identity_model(const std::string& name, std::int64_t dim) {
    AspectModel m;
    m.name = name;
    m.in_dim = m.out_dim = dim;
    return m;
}

namespace {

// The mlp's three arrays (W1 [H, Din], b1 [H], W2 [k, H]) from its flat weights, named in `a`.
void save_mlp(const AspectModel& m, const fs::path& dir, const std::string& prefix, nlohmann::json& a) {
    const detail::MlpLayout l(m);
    const auto h = static_cast<std::int64_t>(l.hidden);
    const auto part = [&](std::size_t from, std::size_t to) { return std::vector<float>(m.weights.begin() + static_cast<std::ptrdiff_t>(from), m.weights.begin() + static_cast<std::ptrdiff_t>(to)); };
    write_npy(dir / (prefix + m.name + ".w1.npy"), part(0, l.b1), {h, m.in_dim});
    write_npy(dir / (prefix + m.name + ".b1.npy"), part(l.b1, l.w2), {h});
    write_npy(dir / (prefix + m.name + ".w2.npy"), part(l.w2, m.weights.size()), {m.out_dim, h});
    a["hidden_dim"] = h;
    for (const char* key : {"w1", "b1", "w2"}) a[key] = prefix + m.name + "." + key + ".npy";
}

}  // namespace

void save_aspect_set(const AspectSet& set, const fs::path& dir, const std::string& prefix) {
    fs::create_directories(dir);
    nlohmann::json aspects = nlohmann::json::object();
    for (const auto& [name, m] : set.aspects) {
        nlohmann::json a = {{"rung", to_string(m.rung)}, {"in_dim", m.in_dim}, {"out_dim", m.out_dim},
                            {"mean", nullptr}, {"scale", nullptr}, {"weights", nullptr}, {"info", m.info}};
        if (m.rung != AspectRung::identity) {
            write_npy(dir / (prefix + name + ".mean.npy"), m.mean, {m.in_dim});
            write_npy(dir / (prefix + name + ".scale.npy"), m.scale, {m.in_dim});
            a["mean"] = prefix + name + ".mean.npy";
            a["scale"] = prefix + name + ".scale.npy";
        }
        if (m.rung == AspectRung::diagonal) write_npy(dir / (prefix + name + ".weights.npy"), m.weights, {m.in_dim});
        if (m.rung == AspectRung::linear) write_npy(dir / (prefix + name + ".weights.npy"), m.weights, {m.out_dim, m.in_dim});
        if (m.rung == AspectRung::diagonal || m.rung == AspectRung::linear) a["weights"] = prefix + name + ".weights.npy";
        if (m.rung == AspectRung::mlp) save_mlp(m, dir, prefix, a);
        a["direction"] = nullptr;
        if (!m.direction.empty()) {
            write_npy(dir / (prefix + name + ".direction.npy"), m.direction, {m.out_dim});
            a["direction"] = prefix + name + ".direction.npy";
        }
        aspects[name] = a;
    }
    const nlohmann::json j = {{"schema", "mess-aspects/1"}, {"encoder", set.encoder}, {"layers", set.layers}, {"layer_dim", set.layer_dim},
                              {"encoder_signature", set.encoder_signature},
                              {"input", "x = segments[S, L, D][:, layers].reshape(S, -1) (no normalisation); "
                                        "z = (x - mean) / scale; y = z (standardise) | weights * z (diagonal) | weights @ z (linear) | "
                                        "w2 @ max(w1 @ z + b1, 0) (mlp); "
                                        "similarity = cosine of y"},
                              {"aspects", aspects}};
    write_file_atomic(dir / (prefix + "aspects.json"), j.dump(1) + "\n");
}

namespace {

std::vector<float> read_vector(const fs::path& path, std::int64_t expect) {
    const NpyArray a = read_npy(path);
    const std::vector<float> v = a.to_float32();
    if (static_cast<std::int64_t>(v.size()) != expect) throw_input("{}: {} values, expected {}", path.string(), v.size(), expect);
    return v;
}

// A file that aspects.json names: a plain name in its directory.
fs::path named_file(const fs::path& dir, const nlohmann::json& a, const char* key) {
    const std::string f = a.at(key).get<std::string>();
    if (f.empty() || f.find('/') != std::string::npos || f.starts_with(".")) throw_input("{}: '{}' is not a plain file name", dir.string(), f);
    return dir / f;
}

AspectModel read_model(const fs::path& dir, const std::string& name, const nlohmann::json& a) {
    AspectModel m;
    m.name = name;
    m.rung = parse_aspect_rung(a.at("rung").get<std::string>());
    m.in_dim = a.at("in_dim").get<std::int64_t>();
    m.out_dim = a.at("out_dim").get<std::int64_t>();
    m.info = a.value("info", nlohmann::json::object());
    if (m.in_dim <= 0 || m.out_dim <= 0) throw_input("{}: aspect {} has no dimensions", dir.string(), name);
    if (a.contains("direction") && !a["direction"].is_null()) m.direction = read_vector(named_file(dir, a, "direction"), m.out_dim);
    if (m.rung != AspectRung::linear && m.rung != AspectRung::mlp && m.out_dim != m.in_dim) throw_input("{}: aspect {}: out_dim must equal in_dim", dir.string(), name);
    if (m.rung == AspectRung::identity) return m;
    m.mean = read_vector(named_file(dir, a, "mean"), m.in_dim);
    m.scale = read_vector(named_file(dir, a, "scale"), m.in_dim);
    for (float s : m.scale)
        if (!(s > 0)) throw_input("{}: aspect {}: scale values must be positive", dir.string(), name);
    if (m.rung == AspectRung::diagonal) m.weights = read_vector(named_file(dir, a, "weights"), m.in_dim);
    if (m.rung == AspectRung::linear) m.weights = read_vector(named_file(dir, a, "weights"), m.in_dim * m.out_dim);
    if (m.rung == AspectRung::mlp) {
        m.hidden_dim = a.at("hidden_dim").get<std::int64_t>();
        if (m.hidden_dim <= 0) throw_input("{}: aspect {}: hidden_dim must be positive", dir.string(), name);
        m.weights = read_vector(named_file(dir, a, "w1"), m.hidden_dim * m.in_dim);
        for (const auto& [key, size] : {std::pair{"b1", m.hidden_dim}, std::pair{"w2", m.out_dim * m.hidden_dim}}) {
            const std::vector<float> v = read_vector(named_file(dir, a, key), size);
            m.weights.insert(m.weights.end(), v.begin(), v.end());
        }
    }
    return m;
}

}  // namespace

AspectSet load_aspect_set(const fs::path& dir, const std::string& prefix) {
    const fs::path file = dir / (prefix + "aspects.json");
    std::ifstream in(file);
    if (!in) throw_input("{}: no aspect models here ({}aspects.json missing)", dir.string(), prefix);
    AspectSet set;
    try {
        const nlohmann::json j = nlohmann::json::parse(in);
        if (j.value("schema", std::string()) != "mess-aspects/1") throw_input("{}: schema is not mess-aspects/1", file.string());
        set.encoder = j.at("encoder").get<std::string>();
        set.layers = j.at("layers").get<std::vector<int>>();
        set.layer_dim = j.at("layer_dim").get<std::int64_t>();
        set.encoder_signature = j.value("encoder_signature", nlohmann::json());
        for (const auto& [name, a] : j.at("aspects").items()) {
            AspectModel m = read_model(dir, name, a);
            if (m.in_dim != static_cast<std::int64_t>(set.layers.size()) * set.layer_dim)
                throw_input("{}: aspect {}: in_dim {} ≠ {} layers × {}", file.string(), name, m.in_dim, set.layers.size(), set.layer_dim);
            set.aspects[name] = std::move(m);
        }
    } catch (const nlohmann::json::exception& e) {
        throw_input("{}: {}", file.string(), e.what());
    }
    return set;
}

}  // namespace mess
