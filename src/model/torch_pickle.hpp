// Internal: the restricted unpickler for PyTorch state dicts, and the matching pickle writer.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mess::model_detail {

// A tensor reference found in data.pkl: which storage file, its dtype, and the view into it.
struct PickledTensor {
    std::string name;           // state-dict key
    std::string storage_key;    // file data/<storage_key> in the archive
    std::string storage_dtype;  // "F32", "F16", "BF16", "F64"
    std::int64_t storage_numel = 0;
    std::int64_t offset = 0;    // elements
    std::vector<std::int64_t> shape, stride;
};

// Parses a pickled state dict (protocol ≤ 5 opcodes that a state dict uses). Anything else — an
// unknown opcode, a global outside the allow-list, a non-tensor value — is Error(input) naming it.
std::vector<PickledTensor> parse_state_dict_pickle(std::string_view pickle, const std::string& name);

// Protocol-2 pickle of an OrderedDict of float32 tensors, storage i holding tensor i, as torch.save
// writes it. `shapes` are in state-dict order.
std::string write_state_dict_pickle(const std::vector<std::string>& names,
                                    const std::vector<std::vector<std::int64_t>>& shapes);

}  // namespace mess::model_detail
