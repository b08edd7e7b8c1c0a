// Streaming gzip: deflate into an atomic file, inflate through a stream buffer the JSON parser reads.
#include "gzip_stream.hpp"

#include <array>
#include <fstream>
#include <istream>
#include <streambuf>

#include <zlib.h>

namespace mess::detail {
namespace fs = std::filesystem;

namespace {
constexpr std::size_t kChunk = 1 << 18;
}

struct GzipWriter::State {
    z_stream z{};
    std::vector<unsigned char> out = std::vector<unsigned char>(kChunk);
    bool finished = false;
};

GzipWriter::GzipWriter(fs::path path) : file_(std::move(path)), state_(new State) {
    if (deflateInit2(&state_->z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        delete state_;
        throw_internal("zlib init failed");
    }
}

GzipWriter::~GzipWriter() {
    deflateEnd(&state_->z);
    delete state_;
}

void GzipWriter::deflate_into_file(int flush) {
    z_stream& z = state_->z;
    int rc = Z_OK;
    do {
        z.next_out = state_->out.data();
        z.avail_out = static_cast<uInt>(state_->out.size());
        rc = deflate(&z, flush);
        if (rc == Z_STREAM_ERROR) throw_internal("{}: gzip compression failed", file_.path().string());
        file_.write(state_->out.data(), state_->out.size() - z.avail_out);
    } while (z.avail_out == 0 || (flush == Z_FINISH && rc != Z_STREAM_END));
}

void GzipWriter::write(std::string_view bytes) {
    while (!bytes.empty()) {
        const std::size_t take = std::min<std::size_t>(bytes.size(), kChunk);
        state_->z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
        state_->z.avail_in = static_cast<uInt>(take);
        deflate_into_file(Z_NO_FLUSH);
        bytes.remove_prefix(take);
    }
}

void GzipWriter::commit() {
    state_->z.avail_in = 0;
    deflate_into_file(Z_FINISH);
    file_.commit();
}

namespace {

// A read-only stream buffer over the inflated bytes of a gzip file, refilled kChunk bytes at a time.
class GunzipBuffer : public std::streambuf {
public:
    explicit GunzipBuffer(const fs::path& path) : path_(path), in_(path, std::ios::binary) {
        if (!in_) throw_input("{}: cannot open", path.string());
        if (inflateInit2(&z_, 15 + 16) != Z_OK) throw_internal("zlib init failed");
    }
    ~GunzipBuffer() override { inflateEnd(&z_); }
    bool finished() const { return ended_; }

protected:
    int_type underflow() override {
        while (gptr() == egptr()) {
            if (ended_) return traits_type::eof();
            inflate_some();
        }
        return traits_type::to_int_type(*gptr());
    }

private:
    void inflate_some() {
        if (z_.avail_in == 0) {
            in_.read(packed_.data(), static_cast<std::streamsize>(packed_.size()));
            z_.next_in = reinterpret_cast<Bytef*>(packed_.data());
            z_.avail_in = static_cast<uInt>(in_.gcount());
            if (z_.avail_in == 0) throw_input("{}: truncated gzip data", path_.string());
        }
        z_.next_out = reinterpret_cast<Bytef*>(plain_.data());
        z_.avail_out = static_cast<uInt>(plain_.size());
        const int rc = inflate(&z_, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) throw_input("{}: corrupt gzip data", path_.string());
        ended_ = rc == Z_STREAM_END;
        setg(plain_.data(), plain_.data(), plain_.data() + (plain_.size() - z_.avail_out));
    }

    fs::path path_;
    std::ifstream in_;
    z_stream z_{};
    std::vector<char> packed_ = std::vector<char>(kChunk), plain_ = std::vector<char>(kChunk);
    bool ended_ = false;
};

}  // namespace

std::size_t for_each_gzip_json_element(const fs::path& path, const std::function<void(nlohmann::json&)>& on_element) {
    GunzipBuffer buffer(path);
    std::istream in(&buffer);
    std::size_t count = 0;
    bool top_is_array = false;
    auto callback = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        using E = nlohmann::json::parse_event_t;
        if (depth == 0 && event == E::array_start) top_is_array = true;
        if (depth != 1 || !top_is_array) return true;
        if (event != E::object_end && event != E::array_end && event != E::value) return true;
        on_element(parsed);
        ++count;
        return false;  // handled: not kept in the array being parsed
    };
    try {
        const nlohmann::json rest = nlohmann::json::parse(in, callback);  // an empty array: every element was handled
        (void)rest;
    } catch (const nlohmann::json::parse_error& e) {
        throw_input("{}: not valid JSON: {}", path.string(), e.what());
    }
    if (!top_is_array) throw_input("{}: expected a JSON array", path.string());
    return count;
}

}  // namespace mess::detail
