// mess/db.hpp — the catalog database: one interface, two backends (SQLite embedded, PostgreSQL by libpq).
//
//   auto db = mess::db::CatalogDb::open(mess::db::catalog_url(cfg));   // sqlite:<data_root>/catalog.sqlite
//   db->upsert_dataset({.dataset_id = "smd", .kind = "smd", .audio_dir = "audio/smd/wav-44"});
//   db->upsert_tracks(tracks);                                         // one transaction
//   mess::db::TrackPage page = db->list_tracks({.q = "chopin", .limit = 50});
//   std::int64_t id = db->add_judgement({.anchor = "a@10", .a = "b@0", .b = "c@5", .choice = "a"});
//   std::string csv = db->judgements_csv({});                          // anchor,a,b,choice,aspect rows
//
// The location is a URL: "sqlite:<path>" (a file; the default is <data_root>/catalog.sqlite) or
// "postgresql://user:password@host:port/dbname?..." / "postgres://..." (any libpq connection URI, so
// `host=/socket/dir` works as a query parameter). `--catalog URL` or MESS_CATALOG select it.
//
// Schema: versioned migrations in a table `schema_version` (version, name, applied_at), applied in order,
// each in its own transaction, when a catalog is opened. A database whose version is newer than this
// binary knows is refused: Error(input) naming the newer migration. Tables: datasets, works, recordings,
// tracks (metadata: a JSON object of free columns), audio_files, clips, extractions (per track, model and
// precision), extraction_shards (each shard i/N of a sharded extraction), targets, runs, judgements. Text
// search uses an FTS5 trigram index (SQLite) or a pg_trgm GIN index (PostgreSQL), or, for the whole words inside
// a search (between two spaces), an FTS5 unicode61 or to_tsvector('simple') GIN word index; listing and
// filtering use B-tree indexes on (dataset_id, track_id) and composer, and the totals of unfiltered, dataset and
// composer pages come from counts per (dataset, composer) that triggers keep exact (table track_groups,
// migration 7).
//
// Errors: every failure is a mess::Error: input for an unreachable server, bad credentials, a corrupt or
// newer database (the message names the catalog, with the password removed, and what the server said);
// usage for a malformed URL or argument. Writes are transactions: a crash loses nothing committed.
// Thread safety: one CatalogDb per thread (a connection is not shared); many processes may open the same
// catalog at once (SQLite WAL with a busy timeout; PostgreSQL row locks and atomic upserts).
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mess/util.hpp"

namespace mess::db {

// The catalog setting with its source: flags["catalog"] (--catalog) > MESS_CATALOG > the default
// sqlite:<data_root>/catalog.sqlite. `getenv` is injectable for tests.
// Errors: Error(usage) naming the flag or variable for a value that is neither sqlite:… nor postgresql://….
Setting<std::string> catalog_setting(const ConfigFlags& flags, const Config& config,
                                     const char* (*getenv_fn)(const char*) = nullptr);
// catalog_setting without flags: MESS_CATALOG when set, else sqlite:<data_root>/catalog.sqlite.
std::string catalog_url(const Config& config);
// The URL with any password replaced by "***" (for messages and `mess config`).
std::string redact_url(const std::string& url);

// ---- rows -----------------------------------------------------------------------------------

struct DatasetRow {
    std::string dataset_id{};
    std::string kind{};        // "smd" | "maestro" | "folder"
    std::string audio_dir{};   // relative to the data root when inside it
};

struct TrackRow {
    std::string dataset_id{}, track_id{}, recording_id{}, work_id{};
    std::string composer{}, title{};                 // MAESTRO: canonical_composer, canonical_title
    std::map<std::string, std::string> metadata{}; // free columns (not track/recording/work ids)
};

struct AudioFileRow {
    std::string dataset_id{}, track_id{};
    std::string path{};            // relative to the data root when inside it
    std::int64_t size = 0;       // bytes
    std::string sha256{};          // hex, empty when not computed
    double duration_s = 0;       // seconds, 0 when unknown
    int sample_rate = 0;         // Hz of the file, 0 when unknown
};

struct ClipRow {
    std::string clip_id{}, dataset_id{}, track_id{};
    int segment_idx = 0;
    double start_s = 0, end_s = 0;  // seconds in the track
    std::string split{};              // train | val | test
};

// Extraction state of one track for one model and precision.
struct ExtractionRow {
    std::string dataset_id{}, track_id{}, model{}, precision{};
    std::string status{};          // "running" | "done" | "failed" | "skipped"
    std::string error{};           // empty unless failed
    std::string run_id{};          // the run that wrote this state
    int attempts = 0;            // how many times a run set this row (incremented atomically)
    std::string updated_at{};      // UTC ISO-8601, set by the catalog
};

// One shard of a sharded extraction (`mess extract --shard i/N`): the latest attempt at it. Keyed by
// dataset, model, precision and shard i/N; the run registry keeps every attempt's run.
struct ShardRow {
    std::string dataset_id{}, model{}, precision{};
    int index = 0, count = 1;      // shard index/count (0 ≤ index < count)
    std::string status{};          // "running" | "done" (every track of the shard complete) | "failed"
    std::string run_id{};          // the attempt's run
    int attempts = 0;            // runs started on this shard (incremented atomically by start_shard)
    std::int64_t tracks = 0;     // tracks in the shard
    std::int64_t processed = 0, cached = 0, failed = 0, locked = 0;  // as the attempt's ExtractReport counts them
    std::int64_t windows = 0;    // windows embedded by the attempt
    double elapsed_s = 0;        // the attempt's extraction time, seconds
    std::string error{};           // why it is failed (empty otherwise)
    std::string started_at{}, updated_at{};  // UTC ISO-8601, set by the catalog
};

struct TargetRow {
    std::string dataset_id{}, track_id{};
    std::string path{};            // target file, relative to the data root when inside it
    std::string source{};          // "audio" | "audio+midi"
    std::string run_id{};
};

struct RunRow {
    std::string run_id{};          // e.g. 20261201T142233Z-extract-3f2a (unique, given by start_run)
    std::string kind{};            // extract | targets | probe | train | index-build | eval | ...
    std::string command_line{};
    std::string parameters{};      // JSON object
    std::string version{};         // mess version
    std::string started_at{}, ended_at{};  // UTC ISO-8601; ended_at empty while running
    std::string status{};          // running | ok | failed
    std::string metrics{};         // JSON object
    std::string outputs{};         // JSON array of paths
    std::string error{};
};

// One human judgement: which of two candidates is closer to the anchor. Items are passage references
// as `mess eval triplets` reads them (e.g. "track_id@start_seconds" or a clip id).
struct Judgement {
    std::int64_t id = 0;         // assigned by add_judgement
    std::string anchor{}, a{}, b{};
    std::string choice{};          // "a" | "b" (anything else is refused)
    std::string aspect{};          // empty = overall, else an aspect name (e.g. "dynamics")
    std::string listener{};        // listener id (free text, may be empty)
    double response_ms = 0;      // time from first play to the answer, milliseconds (≥ 0)
    std::string sampler{};         // how the triplet was chosen (free text)
    std::string created_at{};      // UTC ISO-8601, set by the catalog
};

struct JudgementFilter {
    std::string aspect{};          // "" = every aspect; "overall" = only judgements without an aspect
    std::string listener{};        // "" = every listener
    std::int64_t limit = 0;      // 0 = all
};

struct TrackQuery {
    std::string q{};               // case-insensitive substring of track id, composer, title or metadata
    std::string dataset{};         // exact dataset id, "" = all
    std::string composer{};        // case-insensitive substring, "" = all
    std::vector<std::pair<std::string, std::string>> columns{};  // exact (case-insensitive) metadata values
    std::int64_t offset = 0, limit = 50;
    // A text search or a column filter counts its matches up to this many (≥ 1): beyond, the page says
    // "more than count_limit" (TrackPage::total_exact false) instead of counting every match.
    std::int64_t count_limit = 1000;
    // A common word: when the catalog holds more than this many tracks (≥ 1) and its first this many (in
    // catalog order) hold the page's matches and one more, the page is read from them (see TrackPage).
    std::int64_t dense_rows = 5000;
};

// A page of tracks. Without q and columns the total is exact and read from counts kept per dataset and
// composer. With q or columns: when at most count_limit tracks match, the total is exact and the tracks are
// ordered as usual; when more match, `total` is count_limit, `total_exact` false (more than `total` match),
// and the tracks come in catalog order (the order they were registered: the text index's order), so that a
// common word pages without sorting every match. Dense matches (TrackQuery::dense_rows: more than offset +
// limit of them among the catalog's first dense_rows tracks, one at least among the first tenth of those) page in catalog order too, read from those
// tracks alone, `total_exact` false and `total` one less than the matches seen there (at most count_limit):
// a word in 2% of a million tracks pages without walking its index. Either way a page holds exactly the
// matching tracks.
struct TrackPage {
    std::int64_t total = 0;      // rows matching the query (a lower bound when !total_exact)
    bool total_exact = true;
    std::vector<TrackRow> tracks{};  // ordered by dataset_id, track_id (catalog order when !total_exact)
};

// ---- the catalog ----------------------------------------------------------------------------

struct OpenOptions {
    // Apply migrations up to this version only (0 = all): tests build older schemas with it.
    int target_version = 0;
    // Connect timeout for PostgreSQL, seconds.
    int connect_timeout_s = 5;
    // false: connect only, no migration and no version check (maintenance tools, tests).
    bool migrate = true;
};

class CatalogDb {
public:
    // Opens (creating a SQLite file and its folder when missing) and migrates.
    // Errors: see the top of this header.
    static std::unique_ptr<CatalogDb> open(const std::string& url, const OpenOptions& options = {});
    virtual ~CatalogDb();

    virtual std::string backend() const = 0;     // "sqlite" | "postgresql"
    const std::string& url() const { return url_; }
    int schema_version();                        // newest applied migration
    static int latest_schema_version();          // what this binary knows

    // Datasets, tracks, files, clips (upserts by their keys; each call is one transaction).
    void upsert_dataset(const DatasetRow& dataset);
    std::vector<DatasetRow> datasets();
    void upsert_tracks(const std::vector<TrackRow>& tracks);
    // Deletes the dataset's tracks not in `keep` (their files, clips, states too). Returns how many.
    std::int64_t remove_tracks_except(const std::string& dataset_id, const std::vector<std::string>& keep);
    std::optional<TrackRow> track(const std::string& dataset_id, const std::string& track_id);
    std::vector<TrackRow> tracks(const std::string& dataset_id);   // ordered by track_id
    TrackPage list_tracks(const TrackQuery& query);
    std::vector<std::pair<std::string, std::int64_t>> composers(); // composer → tracks, by name
    void upsert_audio_files(const std::vector<AudioFileRow>& files);
    std::vector<AudioFileRow> audio_files(const std::string& dataset_id);
    void replace_clips(const std::string& dataset_id, const std::vector<ClipRow>& clips);
    std::vector<ClipRow> clips(const std::string& dataset_id);

    // Extraction state and targets.
    void set_extraction(const ExtractionRow& state);   // upsert; attempts = previous + 1, atomically
    std::vector<ExtractionRow> extractions(const std::string& dataset_id, const std::string& model = "");
    // Shards of a sharded extraction. start_shard records an attempt (status running, counts zero, its
    // run id, attempts + 1) and returns the run id of an earlier attempt the row still showed as running
    // (killed, lost, or still going elsewhere), "" when none. finish_shard sets status, counts and error of
    // the attempt `shard.run_id`; false (nothing changed) when a later attempt has started since.
    // Errors: Error(usage) for a status other than running|done|failed or a shard outside 0 ≤ index < count.
    std::string start_shard(const ShardRow& shard);
    bool finish_shard(const ShardRow& shard);
    // Ordered by model, precision, count, index; "" / 0 = any.
    std::vector<ShardRow> shards(const std::string& dataset_id, const std::string& model = "", int count = 0);
    void upsert_target(const TargetRow& target);
    std::vector<TargetRow> targets(const std::string& dataset_id);

    // Run registry.
    // Records a run as "running" with a new unique id (kind, time and random suffix); returns it.
    std::string start_run(const RunRow& run);
    // Sets status ("ok" | "failed"), end time, metrics, outputs and error of a run.
    void finish_run(const std::string& run_id, const std::string& status, const std::string& metrics_json,
                    const std::string& outputs_json, const std::string& error = "");
    std::optional<RunRow> run(const std::string& run_id);   // also by a unique prefix of the id
    std::vector<RunRow> runs(const std::string& kind = "", std::int64_t limit = 0);  // newest first

    // Judgements.
    // Errors: Error(usage) for an empty anchor/a/b, a == b, a choice other than "a"/"b", response_ms < 0.
    std::int64_t add_judgement(const Judgement& judgement);
    std::vector<Judgement> judgements(const JudgementFilter& filter = {});  // oldest first
    // "anchor,a,b,choice,aspect" header and rows (CSV-quoted), choice as "a"/"b"; the triplet CSV of
    // `mess eval triplets`. with_aspect = false drops the aspect column.
    std::string judgements_csv(const JudgementFilter& filter = {}, bool with_aspect = true);
    void export_judgements(const std::filesystem::path& path, const JudgementFilter& filter = {},
                           bool with_aspect = true);  // atomic

    // The SQL layer of a backend (public so that tests and benchmarks can reach the raw database).
    struct Row {
        std::vector<std::optional<std::string>> values;
        const std::string& at(std::size_t i) const;      // "" for NULL
    };
    // Runs one statement with $1…$n parameters (text; std::nullopt = NULL); returns its rows.
    std::vector<Row> exec(const std::string& sql, const std::vector<std::optional<std::string>>& params = {}) {
        return run_sql(sql, params);
    }
    // Runs fn in one write transaction (retried from the start on a serialisation failure or busy lock).
    void transaction(const std::function<void()>& fn);

protected:
    explicit CatalogDb(std::string url) : url_(std::move(url)) {}
    virtual std::vector<Row> run_sql(const std::string& sql, const std::vector<std::optional<std::string>>& params) = 0;
    virtual void begin_write() = 0;   // BEGIN IMMEDIATE | BEGIN
    virtual bool retryable(const Error& e) const = 0;
    virtual std::string dialect(const std::string& sql) const = 0;  // portable DDL → this backend's
    // SQL text of the value of key `key_param` (a parameter such as "$3") in a JSON-object column.
    virtual std::string json_text(const std::string& column, const std::string& key_param) const = 0;
    // How to read the rows of tracks alias `alias` whose search text is LIKE `pattern_param`: the FROM clause,
    // the " AND …" condition, and the expression of the index's own order (catalog order). Through the trigram
    // index, or, when `words_param` is not empty, through the word index: rows holding every word of the
    // parameter (quoted words, '"w1" "w2"'), the pattern then checked on each of them.
    struct TextScan {
        std::string from, condition, order;
    };
    virtual TextScan text_scan(const std::string& alias, const std::string& pattern_param, const std::string& words_param) const = 0;
    void migrate(const OpenOptions& options);

private:
    std::string url_;
    int depth_ = 0;
};

}  // namespace mess::db
