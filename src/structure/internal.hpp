// Internal to the structure module: the analysis stages analyze_structure runs in order.
#pragma once

#include "mess/structure.hpp"

namespace mess {

// The climax curve's novelty: [unit chroma, 0.5·timbre] smoothed over kClimaxNoveltySmoothSec, kernel
// climax_novelty_half_sec ([frames], 0..1).
inline constexpr double kClimaxNoveltySmoothSec = 4.0;
std::vector<float> climax_novelty(const StructureFeatures& f, const StructureParams& p);
std::vector<Section> label_sections(const StructureFeatures& f, const std::vector<double>& bounds, const StructureParams& p);
// Fills s.keys and s.modulations.
void estimate_keys(const StructureFeatures& f, const StructureParams& p, Structure& s);
// Needs s.novelty; empty for silence.
std::optional<Climax> find_climax(const StructureFeatures& f, const Structure& s, const StructureParams& p);
// Needs s.keys and s.boundaries.
std::vector<Cadence> find_cadences(const StructureFeatures& f, const Structure& s, const StructureParams& p);

}  // namespace mess
