// The search service: one workflow from a request to ranked hits, for every front end.
#include <algorithm>
#include <cmath>

#include <fmt/ranges.h>
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
        if (!result.hits[i].aspect_scores.empty()) h["aspects"] = result.hits[i].aspect_scores;
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

std::vector<std::string> Searcher::learned_aspects() const {
    std::vector<std::string> out;
    for (const auto& [name, v] : index_->aspect_spaces.vectors) out.push_back(name);
    return out;
}

// The learned aspect weights of a request (unlike: negative), or empty when its aspects are probed ones.
std::map<std::string, double> Searcher::learned_weights(const SearchRequest& r) const {
    const AspectSpaces& sp = index_->aspect_spaces;
    std::vector<std::string> learned, probed;
    for (const auto& [name, w] : r.aspects) (sp.has(name) ? learned : probed).push_back(name);
    for (const auto& [name, w] : r.unlike) {
        if (!sp.has(name))
            throw_usage("unlike '{}': this index has no learned aspect space of that name (learned: {})", name, fmt::join(learned_aspects(), ", "));
        if (!(w > 0) || !std::isfinite(w)) throw_usage("unlike '{}': the weight must be > 0, got {}", name, w);
    }
    // Learned spaces rank only when every named aspect has one; otherwise the probed layers (as before).
    if (!probed.empty() && !r.unlike.empty())
        throw_usage("unlike needs learned aspect spaces for every aspect of the query; {} has none", fmt::join(probed, ", "));
    if (!probed.empty()) return {};
    std::map<std::string, double> out = r.aspects;
    for (const auto& [name, w] : r.unlike) out[name] -= w;
    return out;
}

void Searcher::check_aspects(const SearchRequest& r) const {
    if (learned_weights(r).empty() && !r.aspects.empty()) layer_weights(r.aspects, r.min_r2, r.scale_by_r2);
    for (const auto& [name, sign] : more_less(r)) {
        const auto& models = index_->aspect_spaces.models.aspects;
        if (!models.contains(name) || models.at(name).direction.empty())
            throw_usage("more/less {}: this index has no learned direction for it", name);
    }
}

// The request's more/less constraints, its words included. Errors: Error(usage) for unknown words.
std::map<std::string, int> Searcher::more_less(const SearchRequest& r) const {
    std::map<std::string, int> out = r.more_less;
    for (const auto& [name, sign] : out)
        if (sign != 1 && sign != -1) throw_usage("more/less {}: the sign must be +1 or -1, got {}", name, sign);
    if (r.text.empty()) return out;
    const TextQuery t = parse_text_query(r.text);
    if (!t.unknown.empty()) {
        std::string known;
        for (const auto& [w, a] : text_vocabulary()) known += (known.empty() ? "" : ", ") + w;
        throw_usage("unknown words in '{}': {} (known: {})", r.text, fmt::join(t.unknown, ", "), known);
    }
    for (const auto& [name, sign] : t.more_less)
        if (const auto [at, fresh] = out.emplace(name, sign); !fresh && at->second != sign)
            throw_usage("the text asks for {} {} and the request for the opposite", sign > 0 ? "more" : "less", name);
    return out;
}

std::shared_ptr<const Encoder> Searcher::encoder() const {
    std::lock_guard lock(encoder_slot_->mutex);
    if (!encoder_slot_->encoder) encoder_slot_->encoder = open_index_encoder(*index_, model_override_);
    return encoder_slot_->encoder;
}

std::vector<float> Searcher::audio_query(const SearchRequest& r, bool want_stack) const {
    const auto enc = r.encoder ? r.encoder : encoder();
    const std::vector<float> stack = embed_query_stack(*enc, *r.audio, r.start_sec.value_or(0.0), index_->kind, std::max(1, r.threads));
    const auto L = static_cast<std::size_t>(enc->info().layers), D = stack.size() / L;
    std::vector<float> query = !want_stack ? index_->layer_spec.apply(stack.data(), L, D) : stack;
    const AspectSpaces& sp = index_->aspect_spaces;
    const std::size_t stack_size = sp.empty() ? index_->layers * index_->layer_dim : sp.stack_layers * sp.models.layer_dim;
    if (query.size() != (!want_stack ? index_->index.dimension() : stack_size))
        throw Error(ErrorKind::internal, fmt::format("the model '{}' gives vectors of another size than the index's", enc->info().name));
    return query;
}

// The request's options as search() ranks by them; fills out's layer weights and learned aspects.
QueryOptions Searcher::query_options(const SearchRequest& r, SearchResult& out) const {
    if ((!r.aspects.empty() || !r.unlike.empty()) && !r.layer_weights.empty()) throw_usage("give aspects or layer weights, not both");
    out.kind = index_->kind;
    out.learned_aspects = learned_weights(r);
    if (!r.aspects.empty() && out.learned_aspects.empty()) out.layer_weights = layer_weights(r.aspects, r.min_r2, r.scale_by_r2);
    if (!r.layer_weights.empty()) out.layer_weights = r.layer_weights;
    QueryOptions q = r.options;
    q.layer_weights = out.layer_weights;
    q.learned_aspects = out.learned_aspects;
    q.more_less = more_less(r);
    return q;
}

ShardQuery Searcher::shard_query(const SearchRequest& r) const {
    const int sources = !r.track_id.empty() + !r.clip_id.empty() + r.audio.has_value() + !r.vector.empty();
    if (sources != 1 || r.shard_query) throw_usage("a shard query needs exactly one query: a track id, a clip id, audio or a vector");
    const SearchIndex& idx = *index_;
    SearchResult unused;
    const QueryOptions q = query_options(r, unused);
    const bool stack = !q.layer_weights.empty() || !q.learned_aspects.empty();
    if (r.audio || !r.vector.empty()) return shard_query_of(idx, std::nullopt, r.audio ? audio_query(r, stack) : r.vector, q);
    if (idx.kind == IndexKind::track) {
        if (!r.clip_id.empty() || r.start_sec) throw_usage("this is a track index: query it with a track id (passages need a clip index)");
        return shard_query_of(idx, idx.row_of(r.track_id), {}, q);
    }
    if (r.role) {
        if (const auto window = role_query_window(r)) {
            ShardQuery out = shard_query_of(idx, window->first, {}, q);
            out.moment = window->second;
            return out;
        }
    }
    if (!r.clip_id.empty()) return shard_query_of(idx, idx.row_of(r.clip_id), {}, q);
    return shard_query_of(idx, idx.nearest_row(r.track_id, std::max(0.0, r.start_sec.value_or(0.0))), {}, q);
}

SearchResult Searcher::search(const SearchRequest& r) const {
    const int sources = !r.track_id.empty() + !r.clip_id.empty() + r.audio.has_value() + !r.vector.empty() + (r.shard_query != nullptr);
    if (sources != 1) throw_usage("give exactly one query: a track id (with a start for passages), a clip id, audio or a vector");
    const SearchIndex& idx = *index_;
    SearchResult out;
    const QueryOptions q = query_options(r, out);
    PassageQuery pq;
    pq.group_by_track = r.group_by_track;
    pq.dedupe_sec = r.dedupe_sec;
    pq.options = q;
    if (!r.vector.empty()) check_query_vector(r.vector);
    check_filters(r.options.filters);
    if (r.rerank) {
        if (r.role) throw_usage("give a role or a reranking of tracks, not both (a role search ranks passages)");
        if (r.shard_query) throw_usage("a shard query cannot rerank tracks from passages (every shard's passages decide the candidates)");
        if (r.context != 0) throw_usage("give a context for passages or a reranking of tracks, not both");
        out.hits = rerank_tracks(r, q);
        return out;
    }
    if (r.context != 0) {
        if (r.context < 0 || r.context > 20) throw_usage("context must be 0..20 windows on each side, got {}", r.context);
        if (r.role || r.shard_query || r.audio || !r.vector.empty())
            throw_usage("context scores passages of the index by their neighbours: query a window of the index (clip id, or track id and start), without a role");
        out.hits = context_passages(r, q);
        return out;
    }
    if (r.role) {
        pq.clip_id = r.clip_id;
        pq.track_id = r.track_id;
        role_search(r, pq, out);
    } else if (r.shard_query) {
        out.hits = search_shard_query(idx, *r.shard_query, q, idx.kind == IndexKind::clip ? &pq : nullptr);
    } else if (r.audio || !r.vector.empty()) {
        out.hits = search_vector(idx, r.audio ? audio_query(r, !q.layer_weights.empty() || !q.learned_aspects.empty()) : r.vector, q, idx.kind == IndexKind::clip ? &pq : nullptr);
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
