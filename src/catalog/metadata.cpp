#include <algorithm>
#include <set>

#include "mess/catalog.hpp"

namespace mess {

MetadataTable::MetadataTable(std::vector<Row> rows) : rows_(std::move(rows)) {
    std::sort(rows_.begin(), rows_.end(), [](const Row& a, const Row& b) { return a.track_id < b.track_id; });
    for (std::size_t i = 0; i < rows_.size(); ++i) {
        const Row& r = rows_[i];
        if (r.track_id.empty() || r.recording_id.empty() || r.work_id.empty())
            throw_input("metadata row for track '{}' has an empty track_id, recording_id or work_id", r.track_id);
        if (!by_track_.emplace(r.track_id, i).second) throw_input("duplicate track_id '{}' in metadata", r.track_id);
    }
}

const MetadataTable::Row* MetadataTable::find(const std::string& track_id) const {
    auto it = by_track_.find(track_id);
    return it == by_track_.end() ? nullptr : &rows_[it->second];
}

MetadataTable MetadataTable::read(const std::filesystem::path& path) {
    CsvTable t = read_csv(path);
    const int tr = t.column("track_id"), rec = t.column("recording_id"), work = t.column("work_id");
    if (tr < 0 || rec < 0 || work < 0)
        throw_input("{}: missing required column(s): the metadata table needs recording_id, work_id, track_id", path.string());
    std::vector<Row> rows;
    for (std::size_t i = 0; i < t.rows.size(); ++i) {
        const auto& r = t.rows[i];
        Row row{r[static_cast<std::size_t>(tr)], r[static_cast<std::size_t>(rec)], r[static_cast<std::size_t>(work)], {}};
        for (std::size_t c = 0; c < t.header.size(); ++c)
            if (static_cast<int>(c) != tr && static_cast<int>(c) != rec && static_cast<int>(c) != work) row.extra[t.header[c]] = r[c];
        if (row.track_id.empty() || row.recording_id.empty() || row.work_id.empty())
            throw_input("{}: row {}: recording_id, work_id and track_id must be non-empty", path.string(), i + 2);
        rows.push_back(std::move(row));
    }
    return with_context(path.string(), [&] { return MetadataTable(std::move(rows)); });
}

void MetadataTable::write(const std::filesystem::path& path) const {
    std::set<std::string> extra;
    for (const auto& r : rows_)
        for (const auto& [k, v] : r.extra) extra.insert(k);
    CsvTable t;
    t.header = {"recording_id", "work_id", "track_id"};
    t.header.insert(t.header.end(), extra.begin(), extra.end());
    for (const auto& r : rows_) {
        std::vector<std::string> row = {r.recording_id, r.work_id, r.track_id};
        for (const auto& k : extra) {
            auto it = r.extra.find(k);
            row.push_back(it == r.extra.end() ? "" : it->second);
        }
        t.rows.push_back(std::move(row));
    }
    std::filesystem::create_directories(path.parent_path());
    write_csv(path, t);
}

}  // namespace mess
