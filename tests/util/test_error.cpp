#include <gtest/gtest.h>

#include "mess/util.hpp"

using namespace mess;

TEST(Error, ContextIsPrependedOutermostFirst) {
    try {
        with_context("track.flac", [] { with_context("decode", [] { throw_input("truncated file"); }); });
        FAIL() << "no exception";
    } catch (const Error& e) {
        EXPECT_STREQ(e.what(), "track.flac: decode: truncated file");
        EXPECT_EQ(e.kind(), ErrorKind::input);
    }
}

TEST(Error, ForeignExceptionsBecomeInternalWithContext) {
    try {
        with_context("stage", [] { throw std::out_of_range("index 7"); });
        FAIL();
    } catch (const Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::internal);
        EXPECT_STREQ(e.what(), "stage: index 7");
    }
}

TEST(Error, WithContextReturnsTheValue) { EXPECT_EQ(with_context("x", [] { return 42; }), 42); }

TEST(Error, ExitCodesAreTheDocumentedOnes) {
    EXPECT_EQ(exit_code(ErrorKind::usage), 1);
    EXPECT_EQ(exit_code(ErrorKind::input), 2);
    EXPECT_EQ(exit_code(ErrorKind::internal), 3);
}
