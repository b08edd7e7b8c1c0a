// Internal to the targets module: the chroma-based curves on their own input, for golden tests.
#pragma once

#include <vector>

namespace mess::targets_detail {

// T1 tonal tension and T5 novelty of `y`: 22,050 Hz audio already cut or zero-padded to 30 s; `tuning` is
// dsp::estimate_tuning(y, 22050, 36) (chroma_cqt's estimate). 60 values each.
std::vector<float> tis_tension_curve(const std::vector<float>& y, double tuning);
std::vector<float> novelty_curve(const std::vector<float>& y, double tuning);

}  // namespace mess::targets_detail
