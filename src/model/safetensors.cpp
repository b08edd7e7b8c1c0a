#include <cstdint>
#include <type_traits>
#include <nlohmann/json.hpp>

#include "mess/model.hpp"
#include "tensor_convert.hpp"

namespace mess {

std::size_t Tensor::count() const {
    std::size_t n = 1;
    for (auto d : shape) n *= static_cast<std::size_t>(d);
    return n;
}

// A JSON array of whole numbers that fit T. A float (1e30, 0.5) or a negative offset is refused: converting
// it would be undefined behaviour (found by fuzzing).
template <class T>
std::vector<T> integers(const nlohmann::json& j, const char* field) {
    if (!j.is_array()) throw_input("{} is not an array", field);
    std::vector<T> out;
    for (const auto& v : j) {
        const bool fits = std::is_signed_v<T> ? (v.is_number_integer() && (v.is_number_unsigned() ? v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX) : true))
                                              : v.is_number_unsigned();
        if (!fits) throw_input("{} holds {}, not a whole number in range", field, v.dump());
        out.push_back(v.get<T>());
    }
    return out;
}

TensorMap read_safetensors(const std::filesystem::path& path) {
    const std::string name = path.string();
    std::string bytes = read_file(path);
    if (bytes.size() < 8) throw_input("{}: truncated safetensors file ({} bytes)", name, bytes.size());
    std::uint64_t hlen = 0;
    for (int i = 7; i >= 0; --i) hlen = hlen << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
    if (hlen > bytes.size() - 8 || hlen > (100u << 20))
        throw_input("{}: safetensors header length {} exceeds the file ({} bytes): truncated or not safetensors", name,
                    hlen, bytes.size());
    nlohmann::json header;
    try {
        header = nlohmann::json::parse(bytes.substr(8, hlen));
    } catch (const nlohmann::json::exception& e) {
        throw_input("{}: safetensors header is not valid JSON: {}", name, e.what());
    }
    if (!header.is_object()) throw_input("{}: safetensors header is not a JSON object", name);
    const std::size_t data_start = 8 + hlen;
    const std::size_t data_size = bytes.size() - data_start;
    const auto* data = reinterpret_cast<const unsigned char*>(bytes.data()) + data_start;
    TensorMap out;
    for (const auto& [key, entry] : header.items()) {
        if (key == "__metadata__") continue;
        with_context(name + ": tensor '" + key + "'", [&] {
            if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
                throw_input("entry lacks dtype, shape or data_offsets");
            Tensor t;
            try {
                t.stored_dtype = entry["dtype"].get<std::string>();
                t.shape = integers<std::int64_t>(entry["shape"], "shape");
                const auto off = integers<std::uint64_t>(entry["data_offsets"], "data_offsets");
                if (off.size() != 2 || off[0] > off[1] || off[1] > data_size)
                    throw_input("data_offsets out of the file's bounds (data section {} bytes): truncated file?", data_size);
                std::size_t esize = model_detail::stored_dtype_size(t.stored_dtype);
                if (esize == 0) throw_input("unsupported dtype '{}' (F32, F16, BF16, F64 load)", t.stored_dtype);
                for (auto d : t.shape)
                    if (d < 0) throw_input("negative dimension");
                if (t.count() * esize != off[1] - off[0])
                    throw_input("shape needs {} bytes of {} but data_offsets span {}", t.count() * esize, t.stored_dtype,
                                off[1] - off[0]);
                t.values.resize(t.count());
                model_detail::widen_to_float(t.stored_dtype, data + off[0], t.count(), t.values.data());
            } catch (const nlohmann::json::exception& e) {
                throw_input("malformed header entry: {}", e.what());
            }
            out.emplace(key, std::move(t));
        });
    }
    return out;
}

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors) {
    nlohmann::json header = nlohmann::json::object();
    header["__metadata__"] = {{"format", "pt"}};
    std::uint64_t offset = 0;
    for (const auto& [key, t] : tensors) {
        if (t.values.size() != t.count()) throw_internal("tensor '{}' holds {} values for its shape", key, t.values.size());
        std::uint64_t size = t.values.size() * 4;
        header[key] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + size}}};
        offset += size;
    }
    std::string h = header.dump();
    h.append((8 - h.size() % 8) % 8, ' ');  // keep the data 8-byte aligned, as the reference writer does
    std::string prefix(8, '\0');
    for (int i = 0; i < 8; ++i) prefix[static_cast<std::size_t>(i)] = static_cast<char>((h.size() >> (8 * i)) & 0xff);
    AtomicFile f(path);
    f.write(prefix.data(), 8);
    f.write(h.data(), h.size());
    for (const auto& [key, t] : tensors) f.write(t.values.data(), t.values.size() * 4);
    f.commit();
}

}  // namespace mess
