#include <cmath>

#include "mess/audio.hpp"

namespace mess {

std::vector<Window> plan_windows(std::int64_t num_samples, const WindowParams& p) {
    if (!(p.seconds > 0.0) || !std::isfinite(p.seconds)) throw_usage("window length must be positive (got {} s)", p.seconds);
    if (!(p.overlap >= 0.0 && p.overlap < 1.0)) throw_usage("window overlap must be in [0, 1) (got {})", p.overlap);
    if (p.sample_rate <= 0) throw_usage("sample rate must be positive (got {})", p.sample_rate);
    if (num_samples < 0) throw_usage("negative sample count {}", num_samples);

    const double rate = p.sample_rate;
    const auto win = static_cast<std::int64_t>(std::llround(p.seconds * rate));
    const auto hop = std::max<std::int64_t>(1, std::llround(p.seconds * (1.0 - p.overlap) * rate));
    auto make = [&](std::int64_t start, std::int64_t len) {
        return Window{start, len, static_cast<double>(start) / rate, static_cast<double>(start + len) / rate};
    };
    std::vector<Window> out;
    if (num_samples == 0) return out;
    if (num_samples <= win) {
        out.push_back(make(0, num_samples));
        return out;
    }
    std::int64_t start = 0;
    for (; start + win <= num_samples; start += hop) out.push_back(make(start, win));
    if (out.back().start_sample + win < num_samples) out.push_back(make(num_samples - win, win));
    return out;
}

}  // namespace mess
