#include <map>
#include <string>

#include <gtest/gtest.h>

#include "mess/util.hpp"

using namespace mess;

namespace {
std::map<std::string, std::string> g_env;
const char* fake_getenv(const char* name) {
    auto it = g_env.find(name);
    return it == g_env.end() ? nullptr : it->second.c_str();
}
}  // namespace

class ConfigTest : public ::testing::Test {
protected:
    void SetUp() override { g_env.clear(); }
};

TEST_F(ConfigTest, DefaultsAndContractConstants) {
    Config c = resolve_config({}, fake_getenv);
    EXPECT_EQ(c.data_root.value, "data");
    EXPECT_EQ(c.data_root.source, "default");
    EXPECT_EQ(c.device.value, "cpu");
    EXPECT_EQ(c.batch_size.value, 4);
    EXPECT_GE(c.workers.value, 1);
    EXPECT_EQ(c.sample_rate.value, 24000);
    EXPECT_EQ(c.sample_rate.source, "contract");
    EXPECT_DOUBLE_EQ(c.window_seconds.value, 5.0);
    EXPECT_DOUBLE_EQ(c.overlap.value, 0.5);
}

TEST_F(ConfigTest, EnvironmentOverridesDefaultsAndFlagsOverrideEnvironment) {
    g_env = {{"MESS_DATA_ROOT", "/srv/mess"}, {"MESS_WORKERS", "3"}, {"MESS_DEVICE", "cuda"}, {"MESS_BATCH_SIZE", "8"}};
    Config c = resolve_config({{"workers", "5"}}, fake_getenv);
    EXPECT_EQ(c.data_root.value, "/srv/mess");
    EXPECT_EQ(c.data_root.source, "env MESS_DATA_ROOT");
    EXPECT_EQ(c.workers.value, 5);
    EXPECT_EQ(c.workers.source, "flag --workers");
    EXPECT_EQ(c.device.value, "cuda");
    EXPECT_EQ(c.batch_size.value, 8);
}

TEST_F(ConfigTest, TheDefaultBatchFollowsTheDevice) {
    g_env = {{"MESS_DEVICE", "cuda"}};
    const Config gpu = resolve_config({}, fake_getenv);
    EXPECT_EQ(gpu.batch_size.value, 32);
    EXPECT_EQ(gpu.batch_size.source, "default (device cuda)");
    EXPECT_EQ(resolve_config({{"batch_size", "2"}}, fake_getenv).batch_size.value, 2);  // a choice beats the default
    EXPECT_EQ(resolve_config({{"device", "cpu"}}, fake_getenv).batch_size.value, 4);
}

TEST_F(ConfigTest, EmptyEnvironmentValueIsIgnored) {
    g_env = {{"MESS_DEVICE", ""}};
    EXPECT_EQ(resolve_config({}, fake_getenv).device.source, "default");
}

TEST_F(ConfigTest, InvalidValuesAreUsageErrorsNamingTheirSource) {
    auto expect_usage = [](const ConfigFlags& flags, const std::string& needle) {
        try {
            resolve_config(flags, fake_getenv);
            FAIL() << "accepted " << needle;
        } catch (const Error& e) {
            EXPECT_EQ(e.kind(), ErrorKind::usage);
            EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
        }
    };
    expect_usage({{"workers", "0"}}, "--workers");
    expect_usage({{"workers", "2x"}}, "--workers");
    expect_usage({{"batch_size", "-1"}}, "--batch-size");
    expect_usage({{"device", "tpu"}}, "tpu");
    expect_usage({{"log_level", "loud"}}, "loud");
    g_env = {{"MESS_BATCH_SIZE", "many"}};
    expect_usage({}, "MESS_BATCH_SIZE");
}

TEST(Split, KeepsEmptyParts) {
    EXPECT_EQ(mess::split("a,b", ','), (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(mess::split("a,,b,", ','), (std::vector<std::string>{"a", "", "b", ""}));
    EXPECT_EQ(mess::split("", ','), (std::vector<std::string>{""}));
}

TEST(TextHelpers, LowerCaseAndHex) {
    EXPECT_EQ(mess::to_lower("Bach_BWV849.WAV é"), "bach_bwv849.wav é");  // ASCII only; other bytes unchanged
    EXPECT_EQ(mess::to_lower(""), "");
    EXPECT_EQ(mess::hex_encode(std::string("\x01\xab\xff\x00", 4)), "01abff00");
    EXPECT_EQ(mess::hex_encode(""), "");
}
