// The aspect registry and the resolution of aspects to layers from layer-discovery results.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>

#include "mess/probe.hpp"
#include "mess/util.hpp"

namespace mess {

const std::vector<Aspect>& aspect_registry() {
    static const std::vector<Aspect> registry = {
        {"brightness", "How bright or dark the sound is (spectral centre of mass)", {"timbre/spectral_centroid"}},
        {"texture", "Noisiness and high-frequency content of the timbre", {"timbre/spectral_rolloff", "timbre/zero_crossing_rate"}},
        {"warmth", "Spectral spread and balance: warm versus thin", {"timbre/spectral_bandwidth", "timbre/spectral_centroid"}},
        {"tempo", "Global tempo", {"rhythm/tempo"}},
        {"rhythmic_energy", "How many note onsets per second", {"rhythm/onset_density"}},
        {"dynamics", "Loudness range and variability", {"dynamics/dynamic_range", "dynamics/dynamic_variance"}},
        {"harmonic_richness", "How many pitch classes sound at once (chroma entropy)", {"harmony/harmonic_complexity"}},
        {"articulation", "Attack speed and sharpness of notes", {"articulation/attack_slopes", "articulation/attack_sharpness"}},
        {"phrasing", "Regularity and number of phrases", {"phrasing/phrase_regularity", "phrasing/num_phrases"}},
        {"tension", "Tonal tension over time (tonal interval space)", {"curves/tis_tension"}},
        {"dynamic_arc", "The loudness contour over time", {"curves/dynamic_arc"}},
        {"rhythmic_flow", "Local tempo over time", {"curves/local_tempo"}},
        {"brightness_trajectory", "How brightness evolves over time", {"curves/centroid_trajectory"}},
        {"structure", "Where the music changes section (novelty)", {"curves/novelty"}},
        {"micro_articulation", "Note-length articulation profile from MIDI (staccato to legato)", {"midi/articulation_hist"}},
        {"performance_expression", "Velocity, timing and pedal expressiveness from MIDI",
         {"midi/velocity_std", "midi/ioi_std", "midi/pedal_ratio"}},
    };
    return registry;
}

AspectMode parse_aspect_mode(const std::string& text) {
    if (text == "auto") return AspectMode::automatic;
    if (text == "best_layer") return AspectMode::best_layer;
    if (text == "weighted_sum") return AspectMode::weighted_sum;
    throw_usage("unknown aspect mode '{}' (expected auto, best_layer or weighted_sum)", text);
}

const char* to_string(AspectMode mode) {
    switch (mode) {
        case AspectMode::automatic: return "auto";
        case AspectMode::best_layer: return "best_layer";
        case AspectMode::weighted_sum: return "weighted_sum";
    }
    return "?";
}

namespace {

// The confidence fields of one probe result (absent in results written before they existed).
void read_confidence(ResolvedAspect& a, const nlohmann::json& m) {
    a.n_tracks = m.value("n_tracks", std::int64_t{0});
    if (auto it = m.find("r2_band"); it != m.end() && it->is_array() && it->size() == 2 && (*it)[0].is_number())
        a.band = {(*it)[0].get<double>(), (*it)[1].get<double>()};
    if (auto it = m.find("r2_fold_std"); it != m.end() && it->is_number()) a.r2_fold_std = it->get<double>();
}

double rounded(double v) { return std::round(v * 1e4) / 1e4; }

}  // namespace

std::vector<double> ResolvedAspect::weights(std::size_t layers) const {
    if (mode == AspectMode::weighted_sum) {
        if (layer_weights.size() != layers)
            throw_usage("aspect {} has {} layer weights, the features have {} layers", name, layer_weights.size(), layers);
        return layer_weights;
    }
    if (layer < 0 || static_cast<std::size_t>(layer) >= layers)
        throw_usage("aspect {} resolved to layer {}, the features have {} layers", name, layer, layers);
    std::vector<double> w(layers, 0.0);
    w[static_cast<std::size_t>(layer)] = 1.0;
    return w;
}

nlohmann::json ResolvedAspect::to_json() const {
    nlohmann::json j = {{"aspect", name},          {"description", description}, {"target", target},
                        {"mode", to_string(mode)}, {"r2_score", rounded(r2)},
                        {"confidence", confidence}, {"n_valid", n_valid},        {"coverage", coverage},
                        {"n_tracks", n_tracks}};
    if (std::isfinite(band.low)) j["r2_band"] = {rounded(band.low), rounded(band.high)};
    if (std::isfinite(r2_fold_std)) j["r2_fold_std"] = rounded(r2_fold_std);
    if (mode == AspectMode::weighted_sum) {
        j["layer_weights"] = layer_weights;
        j["r2_gain"] = r2_gain;
    } else {
        j["layer"] = layer;
    }
    return j;
}

nlohmann::json read_discovery_results(const std::filesystem::path& path) {
    if (!std::filesystem::exists(path))
        throw_input("no layer-discovery results at {} (run mess probe first)", path.string());
    nlohmann::json j = nlohmann::json::parse(read_file(path), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw_input("{}: not a JSON object", path.string());
    return j;
}

std::vector<ResolvedAspect> resolve_aspects(const nlohmann::json& results, const AspectParams& params) {
    if (!results.is_object()) throw_input("layer-discovery results must be a JSON object");
    std::vector<int> layers;
    for (auto it = results.begin(); it != results.end(); ++it) {
        const std::string& k = it.key();
        if (!k.empty() && k.find_first_not_of("0123456789") == std::string::npos && it->is_object()) layers.push_back(std::stoi(k));
    }
    if (layers.empty()) throw_input("layer-discovery results have no layer sections (\"0\", \"1\", ...)");
    const nlohmann::json* ws = results.contains("weighted_sum") ? &results["weighted_sum"] : nullptr;

    // The name a registry target has in these results: itself, or window/<field> for window-level results.
    auto present_name = [&](const std::string& target) -> std::string {
        auto has = [&](const std::string& name) {
            for (int l : layers)
                if (results[std::to_string(l)].contains(name)) return true;
            return ws && ws->contains(name);
        };
        if (has(target)) return target;
        const std::string window = "window/" + target.substr(target.find('/') + 1);
        return has(window) ? window : std::string();
    };

    std::vector<ResolvedAspect> out;
    for (const Aspect& aspect : aspect_registry()) {
        ResolvedAspect best;
        best.r2 = -std::numeric_limits<double>::infinity();
        for (const auto& target : aspect.targets) {
            const std::string name = present_name(target);
            if (name.empty()) continue;
            ResolvedAspect single, dense;
            single.r2 = dense.r2 = -std::numeric_limits<double>::infinity();
            for (int l : layers) {
                const auto& section = results[std::to_string(l)];
                if (!section.contains(name)) continue;
                const double s = probe_score(section[name]);
                if (std::isfinite(s) && s > single.r2) {
                    single.r2 = s;
                    single.layer = l;
                    single.mode = AspectMode::best_layer;
                    single.n_valid = section[name].value("n_valid", std::int64_t{0});
                    single.coverage = section[name].value("coverage", 0.0);
                    read_confidence(single, section[name]);
                }
            }
            if (ws && ws->contains(name)) {
                const auto& m = (*ws)[name];
                const double s = probe_score(m);
                if (std::isfinite(s) && m.contains("layer_weights")) {
                    dense.r2 = s;
                    dense.mode = AspectMode::weighted_sum;
                    dense.layer_weights = m["layer_weights"].get<std::vector<double>>();
                    dense.n_valid = m.value("n_valid", std::int64_t{0});
                    dense.coverage = m.value("coverage", 0.0);
                    read_confidence(dense, m);
                    dense.r2_gain = std::isfinite(single.r2) ? s - single.r2 : 0.0;
                }
            }
            const ResolvedAspect* pick = nullptr;
            switch (params.mode) {
                case AspectMode::best_layer: pick = std::isfinite(single.r2) ? &single : nullptr; break;
                case AspectMode::weighted_sum: pick = std::isfinite(dense.r2) ? &dense : nullptr; break;
                case AspectMode::automatic:
                    if (std::isfinite(dense.r2) && (!std::isfinite(single.r2) || dense.r2 > single.r2 + params.gain)) pick = &dense;
                    else if (std::isfinite(single.r2)) pick = &single;
                    break;
            }
            if (pick && pick->r2 > best.r2) {
                best = *pick;
                best.target = name;
            }
        }
        if (!std::isfinite(best.r2) || best.r2 < params.min_r2) continue;
        best.name = aspect.name;
        best.description = aspect.description;
        best.confidence = confidence_label(best.band.low, best.n_tracks);
        out.push_back(std::move(best));
    }
    return out;
}

std::map<std::string, double> parse_aspect_request(const std::string& text) {
    std::map<std::string, double> out;
    for (const std::string& item : split(text, ',')) {
        if (item.empty()) throw_usage("aspect list '{}' has an empty item", text);
        const auto eq = item.find_first_of("=:");
        const std::string name = item.substr(0, eq);
        double w = 1.0;
        if (eq != std::string::npos) {
            char* end = nullptr;
            const std::string num = item.substr(eq + 1);
            w = std::strtod(num.c_str(), &end);
            if (num.empty() || *end != '\0' || !std::isfinite(w)) throw_usage("aspect weight '{}' is not a number", item);
        }
        if (w < 0) throw_usage("aspect weight for {} must be ≥ 0", name);
        if (!out.emplace(name, w).second) throw_usage("aspect '{}' is named twice in '{}'", name, text);
    }
    return out;
}

ResolvedAspect resolved_aspect_from_json(const nlohmann::json& j) {
    ResolvedAspect a;
    a.name = j.at("aspect").get<std::string>();
    a.description = j.value("description", "");
    a.target = j.value("target", "");
    a.mode = parse_aspect_mode(j.at("mode").get<std::string>());
    if (a.mode == AspectMode::automatic) throw_input("aspect {}: a resolved aspect's mode is best_layer or weighted_sum", a.name);
    a.r2 = j.at("r2_score").get<double>();
    read_confidence(a, j);
    a.confidence = confidence_label(a.band.low, a.n_tracks);  // recomputed: a stored label may predate the band
    a.layer = j.value("layer", -1);
    a.layer_weights = j.value("layer_weights", std::vector<double>{});
    a.r2_gain = j.value("r2_gain", 0.0);
    a.n_valid = j.value("n_valid", std::int64_t{0});
    a.coverage = j.value("coverage", 0.0);
    return a;
}

std::vector<double> aspect_layer_weights(const std::vector<ResolvedAspect>& aspects, const std::map<std::string, double>& request,
                                         std::size_t layers, double min_r2, bool scale_by_r2) {
    if (request.empty()) throw_usage("no aspects requested");
    auto available = [&] {
        std::string names;
        for (const auto& a : aspects)
            if (a.r2 >= min_r2) names += (names.empty() ? "" : ", ") + a.name;
        return names.empty() ? std::string("none (run mess probe; no aspect reaches the R² threshold)") : names;
    };
    std::vector<double> w(layers, 0.0);
    for (const auto& [name, weight] : request) {
        if (weight < 0) throw_usage("aspect weight for {} must be ≥ 0", name);
        auto it = std::find_if(aspects.begin(), aspects.end(), [&](const ResolvedAspect& a) { return a.name == name; });
        if (it == aspects.end() || it->r2 < min_r2)
            throw_usage("aspect '{}' is {}; available: {}", name, it == aspects.end() ? "unknown or not resolved" : "not validated (R² below the threshold)",
                        available());
        const auto lw = it->weights(layers);
        const double scale = weight * (scale_by_r2 ? std::max(0.0, it->r2) : 1.0);  // R² ≤ 0 carries no signal
        for (std::size_t l = 0; l < layers; ++l) w[l] += scale * lw[l];
    }
    double sum = 0;
    for (double x : w) sum += x;
    if (!(sum > 0))
        throw_usage("aspect weights sum to zero{}", scale_by_r2 ? " (scaled by R², and every requested aspect has R² ≤ 0 or weight 0)" : "");
    for (double& x : w) x /= sum;
    return w;
}

}  // namespace mess
