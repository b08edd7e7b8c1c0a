// Internal: widening stored tensor bytes (little endian) to float32.
#pragma once

#include <cstring>
#include <string_view>

#include "mess/model.hpp"

namespace mess::model_detail {

// Bytes per element of a stored dtype ("F32", "F16", "BF16", "F64"), 0 when unsupported.
inline std::size_t stored_dtype_size(std::string_view dtype) {
    if (dtype == "F32") return 4;
    if (dtype == "F16" || dtype == "BF16") return 2;
    if (dtype == "F64") return 8;
    return 0;
}

// Converts `count` elements starting at `src` into `dst`.
inline void widen_to_float(std::string_view dtype, const unsigned char* src, std::size_t count, float* dst) {
    if (dtype == "F32") {
        if (count) std::memcpy(dst, src, count * 4);  // dst may be null for an empty tensor
    } else if (dtype == "F64") {
        for (std::size_t i = 0; i < count; ++i) {
            double d;
            std::memcpy(&d, src + 8 * i, 8);
            dst[i] = static_cast<float>(d);
        }
    } else {
        const bool bf = dtype == "BF16";
        for (std::size_t i = 0; i < count; ++i) {
            auto h = static_cast<std::uint16_t>(src[2 * i] | src[2 * i + 1] << 8);
            dst[i] = bf ? bf16_to_float(h) : half_to_float(h);
        }
    }
}

}  // namespace mess::model_detail
