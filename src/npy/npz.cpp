#include <memory>

#include <zip.h>

#include "mess/npy.hpp"

namespace mess {
namespace {

struct ZipCloser {
    void operator()(zip_t* z) const { zip_discard(z); }
};

}  // namespace

NpzMembers read_npz(const std::filesystem::path& path) {
    std::string bytes = read_file(path);
    const std::string name = path.string();
    if (bytes.empty()) throw_input("{}: empty file, not an .npz archive", name);
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t* src = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &zerr);
    if (!src) throw_internal("{}: {}", name, zip_error_strerror(&zerr));
    std::unique_ptr<zip_t, ZipCloser> z(zip_open_from_source(src, ZIP_RDONLY | ZIP_CHECKCONS, &zerr));
    if (!z) {
        zip_source_free(src);
        std::string why = zip_error_strerror(&zerr);
        zip_error_fini(&zerr);
        throw_input("{}: not a readable .npz (zip) archive: {}", name, why);
    }
    NpzMembers out;
    zip_int64_t n = zip_get_num_entries(z.get(), 0);
    for (zip_int64_t i = 0; i < n; ++i) {
        zip_stat_t st;
        if (zip_stat_index(z.get(), static_cast<zip_uint64_t>(i), 0, &st) != 0)
            throw_input("{}: cannot stat member {}: {}", name, i, zip_strerror(z.get()));
        std::string member = st.name;
        if (!member.empty() && member.back() == '/') continue;  // directory entry
        std::string label = name + ":" + member;
        if (st.size > (1ull << 40)) throw_input("{}: member too large", label);
        std::string data(static_cast<std::size_t>(st.size), '\0');
        zip_file_t* f = zip_fopen_index(z.get(), static_cast<zip_uint64_t>(i), 0);
        if (!f) throw_input("{}: cannot open member: {}", label, zip_strerror(z.get()));
        zip_int64_t got = zip_fread(f, data.data(), st.size);
        zip_fclose(f);
        if (got < 0 || static_cast<zip_uint64_t>(got) != st.size)
            throw_input("{}: corrupt member (read {} of {} bytes)", label, got, st.size);
        if (member.size() > 4 && member.ends_with(".npy")) member.resize(member.size() - 4);
        out.emplace(member, decode_npy(data, label));
    }
    return out;
}

void write_npz(const std::filesystem::path& path, const NpzMembers& members, bool compress) {
    // libzip writes the whole archive to its own temp file at zip_close; we build it in memory, then
    // hand the bytes to AtomicFile so the archive appears complete or not at all.
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t* buf = zip_source_buffer_create(nullptr, 0, 0, &zerr);
    if (!buf) throw_internal("{}: {}", path.string(), zip_error_strerror(&zerr));
    zip_source_keep(buf);
    zip_t* z = zip_open_from_source(buf, ZIP_TRUNCATE, &zerr);
    if (!z) {
        zip_source_free(buf);
        throw_internal("{}: cannot create archive: {}", path.string(), zip_error_strerror(&zerr));
    }
    std::vector<std::string> encoded;
    encoded.reserve(members.size());
    for (const auto& [member, array] : members) {
        encoded.push_back(encode_npy(array));
        zip_source_t* s = zip_source_buffer(z, encoded.back().data(), encoded.back().size(), 0);
        zip_int64_t idx = s ? zip_file_add(z, (member + ".npy").c_str(), s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (s) zip_source_free(s);
            std::string why = zip_strerror(z);
            zip_discard(z);
            zip_source_free(buf);
            throw_internal("{}: cannot add member '{}': {}", path.string(), member, why);
        }
        zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    if (zip_close(z) != 0) {
        std::string why = zip_strerror(z);
        zip_discard(z);
        zip_source_free(buf);
        throw_internal("{}: cannot finish archive: {}", path.string(), why);
    }
    zip_stat_t st;
    zip_source_stat(buf, &st);
    std::string bytes(static_cast<std::size_t>(st.size), '\0');
    if (zip_source_open(buf) != 0 || zip_source_read(buf, bytes.data(), st.size) != static_cast<zip_int64_t>(st.size)) {
        zip_source_free(buf);
        throw_internal("{}: cannot read back the archive", path.string());
    }
    zip_source_close(buf);
    zip_source_free(buf);
    write_file_atomic(path, bytes);
}

}  // namespace mess
