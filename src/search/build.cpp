// Layer specs, index records and building indexes from a dataset's feature store.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "mess/features.hpp"
#include "mess/npy.hpp"
#include <unistd.h>

#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {
namespace fs = std::filesystem;

const char* to_string(IndexKind kind) { return kind == IndexKind::track ? "track" : "clip"; }
IndexKind parse_index_kind(const std::string& text) {
    if (text == "track") return IndexKind::track;
    if (text == "clip") return IndexKind::clip;
    throw_usage("unknown index kind '{}' (expected track or clip)", text);
}

// ---------------------------------------------------------------------------------------------
// LayerSpec
// ---------------------------------------------------------------------------------------------

LayerSpec LayerSpec::parse(const std::string& text) {
    LayerSpec s;
    if (text == "flatten") {
        s.mode = Mode::flatten;
        return s;
    }
    if (text.starts_with("weights:")) {
        s.mode = Mode::weights;
        for (const std::string& item : split(std::string_view(text).substr(8), ',')) {
            char* end = nullptr;
            const double w = std::strtod(item.c_str(), &end);
            if (item.empty() || *end != '\0' || !std::isfinite(w) || w < 0) throw_usage("layer weights '{}': '{}' is not a weight ≥ 0", text, item);
            s.weights.push_back(w);
        }
        double sum = 0;
        for (double w : s.weights) sum += w;
        if (sum <= 0) throw_usage("layer weights '{}' sum to zero", text);
        return s;
    }
    if (text == "middle") {
        s.mode = Mode::middle;
        return s;
    }
    if (text == "default") {
        s.mode = Mode::model_default;
        return s;
    }
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 4)
        throw_usage("layer spec '{}': expected a layer number, 'flatten' or 'weights:w0,w1,...'", text);
    s.mode = Mode::layer;
    s.layer = std::stoi(text);
    return s;
}

std::string LayerSpec::to_string() const {
    switch (mode) {
        case Mode::flatten: return "flatten";
        case Mode::weights: {
            std::string out = "weights:";
            for (std::size_t i = 0; i < weights.size(); ++i) out += (i ? "," : "") + fmt::format("{:g}", weights[i]);
            return out;
        }
        case Mode::middle: return "middle";
        case Mode::model_default: return "default";
        case Mode::layer: break;
    }
    return std::to_string(layer);
}

std::size_t LayerSpec::dimension(std::size_t layers, std::size_t dim) const { return mode == Mode::flatten ? layers * dim : dim; }

std::vector<float> LayerSpec::apply(const float* stack, std::size_t layers, std::size_t dim) const {
    switch (mode) {
        case Mode::flatten: return std::vector<float>(stack, stack + layers * dim);
        case Mode::weights: {
            if (weights.size() != layers) throw_usage("layer spec has {} weights, the features have {} layers", weights.size(), layers);
            std::vector<float> out(dim);
            fuse_layers(stack, layers, dim, weights, out.data());
            return out;
        }
        case Mode::model_default:
            throw_usage("layer spec 'default' is resolved from the features' sidecars when an index is built");
        case Mode::middle:
        case Mode::layer: break;
    }
    const std::size_t l = mode == Mode::middle ? layers / 2 : static_cast<std::size_t>(layer);
    if (l >= layers) throw_usage("layer {} requested, the features have layers 0..{}", layer, layers - 1);
    return std::vector<float>(stack + l * dim, stack + (l + 1) * dim);
}

// ---------------------------------------------------------------------------------------------
// Records and lookup
// ---------------------------------------------------------------------------------------------

std::string IndexRecord::field(const std::string& key) const {
    if (key == "id") return id;
    if (key == "dataset" || key == "dataset_id") return dataset_id;
    if (key == "track" || key == "track_id") return track_id;
    if (key == "recording" || key == "recording_id") return recording_id;
    if (key == "work" || key == "work_id") return work_id;
    if (key == "split") return split;
    auto it = metadata.find(key);
    return it == metadata.end() ? std::string() : it->second;
}

void SearchIndex::rebuild_lookup() {
    by_id_.clear();
    by_track_.clear();
    for (std::size_t r = 0; r < records.size(); ++r) {
        if (!by_id_.emplace(records[r].id, r).second) throw_input("index has two rows with id '{}'", records[r].id);
        by_track_[records[r].track_id].push_back(r);
    }
    for (auto& [t, rows] : by_track_)
        std::sort(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) { return records[a].start_sec < records[b].start_sec; });
}

namespace {

// Levenshtein distance, case-insensitive (ids are short: O(|a|·|b|) is fine).
std::size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) == std::tolower(static_cast<unsigned char>(b[j - 1]));
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
        }
        std::swap(prev, cur);
    }
    return prev[b.size()];
}

// " (closest: a, b, c)": the known ids nearest to `id` (an id containing it, or within a few edits).
template <class Map>
std::string closest_ids(const Map& known, const std::string& id) {
    std::vector<std::pair<std::size_t, std::string>> ranked;
    const std::string lower = to_lower(id);
    for (const auto& [k, v] : known) {
        const std::size_t d = to_lower(k).find(lower) != std::string::npos ? 0 : edit_distance(k, id);
        if (d <= std::max<std::size_t>(3, id.size() / 3)) ranked.emplace_back(d, k);
    }
    std::sort(ranked.begin(), ranked.end());
    std::string out;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, ranked.size()); ++i) out += (i ? ", " : " (closest: ") + ranked[i].second;
    return out.empty() ? out : out + ")";
}

}  // namespace

std::size_t SearchIndex::row_of(const std::string& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) throw_input("unknown {} id '{}'{}", kind == IndexKind::track ? "track" : "clip", id, closest_ids(by_id_, id));
    return it->second;
}

const std::vector<std::size_t>& SearchIndex::rows_of_track(const std::string& track_id) const {
    auto it = by_track_.find(track_id);
    if (it == by_track_.end()) throw_input("unknown track id '{}'{}", track_id, closest_ids(by_track_, track_id));
    return it->second;
}

std::size_t SearchIndex::nearest_row(const std::string& track_id, double start_sec) const {
    const auto& rows = rows_of_track(track_id);
    return *std::min_element(rows.begin(), rows.end(), [&](std::size_t a, std::size_t b) {
        return std::abs(records[a].start_sec - start_sec) < std::abs(records[b].start_sec - start_sec);
    });
}

// ---------------------------------------------------------------------------------------------
// Building
// ---------------------------------------------------------------------------------------------

namespace {

// Appends each layer of a [L, D] stack, L2-normalised, as float16.
void append_layers(std::vector<std::uint16_t>& out, const float* stack, std::size_t layers, std::size_t dim) {
    std::vector<float> tmp(dim);
    for (std::size_t l = 0; l < layers; ++l) {
        std::copy(stack + l * dim, stack + (l + 1) * dim, tmp.begin());
        l2_normalize(tmp.data(), dim);
        for (float v : tmp) out.push_back(float_to_half(v));
    }
}

}  // namespace

SearchIndex build_index_from_vectors(IndexKind kind, std::vector<IndexRecord> records, std::vector<float> vectors, std::size_t dim,
                                     const std::string& factory, std::vector<std::uint16_t> layer_vectors, std::size_t layers,
                                     std::size_t layer_dim) {
    const std::size_t n = records.size();
    if (!layer_vectors.empty() && layer_vectors.size() != n * layers * layer_dim)
        throw_usage("layer vectors hold {} values, expected {} × {} × {}", layer_vectors.size(), n, layers, layer_dim);
    SearchIndex idx;
    idx.kind = kind;
    idx.records = std::move(records);
    idx.index = VectorIndex::build(std::move(vectors), n, dim, factory);
    idx.layer_vectors = std::move(layer_vectors);
    idx.layers = layers;
    idx.layer_dim = layer_dim;
    if (!idx.records.empty()) idx.dataset = idx.records.front().dataset_id;
    idx.rebuild_lookup();
    return idx;
}

namespace {

// Builds an index track by track from the feature store: one record and vector per track (track index) or
// per window (clip index), in track-id order.
class IndexBuilder {
public:
    IndexBuilder(const Dataset& dataset, const BuildParams& params)
        : dataset_(dataset), params_(params), store_(dataset.features()), meta_(dataset.metadata()),
          clips_(recorded_clip_index(dataset, meta_, params.splits)), spec_(params.layer_spec), model_(params.model_name) {
        for (const auto& c : clips_) clips_of_[c.track_id].push_back(&c);
    }

    SearchIndex build(std::vector<std::string>* skipped) {
        auto tracks = dataset_.tracks();
        if (params_.track_filter)
            std::erase_if(tracks, [&](const Track& t) { return !params_.track_filter(t.track_id); });
        std::sort(tracks.begin(), tracks.end(), [](const Track& a, const Track& b) { return a.track_id < b.track_id; });
        const auto total = static_cast<std::int64_t>(tracks.size());
        type_ = resolve_index_type(params_.index_type, params_.kind == IndexKind::track ? tracks.size() : clips_.size());
        std::int64_t done = 0;
        for (const auto& t : tracks) {
            if (params_.on_progress) params_.on_progress(done++, total);
            if (!add_track(t.track_id) && skipped) skipped->push_back(t.track_id);
        }
        check_complete();
        SearchIndex idx = half_ ? compressed_index() : build_index_from_vectors(params_.kind, std::move(records_), std::move(vectors_), spec_.dimension(layers_, dim_),
                                                   params_.factory, std::move(layer_vectors_), keep_layers() ? layers_ : 0,
                                                   keep_layers() ? dim_ : 0);
        idx.dataset = dataset_.id();
        idx.model_name = model_;
        idx.precision = precisions_.empty() ? "fp32" : precisions_.begin()->first;
        idx.device = device_;
        idx.layer_spec = spec_;
        if (aspects_) {
            idx.aspect_spaces.models = std::move(*aspects_);
            idx.aspect_spaces.stack_layers = layers_;
            idx.aspect_spaces.vectors = std::move(aspect_vectors_);
        }
        if (params_.on_progress) params_.on_progress(done, total);
        return idx;
    }

private:
    bool keep_layers() const { return params_.keep_layers && type_ == "flat"; }

    // The compressed index over the streamed float16 rows (the scratch file goes with the index).
    SearchIndex compressed_index() {
        CompressedParams cp;
        cp.factory = compressed_factory(type_, records_.size(), spec_.dimension(layers_, dim_), params_.nlist);
        cp.rerank = params_.rerank;
        SearchIndex idx;
        idx.kind = params_.kind;
        idx.records = std::move(records_);
        idx.index = VectorIndex::build_compressed(half_->finish(/*remove_on_close=*/true), cp);
        half_.reset();
        if (!idx.records.empty()) idx.dataset = idx.records.front().dataset_id;
        idx.rebuild_lookup();
        return idx;
    }

    // False when the track has no features (no sidecar, or not the view this index needs).
    bool add_track(const std::string& track_id) {
        const auto cit = clips_of_.find(track_id);
        const bool use_agg = params_.kind == IndexKind::track && store_.has_view(View::aggregated, track_id);
        if (cit == clips_of_.end() || (!use_agg && !store_.has_view(View::segments, track_id))) return false;
        const NpyArray view = store_.read_view(use_agg ? View::aggregated : View::segments, track_id);
        const auto& shape = view.shape;
        check_shape(track_id, static_cast<std::size_t>(shape[shape.size() - 2]), static_cast<std::size_t>(shape.back()));
        note_sidecar(store_.read_sidecar(track_id));
        const auto f = view.to_float32();
        if (first_non_finite(f) < f.size())
            throw_input("track {}: {} holds non-finite values (NaN or infinity); re-extract it (mess extract --force)", track_id,
                        store_.view_path(use_agg ? View::aggregated : View::segments, track_id).string());
        if (params_.kind == IndexKind::track) add_track_row(track_id, cit->second, f, use_agg ? 1 : shape[0]);
        else add_clip_rows(track_id, cit->second, f, static_cast<std::size_t>(shape[0]));
        return true;
    }

    void check_shape(const std::string& track_id, std::size_t L, std::size_t D) {
        if (records_.empty()) {
            layers_ = L;
            dim_ = D;
        } else if (L != layers_ || D != dim_) {
            throw_input("track {}: features are {} layers × {}, earlier tracks {} × {}", track_id, L, D, layers_, dim_);
        }
    }

    // Precision, device and model from the sidecars; the 'default' layer spec resolved from the first one.
    void note_sidecar(const Sidecar& side) {
        auto& seen = precisions_[side.precision];
        if (seen.first++ == 0) seen.second = side.track_id;
        if (records_.empty()) device_ = side.device;
        if (model_.empty()) model_ = side.model;
        if (records_.empty() && params_.aspect_models) {
            aspects_ = params_.aspect_models(model_);
            aspects_digest_ = aspects_ ? aspect_set_digest(*aspects_) : std::vector<float>{};
        }
        check_aspect_features(aspects_digest_, side);
        if (records_.empty() && spec_.mode == LayerSpec::Mode::model_default) {
            // The model's recommended layer (sidecar model_config.default_layer), else the middle one.
            const int d = side.model_config.default_layer;
            spec_.mode = LayerSpec::Mode::layer;
            spec_.layer = d >= 0 && static_cast<std::size_t>(d) < layers_ ? d : static_cast<int>(layers_ / 2);
        }
    }

    IndexRecord record_of(const std::string& track_id, const Clip& c) const {
        IndexRecord r;
        r.dataset_id = dataset_.id();
        r.track_id = track_id;
        r.recording_id = c.recording_id;
        r.work_id = c.work_id;
        r.split = c.split;
        if (const auto* row = meta_.find(track_id)) r.metadata = row->extra;
        return r;
    }

    void add_vector(const float* stack) {
        const auto v = spec_.apply(stack, layers_, dim_);
        if (type_ != "flat") {  // compressed: streamed to the float16 file, nothing kept in memory
            if (!half_) half_ = std::make_unique<HalfRowsWriter>(scratch_path(), v.size());
            half_->append(v.data(), 1);
            return;
        }
        vectors_.insert(vectors_.end(), v.begin(), v.end());
        if (params_.keep_layers) append_layers(layer_vectors_, stack, layers_, dim_);
        if (!aspects_) return;
        const std::vector<float> x = aspects_->input_of(stack, layers_, dim_);
        for (const auto& [name, model] : aspects_->aspects) {
            const auto y = model.apply_normalised(x.data(), 1);
            aspect_vectors_[name].insert(aspect_vectors_[name].end(), y.begin(), y.end());
        }
    }

    std::filesystem::path scratch_path() const {
        const auto dir = params_.scratch_dir.empty() ? std::filesystem::temp_directory_path() : params_.scratch_dir;
        std::filesystem::create_directories(dir);
        return dir / fmt::format(".mess-rows-{}-{}.npy", ::getpid(), reinterpret_cast<std::uintptr_t>(this));
    }

    // One row per track: its aggregated stack, or the mean of its segments (accumulated in double).
    void add_track_row(const std::string& track_id, const std::vector<const Clip*>& clips, const std::vector<float>& f, std::int64_t windows) {
        std::vector<float> stack(layers_ * dim_);
        mean_of_rows(f.data(), windows, static_cast<std::int64_t>(stack.size()), stack.data());
        IndexRecord r = record_of(track_id, *clips.front());
        r.id = track_id;
        r.end_sec = clips.back()->end_sec;
        records_.push_back(std::move(r));
        add_vector(stack.data());
    }

    void add_clip_rows(const std::string& track_id, const std::vector<const Clip*>& clips, const std::vector<float>& f, std::size_t windows) {
        if (windows != clips.size()) throw_input("track {}: segments view has {} windows, its sidecar {}", track_id, windows, clips.size());
        for (std::size_t i = 0; i < windows; ++i) {
            IndexRecord r = record_of(track_id, *clips[i]);
            r.id = clips[i]->clip_id;
            r.segment_idx = clips[i]->segment_idx;
            r.start_sec = clips[i]->start_sec;
            r.end_sec = clips[i]->end_sec;
            records_.push_back(std::move(r));
            add_vector(f.data() + i * layers_ * dim_);
        }
    }

    void check_complete() const {
        if (records_.empty()) throw_input("dataset {}: no track has extracted features (run mess extract)", dataset_.id());
        if (precisions_.size() <= 1) return;
        std::string mix;
        for (const auto& [prec, seen] : precisions_) mix += fmt::format("{}{} ({} tracks, e.g. {})", mix.empty() ? "" : " and ", prec, seen.first, seen.second);
        throw_input("dataset {}: features were extracted in different precisions: {}; re-extract with one --precision and --force",
                    dataset_.id(), mix);
    }

    const Dataset& dataset_;
    const BuildParams& params_;
    const FeatureStore store_;
    const MetadataTable meta_;
    const ClipIndex clips_;  // tracks with a sidecar: true bounds; the dataset's recorded splits
    std::map<std::string, std::vector<const Clip*>> clips_of_;
    LayerSpec spec_;
    std::string model_, device_ = "cpu";
    std::map<std::string, std::pair<std::size_t, std::string>> precisions_;  // precision → (tracks, an example)
    std::vector<IndexRecord> records_;
    std::vector<float> vectors_;
    std::string type_ = "flat";                // resolved index type
    std::unique_ptr<HalfRowsWriter> half_;     // compressed: the rows so far
    std::vector<std::uint16_t> layer_vectors_;
    std::size_t layers_ = 0, dim_ = 0;
    std::optional<AspectSet> aspects_;                         // learned aspect models (params_.aspect_models)
    std::vector<float> aspects_digest_;                        // their encoder build's digest (empty: not recorded)
    std::map<std::string, std::vector<float>> aspect_vectors_;  // aspect → [rows, out_dim]
};

}  // namespace

SearchIndex build_index(const Dataset& dataset, const BuildParams& params, std::vector<std::string>* skipped) {
    return IndexBuilder(dataset, params).build(skipped);
}

}  // namespace mess
