// The parts of the `mess` Python module, one per file, each adding its functions and classes to the module.
#pragma once

#include <pybind11/pybind11.h>

namespace mess::python {

void bind_encoder(pybind11::module_& m);  // encoder.cpp: open_encoder, Encoder, Embedding
void bind_index(pybind11::module_& m);    // index.cpp: load_index, Index, Hits, Hit
void bind_store(pybind11::module_& m);    // store.cpp: load_view, FeatureStore, Dataset, read_targets
void bind_align(pybind11::module_& m);    // align.cpp: align, compare, Alignment, Comparison

}  // namespace mess::python
