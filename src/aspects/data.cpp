// Factor corpora as training data: labels, windows from the feature store, factor triplets.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <random>
#include <set>

#include <spdlog/spdlog.h>

#include "mess/aspects.hpp"

namespace mess {

namespace fs = std::filesystem;

std::vector<float> concat_layers(const NpyArray& segments, const std::vector<int>& layers) {
    if (segments.shape.size() != 3) throw_input("segments must be [S, L, D], got {}", segments.describe());
    const std::int64_t s = segments.shape[0], l = segments.shape[1], d = segments.shape[2];
    const auto v = segments.view<float>();
    std::vector<float> out;
    out.reserve(static_cast<std::size_t>(s) * layers.size() * static_cast<std::size_t>(d));
    for (std::int64_t i = 0; i < s; ++i)
        for (int layer : layers) {
            if (layer < 0 || layer >= l) throw_usage("layer {} out of range (the store has {} layers)", layer, l);
            const float* p = v.data() + (i * l + layer) * d;
            out.insert(out.end(), p, p + d);  // as the encoder gave them: levels (dynamics) stay in the input
        }
    return out;
}

namespace {

nlohmann::json read_json_file(const fs::path& path) {
    std::ifstream in(path);
    if (!in) throw_input("{}: cannot open", path.string());
    try {
        return nlohmann::json::parse(in);
    } catch (const std::exception& e) {
        throw_input("{}: not JSON ({})", path.string(), e.what());
    }
}

// Source seconds of rendered second t through a time map of [source, rendered] pairs (linear between
// points, the end slopes held beyond them); t itself without a map.
double source_time(const nlohmann::json& item, double t) {
    if (!item.contains("time_map") || !item["time_map"].is_array() || item["time_map"].size() < 2) return t;
    std::vector<std::pair<double, double>> map;  // (rendered, source)
    for (const auto& pt : item["time_map"]) map.emplace_back(pt.at(1).get<double>(), pt.at(0).get<double>());
    std::sort(map.begin(), map.end());
    std::size_t i = 1;
    while (i + 1 < map.size() && map[i].first < t) ++i;
    const auto& [r0, s0] = map[i - 1];
    const auto& [r1, s1] = map[i];
    return r1 > r0 ? s0 + (t - r0) * (s1 - s0) / (r1 - r0) : s0;
}

// Appends one track's windows; false when the store lacks its features.
bool add_track(FactorWindows& w, const FeatureStore& store, const nlohmann::json& item, std::vector<int>& layers) {
    const std::string id = item.at("id").get<std::string>();
    if (!store.is_complete(id, FeatureLevel::segments)) return false;
    const Sidecar side = store.read_sidecar(id);
    const NpyArray seg = store.read_view(View::segments, id);
    if (layers.empty())
        for (int l = 0; l < static_cast<int>(seg.shape[1]); ++l) layers.push_back(l);
    if (w.n == 0) {
        w.layers = layers;
        w.layer_dim = seg.shape[2];
        w.dim = static_cast<std::int64_t>(layers.size()) * w.layer_dim;
        w.encoder = side.model;
    } else if (seg.shape[2] != w.layer_dim || side.model != w.encoder) {
        throw_input("{}: features of model {} [D={}] mix with {} [D={}]", id, side.model, seg.shape[2], w.encoder, w.layer_dim);
    }
    const std::vector<float> x = concat_layers(seg, layers);
    const auto t = static_cast<std::int32_t>(w.track_ids.size());
    w.track_ids.push_back(id);
    w.track_work.push_back(item.at("work_id").get<std::string>());
    w.track_factor.push_back(item.value("factor", std::string("base")));
    std::map<std::string, std::string> values;
    if (item.contains("factors"))
        for (const auto& [k, v] : item.at("factors").items()) values[k] = v.get<std::string>();
    w.track_values.push_back(std::move(values));
    const double duration = std::max(side.duration_sec, 1e-9);
    for (std::size_t i = 0; i < side.windows.size(); ++i) {
        w.track.push_back(t);
        const double centre = 0.5 * (side.windows[i].start_sec + side.windows[i].end_sec);
        w.position.push_back(std::clamp(centre / duration, 0.0, 1.0));
        w.source_sec.push_back(source_time(item, centre));
    }
    w.x.insert(w.x.end(), x.begin(), x.end());
    w.n += static_cast<std::int64_t>(side.windows.size());
    return true;
}

// Windows of every labelled track found in the store; `factors`: the items must carry factor labels.
FactorWindows load_labelled_windows(const FeatureStore& store, const fs::path& labels, const std::vector<int>& layers, bool factors) {
    const nlohmann::json j = read_json_file(labels);
    if (!j.contains("items") || !j["items"].is_array()) throw_input("{}: no \"items\" array", labels.string());
    FactorWindows w;
    std::vector<int> chosen = layers;
    std::int64_t missing = 0;
    for (const auto& item : j["items"]) {
        if (!item.contains("id") || !item.contains("work_id") || (factors && !item.contains("factors")))
            throw_input("{}: items need id, work_id{}", labels.string(), factors ? " and factors (a corpus from `mess corpus render --factors`)" : "");
        try {
            if (!add_track(w, store, item, chosen)) ++missing;
        } catch (const nlohmann::json::exception& e) {
            throw_input("{}: item {}: {}", labels.string(), item.value("id", std::string("?")), e.what());
        }
    }
    if (missing) spdlog::warn("aspects: {} labelled track(s) have no complete features in {}; skipped", missing, store.root().string());
    if (w.n == 0) throw_input("none of the tracks of {} has features in {}", labels.string(), store.root().string());
    return w;
}

}  // namespace

FactorWindows load_factor_windows(const FeatureStore& store, const fs::path& labels, const std::vector<int>& layers) {
    return load_labelled_windows(store, labels, layers, true);
}

FactorWindows load_work_windows(const FeatureStore& store, const fs::path& labels, const std::vector<int>& layers) {
    return load_labelled_windows(store, labels, layers, false);
}

namespace {

// Per value of the aspect: the tracks rendering it (of the aspect's renderings, in the chosen works).
struct AspectTracks {
    std::map<std::string, std::vector<std::int32_t>> by_value;
    std::map<std::pair<std::string, std::string>, std::int32_t> by_work_value;
    std::vector<std::vector<std::int64_t>> rows;  // per track: its window rows
};

AspectTracks aspect_tracks(const FactorWindows& data, const std::string& aspect, const std::vector<std::string>& works) {
    AspectTracks at;
    at.rows.resize(data.track_ids.size());
    for (std::int64_t i = 0; i < data.n; ++i) at.rows[static_cast<std::size_t>(data.track[static_cast<std::size_t>(i)])].push_back(i);
    const std::set<std::string> keep(works.begin(), works.end());
    for (std::size_t t = 0; t < data.track_ids.size(); ++t) {
        const auto& f = data.track_factor[t];
        const auto it = data.track_values[t].find(aspect);
        if ((f != aspect && f != "base") || it == data.track_values[t].end() || at.rows[t].empty()) continue;
        if (!keep.empty() && !keep.count(data.track_work[t])) continue;
        at.by_value[it->second].push_back(static_cast<std::int32_t>(t));
        at.by_work_value[{data.track_work[t], it->second}] = static_cast<std::int32_t>(t);
    }
    return at;
}

// The row of track t nearest to relative position `pos`.
std::int64_t row_near(const FactorWindows& data, const std::vector<std::int64_t>& rows, double pos) {
    std::int64_t best = rows.front();
    for (std::int64_t r : rows)
        if (std::fabs(data.position[static_cast<std::size_t>(r)] - pos) < std::fabs(data.position[static_cast<std::size_t>(best)] - pos)) best = r;
    return best;
}

}  // namespace

std::vector<Triplet> draw_triplets(const FactorWindows& data, const std::string& aspect, const std::vector<std::string>& works, int count,
                                   std::uint64_t seed) {
    const AspectTracks at = aspect_tracks(data, aspect, works);
    std::vector<std::string> values;
    for (const auto& [v, tracks] : at.by_value) values.push_back(v);
    if (values.size() < 2) throw_usage("aspect '{}': fewer than 2 values among the corpus's renderings (is it a factor of the corpus?)", aspect);
    std::mt19937_64 rng(seed);
    auto pick = [&](std::size_t n) { return static_cast<std::size_t>(rng() % n); };
    std::vector<Triplet> out;
    for (int attempts = 0; static_cast<int>(out.size()) < count && attempts < count * 20; ++attempts) {
        const std::string& v = values[pick(values.size())];
        const auto& tracks = at.by_value.at(v);
        if (tracks.size() < 2) continue;
        const std::int32_t ta = tracks[pick(tracks.size())], tp = tracks[pick(tracks.size())];
        if (data.track_work[static_cast<std::size_t>(ta)] == data.track_work[static_cast<std::size_t>(tp)]) continue;
        const std::string& other = values[pick(values.size())];
        const auto neg = at.by_work_value.find({data.track_work[static_cast<std::size_t>(tp)], other});
        if (other == v || neg == at.by_work_value.end()) continue;
        const auto& ra = at.rows[static_cast<std::size_t>(ta)];
        const auto& rp = at.rows[static_cast<std::size_t>(tp)];
        const std::int64_t p = rp[pick(rp.size())];
        out.push_back({ra[pick(ra.size())], p, row_near(data, at.rows[static_cast<std::size_t>(neg->second)], data.position[static_cast<std::size_t>(p)])});
    }
    if (out.empty()) throw_usage("aspect '{}': no triplet can be drawn (needs 2 works sharing a value and another value of one)", aspect);
    return out;
}

}  // namespace mess
