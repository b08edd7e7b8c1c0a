// The search service: one workflow from a request to ranked hits, for every front end.
#include <algorithm>
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/model.hpp"
#include "mess/search.hpp"

namespace mess {

nlohmann::json hits_to_json(const SearchResult& result) {
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < result.hits.size(); ++i) {
        const IndexRecord& r = *result.hits[i].record;
        nlohmann::json h = {{"rank", i + 1},          {"score", result.hits[i].score}, {"id", r.id},
                            {"track_id", r.track_id}, {"dataset_id", r.dataset_id},    {"recording_id", r.recording_id},
                            {"work_id", r.work_id},   {"split", r.split},              {"metadata", r.metadata}};
        if (result.kind == IndexKind::clip) {
            h["start_sec"] = r.start_sec;
            h["end_sec"] = r.end_sec;
            h["segment_idx"] = r.segment_idx;
        }
        if (result.role && i < result.hit_moments.size()) h["role"] = role_moment_to_json(*result.role, result.hit_moments[i]);
        out.push_back(std::move(h));
    }
    return out;
}

namespace {

void check_query_vector(const std::vector<float>& v) {
    if (first_non_finite(v) < v.size())
        throw_input("the query vector holds non-finite values (NaN or infinity)");
    if (std::all_of(v.begin(), v.end(), [](float x) { return x == 0.0f; }))
        throw_input("the query vector is zero: every score would be the same");
}

}  // namespace

Searcher::Searcher(std::shared_ptr<const SearchIndex> index, std::vector<ResolvedAspect> aspects, std::string model_override)
    : index_(std::move(index)), aspects_(std::move(aspects)), model_override_(std::move(model_override)) {
    if (!index_) throw_usage("a searcher needs an index");
    filter_keys_ = {"id", "dataset", "dataset_id", "track", "track_id", "recording", "recording_id", "work", "work_id", "split"};
    for (const auto& r : index_->records)
        for (const auto& [key, value] : r.metadata) filter_keys_.insert(key);
}

void Searcher::check_filters(const std::vector<Filter>& filters) const {
    for (const auto& f : filters)
        if (!filter_keys_.contains(f.key)) {
            std::string known;
            for (const auto& k : filter_keys_) known += (known.empty() ? "" : ", ") + k;
            throw_usage("unknown filter column '{}' (known: {})", f.key, known);
        }
}

std::vector<double> Searcher::layer_weights(const std::map<std::string, double>& aspects, double min_r2, bool scale_by_r2) const {
    if (aspects_.empty() || !index_->has_layers())
        throw_usage("this index has no resolved aspects: run mess probe on its dataset, then rebuild the index");
    return aspect_layer_weights(aspects_, aspects, index_->layers, min_r2, scale_by_r2);
}

std::shared_ptr<const Encoder> Searcher::encoder() const {
    std::lock_guard lock(encoder_slot_->mutex);
    if (!encoder_slot_->encoder) encoder_slot_->encoder = open_index_encoder(*index_, model_override_);
    return encoder_slot_->encoder;
}

std::vector<float> Searcher::audio_query(const SearchRequest& r, const std::vector<double>& weights) const {
    const auto enc = r.encoder ? r.encoder : encoder();
    const std::vector<float> stack = embed_query_stack(*enc, *r.audio, r.start_sec.value_or(0.0), index_->kind, std::max(1, r.threads));
    const auto L = static_cast<std::size_t>(enc->info().layers), D = stack.size() / L;
    std::vector<float> query = weights.empty() ? index_->layer_spec.apply(stack.data(), L, D) : stack;
    if (query.size() != (weights.empty() ? index_->index.dimension() : index_->layers * index_->layer_dim))
        throw Error(ErrorKind::internal, fmt::format("the model '{}' gives vectors of another size than the index's", enc->info().name));
    return query;
}

SearchResult Searcher::search(const SearchRequest& r) const {
    const int sources = !r.track_id.empty() + !r.clip_id.empty() + r.audio.has_value() + !r.vector.empty();
    if (sources != 1) throw_usage("give exactly one query: a track id (with a start for passages), a clip id, audio or a vector");
    const SearchIndex& idx = *index_;
    SearchResult out;
    out.kind = idx.kind;
    if (!r.aspects.empty() && !r.layer_weights.empty()) throw_usage("give aspects or layer weights, not both");
    if (!r.aspects.empty()) out.layer_weights = layer_weights(r.aspects, r.min_r2, r.scale_by_r2);
    if (!r.layer_weights.empty()) out.layer_weights = r.layer_weights;
    QueryOptions q = r.options;
    q.layer_weights = out.layer_weights;
    PassageQuery pq;
    pq.group_by_track = r.group_by_track;
    pq.dedupe_sec = r.dedupe_sec;
    pq.options = q;
    if (!r.vector.empty()) check_query_vector(r.vector);
    check_filters(r.options.filters);
    if (r.role) {
        pq.clip_id = r.clip_id;
        pq.track_id = r.track_id;
        role_search(r, pq, out);
    } else if (r.audio || !r.vector.empty()) {
        out.hits = search_vector(idx, r.audio ? audio_query(r, out.layer_weights) : r.vector, q, idx.kind == IndexKind::clip ? &pq : nullptr);
    } else if (idx.kind == IndexKind::track) {
        if (!r.clip_id.empty() || r.start_sec) throw_usage("this is a track index: query it with a track id (passages need a clip index)");
        out.hits = similar_tracks(idx, r.track_id, q);
    } else {
        pq.clip_id = r.clip_id;
        pq.track_id = r.track_id;
        pq.start_sec = std::max(0.0, r.start_sec.value_or(0.0));
        out.hits = similar_passages(idx, pq);
    }
    return out;
}

}  // namespace mess
