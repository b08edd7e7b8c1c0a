// Shards and the extraction report.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "mess/extract.hpp"

namespace mess {

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

std::int64_t ExtractReport::recomputed_because(TrackState cause) const {
    return static_cast<std::int64_t>(std::count_if(recomputed.begin(), recomputed.end(), [&](const auto& r) { return r.cause == cause; }));
}

nlohmann::json ExtractReport::to_json() const {
    nlohmann::json failures = nlohmann::json::array(), redone = nlohmann::json::array();
    for (const auto& f : failed) failures.push_back({{"track_id", f.track_id}, {"audio_path", f.audio_path.string()}, {"reason", f.reason}});
    for (const auto& r : recomputed) redone.push_back({{"track_id", r.track_id}, {"cause", to_string(r.cause)}, {"reason", r.reason}});
    return {{"tracks_total", tracks_total},
            {"processed", processed},
            {"recomputed_source_changed", recomputed_because(TrackState::source_changed)},
            {"recomputed_corrupt", recomputed_because(TrackState::corrupt)},
            {"recomputed", redone},
            {"cached", cached},
            {"locked_by_another_run", locked},
            {"failed", failures},
            {"num_failed", failed.size()},
            {"silent", silent},
            {"windows", windows},
            {"elapsed_sec", elapsed_sec},
            {"windows_per_sec", windows_per_sec()},
            {"model_busy_sec", model_busy_sec},
            {"model_busy_share", model_busy_share()}};
}

}  // namespace mess
