#include <cstdio>
#include <deque>

#include "cli.hpp"

namespace mess::cli {

bool& add_json_flag(CLI::App* cmd) {
    static std::deque<bool> storage;  // stable addresses, one per registered command
    storage.push_back(false);
    cmd->add_flag("--json", storage.back(), "Print machine-readable JSON on stdout instead of text");
    return storage.back();
}

void print_json(const nlohmann::json& j) { std::puts(j.dump(2).c_str()); }

}  // namespace mess::cli
