// The catalog database as the source of a dataset's metadata (mess/catalog.hpp, "Datasets in the catalog
// database"): what the `mess` commands and the Python module share.
#include <map>

#include <spdlog/spdlog.h>

#include "mess/catalog.hpp"

namespace mess {
namespace fs = std::filesystem;

std::string catalog_path(const Dataset& dataset, const fs::path& path) {
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(dataset.data_root(), ec), full = fs::weakly_canonical(path, ec);
    const fs::path rel = full.lexically_relative(root);
    if (!ec && !rel.empty() && *rel.begin() != "..") return rel.generic_string();
    return path.generic_string();
}

db::TrackRow track_row(const std::string& dataset_id, const MetadataTable::Row& row) {
    db::TrackRow t{.dataset_id = dataset_id, .track_id = row.track_id, .recording_id = row.recording_id,
                   .work_id = row.work_id, .metadata = row.extra};
    auto take = [&](const char* own, const char* canonical) {
        if (auto it = t.metadata.find(own); it != t.metadata.end()) {
            std::string v = it->second;
            t.metadata.erase(it);  // stored as its own column, given back by catalog_metadata
            return v;
        }
        auto it = t.metadata.find(canonical);
        return it == t.metadata.end() ? std::string() : it->second;
    };
    t.composer = take("composer", "canonical_composer");
    t.title = take("title", "canonical_title");
    return t;
}

namespace {

// A catalog track as a metadata row; `columns`: composer and title as their columns even when they came
// from canonical_* (an export leaves those out, so that it reads back the same).
MetadataTable::Row metadata_row(const db::TrackRow& t, bool columns) {
    MetadataTable::Row r{t.track_id, t.recording_id, t.work_id, t.metadata};
    if (!t.composer.empty() && (columns || !r.extra.contains("canonical_composer"))) r.extra["composer"] = t.composer;
    if (!t.title.empty() && (columns || !r.extra.contains("canonical_title"))) r.extra["title"] = t.title;
    return r;
}

}  // namespace

MetadataTable catalog_metadata(db::CatalogDb& catalog, const std::string& dataset_id) {
    std::vector<MetadataTable::Row> rows;
    for (const db::TrackRow& t : catalog.tracks(dataset_id)) rows.push_back(metadata_row(t, false));
    if (rows.empty()) throw_input("catalog {}: no tracks of dataset '{}' (run mess catalog sync first)",
                                  db::redact_url(catalog.url()), dataset_id);
    return MetadataTable(std::move(rows));
}

std::int64_t import_metadata(db::CatalogDb& catalog, const Dataset& dataset, const MetadataTable& meta) {
    std::vector<db::TrackRow> rows;
    for (const auto& r : meta.rows()) rows.push_back(track_row(dataset.id(), r));
    catalog.transaction([&] {
        catalog.upsert_dataset({dataset.id(), dataset.kind(), catalog_path(dataset, dataset.audio_dir())});
        catalog.upsert_tracks(rows);
    });
    return static_cast<std::int64_t>(rows.size());
}

MetadataTable use_catalog_metadata(db::CatalogDb& catalog, Dataset& dataset) {
    const MetadataTable file = dataset.metadata();
    std::map<std::string, db::TrackRow> held;
    for (db::TrackRow& t : catalog.tracks(dataset.id())) held.emplace(t.track_id, std::move(t));
    std::vector<MetadataTable::Row> rows, missing;
    for (const MetadataTable::Row& r : file.rows()) {
        const auto it = held.find(r.track_id);
        if (it == held.end()) missing.push_back(r);
        rows.push_back(it == held.end() ? r : metadata_row(it->second, true));
    }
    if (!missing.empty()) {
        spdlog::info("catalog {}: registering {} track(s) of dataset {} from {}", db::redact_url(catalog.url()), missing.size(),
                     dataset.id(), std::filesystem::exists(dataset.metadata_path()) ? dataset.metadata_path().string() : "its files");
        import_metadata(catalog, dataset, MetadataTable(std::move(missing)));
    }
    MetadataTable meta(std::move(rows));
    dataset.use_metadata(meta);
    return meta;
}

void record_clips(db::CatalogDb& catalog, const std::string& dataset_id, const ClipIndex& clips) {
    std::vector<db::ClipRow> rows;
    rows.reserve(clips.size());
    for (const Clip& c : clips)
        rows.push_back({.clip_id = c.clip_id, .dataset_id = dataset_id, .track_id = c.track_id, .segment_idx = c.segment_idx,
                        .start_s = c.start_sec, .end_s = c.end_sec, .split = c.split});
    catalog.replace_clips(dataset_id, rows);
}

}  // namespace mess
