// `mess catalog` and `mess runs`, and what `mess extract` records, on both backends (separate processes).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include <map>
#include <thread>

#include "catalog_backends.hpp"

namespace mess::db {
namespace {

namespace fs = std::filesystem;

class CatalogCli : public CatalogSuite {
protected:
    void SetUp() override {
        fs::create_directories(dir_ / "audio");
        for (int i = 0; i < 3; ++i)
            test::write_sound(dir_ / "audio" / fmt::format("piece{}.wav", i), test::tone(220.0 * (i + 1), 6.0, 24000), 1, 24000,
                              SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        fresh_url();
    }
    std::string mess(const std::string& args) const {
        return std::string(MESS_BINARY) + " --log-level warn --workers 1 --data-root " + test::quote((dir_ / "data").string()) +
               " --catalog " + test::quote(url_) + " " + args;
    }
    std::string dataset() const { return "--audio-dir " + test::quote((dir_ / "audio").string()) + " --dataset-id pieces"; }
    nlohmann::json json_of(const std::string& args) const {
        const test::CommandResult r = test::run_command(mess(args));
        EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.out;
        return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json();
    }
};

TEST_P(CatalogCli, SyncExportEditImport) {
    const nlohmann::json sync = json_of("catalog sync " + dataset() + " --hash --json");
    EXPECT_EQ(sync["tracks"], 3);
    EXPECT_EQ(sync["audio_files"], 3);
    const auto files = reopen()->audio_files("pieces");
    ASSERT_EQ(files.size(), 3u);
    EXPECT_EQ(files[0].sample_rate, 24000);
    EXPECT_NEAR(files[0].duration_s, 6.0, 1e-9);
    EXPECT_EQ(files[0].size, 44 + 6 * 24000 * 2);                // a 16-bit mono WAV with a 44-byte header
    EXPECT_EQ(files[0].sha256.size(), 64u);
    EXPECT_EQ(files[0].path, (dir_ / "audio" / "piece0.wav").string());  // outside the data root: as given

    const fs::path csv = dir_ / "pieces.csv";
    EXPECT_EQ(json_of("catalog export " + dataset() + " --file " + test::quote(csv.string()) + " --json")["tracks"], 3);
    std::string text = read_file(csv);
    ASSERT_EQ(text.substr(0, text.find('\n')), "recording_id,work_id,track_id");
    text = "recording_id,work_id,track_id,composer,title\nr0,w0,piece0,Clara Schumann,Romance\n"
           "r1,w0,piece1,Clara Schumann,Romance\nr2,w2,piece2,Fanny Mendelssohn,Lied\n";
    write_file_atomic(csv, text);
    EXPECT_EQ(json_of("catalog import " + dataset() + " --file " + test::quote(csv.string()) + " --json")["tracks"], 3);
    auto db = reopen();
    EXPECT_EQ(db->track("pieces", "piece1")->composer, "Clara Schumann");
    EXPECT_EQ(db->list_tracks({.q = "romance"}).total, 2);
    EXPECT_EQ(json_of("catalog export " + dataset() + " --file " + test::quote(csv.string()) + " --json")["tracks"], 3);
    EXPECT_EQ(read_file(csv), text);  // export gives back what was imported

    write_file_atomic(csv, "recording_id,track_id\nr0,piece0\n");  // no work_id column
    const test::CommandResult bad = test::run_command(mess("catalog import " + dataset() + " --file " + test::quote(csv.string())) + " 2>&1");
    EXPECT_EQ(bad.exit_code, 2) << bad.out;
    EXPECT_NE(bad.out.find("pieces.csv"), std::string::npos) << bad.out;
}

// Two extractions at once: each run has its own record and report, every track's state counts both runs.
TEST_P(CatalogCli, ConcurrentExtractsAreRecordedSeparately) {
    const std::string extract = mess("extract " + dataset() + " --model dsp --threads 1 --json");
    test::CommandResult one, two;
    std::thread a([&] { one = test::run_command(extract); }), b([&] { two = test::run_command(extract); });
    a.join();
    b.join();
    ASSERT_EQ(one.exit_code, 0) << one.out;
    ASSERT_EQ(two.exit_code, 0) << two.out;
    const std::string id1 = nlohmann::json::parse(one.out)["run_id"], id2 = nlohmann::json::parse(two.out)["run_id"];
    EXPECT_NE(id1, id2);
    const fs::path store = dir_ / "data/embeddings/pieces-emb";
    EXPECT_TRUE(fs::exists(store / ("extract_report." + id1 + ".json")));
    EXPECT_TRUE(fs::exists(store / ("extract_report." + id2 + ".json")));

    const nlohmann::json runs = json_of("runs list --kind extract --json");
    ASSERT_EQ(runs.size(), 2u);
    for (const auto& r : runs) {
        EXPECT_EQ(r["status"], "ok");
        EXPECT_EQ(r["parameters"]["model"], "dsp");
        EXPECT_FALSE(r["ended_at"].get<std::string>().empty());
        EXPECT_NE(r["command_line"].get<std::string>().find("extract --audio-dir"), std::string::npos);
    }
    const nlohmann::json shown = json_of("runs show " + id1.substr(0, id1.size() - 2) + " --json");  // a unique prefix
    EXPECT_EQ(shown["run_id"], id1);
    EXPECT_EQ(shown["metrics"]["tracks_total"], 3);
    const nlohmann::json compared = json_of("runs compare " + id1 + " " + id2 + " --json");
    bool run_id_differs = false;
    for (const auto& row : compared) run_id_differs = run_id_differs || (row["key"] == "run_id" && row["differs"] == true);
    EXPECT_TRUE(run_id_differs);

    auto db = reopen();
    const auto states = db->extractions("pieces", "dsp");
    ASSERT_EQ(states.size(), 3u);
    for (const auto& s : states) {
        EXPECT_EQ(s.attempts, 2) << s.track_id;  // both runs' updates kept
        EXPECT_TRUE(s.status == "done") << s.track_id << " " << s.status;
    }
    EXPECT_EQ(db->clips("pieces").size(), 3u * 2u);  // 6 s: windows at 0 and a tail aligned to the end
    EXPECT_EQ(db->tracks("pieces").size(), 3u);
}

// The catalog is the metadata's source: a title edited by `mess catalog import` (the dataset never synced)
// reaches the index's track records, though extraction wrote a CSV without it. About 3 s per backend.
TEST_P(CatalogCli, ImportedTitlesReachTheIndex) {
    const fs::path csv = dir_ / "titles.csv";
    write_file_atomic(csv, "recording_id,work_id,track_id,composer,title\nr0,w0,piece0,Clara Schumann,Romance\n"
                           "r1,w0,piece1,Clara Schumann,Romance\nr2,w2,piece2,Fanny Mendelssohn,Lied\n");
    EXPECT_EQ(json_of("catalog import " + dataset() + " --file " + test::quote(csv.string()) + " --json")["tracks"], 3);
    json_of("extract " + dataset() + " --model dsp --threads 1 --json");
    const fs::path written = dir_ / "data/metadata/pieces_metadata.csv";
    ASSERT_TRUE(fs::exists(written));
    EXPECT_EQ(read_file(written).find("Romance"), std::string::npos);  // the CSV as derived from the files
    const std::string out = " --out " + test::quote((dir_ / "indices").string());
    json_of("index build " + dataset() + " --kind track --no-media --no-structure" + out + " --json");
    const nlohmann::json hits = json_of("search --index " + test::quote((dir_ / "indices").string()) +
                                        " --name track_index --track piece0 --k 3 --json");
    std::map<std::string, std::string> titles;
    for (const auto& h : hits["results"]) titles[h["track_id"]] = h["metadata"].value("title", "");
    EXPECT_EQ(titles["piece1"], "Romance") << hits.dump();
    EXPECT_EQ(titles["piece2"], "Lied") << hits.dump();
    EXPECT_EQ(reopen()->track("pieces", "piece0")->work_id, "w0");  // extraction kept the catalog's rows
}

// `mess targets` records each track's target file; `mess structure` and `mess eval align` record runs.
TEST_P(CatalogCli, TargetsAndStructureAreRecorded) {
    const nlohmann::json t = json_of("targets " + dataset() + " --no-windows --jobs 1 --json");
    EXPECT_EQ(t["computed"], 3);
    const auto rows = reopen()->targets("pieces");
    ASSERT_EQ(rows.size(), 3u);
    const nlohmann::json runs = json_of("runs list --kind targets --json");
    ASSERT_EQ(runs.size(), 1u);
    for (const auto& r : rows) {
        EXPECT_EQ(r.source, "audio") << r.track_id;
        EXPECT_EQ(r.run_id, runs[0]["run_id"]) << r.track_id;
        EXPECT_EQ(r.path, "proxy_targets/pieces/" + r.track_id + ".targets.npz");  // relative to the data root
    }
    json_of("structure " + dataset() + " --json");
    const nlohmann::json structure = json_of("runs list --kind structure --json");
    ASSERT_EQ(structure.size(), 1u);
    EXPECT_EQ(structure[0]["status"], "ok");
    const test::CommandResult bad = test::run_command(mess("eval align --labels " + test::quote((dir_ / "none.json").string())) + " 2>&1");
    EXPECT_NE(bad.exit_code, 0);
    const nlohmann::json failed = json_of("runs list --kind eval-align --json");
    ASSERT_EQ(failed.size(), 1u);
    EXPECT_EQ(failed[0]["status"], "failed");  // stopped by its error, and recorded so
}

TEST_P(CatalogCli, ErrorsNameWhatIsWrong) {
    test::CommandResult r = test::run_command(mess("runs show nosuchrun") + " 2>&1");
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.out.find("run 'nosuchrun': not in catalog"), std::string::npos) << r.out;
    r = test::run_command(mess("runs compare onlyone") + " 2>&1");
    EXPECT_EQ(r.exit_code, 1) << r.out;
    r = test::run_command(std::string(MESS_BINARY) + " --catalog mysql://x config 2>&1");
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.out.find("flag --catalog: unknown catalog"), std::string::npos) << r.out;
    const nlohmann::json config = json_of("config --json");
    EXPECT_EQ(config["catalog"]["source"], "flag --catalog");
    EXPECT_EQ(config["catalog"]["value"].get<std::string>().find("secret"), std::string::npos);  // password hidden
}

INSTANTIATE_CATALOG_SUITE(CatalogCli);

}  // namespace
}  // namespace mess::db
