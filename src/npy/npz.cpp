#include "mess/npy.hpp"

namespace mess {

NpzMembers read_npz(const std::filesystem::path& path) {
    ZipReader zip(path);
    NpzMembers out;
    for (const auto& member : zip.names()) {
        if (!member.empty() && member.back() == '/') continue;  // directory entry
        std::string key = member.size() > 4 && member.ends_with(".npy") ? member.substr(0, member.size() - 4) : member;
        out.emplace(key, decode_npy(zip.read(member), path.string() + ":" + member));
    }
    return out;
}

void write_npz(const std::filesystem::path& path, const NpzMembers& members, bool compress) {
    std::vector<std::string> encoded;
    std::vector<ZipMember> entries;
    encoded.reserve(members.size());
    for (const auto& [name, array] : members) {
        encoded.push_back(encode_npy(array));
        entries.push_back({name + ".npy", encoded.back()});
    }
    write_zip(path, entries, compress);
}

}  // namespace mess
