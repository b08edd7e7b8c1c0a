// Internal to artifacts: the per-track files of an index artifact (media.json.gz, structure.json.gz) share
// one shape, {"schema", "dataset", "tracks": {track id: entry}}, gzipped, and one way of being built.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mess/catalog.hpp"

namespace mess {

// The entry of one track from its audio file; throws Error when the track cannot be described.
using TrackEntryFn = std::function<nlohmann::json(const std::string& track_id, const std::filesystem::path& audio)>;

// Builds the gzipped file for `track_ids` of `dataset`. A track with no audio file in the dataset, or whose
// entry throws Error, is left out and passed to on_skip as "id: reason"; on_progress(done, total) after each.
std::string build_track_file(const Dataset& dataset, const std::vector<std::string>& track_ids, const std::string& schema,
                             const TrackEntryFn& entry_of, const std::function<void(const std::string&)>& on_skip,
                             const std::function<void(std::int64_t, std::int64_t)>& on_progress);

}  // namespace mess
