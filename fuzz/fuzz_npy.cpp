// .npy bytes → mess::decode_npy (the parser behind read_npy), then the float32 widening callers use.
#include "fuzz_common.hpp"
#include "mess/npy.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    mess_fuzz::guarded([&] {
        const mess::NpyArray a = mess::decode_npy(mess_fuzz::as_text(data, size), "fuzz.npy");
        if (a.data.size() != a.count() * mess::dtype_size(a.dtype)) mess_fuzz::finding("decode_npy", "data size != count × dtype size");
        (void)a.describe();
        if (a.dtype != mess::DType::boolean) (void)a.to_float32();
    });
    return 0;
}
