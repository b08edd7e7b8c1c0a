// Artifacts: round trips (flat and IVF), validation of every kind of damage, publish/pull to a directory.
#include <random>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mess/artifacts.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

SearchIndex make_index(IndexKind kind, const std::string& factory, std::size_t n = 300, std::size_t L = 3, std::size_t D = 16) {
    std::mt19937 g(5);
    std::normal_distribution<float> d(0, 1);
    std::vector<IndexRecord> recs;
    std::vector<float> vectors;
    std::vector<std::uint16_t> layers;
    for (std::size_t i = 0; i < n; ++i) {
        IndexRecord r;
        r.track_id = fmt::format("t{:03d}", i / 4);
        r.id = kind == IndexKind::clip ? fmt::format("ds:{}:{:05d}", r.track_id, i % 4) : fmt::format("t{:03d}", i);
        if (kind == IndexKind::track) r.track_id = r.id;
        r.dataset_id = "ds";
        r.recording_id = r.track_id;
        r.work_id = "w" + std::to_string(i % 7);
        r.split = "train";
        r.segment_idx = kind == IndexKind::clip ? static_cast<int>(i % 4) : -1;
        r.start_sec = 2.5 * static_cast<double>(i % 4);
        r.end_sec = r.start_sec + 5;
        r.metadata["composer"] = i % 2 ? "Bach" : "Chopin";
        recs.push_back(r);
        std::vector<float> stack(L * D);
        for (auto& v : stack) v = d(g);
        const auto v = LayerSpec::parse("1").apply(stack.data(), L, D);
        vectors.insert(vectors.end(), v.begin(), v.end());
        for (std::size_t l = 0; l < L; ++l) {
            l2_normalize(stack.data() + l * D, D);
            for (std::size_t j = 0; j < D; ++j) layers.push_back(float_to_half(stack[l * D + j]));
        }
    }
    SearchIndex idx = build_index_from_vectors(kind, recs, vectors, D, factory, layers, L, D);
    idx.dataset = "ds";
    idx.model_name = "tiny";
    idx.layer_spec = LayerSpec::parse("1");
    return idx;
}

void flip_byte(const fs::path& p, std::size_t at) {
    std::string b = read_file(p);
    b[at % b.size()] = static_cast<char>(b[at % b.size()] ^ 0x5a);
    write_file_atomic(p, b);
}

}  // namespace

TEST(Artifacts, RoundTripAnswersIdentically) {
    test::TempDir dir;
    for (auto [kind, factory] : {std::pair{IndexKind::track, "Flat"}, std::pair{IndexKind::clip, "IVF8,Flat"}}) {
        const SearchIndex idx = make_index(kind, factory);
        const fs::path a = write_artifact(idx, dir.path(), std::string(to_string(kind)) + "_index");
        EXPECT_EQ(resolve_artifact_dir(dir.path(), std::string(to_string(kind)) + "_index"), a);
        const LoadedArtifact l = load_artifact(a);
        EXPECT_TRUE(l.version_id().starts_with("vid-"));
        EXPECT_EQ(l.manifest["ntotal"], idx.size());
        EXPECT_EQ(l.manifest["layer"], "1");
        EXPECT_EQ(l.index.records[7].metadata.at("composer"), idx.records[7].metadata.at("composer"));
        EXPECT_EQ(l.index.layer_vectors, idx.layer_vectors);
        EXPECT_EQ(fs::exists(a / "vectors.npy"), std::string(factory) != "Flat");
        EXPECT_EQ(fs::exists(a / "clip_records.json.gz"), kind == IndexKind::clip);
        EXPECT_EQ(fs::exists(a / "track_names.json"), kind == IndexKind::track);
        if (kind == IndexKind::clip) {
            EXPECT_EQ(l.manifest["default_nprobe"], 1);
        }
        QueryOptions q;
        q.k = 5;
        q.filters = {Filter::parse("composer=bach")};
        if (kind == IndexKind::track) {
            const auto x = similar_tracks(idx, "t010", q), y = similar_tracks(l.index, "t010", q);
            ASSERT_EQ(x.size(), y.size());
            for (std::size_t i = 0; i < x.size(); ++i) {
                EXPECT_EQ(x[i].record->id, y[i].record->id);
                EXPECT_FLOAT_EQ(x[i].score, y[i].score);
                EXPECT_EQ(y[i].record->metadata.at("composer"), "Bach");
            }
            q.layer_weights = {0.2, 0.3, 0.5};
            EXPECT_EQ(similar_tracks(idx, "t010", q)[0].record->id, similar_tracks(l.index, "t010", q)[0].record->id);
        } else {
            PassageQuery pq;
            pq.clip_id = "ds:t010:00001";
            pq.options = q;
            pq.options.search.nprobe = 8;
            const auto x = similar_passages(idx, pq), y = similar_passages(l.index, pq);
            ASSERT_EQ(x.size(), y.size());
            for (std::size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i].record->id, y[i].record->id);
        }
    }
    // Two builds in the same second get distinct directories and version ids.
    const SearchIndex idx = make_index(IndexKind::track, "Flat", 20);
    const fs::path a = write_artifact(idx, dir.path(), "again"), b = write_artifact(idx, dir.path(), "again");
    EXPECT_NE(a, b);
    EXPECT_NE(load_artifact(a).version_id(), load_artifact(b).version_id());
    EXPECT_EQ(resolve_artifact_dir(dir.path(), "again"), std::max(a, b));
}

TEST(Artifacts, NewestVersionThatLoads) {
    test::TempDir dir;
    const SearchIndex idx = make_index(IndexKind::track, "Flat", 20);
    const fs::path older = write_artifact(idx, dir.path(), "ix"), newer = write_artifact(idx, dir.path(), "ix");
    ASSERT_LT(older, newer);
    EXPECT_EQ(artifact_versions(dir.path(), "ix"), (std::vector<fs::path>{newer, older}));
    EXPECT_EQ(artifact_versions(dir.path() / "ix"), artifact_versions(dir.path(), "ix"));
    EXPECT_TRUE(artifact_versions(dir.path(), "absent").empty());
    EXPECT_EQ(load_newest_artifact(dir.path(), "ix").dir, newer);

    flip_byte(newer / "records.json.gz", 7);  // the newest no longer loads: the one before it is taken
    std::vector<std::string> refused;
    const LoadedArtifact a = load_newest_artifact(dir.path(), "ix", &refused);
    EXPECT_EQ(a.dir, older);
    ASSERT_EQ(refused.size(), 1u);
    EXPECT_NE(refused[0].find(newer.filename().string()), std::string::npos) << refused[0];
    EXPECT_EQ(load_newest_artifact(older).version_id(), a.version_id());  // an artifact directory itself

    flip_byte(older / "index.faiss", 100);
    const std::string none = test::error_message([&] { load_newest_artifact(dir.path(), "ix"); });
    EXPECT_NE(none.find("no version of the index"), std::string::npos) << none;
    EXPECT_NE(none.find("index.faiss"), std::string::npos) << none;  // each version's problem
    EXPECT_NE(test::error_message([&] { load_newest_artifact(dir.path(), "absent"); }).find("no index artifact"), std::string::npos);
}

TEST(Artifacts, DamageIsDetectedAndNamed) {
    test::TempDir dir;
    const SearchIndex idx = make_index(IndexKind::clip, "IVF8,Flat", 120);
    auto fresh = [&] { return write_artifact(idx, dir.path(), "clip_index"); };
    auto message = [](const fs::path& p) { return test::error_message([&] { load_artifact(p); }); };

    fs::path a = fresh();
    flip_byte(a / "index.faiss", 1000);
    EXPECT_NE(message(a).find("index.faiss does not match its SHA-256"), std::string::npos) << message(a);
    a = fresh();
    fs::resize_file(a / "vectors.npy", fs::file_size(a / "vectors.npy") - 8);
    EXPECT_NE(message(a).find("vectors.npy is"), std::string::npos) << message(a);
    a = fresh();
    fs::remove(a / "layers.npy");
    EXPECT_NE(message(a).find("missing layers.npy"), std::string::npos) << message(a);
    a = fresh();
    write_file_atomic(a / "stray.bin", "x");
    EXPECT_NE(message(a).find("stray.bin is not listed"), std::string::npos);
    a = fresh();
    fs::remove(a / "manifest.json");
    EXPECT_NE(message(a).find("missing manifest.json"), std::string::npos);
    a = fresh();
    write_file_atomic(a / "checksums.json", "{not json");
    EXPECT_NE(message(a).find("checksums.json: not a JSON object"), std::string::npos);
    // A manifest edited consistently (checksums updated) but lying about the schema or the count.
    auto edit_manifest = [&](const std::function<void(nlohmann::json&)>& edit) {
        fs::path p = fresh();
        auto m = nlohmann::json::parse(read_file(p / "manifest.json"));
        edit(m);
        const std::string bytes = m.dump(2);
        write_file_atomic(p / "manifest.json", bytes);
        auto sums = nlohmann::json::parse(read_file(p / "checksums.json"));
        sums["manifest.json"] = {{"sha256", sha256_hex(bytes)}, {"md5", md5_hex(bytes)}, {"size", bytes.size()}};
        write_file_atomic(p / "checksums.json", sums.dump());
        return p;
    };
    EXPECT_NE(message(edit_manifest([](auto& m) { m["schema_version"] = 2; })).find("schema_version 2 is not supported"), std::string::npos);
    EXPECT_NE(message(edit_manifest([](auto& m) { m["ntotal"] = 121; })).find("121"), std::string::npos);
    EXPECT_NE(message(edit_manifest([](auto& m) { m["artifact_version_id"] = "v1"; })).find("vid-"), std::string::npos);
    EXPECT_NE(message(edit_manifest([](auto& m) { m.erase("kind"); })).find("lacks 'kind'"), std::string::npos);
    // clip_records.json.gz (what Python reads) that disagrees with the records, checksums updated: named.
    {
        fs::path p = fresh();
        auto rows = nlohmann::json::parse(gzip_decompress(read_file(p / "clip_records.json.gz"), "x"));
        rows[3]["clip_id"] = "smd:other:00000";
        const std::string bytes = gzip_compress(rows.dump());
        write_file_atomic(p / "clip_records.json.gz", bytes);
        auto sums = nlohmann::json::parse(read_file(p / "checksums.json"));
        sums["clip_records.json.gz"] = {{"sha256", sha256_hex(bytes)}, {"md5", md5_hex(bytes)}, {"size", bytes.size()}};
        write_file_atomic(p / "checksums.json", sums.dump());
        EXPECT_NE(message(p).find("clip_records.json.gz: row 3"), std::string::npos) << message(p);
    }
    // Found by fuzzing: a field of the wrong type escaped as a JSON exception.
    EXPECT_NE(message(edit_manifest([](auto& m) { m["layers"] = 2, m["layer_dim"] = "wide"; })).find("'layer_dim' is \"wide\""),
              std::string::npos);
    // Found by a 10-minute fuzz run: "layers" without "layer_dim" read a missing key (an assertion in debug, undefined
    // behaviour otherwise); a float or negative count would be converted to size_t. All refused, naming the field.
    EXPECT_NE(message(edit_manifest([](auto& m) { m["layers"] = 2, m.erase("layer_dim"); })).find("lacks 'layer_dim'"), std::string::npos);
    EXPECT_NE(message(edit_manifest([](auto& m) { m["ntotal"] = 1e300; })).find("'ntotal'"), std::string::npos);
    EXPECT_NE(message(edit_manifest([](auto& m) { m["dimension"] = -4; })).find("'dimension'"), std::string::npos);
    EXPECT_NE(test::error_message([&] { resolve_artifact_dir(dir / "nothing"); }).find("no index artifact"), std::string::npos);
    EXPECT_THROW(gzip_decompress("\x1f\x8b garbage", "x.gz"), Error);
    EXPECT_EQ(gzip_decompress(gzip_compress("hello"), "x"), "hello");
    // Known digests (FIPS 180-2 / RFC 1321 test vectors).
    EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(md5_hex("abc"), "900150983cd24fb0d6963f7d28e17f72");
}

TEST(Artifacts, PublishAndPullThroughADirectoryStore) {
    test::TempDir dir;
    const SearchIndex idx = make_index(IndexKind::track, "Flat", 50);
    const fs::path v1 = write_artifact(idx, dir / "local", "track_index");
    const PublishReport r = publish_artifact(v1, (dir / "store").string());
    EXPECT_EQ(r.version_id, load_artifact(v1).version_id());
    const auto pointer = nlohmann::json::parse(read_file(dir / "store/track_index/latest.json"));
    EXPECT_EQ(pointer["artifact_version_id"], r.version_id);
    EXPECT_EQ(pointer["artifact_prefix"], "track_index/" + v1.filename().string());

    const fs::path pulled = pull_artifact((dir / "store").string(), "track_index", dir / "pulled");
    EXPECT_EQ(load_artifact(pulled).version_id(), r.version_id);
    EXPECT_EQ(pull_artifact((dir / "store").string(), "track_index", dir / "pulled"), pulled);  // reused

    // A corrupt object in the store: pull refuses and leaves nothing behind.
    flip_byte(dir / "store" / pointer["artifact_prefix"].get<std::string>() / "index.faiss", 100);
    EXPECT_NE(test::error_message([&] { pull_artifact((dir / "store").string(), "track_index", dir / "other"); }).find("corrupt"),
              std::string::npos);
    EXPECT_FALSE(fs::exists(dir / "other/track_index") && !fs::is_empty(dir / "other/track_index"));
    EXPECT_NE(test::error_message([&] { pull_artifact((dir / "store").string(), "clip_index", dir / "other"); }).find("no such object"),
              std::string::npos);
    // A damaged local artifact is never published.
    const fs::path v2 = write_artifact(idx, dir / "local", "track_index");
    flip_byte(v2 / "records.json.gz", 20);
    EXPECT_THROW(publish_artifact(v2, (dir / "store").string()), Error);
    EXPECT_EQ(nlohmann::json::parse(read_file(dir / "store/track_index/latest.json"))["artifact_version_id"], r.version_id);
    EXPECT_THROW(open_store("http://example.org/x", nullptr), Error);
}

// Presigned GET URLs (the server's audio redirects) against botocore's S3SigV4QueryAuth, recomputed in
// Python with the URL's own date and expiry: AWS's default endpoint and a path-style one, keys that need
// encoding, a session token, another region.
TEST(Artifacts, PresignedUrlsMatchBotocore) {
    struct Case {
        std::string endpoint, region, token, bucket, key;
        int expires;
    };
    const std::vector<Case> cases = {
        {"", "us-east-1", "", "media", "demo/corpus/audio/01-odetojoy__v00.wav", 600},
        {"http://127.0.0.1:4568", "us-east-1", "", "media", "mess/a b/Chopin – Étude Op.10 No.3 (take+2).flac", 3600},
        {"https://s3.example.test:9000", "eu-west-1", "FQoGZXIvYXdzEBYaDO/token+x=", "audio-store", "x/~y/z_1.ogg", 604800},
    };
    for (const Case& c : cases) {
        S3Config cfg;
        cfg.endpoint = c.endpoint;
        cfg.region = c.region;
        cfg.session_token = c.token;
        cfg.access_key = "AKIDEXAMPLE";
        cfg.secret_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        const std::string url = presign_get_url(cfg, c.bucket, c.key, c.expires, 1700000000);  // 2023-11-14T22:13:20Z
        EXPECT_NE(url.find("X-Amz-Date=20231114T221320Z"), std::string::npos) << url;
        std::string command = std::string(MESS_PYTHON) + " " + test::quote(std::string(MESS_SOURCE_DIR) + "/tests/artifacts/presign_check.py") + " " +
                              test::quote(url) + " " + cfg.access_key + " " + test::quote(cfg.secret_key) + " " + c.region;
        if (!c.token.empty()) command += " " + test::quote(c.token);
        const auto r = test::run_command(command + " 2>&1");
        ASSERT_EQ(r.exit_code, 0) << r.out;
        const auto j = nlohmann::json::parse(r.out);
        EXPECT_TRUE(j["match"].get<bool>()) << url << "\n" << r.out;
        EXPECT_TRUE(j["params_equal"].get<bool>()) << url << "\n" << r.out;
        EXPECT_TRUE(j["path_equal"].get<bool>()) << url << "\n" << r.out;
    }
    S3Config none;
    test::error_message([&] { presign_get_url(none, "b", "k", 600, 0); }, ErrorKind::usage);
    none.access_key = "a";
    none.secret_key = "s";
    test::error_message([&] { presign_get_url(none, "b", "k", 0, 0); }, ErrorKind::usage);
    test::error_message([&] { presign_get_url(none, "b", "k", 604801, 0); }, ErrorKind::usage);
}

// Learned aspect spaces travel with the artifact: models and per-row vectors load back bit for bit and
// answer the same; a missing aspect vector file is named.
TEST(Artifacts, LearnedAspectSpacesRoundTrip) {
    test::TempDir tmp;
    SearchIndex idx = make_index(IndexKind::track, "Flat", 20);
    AspectModel m;
    m.name = "tempo";
    m.rung = AspectRung::standardise;
    m.in_dim = m.out_dim = 16;
    m.mean.assign(16, 0.5f);
    m.scale.assign(16, 2.0f);
    idx.aspect_spaces.models = {"tiny", {1}, 16, {{"tempo", m}}, nullptr};
    idx.aspect_spaces.stack_layers = 3;
    std::mt19937 g(3);
    std::normal_distribution<float> d(0, 1);
    std::vector<float> v(20 * 16);
    for (auto& x : v) x = d(g);
    for (std::size_t r = 0; r < 20; ++r) l2_normalize(v.data() + r * 16, 16);
    idx.aspect_spaces.vectors["tempo"] = v;
    const fs::path dir = write_artifact(idx, tmp.path(), "track_index");
    EXPECT_TRUE(fs::exists(dir / "aspect_models.aspects.json"));
    const auto loaded = std::make_shared<const LoadedArtifact>(load_artifact(dir));
    EXPECT_EQ(loaded->index.aspect_spaces.vectors.at("tempo"), v);
    EXPECT_EQ(loaded->index.aspect_spaces.models.aspects.at("tempo").mean, m.mean);
    EXPECT_EQ(loaded->index.aspect_spaces.stack_layers, 3u);
    SearchRequest r;
    r.track_id = "t003";
    r.aspects = {{"tempo", 1.0}};
    const Searcher a(std::make_shared<const SearchIndex>(std::move(idx)), {}), b = make_searcher(loaded);
    EXPECT_EQ(hits_to_json(a.search(r)), hits_to_json(b.search(r)));
    fs::remove(dir / "aspect_vectors.tempo.npy");
    try {
        load_artifact(dir, false);
        FAIL() << "a missing aspect vector file must be refused";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("aspect_vectors.tempo.npy"), std::string::npos) << e.what();
    }
}

// Structure in artifacts: every indexed track's structure (a stored file when it is not older than its audio,
// else analysed), a track whose audio does not decode skipped and named; loaded back into the index; an
// artifact without the file (from before it existed) still loads; a damaged file is refused by name.
TEST(Artifacts, StructureIsStoredAndLoaded) {
    test::TempDir root;
    const fs::path audio = root / "audio";
    fs::create_directories(audio);
    std::vector<test::Note> notes;
    for (int i = 0; i < 24; ++i) notes.push_back({60.0 + (i % 4) * 4, 0.5 * i, 0.45, 0.3 + 0.02 * i});  // a swell over 12 s
    test::write_sound(audio / "t000.wav", test::render_notes(notes, 12.0, 24000), 1, 24000, 0x010002 /* WAV PCM16 */);
    test::write_sound(audio / "t001.wav", test::render_notes(notes, 12.0, 24000), 1, 24000, 0x010002);
    write_file_atomic(audio / "t002.wav", "RIFF not really a wav file");
    const Dataset ds = Dataset::folder(root.path(), audio, "ds");
    // t001's stored structure is newer than its audio: it is used as it is (a marker climax at 1 s shows it).
    Structure marker;
    marker.duration_sec = 12;
    marker.boundaries = {0, 12};
    marker.sections = {{0, 12, "A"}};
    marker.climax = Climax{1.0, 0.5, 1.5, 0.5};
    write_structure_file(ds.features().structure_path("t001"), marker);

    StructureBuildReport report;
    const std::string bytes = build_structures(ds, {"t000", "t001", "t002"}, &report);
    EXPECT_EQ(report.analysed, 1u);
    EXPECT_EQ(report.stored, 1u);
    ASSERT_EQ(report.skipped.size(), 1u);
    EXPECT_EQ(report.skipped[0].rfind("t002: ", 0), 0u) << report.skipped[0];

    const SearchIndex idx = make_index(IndexKind::clip, "Flat", 12);  // tracks t000, t001, t002
    const fs::path with = write_artifact(idx, root / "indices", "clip_index", nlohmann::json::object(), {{kStructureFile, bytes}});
    const LoadedArtifact a = load_artifact(with);
    ASSERT_TRUE(a.index.structures);
    ASSERT_TRUE(a.index.structure_of("t000"));
    const Structure& s0 = *a.index.structure_of("t000");
    EXPECT_NEAR(s0.duration_sec, 12.0, 0.01);
    ASSERT_TRUE(s0.climax);
    EXPECT_GT(s0.climax->time, 6.0);  // the swell peaks late
    EXPECT_DOUBLE_EQ(a.index.structure_of("t001")->climax->time, 1.0);
    EXPECT_EQ(a.index.structure_of("t002"), nullptr);

    const fs::path without = write_artifact(idx, root / "old", "clip_index");
    EXPECT_EQ(load_artifact(without).index.structures, nullptr);

    // A damaged structure file with a correct checksum (written so) is refused, naming the file.
    nlohmann::json bad = {{"schema", kStructureSchema}, {"tracks", {{"t000", {{"boundaries", "no"}}}}}};
    const fs::path damaged = write_artifact(idx, root / "bad", "clip_index", nlohmann::json::object(), {{kStructureFile, gzip_compress(bad.dump())}});
    try {
        load_artifact(damaged);
        ADD_FAILURE() << "a damaged structure file loaded";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(kStructureFile), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("t000"), std::string::npos) << e.what();
    }
}

namespace {

// make_index's rows as a compressed clip index (IVF-SQ8 codes, float16 rows in `scratch`).
SearchIndex make_compressed_index(const fs::path& scratch, std::size_t n = 300, const std::string& factory = "IVF8,SQ8") {
    SearchIndex flat = make_index(IndexKind::clip, "Flat", n);
    HalfRowsWriter w(scratch / ".rows.npy", flat.index.dimension());
    w.append(flat.index.vectors().data(), n);
    CompressedParams p;
    p.factory = factory;
    p.rerank = 50;
    SearchIndex idx;
    idx.kind = IndexKind::clip;
    idx.records = flat.records;
    idx.dataset = "ds";
    idx.layer_spec = flat.layer_spec;
    idx.index = VectorIndex::build_compressed(w.finish(/*remove_on_close=*/true), p);
    idx.rebuild_lookup();
    return idx;
}

}  // namespace

// IVF-SQ8 as every earlier build wrote it, and with a PCA in front of the lists (pca-ivf-sq8: the same schema,
// the projection inside index.faiss). Cost: about 0.2 s.
TEST(Artifacts, CompressedRoundTripMapsTheFloat16Rows) {
    for (const auto& [factory, type] : {std::pair{"IVF8,SQ8", "ivf-sq8"}, std::pair{"PCA8,IVF8,SQ8", "pca-ivf-sq8"}}) {
        SCOPED_TRACE(factory);
        test::TempDir dir;
        const SearchIndex idx = make_compressed_index(dir.path(), 300, factory);
        const fs::path a = write_artifact(idx, dir.path(), "clip_index");
        EXPECT_TRUE(fs::exists(a / kHalfVectorsFile));
        EXPECT_FALSE(fs::exists(a / "vectors.npy"));
        EXPECT_FALSE(fs::exists(a / "layers.npy"));
        const LoadedArtifact l = load_artifact(a);
        EXPECT_EQ(l.manifest["schema_version"], kCompressedSchemaVersion);
        EXPECT_EQ(l.manifest["index_type"], type);
        EXPECT_EQ(l.manifest["factory_string"], factory);
        EXPECT_EQ(l.manifest["rerank"], 50);
        EXPECT_EQ(l.manifest["default_nprobe"], kDefaultCompressedNprobe);
        ASSERT_TRUE(l.index.index.is_compressed());
        EXPECT_EQ(l.index.index.half_rows()->path(), a / kHalfVectorsFile);  // mapped in place, not read whole
        PassageQuery pq;
        pq.clip_id = "ds:t010:00001";
        pq.options.k = 8;
        const auto x = similar_passages(idx, pq), y = similar_passages(l.index, pq);
        ASSERT_EQ(x.size(), y.size());
        for (std::size_t i = 0; i < x.size(); ++i) {
            EXPECT_EQ(x[i].record->id, y[i].record->id);
            EXPECT_FLOAT_EQ(x[i].score, y[i].score);
        }
        // The scratch rows file and the artifact's are one file (a hard link: gigabytes are not copied).
        EXPECT_EQ(fs::hard_link_count(a / kHalfVectorsFile), 2u);
    }
}

// Cost: about 0.1 s.
TEST(Artifacts, CompressedRowsDamageIsNamed) {
    test::TempDir dir;
    const SearchIndex idx = make_compressed_index(dir.path(), 120);
    auto message = [](const fs::path& p, bool verify = true) { return test::error_message([&] { load_artifact(p, verify); }); };
    fs::path a = write_artifact(idx, dir.path(), "clip_index");
    flip_byte(a / kHalfVectorsFile, 5000);
    EXPECT_NE(message(a).find("vectors_f16.npy does not match its SHA-256"), std::string::npos) << message(a);
    a = write_artifact(idx, dir.path(), "clip_index");
    fs::resize_file(a / kHalfVectorsFile, fs::file_size(a / kHalfVectorsFile) - 6);
    EXPECT_NE(message(a, false).find("vectors_f16.npy is"), std::string::npos) << message(a, false);
    // Truncated with checksums.json rewritten to match: the array's own header gives it away.
    a = write_artifact(idx, dir.path(), "clip_index");
    fs::resize_file(a / kHalfVectorsFile, fs::file_size(a / kHalfVectorsFile) - 6);
    auto sums = nlohmann::json::parse(read_file(a / "checksums.json"));
    const FileDigests d = file_digests(a / kHalfVectorsFile);
    sums[kHalfVectorsFile] = {{"sha256", d.sha256}, {"md5", d.md5}, {"size", d.size}};
    write_file_atomic(a / "checksums.json", sums.dump());
    EXPECT_NE(message(a).find("truncated"), std::string::npos) << message(a);
    EXPECT_NE(message(a).find(kHalfVectorsFile), std::string::npos) << message(a);
}

// Cost: about 0.1 s (9 MB hashed twice).
TEST(Artifacts, StreamingChecksumsEqualWholeFileChecksums) {
    test::TempDir dir;
    std::mt19937 g(3);
    std::string bytes(2 * kDigestChunk + 123, '\0');  // spans chunk boundaries, ends mid-chunk
    for (auto& c : bytes) c = static_cast<char>(g());
    write_file_atomic(dir.path() / "big.bin", bytes);
    const FileDigests d = file_digests(dir.path() / "big.bin");
    EXPECT_EQ(d.sha256, sha256_hex(bytes));
    EXPECT_EQ(d.md5, md5_hex(bytes));
    EXPECT_EQ(d.size, bytes.size());
    EXPECT_EQ(sha256_file(dir.path() / "big.bin"), d.sha256);
    // Golden: SHA-256 and MD5 of the empty input (FIPS 180-4 / RFC 1321 test values).
    write_file_atomic(dir.path() / "empty.bin", "");
    EXPECT_EQ(file_digests(dir.path() / "empty.bin").sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(file_digests(dir.path() / "empty.bin").md5, "d41d8cd98f00b204e9800998ecf8427e");
    EXPECT_NE(test::error_message([&] { file_digests(dir.path() / "missing.bin"); }).find("missing.bin"), std::string::npos);
}
