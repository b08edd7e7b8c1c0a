// S3 publishing and pulling against a real S3-compatible server (s3rver on 127.0.0.1, installed by
// scripts/setup), an interrupted upload, a corrupt object, and libcurl's SigV4 signature checked against
// botocore's for the same requests.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "mess/artifacts.hpp"
#include "mess/util.hpp"
#include "support/process.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

namespace {

using test::BackgroundServer;
using test::port_open;

SearchIndex small_index() {
    std::vector<IndexRecord> recs;
    std::vector<float> v;
    for (int i = 0; i < 40; ++i) {
        IndexRecord r;
        r.id = r.track_id = r.recording_id = fmt::format("t{}", i);
        recs.push_back(r);
        for (int j = 0; j < 8; ++j) v.push_back(static_cast<float>((i * 7 + j * 3) % 11) - 5.0f);
    }
    return build_index_from_vectors(IndexKind::track, recs, v, 8, "Flat");
}

const std::string& kS3rver = test::s3rver_path();

}  // namespace

TEST(S3, PublishPullInterruptAndCorruptAgainstS3rver) {
    if (!fs::exists(kS3rver)) GTEST_FAIL() << "s3rver missing: run scripts/setup";
    test::TempDir dir;
    const auto s3 = test::start_s3rver((dir / "s3").string());
    ASSERT_TRUE(port_open(s3->port)) << "s3rver did not start";
    const std::string uri = "s3://mess/mess/faiss";

    const SearchIndex idx = small_index();
    const fs::path v1 = write_artifact(idx, dir / "local", "track_index");
    const PublishReport r1 = publish_artifact(v1, uri);
    EXPECT_EQ(r1.objects.size(), 5u);  // index.faiss, manifest.json, records.json.gz, track_names.json, checksums.json
    const fs::path p1 = pull_artifact(uri, "track_index", dir / "pulled");
    EXPECT_EQ(load_artifact(p1).version_id(), r1.version_id);

    // An upload killed midway (the CLI, aborting after 2 objects): latest.json still names v1.
    const fs::path v2 = write_artifact(idx, dir / "local", "track_index");
    const auto killed = test::run_command("MESS_FAULT_ABORT_AFTER_OBJECTS=2 " + std::string(MESS_BINARY) + " publish --index " +
                                          test::quote(v2.string()) + " --to " + uri + " 2>&1");
    EXPECT_NE(killed.exit_code, 0) << killed.out;
    std::string prefix;
    auto store = open_store(uri, &prefix);
    const auto pointer = nlohmann::json::parse(store->get(prefix + "/track_index/latest.json"));
    EXPECT_EQ(pointer["artifact_version_id"], r1.version_id);
    EXPECT_EQ(load_artifact(pull_artifact(uri, "track_index", dir / "pulled2")).version_id(), r1.version_id);

    // The full publish of v2 moves the pointer.
    const auto ok = test::run_command(std::string(MESS_BINARY) + " publish --json --index " + test::quote(v2.string()) + " --to " + uri + " 2>&1");
    ASSERT_EQ(ok.exit_code, 0) << ok.out;
    const std::string v2_id = load_artifact(v2).version_id();
    EXPECT_EQ(nlohmann::json::parse(store->get(prefix + "/track_index/latest.json"))["artifact_version_id"], v2_id);

    // A corrupt object on the server: pull refuses, nothing is left in the destination.
    const std::string key = nlohmann::json::parse(store->get(prefix + "/track_index/latest.json"))["artifact_prefix"].get<std::string>() +
                            "/index.faiss";
    std::string bytes = store->get(key);
    bytes[bytes.size() / 2] ^= 0x21;
    store->put(key, bytes);
    EXPECT_NE(test::error_message([&] { pull_artifact(uri, "track_index", dir / "pulled3"); }).find("corrupt"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir / "pulled3/track_index") && !fs::is_empty(dir / "pulled3/track_index"));
    EXPECT_FALSE(store->head(prefix + "/nothing/here").has_value());
    EXPECT_NE(test::error_message([&] { store->get(prefix + "/nothing/here"); }).find("no such object"), std::string::npos);
}

// What the replicas behind a load balancer rely on: read_latest names the published version without
// downloading it, and replicas sharing one cache may pull the same version at the same time.
TEST(S3, ReadLatestAndConcurrentPullsIntoOneCache) {
    if (!fs::exists(kS3rver)) GTEST_FAIL() << "s3rver missing: run scripts/setup";
    test::TempDir dir;
    const auto s3 = test::start_s3rver((dir / "s3").string());
    ASSERT_TRUE(port_open(s3->port)) << "s3rver did not start";
    const std::string uri = "s3://mess/prod";
    EXPECT_NE(test::error_message([&] { read_latest(uri, "track_index"); }).find("latest.json"), std::string::npos);

    const fs::path v1 = write_artifact(small_index(), dir / "local", "track_index");
    const PublishReport r = publish_artifact(v1, uri);
    const LatestPointer latest = read_latest(uri, "track_index");
    EXPECT_EQ(latest.version_id, r.version_id);
    EXPECT_EQ(latest.artifact_prefix, r.artifact_prefix);
    EXPECT_EQ(latest.stamp, v1.filename().string());
    EXPECT_FALSE(fs::exists(dir / "cache"));  // nothing downloaded

    std::vector<std::string> pulled(4), errors(4);
    std::vector<std::thread> replicas;
    for (std::size_t i = 0; i < pulled.size(); ++i)
        replicas.emplace_back([&, i] {
            try {
                pulled[i] = pull_artifact(uri, "track_index", dir / "cache").string();
            } catch (const std::exception& e) {
                errors[i] = e.what();
            }
        });
    for (auto& t : replicas) t.join();
    for (std::size_t i = 0; i < pulled.size(); ++i) {
        EXPECT_EQ(errors[i], "") << "replica " << i;
        EXPECT_EQ(pulled[i], (dir / "cache/track_index" / latest.stamp).string());
    }
    EXPECT_EQ(load_artifact(dir / "cache/track_index" / latest.stamp).version_id(), r.version_id);
    EXPECT_EQ(artifact_versions(dir / "cache", "track_index").size(), 1u);  // no temporary directory left
}

TEST(S3, SignatureEqualsBotocore) {
    test::TempDir dir;
    const fs::path report = dir / "report.json";
    BackgroundServer check(std::string(MESS_PYTHON) + " " + test::quote(std::string(MESS_SOURCE_DIR) + "/tests/artifacts/sigv4_check.py") +
                 " {} " + test::quote(report.string()) + " s3cr3t/Key+with=chars");
    ASSERT_TRUE(port_open(check.port)) << "signature check server did not start";
    S3Config cfg;
    cfg.endpoint = fmt::format("http://127.0.0.1:{}", check.port);
    cfg.region = "eu-west-3";
    cfg.access_key = "AKIDEXAMPLE";
    cfg.secret_key = "s3cr3t/Key+with=chars";
    auto store = make_s3_store("bucket", cfg);
    store->put("mess/faiss/a b/obj.json", "{\"hello\": 1}");
    EXPECT_EQ(store->head("mess/faiss/a b/obj.json")->size, 12);
    EXPECT_EQ(store->get("mess/faiss/a b/obj.json"), "{\"hello\": 1}");
    EXPECT_FALSE(store->head("missing").has_value());
    const std::string big(3 << 20, 'x');  // large enough for curl's Expect: 100-continue
    store->put("mess/big.bin", big);
    EXPECT_EQ(store->get("mess/big.bin").size(), big.size());
    const auto results = nlohmann::json::parse(read_file(report));
    ASSERT_EQ(results.size(), 6u) << results.dump(2);
    for (const auto& r : results) {
        EXPECT_TRUE(r.value("match", false)) << r.dump();
        EXPECT_TRUE(r.value("payload_hash_ok", false)) << r.dump();
        const auto h = r["signed_headers"].get<std::vector<std::string>>();
        EXPECT_NE(std::find(h.begin(), h.end(), "x-amz-content-sha256"), h.end()) << r.dump();
    }
    std::printf("%s\n", results.dump(1).c_str());
}
