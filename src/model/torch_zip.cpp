// pytorch_model.bin: the PyTorch zip format (torch.save since 1.6).
#include <cstdio>
#include <map>

#include "mess/model.hpp"
#include "mess/npy.hpp"
#include "tensor_convert.hpp"
#include "torch_pickle.hpp"

namespace mess {

namespace {

using model_detail::PickledTensor;

// Refuses a legacy (pre-1.6, non-zip) torch.save file with the way out.
void check_not_legacy(const std::filesystem::path& path, const std::string& name) {
    char head[2] = {};
    std::FILE* f = std::fopen(path.c_str(), "rb");
    std::size_t n = f ? std::fread(head, 1, 2, f) : 0;
    if (f) std::fclose(f);
    if (n == 2 && !(head[0] == 'P' && head[1] == 'K'))
        throw_input("{}: not a zip archive: legacy (pre-1.6) torch.save files are not supported; re-save it "
                    "with torch.save(..., _use_new_zipfile_serialization=True) or convert to safetensors", name);
}

// The folder of data.pkl in the archive ("archive/" or "pytorch_model/"), its byte order checked.
std::string checkpoint_prefix(const ZipReader& zip, const std::string& name) {
    std::string prefix;
    bool found = false;
    for (const auto& n : zip.names()) {
        if (n == "data.pkl" || n.ends_with("/data.pkl")) {
            prefix = n.substr(0, n.size() - 8);
            found = true;
            break;
        }
    }
    if (!found) throw_input("{}: no data.pkl in the archive (not a PyTorch checkpoint)", name);
    if (zip.contains(prefix + "byteorder")) {
        std::string order = zip.read(prefix + "byteorder");
        if (order != "little") throw_input("{}: byte order '{}' is not supported", name, order);
    }
    return prefix;
}

// The view (offset, shape, stride) of `t` must lie inside its storage: its highest element index included.
void check_view(const PickledTensor& t) {
    std::int64_t last = t.offset;
    for (std::size_t d = 0; d < t.shape.size(); ++d) {
        if (t.shape[d] < 0 || t.stride[d] < 0) throw_input("negative size or stride");
        if (t.shape[d] == 0) last = -1;
        if (last >= 0) last += (t.shape[d] - 1) * t.stride[d];
    }
    if (t.offset < 0 || last >= t.storage_numel)
        throw_input("view (offset {}, shape, stride) reaches past its storage of {} elements", t.offset, t.storage_numel);
}

// The view `t` of storage bytes `raw` widened to float32, gathered row by row along the last dimension
// (contiguous tensors take one copy per row).
Tensor gather_view(const PickledTensor& t, const std::string& raw) {
    const std::size_t esize = model_detail::stored_dtype_size(t.storage_dtype);
    if (t.storage_numel < 0 || raw.size() != static_cast<std::size_t>(t.storage_numel) * esize)
        throw_input("storage {} holds {} bytes, expected {} elements of {}", t.storage_key, raw.size(), t.storage_numel, t.storage_dtype);
    Tensor out_t;
    out_t.shape = t.shape;
    out_t.stored_dtype = t.storage_dtype;
    check_view(t);
    out_t.values.resize(out_t.count());
    const auto* base = reinterpret_cast<const unsigned char*>(raw.data());
    const std::size_t rank = t.shape.size();
    const std::int64_t inner = rank ? t.shape[rank - 1] : 1;
    const std::int64_t inner_stride = rank ? t.stride[rank - 1] : 1;
    std::vector<std::int64_t> idx(rank, 0);
    std::size_t written = 0;
    while (written < out_t.values.size()) {
        std::int64_t off = t.offset;
        for (std::size_t d = 0; d + 1 < rank; ++d) off += idx[d] * t.stride[d];
        if (inner_stride == 1)
            model_detail::widen_to_float(t.storage_dtype, base + static_cast<std::size_t>(off) * esize, static_cast<std::size_t>(inner),
                                         &out_t.values[written]);
        else
            for (std::int64_t k = 0; k < inner; ++k)
                model_detail::widen_to_float(t.storage_dtype, base + static_cast<std::size_t>(off + k * inner_stride) * esize, 1,
                                             &out_t.values[written + static_cast<std::size_t>(k)]);
        written += static_cast<std::size_t>(inner);
        for (std::size_t d = rank - 1; d-- > 0;) {
            if (++idx[d] < t.shape[d]) break;
            idx[d] = 0;
        }
    }
    return out_t;
}

}  // namespace

TensorMap read_torch_bin(const std::filesystem::path& path) {
    const std::string name = path.string();
    check_not_legacy(path, name);
    ZipReader zip(path);
    const std::string prefix = checkpoint_prefix(zip, name);
    auto tensors = model_detail::parse_state_dict_pickle(zip.read(prefix + "data.pkl"), name + ":data.pkl");

    std::map<std::string, std::string> storages;  // key → bytes, read once even when shared
    TensorMap out;
    for (const auto& t : tensors) {
        with_context(name + ": tensor '" + t.name + "'", [&] {
            auto it = storages.find(t.storage_key);
            if (it == storages.end()) it = storages.emplace(t.storage_key, zip.read(prefix + "data/" + t.storage_key)).first;
            if (!out.emplace(t.name, gather_view(t, it->second)).second) throw_input("duplicate key");
        });
    }
    return out;
}

void write_torch_bin(const std::filesystem::path& path, const TensorMap& tensors) {
    std::vector<std::string> names;
    std::vector<std::vector<std::int64_t>> shapes;
    for (const auto& [key, t] : tensors) {
        names.push_back(key);
        shapes.push_back(t.shape);
    }
    const std::string pickle = model_detail::write_state_dict_pickle(names, shapes);
    const std::string prefix = "pytorch_model/";
    std::vector<std::string> member_names = {prefix + "data.pkl"};
    std::vector<ZipMember> members = {{member_names[0], pickle}};
    std::size_t i = 0;
    for (const auto& [key, t] : tensors) {
        std::string_view bytes(reinterpret_cast<const char*>(t.values.data()), t.values.size() * sizeof(float));
        members.push_back({prefix + "data/" + std::to_string(i++), bytes});
    }
    members.push_back({prefix + "version", "3\n"});
    write_zip(path, members, /*compress=*/false);
}

}  // namespace mess
