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

const LabelItem* Labels::find(const std::string& id) const {
    auto it = by_id.find(id);
    return it == by_id.end() ? nullptr : &items[it->second];
}

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
        if (it.contains("aspects")) {
            if (!it["aspects"].is_object()) throw_input("{}: \"aspects\" must be an object of strings", where);
            for (const auto& [k, v] : it["aspects"].items()) {
                if (!v.is_string()) throw_input("{}: aspects.{} must be a string", where, k);
                item.aspects[k] = v.get<std::string>();
            }
        }
        if (it.contains("transform")) item.transform = it["transform"];
        if (it.contains("time_map")) {
            const auto& tm = it["time_map"];
            if (!tm.is_array()) throw_input("{}: \"time_map\" must be an array of [source_sec, rendered_sec]", where);
            for (const auto& pair : tm) {
                if (!pair.is_array() || pair.size() != 2 || !pair[0].is_number() || !pair[1].is_number())
                    throw_input("{}: \"time_map\" entries are [source_sec, rendered_sec] pairs", where);
                const double a = pair[0].get<double>(), b = pair[1].get<double>();
                if (!item.time_map.empty() && (a <= item.time_map.back().first || b < item.time_map.back().second))
                    throw_input("{}: \"time_map\" must increase", where);
                item.time_map.emplace_back(a, b);
            }
        }
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

enum class Protocol { track, passage, passage_to_track };

struct Context {
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

nlohmann::json run_protocol(const Context& c, Protocol protocol, const std::vector<std::size_t>& query_rows) {
    const EvalParams& p = c.params;
    const bool passages = protocol != Protocol::track;
    const int max_k = *std::max_element(p.ks.begin(), p.ks.end());
    const std::size_t N = c.index.size();
    MetricSum same_work{p.ks, {}}, same_recording{p.ks, {}};
    std::map<std::string, std::map<int, double>> faith_sum;
    std::map<std::string, std::int64_t> faith_n;
    double approx_sum = 0;
    std::int64_t approx_n = 0;
    Percentiles latency;
    nlohmann::json details = nlohmann::json::array();
    const bool approximate = !c.index.index.is_exact() && p.layer_weights.empty();

    // Tracks (for passage → track): one representative row per track (its first clip).
    std::map<std::string, std::size_t> track_row;
    for (std::size_t r = 0; r < N; ++r) track_row.emplace(c.index.records[r].track_id, r);

    QueryOptions base;
    base.layer_weights = p.layer_weights;
    base.search.nprobe = p.nprobe;
    base.search.ef_search = p.ef_search;
    auto run = [&](std::size_t q, std::size_t k, bool exact) {
        QueryOptions o = base;
        o.k = k;
        o.exact = exact;
        if (!passages) return similar_tracks(c.index, c.index.records[q].id, o);
        PassageQuery pq;
        pq.clip_id = c.index.records[q].id;
        pq.dedupe_sec = 0;  // every passage is judged on its own
        pq.group_by_track = protocol == Protocol::passage_to_track;
        pq.options = o;
        return similar_passages(c.index, pq);
    };

    std::int64_t done = 0;
    for (std::size_t q : query_rows) {
        const auto t0 = std::chrono::steady_clock::now();
        const std::vector<Hit> head = run(q, static_cast<std::size_t>(max_k), false);
        latency.ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
        const std::vector<Hit> ranking = run(q, N, false);

        auto judge = [&](bool work) {
            std::vector<bool> rel;
            std::int64_t total = 0;
            if (protocol == Protocol::passage_to_track) {
                // A track is relevant when it shares the work (or recording) with the query.
                for (const auto& h : ranking) rel.push_back(related(c, q, h.row, work, false));
                for (const auto& [track, row] : track_row) total += related(c, q, row, work, false) ? 1 : 0;
            } else {
                for (const auto& h : ranking) rel.push_back(related(c, q, h.row, work, passages));
                for (std::size_t r = 0; r < N; ++r) total += related(c, q, r, work, passages) ? 1 : 0;
            }
            return std::make_pair(rel, total);
        };
        const auto [work_rel, work_total] = judge(true);
        same_work.add(work_rel, work_total);
        const auto [rec_rel, rec_total] = judge(false);
        same_recording.add(rec_rel, rec_total);

        const LabelItem* ql = c.label_of_row[q];
        for (const std::string& aspect : p.aspects) {
            auto qa = ql->aspects.find(aspect);
            if (qa == ql->aspects.end()) continue;
            ++faith_n[aspect];
            for (int k : p.ks) {
                int match = 0;
                for (std::size_t i = 0; i < std::min<std::size_t>(head.size(), static_cast<std::size_t>(k)); ++i) {
                    const LabelItem* hl = c.label_of_row[head[i].row];
                    auto ha = hl ? hl->aspects.find(aspect) : ql->aspects.end();
                    if (hl && ha != hl->aspects.end() && ha->second == qa->second) ++match;
                }
                faith_sum[aspect][k] += static_cast<double>(match) / k;
            }
        }
        if (approximate && p.exact_recall) {
            const std::vector<Hit> exact = run(q, static_cast<std::size_t>(max_k), true);
            std::set<std::size_t> truth;
            for (const auto& h : exact) truth.insert(h.row);
            std::size_t found = 0;
            for (const auto& h : head) found += truth.count(h.row);
            approx_sum += truth.empty() ? 1.0 : static_cast<double>(found) / static_cast<double>(truth.size());
            ++approx_n;
        }
        if (p.per_query) {
            details.push_back({{"query", c.index.records[q].id},
                               {"first_relevant_rank", first_relevant_rank(work_rel).value_or(0)},
                               {"relevant", work_total},
                               {"average_precision", average_precision(work_rel, work_total)}});
        }
        if (p.on_progress) p.on_progress(++done, static_cast<std::int64_t>(query_rows.size()));
    }

    nlohmann::json out = {{"queries", query_rows.size()}, {"same_work", same_work.to_json()}, {"latency_ms", latency.to_json()}};
    if (same_recording.queries > 0) out["same_recording"] = same_recording.to_json();
    if (!faith_n.empty()) {
        nlohmann::json a = nlohmann::json::object();
        for (const auto& [aspect, n] : faith_n)
            for (int k : p.ks) a[aspect][fmt::format("faithfulness@{}", k)] = faith_sum[aspect][k] / static_cast<double>(n);
        out["aspects"] = a;
    }
    if (approx_n > 0) out[fmt::format("approx_recall@{}", max_k)] = approx_sum / static_cast<double>(approx_n);
    if (p.per_query) out["per_query"] = details;
    return out;
}

}  // namespace

nlohmann::json evaluate(const SearchIndex& index, const Labels& labels, const EvalParams& params) {
    if (params.ks.empty()) throw_usage("give at least one K");
    for (int k : params.ks)
        if (k < 1) throw_usage("K must be ≥ 1 (got {})", k);
    if (params.max_queries < 0) throw_usage("max queries must be ≥ 0");
    if (!params.layer_weights.empty() && params.layer_weights.size() != index.layers)
        throw_usage("{} layer weights given, the index has {} layers", params.layer_weights.size(), index.layers);
    Context c{index, labels, params, {}};
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
                        {"layer_weights", params.layer_weights}};
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
    for (const auto& [name, v] : flatten(report)) out += fmt::format("  {:<44} {:>9.4f}\n", name, v);
    return out;
}

std::string format_comparison(const nlohmann::json& a, const nlohmann::json& b, const std::string& name_a,
                              const std::string& name_b) {
    const auto ra = flatten(a), rb = flatten(b);
    std::map<std::string, double> mb(rb.begin(), rb.end());
    std::string out = fmt::format("  {:<44} {:>12} {:>12} {:>10}\n", "metric", name_a.substr(0, 12), name_b.substr(0, 12), "B - A");
    std::set<std::string> seen;
    for (const auto& [name, va] : ra) {
        seen.insert(name);
        auto it = mb.find(name);
        if (it == mb.end()) out += fmt::format("  {:<44} {:>12.4f} {:>12} {:>10}\n", name, va, "-", "");
        else out += fmt::format("  {:<44} {:>12.4f} {:>12.4f} {:>+10.4f}\n", name, va, it->second, it->second - va);
    }
    for (const auto& [name, vb] : rb)
        if (!seen.count(name)) out += fmt::format("  {:<44} {:>12} {:>12.4f} {:>10}\n", name, "-", vb, "");
    return out;
}

}  // namespace mess
