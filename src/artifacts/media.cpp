// Media file of index artifacts: audio locations and multi-resolution waveform peaks per track.
#include <algorithm>
#include <cmath>
#include <map>

#include "mess/artifacts.hpp"
#include "mess/audio.hpp"
#include "track_files.hpp"

namespace mess {
namespace fs = std::filesystem;

std::vector<float> waveform_peaks(std::span<const float> samples, int sample_rate, double per_second) {
    if (sample_rate <= 0 || !(per_second > 0)) throw_usage("waveform peaks need positive rates (got {} Hz, {}/s)", sample_rate, per_second);
    const double bucket = sample_rate / per_second;
    const auto buckets = static_cast<std::size_t>(std::ceil(static_cast<double>(samples.size()) / bucket - 1e-9));
    std::vector<float> peaks(buckets, 0.0f);
    for (std::size_t b = 0; b < buckets; ++b) {
        const auto lo = static_cast<std::size_t>(std::llround(static_cast<double>(b) * bucket));
        const auto hi = std::min(samples.size(), static_cast<std::size_t>(std::llround(static_cast<double>(b + 1) * bucket)));
        float m = 0;
        for (std::size_t i = lo; i < hi; ++i) m = std::max(m, std::fabs(samples[i]));
        peaks[b] = std::min(m, 1.0f);
    }
    return peaks;
}

const char* audio_content_type(const fs::path& path) {
    const std::string ext = to_lower(path.extension().string());
    static const std::map<std::string, const char*> types = {{".wav", "audio/wav"},   {".flac", "audio/flac"}, {".ogg", "audio/ogg"},
                                                             {".oga", "audio/ogg"},   {".opus", "audio/ogg"},  {".mp3", "audio/mpeg"},
                                                             {".m4a", "audio/mp4"},   {".aif", "audio/aiff"},  {".aiff", "audio/aiff"}};
    const auto it = types.find(ext);
    return it == types.end() ? "application/octet-stream" : it->second;
}

std::string build_track_file(const Dataset& dataset, const std::vector<std::string>& track_ids, const std::string& schema,
                             const TrackEntryFn& entry_of, const std::function<void(const std::string&)>& on_skip,
                             const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
    std::map<std::string, fs::path> audio_of;
    for (const Track& t : dataset.tracks()) audio_of[t.track_id] = t.audio_path;
    nlohmann::json tracks = nlohmann::json::object();
    std::int64_t done = 0;
    for (const std::string& id : track_ids) {
        try {
            const auto it = audio_of.find(id);
            if (it == audio_of.end()) throw_input("no audio file in {}", dataset.audio_dir().string());
            tracks[id] = entry_of(id, it->second);
        } catch (const Error& e) {
            if (on_skip) on_skip(id + ": " + e.what());
        }
        if (on_progress) on_progress(++done, static_cast<std::int64_t>(track_ids.size()));
    }
    const nlohmann::json file = {{"schema", schema}, {"dataset", dataset.id()}, {"tracks", std::move(tracks)}};
    return gzip_compress(file.dump());
}

std::string build_media(const Dataset& dataset, const std::vector<std::string>& track_ids, std::vector<std::string>* skipped,
                        const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(dataset.data_root(), ec);
    auto entry = [&](const std::string&, const fs::path& audio_file) -> nlohmann::json {
        const fs::path audio_path = fs::weakly_canonical(audio_file);
        const Audio audio = decode_audio(audio_path);
        const fs::path rel = audio_path.lexically_relative(root);
        const bool inside = !rel.empty() && *rel.begin() != "..";
        nlohmann::json levels = nlohmann::json::array();
        for (int per_second : kPeakLevels) {
            std::vector<int> permille;
            for (float p : waveform_peaks(audio.samples, audio.sample_rate, per_second)) permille.push_back(static_cast<int>(std::lround(p * 1000)));
            levels.push_back({{"per_second", per_second}, {"peaks", std::move(permille)}});
        }
        return {{"audio", (inside ? rel : audio_path).generic_string()},
                {"content_type", audio_content_type(audio_path)},
                {"size", fs::file_size(audio_path)},
                {"duration_sec", audio.duration_sec()},
                {"sample_rate", audio.sample_rate},
                {"levels", std::move(levels)}};
    };
    auto skip = [&](const std::string& why) { if (skipped) skipped->push_back(why); };
    return build_track_file(dataset, track_ids, "mess-media/1", entry, skip, on_progress);
}

nlohmann::json read_media(const fs::path& artifact_dir) {
    const fs::path p = artifact_dir / kMediaFile;
    if (!fs::exists(p)) return nlohmann::json::object();
    auto j = nlohmann::json::parse(gzip_decompress(read_file(p), p.string()), nullptr, false);
    if (j.is_discarded() || !j.contains("tracks") || !j["tracks"].is_object()) throw_input("{}: not a media file (mess-media/1)", p.string());
    return std::move(j["tracks"]);
}

fs::path media_audio_path(const nlohmann::json& entry, const fs::path& data_root) {
    if (!entry.is_object() || !entry.contains("audio") || !entry["audio"].is_string()) throw_input("media entry without an audio path");
    const fs::path rel = entry["audio"].get<std::string>();
    return rel.is_absolute() ? rel : data_root / rel;
}

}  // namespace mess
