// .npz bytes (a zip of .npy members, stored or deflated) → mess::read_npz through a scratch file.
#include "fuzz_common.hpp"
#include "mess/npy.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = mess_fuzz::write_scratch("fuzz.npz", mess_fuzz::as_text(data, size));
    mess_fuzz::guarded([&] {
        for (const auto& [name, a] : mess::read_npz(path))
            if (a.data.size() != a.count() * mess::dtype_size(a.dtype)) mess_fuzz::finding("read_npz", "data size != count × dtype size");
    });
    return 0;
}
