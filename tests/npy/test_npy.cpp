#include <cmath>

#include <gtest/gtest.h>

#include "mess/npy.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static const fs::path kGolden = fs::path(MESS_FIXTURES_DIR) / "npy";

static std::string error_of(const std::function<void()>& fn) { return test::error_message(fn); }

// Golden files written by NumPy 1.24 (tests/fixtures/npy/make_fixtures.py).
TEST(Npy, ReadsNumpyGoldenFiles) {
    NpyArray a = read_npy(kGolden / "f32_2x3.npy");
    EXPECT_EQ(a.describe(), "float32 [2, 3]");
    EXPECT_EQ(a.view<float>()[5], 1.25f);

    NpyArray h = read_npy(kGolden / "f16_5.npy");
    auto hv = h.to_float32();
    EXPECT_EQ(hv[2], -2.5f);
    EXPECT_EQ(hv[3], 65504.0f);
    EXPECT_NEAR(hv[4], 0.1f, 1e-4f);

    NpyArray s = read_npy(kGolden / "i64_scalar.npy");
    EXPECT_TRUE(s.shape.empty());
    EXPECT_EQ(s.view<std::int64_t>()[0], -7);

    NpyArray e = read_npy(kGolden / "i32_empty.npy");
    EXPECT_EQ(e.describe(), "int32 [0, 4]");
    EXPECT_EQ(e.count(), 0u);

    EXPECT_EQ(read_npy(kGolden / "f64_3.npy").view<double>()[2], 1e300);
    EXPECT_EQ(read_npy(kGolden / "bool_3.npy").dtype, DType::boolean);
    NpyArray v2 = read_npy(kGolden / "u8_v2.npy");
    EXPECT_EQ(v2.view<std::uint8_t>()[2], 250);
}

TEST(Npy, EncodesByteIdenticalToNumpy) {
    for (const char* name : {"f32_2x3.npy", "f16_5.npy", "i64_scalar.npy", "i32_empty.npy", "f64_3.npy"}) {
        std::string golden = read_file(kGolden / name);
        EXPECT_EQ(encode_npy(decode_npy(golden, name)), golden) << name;
    }
}

TEST(Npy, StreamedFloatsAreByteIdenticalToNumpy) {
    // write_npy(path, values, shape) writes header and data without an NpyArray: the same bytes numpy wrote.
    test::TempDir dir;
    const std::string golden = read_file(kGolden / "f32_2x3.npy");
    const NpyArray a = decode_npy(golden, "f32_2x3.npy");
    const std::vector<float> values(a.view<float>().begin(), a.view<float>().end());
    write_npy(dir / "s.npy", values, {2, 3});
    EXPECT_EQ(read_file(dir / "s.npy"), golden);
    write_npy(dir / "empty.npy", std::span<const float>(), {0, 4});
    EXPECT_EQ(read_npy(dir / "empty.npy").shape, (std::vector<std::int64_t>{0, 4}));
    EXPECT_NE(test::error_message([&] { write_npy(dir / "bad.npy", values, {4, 2}); }, ErrorKind::usage).find("bad.npy"), std::string::npos);
    EXPECT_FALSE(std::filesystem::exists(dir / "bad.npy"));
}

TEST(Npy, HeaderIsPaddedTo64Bytes) {
    std::vector<float> v(7, 1.0f);
    std::string bytes = encode_npy(NpyArray::from(v, {7}));
    EXPECT_EQ((bytes.size() - 7 * 4) % 64, 0u);
    EXPECT_NE(bytes.find("'shape': (7,)"), std::string::npos);
}

TEST(Npy, RoundTripsEveryDtypeThroughAFile) {
    test::TempDir dir;
    std::vector<float> f = {1.5f, -2.0f, 3.25f, 0.0f, 1e-30f, 7.0f};
    write_npy(dir / "f.npy", NpyArray::from(f, {2, 3}));
    NpyArray back = read_npy(dir / "f.npy");
    EXPECT_EQ(back.shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(std::vector<float>(back.view<float>().begin(), back.view<float>().end()), f);

    std::vector<std::int32_t> i32 = {-1, 2, 1 << 30};
    write_npy(dir / "i.npy", NpyArray::from(i32, {3}));
    EXPECT_EQ(read_npy(dir / "i.npy").view<std::int32_t>()[2], 1 << 30);

    std::vector<std::int64_t> i64 = {-(1LL << 40)};
    write_npy(dir / "l.npy", NpyArray::from(i64, {1, 1}));
    EXPECT_EQ(read_npy(dir / "l.npy").view<std::int64_t>()[0], -(1LL << 40));

    write_npy(dir / "h.npy", NpyArray::float16_from(f, {6}));
    auto h = read_npy(dir / "h.npy");
    EXPECT_EQ(h.dtype, DType::f16);
    EXPECT_EQ(h.to_float32()[2], 3.25f);
}

TEST(Npy, FortranOrderIsReadIntoCOrder) {
    NpyArray f = read_npy(kGolden / "f32_fortran_2x3.npy");  // numpy: arange(6).reshape(2, 3) in Fortran order
    EXPECT_EQ(f.describe(), "float32 [2, 3]");
    auto v = f.view<float>();
    EXPECT_EQ(std::vector<float>(v.begin(), v.end()), (std::vector<float>{0, 1, 2, 3, 4, 5}));
}

TEST(Npy, TypedViewOfWrongDtypeIsAnError) {
    NpyArray a = read_npy(kGolden / "f32_2x3.npy");
    EXPECT_THROW(a.view<double>(), Error);
}

TEST(Npy, RejectsMalformedFilesNamingTheFileAndTheProblem) {
    std::string good = read_file(kGolden / "f32_2x3.npy");
    EXPECT_NE(error_of([&] { decode_npy("", "empty.npy"); }).find("empty.npy: not a .npy file"), std::string::npos);
    EXPECT_NE(error_of([&] { decode_npy("PK\x03\x04garbage-bytes", "g.npy"); }).find("bad magic"), std::string::npos);
    EXPECT_NE(error_of([&] { decode_npy(good.substr(0, 40), "h.npy"); }).find("truncated .npy header"), std::string::npos);
    EXPECT_NE(error_of([&] { decode_npy(good.substr(0, good.size() - 1), "d.npy"); }).find("truncated data"), std::string::npos);
    EXPECT_NE(error_of([&] { decode_npy(good + "xx", "t.npy"); }).find("unexpected bytes"), std::string::npos);
    EXPECT_NE(error_of([&] { read_npy(kGolden / "f32_bigendian.npy"); }).find("big-endian"), std::string::npos);

    std::string bad_dtype = good;
    bad_dtype.replace(bad_dtype.find("<f4"), 3, "<c8");
    EXPECT_NE(error_of([&] { decode_npy(bad_dtype, "c.npy"); }).find("unsupported dtype '<c8'"), std::string::npos);
    std::string bad_dict = good;
    bad_dict.replace(bad_dict.find("(2, 3)"), 6, "(2, x)");
    EXPECT_NE(error_of([&] { decode_npy(bad_dict, "s.npy"); }).find("malformed .npy header"), std::string::npos);
    std::string version9 = good;
    version9[6] = 9;
    EXPECT_NE(error_of([&] { decode_npy(version9, "v.npy"); }).find("version 9"), std::string::npos);
    EXPECT_NE(error_of([&] { read_npy("/nonexistent/x.npy"); }).find("no such file"), std::string::npos);
}

TEST(NpyHeader, DescribesGoldenFilesWithoutReadingTheData) {
    const NpyHeader a = read_npy_header(kGolden / "f32_2x3.npy");
    EXPECT_EQ(a.describe(), "float32 [2, 3]");
    EXPECT_FALSE(a.fortran_order);
    EXPECT_EQ(a.data_bytes, 24u);
    EXPECT_EQ(a.data_offset + a.data_bytes, fs::file_size(kGolden / "f32_2x3.npy"));
    EXPECT_EQ(a.data_offset % 64, 0u);  // numpy pads the header to 64 bytes
    EXPECT_EQ(read_npy_header(kGolden / "i64_scalar.npy").describe(), "int64 []");
    EXPECT_EQ(read_npy_header(kGolden / "i64_scalar.npy").data_bytes, 8u);
    EXPECT_EQ(read_npy_header(kGolden / "i32_empty.npy").data_bytes, 0u);
    EXPECT_EQ(read_npy_header(kGolden / "u8_v2.npy").dtype, DType::u8);  // format 2.0: a 4-byte header length
    const NpyHeader f = read_npy_header(kGolden / "f32_fortran_2x3.npy");
    EXPECT_TRUE(f.fortran_order);
    EXPECT_EQ(f.count(), 6u);
}

TEST(NpyHeader, AgreesWithWhatWriteNpyWrote) {
    test::TempDir dir;
    std::vector<float> v(2 * 3 * 5, 0.5f);
    write_npy(dir / "v.npy", v, {2, 3, 5});
    const NpyHeader h = read_npy_header(dir / "v.npy");
    EXPECT_EQ(h.describe(), "float32 [2, 3, 5]");
    EXPECT_EQ(h.data_bytes, v.size() * 4);
    EXPECT_EQ(h.data_offset, encode_npy(NpyArray::from(v, {2, 3, 5})).size() - v.size() * 4);
}

TEST(NpyHeader, TruncatedPaddedAndMalformedFilesAreErrorsNamingTheFile) {
    test::TempDir dir;
    const std::string good = read_file(kGolden / "f32_2x3.npy");
    auto header_error = [&](const std::string& name, const std::string& bytes) {
        write_file_atomic(dir / name, bytes);
        const std::string why = error_of([&] { read_npy_header(dir / name); });
        EXPECT_NE(why.find(name), std::string::npos) << why;
        return why;
    };
    EXPECT_NE(header_error("cut.npy", good.substr(0, good.size() - 1)).find("truncated data: 23 bytes for float32 [2, 3] (needs 24)"),
              std::string::npos);
    EXPECT_NE(header_error("long.npy", good + "x").find("1 unexpected bytes after the data"), std::string::npos);
    EXPECT_NE(header_error("head.npy", good.substr(0, 40)).find("truncated .npy header"), std::string::npos);
    EXPECT_NE(header_error("empty.npy", "").find("not a .npy file (bad magic; 0 bytes)"), std::string::npos);
    EXPECT_NE(header_error("zip.npy", "PK\x03\x04 and a lot more bytes than twelve").find("bad magic"), std::string::npos);
    std::string bad_dict = good;
    bad_dict.replace(bad_dict.find("(2, 3)"), 6, "(2, x)");
    EXPECT_NE(header_error("dict.npy", bad_dict).find("malformed .npy header"), std::string::npos);
    EXPECT_NE(error_of([&] { read_npy_header(dir / "missing.npy"); }).find("missing.npy: no such file"), std::string::npos);
    std::string huge = good;
    huge.replace(huge.find("(2, 3)"), 6, "(4611686018427387904, 9)");
    EXPECT_NE(header_error("huge.npy", huge).find("huge.npy"), std::string::npos);
}

TEST(Npy, HugeShapeIsRejectedWithoutAllocating) {
    std::string good = read_file(kGolden / "f32_2x3.npy");
    std::string huge = good;
    huge.replace(huge.find("(2, 3)"), 6, "(4611686018427387904, 9)");
    EXPECT_THROW(decode_npy(huge, "huge.npy"), Error);
}
