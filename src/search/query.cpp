// Queries: similar tracks, similar passages (exclusion of the query's neighbourhood, de-duplication,
// grouping), outside vectors, metadata filters and aspect-weighted fusion.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <mutex>
#include <optional>
#include <tuple>

#include "mess/features.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

Filter Filter::parse(const std::string& text) {
    const auto eq = text.find('=');
    if (eq == std::string::npos || eq == 0) throw_usage("filter '{}': expected key=value", text);
    return {text.substr(0, eq), text.substr(eq + 1)};
}

SameScope parse_same_scope(const std::string& text) {
    if (text.empty() || text == "none") return SameScope::none;
    if (text == "track") return SameScope::track;
    if (text == "recording") return SameScope::recording;
    if (text == "work") return SameScope::work;
    throw_usage("exclude_same must be track, recording or work, got '{}'", text);
}

const char* to_string(SameScope scope) {
    switch (scope) {
        case SameScope::track: return "track";
        case SameScope::recording: return "recording";
        case SameScope::work: return "work";
        default: return "";
    }
}

struct FusionCache {
    struct Entry {
        const std::uint16_t* source;  // the layer vectors fused (a copied index that changed them never matches)
        std::vector<double> weights;
        std::shared_ptr<const std::vector<float>> fused;
    };
    std::mutex mutex;
    std::vector<Entry> entries;  // most recent last
};

std::shared_ptr<FusionCache> make_fusion_cache() { return std::make_shared<FusionCache>(); }

std::shared_ptr<const std::vector<float>> SearchIndex::fused_vectors(const std::vector<double>& w) const {
    if (!has_layers()) throw_usage("this index was built without per-layer vectors: aspect search needs them (index build --keep-layers)");
    if (w.size() != layers) throw_usage("{} layer weights given, the index has {} layers", w.size(), layers);
    FusionCache& cache = *fusion_cache_;
    {
        std::lock_guard lock(cache.mutex);
        for (const auto& e : cache.entries)
            if (e.source == layer_vectors.data() && e.weights == w) return e.fused;
    }
    const std::size_t n = size();
    auto fused = std::make_shared<std::vector<float>>(n * layer_dim, 0.0f);
    for (std::size_t r = 0; r < n; ++r)
        fuse_normalised_layers(layer_vectors.data() + r * layers * layer_dim, layers, layer_dim, w, fused->data() + r * layer_dim);
    std::lock_guard lock(cache.mutex);
    cache.entries.push_back({layer_vectors.data(), w, fused});
    if (cache.entries.size() > 8) cache.entries.erase(cache.entries.begin());
    return fused;
}

namespace {

void check_options(const QueryOptions& o) {
    if (o.k == 0) throw_usage("k must be at least 1");
}

bool passes(const IndexRecord& r, const IndexRecord* query, const QueryOptions& o) {
    for (const auto& f : o.filters)
        if (to_lower(r.field(f.key)) != to_lower(f.value)) return false;
    if (query && o.exclude_same != SameScope::none) {
        const std::string v = query->field(to_string(o.exclude_same));
        if (!v.empty() && r.field(to_string(o.exclude_same)) == v) return false;
    }
    return true;
}

// The ranked candidate source for one query: the index (approximate or exact), an exact scan over fused
// aspect vectors, or an exact scan of the weighted learned aspect similarities.
struct Ranker {
    const SearchIndex& idx;
    const QueryOptions& opt;
    std::vector<float> query;                        // normalised, in the space of `rows`
    std::shared_ptr<const std::vector<float>> fused; // set for aspect search
    std::optional<std::size_t> row;                 // the query is this row's own vector
    std::map<std::string, std::vector<float>> aspect_query;  // the query in each learned aspect space
    std::vector<float> learned;                      // [N] scores by learned aspects (opt.learned_aspects)
    struct Direction {
        const AspectModel* model;
        int sign;
        double query;  // the query's predicted amount
    };
    std::vector<Direction> directions;               // opt.more_less

    // The row's predicted amount passes every more/less constraint.
    bool in_direction(std::size_t r) const {
        for (const auto& d : directions)
            if (!(d.sign * (d.model->predict(idx.aspect_spaces.row(d.model->name, r)) - d.query) > 0)) return false;
        return true;
    }

    float aspect_score(const std::string& aspect, std::size_t r) const {
        const std::vector<float>& q = aspect_query.at(aspect);
        const float* v = idx.aspect_spaces.row(aspect, r);
        double s = 0;
        for (std::size_t j = 0; j < q.size(); ++j) s += double(q[j]) * v[j];
        return static_cast<float>(s);
    }

    std::vector<std::pair<std::int64_t, float>> top(std::size_t fetch) const {
        if (!learned.empty()) return exact_top_k(learned.data(), learned.size(), 1, std::vector<float>{1.0f}.data(), fetch);
        if (fused) return exact_top_k(fused->data(), idx.size(), idx.layer_dim, query.data(), fetch);
        if (const NeighbourLists* nl = idx.neighbours.get();
            row && nl && nl->n == idx.size() && std::min(fetch, nl->n) <= nl->k && (opt.exact || idx.index.is_exact())) {
            const std::size_t take = std::min(fetch, nl->k), at = *row * nl->k;
            std::vector<std::pair<std::int64_t, float>> out(take);
            for (std::size_t j = 0; j < take; ++j) out[j] = {nl->rows[at + j], nl->scores[at + j]};
            return out;
        }
        return idx.index.search(query.data(), fetch, opt.search, opt.exact);
    }
};

// The query in every learned aspect space: a row's stored vectors, or a raw [L, D] stack mapped by the
// models; none for a vector in the index's own space.
void set_aspect_query(Ranker& r, const std::vector<float>& vec_or_stack) {
    const AspectSpaces& sp = r.idx.aspect_spaces;
    if (sp.empty()) return;
    if (r.row) {
        for (const auto& [name, model] : sp.models.aspects) {
            const float* v = sp.row(name, *r.row);
            r.aspect_query[name].assign(v, v + model.out_dim);
        }
    } else if (vec_or_stack.size() == sp.stack_layers * static_cast<std::size_t>(sp.models.layer_dim)) {
        r.aspect_query = sp.embed(vec_or_stack.data(), vec_or_stack.size());
    }
}

void rank_learned(Ranker& r) {
    double total = 0;
    for (const auto& [name, w] : r.opt.learned_aspects) {
        if (!r.idx.aspect_spaces.has(name)) throw_usage("this index has no learned aspect space '{}'", name);
        if (!r.aspect_query.contains(name))
            throw_usage("learned aspects need a query row or a raw [{} × {}] layer stack", r.idx.aspect_spaces.stack_layers,
                        r.idx.aspect_spaces.models.layer_dim);
        total += std::abs(w);
    }
    if (!(total > 0)) throw_usage("learned aspect weights sum to zero");
    r.learned.assign(r.idx.size(), 0.0f);
    for (std::size_t i = 0; i < r.learned.size(); ++i) {
        double s = 0;
        for (const auto& [name, w] : r.opt.learned_aspects) s += w * r.aspect_score(name, i);
        r.learned[i] = static_cast<float>(s / total);
    }
}

void set_directions(Ranker& r) {
    for (const auto& [name, sign] : r.opt.more_less) {
        const auto it = r.idx.aspect_spaces.models.aspects.find(name);
        if (it == r.idx.aspect_spaces.models.aspects.end() || it->second.direction.empty())
            throw_usage("more/less {}: this index has no learned direction for it (learned aspects with an order: tempo, dynamics, "
                        "articulation)", name);
        if (!r.aspect_query.contains(name)) throw_usage("more/less {} needs a query row or a raw layer stack", name);
        r.directions.push_back({&it->second, sign, it->second.predict(r.aspect_query.at(name).data())});
    }
}

// `aspects`: the query in each learned aspect space, given (a shard query) instead of derived from the row or stack.
Ranker make_ranker(const SearchIndex& idx, const QueryOptions& opt, std::vector<float> vec_or_stack, std::optional<std::size_t> row = {},
                   const std::map<std::string, std::vector<float>>* aspects = nullptr) {
    Ranker r{idx, opt, {}, nullptr, row, {}, {}, {}};
    if (aspects) r.aspect_query = *aspects;
    else set_aspect_query(r, vec_or_stack);
    set_directions(r);
    if (!opt.learned_aspects.empty()) {
        rank_learned(r);
        return r;
    }
    if (!opt.layer_weights.empty()) {
        r.fused = idx.fused_vectors(opt.layer_weights);
        if (vec_or_stack.size() != idx.layers * idx.layer_dim)
            throw_usage("aspect query needs a [{} × {}] layer stack, got {} values", idx.layers, idx.layer_dim, vec_or_stack.size());
        LayerSpec spec;
        spec.mode = LayerSpec::Mode::weights;
        spec.weights = opt.layer_weights;
        r.query = spec.apply(vec_or_stack.data(), idx.layers, idx.layer_dim);
    } else {
        if (vec_or_stack.size() != idx.index.dimension())
            throw_usage("query vector has {} values, the index dimension is {}", vec_or_stack.size(), idx.index.dimension());
        r.query = std::move(vec_or_stack);
    }
    l2_normalize(r.query.data(), r.query.size());
    return r;
}

// The layers of one row as floats [layers, layer_dim] (each normalised when stored).
std::vector<float> row_stack(const SearchIndex& idx, std::size_t row) {
    std::vector<float> out(idx.layers * idx.layer_dim);
    const std::uint16_t* src = idx.layer_vectors.data() + row * idx.layers * idx.layer_dim;
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = half_to_float(src[i]);
    return out;
}

std::vector<float> row_query(const SearchIndex& idx, std::size_t row, const QueryOptions& opt) {
    if (!opt.learned_aspects.empty()) return {};  // the row's own aspect vectors (set_aspect_query)
    if (!opt.layer_weights.empty()) {
        if (!idx.has_layers()) throw_usage("this index was built without per-layer vectors: aspect search needs them");
        return row_stack(idx, row);
    }
    return idx.index.row_vector(row);
}

// Walks ranked candidates until k hits pass; widens the fetch when too many were rejected.
std::vector<Hit> collect(const SearchIndex& idx, const Ranker& ranker, std::size_t first_fetch, const QueryOptions& opt,
                         const IndexRecord* query, const PassageQuery* passages,
                         const std::function<bool(std::size_t)>& excluded) {
    const std::size_t n = idx.size();
    std::size_t fetch = std::min(n, std::max<std::size_t>(first_fetch, opt.k));
    const double dedupe = passages ? (passages->dedupe_sec >= 0 ? passages->dedupe_sec : idx.window_sec) : 0.0;
    while (true) {
        std::vector<Hit> hits;
        std::map<std::string, std::vector<const Hit*>> by_track;
        for (const auto& [row64, score] : ranker.top(fetch)) {
            const auto row = static_cast<std::size_t>(row64);
            const IndexRecord& rec = idx.records[row];
            if (excluded(row) || (opt.allowed_rows && !(*opt.allowed_rows)[row]) || !passes(rec, query, opt) || !ranker.in_direction(row)) continue;
            if (passages && idx.kind == IndexKind::clip) {
                const auto& same = by_track[rec.track_id];
                if (passages->group_by_track && !same.empty()) continue;
                if (std::any_of(same.begin(), same.end(), [&](const Hit* h) { return std::abs(h->record->start_sec - rec.start_sec) < dedupe; }))
                    continue;
            }
            hits.push_back({row, &rec, score, {}});
            for (const auto& [name, q] : ranker.aspect_query) hits.back().aspect_scores[name] = ranker.aspect_score(name, row);
            if (hits.size() == opt.k) break;
            hits.reserve(opt.k);  // stable addresses for by_track
            by_track[rec.track_id].push_back(&hits.back());
        }
        if (hits.size() == opt.k || fetch >= n) return hits;
        fetch = std::min(n, fetch * 4);
    }
}

}  // namespace

std::vector<Hit> similar_tracks(const SearchIndex& index, const std::string& track_id, const QueryOptions& options) {
    check_options(options);
    if (index.kind != IndexKind::track) throw_usage("similar tracks needs a track index; use passage search on a clip index");
    const std::size_t row = index.row_of(track_id);
    const Ranker ranker = make_ranker(index, options, row_query(index, row, options), row);
    return collect(index, ranker, options.k + 1, options, &index.records[row], nullptr, [&](std::size_t r) {
        return r == row || index.records[r].track_id == track_id;
    });
}

std::vector<Hit> similar_passages(const SearchIndex& index, const PassageQuery& query) {
    const QueryOptions& opt = query.options;
    check_options(opt);
    if (index.kind != IndexKind::clip) throw_usage("passage search needs a clip index (index build --kind clip)");
    std::size_t row = 0;
    if (!query.clip_id.empty()) {
        row = index.row_of(query.clip_id);
    } else {
        if (query.track_id.empty()) throw_usage("passage search needs a clip id or a track id and a start second");
        if (!std::isfinite(query.start_sec) || query.start_sec < 0) throw_usage("start second must be ≥ 0, got {}", query.start_sec);
        row = index.nearest_row(query.track_id, query.start_sec);
    }
    const IndexRecord& q = index.records[row];
    const Ranker ranker = make_ranker(index, opt, row_query(index, row, opt), row);
    const std::size_t fetch = std::max(25 * opt.k, opt.k + 25);
    return collect(index, ranker, fetch, opt, &q, &query, [&](std::size_t r) {
        const IndexRecord& c = index.records[r];
        // The query window and every window of the same track that overlaps it.
        return r == row || (c.track_id == q.track_id && std::abs(c.start_sec - q.start_sec) < index.window_sec);
    });
}

std::vector<Hit> search_vector(const SearchIndex& index, std::vector<float> query, const QueryOptions& options,
                               const PassageQuery* passages) {
    check_options(options);
    const Ranker ranker = make_ranker(index, options, std::move(query));
    const std::size_t fetch = passages ? std::max(25 * options.k, options.k + 25) : options.k;
    return collect(index, ranker, fetch, options, nullptr, passages, [](std::size_t) { return false; });
}

ShardQuery shard_query_of(const SearchIndex& index, std::optional<std::size_t> row, std::vector<float> input, const QueryOptions& options) {
    ShardQuery q;
    q.kind = index.kind;
    if (row) {
        q.record = index.records.at(*row);
        q.input = row_query(index, *row, options);
    } else {
        q.input = std::move(input);
    }
    Ranker probe{index, options, {}, nullptr, row, {}, {}, {}};
    set_aspect_query(probe, q.input);
    q.aspects = std::move(probe.aspect_query);
    return q;
}

namespace {

// A shard query's learned aspect vectors must be the sizes of this index's spaces (they are read row by row).
void check_shard_aspects(const SearchIndex& index, const ShardQuery& q) {
    for (const auto& [name, v] : q.aspects) {
        const auto it = index.aspect_spaces.models.aspects.find(name);
        if (it == index.aspect_spaces.models.aspects.end() || !index.aspect_spaces.has(name))
            throw_input("shard query: this index has no learned aspect space '{}'", name);
        if (v.size() != static_cast<std::size_t>(it->second.out_dim))
            throw_input("shard query: aspect '{}' has {} values, its space {}", name, v.size(), it->second.out_dim);
    }
}

}  // namespace

std::vector<Hit> search_shard_query(const SearchIndex& index, const ShardQuery& q, const QueryOptions& options, const PassageQuery* passages) {
    check_options(options);
    if (q.kind != index.kind) throw_input("shard query for a {} index sent to a {} index", to_string(q.kind), to_string(index.kind));
    check_shard_aspects(index, q);
    const Ranker ranker = make_ranker(index, options, q.input, std::nullopt, &q.aspects);
    const bool own = !q.record.id.empty();  // the query is a row of the split index: exclude as the holder does
    const std::size_t fetch = index.kind == IndexKind::clip ? std::max(25 * options.k, options.k + 25) : options.k + (own ? 1 : 0);
    return collect(index, ranker, fetch, options, own ? &q.record : nullptr, passages, [&](std::size_t r) {
        const IndexRecord& c = index.records[r];
        return own && c.track_id == q.record.track_id &&
               (index.kind == IndexKind::track || std::abs(c.start_sec - q.record.start_sec) < index.window_sec);
    });
}

std::vector<ShardHit> merge_shard_hits(const std::vector<std::vector<Hit>>& per_shard, std::size_t k) {
    std::vector<ShardHit> all;
    for (std::size_t s = 0; s < per_shard.size(); ++s)
        for (const Hit& h : per_shard[s]) all.push_back({s, h});
    std::stable_sort(all.begin(), all.end(), [](const ShardHit& a, const ShardHit& b) {  // the single index's row order
        if (a.hit.score != b.hit.score) return a.hit.score > b.hit.score;
        return std::tie(a.hit.record->track_id, a.hit.record->segment_idx) < std::tie(b.hit.record->track_id, b.hit.record->segment_idx);
    });
    if (all.size() > k) all.resize(k);
    return all;
}

}  // namespace mess
