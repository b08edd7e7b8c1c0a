// manifest.json text → mess::load_artifact over a small valid artifact (Flat index of 2 × 4, records,
// float16 layer vectors), then the manifest's resolved aspects (LoadedArtifact::aspects, i.e.
// resolved_aspect_from_json) and their layer weights, as make_searcher and aspect queries use them.
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "mess/artifacts.hpp"
#include "mess/npy.hpp"

namespace {

namespace fs = std::filesystem;

// The artifact directory with every file but manifest.json; returns checksums.json's entries for them.
nlohmann::json make_artifact(const fs::path& dir) {
    fs::create_directories(dir);
    const std::vector<float> v = {1, 0, 0, 0, 0, 1, 0, 0};
    mess::VectorIndex::build(v, 2, 4, "Flat").write(dir / "index.faiss");
    nlohmann::json records = nlohmann::json::array();
    for (const char* id : {"a", "b"})
        records.push_back({{"id", id}, {"dataset_id", "d"}, {"track_id", id}, {"recording_id", id}, {"work_id", "w"}, {"split", "train"},
                           {"duration_sec", 10.0}, {"metadata", {{"composer", "x"}}}});
    const std::string gz = mess::gzip_compress(records.dump());
    mess_fuzz::write_scratch("artifact/records.json.gz", gz);
    std::vector<float> layers(2 * 3 * 4, 0.5f);
    mess::write_npy(dir / "layers.npy", mess::NpyArray::float16_from(layers, {2, 3, 4}));
    nlohmann::json sums = nlohmann::json::object();
    for (const char* f : {"index.faiss", "records.json.gz", "layers.npy"})
        sums[f] = {{"size", static_cast<std::int64_t>(fs::file_size(dir / f))}, {"sha256", ""}};
    return sums;
}

const int kQuiet = mess_fuzz::quiet();

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const fs::path dir = mess_fuzz::scratch_dir() / "artifact";
    static const nlohmann::json base_sums = make_artifact(dir);
    const auto manifest = mess_fuzz::write_scratch("artifact/manifest.json", mess_fuzz::as_text(data, size));
    nlohmann::json sums = base_sums;
    sums["manifest.json"] = {{"size", static_cast<std::int64_t>(size)}, {"sha256", ""}};
    mess_fuzz::write_scratch("artifact/checksums.json", sums.dump());
    mess_fuzz::guarded([&] {
        const mess::LoadedArtifact a = mess::load_artifact(dir, /*verify_checksums=*/false);
        const std::size_t layers = a.index.has_layers() ? a.index.layers : 13;
        for (const auto& aspect : a.aspects())
            mess_fuzz::guarded([&] { (void)mess::aspect_layer_weights(a.aspects(), {{aspect.name, 1.0}}, layers, 0.0, true); });
    });
    return 0;
}
