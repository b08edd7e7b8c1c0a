// The catalog database in the `mess` command line: opening it, the run registry's record of a command, and
// the dataset ⇄ catalog operations (sync, metadata import and export, clips). Internal to apps/mess.
//
// The dataset ⇄ catalog operations that the Python module shares (import, export, first use) are the
// catalog module's (mess/catalog.hpp); `sync_dataset` (which reads audio headers) is here.
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

}  // namespace mess::cli
