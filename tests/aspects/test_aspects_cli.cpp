// End to end (4 works: training needs 2 to train and 2 to validate): `mess corpus render --factors` → extract (dsp) → `mess train aspects` → `mess eval aspects`.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "mess/util.hpp"
#include "support/midi_writer.hpp"
#include "support/support.hpp"

namespace fs = std::filesystem;

namespace mess {
namespace {

TEST(AspectsCli, FactorCorpusTrainEvaluate) {
    test::TempDir dir;
    fs::create_directories(dir / "midi");
    write_file_atomic(dir / "midi/ode.mid", test::melody_smf({{64, 2}, {64, 2}, {65, 2}, {67, 2}, {67, 2}, {65, 2}, {64, 2}, {62, 2}}, 48, 0));
    write_file_atomic(dir / "midi/minor.mid", test::melody_smf({{57, 3}, {60, 1}, {64, 4}, {63, 2}, {60, 2}, {59, 4}}, 45, 0));
    write_file_atomic(dir / "midi/waltz.mid", test::melody_smf({{60, 3}, {64, 1}, {67, 2}, {65, 2}, {64, 2}, {62, 4}, {60, 2}}, 41, 0));
    write_file_atomic(dir / "midi/march.mid", test::melody_smf({{67, 1}, {67, 1}, {72, 2}, {71, 1}, {69, 1}, {67, 4}, {74, 2}, {66, 2}}, 43, 0));
    const std::string mess = std::string(MESS_BINARY) + " --log-level warn --data-root " + test::quote((dir / "data").string());
    auto r = test::run_command(mess + " corpus render --json --factors --factor tempo --factor timbre --max-seconds 8 --sample-rate 16000 --midi " +
                               test::quote((dir / "midi").string()) + " --out " + test::quote((dir / "factors").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.out;
    const auto labels = nlohmann::json::parse(read_file(dir / "factors/labels.json"));
    ASSERT_FALSE(labels["items"].empty());
    for (const auto& it : labels["items"]) {
        EXPECT_TRUE(it.contains("factor")) << it.dump();
        EXPECT_TRUE(it.contains("value")) << it.dump();
    }
    const std::string ds = " --audio-dir " + test::quote((dir / "factors/audio").string()) + " --dataset-id factors";
    ASSERT_EQ(test::run_command(mess + " extract --model dsp" + ds + " 2>&1").exit_code, 0);
    const std::string lab = " --labels " + test::quote((dir / "factors/labels.json").string());
    auto t = test::run_command(mess + " train aspects --json --quiet --aspect tempo --aspect timbre --epochs 2 --triplets 200 --dim 8" + ds + lab +
                               " --out " + test::quote((dir / "models").string()) + " 2>&1");
    ASSERT_EQ(t.exit_code, 0) << t.out;
    EXPECT_TRUE(fs::exists(dir / "models/aspects.json"));
    auto e = test::run_command(mess + " eval aspects --json --triplets 300" + ds + lab + " --models " + test::quote((dir / "models").string()) +
                               " 2>/dev/null");
    ASSERT_EQ(e.exit_code, 0) << e.out;
    const auto rep = nlohmann::json::parse(e.out);
    EXPECT_NE(rep.dump().find("tempo"), std::string::npos) << rep.dump();
    EXPECT_NE(rep.dump().find("timbre"), std::string::npos) << rep.dump();
    // A labels file without factors, and a missing model directory, are refused with a message.
    EXPECT_NE(test::run_command(mess + " train aspects --quiet" + ds + " --labels " + test::quote((dir / "midi/ode.mid").string()) + " --out " +
                                test::quote((dir / "m2").string()) + " 2>&1").exit_code, 0);
    EXPECT_NE(test::run_command(mess + " eval aspects" + ds + lab + " --models " + test::quote((dir / "nothing").string()) + " 2>&1").exit_code, 0);
}

}  // namespace
}  // namespace mess
