#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sndfile.h>

#include "mess/catalog.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static void expect_error(const std::function<void()>& fn, ErrorKind kind, const std::string& needle) {
    const std::string message = test::error_message(fn, kind);
    EXPECT_NE(message.find(needle), std::string::npos) << "'" << needle << "' not in: " << message;
}

TEST(Csv, QuotedFieldsRoundTrip) {
    CsvTable t;
    t.header = {"id", "title", "note"};
    t.rows = {{"1", "Sonata, Op. 27 \"Moonlight\"", "line one\nline two"}, {"2", "", "plain"}};
    std::string text = format_csv(t);
    CsvTable back = parse_csv(text, "t.csv");
    EXPECT_EQ(back.header, t.header);
    EXPECT_EQ(back.rows, t.rows);
    EXPECT_EQ(back.column("note"), 2);
    EXPECT_EQ(back.column("nope"), -1);
    CsvTable crlf = parse_csv("\xEF\xBB\xBF" "a,b\r\n1,2\r\n\r\n", "w.csv");  // BOM, CRLF, blank line
    EXPECT_EQ(crlf.header, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(crlf.rows.size(), 1u);
}

TEST(Csv, MalformedFilesNameTheFileAndRow) {
    expect_error([] { parse_csv("a,b\n1,2,3\n", "x.csv"); }, ErrorKind::input, "x.csv: row 2 has 3 fields");
    expect_error([] { parse_csv("a,b\n\"open,2\n", "q.csv"); }, ErrorKind::input, "unterminated quoted field");
    expect_error([] { parse_csv("", "e.csv"); }, ErrorKind::input, "empty CSV");
}

TEST(Splits, DeterministicProportionalAndSeeded) {
    std::vector<std::string> ids;
    for (int i = 0; i < 10; ++i) ids.push_back("rec" + std::to_string(i));
    auto a = assign_splits(ids, {});
    std::vector<std::string> shuffled(ids.rbegin(), ids.rend());
    shuffled.push_back("rec3");  // duplicates and order do not matter
    EXPECT_EQ(assign_splits(shuffled, {}), a);
    std::map<std::string, int> count;
    for (const auto& [id, split] : a) count[split]++;
    EXPECT_EQ(count["train"], 8);
    EXPECT_EQ(count["val"], 1);
    EXPECT_EQ(count["test"], 1);
    SplitParams other;
    other.seed = 7;
    EXPECT_NE(assign_splits(ids, other), a);
    expect_error([&] { assign_splits(ids, {0.5, 0.2, 0.2, 1}); }, ErrorKind::usage, "sum to 1");
    expect_error([&] { assign_splits(ids, {1.2, -0.2, 0.0, 1}); }, ErrorKind::usage, "non-negative");
    EXPECT_TRUE(assign_splits({}, {}).empty());
}

// The documented algorithm, implemented independently in Python, gives the same assignment.
TEST(SplitsIntegration, MatchTheDocumentedAlgorithmInPython) {
    std::vector<std::string> ids;
    for (int i = 0; i < 23; ++i) ids.push_back("recording-" + std::to_string(i));
    auto got = assign_splits(ids, {});
    const char* code =
        "import math\n"
        "M = (1 << 64) - 1\n"
        "class SM:\n"
        "    def __init__(s, seed): s.s = seed\n"
        "    def next(s):\n"
        "        s.s = (s.s + 0x9e3779b97f4a7c15) & M; z = s.s\n"
        "        z = ((z ^ (z >> 30)) * 0xbf58476d1ce4e5b9) & M\n"
        "        z = ((z ^ (z >> 27)) * 0x94d049bb133111eb) & M\n"
        "        return z ^ (z >> 31)\n"
        "ids = sorted('recording-%d' % i for i in range(23)); r = SM(42)\n"
        "for i in range(len(ids) - 1, 0, -1):\n"
        "    j = r.next() % (i + 1); ids[i], ids[j] = ids[j], ids[i]\n"
        "n = len(ids); a = math.floor(0.8 * n); b = math.floor(0.1 * n)\n"
        "for k, x in enumerate(ids): print(x, 'train' if k < a else 'val' if k < a + b else 'test')\n";
    auto r = test::run_command(std::string(MESS_PYTHON) + " -c " + test::quote(code));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    std::istringstream in(r.out);
    std::string id, split;
    int n = 0;
    while (in >> id >> split) {
        EXPECT_EQ(got.at(id), split) << id;
        ++n;
    }
    EXPECT_EQ(n, 23);
}

TEST(Smd, FileNamesParse) {
    auto r = parse_smd_name("Bach_BWV849-01_001_20090916-SMD");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->work_id, "Bach_BWV849-01");
    EXPECT_EQ(r->recording_id, "Bach_BWV849-01_001_20090916-SMD");
    EXPECT_EQ(r->extra.at("composer"), "Bach");
    EXPECT_EQ(r->extra.at("take"), "001");
    EXPECT_EQ(r->extra.at("recording_date"), "20090916");
    EXPECT_FALSE(parse_smd_name("my_recording"));
}

TEST(Dataset, RegistryAndFolders) {
    test::TempDir dir;
    EXPECT_EQ(Dataset::open(dir.path(), "smd").audio_dir(), dir.path() / "audio" / "smd" / "wav-44");
    expect_error([&] { Dataset::open(dir.path(), "gtzan"); }, ErrorKind::usage, "known: maestro, smd");
    expect_error([&] { Dataset::folder(dir.path(), dir.path(), "bad id!"); }, ErrorKind::usage, "dataset id");
    expect_error([&] { Dataset::open(dir.path(), "smd").tracks(); }, ErrorKind::input, "does not exist");

    fs::create_directories(dir / "music/b");
    for (const char* f : {"music/z.wav", "music/b/a.FLAC", "music/notes.txt", "music/b/c.mp3"}) write_file_atomic(dir / f, "x");
    Dataset ds = Dataset::folder(dir / "data", dir / "music", "mine");
    auto tracks = ds.tracks();
    ASSERT_EQ(tracks.size(), 3u);  // sorted by path, .txt ignored, extensions case-insensitive
    EXPECT_EQ(tracks[0].track_id, "a");
    EXPECT_EQ(tracks[1].track_id, "c");
    EXPECT_EQ(tracks[2].track_id, "z");
    EXPECT_EQ(ds.features().view_path(View::segments, "a"), dir / "data/embeddings/mine-emb/segments/a.npy");
    EXPECT_EQ(ds.clip_index_path(), dir / "data/metadata/mine_clip_index.csv");
    // A folder named like an audio file is listed (extraction then reports "is a directory"), not skipped.
    fs::create_directories(dir / "music/album.wav/inner");
    write_file_atomic(dir / "music/album.wav/inner/hidden.wav", "x");
    tracks = ds.tracks();
    ASSERT_EQ(tracks.size(), 4u);
    EXPECT_EQ(tracks[0].track_id, "album");  // and its contents are not searched
    fs::remove_all(dir / "music/album.wav");
    write_file_atomic(dir / "music/b/z.ogg", "x");
    expect_error([&] { ds.tracks(); }, ErrorKind::input, "same track id 'z'");
}

TEST(Dataset, ProxyTargetsLiveInTheDatasetsOwnFolder) {
    const Dataset ds = Dataset::folder("data", "music", "mine");
    EXPECT_EQ(ds.targets_dir(), fs::path("data/proxy_targets/mine"));
    EXPECT_EQ(ds.targets_path("take1"), fs::path("data/proxy_targets/mine/take1.targets.npz"));
    EXPECT_EQ(ds.targets_report_path(), fs::path("data/proxy_targets/mine/targets_report.json"));
    EXPECT_EQ(Dataset::open("data", "smd").targets_path("t"), fs::path("data/proxy_targets/smd/t.targets.npz"));
    EXPECT_EQ(flat_targets_path(ds, "take1"), fs::path("data/proxy_targets/take1.targets.npz"));
}

namespace {

// A data root whose proxy_targets/ holds the old flat layout: one file per name, plus the reports of
// `writers`.
void write_flat_layout(const fs::path& root, const std::vector<std::string>& names, const std::vector<std::string>& writers) {
    fs::create_directories(root / "proxy_targets");
    for (const auto& n : names) write_file_atomic(root / "proxy_targets" / (n + ".targets.npz"), "old " + n);
    for (const auto& w : writers) write_file_atomic(root / "proxy_targets" / (w + "_targets_report.json"), "{}");
}

}  // namespace

TEST(FlatTargets, AdoptedOnlyWhenTheOnlyReportIsTheDatasets) {
    test::TempDir dir;
    const Dataset ds = Dataset::folder(dir / "data", dir / "music", "mine");
    write_flat_layout(dir / "data", {"a", "b", "c", "zz"}, {"mine"});
    fs::create_directories(ds.targets_dir());
    write_file_atomic(ds.targets_path("c"), "new c");  // already in the new layout: left alone
    const FlatTargetsMigration m = migrate_flat_targets(ds, {"a", "b", "c", "d"});
    EXPECT_EQ(m.moved, (std::vector<std::string>{"a", "b"}));
    EXPECT_TRUE(m.left.empty());
    EXPECT_EQ(read_file(ds.targets_path("a")), "old a");
    EXPECT_FALSE(fs::exists(flat_targets_path(ds, "a")));
    EXPECT_EQ(read_file(ds.targets_path("c")), "new c");
    EXPECT_TRUE(fs::exists(flat_targets_path(ds, "c")));  // not this run's to move: another file stands
    EXPECT_TRUE(fs::exists(dir / "data/proxy_targets/mine_targets_report.json"));  // flat files remain: the report stays
    fs::remove(flat_targets_path(ds, "c"));
    EXPECT_TRUE(migrate_flat_targets(ds, {"a", "zz"}).moved == std::vector<std::string>{"zz"});
    EXPECT_FALSE(fs::exists(dir / "data/proxy_targets/mine_targets_report.json"));  // the last flat file moved
    EXPECT_TRUE(migrate_flat_targets(ds, {"a", "zz"}).moved.empty());  // nothing left to do
}

TEST(FlatTargets, LeftWhereTheyAreWhenTheyMayBeAnotherDatasets) {
    test::TempDir dir;
    const Dataset ds = Dataset::folder(dir / "data", dir / "music", "mine");
    write_flat_layout(dir / "data", {"a", "b"}, {"mine", "theirs"});
    FlatTargetsMigration m = migrate_flat_targets(ds, {"a", "b"});
    EXPECT_TRUE(m.moved.empty());
    EXPECT_EQ(m.left, (std::vector<std::string>{"a", "b"}));
    EXPECT_NE(m.why_left.find("holds mine_targets_report.json, theirs_targets_report.json: a target file there may be another dataset's"), std::string::npos) << m.why_left;
    EXPECT_TRUE(fs::exists(flat_targets_path(ds, "a")));
    EXPECT_FALSE(fs::exists(ds.targets_path("a")));

    fs::remove(dir / "data/proxy_targets/mine_targets_report.json");
    fs::remove(dir / "data/proxy_targets/theirs_targets_report.json");
    m = migrate_flat_targets(ds, {"a"});  // no report at all: nobody says whose they are
    EXPECT_EQ(m.left, std::vector<std::string>{"a"});
    EXPECT_NE(m.why_left.find("no <dataset>_targets_report.json"), std::string::npos) << m.why_left;

    write_flat_layout(dir / "data", {}, {"theirs"});  // only another dataset's report
    EXPECT_EQ(migrate_flat_targets(ds, {"a"}).left, std::vector<std::string>{"a"});
    EXPECT_TRUE(fs::exists(flat_targets_path(ds, "a")));
}

TEST(Metadata, RoundTripKeepsExtraColumnsAndRejectsBadTables) {
    test::TempDir dir;
    MetadataTable t({{"t2", "r1", "w1", {{"composer", "Bach"}}}, {"t1", "r1", "w1", {{"year", "2009"}}}});
    t.write(dir / "m.csv");
    EXPECT_EQ(read_file(dir / "m.csv"), "recording_id,work_id,track_id,composer,year\nr1,w1,t1,,2009\nr1,w1,t2,Bach,\n");
    MetadataTable back = MetadataTable::read(dir / "m.csv");
    ASSERT_NE(back.find("t2"), nullptr);
    EXPECT_EQ(back.find("t2")->extra.at("composer"), "Bach");
    EXPECT_EQ(back.find("nope"), nullptr);

    write_file_atomic(dir / "bad.csv", "track_id,dataset\nt1,smd\n");  // the predecessor's demo table
    expect_error([&] { MetadataTable::read(dir / "bad.csv"); }, ErrorKind::input, "missing required column");
    write_file_atomic(dir / "dup.csv", "recording_id,work_id,track_id\nr,w,t\nr,w,t\n");
    expect_error([&] { MetadataTable::read(dir / "dup.csv"); }, ErrorKind::input, "duplicate track_id 't'");
    write_file_atomic(dir / "empty.csv", "recording_id,work_id,track_id\nr,,t\n");
    expect_error([&] { MetadataTable::read(dir / "empty.csv"); }, ErrorKind::input, "row 2");
}

static void write_sidecar(const Dataset& ds, const std::string& track, std::vector<std::pair<double, double>> windows) {
    nlohmann::json w = nlohmann::json::array();
    for (auto [a, b] : windows) w.push_back({{"start_sec", a}, {"end_sec", b}});
    fs::create_directories(ds.features().sidecar_path(track).parent_path());
    write_file_atomic(ds.features().sidecar_path(track), nlohmann::json{{"windows", w}, {"views", {"segments", "aggregated"}}}.dump());
}

TEST(ClipIndex, FromSidecarsWithTrueStartsAndRecordingLevelSplits) {
    test::TempDir dir;
    fs::create_directories(dir / "audio");
    std::vector<std::string> names;
    for (int i = 0; i < 12; ++i) {
        names.push_back(fmt::format("take{:02d}", i));
        write_file_atomic(dir / "audio" / (names.back() + ".wav"), "x");
    }
    Dataset ds = Dataset::folder(dir / "data", dir / "audio", "set");
    std::vector<MetadataTable::Row> rows;
    for (int i = 0; i < 12; ++i)  // pairs of takes are one recording (e.g. two mics)
        rows.push_back({names[static_cast<std::size_t>(i)], fmt::format("rec{}", i / 2), "work", {}});
    MetadataTable meta(rows);
    for (const auto& n : names) write_sidecar(ds, n, {{0.0, 5.0}, {2.5, 7.5}, {3.3, 8.3}});
    fs::remove(ds.features().sidecar_path("take11"));  // not extracted: not indexed
    ClipIndex idx = build_clip_index(ds, meta, {});
    ASSERT_EQ(idx.size(), 33u);
    EXPECT_EQ(idx[0].clip_id, "set:take00:00000");
    EXPECT_EQ(idx[2].clip_id, "set:take00:00002");
    EXPECT_DOUBLE_EQ(idx[2].start_sec, 3.3);  // the tail window's true start
    EXPECT_EQ(idx[2].embedding_path, "embeddings/set-emb/segments/take00.npy");
    std::map<std::string, std::set<std::string>> splits_of_recording;
    for (const auto& c : idx) splits_of_recording[c.recording_id].insert(c.split);
    for (const auto& [rec, s] : splits_of_recording) EXPECT_EQ(s.size(), 1u) << rec << " split across sets";
    EXPECT_TRUE(std::is_sorted(idx.begin(), idx.end(), [](const Clip& a, const Clip& b) { return a.clip_id < b.clip_id; }));

    write_clip_index(ds.clip_index_path(), idx);
    ClipIndex back = read_clip_index(ds.clip_index_path());
    ASSERT_EQ(back.size(), idx.size());
    EXPECT_EQ(back[5].clip_id, idx[5].clip_id);
    EXPECT_DOUBLE_EQ(back[5].start_sec, idx[5].start_sec);
    EXPECT_EQ(back[5].split, idx[5].split);

    // An index takes the splits the dataset recorded (extraction's --split-seed), not a fresh default draw.
    SplitParams other;
    other.seed = 7;
    ClipIndex seven = build_clip_index(ds, meta, other);
    write_clip_index(ds.clip_index_path(), seven);
    ClipIndex recorded = recorded_clip_index(ds, meta, {});  // default seed 42 would differ
    ASSERT_EQ(recorded.size(), seven.size());
    std::size_t differ_from_default = 0;
    for (std::size_t i = 0; i < recorded.size(); ++i) {
        EXPECT_EQ(recorded[i].split, seven[i].split) << recorded[i].clip_id;
        EXPECT_DOUBLE_EQ(recorded[i].start_sec, idx[i].start_sec);  // bounds still from the sidecars
        differ_from_default += recorded[i].split != idx[i].split;
    }
    EXPECT_GT(differ_from_default, 0u) << "seeds 7 and 42 should split these recordings differently";

    write_file_atomic(ds.features().sidecar_path("take03"), "{\"windows\": [{\"start_sec\": \"x\"}]}");
    expect_error([&] { build_clip_index(ds, meta, {}); }, ErrorKind::input, "take03.json: malformed extraction sidecar");
}

TEST(Maestro, OfficialMetadataAndSplitsAreUsed) {
    test::TempDir dir;
    const fs::path audio = dir / "data/audio/maestro/2018";
    fs::create_directories(audio);
    write_file_atomic(audio / "MIDI-Unprocessed_01.wav", "x");
    write_file_atomic(audio / "MIDI-Unprocessed_02.wav", "x");
    nlohmann::json j = {
        {"canonical_composer", {{"0", "Frédéric Chopin"}, {"1", "Alban Berg"}}},
        {"canonical_title", {{"0", "Ballade No. 1"}, {"1", "Sonata Op. 1"}}},
        {"split", {{"0", "validation"}, {"1", "test"}}},
        {"year", {{"0", 2018}, {"1", 2018}}},
        {"midi_filename", {{"0", "2018/MIDI-Unprocessed_01.midi"}, {"1", "2018/MIDI-Unprocessed_02.midi"}}},
        {"audio_filename", {{"0", "2018/MIDI-Unprocessed_01.wav"}, {"1", "2018/MIDI-Unprocessed_02.wav"}}},
        {"duration", {{"0", 12.5}, {"1", 8.0}}}};
    write_file_atomic(dir / "data/audio/maestro/maestro-v3.0.0.json", j.dump());
    Dataset ds = Dataset::open(dir / "data", "maestro");
    MetadataTable meta = ds.metadata();
    const auto* r = meta.find("MIDI-Unprocessed_01");
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->work_id, "Frédéric Chopin | Ballade No. 1");
    EXPECT_EQ(r->extra.at("year"), "2018");
    EXPECT_EQ(r->extra.at("composer"), "Frédéric Chopin");  // what the browser and the catalog show
    EXPECT_EQ(r->extra.at("title"), "Ballade No. 1");
    write_sidecar(ds, "MIDI-Unprocessed_01", {{0.0, 5.0}});
    write_sidecar(ds, "MIDI-Unprocessed_02", {{0.0, 5.0}});
    ClipIndex idx = build_clip_index(ds, meta, {});
    ASSERT_EQ(idx.size(), 2u);
    EXPECT_EQ(idx[0].split, "val");
    EXPECT_EQ(idx[1].split, "test");
}
