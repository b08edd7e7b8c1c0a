#include <cmath>

#include <soxr.h>

#include "mess/audio.hpp"

namespace mess {

std::vector<float> resample(std::span<const float> samples, int from_rate, int to_rate) {
    if (from_rate <= 0 || to_rate <= 0) throw_usage("resample: rates must be positive (got {} → {} Hz)", from_rate, to_rate);
    if (from_rate == to_rate || samples.empty()) return {samples.begin(), samples.end()};
    const double ratio = static_cast<double>(to_rate) / from_rate;
    const auto out_len = static_cast<std::size_t>(std::llround(static_cast<double>(samples.size()) * ratio));
    std::vector<float> out(out_len + 16);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_HQ, 0);
    std::size_t done = 0;
    soxr_error_t err = soxr_oneshot(from_rate, to_rate, 1, samples.data(), samples.size(), nullptr, out.data(),
                                    out.size(), &done, &io, &q, nullptr);
    if (err) throw_internal("resample {} → {} Hz: {}", from_rate, to_rate, err);
    out.resize(out_len);  // soxr flushes its filter tail; keep exactly round(n · ratio) samples
    if (done < out_len) std::fill(out.begin() + static_cast<std::ptrdiff_t>(done), out.end(), 0.0f);
    return out;
}

}  // namespace mess
