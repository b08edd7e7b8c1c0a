// Layer specs, index records and building indexes from a dataset's feature store.
#include <algorithm>
#include <cctype>
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/npy.hpp"
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
        s.layer = -1;
        return s;
    }
    if (text == "default") {
        s.layer = kModelDefaultLayer;
        return s;
    }
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 4)
        throw_usage("layer spec '{}': expected a layer number, 'flatten' or 'weights:w0,w1,...'", text);
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
        default: return layer == kModelDefaultLayer ? "default" : layer < 0 ? "middle" : std::to_string(layer);
    }
}

std::size_t LayerSpec::dimension(std::size_t layers, std::size_t dim) const { return mode == Mode::flatten ? layers * dim : dim; }

std::vector<float> LayerSpec::apply(const float* stack, std::size_t layers, std::size_t dim) const {
    switch (mode) {
        case Mode::flatten: return std::vector<float>(stack, stack + layers * dim);
        case Mode::weights: {
            if (weights.size() != layers) throw_usage("layer spec has {} weights, the features have {} layers", weights.size(), layers);
            std::vector<float> out(dim, 0.0f), tmp(dim);
            for (std::size_t l = 0; l < layers; ++l) {
                if (weights[l] == 0) continue;
                std::copy(stack + l * dim, stack + (l + 1) * dim, tmp.begin());
                l2_normalize(tmp.data(), dim);
                for (std::size_t j = 0; j < dim; ++j) out[j] += static_cast<float>(weights[l]) * tmp[j];
            }
            return out;
        }
        default: {
            if (layer == kModelDefaultLayer) throw_usage("layer spec 'default' is resolved from the features' sidecars when an index is built");
            const std::size_t l = layer < 0 ? layers / 2 : static_cast<std::size_t>(layer);
            if (l >= layers) throw_usage("layer {} requested, the features have layers 0..{}", layer, layers - 1);
            return std::vector<float>(stack + l * dim, stack + (l + 1) * dim);
        }
    }
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

std::size_t SearchIndex::row_of(const std::string& id) const {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) throw_input("unknown {} id '{}'", kind == IndexKind::track ? "track" : "clip", id);
    return it->second;
}

const std::vector<std::size_t>& SearchIndex::rows_of_track(const std::string& track_id) const {
    auto it = by_track_.find(track_id);
    if (it == by_track_.end()) throw_input("unknown track id '{}'", track_id);
    return it->second;
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

SearchIndex build_index(const Dataset& dataset, const BuildParams& params, std::vector<std::string>* skipped) {
    const MetadataTable meta = dataset.metadata();
    const ClipIndex clips = build_clip_index(dataset, meta, params.splits);  // tracks with a sidecar: true bounds, splits
    std::map<std::string, std::vector<const Clip*>> clips_of;
    for (const auto& c : clips) clips_of[c.track_id].push_back(&c);

    std::vector<IndexRecord> records;
    std::vector<float> vectors;
    std::vector<std::uint16_t> layer_vectors;
    std::size_t layers = 0, dim = 0;
    std::string model = params.model_name;
    std::string device = "cpu";
    std::map<std::string, std::pair<std::size_t, std::string>> precisions;  // precision → (tracks, an example)
    LayerSpec spec = params.layer_spec;
    auto tracks = dataset.tracks();
    std::sort(tracks.begin(), tracks.end(), [](const Track& a, const Track& b) { return a.track_id < b.track_id; });
    std::int64_t done = 0;
    for (const auto& t : tracks) {
        if (params.on_progress) params.on_progress(done++, static_cast<std::int64_t>(tracks.size()));
        auto cit = clips_of.find(t.track_id);
        const fs::path seg = dataset.view_path("segments", t.track_id), agg = dataset.view_path("aggregated", t.track_id);
        const bool use_agg = params.kind == IndexKind::track && fs::exists(agg);
        if (cit == clips_of.end() || (!use_agg && !fs::exists(seg))) {
            if (skipped) skipped->push_back(t.track_id);
            continue;
        }
        const NpyArray view = read_npy(use_agg ? agg : seg);
        const auto& shape = view.shape;
        if (shape.size() != (use_agg ? 2u : 3u))
            throw_input("{}: expected a {}-D view, got {}", (use_agg ? agg : seg).string(), use_agg ? 2 : 3, view.describe());
        const auto L = static_cast<std::size_t>(shape[shape.size() - 2]), D = static_cast<std::size_t>(shape.back());
        if (records.empty()) {
            layers = L;
            dim = D;
        } else if (L != layers || D != dim) {
            throw_input("track {}: features are {} layers × {}, earlier tracks {} × {}", t.track_id, L, D, layers, dim);
        }
        {
            const auto side = nlohmann::json::parse(read_file(dataset.sidecar_path(t.track_id)), nullptr, false);
            const std::string prec = side.is_object() ? side.value("precision", std::string("fp32")) : std::string("fp32");
            auto& seen = precisions[prec];
            if (seen.first++ == 0) seen.second = t.track_id;
            if (records.empty()) device = side.is_object() ? side.value("device", std::string("cpu")) : std::string("cpu");
            if (side.is_object() && model.empty()) model = side.value("model", std::string());
            if (records.empty() && spec.mode == LayerSpec::Mode::layer && spec.layer == kModelDefaultLayer) {
                // The model's recommended layer (sidecar model_config.default_layer), else the middle one.
                const auto cfg = side.is_object() ? side.value("model_config", nlohmann::json::object()) : nlohmann::json::object();
                const int d = cfg.is_object() ? cfg.value("default_layer", -1) : -1;
                spec.layer = d >= 0 && static_cast<std::size_t>(d) < L ? d : static_cast<int>(L / 2);
            }
        }
        const auto f = view.to_float32();
        const std::vector<const Clip*>& cl = cit->second;
        auto base = [&](const Clip& c) {
            IndexRecord r;
            r.dataset_id = dataset.id();
            r.track_id = t.track_id;
            r.recording_id = c.recording_id;
            r.work_id = c.work_id;
            r.split = c.split;
            if (const auto* row = meta.find(t.track_id)) r.metadata = row->extra;
            return r;
        };
        if (params.kind == IndexKind::track) {
            std::vector<float> stack(L * D);
            if (use_agg) {
                std::copy(f.begin(), f.end(), stack.begin());
            } else {
                const std::size_t s = static_cast<std::size_t>(shape[0]);
                std::vector<double> acc(L * D, 0.0);
                for (std::size_t i = 0; i < s; ++i)
                    for (std::size_t j = 0; j < L * D; ++j) acc[j] += f[i * L * D + j];
                for (std::size_t j = 0; j < L * D; ++j) stack[j] = static_cast<float>(acc[j] / static_cast<double>(s));
            }
            IndexRecord r = base(*cl.front());
            r.id = t.track_id;
            r.end_sec = cl.back()->end_sec;
            records.push_back(std::move(r));
            const auto v = spec.apply(stack.data(), L, D);
            vectors.insert(vectors.end(), v.begin(), v.end());
            if (params.keep_layers) append_layers(layer_vectors, stack.data(), L, D);
        } else {
            const std::size_t s = static_cast<std::size_t>(shape[0]);
            if (s != cl.size()) throw_input("track {}: segments view has {} windows, its sidecar {}", t.track_id, s, cl.size());
            for (std::size_t i = 0; i < s; ++i) {
                IndexRecord r = base(*cl[i]);
                r.id = cl[i]->clip_id;
                r.segment_idx = cl[i]->segment_idx;
                r.start_sec = cl[i]->start_sec;
                r.end_sec = cl[i]->end_sec;
                records.push_back(std::move(r));
                const float* stack = f.data() + i * L * D;
                const auto v = spec.apply(stack, L, D);
                vectors.insert(vectors.end(), v.begin(), v.end());
                if (params.keep_layers) append_layers(layer_vectors, stack, L, D);
            }
        }
    }
    if (records.empty()) throw_input("dataset {}: no track has extracted features (run mess extract)", dataset.id());
    if (precisions.size() > 1) {
        std::string mix;
        for (const auto& [prec, seen] : precisions) mix += fmt::format("{}{} ({} tracks, e.g. {})", mix.empty() ? "" : " and ", prec, seen.first, seen.second);
        throw_input("dataset {}: features were extracted in different precisions: {}; re-extract with one --precision and --force",
                    dataset.id(), mix);
    }
    const std::size_t vdim = spec.dimension(layers, dim);
    SearchIndex idx = build_index_from_vectors(params.kind, std::move(records), std::move(vectors), vdim, params.factory,
                                               std::move(layer_vectors), params.keep_layers ? layers : 0,
                                               params.keep_layers ? dim : 0);
    idx.dataset = dataset.id();
    idx.model_name = model;
    idx.precision = precisions.empty() ? "fp32" : precisions.begin()->first;
    idx.device = device;
    idx.layer_spec = spec;
    if (params.on_progress) params.on_progress(done, static_cast<std::int64_t>(tracks.size()));
    return idx;
}

}  // namespace mess
