// One call from a dataset's feature store to a complete index artifact; the search service over one.
#include <limits>

#include "mess/artifacts.hpp"

namespace mess {
namespace fs = std::filesystem;

std::vector<ResolvedAspect> LoadedArtifact::aspects() const {
    std::vector<ResolvedAspect> out;
    for (const auto& j : manifest.value("aspects", nlohmann::json::array())) {
        try {
            out.push_back(resolved_aspect_from_json(j));
        } catch (const nlohmann::json::exception& e) {
            throw_input("{}: malformed aspect in manifest.json: {}", dir.string(), e.what());
        } catch (const Error& e) {
            throw_input("{}: malformed aspect in manifest.json: {}", dir.string(), e.what());
        }
    }
    return out;
}

Searcher make_searcher(std::shared_ptr<const LoadedArtifact> artifact, const std::string& model_override) {
    std::vector<ResolvedAspect> aspects = artifact->aspects();
    std::shared_ptr<const SearchIndex> index(artifact, &artifact->index);  // shares the artifact's lifetime
    return Searcher(std::move(index), std::move(aspects), model_override);
}

namespace {

// Every aspect the probing results resolve, whatever its R² (queries decide what they accept).
nlohmann::json resolved_aspects(const fs::path& results) {
    AspectParams all;
    all.min_r2 = -std::numeric_limits<double>::infinity();
    nlohmann::json aspects = nlohmann::json::array();
    for (const auto& a : resolve_aspects(read_discovery_results(results), all)) aspects.push_back(a.to_json());
    return aspects;
}

std::vector<std::string> indexed_tracks(const SearchIndex& idx) {
    std::vector<std::string> ids;
    for (const auto& r : idx.records)
        if (ids.empty() || ids.back() != r.track_id) ids.push_back(r.track_id);
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    return ids;
}

}  // namespace

ArtifactBuildReport build_artifact(const Dataset& dataset, const ArtifactBuildParams& params) {
    ArtifactBuildReport report;
    BuildParams index_params = params.index;
    // A compressed index's float16 rows are streamed beside the artifacts, so that writing one links them.
    if (index_params.scratch_dir.empty()) index_params.scratch_dir = params.root;
    const SearchIndex idx = build_index(dataset, index_params, &report.skipped_tracks);
    nlohmann::json extra = {{"feature_source_dir", dataset.features().root().string()}, {"skipped_tracks", report.skipped_tracks}};
    extra.update(params.extra_manifest);
    const fs::path results = params.probing_results.empty()
                                 ? default_results_path(dataset.data_root(), dataset.id(), ProbeLevel::track)
                                 : params.probing_results;
    if (fs::exists(results)) {
        extra["aspects"] = resolved_aspects(results);
        extra["probing_results"] = results.string();
    } else if (!params.probing_results.empty()) {
        throw_input("no probing results at {}", results.string());
    }
    std::map<std::string, std::string> files;
    if (params.media) files[kMediaFile] = build_media(dataset, indexed_tracks(idx), &report.no_media, params.on_media_progress);
    const std::string name = params.name.empty() ? std::string(to_string(params.index.kind)) + "_index" : params.name;
    report.dir = write_artifact(idx, params.root, name, extra, files);
    report.rows = idx.size();
    report.dimension = idx.index.dimension();
    return report;
}

}  // namespace mess
