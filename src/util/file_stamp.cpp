// File stamps: size and modification time, to notice that a cached result's source changed.
#include <cerrno>
#include <cstring>

#include <sys/stat.h>

#include "mess/util.hpp"

namespace mess {

FileStamp file_stamp(const std::filesystem::path& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) throw_input("{}: no such file", path.string());
        throw_input("{}: cannot stat: {}", path.string(), std::strerror(errno));
    }
    FileStamp s;
    s.size_bytes = static_cast<std::uint64_t>(st.st_size);
    s.mtime_ns = static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(st.st_mtim.tv_nsec);
    return s;
}

std::string describe_change(const FileStamp& then, const FileStamp& now) {
    if (then.size_bytes != now.size_bytes) return fmt::format("size {} → {} bytes", then.size_bytes, now.size_bytes);
    if (then.mtime_ns == now.mtime_ns) return "unchanged";
    const std::int64_t delta = now.mtime_ns - then.mtime_ns;
    const std::int64_t magnitude = delta < 0 ? -delta : delta;
    const std::string amount = magnitude >= 1'000'000 ? fmt::format("{:.3f} s", static_cast<double>(magnitude) / 1e9)
                                                      : fmt::format("{} ns", magnitude);
    return fmt::format("modified {} {}", amount, delta > 0 ? "later" : "earlier");
}

}  // namespace mess
