#include <gtest/gtest.h>

#include "mess/util.hpp"

using namespace mess;

TEST(Progress, SummaryCountsItemsAndShowsEta) {
    Progress p("extract", 10, std::chrono::seconds(3600));
    p.advance(4);
    std::string s = p.summary();
    EXPECT_NE(s.find("4/10"), std::string::npos) << s;
    EXPECT_NE(s.find("/s"), std::string::npos) << s;
    p.advance(6);
    EXPECT_EQ(p.summary().find("ETA"), std::string::npos);  // done: no ETA
    p.finish();
}

TEST(Logging, UnknownLevelIsAUsageError) {
    EXPECT_NO_THROW(init_logging("warn"));
    EXPECT_THROW(init_logging("chatty"), Error);
}
