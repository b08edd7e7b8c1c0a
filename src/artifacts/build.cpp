// One call from a dataset's feature store to a complete index artifact; the search service over one.
#include <limits>

#include "mess/artifacts.hpp"
#include "mess/model.hpp"

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

// The aspect models an index build applies (ArtifactBuildParams::aspect_models), checked against the encoder.
std::optional<AspectSet> pick_aspect_models(const ArtifactBuildParams& params, const std::string& model, ArtifactBuildReport& report) {
    const bool given = !params.aspect_models.empty();
    const auto dir = given ? std::optional<fs::path>(params.aspect_models)
                           : (params.default_aspect_models ? default_aspect_models_dir(model) : std::nullopt);
    if (!dir) return std::nullopt;
    try {
        AspectSet set = load_aspect_set(*dir);
        if (is_builtin_encoder(model)) check_aspect_encoder(set, *open_encoder(model), dir->string());
        else if (set.encoder != model)
            throw_input("{}: aspect models trained on encoder '{}', the features are from '{}'", dir->string(), set.encoder, model);
        report.aspect_models = *dir;
        return set;
    } catch (const Error& e) {
        if (given) throw;
        report.aspect_models_refused = e.what();
        return std::nullopt;
    }
}

}  // namespace

ArtifactBuildReport build_artifact(const Dataset& dataset, const ArtifactBuildParams& params) {
    ArtifactBuildReport report;
    BuildParams index_params = params.index;
    if (!index_params.aspect_models)
        index_params.aspect_models = [&](const std::string& model) { return pick_aspect_models(params, model, report); };
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
    if (params.structure) {
        files[kStructureFile] = build_structures(dataset, indexed_tracks(idx), &report.structure, params.on_structure_progress);
        extra["structure"] = {{"file", kStructureFile}, {"schema", kStructureSchema}, {"stored", report.structure.stored},
                              {"analysed", report.structure.analysed}, {"skipped", report.structure.skipped}};
    }
    const std::string name = params.name.empty() ? std::string(to_string(params.index.kind)) + "_index" : params.name;
    report.dir = write_artifact(idx, params.root, name, extra, files);
    report.rows = idx.size();
    report.dimension = idx.index.dimension();
    return report;
}

}  // namespace mess
