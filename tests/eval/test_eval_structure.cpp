// Structure evaluation metrics against mir_eval (golden values: tests/fixtures/structure/make_golden.py).
#include <gtest/gtest.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "mess/eval.hpp"
#include "support/support.hpp"

namespace mess {
namespace {

nlohmann::json golden() {
    std::ifstream in(std::string(MESS_FIXTURES_DIR) + "/structure/golden.json");
    return nlohmann::json::parse(in);
}

TEST(StructureEval, BoundaryDetectionMatchesMirEval) {
    const auto g = golden();
    ASSERT_GE(g["detection"].size(), 40u);
    for (const auto& c : g["detection"]) {
        const DetectionScore d = boundary_detection(c["reference"].get<std::vector<double>>(), c["estimated"].get<std::vector<double>>(),
                                                    c["window"].get<double>(), c["trim"].get<bool>());
        EXPECT_NEAR(d.precision, c["precision"].get<double>(), 1e-9) << c.dump();
        EXPECT_NEAR(d.recall, c["recall"].get<double>(), 1e-9) << c.dump();
        EXPECT_NEAR(d.f, c["f"].get<double>(), 1e-9) << c.dump();
    }
}

TEST(StructureEval, HandCases) {
    // One reference boundary matched by one of two estimates: P 1/2, R 1, F 2/3 (trimmed).
    const DetectionScore d = boundary_detection({0, 10, 30}, {0, 10.4, 20, 30}, 0.5, true);
    EXPECT_DOUBLE_EQ(d.precision, 0.5);
    EXPECT_DOUBLE_EQ(d.recall, 1.0);
    EXPECT_NEAR(d.f, 2.0 / 3.0, 1e-12);
    // Two estimates near one reference count once.
    EXPECT_DOUBLE_EQ(boundary_detection({0, 10, 30}, {0, 9.8, 10.2, 30}, 0.5, true).recall, 1.0);
    EXPECT_DOUBLE_EQ(boundary_detection({0, 10, 30}, {0, 9.8, 10.2, 30}, 0.5, true).precision, 0.5);
    // Nothing left after trimming: 0.
    EXPECT_DOUBLE_EQ(boundary_detection({0, 30}, {0, 30}, 3, true).f, 0.0);
    EXPECT_DOUBLE_EQ(boundary_detection({0, 30}, {0, 30}, 3, false).f, 1.0);
}

TEST(StructureEval, MirexKeyScoreMatchesMirEval) {
    const auto g = golden();
    ASSERT_EQ(g["keys"].size(), 576u);
    for (const auto& c : g["keys"])
        EXPECT_DOUBLE_EQ(mirex_key_score(parse_key(c["reference"].get<std::string>()), parse_key(c["estimated"].get<std::string>())),
                         c["score"].get<double>())
            << c.dump();
}

TEST(StructureEval, RefusesOtherLabels) {
    test::TempDir dir;
    write_file_atomic(dir / "labels.json", R"({"schema": "mess-corpus-labels/1", "items": []})");
    EXPECT_NE(test::error_message([&] { evaluate_structure(dir / "labels.json", {}); }).find("structure"), std::string::npos);
}

}  // namespace
}  // namespace mess
