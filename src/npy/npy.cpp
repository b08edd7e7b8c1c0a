#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "mess/npy.hpp"

namespace mess {
namespace {

struct DTypeInfo {
    DType type;
    std::size_t size;
    const char* name;
    const char* descr;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::f16, 2, "float16", "<f2"}, {DType::f32, 4, "float32", "<f4"}, {DType::f64, 8, "float64", "<f8"},
    {DType::i8, 1, "int8", "|i1"},     {DType::i16, 2, "int16", "<i2"},   {DType::i32, 4, "int32", "<i4"},
    {DType::i64, 8, "int64", "<i8"},   {DType::u8, 1, "uint8", "|u1"},    {DType::u16, 2, "uint16", "<u2"},
    {DType::u32, 4, "uint32", "<u4"},  {DType::u64, 8, "uint64", "<u8"},  {DType::boolean, 1, "bool", "|b1"},
};

const DTypeInfo& info(DType t) {
    for (const auto& d : kDTypes)
        if (d.type == t) return d;
    return kDTypes[1];
}

constexpr char kMagic[] = "\x93NUMPY";

// Parser for the Python dict literal of an .npy header:
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class HeaderParser {
public:
    HeaderParser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

    void parse(std::string& descr, bool& fortran, std::vector<std::int64_t>& shape) {
        bool have_descr = false, have_order = false, have_shape = false;
        expect('{');
        while (true) {
            skip_ws();
            if (peek() == '}') { ++i_; break; }
            std::string key = string_literal();
            expect(':');
            if (key == "descr") { descr = string_literal(); have_descr = true; }
            else if (key == "fortran_order") { fortran = boolean(); have_order = true; }
            else if (key == "shape") { shape = tuple(); have_shape = true; }
            else fail(fmt::format("unexpected header key '{}'", key));
            skip_ws();
            if (peek() == ',') { ++i_; continue; }
            expect('}');
            break;
        }
        if (!have_descr || !have_order || !have_shape) fail("header lacks descr, fortran_order or shape");
    }

private:
    [[noreturn]] void fail(const std::string& why) const {
        throw_input("{}: malformed .npy header: {}", name_, why);
    }
    void skip_ws() { while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t')) ++i_; }
    char peek() { skip_ws(); return i_ < s_.size() ? s_[i_] : '\0'; }
    void expect(char c) {
        if (peek() != c) fail(fmt::format("expected '{}' at offset {}", c, i_));
        ++i_;
    }
    std::string string_literal() {
        char q = peek();
        if (q != '\'' && q != '"') fail(fmt::format("expected a string at offset {}", i_));
        std::size_t end = s_.find(q, ++i_);
        if (end == std::string_view::npos) fail("unterminated string");
        std::string out(s_.substr(i_, end - i_));
        i_ = end + 1;
        return out;
    }
    bool boolean() {
        skip_ws();
        if (s_.substr(i_, 4) == "True") { i_ += 4; return true; }
        if (s_.substr(i_, 5) == "False") { i_ += 5; return false; }
        fail("expected True or False for fortran_order");
    }
    std::vector<std::int64_t> tuple() {
        std::vector<std::int64_t> dims;
        expect('(');
        while (true) {
            char c = peek();
            if (c == ')') { ++i_; break; }
            if (c < '0' || c > '9') fail(fmt::format("expected a dimension at offset {}", i_));
            std::int64_t v = 0;
            while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') {
                if (v > (std::numeric_limits<std::int64_t>::max() - 9) / 10) fail("dimension too large");
                v = v * 10 + (s_[i_++] - '0');
            }
            if (peek() == 'L') ++i_;  // Python 2 long suffix
            dims.push_back(v);
            if (peek() == ',') { ++i_; continue; }
            expect(')');
            break;
        }
        return dims;
    }

    std::string_view s_;
    std::string_view name_;
    std::size_t i_ = 0;
};

std::size_t checked_count(const std::vector<std::int64_t>& shape, std::size_t itemsize, std::string_view name) {
    std::size_t n = 1;
    for (auto d : shape) {
        if (d < 0) throw_input("{}: negative dimension {}", name, d);
        auto ud = static_cast<std::size_t>(d);
        if (ud != 0 && n > std::numeric_limits<std::size_t>::max() / itemsize / ud)
            throw_input("{}: shape is too large", name);
        n *= ud;
    }
    return n;
}

}  // namespace

std::size_t dtype_size(DType t) noexcept { return info(t).size; }
std::string_view dtype_name(DType t) noexcept { return info(t).name; }
std::string_view dtype_descr(DType t) noexcept { return info(t).descr; }

std::size_t NpyArray::count() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
}

void NpyArray::check_dtype(DType wanted) const {
    if (wanted != dtype) throw_input("array is {}, expected {}", dtype_name(dtype), dtype_name(wanted));
}

std::string NpyArray::describe() const {
    std::string s = fmt::format("{} [", dtype_name(dtype));
    for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
    return s + "]";
}

NpyArray NpyArray::from_bytes(DType dtype, std::vector<std::int64_t> shape, const void* bytes, std::size_t size) {
    NpyArray a;
    a.dtype = dtype;
    a.shape = std::move(shape);
    if (a.count() * dtype_size(dtype) != size)
        throw_internal("array of shape {} needs {} bytes, got {}", a.describe(), a.count() * dtype_size(dtype), size);
    a.data.resize(size);
    if (size) std::memcpy(a.data.data(), bytes, size);
    return a;
}

NpyArray NpyArray::float16_from(std::span<const float> values, std::vector<std::int64_t> shape) {
    std::vector<std::uint16_t> h(values.size());
    std::transform(values.begin(), values.end(), h.begin(), float_to_half);
    return from_bytes(DType::f16, std::move(shape), h.data(), h.size() * 2);
}

std::vector<float> NpyArray::to_float32() const {
    std::vector<float> out(count());
    auto convert = [&]<class T>(T*) {
        const T* p = reinterpret_cast<const T*>(data.data());
        for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(p[i]);
    };
    switch (dtype) {
        case DType::f16: {
            const auto* p = reinterpret_cast<const std::uint16_t*>(data.data());
            for (std::size_t i = 0; i < out.size(); ++i) out[i] = half_to_float(p[i]);
            break;
        }
        case DType::f32: convert(static_cast<float*>(nullptr)); break;
        case DType::f64: convert(static_cast<double*>(nullptr)); break;
        case DType::i8: convert(static_cast<std::int8_t*>(nullptr)); break;
        case DType::i16: convert(static_cast<std::int16_t*>(nullptr)); break;
        case DType::i32: convert(static_cast<std::int32_t*>(nullptr)); break;
        case DType::i64: convert(static_cast<std::int64_t*>(nullptr)); break;
        case DType::u8: case DType::boolean: convert(static_cast<std::uint8_t*>(nullptr)); break;
        case DType::u16: convert(static_cast<std::uint16_t*>(nullptr)); break;
        case DType::u32: convert(static_cast<std::uint32_t*>(nullptr)); break;
        case DType::u64: convert(static_cast<std::uint64_t*>(nullptr)); break;
    }
    return out;
}

namespace {

// The .npy header of a C-order array (magic, version, length, dict), padded so the data starts at a
// multiple of 64 bytes.
std::string npy_header(DType dtype, const std::vector<std::int64_t>& shape) {
    std::string dict = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': (", dtype_descr(dtype));
    for (auto d : shape) dict += fmt::format("{}, ", d);
    if (shape.size() > 1) dict.resize(dict.size() - 2);   // (2, 3) — but (2,) keeps its comma
    else if (shape.size() == 1) dict.pop_back();
    dict += "), }";
    // Version 1 has a 2-byte header length; fall back to version 2 (4 bytes) for huge headers.
    bool v2 = dict.size() + 1 + 10 > 65535;
    std::size_t prefix = v2 ? 12 : 10;
    std::size_t total = prefix + dict.size() + 1;
    std::size_t padded = (total + 63) / 64 * 64;
    dict.append(padded - total, ' ');
    dict += '\n';
    std::string out(kMagic, 6);
    out += static_cast<char>(v2 ? 2 : 1);
    out += '\0';
    auto hlen = static_cast<std::uint32_t>(dict.size());
    out += static_cast<char>(hlen & 0xff);
    out += static_cast<char>((hlen >> 8) & 0xff);
    if (v2) {
        out += static_cast<char>((hlen >> 16) & 0xff);
        out += static_cast<char>((hlen >> 24) & 0xff);
    }
    return out + dict;
}

void check_byte_count(const NpyArray& a) {
    if (a.data.size() != a.count() * dtype_size(a.dtype))
        throw_internal("array {} holds {} bytes, expected {}", a.describe(), a.data.size(), a.count() * dtype_size(a.dtype));
}

// Header then data straight into the atomic file: no second copy of the array in memory.
void write_npy_bytes(const std::filesystem::path& path, DType dtype, const std::vector<std::int64_t>& shape, const void* data,
                     std::size_t size) {
    const std::string header = npy_header(dtype, shape);
    AtomicFile out(path);
    out.write(header.data(), header.size());
    if (size) out.write(data, size);
    out.commit();
}

}  // namespace

std::string encode_npy(const NpyArray& a) {
    check_byte_count(a);
    std::string out = npy_header(a.dtype, a.shape);
    out.append(reinterpret_cast<const char*>(a.data.data()), a.data.size());
    return out;
}

namespace {

// The magic, the version and the header length at the start of an .npy file: the length of the fixed
// prefix (10 or 12 bytes) and of the header dict. `head` is the file's first bytes (at least 12 when
// the file has them), `total` the file's length.
std::pair<std::size_t, std::size_t> parse_prefix(std::string_view head, std::size_t total, std::string_view name) {
    if (head.size() < 10 || head.substr(0, 6) != std::string_view(kMagic, 6))
        throw_input("{}: not a .npy file (bad magic; {} bytes)", name, total);
    auto major = static_cast<unsigned char>(head[6]);
    if (major < 1 || major > 3) throw_input("{}: unsupported .npy format version {}", name, major);
    std::size_t prefix = major == 1 ? 10 : 12;
    if (head.size() < prefix) throw_input("{}: truncated .npy header", name);
    std::size_t hlen = static_cast<unsigned char>(head[8]) | static_cast<std::size_t>(static_cast<unsigned char>(head[9])) << 8;
    if (major > 1)
        hlen |= static_cast<std::size_t>(static_cast<unsigned char>(head[10])) << 16 |
                static_cast<std::size_t>(static_cast<unsigned char>(head[11])) << 24;
    if (total < prefix + hlen) throw_input("{}: truncated .npy header ({} of {} bytes)", name, total - prefix, hlen);
    return {prefix, hlen};
}

const DTypeInfo& dtype_of_descr(const std::string& descr, std::string_view name) {
    for (const auto& d : kDTypes) {
        std::string_view dd = d.descr;
        if (descr == dd || (dd[0] == '<' && descr == "=" + std::string(dd.substr(1))) ||
            (dd[0] == '|' && (descr == "<" + std::string(dd.substr(1)) || descr == "=" + std::string(dd.substr(1)))))
            return d;
    }
    if (!descr.empty() && descr[0] == '>') throw_input("{}: big-endian dtype '{}' is not supported", name, descr);
    throw_input("{}: unsupported dtype '{}'", name, descr);
}

// The header of .npy bytes whose first `prefix + hlen` bytes are in `head`; checks that `total` bytes
// hold exactly the data the header describes.
NpyHeader parse_header(std::string_view head, std::size_t total, std::string_view name) {
    const auto [prefix, hlen] = parse_prefix(head, total, name);
    std::string descr;
    NpyHeader h;
    HeaderParser(head.substr(prefix, hlen), name).parse(descr, h.fortran_order, h.shape);
    const DTypeInfo& found = dtype_of_descr(descr, name);
    h.dtype = found.type;
    h.data_offset = prefix + hlen;
    h.data_bytes = checked_count(h.shape, found.size, name) * found.size;
    const std::size_t have = total - h.data_offset;
    if (have < h.data_bytes) throw_input("{}: truncated data: {} bytes for {} (needs {})", name, have, h.describe(), h.data_bytes);
    if (have > h.data_bytes) throw_input("{}: {} unexpected bytes after the data of {}", name, have - h.data_bytes, h.describe());
    return h;
}

}  // namespace

std::size_t NpyHeader::count() const noexcept {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
}

std::string NpyHeader::describe() const {
    std::string s = fmt::format("{} [", dtype_name(dtype));
    for (std::size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
    return s + "]";
}

NpyHeader read_npy_header(const std::filesystem::path& path) {
    const std::string name = path.string();
    std::error_code ec;
    const auto total = std::filesystem::file_size(path, ec);
    if (ec) throw_input("{}: {}", name, ec == std::errc::no_such_file_or_directory ? "no such file" : ec.message());
    std::ifstream in(path, std::ios::binary);
    if (!in) throw_input("{}: cannot open for reading: {}", name, std::strerror(errno));
    auto read_up_to = [&](std::string& buf, std::size_t want) {
        const std::size_t had = buf.size();
        buf.resize(std::min<std::size_t>(want, total));
        if (buf.size() > had) in.read(buf.data() + had, static_cast<std::streamsize>(buf.size() - had));
        if (!in) throw_input("{}: read failed", name);
    };
    std::string head;
    read_up_to(head, 12);
    const auto [prefix, hlen] = parse_prefix(head, total, name);
    read_up_to(head, prefix + hlen);
    return parse_header(head, total, name);
}

NpyArray decode_npy(std::string_view bytes, std::string_view name) {
    NpyHeader h = parse_header(bytes, bytes.size(), name);
    NpyArray a;
    a.dtype = h.dtype;
    a.shape = std::move(h.shape);
    a.data.resize(h.data_bytes);
    const char* src = bytes.data() + h.data_offset;
    if (!h.fortran_order || a.shape.size() < 2) {
        if (h.data_bytes) std::memcpy(a.data.data(), src, h.data_bytes);
        return a;
    }
    // Fortran order (numpy writes it for transposed arrays): reorder into C order.
    const std::size_t rank = a.shape.size(), esize = dtype_size(a.dtype), n = a.count();
    std::vector<std::size_t> fstride(rank, 1);
    for (std::size_t d = 1; d < rank; ++d) fstride[d] = fstride[d - 1] * static_cast<std::size_t>(a.shape[d - 1]);
    std::vector<std::int64_t> idx(rank, 0);
    for (std::size_t i = 0; i < n; ++i) {
        std::size_t off = 0;
        for (std::size_t d = 0; d < rank; ++d) off += static_cast<std::size_t>(idx[d]) * fstride[d];
        std::memcpy(a.data.data() + i * esize, src + off * esize, esize);
        for (std::size_t d = rank; d-- > 0;) {
            if (++idx[d] < a.shape[d]) break;
            idx[d] = 0;
        }
    }
    return a;
}

NpyArray read_npy(const std::filesystem::path& path) {
    return decode_npy(read_file(path), path.string());
}

void write_npy(const std::filesystem::path& path, const NpyArray& array) {
    check_byte_count(array);
    write_npy_bytes(path, array.dtype, array.shape, array.data.data(), array.data.size());
}

void write_npy(const std::filesystem::path& path, std::span<const float> values, const std::vector<std::int64_t>& shape) {
    std::int64_t count = 1;
    for (auto d : shape) {
        if (d < 0) throw_usage("{}: negative dimension in shape", path.string());
        count *= d;
    }
    if (static_cast<std::size_t>(count) != values.size())
        throw_usage("{}: {} values do not fill a shape of {} elements", path.string(), values.size(), count);
    write_npy_bytes(path, DType::f32, shape, values.data(), values.size_bytes());
}

}  // namespace mess
