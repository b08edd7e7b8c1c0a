#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mess/util.hpp"

namespace mess {
namespace fs = std::filesystem;

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
    fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
    std::string pattern = (dir / ("." + path_.filename().string() + ".tmp.XXXXXX")).string();
    fd_ = ::mkstemp(pattern.data());
    if (fd_ < 0) throw_input("{}: cannot create a temporary file in {}: {}", path_.string(), dir.string(), std::strerror(errno));
    temp_ = pattern;
    ::fchmod(fd_, 0644);
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, std::size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
        ssize_t n = ::write(fd_, p, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw_input("{}: write failed: {}", path_.string(), std::strerror(errno));
        }
        p += n;
        size -= static_cast<std::size_t>(n);
    }
}

void AtomicFile::commit() {
    if (committed_) return;
    if (::fsync(fd_) != 0) throw_input("{}: fsync failed: {}", path_.string(), std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
    if (::rename(temp_.c_str(), path_.c_str()) != 0)
        throw_input("{}: rename failed: {}", path_.string(), std::strerror(errno));
    committed_ = true;
    fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);  // make the rename durable; failure here loses nothing already visible
        ::close(dfd);
    }
}

std::string read_file(const fs::path& path) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw_input("{}: no such file", path.string());
    if (fs::is_directory(path, ec)) throw_input("{}: is a directory, expected a file", path.string());
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_input("{}: cannot open for reading: {}", path.string(), std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) throw_input("{}: read failed", path.string());
    return std::move(ss).str();
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
    AtomicFile f(path);
    f.write(bytes.data(), bytes.size());
    f.commit();
}

}  // namespace mess
