// Internal to the server module: the immutable snapshot of what is served, and HTTP error values.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "mess/artifacts.hpp"
#include "mess/model.hpp"
#include "mess/probe.hpp"
#include "mess/server.hpp"

namespace mess::server {

// An error answered as {"error", "status"[, "parameter"]}.
struct HttpError {
    int status = 400;
    std::string message, parameter;
};
[[noreturn]] inline void fail(int status, std::string message, std::string parameter = {}) {
    throw HttpError{status, std::move(message), std::move(parameter)};
}

struct TrackEntry {
    std::string track_id, dataset_id, recording_id, work_id;
    double duration_sec = 0;
    std::map<std::string, std::string> metadata;
    std::string haystack;                 // lower-case id and metadata values (text search)
    const nlohmann::json* media = nullptr;  // its media entry, or null
};

// Everything one version of the served indexes answers from; read-only once built.
struct Snapshot {
    std::shared_ptr<const LoadedArtifact> track, clip;     // either may be null, not both
    std::optional<Searcher> track_search, clip_search;     // the search service over each (aspects, encoder)
    nlohmann::json media = nlohmann::json::object();      // track id → media entry
    std::vector<TrackEntry> tracks;                       // sorted by composer, title, id
    std::map<std::string, std::size_t> track_pos;
    std::set<std::string> columns;                        // metadata columns (filters)
    std::string version;                                  // "<track vid>|<clip vid>"
    std::filesystem::path track_dir, clip_dir;

    const TrackEntry* find_track(const std::string& id) const {
        const auto it = track_pos.find(id);
        return it == track_pos.end() ? nullptr : &tracks[it->second];
    }
    // The encoder for audio queries: the clip searcher's (else the track searcher's), opened on first use, so
    // both indexes share one model. Errors: HttpError 503 when it cannot be opened.
    std::shared_ptr<const Encoder> encoder() const;
};

// The version directories a source offers for each index, newest first: every <name>/<stamp>/ of a root
// directory; the artifact itself; or, for s3://, the version latest.json names (pulled into
// <data_root>/indices/.serve-cache) followed by the versions pulled before. `errors` says why a pull failed.
// A published version (s3://) whose pull failed: corrupt or inconsistent objects. Keyed by
// "s3:<artifact prefix>@<version id>" so that it is neither downloaded nor reported again.
struct PullRefusal {
    std::string kind, version, key, reason;  // version: the stamp, as a pulled version's directory name
};
struct SourceCandidates {
    std::vector<std::filesystem::path> track, clip;
    std::vector<std::string> errors;
    std::vector<PullRefusal> refused_pulls;
};
// The versions to try, newest first. From s3://, the published version is pulled into the serve cache
// unless `refused(key)` says its pull failed before; the cache's versions follow.
SourceCandidates list_sources(const ServeConfig& config, const std::function<bool(const std::string&)>& refused);

// One loaded, validated index artifact with its media entries: what a snapshot is made of.
struct Side {
    std::filesystem::path dir;
    std::shared_ptr<const LoadedArtifact> artifact;     // null: no index of this kind
    std::shared_ptr<const nlohmann::json> media;        // track id → media entry; null without media.json.gz
};
// Loads and validates one artifact of `kind` and its media; a track index of at most neighbour_max_rows
// rows gets its neighbour lists (config.neighbour_k > 0). Errors: Error(input) naming the problem.
Side load_side(const std::filesystem::path& dir, IndexKind kind, const ServeConfig& config);
// The searchers and the track catalogue over one or two sides (not both empty). Errors: Error(input).
std::shared_ptr<const Snapshot> make_snapshot(const Side& track, const Side& clip, const ServeConfig& config);

}  // namespace mess::server
