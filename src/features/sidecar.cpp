// The per-track sidecar: one struct, one JSON writer, one reader.
#include <algorithm>

#include <nlohmann/json.hpp>

#include "mess/features.hpp"

namespace mess {

namespace {

nlohmann::json model_config_json(const SidecarModel& m) {
    return {{"architecture", m.architecture}, {"hidden_size", m.hidden_size}, {"num_hidden_states", m.num_hidden_states},
            {"default_layer", m.default_layer}, {"layer_names", m.layer_names}};
}

SidecarModel model_config_from(const nlohmann::json& j) {
    SidecarModel m;
    if (!j.is_object()) return m;
    m.architecture = j.value("architecture", std::string());
    m.hidden_size = j.value("hidden_size", std::int64_t{0});
    m.num_hidden_states = j.value("num_hidden_states", std::int64_t{0});
    m.default_layer = j.value("default_layer", -1);
    m.layer_names = j.value("layer_names", std::vector<std::string>{});
    return m;
}

nlohmann::json windows_json(const std::vector<WindowBounds>& windows) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& w : windows) out.push_back({{"start_sec", w.start_sec}, {"end_sec", w.end_sec}});
    return out;
}

std::vector<WindowBounds> windows_from(const nlohmann::json& j) {
    std::vector<WindowBounds> out;
    for (const auto& w : j) out.push_back({w.at("start_sec").get<double>(), w.at("end_sec").get<double>()});
    return out;
}

std::vector<View> views_from(const nlohmann::json& j) {
    std::vector<View> out;
    for (const auto& v : j) out.push_back(parse_view(v.get<std::string>()));
    return out;
}

}  // namespace

bool Sidecar::has_view(View v) const { return std::find(views.begin(), views.end(), v) != views.end(); }

std::string Sidecar::to_json_text() const {
    nlohmann::json view_names = nlohmann::json::array();
    for (View v : views) view_names.push_back(to_string(v));
    nlohmann::json j = {{"track_id", track_id},
                        {"audio_path", audio_path.string()},
                        {"model", model},
                        {"model_config", model_config_json(model_config)},
                        {"sample_rate", sample_rate},
                        {"window_seconds", window_seconds},
                        {"overlap", overlap},
                        {"duration_sec", duration_sec},
                        {"num_windows", num_windows},
                        {"frames_per_window", frames_per_window},
                        {"windows", windows_json(windows)},
                        {"views", view_names},
                        {"raw_dtype", raw_dtype},
                        {"precision", precision},
                        {"device", device},
                        {"mess_version", mess_version},
                        {"created_at_utc", created_at_utc}};
    if (audio_stamp) {
        j["audio_size_bytes"] = audio_stamp->size_bytes;
        j["audio_mtime_ns"] = audio_stamp->mtime_ns;
    }
    if (!encoder_digest.empty()) j["encoder_digest"] = encoder_digest;
    return j.dump(2) + "\n";
}

Sidecar Sidecar::parse(const std::string& text, const std::string& source) {
    try {
        const auto j = nlohmann::json::parse(text);
        Sidecar s;
        s.track_id = j.value("track_id", std::string());
        s.windows = windows_from(j.at("windows"));
        s.views = views_from(j.at("views"));
        s.audio_path = j.value("audio_path", std::string());
        s.model = j.value("model", std::string());
        s.model_config = model_config_from(j.value("model_config", nlohmann::json::object()));
        s.sample_rate = j.value("sample_rate", 0);
        s.window_seconds = j.value("window_seconds", 0.0);
        s.overlap = j.value("overlap", 0.0);
        s.duration_sec = j.value("duration_sec", 0.0);
        s.num_windows = j.value("num_windows", static_cast<std::int64_t>(s.windows.size()));
        s.frames_per_window = j.value("frames_per_window", std::int64_t{0});
        s.raw_dtype = j.value("raw_dtype", std::string("float32"));
        s.precision = j.value("precision", std::string("fp32"));  // sidecars from before precisions existed
        s.device = j.value("device", std::string("cpu"));
        if (j.contains("audio_size_bytes") || j.contains("audio_mtime_ns"))  // absent in older sidecars
            s.audio_stamp = FileStamp{j.at("audio_size_bytes").get<std::uint64_t>(), j.at("audio_mtime_ns").get<std::int64_t>()};
        s.mess_version = j.value("mess_version", std::string());
        s.encoder_digest = j.value("encoder_digest", std::vector<float>());  // absent: not recorded
        s.created_at_utc = j.value("created_at_utc", std::string());
        return s;
    } catch (const nlohmann::json::exception& e) {
        throw_input("{}: malformed extraction sidecar: {}", source, e.what());
    } catch (const Error& e) {
        throw_input("{}: malformed extraction sidecar: {}", source, e.what());
    }
}

}  // namespace mess
