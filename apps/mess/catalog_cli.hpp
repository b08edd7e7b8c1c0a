// The catalog database in the `mess` command line: opening it, the run registry's record of a command, and
// the dataset ⇄ catalog operations (sync, metadata import and export, clips). Internal to apps/mess.
//
// The metadata CSV stays the format a user edits: `import_metadata` puts a table into the catalog and
// `catalog_metadata` takes it out again (what `mess catalog export` writes). A track's composer and title
// are its `composer`/`title` columns, else MAESTRO's canonical_composer/canonical_title.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli.hpp"
#include "mess/catalog.hpp"
#include "mess/db.hpp"

namespace mess::cli {

// Remembers argv (passwords in URLs hidden) as the command line the run registry records.
void set_command_line(int argc, char** argv);
const std::string& command_line();

// The catalog database of the invocation (--catalog, MESS_CATALOG, else <data root>/catalog.sqlite).
std::unique_ptr<db::CatalogDb> open_catalog(const Context& ctx);

// One run in the registry for the life of a command: recorded as running when made, finished by finish(),
// or as failed when destroyed unfinished (an exception stopped the command).
class RunRecord {
public:
    RunRecord(const Context& ctx, std::string kind, const nlohmann::json& parameters);
    ~RunRecord();
    RunRecord(const RunRecord&) = delete;
    RunRecord& operator=(const RunRecord&) = delete;
    const std::string& id() const { return id_; }
    db::CatalogDb& catalog() { return *catalog_; }
    void add_output(const std::filesystem::path& path) { outputs_.push_back(path.string()); }
    // Ends the run: "ok", or "failed" with `error` (a command that reports failed items).
    void finish(const nlohmann::json& metrics, const std::string& status = "ok", const std::string& error = "");

private:
    std::unique_ptr<db::CatalogDb> catalog_;
    std::string id_;
    nlohmann::json outputs_ = nlohmann::json::array();
    bool finished_ = false;
};

void register_catalog(CLI::App& app, Context& ctx);
void register_runs(CLI::App& app, Context& ctx);

// ---- dataset ⇄ catalog ----

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

struct SyncParams {
    // Each audio file's SHA-256 in hex (reads every byte); empty = not computed.
    std::function<std::string(const std::filesystem::path&)> hasher{};
};
struct SyncReport {
    std::int64_t tracks = 0, removed = 0, files = 0;
    std::vector<std::string> problems;  // "file: why" for audio files whose header could not be read
};
// Registers the dataset, its tracks (from `meta`) and their audio files (size, header's duration and rate,
// optional SHA-256; paths relative to the data root when inside it), and removes the dataset's tracks that
// are gone, in one transaction. Unreadable headers are registered with duration 0 and reported.
SyncReport sync_dataset(db::CatalogDb& catalog, const Dataset& dataset, const MetadataTable& meta,
                        const SyncParams& params = {});
// Upserts the table's rows as the dataset's tracks (registering the dataset). Returns the count.
std::int64_t import_metadata(db::CatalogDb& catalog, const Dataset& dataset, const MetadataTable& meta);
// Replaces the dataset's clips in the catalog (id, track, segment, start, end, split).
void record_clips(db::CatalogDb& catalog, const std::string& dataset_id, const ClipIndex& clips);
// The path as the catalog stores it: relative to the data root when inside it, else as given.
std::string catalog_path(const Dataset& dataset, const std::filesystem::path& path);

}  // namespace mess::cli
