// Structure file of index artifacts: each indexed track's structure (sections, keys, climax, cadences).
#include <map>

#include "mess/artifacts.hpp"
#include "mess/audio.hpp"
#include "mess/structure.hpp"
#include "track_files.hpp"

namespace mess {
namespace fs = std::filesystem;

namespace {

// The track's stored structure (FeatureStore::structure_path) when it is at least as new as its audio and
// reads; otherwise analysed from the audio now.
Structure track_structure(const FeatureStore& store, const std::string& id, const fs::path& audio, bool* computed) {
    const fs::path stored = store.structure_path(id);
    std::error_code ec1, ec2;
    const auto stored_time = fs::last_write_time(stored, ec1), audio_time = fs::last_write_time(audio, ec2);
    if (!ec1 && (ec2 || stored_time >= audio_time)) {
        try {
            return read_structure_file(stored);
        } catch (const Error&) {  // damaged: analysed again below
        }
    }
    *computed = true;
    return analyze_structure(load_audio(audio));
}

}  // namespace

std::string build_structures(const Dataset& dataset, const std::vector<std::string>& track_ids, StructureBuildReport* report,
                             const std::function<void(std::int64_t, std::int64_t)>& on_progress) {
    const FeatureStore store = dataset.features();
    auto entry = [&](const std::string& id, const fs::path& audio) {
        bool computed = false;
        nlohmann::json j = structure_to_json(track_structure(store, id, audio, &computed));
        if (report) ++(computed ? report->analysed : report->stored);
        return j;
    };
    auto skip = [&](const std::string& why) { if (report) report->skipped.push_back(why); };
    return build_track_file(dataset, track_ids, kStructureSchema, entry, skip, on_progress);
}

std::shared_ptr<const std::map<std::string, Structure>> read_structures(const fs::path& artifact_dir) {
    const fs::path p = artifact_dir / kStructureFile;
    if (!fs::exists(p)) return nullptr;
    const auto j = nlohmann::json::parse(gzip_decompress(read_file(p), p.string()), nullptr, false);
    if (j.is_discarded() || !j.is_object() || j.value("schema", std::string()) != kStructureSchema || !j.contains("tracks") ||
        !j["tracks"].is_object())
        throw_input("{}: not a structure file ({})", p.string(), kStructureSchema);
    auto out = std::make_shared<std::map<std::string, Structure>>();
    for (const auto& [id, s] : j["tracks"].items()) {
        try {
            out->emplace(id, structure_from_json(s));
        } catch (const Error& e) {
            throw_input("{}: track '{}': {}", p.string(), id, e.what());
        }
    }
    return out;
}

}  // namespace mess
