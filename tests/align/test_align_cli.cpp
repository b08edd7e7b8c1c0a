// End to end: `mess align` and `mess compare` on synthetic performances written as audio files.
#include <gtest/gtest.h>

#include <sndfile.h>

#include "mess/npy.hpp"
#include "mess/util.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;

namespace mess {
namespace {

constexpr int kRate = 22050;

// A C-major line with a bass every second; `stretch` scales every time, `transpose` shifts every pitch.
std::vector<float> performance(double seconds, double stretch, int transpose) {
    const int scale[7] = {0, 2, 4, 5, 7, 9, 11};
    std::vector<test::Note> notes;
    int k = 0;
    for (double t = 0; t < seconds; t += 0.5, ++k) {
        notes.push_back({static_cast<double>(60 + transpose + scale[(k * 5) % 7]), t * stretch, 0.45 * stretch, 0.6});
        if (k % 2 == 0) notes.push_back({static_cast<double>(40 + transpose + scale[(k * 3) % 7]), t * stretch, 0.9 * stretch, 0.5});
    }
    return test::render_notes(notes, seconds * stretch + 0.3, kRate);
}

class AlignCli : public ::testing::Test {
protected:
    void SetUp() override {
        a_ = (dir_ / "a.wav").string();
        b_ = (dir_ / "b.wav").string();
        test::write_sound(a_, performance(20, 1.0, 0), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
        test::write_sound(b_, performance(20, 1.25, 2), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    }
    test::CommandResult mess(const std::string& args) { return test::run_command(std::string(MESS_BINARY) + " --log-level warn " + args + " 2>&1"); }
    test::TempDir dir_;
    std::string a_, b_;
};

TEST_F(AlignCli, PathCsvNpyLookupAndSummary) {
    const auto csv = dir_ / "path.csv", npy = dir_ / "path.npy";
    const auto r = mess("align --json " + test::quote(a_) + " " + test::quote(b_) + " --out " + test::quote(csv.string()) + " --npy " +
                        test::quote(npy.string()) + " --at 8");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["transposition"], 2);
    EXPECT_NEAR(j["mean_tempo_ratio"].get<double>(), 0.8, 0.03);
    EXPECT_NEAR(j["at"][0]["time_b"].get<double>(), 10.0, 0.05);  // 8 s of A is 10 s of B
    for (const char* k : {"duration_a", "duration_b", "path_cost", "confidence", "elapsed_sec", "dtw_working_mb", "peak_rss_mb"})
        EXPECT_TRUE(j.contains(k)) << k;
    const auto lines = split(read_file(csv), '\n');
    ASSERT_EQ(lines.front(), "time_a,time_b");
    EXPECT_GE(lines.size(), static_cast<std::size_t>(10 * 20));  // ≥ 10 rows per second of A
    double last_a = -1, last_b = -1;
    for (std::size_t k = 1; k < lines.size(); ++k) {
        if (lines[k].empty()) continue;
        const auto cells = split(lines[k], ',');
        const double ta = std::stod(cells.at(0)), tb = std::stod(cells.at(1));
        EXPECT_GE(ta, last_a);
        EXPECT_GE(tb, last_b);
        last_a = ta, last_b = tb;
    }
    const NpyArray p = read_npy(npy);
    EXPECT_EQ(p.dtype, DType::f64);
    ASSERT_EQ(p.shape.size(), 2u);
    EXPECT_EQ(p.shape[1], 2);
    EXPECT_EQ(p.shape[0], static_cast<std::int64_t>(lines.size()) - 2);  // header and final newline
    // --at alone prints B's time.
    const auto at = mess("align " + test::quote(a_) + " " + test::quote(b_) + " --at 4");
    ASSERT_EQ(at.exit_code, 0) << at.out;
    EXPECT_NEAR(std::stod(at.out), 5.0, 0.05);
}

TEST_F(AlignCli, BadInputIsRefusedAndNothingIsWritten) {
    const auto out = dir_ / "never.csv";
    const std::string keep = " --out " + test::quote(out.string());
    const auto silent = (dir_ / "silent.wav").string(), tiny = (dir_ / "tiny.wav").string(), noise = (dir_ / "noise.wav").string();
    test::write_sound(silent, test::silence(5, kRate), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    test::write_sound(tiny, performance(0.5, 1.0, 0), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    write_file_atomic(noise, "not audio at all");
    auto r = mess("align " + test::quote(a_) + " " + test::quote(silent) + keep);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("silent"), std::string::npos) << r.out;
    r = mess("align " + test::quote(tiny) + " " + test::quote(b_) + keep);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("too short"), std::string::npos) << r.out;
    r = mess("align " + test::quote(noise) + " " + test::quote(b_) + keep);
    EXPECT_EQ(r.exit_code, 2) << r.out;
    EXPECT_NE(r.out.find("noise.wav"), std::string::npos) << r.out;
    r = mess("align " + test::quote(a_) + " " + test::quote(b_) + " --radius 0" + keep);
    EXPECT_EQ(r.exit_code, 1) << r.out;
    EXPECT_FALSE(fs::exists(out));
    EXPECT_EQ(mess("align " + test::quote(a_)).exit_code, 1);  // B missing: usage
}

TEST_F(AlignCli, CompareFilesWritesEveryOutput) {
    const auto c = (dir_ / "c.wav").string();
    test::write_sound(c, performance(20, 0.9, 0), 1, kRate, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    const auto out = dir_ / "cmp";
    const auto r = mess("compare --json " + test::quote(a_) + " " + test::quote(b_) + " " + test::quote(c) + " --start 4 --end 12 --ref-bpm 120 --out-dir " +
                        test::quote(out.string()));
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["reference"], "a");
    ASSERT_EQ(j["ranking"].size(), 3u);
    EXPECT_EQ(j["ranking"][0]["name"], "b");  // the slowest takes longest: 8 s × 1.25
    EXPECT_NEAR(j["ranking"][0]["passage_duration"].get<double>(), 10.0, 0.1);
    EXPECT_EQ(j["ranking"][2]["name"], "c");
    EXPECT_NEAR(j["performances"][1]["bpm"][20].get<double>(), 96.0, 3.0);  // 120 BPM × 0.8
    EXPECT_EQ(j["tempo_correlation"]["matrix"].size(), 2u);
    const NpyArray tempo = read_npy(out / "tempo_ratio.npy");
    EXPECT_EQ(tempo.shape, (std::vector<std::int64_t>{3, static_cast<std::int64_t>(j["times"].size())}));
    EXPECT_NE(read_file(out / "comparison.svg").find("<polyline"), std::string::npos);
    EXPECT_EQ(split(read_file(out / "curves.csv"), '\n').front().substr(0, 8), "time_ref");
    // A passage outside the reference, and a single performance.
    EXPECT_EQ(mess("compare " + test::quote(a_) + " " + test::quote(b_) + " --start 50 --end 60").exit_code, 2);
    EXPECT_EQ(mess("compare " + test::quote(a_)).exit_code, 1);
}

}  // namespace
}  // namespace mess
