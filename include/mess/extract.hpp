// mess/extract.hpp — the extraction pipeline: audio files → feature store (.npy views + sidecars).
//
//   std::vector<mess::ExtractItem> items = ...;             // track id + audio path
//   mess::FeatureStore store = mess::FeatureStore::of("data", "smd");
//   mess::ExtractParams p;  p.workers = 2;  p.threads = 2;
//   mess::ExtractReport r = mess::extract_tracks(items, store, *mess::open_encoder("dsp"), p);  // or a MERT dir
//   mess::write_file_atomic("extract_report.json", r.to_json().dump(2));
//
// The store's layout, its sidecar and the completeness rule belong to mess/features.hpp. Views and the
// sidecar are written atomically, the sidecar last (a track's old sidecar is removed before its views are
// replaced); a killed run (even SIGKILL) leaves at most hidden ".<name>.tmp.*" files, which the next run
// on that track removes.
//
// Resume: a track is skipped ("cached") when FeatureStore::check_track finds it complete for the level:
// intact views (headers and file lengths) and, when the sidecar records one, the same audio size and
// modification time as now. A track whose audio changed or whose files are damaged is recomputed and listed
// in ExtractReport::recomputed with the cause and the reason; sidecars from before the audio stamp are
// trusted for the audio (only their files are checked). --force (params.force) recomputes every track.
//
// Concurrency: each track is processed under an exclusive flock on .locks/<track>.lock; another process
// holding it makes this run skip the track ("locked"), and a track found complete after locking is
// "cached". So concurrent runs on one dataset never duplicate or corrupt work. Decoding runs on `workers`
// threads feeding a bounded queue (2 × workers tracks); inference and writing run on the calling thread
// with `threads` compute threads.
//
// Errors: a bad track (unreadable, too short, non-finite features, ...) is reported in ExtractReport::failed and
// skipped; a silent track is extracted and listed in ExtractReport::silent;
// Error(input/usage) only for problems with the store itself or the parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/features.hpp"
#include "mess/model.hpp"

namespace mess {

struct ExtractItem {
    std::string track_id;
    std::filesystem::path audio_path;
};

// A deterministic 1/count of the tracks: those whose FNV-1a 64 hash of the track id mod count == index.
struct Shard {
    int index = 0, count = 1;
    // "i/N" with 0 ≤ i < N. Errors: Error(usage).
    static Shard parse(const std::string& text);
    bool contains(const std::string& track_id) const;
};

struct ExtractProgress {
    std::int64_t tracks_done = 0, tracks_total = 0, windows_done = 0;
};

struct ExtractParams {
    FeatureLevel level = FeatureLevel::segments;
    bool raw_float16 = false;   // store raw as float16 (halves it)
    int workers = 1;            // decode threads (≥ 1)
    int threads = 1;            // inference threads (≥ 1)
    int batch_size = 4;         // windows per encode call (≥ 1)
    bool force = false;         // recompute complete tracks
    Shard shard{};
    std::string model_label;    // recorded in sidecars (e.g. the model directory)
    std::function<void(const ExtractProgress&)> on_progress;
};

struct TrackFailure {
    std::string track_id;
    std::filesystem::path audio_path;
    std::string reason;
};

// A track that looked extracted but was recomputed: its audio changed, or its files were damaged.
struct TrackRecompute {
    std::string track_id;
    TrackState cause = TrackState::corrupt;  // TrackState::corrupt | TrackState::source_changed
    std::string reason;                      // from check_track, naming the file
};

// Every track of the shard is counted once: processed + recomputed.size() + cached + locked + failed.size()
// == tracks_total.
struct ExtractReport {
    std::int64_t tracks_total = 0;      // after sharding
    std::int64_t processed = 0;         // computed: not extracted before (or at a lower level), or --force
    std::int64_t cached = 0, locked = 0;
    std::vector<TrackRecompute> recomputed;  // sorted by track id
    std::vector<TrackFailure> failed;
    std::vector<std::string> silent;    // extracted, but their audio is digital silence (features say nothing)
    std::int64_t windows = 0;           // windows computed in this run
    double elapsed_sec = 0.0;           // wall time
    double model_busy_sec = 0.0;        // time inside inference
    double windows_per_sec() const { return elapsed_sec > 0 ? static_cast<double>(windows) / elapsed_sec : 0.0; }
    double model_busy_share() const { return elapsed_sec > 0 ? model_busy_sec / elapsed_sec : 0.0; }
    std::int64_t recomputed_because(TrackState cause) const;
    // {tracks_total, processed, recomputed_source_changed, recomputed_corrupt, recomputed: [{track_id,
    // cause: "source changed" | "corrupt", reason}], cached, locked_by_another_run, failed, num_failed, silent,
    // windows, elapsed_sec, windows_per_sec, model_busy_sec, model_busy_share}
    nlohmann::json to_json() const;
};

// Runs the pipeline over `items` (filtered by params.shard). Errors: Error(usage) for invalid params;
// Error(input) when the store cannot be created.
ExtractReport extract_tracks(const std::vector<ExtractItem>& items, const FeatureStore& store, const Encoder& encoder,
                             const ExtractParams& params);

}  // namespace mess
