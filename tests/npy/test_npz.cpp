#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kGolden = fs::path(MESS_FIXTURES_DIR) / "npy";

TEST(Npz, ReadsNumpyCompressedAndStoredArchives) {
    NpzMembers m = read_npz(kGolden / "members.npz");
    ASSERT_EQ(m.size(), 2u);
    EXPECT_EQ(m.at("rhythm/tempo").view<float>()[1], 121.5f);
    EXPECT_EQ(m.at("labels").view<std::int64_t>()[2], 2);
    NpzMembers s = read_npz(kGolden / "stored.npz");
    EXPECT_EQ(s.at("a").describe(), "float64 [2, 2]");
}

TEST(Npz, RoundTripsStoredAndDeflated) {
    test::TempDir dir;
    std::vector<float> curve(60, 0.5f);
    std::vector<std::int32_t> ids = {3, 1, 4};
    NpzMembers in = {{"curves/tempo", NpyArray::from(curve, {60})}, {"ids", NpyArray::from(ids, {3})}};
    for (bool compress : {false, true}) {
        fs::path p = dir / (compress ? "c.npz" : "s.npz");
        write_npz(p, in, compress);
        NpzMembers out = read_npz(p);
        ASSERT_EQ(out.size(), 2u);
        EXPECT_EQ(out.at("curves/tempo").view<float>()[59], 0.5f);
        EXPECT_EQ(out.at("ids").view<std::int32_t>()[2], 4);
    }
    EXPECT_LT(fs::file_size(dir / "c.npz"), fs::file_size(dir / "s.npz"));
}

TEST(Npz, CorruptArchivesAreInputErrorsNamingTheFile) {
    test::TempDir dir;
    std::string good = read_file(kGolden / "members.npz");
    write_file_atomic(dir / "trunc.npz", good.substr(0, good.size() / 2));
    write_file_atomic(dir / "garbage.npz", "this is not a zip archive at all");
    write_file_atomic(dir / "empty.npz", "");
    for (const char* name : {"trunc.npz", "garbage.npz", "empty.npz"}) {
        try {
            read_npz(dir / name);
            ADD_FAILURE() << name << " accepted";
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::input);
            EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
        }
    }
}

TEST(Npz, MemberThatIsNotNpyIsNamedInTheError) {
    test::TempDir dir;
    // A zip whose member is corrupt .npy content: write a good archive, then corrupt a member's magic.
    std::vector<float> v(4, 1.0f);
    write_npz(dir / "m.npz", {{"x", NpyArray::from(v, {4})}}, false);
    std::string bytes = read_file(dir / "m.npz");
    auto pos = bytes.find("\x93NUMPY");
    ASSERT_NE(pos, std::string::npos);
    bytes[pos + 1] = 'X';
    write_file_atomic(dir / "m.npz", bytes);
    try {
        read_npz(dir / "m.npz");
        FAIL();
    } catch (const Error& e) {
        std::string msg = e.what();
        EXPECT_NE(msg.find("m.npz"), std::string::npos) << msg;
    }
}
