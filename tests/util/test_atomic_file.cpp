#include <gtest/gtest.h>

#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;
namespace fs = std::filesystem;

static std::size_t count_entries(const fs::path& dir) {
    return static_cast<std::size_t>(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(AtomicFile, CommitPublishesTheWholeFile) {
    test::TempDir dir;
    write_file_atomic(dir / "a.bin", "hello");
    EXPECT_EQ(read_file(dir / "a.bin"), "hello");
    EXPECT_EQ(count_entries(dir.path()), 1u);  // no temp file left behind
}

TEST(AtomicFile, UncommittedWriteLeavesNothingAndKeepsTheOldFile) {
    test::TempDir dir;
    write_file_atomic(dir / "a.bin", "old");
    {
        AtomicFile f(dir / "a.bin");
        f.write("new-but-interrupted", 19);
        EXPECT_TRUE(fs::exists(f.temp_path()));
    }  // destroyed without commit, as when an exception unwinds
    EXPECT_EQ(read_file(dir / "a.bin"), "old");
    EXPECT_EQ(count_entries(dir.path()), 1u);
}

TEST(AtomicFile, MissingDirectoryIsAnInputErrorNamingThePath) {
    test::TempDir dir;
    try {
        write_file_atomic(dir / "no/such/dir/x.npy", "x");
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::input);
        EXPECT_NE(std::string(e.what()).find("x.npy"), std::string::npos);
    }
}

TEST(ReadFile, MissingFileAndDirectoryAreInputErrors) {
    test::TempDir dir;
    EXPECT_THROW(read_file(dir / "missing"), Error);
    EXPECT_THROW(read_file(dir.path()), Error);
    write_file_atomic(dir / "empty", "");
    EXPECT_EQ(read_file(dir / "empty"), "");
}

TEST(FileStamp, SizeAndNanosecondTimeOfAFileAndHowTheyChanged) {
    test::TempDir dir;
    write_file_atomic(dir / "a.wav", "12345");
    const FileStamp a = file_stamp(dir / "a.wav");
    EXPECT_EQ(a.size_bytes, 5u);
    EXPECT_EQ(a.mtime_ns, std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::file_clock::to_sys(fs::last_write_time(dir / "a.wav")).time_since_epoch()).count());
    EXPECT_EQ(file_stamp(dir / "a.wav"), a);  // stable while the file is untouched

    fs::last_write_time(dir / "a.wav", fs::last_write_time(dir / "a.wav") + std::chrono::milliseconds(3250));
    const FileStamp touched = file_stamp(dir / "a.wav");
    EXPECT_EQ(touched.size_bytes, 5u);
    EXPECT_EQ(touched.mtime_ns - a.mtime_ns, 3'250'000'000);
    EXPECT_EQ(describe_change(a, touched), "modified 3.250 s later");
    write_file_atomic(dir / "a.wav", "123456");
    EXPECT_EQ(describe_change(a, file_stamp(dir / "a.wav")), "size 5 → 6 bytes");
    EXPECT_EQ(describe_change(a, a), "unchanged");

    const std::string why = test::error_message([&] { file_stamp(dir / "gone.wav"); });
    EXPECT_NE(why.find("gone.wav: no such file"), std::string::npos) << why;
}
