// The shard query's JSON form: what a router (mess route) carries from the shard holding a query to every shard.
#include <cmath>

#include <nlohmann/json.hpp>

#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

namespace {

constexpr const char* kShardQuerySchema = "mess-shard-query/1";

std::vector<float> floats_of(const nlohmann::json& j, const std::string& field) {
    if (!j.is_array()) throw_input("shard query: '{}' must be an array of numbers", field);
    std::vector<float> out;
    out.reserve(j.size());
    for (const auto& x : j) {
        if (!x.is_number() || !std::isfinite(x.get<double>())) throw_input("shard query: '{}' holds a value that is not a finite number", field);
        out.push_back(x.get<float>());
    }
    return out;
}

const nlohmann::json& member(const nlohmann::json& j, const char* name, const std::string& where) {
    if (!j.is_object() || !j.contains(name)) throw_input("shard query: {} needs '{}'", where, name);
    return j.at(name);
}

std::string text_of(const nlohmann::json& j, const char* name) {
    const nlohmann::json& v = member(j, name, "record");
    if (!v.is_string()) throw_input("shard query: record '{}' must be a string", name);
    return v.get<std::string>();
}

double number_of(const nlohmann::json& j, const char* name, const char* where) {
    const nlohmann::json& v = member(j, name, where);
    if (!v.is_number() || !std::isfinite(v.get<double>())) throw_input("shard query: {} '{}' must be a finite number", where, name);
    return v.get<double>();
}

}  // namespace

nlohmann::json ShardQuery::to_json() const {
    nlohmann::json j = {{"schema", kShardQuerySchema}, {"kind", to_string(kind)}, {"input", input}, {"aspects", nlohmann::json::object()}};
    for (const auto& [name, v] : aspects) j["aspects"][name] = v;
    j["record"] = {{"id", record.id},           {"dataset_id", record.dataset_id}, {"track_id", record.track_id},
                   {"recording_id", record.recording_id}, {"work_id", record.work_id}, {"start_sec", record.start_sec},
                   {"end_sec", record.end_sec}};
    if (moment) {
        j["moment"] = {{"time", moment->time}};
        if (moment->interval) j["moment"]["interval"] = *moment->interval;
    }
    return j;
}

ShardQuery ShardQuery::from_json(const nlohmann::json& j) {
    if (!j.is_object() || j.value("schema", "") != kShardQuerySchema) throw_input("shard query: the schema must be {}", kShardQuerySchema);
    ShardQuery q;
    const nlohmann::json& kind = member(j, "kind", "the query");
    if (!kind.is_string() || (kind != "track" && kind != "clip")) throw_input("shard query: 'kind' must be track or clip");
    q.kind = parse_index_kind(kind.get<std::string>());
    q.input = floats_of(member(j, "input", "the query"), "input");
    const nlohmann::json& aspects = member(j, "aspects", "the query");
    if (!aspects.is_object()) throw_input("shard query: 'aspects' must be an object of arrays");
    for (const auto& [name, v] : aspects.items()) q.aspects[name] = floats_of(v, "aspects." + name);
    const nlohmann::json& r = member(j, "record", "the query");
    q.record.id = text_of(r, "id");
    q.record.dataset_id = text_of(r, "dataset_id");
    q.record.track_id = text_of(r, "track_id");
    q.record.recording_id = text_of(r, "recording_id");
    q.record.work_id = text_of(r, "work_id");
    q.record.start_sec = number_of(r, "start_sec", "record");
    q.record.end_sec = number_of(r, "end_sec", "record");
    if (j.contains("moment")) {
        const nlohmann::json& m = j.at("moment");
        q.moment = RoleMoment{number_of(m, "time", "moment"), std::nullopt};
        if (m.contains("interval")) {
            if (!m.at("interval").is_number_integer()) throw_input("shard query: moment 'interval' must be a whole number");
            q.moment->interval = m.at("interval").get<int>();
        }
    }
    if (q.input.empty() && q.aspects.empty()) throw_input("shard query: neither 'input' nor 'aspects' holds a query");
    return q;
}

}  // namespace mess
