// pytorch_model.bin bytes (zip: data.pkl + data/<storage>) → mess::read_torch_bin: zip layer, unpickler,
// storage views.
#include "fuzz_common.hpp"
#include "mess/model.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = mess_fuzz::write_scratch("pytorch_model.bin", mess_fuzz::as_text(data, size));
    mess_fuzz::guarded([&] {
        for (const auto& [name, t] : mess::read_torch_bin(path))
            if (t.values.size() != t.count()) mess_fuzz::finding("read_torch_bin", "values.size() != count()");
    });
    return 0;
}
