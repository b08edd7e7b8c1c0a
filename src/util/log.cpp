#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "mess/util.hpp"

namespace mess {

void init_logging(std::string_view level) {
    auto lvl = spdlog::level::from_str(std::string(level));
    if (lvl == spdlog::level::off && level != "off")
        throw_usage("unknown log level '{}' (trace|debug|info|warn|error|off)", level);
    static auto logger = [] {
        auto l = spdlog::stderr_color_mt("mess");
        l->set_pattern("%^[%l]%$ %v");
        spdlog::set_default_logger(l);
        return l;
    }();
    logger->set_level(lvl);
}

}  // namespace mess
