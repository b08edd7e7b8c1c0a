// mess/npy.hpp — NumPy .npy and .npz files, read and written exactly as numpy.load/numpy.save expect.
//
//   std::vector<float> h(2 * 13 * 768);
//   mess::write_npy("emb.npy", mess::NpyArray::from(h, {2, 13, 768}));   // atomic
//   mess::NpyArray a = mess::read_npy("emb.npy");                         // validated
//   std::span<const float> v = a.view<float>();                            // a.shape == {2, 13, 768}
//
//   mess::write_npz("t.npz", {{"rhythm/tempo", mess::NpyArray::from(tempo, {n})}}, /*compress=*/true);
//   auto members = mess::read_npz("t.npz");                                // name (no ".npy") → array
//
// Supported: format versions 1.0, 2.0 and 3.0 (read), 1.0 or 2.0 (written, 2.0 only when the header
// needs it); little-endian dtypes float16/32/64, int8/16/32/64, uint8/16/32/64, bool; C order.
// Fortran-order files (numpy writes them for transposed arrays) are read into C order; big-endian files
// are rejected with a message saying so. NPZ members may be stored
// or deflated. Every read checks magic, header syntax, dtype, shape and that the data size matches the
// file length exactly; a failure is Error(input) naming the file (and member).
// Thread safety: free functions are reentrant.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "mess/util.hpp"

namespace mess {

enum class DType { f16, f32, f64, i8, i16, i32, i64, u8, u16, u32, u64, boolean };

std::size_t dtype_size(DType t) noexcept;
std::string_view dtype_name(DType t) noexcept;   // "float32", "int64", ...
std::string_view dtype_descr(DType t) noexcept;  // numpy descr: "<f4", "<i8", "|b1", ...

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<std::int8_t>() { return DType::i8; }
template <> constexpr DType dtype_of<std::int16_t>() { return DType::i16; }
template <> constexpr DType dtype_of<std::int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<std::int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<std::uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<std::uint32_t>() { return DType::u32; }
template <> constexpr DType dtype_of<std::uint64_t>() { return DType::u64; }

// An n-dimensional array in C order with its bytes (little endian). float16 data is held as raw
// binary16; use to_float32() to widen.
struct NpyArray {
    DType dtype = DType::f32;
    std::vector<std::int64_t> shape;  // empty = scalar (one element)
    std::vector<std::byte> data;      // count() * dtype_size(dtype) bytes

    std::size_t count() const noexcept;

    // Typed view of the data. Errors: Error(input) when T does not match the dtype.
    template <class T> std::span<const T> view() const {
        check_dtype(dtype_of<T>());
        return {reinterpret_cast<const T*>(data.data()), count()};
    }
    template <class T> std::span<T> view_mut() {
        check_dtype(dtype_of<T>());
        return {reinterpret_cast<T*>(data.data()), count()};
    }
    // Values converted to float32 (from any float or integer dtype).
    std::vector<float> to_float32() const;
    // "float32 [2, 13, 768]"
    std::string describe() const;

    // Copies `values` into a new array of the given shape. Errors: Error(internal) on a size mismatch.
    template <class T>
    static NpyArray from(std::span<const T> values, std::vector<std::int64_t> shape) {
        return from_bytes(dtype_of<T>(), std::move(shape), values.data(), values.size_bytes());
    }
    template <class T>
    static NpyArray from(const std::vector<T>& values, std::vector<std::int64_t> shape) {
        return from(std::span<const T>(values), std::move(shape));
    }
    static NpyArray from_bytes(DType dtype, std::vector<std::int64_t> shape, const void* bytes, std::size_t size);
    // float32 values stored as float16 (round to nearest even).
    static NpyArray float16_from(std::span<const float> values, std::vector<std::int64_t> shape);

private:
    void check_dtype(DType wanted) const;
};

// The encoded .npy bytes of an array (header padded so the data starts at a multiple of 64).
std::string encode_npy(const NpyArray& array);
// Parses .npy bytes; `name` is used in error messages.
NpyArray decode_npy(std::string_view bytes, std::string_view name);

NpyArray read_npy(const std::filesystem::path& path);

// What an .npy file holds and where its data starts, read without reading the data.
struct NpyHeader {
    DType dtype = DType::f32;
    std::vector<std::int64_t> shape;  // as in the file (Fortran order is not undone: nothing is read)
    bool fortran_order = false;
    std::size_t data_offset = 0;      // bytes before the data: magic, version, header length, header
    std::size_t data_bytes = 0;       // count() × dtype_size(dtype)
    std::size_t count() const noexcept;
    std::string describe() const;     // "float32 [2, 13, 768]"
};
// Reads only the header (a few hundred bytes) and checks it as read_npy does, then checks that the file
// is exactly data_offset + data_bytes long: a cheap integrity check of a large array, which catches a
// truncated or overwritten file without reading gigabytes.
// Errors: Error(input) naming the file, with read_npy's messages (missing file, bad magic, malformed
// header, unsupported dtype, "truncated data: …", "… unexpected bytes after the data …").
NpyHeader read_npy_header(const std::filesystem::path& path);
// Writes atomically (temp file + fsync + rename), streaming the data (no encoded copy in memory).
// Errors: Error(input) when the file cannot be written.
void write_npy(const std::filesystem::path& path, const NpyArray& array);
// float32 values as a C-order array of `shape`, without building an NpyArray (for arrays of gigabytes).
// Errors: as above; Error(usage) when the values do not fill the shape.
void write_npy(const std::filesystem::path& path, std::span<const float> values, const std::vector<std::int64_t>& shape);

// Member name → array; member names are returned without the ".npy" suffix, as numpy.load shows them.
using NpzMembers = std::map<std::string, NpyArray>;
NpzMembers read_npz(const std::filesystem::path& path);
// Writes atomically; compress = deflate (numpy.savez_compressed) or store (numpy.savez).
void write_npz(const std::filesystem::path& path, const NpzMembers& members, bool compress);

}  // namespace mess

namespace mess {

// ---------------------------------------------------------------------------------------------
// Zip archives (the container of .npz files and of PyTorch checkpoints), through libzip.
// ---------------------------------------------------------------------------------------------

// Read access to a zip file; members are read on demand. Errors: Error(input) naming the archive
// (and member) for a missing, truncated or corrupt archive.
class ZipReader {
public:
    explicit ZipReader(const std::filesystem::path& path);
    ~ZipReader();
    ZipReader(const ZipReader&) = delete;
    ZipReader& operator=(const ZipReader&) = delete;
    const std::vector<std::string>& names() const { return names_; }
    bool contains(const std::string& member) const;
    std::string read(const std::string& member) const;

private:
    std::string label_;
    void* zip_ = nullptr;
    std::vector<std::string> names_;
};

struct ZipMember {
    std::string name;
    std::string_view bytes;
};
// Writes a zip archive atomically; members stored or deflated.
void write_zip(const std::filesystem::path& path, const std::vector<ZipMember>& members, bool compress);

}  // namespace mess
