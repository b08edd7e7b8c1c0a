// Loading what the server answers from: artifacts, their aspects and media, the track catalogue.
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "internal.hpp"

namespace mess::server {
namespace fs = std::filesystem;

namespace {

fs::path newest_or_empty(const fs::path& root, const std::string& name) {
    if (!fs::is_directory(root / name)) return {};
    try {
        return resolve_artifact_dir(root, name);
    } catch (const Error&) {
        return {};
    }
}

void add_media(Snapshot& s, const LoadedArtifact& a) {
    const fs::path p = a.dir / kMediaFile;
    if (!fs::exists(p)) return;
    auto j = nlohmann::json::parse(gzip_decompress(read_file(p), p.string()), nullptr, false);
    if (j.is_discarded() || !j.contains("tracks") || !j["tracks"].is_object()) throw_input("{}: not a media file (mess-media/1)", p.string());
    for (auto& [id, entry] : j["tracks"].items())
        if (!s.media.contains(id)) s.media[id] = std::move(entry);
}

}  // namespace

std::shared_ptr<const Encoder> Snapshot::encoder(const std::string& model_override) const {
    std::lock_guard lock(encoder_mutex_);
    if (encoder_) return encoder_;
    const LoadedArtifact& a = clip ? *clip : *track;
    const std::string spec = model_override.empty() ? a.index.model_name : model_override;
    if (spec.empty()) fail(503, "the index records no model: start the server with --model DIR|dsp to search by audio");
    try {
        encoder_ = open_index_encoder(a.index, model_override);
    } catch (const Error& e) {
        fail(503, fmt::format("cannot open the model '{}' for audio queries: {} (start the server with --model)", spec, e.what()));
    }
    return encoder_;
}

SourceDirs resolve_sources(const ServeConfig& config) {
    SourceDirs d;
    const std::string& src = config.index_source;
    if (src.starts_with("s3://")) {
        const fs::path cache = config.data_root / "indices" / ".serve-cache";
        std::string first_error;
        for (auto [name, out] : {std::pair{config.track_name, &d.track_dir}, std::pair{config.clip_name, &d.clip_dir}}) {
            try {
                *out = pull_artifact(src, name, cache);
            } catch (const Error& e) {
                if (first_error.empty()) first_error = e.what();
            }
        }
        if (d.track_dir.empty() && d.clip_dir.empty()) throw_input("{} offers no index: {}", src, first_error);
        return d;
    }
    if (fs::exists(fs::path(src) / "manifest.json")) {
        const auto m = nlohmann::json::parse(read_file(fs::path(src) / "manifest.json"), nullptr, false);
        if (m.is_discarded()) throw_input("{}: manifest.json is not JSON", src);
        (m.value("kind", std::string()) == "clip" ? d.clip_dir : d.track_dir) = src;
        return d;
    }
    d.track_dir = newest_or_empty(src, config.track_name);
    d.clip_dir = newest_or_empty(src, config.clip_name);
    if (d.track_dir.empty() && d.clip_dir.empty())
        throw_input("no index artifact at {} (expected {}/ or {}/ version directories, or an artifact directory)", src, config.track_name,
                    config.clip_name);
    return d;
}

std::shared_ptr<const Snapshot> load_snapshot(const SourceDirs& dirs, const ServeConfig& config) {
    auto s = std::make_shared<Snapshot>();
    s->track_dir = dirs.track_dir;
    s->clip_dir = dirs.clip_dir;
    if (!dirs.track_dir.empty()) {
        auto track = std::make_shared<LoadedArtifact>(load_artifact(dirs.track_dir));
        if (track->index.kind != IndexKind::track) throw_input("{} is a {} index, not a track index", dirs.track_dir.string(), to_string(track->index.kind));
        if (const std::size_t n = track->index.size(); config.neighbour_k > 0 && n > 1 && n <= config.neighbour_max_rows) {
            const auto t0 = std::chrono::steady_clock::now();
            track->index.neighbours = compute_neighbour_lists(track->index.index, config.neighbour_k);
            spdlog::info("neighbour lists of {} tracks (k = {}) in {:.2f} s", n, track->index.neighbours->k,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
        }
        s->track = std::move(track);
        s->track_search = make_searcher(s->track, config.model);
        s->track_aspects = s->track_search->aspects();
        add_media(*s, *s->track);
    }
    if (!dirs.clip_dir.empty()) {
        s->clip = std::make_shared<LoadedArtifact>(load_artifact(dirs.clip_dir));
        if (s->clip->index.kind != IndexKind::clip) throw_input("{} is a {} index, not a clip index", dirs.clip_dir.string(), to_string(s->clip->index.kind));
        s->clip_search = make_searcher(s->clip, config.model);
        s->clip_aspects = s->clip_search->aspects();
        add_media(*s, *s->clip);
    }
    s->version = (s->track ? s->track->version_id() : "") + "|" + (s->clip ? s->clip->version_id() : "");

    // The catalogue: track index rows, else one entry per track of the clip index.
    std::map<std::string, TrackEntry> by_id;
    auto add = [&](const IndexRecord& r, double end) {
        auto [it, fresh] = by_id.try_emplace(r.track_id);
        TrackEntry& t = it->second;
        if (fresh) {
            t.track_id = r.track_id;
            t.dataset_id = r.dataset_id;
            t.recording_id = r.recording_id;
            t.work_id = r.work_id;
            t.metadata = r.metadata;
        }
        t.duration_sec = std::max(t.duration_sec, end);
    };
    if (s->track)
        for (const auto& r : s->track->index.records) add(r, r.end_sec);
    if (s->clip)
        for (const auto& r : s->clip->index.records) add(r, r.end_sec);
    for (auto& [id, t] : by_id) {
        if (s->media.contains(id)) {
            t.media = &s->media[id];
            t.duration_sec = t.media->value("duration_sec", t.duration_sec);
        }
        t.haystack = to_lower(id + " " + t.dataset_id + " " + t.work_id);
        for (const auto& [k, v] : t.metadata) {
            t.haystack += " " + to_lower(v);
            s->columns.insert(k);
        }
        s->tracks.push_back(std::move(t));
    }
    auto key = [](const TrackEntry& t, const char* column) {
        const auto it = t.metadata.find(column);
        return it == t.metadata.end() ? std::string() : to_lower(it->second);
    };
    std::sort(s->tracks.begin(), s->tracks.end(), [&](const TrackEntry& a, const TrackEntry& b) {
        return std::tuple(key(a, "composer"), key(a, "title"), a.track_id) < std::tuple(key(b, "composer"), key(b, "title"), b.track_id);
    });
    for (std::size_t i = 0; i < s->tracks.size(); ++i) s->track_pos[s->tracks[i].track_id] = i;
    spdlog::info("serving {} tracks (track index {}, clip index {})", s->tracks.size(), s->track ? s->track->version_id() : "none",
                 s->clip ? s->clip->version_id() : "none");
    return s;
}

}  // namespace mess::server
