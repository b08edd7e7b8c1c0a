#include <thread>

#include "backends.hpp"

namespace mess::db {

namespace {

// Exact totals of unfiltered, dataset and composer pages without counting tracks: one count per dataset and
// composer, kept by triggers in the transaction of every write (replaces track_counts and composers). And an
// index of the search text's whole words: common words make long trigram lists, a rare whole word a short one.
Migration track_groups() {
    return {7, "track counts per dataset and composer, word index",
         {"CREATE TABLE track_groups (dataset_id TEXT NOT NULL, composer_lc TEXT NOT NULL, n {bigint} NOT NULL,"
          " PRIMARY KEY (dataset_id, composer_lc))",
          "INSERT INTO track_groups (dataset_id, composer_lc, n) SELECT dataset_id, composer_lc, count(*) FROM tracks"
          " GROUP BY dataset_id, composer_lc"},
         {"DROP TRIGGER tracks_count_insert", "DROP TRIGGER tracks_count_delete", "DROP TABLE track_counts", "DROP TABLE composers",
          "CREATE TRIGGER tracks_group_insert AFTER INSERT ON tracks BEGIN INSERT INTO track_groups (dataset_id, composer_lc, n)"
          " VALUES (new.dataset_id, new.composer_lc, 1) ON CONFLICT (dataset_id, composer_lc) DO UPDATE SET n = n + 1; END",
          "CREATE TRIGGER tracks_group_delete AFTER DELETE ON tracks BEGIN UPDATE track_groups SET n = n - 1"
          " WHERE dataset_id = old.dataset_id AND composer_lc = old.composer_lc; END",
          "CREATE TRIGGER tracks_group_update AFTER UPDATE OF dataset_id, composer_lc ON tracks"
          " WHEN old.dataset_id <> new.dataset_id OR old.composer_lc <> new.composer_lc BEGIN"
          " UPDATE track_groups SET n = n - 1 WHERE dataset_id = old.dataset_id AND composer_lc = old.composer_lc;"
          " INSERT INTO track_groups (dataset_id, composer_lc, n) VALUES (new.dataset_id, new.composer_lc, 1)"
          " ON CONFLICT (dataset_id, composer_lc) DO UPDATE SET n = n + 1; END",
          // Whole words of the search text (a search's inner words select through their short lists).
          "CREATE VIRTUAL TABLE track_words USING fts5 (haystack, content='tracks', content_rowid='id', tokenize='unicode61')",
          "INSERT INTO track_words (rowid, haystack) SELECT id, haystack FROM tracks",
          "CREATE TRIGGER tracks_words_insert AFTER INSERT ON tracks BEGIN"
          " INSERT INTO track_words (rowid, haystack) VALUES (new.id, new.haystack); END",
          "CREATE TRIGGER tracks_words_delete AFTER DELETE ON tracks BEGIN"
          " INSERT INTO track_words (track_words, rowid, haystack) VALUES ('delete', old.id, old.haystack); END",
          "CREATE TRIGGER tracks_words_update AFTER UPDATE OF haystack ON tracks BEGIN"
          " INSERT INTO track_words (track_words, rowid, haystack) VALUES ('delete', old.id, old.haystack);"
          " INSERT INTO track_words (rowid, haystack) VALUES (new.id, new.haystack); END"},
         {"DROP TRIGGER tracks_count_insert ON tracks", "DROP TRIGGER tracks_count_delete ON tracks",
          "DROP FUNCTION mess_count_tracks()", "DROP TABLE track_counts", "DROP TABLE composers",
          // Statement triggers: the rows a statement inserted, deleted or changed, counted by group in one upsert (in
          // key order, so two writers lock the groups they share in the same order and cannot deadlock).
          "CREATE FUNCTION mess_count_groups() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
          " IF TG_OP = 'INSERT' THEN INSERT INTO track_groups (dataset_id, composer_lc, n) SELECT dataset_id, composer_lc, count(*)"
          " FROM new_rows GROUP BY dataset_id, composer_lc ORDER BY dataset_id, composer_lc"
          " ON CONFLICT (dataset_id, composer_lc) DO UPDATE SET n = track_groups.n + excluded.n;"
          " ELSIF TG_OP = 'DELETE' THEN UPDATE track_groups g SET n = g.n - d.k FROM (SELECT dataset_id, composer_lc, count(*) AS k"
          " FROM old_rows GROUP BY dataset_id, composer_lc) d WHERE g.dataset_id = d.dataset_id AND g.composer_lc = d.composer_lc;"
          " ELSE INSERT INTO track_groups (dataset_id, composer_lc, n) SELECT dataset_id, composer_lc, sum(k) FROM"
          " (SELECT dataset_id, composer_lc, 1 AS k FROM new_rows UNION ALL SELECT dataset_id, composer_lc, -1 FROM old_rows) c"
          " GROUP BY dataset_id, composer_lc HAVING sum(k) <> 0 ORDER BY dataset_id, composer_lc"
          " ON CONFLICT (dataset_id, composer_lc) DO UPDATE SET n = track_groups.n + excluded.n; END IF; RETURN NULL; END $$",
          "CREATE TRIGGER tracks_group_insert AFTER INSERT ON tracks REFERENCING NEW TABLE AS new_rows"
          " FOR EACH STATEMENT EXECUTE FUNCTION mess_count_groups()",
          "CREATE TRIGGER tracks_group_delete AFTER DELETE ON tracks REFERENCING OLD TABLE AS old_rows"
          " FOR EACH STATEMENT EXECUTE FUNCTION mess_count_groups()",
          "CREATE TRIGGER tracks_group_update AFTER UPDATE ON tracks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
          " FOR EACH STATEMENT EXECUTE FUNCTION mess_count_groups()",
          "CREATE INDEX tracks_words ON tracks USING gin (to_tsvector('simple', haystack))"}};
}

Migration core_tables() {
    return {1, "core tables",
         {"CREATE TABLE datasets (dataset_id TEXT PRIMARY KEY, kind TEXT NOT NULL, audio_dir TEXT NOT NULL,"
          " updated_at TEXT NOT NULL)",
          "CREATE TABLE works (dataset_id TEXT NOT NULL, work_id TEXT NOT NULL, composer TEXT NOT NULL DEFAULT '',"
          " title TEXT NOT NULL DEFAULT '', composer_lc TEXT NOT NULL DEFAULT '', PRIMARY KEY (dataset_id, work_id))",
          "CREATE INDEX works_composer ON works (composer_lc)",
          "CREATE TABLE recordings (dataset_id TEXT NOT NULL, recording_id TEXT NOT NULL, work_id TEXT NOT NULL,"
          " PRIMARY KEY (dataset_id, recording_id))",
          "CREATE TABLE tracks (id {id}, dataset_id TEXT NOT NULL REFERENCES datasets (dataset_id) ON DELETE CASCADE,"
          " track_id TEXT NOT NULL, recording_id TEXT NOT NULL, work_id TEXT NOT NULL, composer TEXT NOT NULL DEFAULT '',"
          " title TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}', composer_lc TEXT NOT NULL DEFAULT '',"
          " haystack TEXT NOT NULL DEFAULT '', UNIQUE (dataset_id, track_id))",
          "CREATE INDEX tracks_order ON tracks (dataset_id, track_id)",
          "CREATE INDEX tracks_composer ON tracks (composer_lc, dataset_id, track_id)",
          "CREATE TABLE audio_files (dataset_id TEXT NOT NULL, track_id TEXT NOT NULL, path TEXT NOT NULL,"
          " size {bigint} NOT NULL DEFAULT 0, sha256 TEXT NOT NULL DEFAULT '', duration_s {double} NOT NULL DEFAULT 0,"
          " sample_rate INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dataset_id, track_id))",
          "CREATE TABLE clips (dataset_id TEXT NOT NULL, clip_id TEXT NOT NULL, track_id TEXT NOT NULL,"
          " segment_idx INTEGER NOT NULL, start_s {double} NOT NULL, end_s {double} NOT NULL, split TEXT NOT NULL,"
          " PRIMARY KEY (dataset_id, clip_id))",
          "CREATE INDEX clips_track ON clips (dataset_id, track_id, segment_idx)",
          "CREATE TABLE extractions (dataset_id TEXT NOT NULL, track_id TEXT NOT NULL, model TEXT NOT NULL,"
          " precision TEXT NOT NULL, status TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', run_id TEXT NOT NULL DEFAULT '',"
          " attempts INTEGER NOT NULL DEFAULT 0, updated_at TEXT NOT NULL,"
          " PRIMARY KEY (dataset_id, track_id, model, precision))",
          "CREATE INDEX extractions_status ON extractions (dataset_id, model, status)",
          "CREATE TABLE targets (dataset_id TEXT NOT NULL, track_id TEXT NOT NULL, path TEXT NOT NULL,"
          " source TEXT NOT NULL, run_id TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL,"
          " PRIMARY KEY (dataset_id, track_id))"},
         {},
         {}};
}

}  // namespace

// The schema, oldest first. Never edit a released migration: add one.
const std::vector<Migration>& migrations() {
    static const std::vector<Migration> all = {
        core_tables(),
        {2, "run registry and judgements",
         {"CREATE TABLE runs (run_id TEXT PRIMARY KEY, kind TEXT NOT NULL, command_line TEXT NOT NULL,"
          " parameters TEXT NOT NULL DEFAULT '{}', version TEXT NOT NULL, started_at TEXT NOT NULL,"
          " ended_at TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, metrics TEXT NOT NULL DEFAULT '{}',"
          " outputs TEXT NOT NULL DEFAULT '[]', error TEXT NOT NULL DEFAULT '')",
          "CREATE INDEX runs_started ON runs (started_at)",
          "CREATE INDEX runs_kind ON runs (kind, started_at)",
          "CREATE TABLE judgements (id {id}, anchor TEXT NOT NULL, a TEXT NOT NULL, b TEXT NOT NULL,"
          " choice TEXT NOT NULL, aspect TEXT NOT NULL DEFAULT '', listener TEXT NOT NULL DEFAULT '',"
          " response_ms {double} NOT NULL DEFAULT 0, sampler TEXT NOT NULL DEFAULT '', created_at TEXT NOT NULL)",
          "CREATE INDEX judgements_aspect ON judgements (aspect, id)",
          "CREATE INDEX judgements_listener ON judgements (listener, id)"},
         {},
         {}},
        {3, "track text search index",
         {},
         {"CREATE VIRTUAL TABLE track_text USING fts5 (haystack, content='tracks', content_rowid='id',"
          " tokenize='trigram')",
          "INSERT INTO track_text (rowid, haystack) SELECT id, haystack FROM tracks",
          "CREATE TRIGGER tracks_text_insert AFTER INSERT ON tracks BEGIN"
          " INSERT INTO track_text (rowid, haystack) VALUES (new.id, new.haystack); END",
          "CREATE TRIGGER tracks_text_delete AFTER DELETE ON tracks BEGIN"
          " INSERT INTO track_text (track_text, rowid, haystack) VALUES ('delete', old.id, old.haystack); END",
          "CREATE TRIGGER tracks_text_update AFTER UPDATE OF haystack ON tracks BEGIN"
          " INSERT INTO track_text (track_text, rowid, haystack) VALUES ('delete', old.id, old.haystack);"
          " INSERT INTO track_text (rowid, haystack) VALUES (new.id, new.haystack); END"},
         {"CREATE EXTENSION IF NOT EXISTS pg_trgm",
          "CREATE INDEX tracks_haystack ON tracks USING gin (haystack gin_trgm_ops)"}},
        // Unfiltered pages need the number of tracks; counting a million rows per page is too slow.
        {4, "track counts per dataset",
         {"CREATE TABLE track_counts (dataset_id TEXT PRIMARY KEY, n {bigint} NOT NULL)",
          "INSERT INTO track_counts (dataset_id, n) SELECT dataset_id, count(*) FROM tracks GROUP BY dataset_id"},
         {"CREATE TRIGGER tracks_count_insert AFTER INSERT ON tracks BEGIN INSERT INTO track_counts (dataset_id, n)"
          " VALUES (new.dataset_id, 1) ON CONFLICT (dataset_id) DO UPDATE SET n = n + 1; END",
          "CREATE TRIGGER tracks_count_delete AFTER DELETE ON tracks BEGIN"
          " UPDATE track_counts SET n = n - 1 WHERE dataset_id = old.dataset_id; END"},
         {"CREATE FUNCTION mess_count_tracks() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
          " IF TG_OP = 'INSERT' THEN INSERT INTO track_counts (dataset_id, n) SELECT dataset_id, count(*) FROM new_rows"
          " GROUP BY dataset_id ON CONFLICT (dataset_id) DO UPDATE SET n = track_counts.n + excluded.n;"
          " ELSE UPDATE track_counts c SET n = c.n - d.k FROM (SELECT dataset_id, count(*) AS k FROM old_rows"
          " GROUP BY dataset_id) d WHERE c.dataset_id = d.dataset_id; END IF; RETURN NULL; END $$",
          "CREATE TRIGGER tracks_count_insert AFTER INSERT ON tracks REFERENCING NEW TABLE AS new_rows"
          " FOR EACH STATEMENT EXECUTE FUNCTION mess_count_tracks()",
          "CREATE TRIGGER tracks_count_delete AFTER DELETE ON tracks REFERENCING OLD TABLE AS old_rows"
          " FOR EACH STATEMENT EXECUTE FUNCTION mess_count_tracks()"}},
        // The composer filter is a substring of a name: matched against the few names, then the tracks index.
        {5, "composer names",
         {"CREATE TABLE composers (composer_lc TEXT PRIMARY KEY)",
          "INSERT INTO composers (composer_lc) SELECT DISTINCT composer_lc FROM tracks"},
         {},
         {}},
        // The state of each shard i/N of a sharded extraction, for the job that merges them.
        {6, "extraction shards",
         {"CREATE TABLE extraction_shards (dataset_id TEXT NOT NULL, model TEXT NOT NULL, precision TEXT NOT NULL,"
          " shard_count INTEGER NOT NULL, shard_index INTEGER NOT NULL, status TEXT NOT NULL, run_id TEXT NOT NULL,"
          " attempts INTEGER NOT NULL DEFAULT 0, tracks {bigint} NOT NULL DEFAULT 0, processed {bigint} NOT NULL DEFAULT 0,"
          " cached {bigint} NOT NULL DEFAULT 0, failed {bigint} NOT NULL DEFAULT 0, locked {bigint} NOT NULL DEFAULT 0,"
          " windows {bigint} NOT NULL DEFAULT 0, elapsed_s {double} NOT NULL DEFAULT 0, error TEXT NOT NULL DEFAULT '',"
          " started_at TEXT NOT NULL, updated_at TEXT NOT NULL,"
          " PRIMARY KEY (dataset_id, model, precision, shard_count, shard_index))"},
         {},
         {}},
        track_groups(),
    };
    return all;
}

int CatalogDb::latest_schema_version() { return migrations().back().version; }

namespace {

struct Applied {
    int version = 0;
    std::string name;
};

Applied newest_applied(CatalogDb& db) {
    const auto rows = db.exec("SELECT version, name FROM schema_version ORDER BY version DESC LIMIT 1");
    if (rows.empty()) return {};
    return {std::stoi(rows[0].at(0)), rows[0].at(1)};
}

// Error(input) naming the database's newest migration when this binary does not know it.
void refuse_newer(const std::string& url, const Applied& now) {
    if (now.version <= CatalogDb::latest_schema_version()) return;
    throw_input("catalog {}: schema version {} ('{}') is newer than this mess knows (up to {}, '{}'); use a newer mess",
                redact_url(url), now.version, now.name, CatalogDb::latest_schema_version(), migrations().back().name);
}

}  // namespace

int CatalogDb::schema_version() { return newest_applied(*this).version; }

// Each pending migration in its own write transaction; the first statement of each takes the
// backend's write lock, so two processes opening a new catalog at once apply each migration once.
void CatalogDb::migrate(const OpenOptions& options) {
    const int target = options.target_version > 0 ? options.target_version : latest_schema_version();
    const bool sqlite = backend() == "sqlite";
    for (const Migration& m : migrations()) {
        if (m.version > target) break;
        transaction([&] {
            if (!sqlite) exec("SELECT pg_advisory_xact_lock(7245311)");
            exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                 " applied_at TEXT NOT NULL)");
            const Applied now = newest_applied(*this);
            refuse_newer(url(), now);
            if (now.version >= m.version) return;
            for (const char* sql : m.common) exec(dialect(sql));
            for (const char* sql : sqlite ? m.sqlite_only : m.postgres_only) exec(sql);
            exec("INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                 {std::to_string(m.version), std::string(m.name), utc_now()});
        });
    }
    refuse_newer(url(), newest_applied(*this));  // also when no migration was pending
}

}  // namespace mess::db
