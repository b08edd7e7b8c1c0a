// Labels, the evaluation protocols and their reports (definitions: include/mess/eval.hpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <set>

#include <fmt/format.h>

#include "mess/eval.hpp"

namespace mess {

// ---------------------------------------------------------------------------------------------
// Labels
// ---------------------------------------------------------------------------------------------

std::string LabelItem::variant_kind() const {
    if (!transform.is_object() || !transform.contains("kind") || !transform["kind"].is_string()) return {};
    return transform["kind"].get<std::string>();
}

const LabelItem* Labels::find(const std::string& id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &items[it->second];
}

namespace {

// An item's "aspects": an object of strings.
std::map<std::string, std::string> parse_aspects(const nlohmann::json& j, const std::string& where) {
    if (!j.is_object()) throw_input("{}: \"aspects\" must be an object of strings", where);
    std::map<std::string, std::string> aspects;
    for (const auto& [k, v] : j.items()) {
        if (!v.is_string()) throw_input("{}: aspects.{} must be a string", where, k);
        aspects[k] = v.get<std::string>();
    }
    return aspects;
}

// An item's "time_map": increasing [source_sec, rendered_sec] pairs.
std::vector<std::pair<double, double>> parse_time_map(const nlohmann::json& tm, const std::string& where) {
    if (!tm.is_array()) throw_input("{}: \"time_map\" must be an array of [source_sec, rendered_sec]", where);
    std::vector<std::pair<double, double>> time_map;
    for (const auto& pair : tm) {
        if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number())
            throw_input("{}: \"time_map\" entries are [source_sec, rendered_sec] pairs", where);
        const double a = pair[0].get<double>(), b = pair[1].get<double>();
        if (!time_map.empty() && (a <= time_map.back().first || b < time_map.back().second))
            throw_input("{}: \"time_map\" must increase", where);
        time_map.emplace_back(a, b);
    }
    return time_map;
}

}  // namespace

Labels parse_labels(const nlohmann::json& j, const std::string& name) {
    if (!j.is_object() || !j.contains("items") || !j["items"].is_array())
        throw_input("{}: a labels file is a JSON object with an \"items\" array", name);
    Labels out;
    out.header = j;
    out.header.erase("items");
    std::size_t n = 0;
    for (const auto& it : j["items"]) {
        const std::string where = fmt::format("{}: items[{}]", name, n++);
        if (!it.is_object()) throw_input("{}: not an object", where);
        auto str = [&](const char* key, bool required) -> std::string {
            if (!it.contains(key)) {
                if (required) throw_input("{}: missing \"{}\"", where, key);
                return {};
            }
            if (!it[key].is_string() || (required && it[key].get<std::string>().empty()))
                throw_input("{}: \"{}\" must be a non-empty string", where, key);
            return it[key].get<std::string>();
        };
        LabelItem item;
        item.id = str("id", true);
        item.work_id = str("work_id", true);
        item.recording_id = str("recording_id", false);
        if (item.recording_id.empty()) item.recording_id = item.id;
        item.file = str("file", false);
        item.midi = str("midi", false);
        item.source_midi = str("source_midi", false);
        if (it.contains("aspects")) item.aspects = parse_aspects(it["aspects"], where);
        if (it.contains("transform")) item.transform = it["transform"];
        if (it.contains("time_map")) item.time_map = parse_time_map(it["time_map"], where);
        if (it.contains("duration_sec") && it["duration_sec"].is_number()) item.duration_sec = it["duration_sec"].get<double>();
        if (out.by_id.count(item.id)) throw_input("{}: duplicate id '{}'", where, item.id);
        out.by_id[item.id] = out.items.size();
        out.items.push_back(std::move(item));
    }
    if (out.items.empty()) throw_input("{}: no items", name);
    return out;
}

Labels read_labels(const std::filesystem::path& path) {
    const auto j = nlohmann::json::parse(read_file(path), nullptr, false);
    if (j.is_discarded()) throw_input("{}: not valid JSON", path.string());
    return parse_labels(j, path.string());
}

namespace {

// Piecewise-linear interpolation through (x, y) pairs, extrapolating with the end slopes.
double interpolate(const std::vector<std::pair<double, double>>& m, double x, bool inverse) {
    auto X = [&](std::size_t i) { return inverse ? m[i].second : m[i].first; };
    auto Y = [&](std::size_t i) { return inverse ? m[i].first : m[i].second; };
    if (m.size() == 1) return Y(0) + (x - X(0));
    std::size_t i = 1;
    while (i + 1 < m.size() && X(i) < x) ++i;
    const double dx = X(i) - X(i - 1);
    return dx > 0 ? Y(i - 1) + (x - X(i - 1)) * (Y(i) - Y(i - 1)) / dx : Y(i);
}

struct Percentiles {
    std::vector<double> ms;
    nlohmann::json to_json() const {
        if (ms.empty()) return nlohmann::json::object();
        auto v = ms;
        std::sort(v.begin(), v.end());
        auto pct = [&](double p) { return v[static_cast<std::size_t>(std::min<double>(static_cast<double>(v.size() - 1), std::floor(p * static_cast<double>(v.size()))))]; };
        return {{"p50", pct(0.5)}, {"p90", pct(0.9)}, {"p99", pct(0.99)},
                {"mean", std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size())}};
    }
};

// Sums of the per-query metrics of one relevance kind.
struct MetricSum {
    std::vector<int> ks;
    std::map<std::string, double> sum;
    std::int64_t queries = 0, without_relevant = 0, with_first = 0;
    double first_rank_sum = 0;
    void add(const std::vector<bool>& rel, std::int64_t total) {
        if (total <= 0) {
            ++without_relevant;
            return;
        }
        ++queries;
        for (int k : ks) {
            sum[fmt::format("recall@{}", k)] += recall_at_k(rel, total, k);
            sum[fmt::format("precision@{}", k)] += precision_at_k(rel, k);
            sum[fmt::format("ndcg@{}", k)] += ndcg_at_k(rel, total, k);
        }
        sum["mrr"] += reciprocal_rank(rel);
        sum["map"] += average_precision(rel, total);
        if (auto r = first_relevant_rank(rel)) first_rank_sum += static_cast<double>(*r), ++with_first;
    }
    nlohmann::json to_json() const {
        nlohmann::json j = nlohmann::json::object();
        for (const auto& [k, v] : sum) j[k] = queries ? v / static_cast<double>(queries) : 0.0;
        j["mean_first_rank"] = with_first ? first_rank_sum / static_cast<double>(with_first) : 0.0;
        j["queries"] = queries;
        j["queries_without_relevant"] = without_relevant;
        return j;
    }
};

enum class Protocol { track, passage, passage_to_track, track_rerank };


struct Context {
    const Searcher& searcher;
    const SearchIndex& index;
    const Labels& labels;
    const EvalParams& params;
    std::vector<const LabelItem*> label_of_row;  // nullptr: unlabelled
};

// Is result row r relevant to query row q for a relation ("work" or "recording")?
bool related(const Context& c, std::size_t q, std::size_t r, bool work, bool passages) {
    const LabelItem* a = c.label_of_row[q];
    const LabelItem* b = c.label_of_row[r];
    if (!a || !b || a == b) return false;  // the query's own track never counts
    if (work ? (a->work_id != b->work_id || a->recording_id == b->recording_id) : a->recording_id != b->recording_id)
        return false;
    if (!passages || a->time_map.empty() || b->time_map.empty()) return true;
    // The query window mapped through the source time onto the result's rendering.
    const IndexRecord& qr = c.index.records[q];
    const IndexRecord& rr = c.index.records[r];
    const double s = interpolate(b->time_map, interpolate(a->time_map, qr.start_sec, true), false);
    const double e = interpolate(b->time_map, interpolate(a->time_map, qr.end_sec, true), false);
    const double overlap = std::min(e, rr.end_sec) - std::max(s, rr.start_sec);
    return overlap >= 0.5 * std::min(e - s, rr.end_sec - rr.start_sec);
}

// One protocol's measurements, query by query: same-work and same-recording relevance over the full ranking,
// aspect faithfulness of the top K, recall of an approximate index against exact search, latency and (on
// request) per-query details.
class ProtocolRun {
public:
    ProtocolRun(const Context& c, Protocol protocol)
        : c_(c),
          p_(c.params),
          protocol_(protocol),
          passages_(protocol == Protocol::passage || protocol == Protocol::passage_to_track),
          tracks_of_passages_(protocol == Protocol::passage_to_track || protocol == Protocol::track_rerank),
          max_k_(*std::max_element(p_.ks.begin(), p_.ks.end())),
          n_(c.index.size()),
          approximate_(!c.index.index.is_exact() && p_.layer_weights.empty() && p_.learned_aspects.empty() && protocol != Protocol::track_rerank),
          same_work_{p_.ks, {}},
          same_recording_{p_.ks, {}} {
        // Tracks (for passage → track): one representative row per track (its first clip).
        for (std::size_t r = 0; r < n_; ++r) track_row_.emplace(c.index.records[r].track_id, r);
        base_.search.nprobe = p_.nprobe;
        base_.search.ef_search = p_.ef_search;
    }

    void add_query(std::size_t q) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<Hit> head = search(q, static_cast<std::size_t>(max_k_), false);
        latency_.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        const std::vector<Hit> ranking = search(q, n_, false);
        const auto [work_rel, work_total] = judge(q, ranking, true);
        same_work_.add(work_rel, work_total);
        const auto [rec_rel, rec_total] = judge(q, ranking, false);
        same_recording_.add(rec_rel, rec_total);
        add_faithfulness(q, head);
        if (!passages_) add_variants(q, ranking, work_rel, work_total);
        if (approximate_ && p_.exact_recall) add_exact_recall(q, head);
        if (p_.per_query) {
            details_.push_back({{"query", c_.index.records[q].id},
                                {"first_relevant_rank", first_relevant_rank(work_rel).value_or(0)},
                                {"relevant", work_total},
                                {"average_precision", average_precision(work_rel, work_total)}});
        }
    }

    nlohmann::json report(std::size_t queries) const {
        nlohmann::json out = {{"queries", queries}, {"same_work", same_work_.to_json()}, {"latency_ms", latency_.to_json()}};
        if (same_recording_.queries > 0) out["same_recording"] = same_recording_.to_json();
        if (!faith_n_.empty()) out["aspects"] = faithfulness_json();
        if (!variant_ap_.empty()) out["variants"] = variants_json();
        if (approx_n_ > 0) out[fmt::format("approx_recall@{}", max_k_)] = approx_sum_ / static_cast<double>(approx_n_);
        if (p_.per_query) out["per_query"] = details_;
        return out;
    }

private:
    std::vector<Hit> search(std::size_t q, std::size_t k, bool exact) const {
        SearchRequest r;
        r.options = base_;
        r.options.k = k;
        r.options.exact = exact;
        r.layer_weights = p_.layer_weights;
        r.aspects = p_.learned_aspects;
        if (protocol_ == Protocol::track_rerank) {
            r.track_id = c_.index.records[q].track_id;
            r.rerank = p_.rerank;
        } else if (!passages_) {
            r.track_id = c_.index.records[q].id;
        } else {
            r.clip_id = c_.index.records[q].id;
            r.dedupe_sec = 0;  // every passage is judged on its own
            r.context = p_.passage_context;
            r.group_by_track = protocol_ == Protocol::passage_to_track;
        }
        return c_.searcher.search(r).hits;
    }

    // Relevance of each ranked hit to query row q, and how many relevant results exist.
    std::pair<std::vector<bool>, std::int64_t> judge(std::size_t q, const std::vector<Hit>& ranking, bool work) const {
        std::vector<bool> rel;
        std::int64_t total = 0;
        if (tracks_of_passages_) {
            // A track is relevant when it shares the work (or recording) with the query.
            for (const auto& h : ranking) rel.push_back(related(c_, q, h.row, work, false));
            for (const auto& [track, row] : track_row_) total += related(c_, q, row, work, false) ? 1 : 0;
        } else {
            for (const auto& h : ranking) rel.push_back(related(c_, q, h.row, work, passages_));
            for (std::size_t r = 0; r < n_; ++r) total += related(c_, q, r, work, passages_) ? 1 : 0;
        }
        return std::make_pair(rel, total);
    }

    // For every aspect the query is labelled with: the share of the top K with the same label, per K.
    void add_faithfulness(std::size_t q, const std::vector<Hit>& head) {
        const LabelItem* ql = c_.label_of_row[q];
        for (const std::string& aspect : p_.aspects) {
            auto qa = ql->aspects.find(aspect);
            if (qa == ql->aspects.end()) continue;
            ++faith_n_[aspect];
            for (int k : p_.ks) {
                int match = 0;
                for (std::size_t i = 0; i < std::min<std::size_t>(head.size(), static_cast<std::size_t>(k)); ++i) {
                    const LabelItem* hl = c_.label_of_row[head[i].row];
                    auto ha = hl ? hl->aspects.find(aspect) : ql->aspects.end();
                    if (hl && ha != hl->aspects.end() && ha->second == qa->second) ++match;
                }
                faith_sum_[aspect][k] += static_cast<double>(match) / k;
            }
        }
    }

    // Per variant kind (track protocols of labels with transform kinds): the AP of its queries, and the rank
    // of each rendering of that kind among the results when its work's reference rendering is the query.
    void add_variants(std::size_t q, const std::vector<Hit>& ranking, const std::vector<bool>& work_rel, std::int64_t work_total) {
        const std::string kind = c_.label_of_row[q]->variant_kind();
        if (kind.empty()) return;
        variant_ap_[kind].push_back(average_precision(work_rel, work_total));
        if (kind != kReferenceKind) return;
        std::size_t rank = 0;
        std::set<const LabelItem*> found;
        for (std::size_t i = 0; i < ranking.size(); ++i) {
            const LabelItem* l = c_.label_of_row[ranking[i].row];
            if (l == c_.label_of_row[q]) continue;  // the query's own track is not a result
            ++rank;
            if (work_rel[i] && found.insert(l).second) variant_rank_[l->variant_kind()].push_back(static_cast<double>(rank));
        }
        // A rendering of the work the search did not return (a reranker's candidates, an approximate index)
        // ranks last, so that finding less never looks better.
        const std::size_t last = (tracks_of_passages_ ? track_row_.size() : n_) - 1;
        auto add_missing = [&](std::size_t row) {
            const LabelItem* l = c_.label_of_row[row];
            if (!related(c_, q, row, true, false) || !found.insert(l).second) return;
            variant_rank_[l->variant_kind()].push_back(static_cast<double>(last));
            ++variant_missing_[l->variant_kind()];
        };
        if (tracks_of_passages_) {
            for (const auto& [track, row] : track_row_) add_missing(row);
        } else {
            for (std::size_t r = 0; r < n_; ++r) add_missing(r);
        }
    }

    nlohmann::json variants_json() const {
        auto mean = [](const std::vector<double>& v) { return v.empty() ? 0.0 : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size()); };
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [kind, ap] : variant_ap_) out[kind] = {{"queries", ap.size()}, {"map", mean(ap)}};
        for (const auto& [kind, ranks] : variant_rank_)
            if (kind != kReferenceKind && !kind.empty()) {
                out[kind]["mean_rank_from_reference"] = mean(ranks), out[kind]["references"] = ranks.size();
                out[kind]["not_returned"] = variant_missing_.count(kind) ? variant_missing_.at(kind) : 0;
            }
        return out;
    }

    // The share of the exact top max-K that the approximate search found.
    void add_exact_recall(std::size_t q, const std::vector<Hit>& head) {
        const std::vector<Hit> exact = search(q, static_cast<std::size_t>(max_k_), true);
        std::set<std::size_t> truth;
        for (const auto& h : exact) truth.insert(h.row);
        std::size_t found = 0;
        for (const auto& h : head) found += truth.count(h.row);
        approx_sum_ += truth.empty() ? 1.0 : static_cast<double>(found) / static_cast<double>(truth.size());
        ++approx_n_;
    }

    nlohmann::json faithfulness_json() const {
        nlohmann::json a = nlohmann::json::object();
        for (const auto& [aspect, n] : faith_n_)
            for (int k : p_.ks) a[aspect][fmt::format("faithfulness@{}", k)] = faith_sum_.at(aspect).at(k) / static_cast<double>(n);
        return a;
    }

    const Context& c_;
    const EvalParams& p_;
    const Protocol protocol_;
    const bool passages_;
    const bool tracks_of_passages_;  // hits are tracks of a clip index (judged by track)
    const int max_k_;
    const std::size_t n_;
    const bool approximate_;
    std::map<std::string, std::size_t> track_row_;
    QueryOptions base_;
    MetricSum same_work_, same_recording_;
    std::map<std::string, std::map<int, double>> faith_sum_;
    std::map<std::string, std::int64_t> faith_n_;
    static constexpr const char* kReferenceKind = "original";  // the as-written rendering of each work
    std::map<std::string, std::vector<double>> variant_ap_, variant_rank_;  // per kind
    std::map<std::string, std::int64_t> variant_missing_;                    // per kind: renderings not returned (ranked last)
    double approx_sum_ = 0;
    std::int64_t approx_n_ = 0;
    Percentiles latency_;
    nlohmann::json details_ = nlohmann::json::array();
};

// The first of `rows` of every track (its representative query for the track protocols of a clip index).
std::vector<std::size_t> first_row_of_each_track(const SearchIndex& index, const std::vector<std::size_t>& rows) {
    std::set<std::string> seen;
    std::vector<std::size_t> out;
    for (std::size_t r : rows)
        if (seen.insert(index.records[r].track_id).second) out.push_back(r);
    return out;
}

nlohmann::json run_protocol(const Context& c, Protocol protocol, const std::vector<std::size_t>& query_rows) {
    ProtocolRun run(c, protocol);
    std::int64_t done = 0;
    for (std::size_t q : query_rows) {
        run.add_query(q);
        if (c.params.on_progress) c.params.on_progress(++done, static_cast<std::int64_t>(query_rows.size()));
    }
    return run.report(query_rows.size());
}

}  // namespace

nlohmann::json evaluate(const Searcher& searcher, const Labels& labels, const EvalParams& params) {
    const SearchIndex& index = searcher.index();
    if (params.ks.empty()) throw_usage("give at least one K");
    for (int k : params.ks)
        if (k < 1) throw_usage("K must be ≥ 1 (got {})", k);
    if (params.max_queries < 0) throw_usage("max queries must be ≥ 0");
    if (params.rerank && index.kind != IndexKind::clip) throw_usage("rerank ranks tracks from passages: it needs a clip index");
    if (params.passage_context != 0 && index.kind != IndexKind::clip) throw_usage("a passage context scores passages: it needs a clip index");
    if (!params.layer_weights.empty() && params.layer_weights.size() != index.layers)
        throw_usage("{} layer weights given, the index has {} layers", params.layer_weights.size(), index.layers);
    const std::vector<std::string> spaces = searcher.learned_aspects();
    for (const auto& [name, w] : params.learned_aspects)
        if (std::find(spaces.begin(), spaces.end(), name) == spaces.end())
            throw_usage("the index has no learned aspect space '{}' (it has: {})", name, fmt::join(spaces, ", "));
    Context c{searcher, index, labels, params, {}};
    c.label_of_row.resize(index.size(), nullptr);
    std::vector<std::size_t> queries;
    std::set<std::string> unlabelled;
    for (std::size_t r = 0; r < index.size(); ++r) {
        c.label_of_row[r] = labels.find(index.records[r].track_id);
        if (c.label_of_row[r]) queries.push_back(r);
        else unlabelled.insert(index.records[r].track_id);
    }
    if (queries.empty()) throw_input("no row of the index has a label (labels are matched by track id)");
    if (params.max_queries > 0 && static_cast<std::size_t>(params.max_queries) < queries.size()) {
        std::mt19937_64 rng(params.seed);
        for (std::size_t i = queries.size() - 1; i > 0; --i) std::swap(queries[i], queries[rng() % (i + 1)]);
        queries.resize(static_cast<std::size_t>(params.max_queries));
        std::sort(queries.begin(), queries.end());
    }
    std::set<std::string> works, recordings, tracks;
    for (std::size_t r = 0; r < index.size(); ++r)
        if (const LabelItem* l = c.label_of_row[r]) works.insert(l->work_id), recordings.insert(l->recording_id), tracks.insert(l->id);

    nlohmann::json report;
    report["schema"] = "mess-eval/1";
    report["config"] = {{"ks", params.ks},          {"max_queries", params.max_queries}, {"seed", params.seed},
                        {"aspects", params.aspects}, {"nprobe", params.nprobe},          {"ef_search", params.ef_search},
                        {"layer_weights", params.layer_weights}, {"learned_aspects", params.learned_aspects}};
    if (params.passage_context != 0) report["config"]["passage_context"] = params.passage_context;
    if (params.rerank)
        report["config"]["rerank"] = {{"reduction", to_string(params.rerank->reduction)}, {"candidates", params.rerank->candidates},
                                      {"best_k", params.rerank->best_k}};
    report["index"] = {{"kind", to_string(index.kind)}, {"model", index.model_name}, {"layer", index.layer_spec.to_string()},
                       {"factory", index.index.factory()}, {"rows", index.size()}, {"dimension", index.index.dimension()}};
    report["dataset"] = {{"dataset", index.dataset},       {"labelled_tracks", tracks.size()}, {"works", works.size()},
                         {"recordings", recordings.size()}, {"unlabelled_tracks", unlabelled.size()},
                         {"labels", labels.header}};
    nlohmann::json protocols = nlohmann::json::object();
    if (index.kind == IndexKind::track) {
        protocols["track"] = run_protocol(c, Protocol::track, queries);
    } else {
        protocols["passage"] = run_protocol(c, Protocol::passage, queries);
        protocols["passage_to_track"] = run_protocol(c, Protocol::passage_to_track, queries);
        if (params.rerank) protocols["track_rerank"] = run_protocol(c, Protocol::track_rerank, first_row_of_each_track(index, queries));
    }
    report["protocols"] = protocols;
    return report;
}

// ---------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------

namespace {

// (protocol/metric, value) rows of a report, in a stable order; latency last.
std::vector<std::pair<std::string, double>> flatten(const nlohmann::json& report) {
    std::vector<std::pair<std::string, double>> rows;
    if (!report.contains("protocols")) return rows;
    for (const auto& [proto, body] : report["protocols"].items()) {
        for (const char* rel : {"same_work", "same_recording"}) {
            if (!body.contains(rel)) continue;
            for (const auto& [metric, v] : body[rel].items())
                if (v.is_number() && metric != "queries" && metric != "queries_without_relevant")
                    rows.emplace_back(fmt::format("{} {} {}", proto, rel, metric), v.get<double>());
        }
        if (body.contains("variants"))
            for (const auto& [kind, m] : body["variants"].items())
                for (const char* metric : {"map", "mean_rank_from_reference"})
                    if (m.contains(metric)) rows.emplace_back(fmt::format("{} variant {} {}", proto, kind, metric), m[metric].get<double>());
        if (body.contains("aspects"))
            for (const auto& [aspect, m] : body["aspects"].items())
                for (const auto& [metric, v] : m.items()) rows.emplace_back(fmt::format("{} {} {}", proto, aspect, metric), v.get<double>());
        for (const auto& [key, v] : body.items())
            if (key.rfind("approx_recall@", 0) == 0) rows.emplace_back(fmt::format("{} {}", proto, key), v.get<double>());
        if (body.contains("latency_ms"))
            for (const auto& [metric, v] : body["latency_ms"].items())
                rows.emplace_back(fmt::format("{} latency_ms {}", proto, metric), v.get<double>());
    }
    return rows;
}

}  // namespace

std::string format_report(const nlohmann::json& report) {
    std::string out;
    const nlohmann::json ix = report.contains("index") ? report["index"] : nlohmann::json::object();
    const nlohmann::json ds = report.contains("dataset") ? report["dataset"] : nlohmann::json::object();
    out += fmt::format("index {} ({} rows, {} index, model {}, layer {})\n", ix.value("kind", "?"), ix.value("rows", 0),
                       ix.value("factory", "?"), ix.value("model", "?"), ix.value("layer", "?"));
    out += fmt::format("labels: {} tracks, {} works, {} recordings ({} index tracks unlabelled)\n",
                       ds.value("labelled_tracks", 0), ds.value("works", 0), ds.value("recordings", 0),
                       ds.value("unlabelled_tracks", 0));
    const nlohmann::json protocols = report.contains("protocols") ? report["protocols"] : nlohmann::json::object();
    for (const auto& [proto, body] : protocols.items())
        out += fmt::format("{}: {} queries ({} without a relevant result)\n", proto, body.value("queries", 0),
                           body.value("same_work", nlohmann::json::object()).value("queries_without_relevant", 0));
    for (const auto& [name, v] : flatten(report)) out += fmt::format("  {:<56} {:>9.4f}\n", name, v);
    return out;
}

std::string format_comparison(const nlohmann::json& a, const nlohmann::json& b, const std::string& name_a,
                              const std::string& name_b) {
    const auto ra = flatten(a), rb = flatten(b);
    std::map<std::string, double> mb(rb.begin(), rb.end());
    std::string out = fmt::format("  {:<56} {:>12} {:>12} {:>10}\n", "metric", name_a.substr(0, 12), name_b.substr(0, 12), "B - A");
    std::set<std::string> seen;
    for (const auto& [name, va] : ra) {
        seen.insert(name);
        auto it = mb.find(name);
        if (it == mb.end()) out += fmt::format("  {:<56} {:>12.4f} {:>12} {:>10}\n", name, va, "-", "");
        else out += fmt::format("  {:<56} {:>12.4f} {:>12.4f} {:>+10.4f}\n", name, va, it->second, it->second - va);
    }
    for (const auto& [name, vb] : rb)
        if (!seen.count(name)) out += fmt::format("  {:<56} {:>12} {:>12.4f} {:>10}\n", name, "-", vb, "");
    return out;
}

}  // namespace mess
