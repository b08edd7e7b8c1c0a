#include <nlohmann/json.hpp>

#include "mess/extract.hpp"

namespace mess {
namespace fs = std::filesystem;

fs::path FeatureStore::view_path(const std::string& view, const std::string& track_id) const {
    return root / view / (track_id + ".npy");
}
fs::path FeatureStore::sidecar_path(const std::string& track_id) const { return root / "meta" / (track_id + ".json"); }
fs::path FeatureStore::lock_path(const std::string& track_id) const { return root / ".locks" / (track_id + ".lock"); }

FeatureLevel parse_feature_level(const std::string& text) {
    if (text == "all") return FeatureLevel::all;
    if (text == "segments") return FeatureLevel::segments;
    if (text == "aggregated") return FeatureLevel::aggregated;
    throw_usage("unknown feature level '{}' (all | segments | aggregated)", text);
}

std::vector<std::string> views_of(FeatureLevel level) {
    switch (level) {
        case FeatureLevel::all: return {"raw", "segments", "aggregated"};
        case FeatureLevel::segments: return {"segments", "aggregated"};
        case FeatureLevel::aggregated: return {"aggregated"};
    }
    return {};
}

Shard Shard::parse(const std::string& text) {
    Shard s;
    auto slash = text.find('/');
    try {
        std::size_t a = 0, b = 0;
        if (slash == std::string::npos) throw std::invalid_argument("no slash");
        s.index = std::stoi(text.substr(0, slash), &a);
        s.count = std::stoi(text.substr(slash + 1), &b);
        if (a != slash || b != text.size() - slash - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
        throw_usage("--shard '{}': expected i/N, e.g. 0/4", text);
    }
    if (s.count < 1 || s.index < 0 || s.index >= s.count) throw_usage("--shard '{}': need 0 ≤ i < N", text);
    return s;
}

bool Shard::contains(const std::string& track_id) const {
    std::uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
    for (unsigned char c : track_id) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return static_cast<int>(h % static_cast<std::uint64_t>(count)) == index;
}

bool track_complete(const FeatureStore& store, const std::string& track_id, FeatureLevel level) {
    std::error_code ec;
    const fs::path side = store.sidecar_path(track_id);
    if (!fs::exists(side, ec)) return false;
    try {
        auto j = nlohmann::json::parse(read_file(side));
        auto have = j.at("views").get<std::vector<std::string>>();
        for (const auto& v : views_of(level)) {
            if (std::find(have.begin(), have.end(), v) == have.end()) return false;
            if (!fs::exists(store.view_path(v, track_id), ec)) return false;
        }
        return true;
    } catch (const std::exception&) {
        return false;  // an unreadable sidecar means: not complete, recompute
    }
}

std::string stored_precision(const FeatureStore& store, const std::string& track_id) {
    const auto j = nlohmann::json::parse(read_file(store.sidecar_path(track_id)), nullptr, false);
    return j.is_object() ? j.value("precision", std::string("fp32")) : std::string("fp32");
}

nlohmann::json ExtractReport::to_json() const {
    nlohmann::json failures = nlohmann::json::array();
    for (const auto& f : failed) failures.push_back({{"track_id", f.track_id}, {"audio_path", f.audio_path.string()}, {"reason", f.reason}});
    return {{"tracks_total", tracks_total},
            {"processed", processed},
            {"cached", cached},
            {"locked_by_another_run", locked},
            {"failed", failures},
            {"num_failed", failed.size()},
            {"windows", windows},
            {"elapsed_sec", elapsed_sec},
            {"windows_per_sec", windows_per_sec()},
            {"model_busy_sec", model_busy_sec},
            {"model_busy_share", model_busy_share()}};
}

}  // namespace mess
