#include "backends.hpp"

namespace mess::db {

void CatalogDb::upsert_audio_files(const std::vector<AudioFileRow>& files) {
    transaction([&] {
        for (const AudioFileRow& f : files) {
            exec("INSERT INTO audio_files (dataset_id, track_id, path, size, sha256, duration_s, sample_rate) VALUES"
                 " ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (dataset_id, track_id) DO UPDATE SET path = excluded.path,"
                 " size = excluded.size, sha256 = excluded.sha256, duration_s = excluded.duration_s,"
                 " sample_rate = excluded.sample_rate",
                 {f.dataset_id, f.track_id, f.path, num(f.size), f.sha256, num(f.duration_s),
                  num(static_cast<std::int64_t>(f.sample_rate))});
        }
    });
}

std::vector<AudioFileRow> CatalogDb::audio_files(const std::string& dataset_id) {
    std::vector<AudioFileRow> out;
    for (const Row& r : exec("SELECT dataset_id, track_id, path, size, sha256, duration_s, sample_rate FROM audio_files"
                             " WHERE dataset_id = $1 ORDER BY track_id", {dataset_id}))
        out.push_back({r.at(0), r.at(1), r.at(2), std::stoll(r.at(3)), r.at(4), std::stod(r.at(5)), std::stoi(r.at(6))});
    return out;
}

void CatalogDb::replace_clips(const std::string& dataset_id, const std::vector<ClipRow>& clips) {
    transaction([&] {
        exec("DELETE FROM clips WHERE dataset_id = $1", {dataset_id});
        for (const ClipRow& c : clips) {
            if (c.dataset_id != dataset_id) throw_usage("clip {}: dataset '{}' is not '{}'", c.clip_id, c.dataset_id, dataset_id);
            exec("INSERT INTO clips (dataset_id, clip_id, track_id, segment_idx, start_s, end_s, split) VALUES"
                 " ($1, $2, $3, $4, $5, $6, $7)",
                 {dataset_id, c.clip_id, c.track_id, num(static_cast<std::int64_t>(c.segment_idx)), num(c.start_s),
                  num(c.end_s), c.split});
        }
    });
}

std::vector<ClipRow> CatalogDb::clips(const std::string& dataset_id) {
    std::vector<ClipRow> out;
    for (const Row& r : exec("SELECT clip_id, dataset_id, track_id, segment_idx, start_s, end_s, split FROM clips"
                             " WHERE dataset_id = $1 ORDER BY track_id, segment_idx", {dataset_id}))
        out.push_back({r.at(0), r.at(1), r.at(2), std::stoi(r.at(3)), std::stod(r.at(4)), std::stod(r.at(5)), r.at(6)});
    return out;
}

// One statement: the increment of attempts happens in the database, so two runs never lose one.
void CatalogDb::set_extraction(const ExtractionRow& s) {
    static const char* statuses[] = {"running", "done", "failed", "skipped"};
    bool known = false;
    for (const char* st : statuses) known = known || s.status == st;
    if (!known) throw_usage("extraction state of {}: unknown status '{}' (running|done|failed|skipped)", s.track_id, s.status);
    transaction([&] {
        exec("INSERT INTO extractions (dataset_id, track_id, model, precision, status, error, run_id, attempts, updated_at)"
             " VALUES ($1, $2, $3, $4, $5, $6, $7, 1, $8) ON CONFLICT (dataset_id, track_id, model, precision) DO UPDATE SET"
             " status = excluded.status, error = excluded.error, run_id = excluded.run_id,"
             " attempts = extractions.attempts + 1, updated_at = excluded.updated_at",
             {s.dataset_id, s.track_id, s.model, s.precision, s.status, s.error, s.run_id, utc_now()});
    });
}

std::vector<ExtractionRow> CatalogDb::extractions(const std::string& dataset_id, const std::string& model) {
    std::vector<ExtractionRow> out;
    for (const Row& r : exec("SELECT dataset_id, track_id, model, precision, status, error, run_id, attempts, updated_at"
                             " FROM extractions WHERE dataset_id = $1 AND ($2 = '' OR model = $2)"
                             " ORDER BY track_id, model, precision", {dataset_id, model}))
        out.push_back({r.at(0), r.at(1), r.at(2), r.at(3), r.at(4), r.at(5), r.at(6), std::stoi(r.at(7)), r.at(8)});
    return out;
}

void CatalogDb::upsert_target(const TargetRow& t) {
    transaction([&] {
        exec("INSERT INTO targets (dataset_id, track_id, path, source, run_id, updated_at) VALUES ($1, $2, $3, $4, $5, $6)"
             " ON CONFLICT (dataset_id, track_id) DO UPDATE SET path = excluded.path, source = excluded.source,"
             " run_id = excluded.run_id, updated_at = excluded.updated_at",
             {t.dataset_id, t.track_id, t.path, t.source, t.run_id, utc_now()});
    });
}

std::vector<TargetRow> CatalogDb::targets(const std::string& dataset_id) {
    std::vector<TargetRow> out;
    for (const Row& r : exec("SELECT dataset_id, track_id, path, source, run_id FROM targets WHERE dataset_id = $1"
                             " ORDER BY track_id", {dataset_id}))
        out.push_back({r.at(0), r.at(1), r.at(2), r.at(3), r.at(4)});
    return out;
}

}  // namespace mess::db
