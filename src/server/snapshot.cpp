// Loading what the server answers from: artifacts, their aspects and media, the track catalogue.
#include <algorithm>
#include <chrono>

#include <spdlog/spdlog.h>

#include "internal.hpp"

namespace mess::server {
namespace fs = std::filesystem;

std::shared_ptr<const Encoder> Snapshot::encoder() const {
    try {
        return (clip_search ? *clip_search : *track_search).encoder();
    } catch (const Error& e) {
        fail(503, fmt::format("cannot open the model for audio queries: {} (start the server with --model DIR|dsp)", e.what()));
    }
}

namespace {

// The version latest.json names, pulled into the cache (none when it fails or was refused before).
void pull_latest(const ServeConfig& config, const std::string& name, const char* kind, const fs::path& cache,
                 const std::function<bool(const std::string&)>& refused, SourceCandidates& d, std::vector<fs::path>& out) {
    LatestPointer latest;
    try {
        latest = read_latest(config.index_source, name);
    } catch (const Error& e) {
        d.errors.push_back(e.what());
        return;
    }
    const std::string key = "s3:" + latest.artifact_prefix + "@" + latest.version_id;
    if (refused(key)) return;
    try {
        out.push_back(pull_artifact(config.index_source, name, cache));
    } catch (const Error& e) {
        d.refused_pulls.push_back({kind, latest.stamp, key, e.what()});
    }
}

}  // namespace

SourceCandidates list_sources(const ServeConfig& config, const std::function<bool(const std::string&)>& refused) {
    SourceCandidates d;
    const std::string& src = config.index_source;
    if (src.starts_with("s3://")) {
        const fs::path cache = config.data_root / "indices" / ".serve-cache";
        for (auto [name, kind, out] : {std::tuple{config.track_name, "track", &d.track}, std::tuple{config.clip_name, "clip", &d.clip}}) {
            pull_latest(config, name, kind, cache, refused, d, *out);
            for (fs::path& p : artifact_versions(cache, name))
                if (out->empty() || p != out->front()) out->push_back(std::move(p));
        }
        return d;
    }
    if (fs::exists(fs::path(src) / "manifest.json")) {
        const auto m = nlohmann::json::parse(read_file(fs::path(src) / "manifest.json"), nullptr, false);
        (!m.is_discarded() && m.value("kind", std::string()) == "clip" ? d.clip : d.track).push_back(src);
        return d;
    }
    d.track = artifact_versions(src, config.track_name);
    d.clip = artifact_versions(src, config.clip_name);
    return d;
}

Side load_side(const fs::path& dir, IndexKind kind, const ServeConfig& config) {
    Side side;
    side.dir = dir;
    auto a = std::make_shared<LoadedArtifact>(load_artifact(dir));
    if (a->index.kind != kind) throw_input("{} is a {} index, not a {} index", dir.string(), to_string(a->index.kind), to_string(kind));
    if (const std::size_t n = a->index.size(); kind == IndexKind::track && config.neighbour_k > 0 && n > 1 && n <= config.neighbour_max_rows &&
                                                !a->index.index.is_compressed()) {
        const auto t0 = std::chrono::steady_clock::now();
        a->index.neighbours = compute_neighbour_lists(a->index.index, config.neighbour_k);
        spdlog::info("neighbour lists of {} tracks (k = {}) in {:.2f} s", n, a->index.neighbours->k,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (fs::exists(dir / kMediaFile)) side.media = std::make_shared<const nlohmann::json>(read_media(dir));
    side.artifact = std::move(a);
    return side;
}

std::shared_ptr<const Snapshot> make_snapshot(const Side& track, const Side& clip, const ServeConfig& config) {
    if (!track.artifact && !clip.artifact) throw_input("no index to serve");
    auto s = std::make_shared<Snapshot>();
    auto add_media = [&](const Side& side) {
        if (side.media)
            for (const auto& [id, entry] : side.media->items())
                if (!s->media.contains(id)) s->media[id] = entry;
    };
    auto take = [&](const Side& side, std::shared_ptr<const LoadedArtifact>& artifact, std::filesystem::path& dir,
                    std::optional<Searcher>& search) {
        if (!side.artifact) return;
        artifact = side.artifact;
        dir = side.dir;
        search = make_searcher(artifact, config.model);
        add_media(side);
    };
    take(track, s->track, s->track_dir, s->track_search);
    take(clip, s->clip, s->clip_dir, s->clip_search);
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
