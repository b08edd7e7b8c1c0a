"""MESS — music similarity search, from Python.

The C++ core (encoders, the feature store, index search, alignment) as a NumPy-friendly module::

    import mess
    enc = mess.open_encoder("dsp")                      # or "mfcc-chroma", or a MERT checkpoint directory
    e = enc.embed("take.flac")                          # e.segments [S, L, D], e.aggregated [L, D]
    index = mess.load_index("data/indices/track_index") # the newest version that loads
    for hit in index.similar_tracks("Bach_BWV849-01_001", k=5):
        print(hit.rank, hit.score, hit.track_id)
    al = mess.align("a.flac", "b.flac")                 # al.path [N, 2] seconds, al.summary

Arrays given to MESS must be float32 and C-contiguous (they are read in place, never cast: anything else
raises TypeError or ValueError); arrays MESS returns hold their own memory. Long calls release the GIL.
Errors: ValueError (bad parameters), FileNotFoundError (missing paths), mess.UnknownIdError (ids an index
or store does not hold) and mess.Error (bad input files, unusable audio), each with MESS's message.
"""

from ._mess import (
    Alignment,
    Comparison,
    Dataset,
    Embedding,
    Encoder,
    Error,
    FeatureIterator,
    FeatureStore,
    Hit,
    Hits,
    Index,
    UnknownIdError,
    __version__,
    align,
    compare,
    load_index,
    load_view,
    open_encoder,
    read_targets,
)

__all__ = [
    "Alignment",
    "Comparison",
    "Dataset",
    "Embedding",
    "Encoder",
    "Error",
    "FeatureIterator",
    "FeatureStore",
    "Hit",
    "Hits",
    "Index",
    "UnknownIdError",
    "__version__",
    "align",
    "compare",
    "load_index",
    "load_view",
    "open_encoder",
    "read_targets",
]
