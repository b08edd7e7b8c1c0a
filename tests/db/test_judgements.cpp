// Judgements in the catalog: round trip, CSV export, invalid judgements refused.
#include <gtest/gtest.h>

#include "catalog_backends.hpp"

namespace mess::db {
namespace {

class Judgements : public CatalogSuite {};

TEST_P(Judgements, RoundTripAndCsv) {
    auto db = open_fresh();
    const std::int64_t first = db->add_judgement({.anchor = "t1@10", .a = "t2@0", .b = "t3@5", .choice = "a",
                                                  .listener = "L1", .response_ms = 5120.5, .sampler = "disagree"});
    db->add_judgement({.anchor = "t1@10", .a = "t4,x", .b = "t\"5", .choice = "b", .aspect = "dynamics", .listener = "L2"});
    const auto all = db->judgements();
    ASSERT_EQ(all.size(), 2u);
    EXPECT_EQ(all[0].id, first);
    EXPECT_EQ(all[0].anchor, "t1@10");
    EXPECT_DOUBLE_EQ(all[0].response_ms, 5120.5);
    EXPECT_EQ(all[0].sampler, "disagree");
    EXPECT_FALSE(all[0].created_at.empty());
    EXPECT_EQ(db->judgements({.aspect = "dynamics"}).size(), 1u);
    EXPECT_EQ(db->judgements({.aspect = "overall"}).size(), 1u);
    EXPECT_EQ(db->judgements({.listener = "L2"}).at(0).choice, "b");
    EXPECT_EQ(db->judgements_csv(),
              "anchor,a,b,choice,aspect\nt1@10,t2@0,t3@5,a,\nt1@10,\"t4,x\",\"t\"\"5\",b,dynamics\n");
    EXPECT_EQ(db->judgements_csv({.aspect = "overall"}, false), "anchor,a,b,choice\nt1@10,t2@0,t3@5,a\n");
}

TEST_P(Judgements, InvalidJudgementsAreRefused) {
    auto db = open_fresh();
    EXPECT_THROW(db->add_judgement({.anchor = "", .a = "x", .b = "y", .choice = "a"}), Error);
    EXPECT_THROW(db->add_judgement({.anchor = "z", .a = "x", .b = "x", .choice = "a"}), Error);
    EXPECT_THROW(db->add_judgement({.anchor = "z", .a = "x", .b = "y", .choice = "left"}), Error);
    EXPECT_THROW(db->add_judgement({.anchor = "z", .a = "x", .b = "y", .choice = "a", .response_ms = -1}), Error);
    EXPECT_TRUE(db->judgements().empty());
    EXPECT_EQ(db->judgements_csv(), "anchor,a,b,choice,aspect\n");
}

INSTANTIATE_CATALOG_SUITE(Judgements);

}  // namespace
}  // namespace mess::db
