// Feature store paths, the completeness rule, and view reading.
#include "mess/features.hpp"

namespace mess {
namespace fs = std::filesystem;

const char* to_string(View view) {
    switch (view) {
        case View::raw: return "raw";
        case View::segments: return "segments";
        case View::aggregated: return "aggregated";
    }
    return "?";
}

View parse_view(const std::string& text) {
    if (text == "raw") return View::raw;
    if (text == "segments") return View::segments;
    if (text == "aggregated") return View::aggregated;
    throw_usage("unknown view '{}' (raw | segments | aggregated)", text);
}

FeatureLevel parse_feature_level(const std::string& text) {
    if (text == "all") return FeatureLevel::all;
    if (text == "segments") return FeatureLevel::segments;
    if (text == "aggregated") return FeatureLevel::aggregated;
    throw_usage("unknown feature level '{}' (all | segments | aggregated)", text);
}

std::vector<View> views_of(FeatureLevel level) {
    switch (level) {
        case FeatureLevel::all: return {View::raw, View::segments, View::aggregated};
        case FeatureLevel::segments: return {View::segments, View::aggregated};
        case FeatureLevel::aggregated: return {View::aggregated};
    }
    return {};
}

std::string describe_views(FeatureLevel level) {
    std::string out;
    for (View v : views_of(level)) out += (out.empty() ? "" : "+") + std::string(to_string(v));
    return out;
}

FeatureStore::FeatureStore(fs::path root, fs::path data_root) : root_(std::move(root)), data_root_(std::move(data_root)) {}

FeatureStore FeatureStore::of(const fs::path& data_root, const std::string& dataset_id) {
    return FeatureStore(data_root / "embeddings" / (dataset_id + "-emb"), data_root);
}

fs::path FeatureStore::view_path(View view, const std::string& track_id) const {
    return root_ / to_string(view) / (track_id + ".npy");
}
fs::path FeatureStore::sidecar_path(const std::string& track_id) const { return root_ / "meta" / (track_id + ".json"); }
fs::path FeatureStore::structure_path(const std::string& track_id) const { return root_ / "structure" / (track_id + ".json"); }
fs::path FeatureStore::lock_path(const std::string& track_id) const { return root_ / ".locks" / (track_id + ".lock"); }

void FeatureStore::create() const {
    std::error_code ec;
    for (const char* dir : {"raw", "segments", "aggregated", "meta", ".locks"}) {
        fs::create_directories(root_ / dir, ec);
        if (ec) throw_input("{}: cannot create the feature store: {}", (root_ / dir).string(), ec.message());
    }
}

bool FeatureStore::has_sidecar(const std::string& track_id) const {
    std::error_code ec;
    return fs::exists(sidecar_path(track_id), ec);
}

Sidecar FeatureStore::read_sidecar(const std::string& track_id) const {
    const fs::path path = sidecar_path(track_id);
    Sidecar side = Sidecar::parse(read_file(path), path.string());
    if (side.track_id.empty()) side.track_id = track_id;
    return side;
}

std::optional<Sidecar> FeatureStore::try_read_sidecar(const std::string& track_id) const {
    if (!has_sidecar(track_id)) return std::nullopt;
    try {
        return read_sidecar(track_id);
    } catch (const Error&) {
        return std::nullopt;  // unreadable: not extracted, recompute
    }
}

void FeatureStore::write_sidecar(Sidecar sidecar) const {
    if (!data_root_.empty() && !sidecar.audio_path.empty()) {
        const fs::path audio = fs::absolute(sidecar.audio_path).lexically_normal();
        const fs::path rel = audio.lexically_relative(fs::absolute(data_root_).lexically_normal());
        sidecar.audio_path = !rel.empty() && *rel.begin() != ".." ? rel : audio;
    }
    write_file_atomic(sidecar_path(sidecar.track_id), sidecar.to_json_text());
}

fs::path FeatureStore::audio_path(const Sidecar& sidecar) const {
    if (sidecar.audio_path.empty() || sidecar.audio_path.is_absolute() || data_root_.empty()) return sidecar.audio_path;
    return data_root_ / sidecar.audio_path;
}

bool FeatureStore::has_view(View view, const std::string& track_id) const {
    std::error_code ec;
    return fs::exists(view_path(view, track_id), ec);
}

namespace {

std::size_t view_rank(View view) { return view == View::raw ? 4 : view == View::segments ? 3 : 2; }

// Why a listed view file is not intact (empty when it is): its header and length (read_npy_header), rank,
// dtype, window count, and [L, D] against `layers_dims` (set by the first view checked).
std::string view_problem(const fs::path& path, View view, const Sidecar& side, std::vector<std::int64_t>& layers_dims) {
    NpyHeader h;
    try {
        h = read_npy_header(path);
    } catch (const Error& e) {
        return e.what();
    }
    const DType want = view == View::raw && side.raw_dtype == "float16" ? DType::f16 : DType::f32;
    if (h.shape.size() != view_rank(view) || h.dtype != want)
        return fmt::format("{}: expected a {}-D {} view, got {}", path.string(), view_rank(view), dtype_name(want), h.describe());
    if (view != View::aggregated && h.shape[0] != side.num_windows)
        return fmt::format("{}: {} windows, the sidecar records {}", path.string(), h.shape[0], side.num_windows);
    const std::vector<std::int64_t> ld = {h.shape[h.shape.size() == 4 ? 1 : h.shape.size() - 2], h.shape.back()};
    if (layers_dims.empty()) layers_dims = ld;
    else if (ld != layers_dims)
        return fmt::format("{}: {} layers × {} dims, the other views have {} × {}", path.string(), ld[0], ld[1], layers_dims[0],
                           layers_dims[1]);
    return {};
}

}  // namespace

const char* to_string(TrackState state) {
    switch (state) {
        case TrackState::missing: return "missing";
        case TrackState::complete: return "complete";
        case TrackState::corrupt: return "corrupt";
        case TrackState::source_changed: return "source changed";
    }
    return "?";
}

TrackCheck FeatureStore::check_track(const std::string& track_id, FeatureLevel level, const std::optional<FileStamp>& audio) const {
    if (!has_sidecar(track_id)) return {TrackState::missing, {}};
    Sidecar side;
    try {
        side = read_sidecar(track_id);
    } catch (const Error& e) {
        return {TrackState::corrupt, e.what()};
    }
    for (View v : views_of(level))
        if (!side.has_view(v)) return {TrackState::missing, {}};  // extracted at a lower level
    if (audio && side.audio_stamp && *audio != *side.audio_stamp)
        return {TrackState::source_changed,
                fmt::format("{}: {} since extraction", audio_path(side).string(), describe_change(*side.audio_stamp, *audio))};
    std::vector<std::int64_t> layers_dims;
    for (View v : views_of(level))
        if (std::string why = view_problem(view_path(v, track_id), v, side, layers_dims); !why.empty())
            return {TrackState::corrupt, why};
    return {TrackState::complete, {}};
}

bool FeatureStore::is_complete(const std::string& track_id, FeatureLevel level) const {
    return check_track(track_id, level).state == TrackState::complete;
}

NpyArray FeatureStore::read_view(View view, const std::string& track_id) const {
    const fs::path path = view_path(view, track_id);
    NpyArray a = read_npy(path);
    const std::size_t rank = view_rank(view);
    if (a.shape.size() != rank) throw_input("{}: expected a {}-D view, got {}", path.string(), rank, a.describe());
    return a;
}

}  // namespace mess
