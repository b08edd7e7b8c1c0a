#include <fmt/format.h>

#include "cli.hpp"
#include "mess/db.hpp"

namespace mess::cli {

void register_config(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand("config", "Print the effective configuration and where each value came from");
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] {
        ctx.run = [&ctx, &json] {
            const Config& c = ctx.config;
            nlohmann::json j;
            auto put = [&](const char* key, const auto& setting, const char* env) {
                j[key] = {{"value", setting.value}, {"source", setting.source}};
                if (env) j[key]["env"] = env;
            };
            put("data_root", Setting<std::string>{c.data_root.value.string(), c.data_root.source}, "MESS_DATA_ROOT");
            put("device", c.device, "MESS_DEVICE");
            put("workers", c.workers, "MESS_WORKERS");
            put("batch_size", c.batch_size, "MESS_BATCH_SIZE");
            put("log_level", c.log_level, "MESS_LOG_LEVEL");
            const Setting<std::string> catalog = db::catalog_setting(ctx.flags, c);
            put("catalog", Setting<std::string>{db::redact_url(catalog.value), catalog.source}, "MESS_CATALOG");
            put("sample_rate", c.sample_rate, nullptr);
            put("window_seconds", c.window_seconds, nullptr);
            put("overlap", c.overlap, nullptr);
            if (json) {
                print_json(j);
                return 0;
            }
            for (auto& [key, v] : j.items()) {
                std::string value = v["value"].is_string() ? v["value"].get<std::string>() : v["value"].dump();
                fmt::print("{:<15} {:<12} ({})\n", key, value, v["source"].get<std::string>());
            }
            return 0;
        };
    });
}

}  // namespace mess::cli
