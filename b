|
 
search
 
|
 
index
 
vectors
 
from
 
the
 
store
 
(`LayerSpec`),
 
FAISS
 
indexes
 
plus
 
MESS's
 
own
 
SIMD
 
exact
 
scan,
 
neighbour
 
lists,
 
aspect
 
fusion,
 
query
 
embedding,
 
and
 
the
 
one
 
search
 
service
 
|
 
`LayerSpec`,
 
`IndexRecord`,
 
`VectorIndex`,
 
`SearchIndex`,
 
`build_index`,
 
`exact_top_k`,
 
`compute_neighbour_lists`,
 
`Searcher`,
 
`SearchRequest`,
 
`SearchResult`,
 
`open_index_encoder`,
 
`embed_query_stack`,
 
`same_moment`
 
(a
 
track's
 
second
 
in
 
every
 
other
 
performance
 
of
 
its
 
work,
 
by
 
alignment)
 
|
 
catalog,
 
audio,
 
align,
 
features,
 
probe,
 
model,
 
npy
 
(FAISS,
 
OpenMP)
 
|
