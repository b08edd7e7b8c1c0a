// mess/artifacts.hpp — index artifacts on disk, and publishing/pulling them to a directory or S3.
//
//   fs::path dir = mess::write_artifact(index, "data/indices", "clip_index");   // .../clip_index/<stamp>/
//   mess::LoadedArtifact a = mess::load_artifact(dir);                          // validated, ready to search
//   mess::publish_artifact(dir, "s3://bucket/mess/faiss");                      // objects, then latest.json
//   fs::path local = mess::pull_artifact("s3://bucket/mess/faiss", "clip_index", "data/indices");
//
// Artifact directory (docs/ARCHITECTURE.md contract, schema_version 3):
//   index.faiss            FAISS index over L2-normalised vectors, inner product (faiss.read_index opens it)
//   manifest.json          schema_version, artifact_name, artifact_version_id ("vid-" + 32 hex, immutable), kind,
//                          index_type, factory_string, metric "cosine_ip", dataset, model_name, layer (spec),
//                          dimension, ntotal, created_at_utc, default_nprobe (IVF), layers/layer_dim (aspect
//                          search), window_sec, files
//   track_names.json       (track) row → track id;   clip_records.json.gz (clip) row → {clip_id, dataset_id,
//                          recording_id, work_id, track_id, segment_idx, start_time, end_time, split}
//   records.json.gz        row → every record field plus metadata columns (filters)
//   vectors.npy            [ntotal, dimension] float32 normalised (not for Flat: index.faiss holds them, nor compressed)
//   vectors_f16.npy        compressed indexes only (schema_version 4): [ntotal, dimension] float16 normalised,
//                          memory-mapped at load and read row by row to re-rank; index.faiss then holds IVF
//                          codes (SQ8 or PQ), and the manifest adds index_type ("ivf-sq8" | "ivf-pq"),
//                          vectors_file ("vectors_f16.npy") and rerank (candidates re-ranked exactly).
//                          Schema 3 artifacts (float32) are written and read as before.
//   layers.npy             [ntotal, layers, layer_dim] float16, each layer normalised (aspect search)
//   aspect_models.aspects.json, aspect_models.<aspect>.{mean,scale,weights}.npy   learned aspect models
//                          (aspects.hpp's saved form, prefixed), manifest "aspect_models": {aspects, stack_layers, encoder}
//   aspect_vectors.<aspect>.npy  [ntotal, out_dim] float32: every row in the aspect's space, normalised
//   media.json.gz          audio locations and waveform peaks (optional: --no-media)
//   structure.json.gz      each track's structure (optional: --no-structure; artifacts from before it load
//                          without it, and role searches then say the index holds no structure)
//   checksums.json         file → {sha256, md5, size} for every other file
// Loading checks every listed file's size and SHA-256 (streamed: kDigestChunk bytes at a time), the manifest's fields and schema, the index's
// dimension and count against the manifest, and the row files' lengths, and names what is wrong.
//
// Stores: a local directory or s3://bucket/prefix. S3 requests go through libcurl's SigV4 signing
// (CURLOPT_AWS_SIGV4) with x-amz-content-sha256; configuration from the usual environment:
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION / AWS_DEFAULT_REGION (default
// us-east-1), AWS_ENDPOINT_URL / MESS_S3_ENDPOINT (e.g. http://127.0.0.1:4568 → path-style addressing).
// Publishing uploads each object, checks it with HEAD (size, and ETag = MD5), and writes
// <prefix>/<artifact_name>/latest.json last. Pulling reads latest.json, downloads into a temporary
// directory, verifies sizes, SHA-256 and the version id, and only then renames it into place.
//
// Errors: Error(input) naming the file/object for anything missing, corrupt or inconsistent; Error(usage) for
// bad URIs; network failures are Error(input) with the URL and the HTTP status or curl message.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mess/search.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Media: where each track's audio is and its waveform, precomputed when an index is built.
// ---------------------------------------------------------------------------------------------

inline constexpr const char* kMediaFile = "media.json.gz";  // an extra file of index artifacts

// Peak levels stored per track (values per second of audio).
inline constexpr int kPeakLevels[] = {50, 10, 2};

// Waveform peaks: max |sample| over consecutive buckets of rate/per_second samples (the last one
// shorter), in [0, 1] for audio in [-1, 1]. Errors: Error(usage) for non-positive rates.
std::vector<float> waveform_peaks(std::span<const float> samples, int sample_rate, double per_second);

// media.json.gz bytes for `track_ids` of `dataset`: {"schema": "mess-media/1", "tracks": {id: {"audio": path
// (relative to the data root when under it, else absolute), "content_type", "size", "duration_sec",
// "sample_rate", "levels": [{"per_second", "peaks": [permille ints]}]}}}. Tracks whose audio cannot be
// decoded are left out and listed in `skipped` ("id: reason"). `on_progress(done, total)` per track.
std::string build_media(const Dataset& dataset, const std::vector<std::string>& track_ids, std::vector<std::string>* skipped = nullptr,
                        const std::function<void(std::int64_t, std::int64_t)>& on_progress = {});

// The tracks of an artifact directory's media file (track id → entry), or an empty object when it has none.
// Errors: Error(input) naming the file when it is damaged or not a media file.
nlohmann::json read_media(const std::filesystem::path& artifact_dir);
// Where a media entry's audio is on this machine: its "audio" path, under `data_root` when relative.
// Errors: Error(input) for an entry without an audio path.
std::filesystem::path media_audio_path(const nlohmann::json& entry, const std::filesystem::path& data_root);

// Content-Type of an audio file by its extension ("audio/wav", "audio/flac", ...; else application/octet-stream).
const char* audio_content_type(const std::filesystem::path& path);

// ---------------------------------------------------------------------------------------------
// Structure: each indexed track's structure (mess/structure.hpp), for role searches and the structure route.
// ---------------------------------------------------------------------------------------------

inline constexpr const char* kStructureFile = "structure.json.gz";  // an extra file of index artifacts
inline constexpr const char* kStructureSchema = "mess-structure/1";

struct StructureBuildReport {
    std::size_t stored = 0;             // read from the feature store (mess structure --dataset)
    std::size_t analysed = 0;           // analysed from the audio (no stored file, an older or damaged one)
    std::vector<std::string> skipped;   // "id: reason"
};
// structure.json.gz bytes for `track_ids` of `dataset`: {"schema": "mess-structure/1", "dataset", "tracks":
// {id: structure_to_json}}. A track's stored structure (FeatureStore::structure_path) is used when it reads
// and is not older than its audio; otherwise the track is analysed with the default StructureParams (not
// written back: `mess structure --dataset` owns those files). Tracks whose audio cannot be read are skipped.
std::string build_structures(const Dataset& dataset, const std::vector<std::string>& track_ids, StructureBuildReport* report = nullptr,
                             const std::function<void(std::int64_t, std::int64_t)>& on_progress = {});
// The structures of an artifact directory, or null when it has no structure file.
// Errors: Error(input) naming the file (and the track) when it is damaged.
std::shared_ptr<const std::map<std::string, Structure>> read_structures(const std::filesystem::path& artifact_dir);

// ---------------------------------------------------------------------------------------------
// Artifacts
// ---------------------------------------------------------------------------------------------

inline constexpr int kArtifactSchemaVersion = 3;    // float32 indexes (written and read)
inline constexpr int kCompressedSchemaVersion = 4;  // compressed indexes (vectors_f16.npy); both are read
inline constexpr const char* kHalfVectorsFile = "vectors_f16.npy";

struct LoadedArtifact {
    SearchIndex index;
    nlohmann::json manifest;
    std::filesystem::path dir;
    std::string version_id() const { return manifest.value("artifact_version_id", std::string()); }
    // The aspects resolved when the index was built (manifest "aspects"; empty when it has none).
    // Errors: Error(input) for a malformed entry.
    std::vector<ResolvedAspect> aspects() const;
};

// The search service over a loaded artifact (it keeps the artifact alive).
Searcher make_searcher(std::shared_ptr<const LoadedArtifact> artifact, const std::string& model_override = {});

// Everything one index artifact holds, built from a dataset's feature store in one call (the CLI's
// `mess index build` and the demo use it): the index (records, vectors, per-layer vectors), the aspects
// resolved from the dataset's probing results, and the media file (audio locations, waveform peaks).
struct ArtifactBuildParams {
    BuildParams index;                          // kind, layer spec, factory, keep_layers, ...
    std::filesystem::path root;                 // artifact root: <root>/<name>/<stamp>/
    std::string name;                           // default: track_index | clip_index
    std::filesystem::path probing_results;      // default: the dataset's track-level results, when present
    bool media = true;                          // store audio locations and waveform peaks
    // Learned aspect models (aspects.hpp) to map every row into: this directory (an aspects.json), refused
    // with Error(input) when trained on another encoder or version (check_aspect_encoder); empty: the
    // models shipped for the features' built-in encoder (default_aspect_models_dir) when there are any and
    // they match it (else none, with the reason in the report).
    std::filesystem::path aspect_models;
    bool default_aspect_models = true;          // false: no aspect models unless aspect_models is given
    bool structure = true;                      // store each track's structure (build_structures)
    nlohmann::json extra_manifest = nlohmann::json::object();  // added to the manifest (e.g. "shard": "0/2")
    std::function<void(std::int64_t, std::int64_t)> on_media_progress;
    std::function<void(std::int64_t, std::int64_t)> on_structure_progress;
};
struct ArtifactBuildReport {
    std::filesystem::path dir;                  // the new version directory
    std::size_t rows = 0, dimension = 0;
    std::vector<std::string> skipped_tracks;    // no features
    std::vector<std::string> no_media;          // "id: reason"
    std::filesystem::path aspect_models;        // the aspect models applied (empty: none)
    std::string aspect_models_refused;          // why the shipped models were not applied (empty: they were, or none)
    StructureBuildReport structure;
};
// Errors: as build_index and write_artifact; Error(input) when probing_results is given but missing.
ArtifactBuildReport build_artifact(const Dataset& dataset, const ArtifactBuildParams& params);

// Writes `index` as <root>/<name>/<YYYYMMDDTHHMMSSZ>/ (a new directory; written under a temporary name and
// renamed when complete). `extra_files` (plain file name → bytes, e.g. the server's media.json.gz) are written,
// checksummed, published and pulled with the rest. Returns the directory. Errors: Error(input) if it cannot be
// written; Error(usage) for an extra file name that is not plain or collides with the artifact's own files.
std::filesystem::path write_artifact(const SearchIndex& index, const std::filesystem::path& root, const std::string& name,
                                     const nlohmann::json& extra_manifest = nlohmann::json::object(),
                                     const std::map<std::string, std::string>& extra_files = {});

// Validates and loads an artifact directory. `verify_checksums` = false skips the SHA-256 pass (sizes are
// still checked). Errors: Error(input) naming the problem.
LoadedArtifact load_artifact(const std::filesystem::path& dir, bool verify_checksums = true);

// The version directories of <root>/<name> (of `root` when `name` is empty) that hold a manifest.json, newest
// (lexicographically largest stamp) first; hidden (temporary) ones are skipped. Empty when there are none or
// the folder does not exist; never throws.
std::vector<std::filesystem::path> artifact_versions(const std::filesystem::path& root, const std::string& name = "");

// The newest version directory (artifact_versions().front()) under <root>/<name>, or `path` itself when it
// is an artifact directory. Errors: Error(input) when there is none.
std::filesystem::path resolve_artifact_dir(const std::filesystem::path& path, const std::string& name = "");

// `path` loaded when it is an artifact directory; otherwise the newest version under <path>/<name> that loads
// (load_artifact): a version that does not (corrupt, incomplete) is passed over for the next older one and
// noted in `refused` ("<dir>: <why>"). Errors: Error(input) when there is no version, or none loads (naming
// each one's problem).
LoadedArtifact load_newest_artifact(const std::filesystem::path& path, const std::string& name = "",
                                    std::vector<std::string>* refused = nullptr);

// Hex SHA-256 / MD5 of a file or bytes. Files are hashed in a stream of kDigestChunk-byte reads (memory does
// not grow with the file: a 15-GB float16 row file is checked in 4 MiB).
inline constexpr std::size_t kDigestChunk = 4u << 20;
struct FileDigests {
    std::string sha256, md5;  // hex; md5 empty unless asked for
    std::uint64_t size = 0;
};
// Errors: Error(input) naming the file when it cannot be read.
FileDigests file_digests(const std::filesystem::path& path, bool md5 = true);
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const std::filesystem::path& path);
std::string md5_hex(std::string_view bytes);

// gzip (RFC 1952) compression, for clip_records.json.gz. Errors: Error(input) for corrupt data.
std::string gzip_compress(std::string_view data);
std::string gzip_decompress(std::string_view data, const std::string& name);

// ---------------------------------------------------------------------------------------------
// Object stores
// ---------------------------------------------------------------------------------------------

struct ObjectInfo {
    std::int64_t size = -1;
    std::string etag;   // without quotes; empty when the store has none
};

class ObjectStore {
public:
    virtual ~ObjectStore() = default;
    virtual void put(const std::string& key, const std::string& bytes) = 0;
    virtual std::optional<ObjectInfo> head(const std::string& key) = 0;  // nullopt: no such object
    virtual std::string get(const std::string& key) = 0;                 // Errors: Error(input) if missing
    virtual std::string describe(const std::string& key) const = 0;      // a URI for messages
};

// "s3://bucket/prefix" → an S3 store rooted at prefix; anything else → a local directory store.
// `prefix_out` receives the key prefix (S3) or "" (directory).
std::unique_ptr<ObjectStore> open_store(const std::string& uri, std::string* prefix_out);

struct S3Config {
    std::string endpoint;       // "" → https://s3.<region>.amazonaws.com (virtual-hosted), else path-style
    std::string region = "us-east-1";
    std::string access_key, secret_key, session_token;
    static S3Config from_environment();
};
std::unique_ptr<ObjectStore> make_s3_store(const std::string& bucket, const S3Config& config);

// A presigned S3 GET URL (SigV4 query signing, UNSIGNED-PAYLOAD, signed header host) valid for
// `expires_sec` (1 … 604800) from `now` (seconds since the epoch). Path-style when config.endpoint is set.
// Errors: Error(usage) without credentials or for an expiry out of range.
std::string presign_get_url(const S3Config& config, const std::string& bucket, const std::string& key, int expires_sec,
                            std::int64_t now);
// "s3://bucket/prefix" → {bucket, prefix without trailing '/'}. Errors: Error(usage) for other URIs.
std::pair<std::string, std::string> split_s3_uri(const std::string& uri);

struct PublishReport {
    std::string artifact_prefix, version_id;
    std::vector<std::string> objects;
};
// Errors: Error(input) when the local artifact is invalid or an upload does not verify; latest.json
// is then left as it was.
PublishReport publish_artifact(const std::filesystem::path& artifact_dir, const std::string& store_uri);

// What <prefix>/<name>/latest.json names: the published version (one small GET; nothing downloaded).
struct LatestPointer {
    std::string version_id;       // the manifest's artifact_version_id
    std::string artifact_prefix;  // the version's key prefix in the store
    std::string stamp;            // its last component: the version directory a pull makes
};
// Errors: Error(input) when the store has no latest.json for `name` or it lacks a field or names another
// artifact.
LatestPointer read_latest(const std::string& store_uri, const std::string& name);

// Downloads the version latest.json names for `name` into <dest_root>/<name>/<stamp>/ (reused when
// already there with the same version id). Errors: Error(input) for a missing or inconsistent pointer,
// checksum mismatches (nothing is left in dest_root then).
std::filesystem::path pull_artifact(const std::string& store_uri, const std::string& name, const std::filesystem::path& dest_root);

}  // namespace mess
