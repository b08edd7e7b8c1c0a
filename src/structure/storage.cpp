// Structure files: the JSON form, written atomically.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "mess/structure.hpp"

namespace mess {

void write_structure_file(const std::filesystem::path& path, const Structure& s) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) throw_input("{}: cannot create the folder ({})", path.parent_path().string(), ec.message());
    write_file_atomic(path, structure_to_json(s).dump(1) + "\n");
}

Structure read_structure_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_input("{}: no structure file (run mess structure --dataset first)", path.string());
    std::stringstream text;
    text << in.rdbuf();
    try {
        return structure_from_json(nlohmann::json::parse(text.str()));
    } catch (const nlohmann::json::exception& e) {
        throw_input("{}: malformed structure file ({})", path.string(), e.what());
    } catch (const Error& e) {
        throw e.with_context(path.string());
    }
}

}  // namespace mess
