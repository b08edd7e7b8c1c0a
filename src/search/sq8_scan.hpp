// Internal to the search module: MESS's own scan of an IVF-SQ8 index's lists (FAISS trains the quantiser,
// assigns the rows and stores the codes; the visited lists are scored here with a SIMD kernel).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace faiss {
struct Index;
struct IndexIVFScalarQuantizer;
struct IndexPreTransform;
}  // namespace faiss

namespace mess::detail {

enum class Sq8Isa { avx512, avx2, baseline };

Sq8Isa sq8_best_isa();                // the widest kernel this CPU runs (picked once, at run time)
const char* sq8_isa_name(Sq8Isa isa);  // "avx512f", "avx2", "baseline"
bool sq8_isa_supported(Sq8Isa isa);   // whether this CPU runs that kernel

// out[r] = Σ_j w[j] · codes[r·dim + j] for `n` rows of `dim` 8-bit codes, with the kernel of `isa` (which
// this CPU must run: sq8_isa_supported). Sums in float, 32 lanes; rows are independent.
void sq8_dots(Sq8Isa isa, const std::uint8_t* codes, std::size_t n, std::size_t dim, const float* w, float* out);

// out[r] = Σ_j w[j] · codes[r·dim + j] in exact integer arithmetic, for `n` rows of `dim` 8-bit codes and 8-bit
// signed weights (|w| ≤ 127, so a row's sum fits in 32 bits for dim < 66 000): AVX-512 VNNI (vpdpbusd, 64 codes
// an instruction, four rows at a time) where the CPU has it, else a portable loop with the same results.
void sq8_dots_int8(const std::uint8_t* codes, std::size_t n, std::size_t dim, const std::int8_t* w, std::int32_t* out);
bool sq8_int8_fast();  // whether sq8_dots_int8 runs the VNNI kernel on this CPU

// How a list's rows are scored. `exact`: the float dot above, FAISS's own scores. `int8`: the folded query
// rounded to 8-bit weights (w_d ≈ s·k_d, s = max_d |w_d| / 127, k_d an integer in [−127, 127]) and the dot
// taken by sq8_dots_int8; a row's code score then differs from the exact one by at most s/2 · Σ_d c_d, and
// the scan streams the codes about twice as fast. Meant for candidates that are re-ranked exactly afterwards.
enum class Sq8Scoring { exact, int8 };

// The index this scan handles, or nullptr: FAISS's IndexIVFScalarQuantizer with QT_8bit codes (a trained
// range per dimension: value = vmin_d + (c_d + 0.5) / 255 · vdiff_d) and inner product.
const faiss::IndexIVFScalarQuantizer* as_sq8(const faiss::Index& index);

// A projected IVF-SQ8 index ("PCA<d'>,IVF<nlist>,SQ8"), or nullptr: FAISS's IndexPreTransform whose chain is
// linear maps (a PCA matrix) in front of an index as_sq8 handles. Its lists hold codes of the projected rows
// (d' bytes a row): the query is projected once (sq8_projected_candidates) and the lists scanned as above.
const faiss::IndexPreTransform* as_projected_sq8(const faiss::Index& index);

// The `fetch` rows with the best code scores among the `nprobe` lists nearest the query (0: the index's own
// nprobe; more than nlist visits every list), best first (ties: lower row). A row's code score is the query's
// inner product with its decoded vector (centroid + decoded residual when the index encodes residuals), as
// FAISS's own search scores it: q·x = q·centroid + Σ_d q_d·vmin_d + Σ_d q_d·vdiff_d·0.5/255 + Σ_d (q_d·vdiff_d/255)·c_d,
// the last sum one uint8 × float dot per row (sq8_dots). Fewer rows when the lists hold fewer.
// When the lists to scan hold more than kSplitScanBytes of codes, half of them are scanned by a helper thread
// (one per process, started on first use, kept for later queries) while the calling thread scans the other
// half, and the two heaps are merged: the same candidates, in about half the wall time when a second core is
// free. When the helper is busy with another query the caller scans every list itself.
// `scoring` as above (int8: the rows and their order may differ from FAISS's where scores lie within the bound).
// Errors: Error(usage) when fetch is 0.
std::vector<std::pair<std::int64_t, float>> sq8_candidates(const faiss::IndexIVFScalarQuantizer& index, const float* query,
                                                           std::size_t fetch, std::size_t nprobe,
                                                           Sq8Scoring scoring = Sq8Scoring::exact);
inline constexpr std::size_t kSplitScanBytes = 2u << 20;  // about 0.5 ms of scanning on one core

// The same over a projected index (as_projected_sq8): the query mapped by the index's chain, then scanned.
std::vector<std::pair<std::int64_t, float>> sq8_projected_candidates(const faiss::IndexPreTransform& index, const float* query,
                                                                     std::size_t fetch, std::size_t nprobe,
                                                                     Sq8Scoring scoring = Sq8Scoring::exact);

std::size_t split_scan_count();  // mess::sq8_split_scans

}  // namespace mess::detail
