#include <algorithm>
#include <cctype>
#include <string_view>

#include <nlohmann/json.hpp>

#include "mess/catalog.hpp"

namespace mess {
namespace fs = std::filesystem;

const std::vector<std::string>& audio_extensions() {
    static const std::vector<std::string> ext = {".wav", ".wave", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff"};
    return ext;
}

std::vector<std::string> Dataset::registered_ids() { return {"maestro", "smd"}; }

Dataset Dataset::open(const fs::path& data_root, const std::string& id) {
    Dataset d;
    d.id_ = d.kind_ = id;
    d.root_ = data_root;
    if (id == "smd") d.audio_dir_ = data_root / "audio" / "smd" / "wav-44";
    else if (id == "maestro") d.audio_dir_ = data_root / "audio" / "maestro";
    else throw_usage("unknown dataset '{}' (known: maestro, smd; or use --audio-dir DIR --dataset-id NAME)", id);
    return d;
}

Dataset Dataset::folder(const fs::path& data_root, const fs::path& audio_dir, const std::string& id) {
    auto ok_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-'; };
    if (id.empty() || !std::isalnum(static_cast<unsigned char>(id[0])) || !std::all_of(id.begin(), id.end(), ok_char))
        throw_usage("dataset id '{}' must start with a letter or digit and hold only letters, digits, '.', '_', '-'", id);
    if (id == "smd" || id == "maestro") throw_usage("dataset id '{}' is reserved for the registered dataset", id);
    Dataset d;
    d.id_ = id;
    d.kind_ = "folder";
    d.root_ = data_root;
    d.audio_dir_ = audio_dir;
    return d;
}

FeatureStore Dataset::features() const { return FeatureStore::of(root_, id_); }
fs::path Dataset::metadata_path() const { return root_ / "metadata" / (id_ + "_metadata.csv"); }
fs::path Dataset::clip_index_path() const { return root_ / "metadata" / (id_ + "_clip_index.csv"); }
fs::path Dataset::targets_dir() const { return root_ / "proxy_targets" / id_; }
fs::path Dataset::targets_path(const std::string& track_id) const { return targets_dir() / (track_id + ".targets.npz"); }
fs::path Dataset::targets_report_path() const { return targets_dir() / "targets_report.json"; }

std::vector<Track> Dataset::tracks() const {
    std::error_code ec;
    if (!fs::is_directory(audio_dir_, ec))
        throw_input("dataset '{}': audio folder {} does not exist", id_, audio_dir_.string());
    std::vector<Track> out;
    for (auto it = fs::recursive_directory_iterator(audio_dir_, fs::directory_options::follow_directory_symlink, ec);
         it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (ec) throw_input("dataset '{}': cannot list {}: {}", id_, audio_dir_.string(), ec.message());
        const std::string ext = to_lower(it->path().extension().string());
        const auto& exts = audio_extensions();
        if (std::find(exts.begin(), exts.end(), ext) == exts.end()) continue;
        // A folder named like an audio file is listed too, so that extraction reports it ("is a directory")
        // instead of skipping it silently; its contents are not searched.
        if (it->is_directory(ec)) it.disable_recursion_pending();
        else if (!it->is_regular_file(ec)) continue;
        out.push_back({it->path().stem().string(), it->path()});
    }
    std::sort(out.begin(), out.end(), [](const Track& a, const Track& b) { return a.audio_path < b.audio_path; });
    std::map<std::string, fs::path> seen;
    for (const auto& t : out) {
        auto [pos, fresh] = seen.emplace(t.track_id, t.audio_path);
        if (!fresh)
            throw_input("dataset '{}': {} and {} have the same track id '{}' (file stem); rename one", id_,
                        pos->second.string(), t.audio_path.string(), t.track_id);
    }
    return out;
}

std::optional<MetadataTable::Row> parse_smd_name(const std::string& stem) {
    // Composer_Catalog-Movement_Take_YYYYMMDD-SMD, e.g. Bach_BWV849-01_001_20090916-SMD
    auto all_of = [](std::string_view v, int (*pred)(int)) {
        return !v.empty() && std::all_of(v.begin(), v.end(), [pred](char c) { return pred(static_cast<unsigned char>(c)) != 0; });
    };
    std::string_view s(stem);
    if (!s.ends_with("-SMD")) return std::nullopt;
    s.remove_suffix(4);
    const auto date_sep = s.rfind('_');
    if (date_sep == std::string_view::npos) return std::nullopt;
    const std::string_view date = s.substr(date_sep + 1);
    const auto take_sep = s.rfind('_', date_sep == 0 ? 0 : date_sep - 1);
    const auto composer_sep = s.find('_');
    if (take_sep == std::string_view::npos || composer_sep >= take_sep) return std::nullopt;
    const std::string_view take = s.substr(take_sep + 1, date_sep - take_sep - 1);
    const std::string_view composer = s.substr(0, composer_sep);
    const std::string_view work = s.substr(composer_sep + 1, take_sep - composer_sep - 1);
    if (date.size() != 8 || !all_of(date, ::isdigit) || !all_of(take, ::isdigit) || !all_of(composer, ::isalpha) || work.empty())
        return std::nullopt;
    MetadataTable::Row r;
    r.track_id = stem;
    r.recording_id = stem;
    r.work_id = std::string(composer) + "_" + std::string(work);
    r.extra = {{"composer", std::string(composer)}, {"work", std::string(work)}, {"take", std::string(take)}, {"recording_date", std::string(date)}};
    return r;
}

namespace {

// MAESTRO's metadata (maestro-v3.0.0.json, columnar {"column": {"row": value}}, or the .csv) keyed by audio stem.
std::map<std::string, std::map<std::string, std::string>> read_maestro_metadata(const fs::path& dir) {
    std::map<std::string, std::map<std::string, std::string>> by_stem;
    auto add = [&](std::map<std::string, std::string> row, const std::string& where) {
        auto it = row.find("audio_filename");
        if (it == row.end() || it->second.empty()) throw_input("{}: a row has no audio_filename", where);
        by_stem[fs::path(it->second).stem().string()] = std::move(row);
    };
    const fs::path json_path = dir / "maestro-v3.0.0.json", csv_path = dir / "maestro-v3.0.0.csv";
    if (fs::exists(json_path)) {
        nlohmann::json j;
        try {
            j = nlohmann::json::parse(read_file(json_path));
        } catch (const nlohmann::json::exception& e) {
            throw_input("{}: not valid JSON: {}", json_path.string(), e.what());
        }
        if (!j.is_object() || !j.contains("audio_filename")) throw_input("{}: expected MAESTRO's columnar JSON", json_path.string());
        for (const auto& [row_key, _] : j["audio_filename"].items()) {
            std::map<std::string, std::string> row;
            for (const auto& [col, values] : j.items()) {
                if (!values.is_object() || !values.contains(row_key)) continue;
                const auto& v = values[row_key];
                row[col] = v.is_string() ? v.get<std::string>() : v.dump();
            }
            add(std::move(row), json_path.string());
        }
    } else if (fs::exists(csv_path)) {
        CsvTable t = read_csv(csv_path);
        for (const auto& r : t.rows) {
            std::map<std::string, std::string> row;
            for (std::size_t c = 0; c < t.header.size(); ++c) row[t.header[c]] = r[c];
            add(std::move(row), csv_path.string());
        }
    }
    return by_stem;
}

}  // namespace

void Dataset::use_metadata(MetadataTable meta) { metadata_ = std::make_shared<const MetadataTable>(std::move(meta)); }

MetadataTable Dataset::metadata() const {
    if (metadata_) return *metadata_;
    if (fs::exists(metadata_path())) return MetadataTable::read(metadata_path());
    std::vector<MetadataTable::Row> rows;
    std::map<std::string, std::map<std::string, std::string>> maestro;
    if (kind_ == "maestro") maestro = read_maestro_metadata(audio_dir_);
    for (const auto& t : tracks()) {
        MetadataTable::Row r{t.track_id, t.track_id, "", {}};
        if (kind_ == "smd") {
            if (auto parsed = parse_smd_name(t.track_id)) r = *parsed;
        } else if (auto it = maestro.find(t.track_id); it != maestro.end()) {
            static const char* keep[] = {"canonical_composer", "canonical_title", "split", "year", "duration",
                                         "midi_filename", "audio_filename"};
            for (const char* k : keep)
                if (it->second.count(k)) r.extra[k] = it->second.at(k);
            r.work_id = r.extra["canonical_composer"] + " | " + r.extra["canonical_title"];
            // MAESTRO's canonical composer and title are the track's composer and title (the browser and the
            // catalog read those columns).
            r.extra["composer"] = r.extra["canonical_composer"];
            r.extra["title"] = r.extra["canonical_title"];
        }
        if (r.work_id.empty()) r.work_id = r.track_id;  // each file its own work when nothing says otherwise
        rows.push_back(std::move(r));
    }
    return MetadataTable(std::move(rows));
}

}  // namespace mess
