// The catalog database on both backends: round trips, migrations, concurrency, crashes, connection errors.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

#include "catalog_backends.hpp"

namespace mess::db {
namespace {

class Catalog : public CatalogSuite {};

TrackRow track(const std::string& id, const std::string& composer, const std::string& title) {
    return {.dataset_id = "ds", .track_id = id, .recording_id = "rec-" + id, .work_id = "work-" + title,
            .composer = composer, .title = title, .metadata = {{"year", "2004"}, {"performer", "Anna K"}}};
}

TEST_P(Catalog, TracksFilesClipsRoundTrip) {
    auto db = open_fresh();
    EXPECT_EQ(db->schema_version(), CatalogDb::latest_schema_version());
    db->upsert_dataset({.dataset_id = "ds", .kind = "folder", .audio_dir = "audio/ds"});
    db->upsert_tracks({track("t1", "Frédéric Chopin", "Ballade No. 1"), track("t2", "Johann Sebastian Bach", "Prelude in C"),
                       track("t3", "Frédéric Chopin", "Nocturne")});
    db->upsert_tracks({track("t3", "Frédéric Chopin", "Nocturne Op. 9")});  // an update, not a new row
    ASSERT_EQ(db->tracks("ds").size(), 3u);
    EXPECT_EQ(db->track("ds", "t3")->title, "Nocturne Op. 9");
    EXPECT_EQ(db->track("ds", "t1")->metadata.at("performer"), "Anna K");
    EXPECT_FALSE(db->track("ds", "nope").has_value());
    EXPECT_EQ(db->list_tracks({.q = "CHOP"}).total, 2);
    EXPECT_EQ(db->list_tracks({.q = "prelude in"}).tracks.at(0).track_id, "t2");
    EXPECT_EQ(db->list_tracks({.composer = "bach"}).total, 1);
    EXPECT_EQ(db->list_tracks({.columns = {{"performer", "anna k"}}}).total, 3);
    EXPECT_EQ(db->list_tracks({.columns = {{"performer", "nobody"}}}).total, 0);
    const TrackPage page = db->list_tracks({.offset = 1, .limit = 1});
    EXPECT_EQ(page.total, 3);
    ASSERT_EQ(page.tracks.size(), 1u);
    EXPECT_EQ(page.tracks[0].track_id, "t2");
    EXPECT_EQ(db->composers().at(0), std::make_pair(std::string("Frédéric Chopin"), std::int64_t{2}));

    db->upsert_audio_files({{.dataset_id = "ds", .track_id = "t1", .path = "audio/ds/t1.wav", .size = 1234,
                             .sha256 = "ab", .duration_s = 12.5, .sample_rate = 44100}});
    EXPECT_EQ(db->audio_files("ds").at(0).sample_rate, 44100);
    EXPECT_DOUBLE_EQ(db->audio_files("ds").at(0).duration_s, 12.5);
    db->replace_clips("ds", {{.clip_id = "c0", .dataset_id = "ds", .track_id = "t1", .segment_idx = 0, .start_s = 0,
                              .end_s = 5, .split = "train"},
                             {.clip_id = "c1", .dataset_id = "ds", .track_id = "t1", .segment_idx = 1, .start_s = 2.5,
                              .end_s = 7.5, .split = "test"}});
    EXPECT_EQ(db->clips("ds").at(1).split, "test");
    db->upsert_target({.dataset_id = "ds", .track_id = "t1", .path = "proxy_targets/ds/t1.targets.npz", .source = "audio"});
    EXPECT_EQ(db->targets("ds").size(), 1u);
    EXPECT_EQ(db->remove_tracks_except("ds", {"t2", "t3"}), 1);
    EXPECT_TRUE(db->audio_files("ds").empty());
    EXPECT_TRUE(db->clips("ds").empty());
    EXPECT_THROW(db->list_tracks({.limit = 0}), Error);
    EXPECT_THROW(db->upsert_tracks({TrackRow{.dataset_id = "ds"}}), Error);
}

TEST_P(Catalog, RunRegistry) {
    auto db = open_fresh();
    const std::string a = db->start_run({.kind = "extract", .command_line = "mess extract --dataset smd",
                                         .parameters = R"({"model":"dsp"})", .version = "0.9.0"});
    const std::string b = db->start_run({.kind = "extract", .command_line = "mess extract --dataset smd --shard 1/2"});
    EXPECT_NE(a, b);
    EXPECT_EQ(db->run(a)->status, "running");
    db->finish_run(a, "ok", R"({"tracks":3})", R"(["embeddings/smd-emb"])");
    db->finish_run(b, "failed", "", "", "decode: truncated file");
    const RunRow ra = *db->run(a);
    EXPECT_EQ(ra.metrics, R"({"tracks":3})");
    EXPECT_FALSE(ra.ended_at.empty());
    EXPECT_EQ(db->run(b)->error, "decode: truncated file");
    EXPECT_EQ(db->runs().size(), 2u);
    EXPECT_EQ(db->runs("eval").size(), 0u);
    EXPECT_THROW(db->finish_run("no-such-run", "ok", "", ""), Error);
    EXPECT_THROW(db->finish_run(a, "maybe", "", ""), Error);
    EXPECT_THROW(db->start_run({}), Error);
}

// The shards of a sharded extraction: an attempt killed before it finished stays "running" until the next
// attempt, which names it and counts; a finish by a superseded attempt changes nothing.
TEST_P(Catalog, ExtractionShardsCountAttemptsAndNameTheKilledOne) {
    auto db = open_fresh();
    const ShardRow base{.dataset_id = "ds", .model = "dsp", .precision = "fp32", .index = 1, .count = 3, .tracks = 4};
    ShardRow first = base, second = base, other = base;
    first.run_id = "run-a";
    first.status = second.status = other.status = "running";
    second.run_id = "run-b";
    other.index = 0;
    other.run_id = "run-c";
    EXPECT_EQ(db->start_shard(first), "");
    EXPECT_EQ(db->start_shard(other), "");
    EXPECT_EQ(db->start_shard(second), "run-a");  // run-a was killed: still shown running
    first.status = "done";
    EXPECT_FALSE(db->finish_shard(first));        // superseded
    second.status = "done";
    second.processed = 3;
    second.cached = 1;
    second.windows = 17;
    second.elapsed_s = 2.5;
    EXPECT_TRUE(db->finish_shard(second));
    const auto rows = db->shards("ds", "dsp", 3);
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].index, 0);
    EXPECT_EQ(rows[0].status, "running");
    const ShardRow& s = rows[1];
    EXPECT_EQ(s.index, 1);
    EXPECT_EQ(s.count, 3);
    EXPECT_EQ(s.status, "done");
    EXPECT_EQ(s.run_id, "run-b");
    EXPECT_EQ(s.attempts, 2);
    EXPECT_EQ(s.tracks, 4);
    EXPECT_EQ(s.processed, 3);
    EXPECT_EQ(s.cached, 1);
    EXPECT_EQ(s.windows, 17);
    EXPECT_DOUBLE_EQ(s.elapsed_s, 2.5);
    EXPECT_FALSE(s.started_at.empty());
    EXPECT_EQ(db->shards("ds", "dsp", 4).size(), 0u);
    EXPECT_EQ(db->shards("ds", "mert").size(), 0u);
    EXPECT_EQ(db->shards("ds").size(), 2u);
    ShardRow bad = second;
    bad.index = 3;
    EXPECT_THROW(db->start_shard(bad), Error);
    bad = second;
    bad.status = "half";
    EXPECT_THROW(db->finish_shard(bad), Error);
}

// A catalog made by an older binary (schema version 1: no runs, no judgements) is migrated in place.
TEST_P(Catalog, MigratesAnOlderSchemaKeepingItsRows) {
    {
        auto old = open_fresh({.target_version = 1});
        EXPECT_EQ(old->schema_version(), 1);
        old->upsert_dataset({.dataset_id = "ds", .kind = "folder", .audio_dir = "a"});
        old->exec("INSERT INTO tracks (dataset_id, track_id, recording_id, work_id, haystack) VALUES"
                  " ('ds', 'old', 'r', 'w', 'old r w schubert')");
        EXPECT_THROW(old->exec("SELECT count(*) FROM judgements"), Error);
    }
    auto db = reopen();
    EXPECT_EQ(db->schema_version(), CatalogDb::latest_schema_version());
    EXPECT_EQ(db->tracks("ds").at(0).track_id, "old");
    EXPECT_EQ(db->list_tracks({.q = "schub"}).total, 1);  // the search index covers rows from before it
    db->add_judgement({.anchor = "x", .a = "y", .b = "z", .choice = "b"});
    EXPECT_EQ(db->exec("SELECT count(*) FROM schema_version").at(0).at(0), std::to_string(CatalogDb::latest_schema_version()));
}

// A small catalog for comparing pages with plain queries: 3 datasets, 5 composers, words of every density.
std::vector<TrackRow> small_catalog(int per_dataset) {
    const char* composers[] = {"Anna Alpha", "Bert Alpha", "Carl Beta", "Dora Gamma", ""};
    std::vector<TrackRow> rows;
    for (int d = 0; d < 3; ++d)
        for (int i = 0; i < per_dataset; ++i) {
            const int k = (i * 7 + d) % 31;  // composers and words are not clustered by id
            rows.push_back({.dataset_id = "d" + std::to_string(d), .track_id = fmt::format("t{:03d}", (i * 37) % per_dataset),
                            .recording_id = fmt::format("r{}", i), .work_id = fmt::format("w{}", i / 3),
                            .composer = composers[k % 5], .title = fmt::format("Piece No. {}{}", k, k % 9 == 0 ? " rare" : ""),
                            .metadata = {{"year", std::to_string(2000 + k % 3)}}});
        }
    return rows;
}

// The plain query: every matching (dataset, track) key in page order, read without indexes or counts.
std::vector<std::string> plain_keys(CatalogDb& db, const TrackQuery& q, bool catalog_order) {
    std::string where = " WHERE 1 = 1";
    std::vector<std::optional<std::string>> params;
    auto add = [&](const std::string& v) {
        params.emplace_back(v);
        return "$" + std::to_string(params.size());
    };
    if (!q.dataset.empty()) where += " AND dataset_id || '' = " + add(q.dataset);
    if (!q.composer.empty()) where += " AND composer_lc || '' LIKE " + add("%" + to_lower(q.composer) + "%");
    if (!q.q.empty()) where += " AND haystack || '' LIKE " + add("%" + to_lower(q.q) + "%");
    for (const auto& [k, v] : q.columns) where += " AND metadata LIKE " + add("%\"" + k + "\":\"" + v + "\"%");
    std::vector<std::string> keys;
    for (const auto& r : db.exec("SELECT dataset_id, track_id FROM tracks" + where + (catalog_order ? " ORDER BY id" : " ORDER BY 1, 2"), params))
        keys.push_back(r.at(0) + "/" + r.at(1));
    return keys;
}

// Every page kind (counts, composer merge and sort, text and column filters exact and bounded) against the plain query.
void expect_pages_match_plain_queries(CatalogDb& db) {
    for (const std::string dataset : {"", "d1"})
        for (const std::string composer : {"", "alpha", "carl beta", "nobody"})
            for (const std::string q : {"", "piece", "rare", "no. 1", "zzz", "no. 9 rare", "alpha piece no", " 18 "})
                for (const bool column : {false, true})
                    for (const std::int64_t offset : {0, 23, 140})
                        for (const std::int64_t cap : {1000, 12}) {
                            TrackQuery query{.q = q, .dataset = dataset, .composer = composer, .offset = offset, .limit = 9, .count_limit = cap};
                            if (column) query.columns = {{"year", "2001"}};
                            const TrackPage page = db.list_tracks(query);
                            const bool bounded = (!q.empty() || column) && static_cast<std::int64_t>(plain_keys(db, query, false).size()) > cap;
                            const auto all = plain_keys(db, query, bounded);
                            const std::string what = fmt::format("q '{}' dataset '{}' composer '{}' column {} offset {} cap {}", q, dataset,
                                                                 composer, column, offset, cap);
                            EXPECT_EQ(page.total_exact, !bounded) << what;
                            EXPECT_EQ(page.total, bounded ? cap : static_cast<std::int64_t>(all.size())) << what;
                            std::vector<std::string> got, want;
                            for (const TrackRow& t : page.tracks) got.push_back(t.dataset_id + "/" + t.track_id);
                            for (std::size_t i = static_cast<std::size_t>(offset); i < all.size() && want.size() < 9; ++i) want.push_back(all[i]);
                            EXPECT_EQ(got, want) << what;
                        }
}

TEST_P(Catalog, PagesAgreeWithPlainQueries) {
    auto db = open_fresh();
    for (const char* d : {"d0", "d1", "d2"}) db->upsert_dataset({.dataset_id = d, .kind = "folder", .audio_dir = "a"});
    db->upsert_tracks(small_catalog(60));
    expect_pages_match_plain_queries(*db);
    // Writes keep the counts exact: composers changed by an upsert, tracks removed.
    auto changed = small_catalog(60);
    for (std::size_t i = 0; i < changed.size(); i += 4) changed[i].composer = "Carl Beta";
    db->upsert_tracks(changed);
    db->remove_tracks_except("d2", {"t001", "t002", "t003"});
    expect_pages_match_plain_queries(*db);
    EXPECT_EQ(db->exec("SELECT sum(n) FROM track_groups").at(0).at(0), db->exec("SELECT count(*) FROM tracks").at(0).at(0));
    EXPECT_THROW(db->list_tracks({.q = "piece", .count_limit = 0}), Error);
}

// A common word: its page comes from the catalog's first dense_rows tracks, in catalog order, the total a
// lower bound (one less than the matches seen there); a word too rare to fill the page there counts as usual.
TEST_P(Catalog, DenseMatchesPageFromTheFirstTracks) {
    auto db = open_fresh();
    for (const char* d : {"d0", "d1", "d2"}) db->upsert_dataset({.dataset_id = d, .kind = "folder", .audio_dir = "a"});
    db->upsert_tracks(small_catalog(60));  // 180 tracks
    for (const std::string q : {"piece", "alpha", "rare", "no. 1", "a piece no"})  // the last with a whole word
        for (const std::int64_t offset : {0, 23, 40}) {
            const TrackQuery query{.q = q, .offset = offset, .limit = 9, .dense_rows = 40};
            const TrackPage page = db->list_tracks(query);
            const auto all = plain_keys(*db, query, !page.total_exact);
            const std::string what = fmt::format("q '{}' offset {}", q, offset);
            if (page.total_exact) EXPECT_EQ(page.total, static_cast<std::int64_t>(all.size())) << what;
            else EXPECT_LT(page.total, static_cast<std::int64_t>(all.size())) << what;
            std::vector<std::string> got, want;
            for (const TrackRow& t : page.tracks) got.push_back(t.dataset_id + "/" + t.track_id);
            for (std::size_t i = static_cast<std::size_t>(offset); i < all.size() && want.size() < 9; ++i) want.push_back(all[i]);
            EXPECT_EQ(got, want) << what;
        }
    const TrackPage every = db->list_tracks({.q = "piece", .limit = 9, .dense_rows = 40});  // all 40 match: 39 and more
    EXPECT_FALSE(every.total_exact);
    EXPECT_EQ(every.total, 39);
    EXPECT_TRUE(db->list_tracks({.q = "rare", .limit = 9, .dense_rows = 40}).total_exact);  // ~5 in 40: counted
    EXPECT_EQ(db->list_tracks({.q = "piece", .offset = 40, .limit = 9, .dense_rows = 40}).total, 180);  // past them: counted
    EXPECT_THROW(db->list_tracks({.q = "piece", .dense_rows = 0}), Error);
}

// A catalog of schema 5 (counts per dataset, a table of composer names) with its tracks, migrated to the
// counts per dataset and composer.
TEST_P(Catalog, MigratesSchemaFiveToGroupCounts) {
    {
        auto old = open_fresh({.target_version = 5});
        for (const char* d : {"d0", "d1", "d2"}) old->upsert_dataset({.dataset_id = d, .kind = "folder", .audio_dir = "a"});
        old->upsert_tracks(small_catalog(30));
        EXPECT_EQ(old->exec("SELECT sum(n) FROM track_counts").at(0).at(0), "90");
    }
    auto db = reopen();
    EXPECT_EQ(db->schema_version(), 7);
    EXPECT_THROW(db->exec("SELECT count(*) FROM track_counts"), Error);
    EXPECT_EQ(db->list_tracks({}).total, 90);
    EXPECT_EQ(db->list_tracks({.composer = "alpha"}).total, static_cast<std::int64_t>(plain_keys(*db, {.composer = "alpha"}, false).size()));
    expect_pages_match_plain_queries(*db);
    db->remove_tracks_except("d0", {});
    EXPECT_EQ(db->list_tracks({}).total, 60);
    expect_pages_match_plain_queries(*db);
}

TEST_P(Catalog, NewerSchemaIsRefusedByName) {
    open_fresh()->exec("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'tracks by the moon', 'x')");
    try {
        reopen();
        FAIL() << "a newer schema was accepted";
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_NE(std::string(e.what()).find("schema version 999 ('tracks by the moon') is newer"), std::string::npos) << e.what();
    }
}

// Two extraction runs (separate connections, as two processes have) update the same tracks' state at once:
// every update counts (attempts), none is lost.
TEST_P(Catalog, ConcurrentExtractionRunsLoseNoUpdate) {
    open_fresh()->upsert_dataset({.dataset_id = "ds", .kind = "folder", .audio_dir = "a"});
    constexpr int kTracks = 20, kRounds = 5;
    auto worker = [&](const std::string& run) {
        auto db = reopen();
        for (int round = 0; round < kRounds; ++round)
            for (int t = 0; t < kTracks; ++t)
                db->set_extraction({.dataset_id = "ds", .track_id = "t" + std::to_string(t), .model = "dsp",
                                    .precision = "fp32", .status = round + 1 == kRounds ? "done" : "running", .run_id = run});
    };
    std::thread one(worker, "run-1"), two(worker, "run-2");
    one.join();
    two.join();
    const auto states = reopen()->extractions("ds", "dsp");
    ASSERT_EQ(states.size(), static_cast<std::size_t>(kTracks));
    for (const ExtractionRow& s : states) EXPECT_EQ(s.attempts, 2 * kRounds) << s.track_id;
    EXPECT_THROW(reopen()->set_extraction({.dataset_id = "ds", .track_id = "t", .status = "odd"}), Error);
}

// A writer killed with SIGKILL in the middle of its writes loses nothing it had committed.
TEST_P(Catalog, KillNineLosesNothingCommitted) {
    open_fresh();
    int pipe_fd[2];
    ASSERT_EQ(pipe(pipe_fd), 0);
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(pipe_fd[0]);
        auto db = CatalogDb::open(url_);
        for (std::int64_t i = 1;; ++i) {
            db->add_judgement({.anchor = "k" + std::to_string(i), .a = "a", .b = "b", .choice = "a"});
            if (write(pipe_fd[1], &i, sizeof i) != sizeof i) _exit(1);  // committed: tell the parent
        }
    }
    close(pipe_fd[1]);
    std::int64_t committed = 0, got = 0;
    while (committed < 40 && read(pipe_fd[0], &got, sizeof got) == sizeof got) committed = got;
    kill(child, SIGKILL);
    while (read(pipe_fd[0], &got, sizeof got) == sizeof got) committed = got;  // reports sent before the kill
    close(pipe_fd[0]);
    int status = 0;
    waitpid(child, &status, 0);
    EXPECT_TRUE(WIFSIGNALED(status));
    auto db = reopen();
    const auto all = db->judgements();
    ASSERT_GE(static_cast<std::int64_t>(all.size()), committed);
    for (std::int64_t i = 0; i < committed; ++i) EXPECT_EQ(all[static_cast<std::size_t>(i)].anchor, "k" + std::to_string(i + 1));
    db->add_judgement({.anchor = "after", .a = "a", .b = "b", .choice = "b"});  // the catalog is still writable
}

TEST(CatalogConnection, UnreachableServerAndBadCredentialsGiveClearErrors) {
    try {
        CatalogDb::open("postgresql://mess:pw@127.0.0.1:1/none", {.connect_timeout_s = 2});
        FAIL() << "connected to nothing";
    } catch (const Error& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("cannot connect"), std::string::npos) << what;
        EXPECT_NE(what.find("mess:***@127.0.0.1:1"), std::string::npos) << what;  // named, password hidden
        EXPECT_EQ(what.find(":pw@"), std::string::npos) << what;
    }
    try {
        CatalogDb::open(PostgresServer::get().url("wrong"));
        FAIL() << "a wrong password was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("password authentication failed"), std::string::npos) << e.what();
    }
    EXPECT_THROW(CatalogDb::open("mysql://x"), Error);
    EXPECT_THROW(CatalogDb::open("sqlite:"), Error);
}

TEST(CatalogConnection, CorruptSqliteFileIsRefused) {
    test::TempDir dir;
    write_file_atomic(dir / "c.sqlite", std::string(4096, 'x'));
    EXPECT_THROW(CatalogDb::open("sqlite:" + (dir / "c.sqlite").string()), Error);
}

TEST(CatalogConnection, RedactsPasswords) {
    EXPECT_EQ(redact_url("postgresql://u:secret@h:5/db"), "postgresql://u:***@h:5/db");
    EXPECT_EQ(redact_url("postgresql://h/db?password=secret&sslmode=off"), "postgresql://h/db?password=***&sslmode=off");
    EXPECT_EQ(redact_url("sqlite:data/catalog.sqlite"), "sqlite:data/catalog.sqlite");
}

INSTANTIATE_CATALOG_SUITE(Catalog);

}  // namespace
}  // namespace mess::db
