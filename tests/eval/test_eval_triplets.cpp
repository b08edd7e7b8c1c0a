// mess eval triplets: human judgements (anchor,a,b,choice[,aspect], extra columns ignored) against the
// index's own vectors and each learned aspect space; golden agreements computed by hand below.
#include <gtest/gtest.h>

#include "mess/eval.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

using namespace mess;

namespace {

// Tracks x, y, z. Index vectors: x (1,0), y (0.8,0.6), z (0,1). Tempo space: x (1,0), y (0,1), z (1,0).
SearchIndex judged_index() {
    std::vector<IndexRecord> recs(3);
    const char* names[] = {"x", "y", "z"};
    for (std::size_t i = 0; i < 3; ++i) recs[i].id = recs[i].track_id = names[i];
    SearchIndex idx = build_index_from_vectors(IndexKind::track, recs, {1, 0, 0.8f, 0.6f, 0, 1}, 2, "Flat");
    AspectModel m = identity_model("tempo", 2);
    idx.aspect_spaces.models = {"dsp", {0}, 2, {{"tempo", m}}, nullptr};
    idx.aspect_spaces.stack_layers = 1;
    idx.aspect_spaces.vectors["tempo"] = {1, 0, 0, 1, 1, 0};
    return idx;
}

}  // namespace

TEST(EvalTriplets, AgreementPerGeometryAndAspect) {
    test::TempDir tmp;
    const auto csv = tmp.path() / "judgements.csv";
    write_file_atomic(csv,
                      "anchor,a,b,choice,aspect,listener,ms\n"
                      "x,y,z,a,,L1,1200\n"        // index: .8 > 0 agrees; tempo: 0 < 1 disagrees
                      "x,y,z,b,tempo,L1,900\n"    // index disagrees; tempo agrees
                      "x,y,nobody,a,tempo,L2,800\n"  // skipped: unknown id
                      "z@3,x,y,y,tempo,L2,700\n"  // choice by id; index: 0 < .6 agrees; tempo: 1 > 0 disagrees
                      "x,y,z,c,,L2,500\n");       // skipped: bad choice
    const auto judgements = read_triplet_judgements(csv);
    ASSERT_EQ(judgements.size(), 5u);
    EXPECT_EQ(judgements[3].anchor, "z@3");
    const TripletEvalReport rep = evaluate_triplet_judgements(judged_index(), judgements);
    EXPECT_EQ(rep.judgements, 3);
    ASSERT_EQ(rep.skipped.size(), 2u);
    EXPECT_NE(rep.skipped[0].find("line 4"), std::string::npos) << rep.skipped[0];
    std::map<std::pair<std::string, std::string>, double> got;
    for (const auto& r : rep.rows) got[{r.geometry, r.aspect}] = r.agreement();
    EXPECT_NEAR((got[{"index", ""}]), 2.0 / 3, 1e-12);
    EXPECT_NEAR((got[{"index", "tempo"}]), 0.5, 1e-12);
    EXPECT_NEAR((got[{"aspect:tempo", ""}]), 1.0 / 3, 1e-12);
    EXPECT_NEAR((got[{"aspect:tempo", "tempo"}]), 0.5, 1e-12);
    EXPECT_EQ(rep.to_json()["agreement"].size(), 4u);
    // A file without the choice column is refused by name.
    write_file_atomic(csv, "anchor,a,b\nx,y,z\n");
    EXPECT_THROW(read_triplet_judgements(csv), Error);
}
