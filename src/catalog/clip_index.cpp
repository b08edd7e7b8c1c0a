#include <algorithm>
#include <cmath>
#include <set>

#include <nlohmann/json.hpp>

#include "mess/catalog.hpp"

namespace mess {
namespace fs = std::filesystem;

namespace {

// SplitMix64: a tiny, fully specified generator, so splits are reproducible in any language.
struct SplitMix64 {
    std::uint64_t state;
    std::uint64_t next() {
        std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
};

const std::vector<std::string> kColumns = {"clip_id", "dataset_id", "recording_id", "work_id", "track_id", "segment_idx",
                                           "start_sec", "end_sec", "split", "embedding_path"};

}  // namespace

std::map<std::string, std::string> assign_splits(std::vector<std::string> ids, const SplitParams& p) {
    if (p.train < 0 || p.val < 0 || p.test < 0 || std::fabs(p.train + p.val + p.test - 1.0) > 1e-9)
        throw_usage("split ratios must be non-negative and sum to 1 (got {}, {}, {})", p.train, p.val, p.test);
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    SplitMix64 rng{p.seed};
    for (std::size_t i = ids.size(); i-- > 1;) std::swap(ids[i], ids[rng.next() % (i + 1)]);
    const auto n = ids.size();
    const auto n_train = static_cast<std::size_t>(std::floor(p.train * static_cast<double>(n)));
    const auto n_val = static_cast<std::size_t>(std::floor(p.val * static_cast<double>(n)));
    std::map<std::string, std::string> out;
    for (std::size_t i = 0; i < n; ++i) out[ids[i]] = i < n_train ? "train" : i < n_train + n_val ? "val" : "test";
    return out;
}

std::string make_clip_id(const std::string& dataset, const std::string& track_id, int segment_idx) {
    return fmt::format("{}:{}:{:05d}", dataset, track_id, segment_idx);
}

ClipIndex build_clip_index(const Dataset& ds, const MetadataTable& meta, const SplitParams& params) {
    struct Windows {
        std::string track_id;
        std::vector<std::pair<double, double>> bounds;
    };
    std::vector<Windows> tracks;
    const FeatureStore store = ds.features();
    for (const auto& t : ds.tracks()) {
        if (!store.has_sidecar(t.track_id)) continue;  // not extracted (yet)
        Windows w{t.track_id, {}};
        for (const auto& win : store.read_sidecar(t.track_id).windows) w.bounds.emplace_back(win.start_sec, win.end_sec);
        tracks.push_back(std::move(w));
    }
    auto recording_of = [&](const std::string& track) {
        const auto* r = meta.find(track);
        return r ? r->recording_id : track;
    };
    std::vector<std::string> recordings;
    for (const auto& t : tracks) recordings.push_back(recording_of(t.track_id));
    auto splits = assign_splits(recordings, params);

    ClipIndex out;
    for (const auto& t : tracks) {
        const auto* row = meta.find(t.track_id);
        std::string split = splits.at(recording_of(t.track_id));
        if (row && ds.kind() == "maestro") {  // MAESTRO's official split wins
            auto it = row->extra.find("split");
            if (it != row->extra.end() && !it->second.empty()) split = it->second == "validation" ? "val" : it->second;
        }
        const std::string emb = fs::path(store.view_path(View::segments, t.track_id)).lexically_relative(ds.data_root()).string();
        for (std::size_t i = 0; i < t.bounds.size(); ++i) {
            Clip c;
            c.clip_id = make_clip_id(ds.id(), t.track_id, static_cast<int>(i));
            c.dataset_id = ds.id();
            c.track_id = t.track_id;
            c.recording_id = recording_of(t.track_id);
            c.work_id = row ? row->work_id : "";
            c.segment_idx = static_cast<int>(i);
            c.start_sec = t.bounds[i].first;
            c.end_sec = t.bounds[i].second;
            c.split = split;
            c.embedding_path = emb;
            out.push_back(std::move(c));
        }
    }
    std::sort(out.begin(), out.end(), [](const Clip& a, const Clip& b) { return a.clip_id < b.clip_id; });
    return out;
}

ClipIndex recorded_clip_index(const Dataset& dataset, const MetadataTable& meta, const SplitParams& params) {
    ClipIndex clips = build_clip_index(dataset, meta, params);
    std::error_code ec;
    if (!fs::exists(dataset.clip_index_path(), ec)) return clips;
    std::map<std::string, std::string> recorded;
    for (const auto& c : read_clip_index(dataset.clip_index_path())) recorded[c.clip_id] = c.split;
    for (auto& c : clips)
        if (const auto it = recorded.find(c.clip_id); it != recorded.end()) c.split = it->second;
    return clips;
}

void write_clip_index(const fs::path& path, const ClipIndex& index) {
    CsvTable t;
    t.header = kColumns;
    for (const auto& c : index)
        t.rows.push_back({c.clip_id, c.dataset_id, c.recording_id, c.work_id, c.track_id, std::to_string(c.segment_idx),
                          fmt::format("{:.6f}", c.start_sec), fmt::format("{:.6f}", c.end_sec), c.split, c.embedding_path});
    fs::create_directories(path.parent_path());
    write_csv(path, t);
}

ClipIndex read_clip_index(const fs::path& path) {
    CsvTable t = read_csv(path);
    std::vector<int> col;
    for (const auto& name : kColumns) {
        col.push_back(t.column(name));
        if (col.back() < 0 && name != "work_id") throw_input("{}: missing column '{}'", path.string(), name);
    }
    ClipIndex out;
    std::set<std::string> seen;
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& r = t.rows[i];
        auto get = [&](std::size_t k) { return col[k] < 0 ? std::string() : r[static_cast<std::size_t>(col[k])]; };
        Clip c;
        try {
            c = {get(0), get(1), get(2), get(3), get(4), std::stoi(get(5)), std::stod(get(6)), std::stod(get(7)), get(8), get(9)};
        } catch (const std::exception&) {
            throw_input("{}: row {}: segment_idx, start_sec or end_sec is not a number", path.string(), i + 2);
        }
        if (!seen.insert(c.clip_id).second) throw_input("{}: duplicate clip_id '{}'", path.string(), c.clip_id);
        out.push_back(std::move(c));
    }
    std::sort(out.begin(), out.end(), [](const Clip& a, const Clip& b) { return a.clip_id < b.clip_id; });
    return out;
}

}  // namespace mess
