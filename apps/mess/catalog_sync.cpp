#include "catalog_cli.hpp"
#include "mess/audio.hpp"

namespace mess::cli {
namespace fs = std::filesystem;

SyncReport sync_dataset(db::CatalogDb& catalog, const Dataset& dataset, const MetadataTable& meta, const SyncParams& params) {
    SyncReport report;
    std::vector<db::AudioFileRow> files;
    std::vector<std::string> keep;
    for (const Track& t : dataset.tracks()) {
        db::AudioFileRow f{.dataset_id = dataset.id(), .track_id = t.track_id, .path = catalog_path(dataset, t.audio_path)};
        std::error_code ec;
        f.size = static_cast<std::int64_t>(fs::file_size(t.audio_path, ec));
        try {
            const AudioInfo info = probe_audio(t.audio_path);
            f.duration_s = info.duration_sec();
            f.sample_rate = info.sample_rate;
            if (params.hasher) f.sha256 = params.hasher(t.audio_path);
        } catch (const Error& e) {
            report.problems.push_back(e.what());
        }
        files.push_back(std::move(f));
        keep.push_back(t.track_id);
    }
    catalog.transaction([&] {
        report.tracks = import_metadata(catalog, dataset, meta);
        report.removed = catalog.remove_tracks_except(dataset.id(), keep);
        catalog.upsert_audio_files(files);
    });
    report.files = static_cast<std::int64_t>(files.size());
    return report;
}

}  // namespace mess::cli
