// The `mess` Python module's entry point (the extension mess._mess; mess/__init__.py re-exports it).
#include "bindings.hpp"
#include "convert.hpp"

PYBIND11_MODULE(_mess, m) {
    m.doc() =
        "MESS, music similarity search: encoders, the feature store, index search and alignment (C++ core).\n\n"
        "Thread safety: every function is reentrant and releases the GIL while it works; Encoder and Index may be used "
        "from several threads at once; results (Embedding, Hits, Alignment, ...) are immutable.";
    m.attr("__version__") = MESS_VERSION_STRING;
    mess::python::register_errors(m);
    mess::python::bind_encoder(m);
    mess::python::bind_index(m);
    mess::python::bind_store(m);
    mess::python::bind_align(m);
}
