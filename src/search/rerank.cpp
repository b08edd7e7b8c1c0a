// Two-stage ranking: tracks from passages (candidates from passage search, then a track score from the
// matrix of passage similarities reduced by min, mean of row minima, best-k or best pairs), and passages
// scored with their context (a short alignment of the query's neighbours with the candidate's).
#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <set>

#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

Reduction parse_reduction(const std::string& text) {
    for (Reduction r : {Reduction::min, Reduction::mean_min, Reduction::mean_min_sym, Reduction::best_k, Reduction::pairs})
        if (text == to_string(r)) return r;
    throw_usage("unknown reduction '{}' (min | mean-min | mean-min-sym | best-k | pairs)", text);
}

const char* to_string(Reduction r) {
    switch (r) {
        case Reduction::min: return "min";
        case Reduction::mean_min: return "mean-min";
        case Reduction::mean_min_sym: return "mean-min-sym";
        case Reduction::best_k: return "best-k";
        case Reduction::pairs: return "pairs";
    }
    return "?";
}

double reduce_similarities(const std::vector<float>& s, std::size_t rows, std::size_t cols, const RerankParams& p) {
    if (rows == 0 || cols == 0 || s.size() != rows * cols) throw_usage("a similarity matrix of {} values is not {} × {} (> 0)", s.size(), rows, cols);
    if (p.reduction == Reduction::min) return *std::max_element(s.begin(), s.end());
    if (p.reduction == Reduction::mean_min || p.reduction == Reduction::mean_min_sym) {
        std::vector<float> col_best(cols, -std::numeric_limits<float>::infinity());
        double rows_sum = 0;
        for (std::size_t i = 0; i < rows; ++i) {
            const float* row = s.data() + i * cols;
            rows_sum += *std::max_element(row, row + cols);
            for (std::size_t j = 0; j < cols; ++j) col_best[j] = std::max(col_best[j], row[j]);
        }
        const double rows_mean = rows_sum / static_cast<double>(rows);
        if (p.reduction == Reduction::mean_min) return rows_mean;
        return 0.5 * (rows_mean + std::accumulate(col_best.begin(), col_best.end(), 0.0) / static_cast<double>(cols));
    }
    std::vector<std::size_t> order(s.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return s[a] > s[b]; });
    if (p.reduction == Reduction::best_k) {
        const std::size_t k = std::clamp<std::size_t>(p.best_k, 1, s.size());
        double sum = 0;
        for (std::size_t i = 0; i < k; ++i) sum += s[order[i]];
        return sum / static_cast<double>(k);
    }
    std::vector<bool> row_used(rows), col_used(cols);
    double sum = 0;
    std::size_t pairs = 0;
    for (std::size_t at : order) {
        const std::size_t i = at / cols, j = at % cols;
        if (row_used[i] || col_used[j]) continue;
        row_used[i] = col_used[j] = true;
        sum += s[at];
        if (++pairs == std::min(rows, cols)) break;
    }
    return sum / static_cast<double>(pairs);
}

namespace {

// Cosine of two rows in the space a query ranks by: learned aspects, fused layers, or the index's vectors.
std::function<float(std::size_t, std::size_t)> row_similarity(const SearchIndex& idx, const QueryOptions& q) {
    auto dot = [](const float* x, const float* y, std::size_t n) {
        double s = 0;
        for (std::size_t i = 0; i < n; ++i) s += double(x[i]) * y[i];
        return static_cast<float>(s);
    };
    if (!q.learned_aspects.empty()) {
        double total = 0;
        for (const auto& [name, w] : q.learned_aspects) total += std::abs(w);
        return [&idx, &q, dot, total](std::size_t a, std::size_t b) {
            double s = 0;
            for (const auto& [name, w] : q.learned_aspects) {
                const auto k = static_cast<std::size_t>(idx.aspect_spaces.models.aspects.at(name).out_dim);
                s += w * dot(idx.aspect_spaces.row(name, a), idx.aspect_spaces.row(name, b), k);
            }
            return static_cast<float>(s / total);
        };
    }
    if (!q.layer_weights.empty()) {
        const auto fused = idx.fused_vectors(q.layer_weights);
        return [fused, dot, d = idx.layer_dim](std::size_t a, std::size_t b) { return dot(fused->data() + a * d, fused->data() + b * d, d); };
    }
    return [&idx, dot](std::size_t a, std::size_t b) { return dot(idx.index.vector(a), idx.index.vector(b), idx.index.dimension()); };
}

}  // namespace

std::vector<Hit> Searcher::rerank_tracks(const SearchRequest& r, const QueryOptions& q) const {
    const SearchIndex& idx = *index_;
    if (idx.kind != IndexKind::clip) throw_usage("rerank ranks tracks from passages: it needs a clip index");
    if (r.track_id.empty() && r.clip_id.empty()) throw_usage("rerank needs a query track (or clip) of the index");
    const std::string track = r.track_id.empty() ? idx.records[idx.row_of(r.clip_id)].track_id : r.track_id;
    std::vector<std::size_t> query_rows;  // every window of the track, or the one window asked for
    if (!r.clip_id.empty()) query_rows = {idx.row_of(r.clip_id)};
    else if (!r.start_sec) query_rows = idx.rows_of_track(track);
    else query_rows = {idx.nearest_row(track, *r.start_sec)};
    PassageQuery pq;
    pq.group_by_track = true;
    pq.options = q;
    pq.options.k = std::max<std::size_t>(r.rerank->candidates, 1);
    std::set<std::string> candidates;
    for (std::size_t row : query_rows) {
        pq.clip_id = idx.records[row].id;
        for (const Hit& h : similar_passages(idx, pq))
            if (h.record->track_id != track) candidates.insert(h.record->track_id);
    }
    const auto sim = row_similarity(idx, q);
    std::vector<Hit> out;
    for (const std::string& c : candidates) {
        const auto& cols = idx.rows_of_track(c);
        std::vector<float> s(query_rows.size() * cols.size());
        for (std::size_t i = 0; i < query_rows.size(); ++i)
            for (std::size_t j = 0; j < cols.size(); ++j) s[i * cols.size() + j] = sim(query_rows[i], cols[j]);
        const std::size_t best = cols[static_cast<std::size_t>(std::max_element(s.begin(), s.end()) - s.begin()) % cols.size()];
        out.push_back({best, &idx.records[best], static_cast<float>(reduce_similarities(s, query_rows.size(), cols.size(), *r.rerank)), {}});
    }
    std::stable_sort(out.begin(), out.end(), [](const Hit& a, const Hit& b) { return a.score > b.score; });
    if (out.size() > q.k) out.resize(q.k);
    return out;
}

namespace {

// A track's rows (rows_of_track: in time order), and where a row sits among them.
struct TrackRows {
    const std::vector<std::size_t>& rows;
    std::map<std::size_t, std::ptrdiff_t> at;
    TrackRows(const SearchIndex& idx, const std::string& track) : rows(idx.rows_of_track(track)) {
        for (std::size_t i = 0; i < rows.size(); ++i) at[rows[i]] = static_cast<std::ptrdiff_t>(i);
    }
    std::optional<std::size_t> row(std::ptrdiff_t i) const {
        if (i < 0 || i >= static_cast<std::ptrdiff_t>(rows.size())) return std::nullopt;
        return rows[static_cast<std::size_t>(i)];
    }
};

// Hits best first, de-duplicated as passage search does: per track the best only (group_by_track), or no two
// of one track closer than dedupe_sec (−1: one window; 0: none dropped); at most k.
std::vector<Hit> dedupe_hits(const SearchIndex& idx, std::vector<Hit> hits, const SearchRequest& r, std::size_t k) {
    std::stable_sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.score > b.score; });
    const double gap = r.dedupe_sec < 0 ? idx.window_sec : r.dedupe_sec;
    std::vector<Hit> out;
    for (const Hit& h : hits) {
        const bool near_kept = std::any_of(out.begin(), out.end(), [&](const Hit& o) {
            return o.record->track_id == h.record->track_id && (r.group_by_track || std::abs(o.record->start_sec - h.record->start_sec) < gap);
        });
        if (near_kept) continue;
        out.push_back(h);
        if (out.size() == k) break;
    }
    return out;
}

}  // namespace

std::vector<Hit> Searcher::context_passages(const SearchRequest& r, const QueryOptions& q) const {
    const SearchIndex& idx = *index_;
    if (idx.kind != IndexKind::clip) throw_usage("passages with context need a clip index");
    if (r.track_id.empty() && r.clip_id.empty()) throw_usage("passages with context need a window of the index as the query");
    const std::size_t row = !r.clip_id.empty() ? idx.row_of(r.clip_id) : idx.nearest_row(r.track_id, std::max(0.0, r.start_sec.value_or(0.0)));
    const IndexRecord& query = idx.records[row];
    const TrackRows own(idx, query.track_id);
    const std::ptrdiff_t at = own.at.at(row), n = r.context;
    // Candidates: every context window's passage hits, each of which passed the query's filters, exclusions
    // and directions (the neighbours a candidate is aligned with need not be hits).
    PassageQuery pq;
    pq.dedupe_sec = 0;
    pq.options = q;
    pq.options.k = std::max<std::size_t>(q.k, 50);
    std::map<std::string, TrackRows> tracks;
    std::set<std::size_t> candidates;
    for (std::ptrdiff_t o = -n; o <= n; ++o) {
        const auto w = own.row(at + o);
        if (!w) continue;
        pq.clip_id = idx.records[*w].id;
        for (const Hit& h : similar_passages(idx, pq)) {
            tracks.try_emplace(h.record->track_id, idx, h.record->track_id);
            candidates.insert(h.row);
        }
    }
    // The query's own track: no window whose context shares audio with the query's (k windows overlap one).
    std::ptrdiff_t k = 0;
    while (own.row(at + k + 1) && idx.records[*own.row(at + k + 1)].start_sec < query.start_sec + idx.window_sec) ++k;
    const auto sim = row_similarity(idx, q);
    std::vector<Hit> scored;
    for (std::size_t c : candidates) {
        const IndexRecord& rec = idx.records[c];
        if (rec.track_id == query.track_id && std::abs(own.at.at(c) - at) <= 2 * n + k) continue;
        const TrackRows& t = tracks.at(rec.track_id);
        const std::ptrdiff_t ct = t.at.at(c);
        double best = -std::numeric_limits<double>::infinity();
        for (double ratio : kContextTempoRatios) {
            double sum = 0;
            int pairs = 0;
            for (std::ptrdiff_t o = -n; o <= n; ++o) {
                const auto a = own.row(at + o);
                const auto b = t.row(ct + static_cast<std::ptrdiff_t>(std::lround(static_cast<double>(o) * ratio)));
                if (a && b) sum += sim(*a, *b), ++pairs;
            }
            best = std::max(best, sum / pairs);  // o = 0 always pairs
        }
        scored.push_back({c, &rec, static_cast<float>(best), {}});
    }
    return dedupe_hits(idx, std::move(scored), r, q.k);
}

}  // namespace mess
