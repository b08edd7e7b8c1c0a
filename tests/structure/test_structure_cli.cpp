// mess structure: the JSON of a file, a dataset's tracks stored beside their features, usage errors.
#include <gtest/gtest.h>

#include <sndfile.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "support/support.hpp"

namespace mess {
namespace {

constexpr int kRate = 22050;

std::string mess_cmd(const std::string& args) { return std::string(MESS_BINARY) + " " + args; }

TEST(StructureCli, FileJsonDatasetAndErrors) {
    test::TempDir dir;
    std::vector<test::Note> notes;
    for (double t = 0; t < 30; t += 0.5) notes.push_back({t < 15 ? 60.0 + static_cast<int>(t * 2) % 8 : 64.0 + static_cast<int>(t * 2) % 8, t, 0.45, 0.6});
    std::filesystem::create_directories(dir / "audio");
    test::write_sound(dir / "audio" / "piece.wav", test::render_notes(notes, 30, kRate), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);

    const auto r = test::run_command(mess_cmd("structure --json " + test::quote((dir / "audio" / "piece.wav").string())));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    for (const char* key : {"boundaries", "sections", "keys", "modulations", "climax", "cadences"}) EXPECT_TRUE(j.contains(key)) << key;
    EXPECT_EQ(j["boundaries"].front(), 0.0);
    EXPECT_EQ(j["sections"].front()["label"], "A");

    const auto d = test::run_command(mess_cmd("--data-root " + test::quote((dir / "root").string()) + " structure --audio-dir " +
                                              test::quote((dir / "audio").string()) + " --dataset-id tiny"));
    ASSERT_EQ(d.exit_code, 0) << d.out;
    std::ifstream stored(dir / "root" / "embeddings" / "tiny-emb" / "structure" / "piece.json");
    ASSERT_TRUE(stored.good());
    EXPECT_EQ(nlohmann::json::parse(stored)["boundaries"], j["boundaries"]);

    EXPECT_EQ(test::run_command(mess_cmd("structure 2>&1")).exit_code, 1);  // neither FILE nor a dataset
    EXPECT_EQ(test::run_command(mess_cmd("structure " + test::quote((dir / "missing.wav").string()) + " 2>&1")).exit_code, 2);
    EXPECT_EQ(test::run_command(mess_cmd("structure --min-section 0 " + test::quote((dir / "audio" / "piece.wav").string()) + " 2>&1")).exit_code, 1);
}

}  // namespace
}  // namespace mess
