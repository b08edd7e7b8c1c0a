// mess/catalog.hpp — datasets, metadata tables, the clip index and its splits; CSV files.
//
//   mess::Dataset ds = mess::Dataset::open("data", "smd");          // or Dataset::folder(root, dir, "mine")
//   for (const mess::Track& t : ds.tracks()) ...                      // sorted; ids are file stems
//   mess::MetadataTable meta = ds.metadata();                         // metadata/smd_metadata.csv or derived
//   mess::ClipIndex idx = mess::build_clip_index(ds, meta, {});       // from the extraction sidecars
//   mess::write_clip_index(ds.clip_index_path(), idx);
//
// Layout under the data root (docs/ARCHITECTURE.md): audio/<dataset>/..., embeddings/<dataset>-emb/ (the
// feature store, mess/features.hpp), proxy_targets/<dataset>/<track>.targets.npz (mess/targets.hpp) with
// proxy_targets/<dataset>/targets_report.json, metadata/<dataset>_metadata.csv,
// metadata/<dataset>_clip_index.csv. A track's windows come from its feature-store sidecar. Dataset is the
// one owner of these paths: writers and readers ask it.
//
// Splits: recordings (never single clips) are assigned train / val / test. The recording ids are sorted,
// shuffled by Fisher–Yates driven by SplitMix64(seed) (j = next() mod (i + 1), i from n-1 down to 1), then
// the first floor(train·n) are train, the next floor(val·n) val, the rest test. Same ids + seed → same
// splits on every machine. MAESTRO keeps its official split (validation → val).
//
// Errors: Error(input) naming the file (and row, column) for malformed CSV/JSON, missing required
// columns, duplicate ids; Error(usage) for an unknown dataset id (listing the known ones) or bad ratios.
// Thread safety: objects are values; functions are reentrant.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mess/db.hpp"
#include "mess/features.hpp"
#include "mess/util.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// CSV (RFC 4180: comma separated, double quotes around fields holding , " or newlines)
// ---------------------------------------------------------------------------------------------

struct CsvTable {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;  // each the size of header
    // Column index by name, or -1.
    int column(const std::string& name) const;
};
CsvTable read_csv(const std::filesystem::path& path);
CsvTable parse_csv(const std::string& text, const std::string& name);
std::string format_csv(const CsvTable& table);
void write_csv(const std::filesystem::path& path, const CsvTable& table);  // atomic

// ---------------------------------------------------------------------------------------------
// Datasets
// ---------------------------------------------------------------------------------------------

// The file extensions treated as audio when listing a folder (lower case, with the dot).
const std::vector<std::string>& audio_extensions();

struct Track {
    std::string track_id;          // file stem unless metadata says otherwise
    std::filesystem::path audio_path;
};

class Dataset {
public:
    // A registered dataset under `data_root`: "smd" (audio/smd/wav-44) or "maestro" (audio/maestro).
    static Dataset open(const std::filesystem::path& data_root, const std::string& id);
    // Any folder of audio, listed recursively, under the dataset id `id`.
    static Dataset folder(const std::filesystem::path& data_root, const std::filesystem::path& audio_dir,
                          const std::string& id);
    static std::vector<std::string> registered_ids();  // {"maestro", "smd"}

    const std::string& id() const { return id_; }
    const std::string& kind() const { return kind_; }  // "smd" | "maestro" | "folder"
    const std::filesystem::path& data_root() const { return root_; }
    const std::filesystem::path& audio_dir() const { return audio_dir_; }
    FeatureStore features() const;                                   // embeddings/<id>-emb
    std::filesystem::path metadata_path() const;                     // metadata/<id>_metadata.csv
    std::filesystem::path clip_index_path() const;                   // metadata/<id>_clip_index.csv
    std::filesystem::path targets_dir() const;                       // proxy_targets/<id>
    std::filesystem::path targets_path(const std::string& track_id) const;  // proxy_targets/<id>/<track>.targets.npz
    std::filesystem::path targets_report_path() const;               // proxy_targets/<id>/targets_report.json

    // Audio files, recursively, sorted by path; a folder named like an audio file is listed too (and not
    // descended into), so that the commands that use it report it rather than skip it silently.
    // Errors: Error(input) when the audio folder is missing or two files share a stem (their track ids
    // would collide).
    std::vector<Track> tracks() const;
    // The metadata table: metadata/<id>_metadata.csv when it exists, else derived from the dataset
    // (SMD names, MAESTRO's maestro-v3.0.0.json/.csv, or one recording per file for folders).
    // Once use_metadata() gave a table (the catalog database's, resolved by the command line), that table.
    class MetadataTable metadata() const;
    void use_metadata(class MetadataTable meta);

private:
    std::string id_, kind_;
    std::filesystem::path root_, audio_dir_;
    std::shared_ptr<const class MetadataTable> metadata_;  // set by use_metadata
};

// ---------------------------------------------------------------------------------------------
// Proxy targets of the old flat layout
// ---------------------------------------------------------------------------------------------
//
// MESS once kept every dataset's targets in one folder, proxy_targets/<track>.targets.npz, with one
// proxy_targets/<dataset>_targets_report.json per dataset that ran `mess targets` there; two datasets
// with a track of the same name shared (overwrote) one file. A flat file does not say which dataset it
// belongs to, so it is never read as a dataset's targets. It is adopted (moved into targets_dir()) only
// when it provably belongs to the dataset: the dataset has a track of that name without a target file,
// and the only report in proxy_targets/ is the dataset's own. Otherwise it is left where it is and the
// targets are computed again.

// proxy_targets/<track>.targets.npz under the dataset's data root (read nothing from it; see above).
std::filesystem::path flat_targets_path(const Dataset& dataset, const std::string& track_id);

struct FlatTargetsMigration {
    std::vector<std::string> moved;  // tracks whose flat file now lies in targets_dir()
    std::vector<std::string> left;   // tracks with a flat file that was not adopted
    std::string why_left;            // why (empty when nothing was left)
};
// Adopts the dataset's flat target files as described above (renames; the dataset's old report is
// removed once no flat target file is left). `track_ids`: the dataset's tracks. Nothing happens when no
// track of the dataset has a flat file and no new one.
// Errors: Error(input) naming the file when a move fails.
FlatTargetsMigration migrate_flat_targets(const Dataset& dataset, const std::vector<std::string>& track_ids);

// ---------------------------------------------------------------------------------------------
// Metadata table: required recording_id, work_id, track_id (non-empty; track_id unique); extra
// columns are kept, written after the required ones in sorted order.
// ---------------------------------------------------------------------------------------------

class MetadataTable {
public:
    struct Row {
        std::string track_id, recording_id, work_id;
        std::map<std::string, std::string> extra;
    };
    MetadataTable() = default;
    explicit MetadataTable(std::vector<Row> rows);  // Errors: duplicate or empty ids

    static MetadataTable read(const std::filesystem::path& path);
    void write(const std::filesystem::path& path) const;  // atomic, sorted by track_id

    const std::vector<Row>& rows() const { return rows_; }
    const Row* find(const std::string& track_id) const;

private:
    std::vector<Row> rows_;
    std::map<std::string, std::size_t> by_track_;
};

// SMD file names: Composer_Catalog-Movement_Take_YYYYMMDD-SMD → composer, work, take, date.
std::optional<MetadataTable::Row> parse_smd_name(const std::string& stem);

// ---------------------------------------------------------------------------------------------
// Clip index
// ---------------------------------------------------------------------------------------------

struct SplitParams {
    double train = 0.8, val = 0.1, test = 0.1;  // must sum to 1
    std::uint64_t seed = 42;
};

// recording id → "train" | "val" | "test" (see the top of this file). Errors: Error(usage) for ratios
// that are negative or do not sum to 1.
std::map<std::string, std::string> assign_splits(std::vector<std::string> recording_ids, const SplitParams& params);

struct Clip {
    std::string clip_id;  // <dataset>:<track_id>:<segment index, 5 digits>
    std::string dataset_id, recording_id, work_id, track_id;
    int segment_idx = 0;
    double start_sec = 0, end_sec = 0;  // the window's true bounds
    std::string split;
    std::string embedding_path;  // segments view, relative to the data root
};
using ClipIndex = std::vector<Clip>;  // sorted by clip_id

std::string make_clip_id(const std::string& dataset, const std::string& track_id, int segment_idx);

// Builds the clip index of every track with a sidecar, using `meta` for recording/work ids (default:
// recording = track, work = "") and MAESTRO's split column when present.
// Errors: Error(input) naming a malformed sidecar.
ClipIndex build_clip_index(const Dataset& dataset, const MetadataTable& meta, const SplitParams& params);
// The clip index as the dataset records it: build_clip_index, with each clip's split taken from
// metadata/<dataset>_clip_index.csv when that file names the clip (it records the --split-seed extraction
// used), so an index and the CSV never disagree. Errors: as build_clip_index and read_clip_index.
ClipIndex recorded_clip_index(const Dataset& dataset, const MetadataTable& meta, const SplitParams& params);
void write_clip_index(const std::filesystem::path& path, const ClipIndex& index);  // atomic CSV
ClipIndex read_clip_index(const std::filesystem::path& path);


// ---------------------------------------------------------------------------------------------
// Datasets in the catalog database (mess/db.hpp)
// ---------------------------------------------------------------------------------------------
//
// The catalog database is the source of a dataset's metadata for every command and the Python module; the
// metadata CSV stays the format a user edits: `import_metadata` puts a table into the catalog and
// `catalog_metadata` takes it out again (what `mess catalog export` writes). A track's composer and title
// are its `composer`/`title` columns, else MAESTRO's canonical_composer/canonical_title.

// The catalog row of a metadata row (free columns in metadata; composer and title as above).
db::TrackRow track_row(const std::string& dataset_id, const MetadataTable::Row& row);
// The dataset's tracks in the catalog as a metadata table (composer/title back as their columns unless
// they came from canonical_*). Errors: Error(input) when the catalog has no track of the dataset.
MetadataTable catalog_metadata(db::CatalogDb& catalog, const std::string& dataset_id);
// The catalog database as the source of the dataset's metadata (what the commands that read metadata call):
// a track the catalog holds has its catalog row (as edited by `mess catalog import`), a track it lacks has
// its CSV (or derived) row and is registered in the catalog, so a dataset never synced is registered on first
// use. Composer and title are always their columns (MAESTRO's canonical ones included: the browser reads
// them). The table becomes what dataset.metadata() returns.
MetadataTable use_catalog_metadata(db::CatalogDb& catalog, Dataset& dataset);
// Upserts the table's rows as the dataset's tracks (registering the dataset). Returns the count.
std::int64_t import_metadata(db::CatalogDb& catalog, const Dataset& dataset, const MetadataTable& meta);
// Replaces the dataset's clips in the catalog (id, track, segment, start, end, split).
void record_clips(db::CatalogDb& catalog, const std::string& dataset_id, const ClipIndex& clips);
// The path as the catalog stores it: relative to the data root when inside it, else as given.
std::string catalog_path(const Dataset& dataset, const std::filesystem::path& path);

}  // namespace mess
