// bench_catalog: listing, filtering and text search over N tracks (default 1,000,000) in the catalog database,
// for SQLite and a PostgreSQL 15 started for the run (as the tests start it). Prints p50/p95 per page for
// each query kind and the ratio against the same query without its index (a full scan) in the same run.
//   build/bench/bench_catalog                 # both backends, 1 M tracks (a few minutes: filling the catalog)
//   build/bench/bench_catalog --tracks 200000 --backend sqlite
//   build/bench/bench_catalog --dense-rows 100000000   # common words through their index alone (the plan before)
#include <algorithm>
#include <chrono>
#include <random>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "db/catalog_backends.hpp"

using namespace mess;
using namespace mess::db;

namespace {

using Clock = std::chrono::steady_clock;

// Fills the catalog in the database itself (a generated series), so that the fill is not the benchmark.
void fill(CatalogDb& db, std::int64_t n) {
    const bool pg = db.backend() == "postgresql";
    for (int d = 0; d < 4; ++d) db.upsert_dataset({.dataset_id = fmt::format("ds{}", d), .kind = "folder", .audio_dir = "a"});
    const std::string series = pg ? fmt::format("SELECT generate_series(0, {}) AS i", n - 1)
                                  : fmt::format("WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < {}) SELECT i FROM s", n - 1);
    const std::string id = pg ? "lpad(i::text, 7, '0')" : "printf('%07d', i)";
    db.transaction([&] {
        db.exec("CREATE TEMPORARY TABLE names (k INTEGER PRIMARY KEY, name TEXT NOT NULL)");
        for (int k = 0; k < 50; ++k) db.exec("INSERT INTO names VALUES ($1, $2)", {std::to_string(k), fmt::format("Composer{:02d} Surname{}", k, k * 7)});
        db.exec(fmt::format(
            "INSERT INTO tracks (dataset_id, track_id, recording_id, work_id, composer, title, metadata, composer_lc, haystack)"
            " SELECT 'ds' || (i % 4), 't' || {id}, 'r' || {id}, 'w' || (i / 5), c.name, 'Opus ' || (i / 7) || ' No. ' || (i % 7),"
            " '{{\"year\":\"' || (1990 + i % 30) || '\"}}', lower(c.name),"
            " lower('t' || {id} || ' ' || c.name || ' opus ' || (i / 7) || ' no. ' || (i % 7) || ' ' || (1990 + i % 30))"
            " FROM ({series}) s JOIN names c ON c.k = i % 50", fmt::arg("id", id), fmt::arg("series", series)));
        db.exec("INSERT INTO works (dataset_id, work_id, composer, title, composer_lc) SELECT dataset_id, work_id,"
                " min(composer), min(title), min(composer_lc) FROM tracks GROUP BY dataset_id, work_id");
        db.exec("DROP TABLE names");
    });
    db.exec(pg ? "VACUUM ANALYZE" : "ANALYZE");  // PostgreSQL: as autovacuum leaves a settled table (index-only scans)
}

struct Figures {
    double p50 = 0, p95 = 0;
};

template <class F>
Figures time_it(int repeats, F&& fn) {
    std::vector<double> ms;
    for (int r = 0; r < repeats; ++r) {
        const auto t0 = Clock::now();
        fn(r);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return {ms[ms.size() / 2], ms[ms.size() * 95 / 100]};
}

void run_backend(CatalogDb& db, std::int64_t n, int repeats, std::int64_t dense_rows) {
    const auto t0 = Clock::now();
    fill(db, n);
    fmt::print("{}: filled {} tracks in {:.1f} s\n", db.backend(), n, std::chrono::duration<double>(Clock::now() - t0).count());
    std::mt19937 rng(7);
    auto opus = [&](int r) { return fmt::format("opus {} no", (r * 7919 + 13) % (n / 7)); };
    struct Case {
        const char* name;
        std::function<TrackQuery(int)> query;
        std::string reference;  // the same selection without an index (a scan), for the ratio
    };
    const std::string scan = db.backend() == "sqlite" ? "SELECT count(*) FROM tracks NOT INDEXED WHERE " : "SELECT count(*) FROM tracks WHERE ";
    std::vector<Case> cases = {
        {"list (page at offset ≤ 10,000)", [&](int r) { return TrackQuery{.offset = (r * 997) % 10000, .limit = 50}; },
         scan + "dataset_id <> '' AND track_id <> ''"},
        {"filter dataset", [&](int r) { return TrackQuery{.dataset = fmt::format("ds{}", r % 4), .offset = (r * 31) % 1000, .limit = 50}; },
         scan + "dataset_id || '' = 'ds1'"},
        {"filter composer (20,000 matches)", [&](int r) {
             return TrackQuery{.composer = fmt::format("composer{:02d}", r % 50), .offset = (r * 31) % 1000, .limit = 50}; },
         scan + "composer_lc || '' LIKE '%composer07%'"},
        {"filter dataset and composer", [&](int r) {
             return TrackQuery{.dataset = fmt::format("ds{}", r % 4), .composer = fmt::format("composer{:02d}", (r * 2 + r % 4) % 50),
                               .limit = 50}; },
         scan + "dataset_id || '' = 'ds1' AND composer_lc || '' LIKE '%composer07%'"},
        {"text search (a work: 'opus N no')", [&](int r) { return TrackQuery{.q = opus(r), .limit = 50}; },
         scan + "haystack || '' LIKE '%opus 1234 no%'"},
        {"text search (a number: 6 digits)", [&](int r) { return TrackQuery{.q = fmt::format("{:06d}", (r * 4999 + 7) % (n / 10)), .limit = 50}; },
         scan + "haystack || '' LIKE '%012345%'"},
        {"text search (a common word: all)", [&](int r) {
             return TrackQuery{.q = r % 2 ? "opus" : "surname", .offset = (r * 31) % 1000, .limit = 50}; },
         scan + "haystack || '' LIKE '%opus%'"},
        {"text search (a name: 2% of tracks)", [&](int r) { return TrackQuery{.q = fmt::format("composer{:02d}", r % 50), .limit = 50}; },
         scan + "haystack || '' LIKE '%composer07%'"},
        {"text search (a year: 3% of tracks)", [&](int r) { return TrackQuery{.q = std::to_string(1990 + r % 30), .limit = 50}; },
         scan + "haystack || '' LIKE '%1995%'"},
    };
    fmt::print("{:<36} {:>9} {:>9} {:>14} {:>8}\n", "query (limit 50)", "p50 ms", "p95 ms", "scan p50 ms", "ratio");
    for (const Case& c : cases) {
        std::int64_t total = 0, inexact = 0;
        const Figures f = time_it(repeats, [&](int r) {
            TrackQuery query = c.query(r);
            query.dense_rows = dense_rows;
            const TrackPage page = db.list_tracks(query);
            total += page.total;
            inexact += page.total_exact ? 0 : 1;
        });
        const Figures ref = time_it(std::max(3, repeats / 20), [&](int) { db.exec(c.reference); });
        const std::string matched = inexact == repeats ? fmt::format("more than {} rows matched", total / repeats)
                                                      : fmt::format("{} rows matched on average", total / repeats);
        fmt::print("{:<36} {:>9.2f} {:>9.2f} {:>14.1f} {:>7.0f}×   ({}) {}\n", c.name, f.p50, f.p95, ref.p50, ref.p50 / f.p50,
                   inexact == 0 || inexact == repeats ? matched : fmt::format("{}, {} pages inexact", matched, inexact),
                   f.p50 <= 5.0 ? "ok (≤ 5 ms)" : "OVER 5 ms");
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"bench_catalog: catalog listing, filtering and text search over many tracks"};
    std::int64_t tracks = 1'000'000;
    int repeats = 200;
    std::string backend = "both";
    std::int64_t dense_rows = TrackQuery{}.dense_rows;
    app.add_option("--tracks", tracks, "Tracks in the catalog")->check(CLI::Range(1000, 100'000'000));
    app.add_option("--repeats", repeats, "Pages per query kind")->check(CLI::Range(10, 100000));
    app.add_option("--backend", backend, "sqlite | postgresql | both")->check(CLI::IsMember({"sqlite", "postgresql", "both"}));
    app.add_option("--dense-rows", dense_rows, "TrackQuery::dense_rows")->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 40));
    CLI11_PARSE(app, argc, argv);
    try {
        if (backend != "postgresql") {
            test::TempDir dir;
            auto db = CatalogDb::open("sqlite:" + (dir / "bench.sqlite").string());
            run_backend(*db, tracks, repeats, dense_rows);
        }
        if (backend != "sqlite") {
            PostgresServer::get().reset_database();
            auto db = CatalogDb::open(PostgresServer::get().url());
            run_backend(*db, tracks, repeats, dense_rows);
        }
    } catch (const Error& e) {
        fmt::print(stderr, "bench_catalog: {}\n", e.what());
        return 1;
    }
    fmt::print("reproduce: build/bench/bench_catalog --tracks {} --repeats {} --backend {} --dense-rows {}\n", tracks, repeats, backend,
               dense_rows);
    return 0;
}
