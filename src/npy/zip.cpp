#include <vector>

#include <zip.h>

#include "mess/npy.hpp"

namespace mess {

ZipReader::ZipReader(const std::filesystem::path& path) : label_(path.string()) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw_input("{}: no such file", label_);
    if (std::filesystem::file_size(path, ec) == 0) throw_input("{}: empty file, not a zip archive", label_);
    int err = 0;
    zip_t* z = zip_open(path.c_str(), ZIP_RDONLY | ZIP_CHECKCONS, &err);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, err);
        std::string why = zip_error_strerror(&ze);
        zip_error_fini(&ze);
        throw_input("{}: not a readable zip archive (truncated or corrupt?): {}", label_, why);
    }
    zip_ = z;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; i < n; ++i) names_.emplace_back(zip_get_name(z, static_cast<zip_uint64_t>(i), 0));
}

ZipReader::~ZipReader() {
    if (zip_) zip_discard(static_cast<zip_t*>(zip_));
}

bool ZipReader::contains(const std::string& member) const {
    return zip_name_locate(static_cast<zip_t*>(zip_), member.c_str(), 0) >= 0;
}

std::string ZipReader::read(const std::string& member) const {
    auto* z = static_cast<zip_t*>(zip_);
    const std::string label = label_ + ":" + member;
    zip_stat_t st;
    if (zip_stat(z, member.c_str(), 0, &st) != 0) throw_input("{}: no such member", label);
    if (st.size > (1ull << 40)) throw_input("{}: member too large", label);
    zip_file_t* f = zip_fopen(z, member.c_str(), 0);
    if (!f) throw_input("{}: cannot open member: {}", label, zip_strerror(z));
    // Grown as data arrives (never from the declared size alone: a tiny hostile archive may declare terabytes).
    std::string data;
    std::vector<char> chunk(1 << 20);
    zip_int64_t got = 0, n = 0;
    while (static_cast<zip_uint64_t>(got) < st.size && (n = zip_fread(f, chunk.data(), chunk.size())) > 0) {
        data.append(chunk.data(), static_cast<std::size_t>(n));
        got += n;
    }
    zip_fclose(f);
    if (n < 0 || static_cast<zip_uint64_t>(got) != st.size)
        throw_input("{}: corrupt or truncated member (read {} of {} bytes)", label, got, st.size);
    return data;
}

void write_zip(const std::filesystem::path& path, const std::vector<ZipMember>& members, bool compress) {
    // Built in memory, then published through AtomicFile: the archive appears complete or not at all.
    zip_error_t zerr;
    zip_error_init(&zerr);
    zip_source_t* buf = zip_source_buffer_create(nullptr, 0, 0, &zerr);
    if (!buf) throw_internal("{}: {}", path.string(), zip_error_strerror(&zerr));
    zip_source_keep(buf);
    zip_t* z = zip_open_from_source(buf, ZIP_TRUNCATE, &zerr);
    auto fail = [&](const std::string& why) {
        if (z) zip_discard(z);
        zip_source_free(buf);
        throw_internal("{}: cannot write zip archive: {}", path.string(), why);
    };
    if (!z) fail(zip_error_strerror(&zerr));
    for (const auto& m : members) {
        zip_source_t* s = zip_source_buffer(z, m.bytes.data(), m.bytes.size(), 0);
        zip_int64_t idx = s ? zip_file_add(z, m.name.c_str(), s, ZIP_FL_ENC_UTF_8) : -1;
        if (idx < 0) {
            if (s) zip_source_free(s);
            fail("member '" + m.name + "': " + zip_strerror(z));
        }
        zip_set_file_compression(z, static_cast<zip_uint64_t>(idx), compress ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
    }
    if (zip_close(z) != 0) fail(zip_strerror(z));
    z = nullptr;
    zip_stat_t st;
    zip_source_stat(buf, &st);
    std::string bytes(static_cast<std::size_t>(st.size), '\0');
    if (zip_source_open(buf) != 0 || zip_source_read(buf, bytes.data(), st.size) != static_cast<zip_int64_t>(st.size))
        fail("cannot read back the archive");
    zip_source_close(buf);
    zip_source_free(buf);
    write_file_atomic(path, bytes);
}

}  // namespace mess
