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
 
learned
 
aspect
 
spaces
 
(`AspectSpaces`:
 
every
 
row
 
mapped
 
by
 
the
 
index's
 
aspect
 
models),
 
query
 
embedding,
 
and
 
the
 
one
 
search
 
service;
 
passage
 
search
 
restricted
 
to
 
a
 
structural
 
role
 
(`SearchRequest::role`,
 
`src/search/role_search.cpp`:
 
the
 
query
 
window
 
at
 
the
 
role's
 
moment,
 
candidates
 
only
 
among
 
windows
 
holding
 
that
 
role,
 
modulations
 
ranked
 
by
 
interval
 
too)
 
|
 
`LayerSpec`,
 
`IndexRecord`,
 
`VectorIndex`,
 
`SearchIndex`
 
(`structures`,
 
`structure_of`),
 
`build_index`,
 
`exact_top_k`,
 
`compute_neighbour_lists`,
 
`Searcher`,
 
`SearchRequest`,
 
`SearchResult`,
 
`role_moments`,
 
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
 
alignment),
 
listening-test
 
triplets
 
(`Geometry`,
 
`parse_geometry`,
 
`SamplerParams`,
 
`sample_triplet`:
 
random
 
neighbours
 
or
 
the
 
pair
 
two
 
geometries
 
disagree
 
on)
 
|
 
catalog,
 
audio,
 
align,
 
structure,
 
features,
 
probe,
 
aspects,
 
model,
 
npy
 
(FAISS,
 
OpenMP)
 
|
