// Streaming gzip (src/artifacts/gzip_stream.hpp): what GzipWriter writes is ordinary gzip (the one-shot
// gzip_decompress reads it), elements come back one at a time in order, and damage is named.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "../../src/artifacts/gzip_stream.hpp"  // internal to the module
#include "mess/artifacts.hpp"
#include "support/support.hpp"

using namespace mess;
using mess::detail::for_each_gzip_json_element;
using mess::detail::GzipWriter;
namespace fs = std::filesystem;

namespace {

// Writes a JSON array of `n` records in pieces, the way write_artifact writes records.json.gz.
void write_records(const fs::path& p, std::size_t n) {
    GzipWriter w(p);
    w.write("[");
    for (std::size_t i = 0; i < n; ++i)
        w.write((i ? "," : "") + nlohmann::json{{"id", fmt::format("ds:t{:06d}:{:05d}", i / 40, i % 40)}, {"start_time", 2.5 * double(i % 40)}}.dump());
    w.write("]");
    w.commit();
}

std::string error_of(const fs::path& p) {
    try {
        for_each_gzip_json_element(p, [](nlohmann::json&) {});
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        return e.what();
    }
    return "";
}

}  // namespace

TEST(GzipStream, ElementsComeBackInOrderAndTheFileIsPlainGzip) {
    test::TempDir dir;
    const fs::path p = dir.path() / "records.json.gz";
    const std::size_t n = 30000;  // several 256-KiB chunks of compressed and inflated text
    write_records(p, n);
    std::size_t next = 0;
    const std::size_t count = for_each_gzip_json_element(p, [&](nlohmann::json& r) {
        EXPECT_EQ(r.at("id"), fmt::format("ds:t{:06d}:{:05d}", next / 40, next % 40));
        ++next;
    });
    EXPECT_EQ(count, n);
    EXPECT_EQ(next, n);
    const auto whole = nlohmann::json::parse(gzip_decompress(read_file(p), p.string()));
    ASSERT_TRUE(whole.is_array());
    EXPECT_EQ(whole.size(), n);
    EXPECT_EQ(whole[n - 1].at("start_time"), 2.5 * double((n - 1) % 40));
}

TEST(GzipStream, EmptyArrayAndScalarElements) {
    test::TempDir dir;
    write_file_atomic(dir.path() / "empty.gz", gzip_compress("[]"));
    EXPECT_EQ(for_each_gzip_json_element(dir.path() / "empty.gz", [](nlohmann::json&) { FAIL(); }), 0u);
    write_file_atomic(dir.path() / "names.gz", gzip_compress(R"(["a", 2, [3, 4], {"x": [5]}])"));
    std::vector<std::string> seen;
    for_each_gzip_json_element(dir.path() / "names.gz", [&](nlohmann::json& e) { seen.push_back(e.dump()); });
    EXPECT_EQ(seen, (std::vector<std::string>{"\"a\"", "2", "[3,4]", "{\"x\":[5]}"}));
}

TEST(GzipStream, DamageIsNamed) {
    test::TempDir dir;
    const fs::path good = dir.path() / "good.json.gz";
    write_records(good, 2000);
    const std::string bytes = read_file(good);

    const fs::path cut = dir.path() / "cut.json.gz";
    write_file_atomic(cut, bytes.substr(0, bytes.size() / 2));
    EXPECT_NE(error_of(cut).find("cut.json.gz: truncated gzip data"), std::string::npos) << error_of(cut);

    const fs::path plain = dir.path() / "plain.json.gz";
    write_file_atomic(plain, "[1, 2, 3]");
    EXPECT_NE(error_of(plain).find("plain.json.gz: corrupt gzip data"), std::string::npos) << error_of(plain);

    const fs::path object = dir.path() / "object.json.gz";
    write_file_atomic(object, gzip_compress(R"({"records": []})"));
    EXPECT_NE(error_of(object).find("object.json.gz: expected a JSON array"), std::string::npos) << error_of(object);

    const fs::path broken = dir.path() / "broken.json.gz";
    write_file_atomic(broken, gzip_compress(R"([{"id": 1}, {"id": )"));
    EXPECT_NE(error_of(broken).find("broken.json.gz: not valid JSON"), std::string::npos) << error_of(broken);

    EXPECT_NE(error_of(dir.path() / "missing.json.gz").find("missing.json.gz: cannot open"), std::string::npos);
}

TEST(GzipStream, AWriterNotCommittedLeavesNothing) {
    test::TempDir dir;
    const fs::path p = dir.path() / "records.json.gz";
    {
        GzipWriter w(p);
        w.write("[1,2");
    }
    EXPECT_FALSE(fs::exists(p));
    EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 0);
}
