// A state dict's data.pkl → the restricted unpickler (parse_state_dict_pickle), in memory.
#include "fuzz_common.hpp"
#include "torch_pickle.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    mess_fuzz::guarded([&] {
        for (const auto& t : mess::model_detail::parse_state_dict_pickle(mess_fuzz::as_text(data, size), "data.pkl"))
            if (t.shape.size() != t.stride.size()) mess_fuzz::finding("parse_state_dict_pickle", "shape and stride ranks differ");
    });
    return 0;
}
