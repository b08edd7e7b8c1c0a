// mess/extract.hpp — the extraction pipeline: audio files → feature store (.npy views + sidecars).
//
//   std::vector<mess::ExtractItem> items = ...;             // track id + audio path
//   mess::FeatureStore store{"data/embeddings/smd-emb"};
//   mess::ExtractParams p;  p.workers = 2;  p.threads = 2;
//   mess::ExtractReport r = mess::extract_tracks(items, store, *mess::open_encoder("dsp"), p);  // or a MERT dir
//   mess::write_file_atomic("extract_report.json", r.to_json().dump(2));
//
// Store layout (DESIGN.md contract), per track:
//   raw/<track>.npy         [S, L, T, D] float32 (or float16 with raw_dtype)   — level "all" only
//   segments/<track>.npy    [S, L, D]    mean over frames                       — levels "all", "segments"
//   aggregated/<track>.npy  [L, D]       mean over windows, accumulated in double — every level
//   meta/<track>.json       sidecar: windows (true start/end seconds), model, configuration, views
// The sidecar is written last: a track is complete when its sidecar lists the requested views and they
// exist. Every file is written atomically (temp file + fsync + rename); a killed run (even SIGKILL) leaves
// at most hidden ".<name>.tmp.*" files, which the next run on that track removes.
//
// Concurrency: each track is processed under an exclusive flock on .locks/<track>.lock; another process
// holding it makes this run skip the track ("locked"), and a track found complete after locking is
// "cached". So concurrent runs on one dataset never duplicate or corrupt work. Decoding runs on `workers`
// threads feeding a bounded queue (2 × workers tracks); inference and writing run on the calling thread
// with `threads` compute threads.
//
// Errors: a bad track (unreadable, too short, ...) is reported in ExtractReport::failed and skipped;
// Error(input/usage) only for problems with the store itself or the parameters.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "mess/model.hpp"

namespace mess {

struct ExtractItem {
    std::string track_id;
    std::filesystem::path audio_path;
};

// Where one dataset's features live (embeddings/<dataset>-emb).
struct FeatureStore {
    std::filesystem::path root;
    std::filesystem::path view_path(const std::string& view, const std::string& track_id) const;
    std::filesystem::path sidecar_path(const std::string& track_id) const;
    std::filesystem::path lock_path(const std::string& track_id) const;
};

enum class FeatureLevel { all, segments, aggregated };
FeatureLevel parse_feature_level(const std::string& text);  // Errors: Error(usage)
// The views a level keeps: all → raw, segments, aggregated; segments → segments, aggregated; aggregated → aggregated.
std::vector<std::string> views_of(FeatureLevel level);

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

struct ExtractReport {
    std::int64_t tracks_total = 0;      // after sharding
    std::int64_t processed = 0, cached = 0, locked = 0;
    std::vector<TrackFailure> failed;
    std::int64_t windows = 0;           // windows computed in this run
    double elapsed_sec = 0.0;           // wall time
    double model_busy_sec = 0.0;        // time inside inference
    double windows_per_sec() const { return elapsed_sec > 0 ? static_cast<double>(windows) / elapsed_sec : 0.0; }
    double model_busy_share() const { return elapsed_sec > 0 ? model_busy_sec / elapsed_sec : 0.0; }
    nlohmann::json to_json() const;
};

// Is `track_id` complete in `store` for `level` (sidecar lists the views, files exist)?
bool track_complete(const FeatureStore& store, const std::string& track_id, FeatureLevel level);
// The precision a track's sidecar records ("fp32" for sidecars written before precisions existed).
std::string stored_precision(const FeatureStore& store, const std::string& track_id);

// Runs the pipeline over `items` (filtered by params.shard). Errors: Error(usage) for invalid params;
// Error(input) when the store cannot be created.
ExtractReport extract_tracks(const std::vector<ExtractItem>& items, const FeatureStore& store, const Encoder& encoder,
                             const ExtractParams& params);

}  // namespace mess
