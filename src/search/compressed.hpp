// Internal to the search module: the compressed index's search (FAISS codes, then exact re-ranking).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mess/search.hpp"

namespace mess::detail {

// A FAISS index file read back; Error(input) naming the file when it is not one or not inner product.
std::unique_ptr<faiss::Index> read_faiss_index(const std::filesystem::path& path);

// Error(usage) when a PQ<m> part of `factory` does not divide `dim` (naming the counts that would).
void check_product_quantiser(const std::string& factory, std::size_t dim);

// The k best rows: FAISS's `rerank` best candidates (nprobe lists; 0 = the index's default) re-scored
// against the float16 rows, or with `exact` every row scanned.
std::vector<std::pair<std::int64_t, float>> compressed_search(const faiss::Index& index, const HalfRows& rows, const float* query,
                                                              std::size_t k, std::size_t rerank, int nprobe, bool exact);

}  // namespace mess::detail
