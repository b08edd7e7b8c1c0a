// model.safetensors bytes (8-byte header length, JSON header, data) → mess::read_safetensors.
#include "fuzz_common.hpp"
#include "mess/model.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = mess_fuzz::write_scratch("model.safetensors", mess_fuzz::as_text(data, size));
    mess_fuzz::guarded([&] {
        for (const auto& [name, t] : mess::read_safetensors(path))
            if (t.values.size() != t.count()) mess_fuzz::finding("read_safetensors", "values.size() != count()");
    });
    return 0;
}
