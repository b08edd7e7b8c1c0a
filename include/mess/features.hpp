// mess/features.hpp — the feature store: where a dataset's embeddings live, the per-track sidecar, the
// rule that says a track is complete, and the one layer-fusion routine. The one owner of these concerns:
// extraction writes through it; the catalog, probing and search read through it.
//
//   mess::FeatureStore store = mess::FeatureStore::of("data", "smd");       // data/embeddings/smd-emb
//   if (store.is_complete("track1", mess::FeatureLevel::segments)) {
//       mess::Sidecar side = store.read_sidecar("track1");                  // windows, model, precision, ...
//       mess::NpyArray seg = store.read_view(mess::View::segments, "track1"); // [S, L, D]
//       fs::path audio = store.audio_path(side);                           // absolute again
//   }
//
// Layout (docs/ARCHITECTURE.md, "Feature store"), per track, under <data root>/embeddings/<dataset>-emb/:
//   raw/<track>.npy         [S, L, T, D] float32 (or float16)    — level "all" only
//   segments/<track>.npy    [S, L, D]    mean over frames        — levels "all", "segments"
//   aggregated/<track>.npy  [L, D]       mean over windows, accumulated in double — every level
//   meta/<track>.json       the sidecar (below), written last
//   .locks/<track>.lock     an flock held while a run computes the track
// Completeness (check_track, the one rule; is_complete is its yes/no): a track is complete for a level when
//   - its sidecar parses and lists every view of the level,
//   - each of those view files is intact: its .npy header parses (read_npy_header) and the file is exactly
//     header + shape × dtype size long, its rank is the view's (raw 4, segments 3, aggregated 2), its dtype
//     float32 (raw: the sidecar's raw_dtype), raw and segments hold num_windows windows, and every view
//     agrees on [L, D] — the data itself is not read, so checking a store costs a few reads per track;
//   - and, when the caller passes the audio's FileStamp and the sidecar records one, the two are equal.
// Otherwise the track is missing (no sidecar, or the sidecar lacks a view of a higher level), corrupt (an
// unreadable sidecar, or a listed view missing or damaged) or source_changed (the audio's size or
// modification time differ), and extraction recomputes it, saying why. Sidecars written before the audio
// stamp existed have none: their tracks are not checked against the audio (never recomputed for that
// reason), only for corruption. A sidecar is written last and atomically, so a killed run never leaves a
// track that looks complete. Extraction also recomputes a complete track whose sidecar's encoder_digest
// differs from the running encoder's (source_changed: the encoder, not the audio, changed), or records none
// where the running encoder has one (extracted before digests were recorded), so that a changed build of
// a built-in encoder never leaves features of the old one in place.
//
// Sidecar (meta/<track>.json, one JSON object): track_id, audio_path (relative to the data root when the
// audio lies under it, else absolute), model, model_config {architecture, hidden_size, num_hidden_states,
// default_layer, layer_names}, sample_rate (Hz), window_seconds, overlap, duration_sec, num_windows,
// frames_per_window, windows [{start_sec, end_sec}] (true bounds in seconds), views, raw_dtype, precision,
// device, audio_size_bytes and audio_mtime_ns (the audio's FileStamp when it was extracted), mess_version,
// created_at_utc, encoder_digest (16 numbers; only for built-in encoders). Sidecars written before precision/device existed read as fp32/cpu; before the audio stamp
// existed, without one (audio_stamp empty).
//
// Errors: Error(input) naming the file for a missing or malformed sidecar or view; Error(usage) for an
// unknown view or level name. Thread safety: FeatureStore is a value; its functions are reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "mess/npy.hpp"
#include "mess/util.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Views and levels
// ---------------------------------------------------------------------------------------------

enum class View { raw, segments, aggregated };
const char* to_string(View view);            // "raw" | "segments" | "aggregated" (the folder names)
View parse_view(const std::string& text);    // Errors: Error(usage)

enum class FeatureLevel { all, segments, aggregated };
FeatureLevel parse_feature_level(const std::string& text);  // Errors: Error(usage)
// The views a level keeps: all → raw, segments, aggregated; segments → segments, aggregated; aggregated → aggregated.
std::vector<View> views_of(FeatureLevel level);
// "raw+segments+aggregated", for logs.
std::string describe_views(FeatureLevel level);

// ---------------------------------------------------------------------------------------------
// Sidecar
// ---------------------------------------------------------------------------------------------

struct WindowBounds {
    double start_sec = 0, end_sec = 0;  // true bounds in the audio, seconds
};

struct SidecarModel {
    std::string architecture;
    std::int64_t hidden_size = 0, num_hidden_states = 0;
    int default_layer = -1;              // the model's recommended layer; -1 when it names none
    std::vector<std::string> layer_names;
};

struct Sidecar {
    std::string track_id;
    std::filesystem::path audio_path;    // as stored: relative to the data root, or absolute (see above)
    std::string model;                   // model label (directory or built-in name)
    SidecarModel model_config;
    int sample_rate = 0;                 // Hz
    double window_seconds = 0, overlap = 0, duration_sec = 0;
    std::int64_t num_windows = 0, frames_per_window = 0;
    std::vector<WindowBounds> windows;   // one per segment, in order
    std::vector<View> views;             // the views written
    std::string raw_dtype = "float32";   // float32 | float16
    std::string precision = "fp32";      // fp32 | bf16 | fp16
    std::string device = "cpu";          // cpu | cuda
    std::optional<FileStamp> audio_stamp;  // the audio's size and mtime when extracted; absent in older sidecars
    // fingerprint_digest (mess/model.hpp) of the encoder build that computed the features; empty when not
    // recorded (an encoder that is not built in, or an older sidecar)
    std::vector<float> encoder_digest;
    std::string mess_version, created_at_utc;

    bool has_view(View v) const;
    std::string to_json_text() const;    // pretty JSON, keys sorted, ending in a newline
    // Errors: Error(input) naming `source` for malformed JSON or a missing required field (windows, views).
    static Sidecar parse(const std::string& text, const std::string& source);
};

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

// A track's state in the store for one feature level (the rule is at the top of this file).
enum class TrackState { missing, complete, corrupt, source_changed };
const char* to_string(TrackState state);  // "missing" | "complete" | "corrupt" | "source changed"

struct TrackCheck {
    TrackState state = TrackState::missing;
    std::string reason;  // corrupt / source_changed: what is wrong, naming the file ("…/segments/t.npy: truncated data: …")
};

class FeatureStore {
public:
    // A store at `root`. Relative audio paths in sidecars resolve against `data_root` (when empty,
    // audio paths are stored as given).
    explicit FeatureStore(std::filesystem::path root, std::filesystem::path data_root = {});
    // The store of a dataset: <data_root>/embeddings/<dataset_id>-emb.
    static FeatureStore of(const std::filesystem::path& data_root, const std::string& dataset_id);

    const std::filesystem::path& root() const { return root_; }
    const std::filesystem::path& data_root() const { return data_root_; }
    std::filesystem::path view_path(View view, const std::string& track_id) const;  // <view>/<track>.npy
    std::filesystem::path sidecar_path(const std::string& track_id) const;          // meta/<track>.json
    std::filesystem::path lock_path(const std::string& track_id) const;             // .locks/<track>.lock
    // The track's structure analysis (mess/structure.hpp's JSON form, written atomically by
    // write_structure_file): structure/<track>.json. Not part of the completeness rule.
    std::filesystem::path structure_path(const std::string& track_id) const;
    // Creates the store's folders. Errors: Error(input) naming the folder.
    void create() const;

    bool has_sidecar(const std::string& track_id) const;
    // Errors: Error(input) naming the file when it is missing or malformed.
    Sidecar read_sidecar(const std::string& track_id) const;
    // The sidecar, or nullopt when it is missing or unreadable (treated as "not extracted").
    std::optional<Sidecar> try_read_sidecar(const std::string& track_id) const;
    // Writes atomically (last, after the views: it marks the track complete). The audio path is made
    // relative to the data root when the audio lies under it.
    void write_sidecar(Sidecar sidecar) const;
    // The sidecar's audio path, absolute again.
    std::filesystem::path audio_path(const Sidecar& sidecar) const;

    // The one completeness rule (see the top of this file). `audio`: the track's audio stamp now
    // (file_stamp of its audio file); nullopt skips the source check. Reads the sidecar and each view's
    // header, never view data. Never throws for a damaged track (that is TrackState::corrupt).
    TrackCheck check_track(const std::string& track_id, FeatureLevel level,
                           const std::optional<FileStamp>& audio = std::nullopt) const;
    bool is_complete(const std::string& track_id, FeatureLevel level) const;  // check_track(...).state == complete
    bool has_view(View view, const std::string& track_id) const;
    // A view file. Errors: Error(input) naming the file when it is missing, corrupt, or not of the
    // view's rank (raw 4, segments 3, aggregated 2).
    NpyArray read_view(View view, const std::string& track_id) const;

private:
    std::filesystem::path root_, data_root_;
};

// ---------------------------------------------------------------------------------------------
// Layer fusion: the one routine probing and search share
// ---------------------------------------------------------------------------------------------

// out[D] = normalise(Σ_l w_l · x̂_l), where x̂_l is layer l of the [L, D] stack `stack`, L2-normalised
// (a zero layer stays zero), and layers with w_l = 0 are skipped. A zero sum stays zero.
// Errors: Error(usage) when weights.size() != layers.
void fuse_layers(const float* stack, std::size_t layers, std::size_t dim, std::span<const double> weights, float* out);
// The same for a stack whose layers are already L2-normalised and stored as float16 (index layer vectors).
void fuse_normalised_layers(const std::uint16_t* stack, std::size_t layers, std::size_t dim, std::span<const double> weights,
                            float* out);

}  // namespace mess
