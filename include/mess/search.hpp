// mess/search.hpp — track and passage (clip) indexes and the queries on them.
//
//   mess::BuildParams p;  p.kind = mess::IndexKind::clip;  p.layer = mess::LayerSpec::parse("6");
//   mess::SearchIndex idx = mess::build_index(dataset, p);          // views → L2-normalised vectors → FAISS
//   mess::Searcher searcher(std::make_shared<const mess::SearchIndex>(std::move(idx)), aspects);
//   mess::SearchRequest r;  r.track_id = "Bach_BWV849-01_001";  r.start_sec = 30;  r.options.k = 10;
//   r.aspects = mess::parse_aspect_request("dynamics=0.7,articulation=0.3");
//   mess::SearchResult res = searcher.search(r);     // res.hits: h.record->track_id, h.record->start_sec, h.score
//   nlohmann::json hits = mess::hits_to_json(res);   // the one JSON form of hits (CLI, HTTP, Python)
//
// The Searcher is the one search workflow: the CLI, the HTTP server, `mess eval` and the Python module call it
// (aspect weights, audio and vector queries, filters, exclusions, grouping). The free functions below it
// (similar_tracks, similar_passages, search_vector) are its building blocks.
//
// Vectors: one per track (track index) or per 5-s window (clip index), taken from the feature store's views
// by a LayerSpec and L2-normalised, so inner product = cosine similarity in [-1, 1]. The index family is a
// FAISS factory string over METRIC_INNER_PRODUCT: "Flat" (exact, default), "IVF<nlist>,Flat" (nprobe),
// "HNSW<M>" (efSearch), "IVF<nlist>,PQ<m>", "PQ<m>", ... Training is deterministic (FAISS's fixed seeds over
// the same vectors in the same order); HNSW graphs are built on one thread up to kDeterministicHnswRows rows
// so that rebuilds are identical (larger ones in parallel: same quality, not bit-identical). Exact search over the stored vectors runs through a SIMD scan
// (AVX-512 / AVX2 / baseline chosen at run time), not FAISS's unvectorised Debian build.
//
// Aspect search: an index built with per-layer vectors (`keep_layers`) also stores every row's layers, each
// L2-normalised, as float16 [N, L, D]. A query with layer weights w fuses Σ_l w_l·x̂_l for the query and for
// every row (the fusion layer discovery probes), L2-normalises and ranks exactly. An index built with learned
// aspect models (BuildParams::aspect_models; `mess index build` picks the shipped ones for dsp and mfcc-chroma)
// holds every row in each aspect's space (AspectSpaces): aspects with a learned space rank there, exactly,
// by Σ w_a·cos_a / Σ |w_a|, and every hit reports its cosine in each space (Hit::aspect_scores).
//
// Structural roles (SearchRequest::role; a clip index whose SearchIndex::structures holds its tracks'
// structure, as index artifacts do): the query passage is the window of the query track holding the role's
// moment (the climax; the strongest cadence; the first boundary or modulation; with start_sec, the moment
// nearest it; of the windows holding it, the one whose centre is nearest) unless a clip id names it, and only
// windows holding a moment of that role (window_roles) are candidates. Modulations are compared by the
// passage and by the interval: score = cosine − 0.1·d, d = the circular distance in semitones (0..6) between
// the query's and the candidate's intervals (a query by clip, audio or vector has no interval: cosine).
//
// Errors: Error(usage) for invalid parameters (unknown factory, k < 1, weights of the wrong size);
// Error(input) for unknown track/clip ids (the message names the id) and inconsistent feature files.
// Thread safety: a built or loaded SearchIndex is read-only; queries from many threads are safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <map>
#include <memory>

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include "mess/align.hpp"
#include "mess/aspects.hpp"
#include "mess/audio.hpp"
#include "mess/catalog.hpp"
#include "mess/probe.hpp"
#include "mess/structure.hpp"

namespace faiss {
struct Index;
}

namespace mess {

inline constexpr std::size_t kDeterministicHnswRows = 200000;
inline constexpr int kDefaultEfSearch = 64;  // HNSW indexes are built with this efSearch (FAISS's own is 16)

enum class IndexKind { track, clip };
const char* to_string(IndexKind kind);
IndexKind parse_index_kind(const std::string& text);  // "track" | "clip"; Errors: Error(usage)

// Which part of a [L, D] layer stack becomes the vector.
struct LayerSpec {
    // layer: one layer (`layer`); middle: layer L/2; model_default: the model's recommended layer (build_index
    // resolves it to Mode::layer from the sidecars); flatten: every layer; weights: fused layers.
    enum class Mode { layer, middle, model_default, flatten, weights } mode = Mode::middle;
    int layer = 0;                 // Mode::layer
    std::vector<double> weights;   // Mode::weights: Σ w_l·x̂_l over L2-normalised layers (size L)
    // "6" (one layer), "middle" (layer L/2), "default" (the model's recommended layer, recorded in the
    // feature sidecars: MERT L/2, dsp "overall"; resolved to a number by build_index), "flatten" ([L·D]),
    // or "weights:w0,w1,..." (fused).
    // Errors: Error(usage).
    static LayerSpec parse(const std::string& text);
    std::string to_string() const;
    std::size_t dimension(std::size_t layers, std::size_t dim) const;
    // The vector of one [L, D] stack (not yet normalised). Errors: Error(usage) if the spec does not fit.
    std::vector<float> apply(const float* stack, std::size_t layers, std::size_t dim) const;
};

// One row of an index.
struct IndexRecord {
    std::string id;                 // track id (track index) or clip id (clip index)
    std::string dataset_id, track_id, recording_id, work_id, split;
    int segment_idx = -1;           // clip index only
    double start_sec = 0, end_sec = 0;  // clip: the window's true bounds; track: 0 and the duration
    std::map<std::string, std::string> metadata;  // extra metadata columns (composer, title, ...)
    // A record field or metadata column by name ("dataset", "dataset_id", "split", "composer", ...), or empty.
    std::string field(const std::string& key) const;
};

// Approximate-index search parameters (0 = the index's default).
struct SearchParams {
    int nprobe = 0;      // IVF lists visited
    int ef_search = 0;   // HNSW candidate list (default kDefaultEfSearch, stored in the index)
    int rerank = 0;      // compressed indexes: candidates re-ranked exactly (default: the index's own)
};

// float16 rows [n, dim] of an .npy file (numpy.load opens it), memory-mapped read-only: the exact copy of
// the vectors behind a compressed index, read row by row for re-ranking, never whole.
class HalfRows {
public:
    // Maps `path` after checking its header says float16 [n, dim] and its length matches (a truncated or
    // extended file is refused). `remove_on_close`: the file is a scratch file, deleted with the mapping.
    // Errors: Error(input) naming the file.
    static std::shared_ptr<const HalfRows> open(const std::filesystem::path& path, std::size_t n, std::size_t dim,
                                                bool remove_on_close = false);
    ~HalfRows();
    HalfRows(const HalfRows&) = delete;
    HalfRows& operator=(const HalfRows&) = delete;
    std::size_t size() const { return n_; }
    std::size_t dimension() const { return dim_; }
    const std::filesystem::path& path() const { return path_; }
    const std::uint16_t* row(std::size_t r) const { return data_ + r * dim_; }
    void to_float(std::size_t first, std::size_t count, float* out) const;  // rows [first, first + count) widened
    float dot(std::size_t r, const float* query) const;                     // row · query (F16C when the CPU has it)
    // The same, the row read with pread instead of through the mapping (re-ranking: scattered rows). A page
    // fault through the mapping maps the cached pages around the row too (fault-around): 3 M re-ranking reads
    // left 12.5 GB of a 15-GB file counted as this process's resident set; a read leaves them in the page
    // cache only. Errors: Error(input) naming the file when the read fails.
    float read_dot(std::size_t r, const float* query) const;
    // read_dot of every row of `rows` into out[i]: the reads are first announced to the kernel
    // (POSIX_FADV_WILLNEED), so that the rows not in the page cache are fetched from storage together instead
    // of one round trip each, then read in file order. Errors: as read_dot.
    void read_dots(const std::vector<std::size_t>& rows, const float* query, float* out) const;
    // Drops rows [first, first + count) from this process's resident pages (they stay in the page cache):
    // a pass over every row (building, exact scans) does not leave the whole file counted as resident.
    void release(std::size_t first, std::size_t count) const;
    // Asks the kernel to read rows [first, first + count) ahead (MADV_WILLNEED): the file is mapped for random
    // reads (no read-ahead), which left an exact scan of a cold 15-GB file reading 40 MB/s.
    void prefetch(std::size_t first, std::size_t count) const;

private:
    HalfRows() = default;
    void advise(std::size_t first, std::size_t count, int advice) const;  // madvise over the rows' pages
    std::filesystem::path path_;
    void* map_ = nullptr;
    std::size_t map_bytes_ = 0, n_ = 0, dim_ = 0;
    const std::uint16_t* data_ = nullptr;
    std::size_t data_offset_ = 0;
    int fd_ = -1;  // kept open for read_dot
    bool remove_ = false;
};

// Streams rows into a float16 .npy file in bounded memory: each appended row is L2-normalised and written;
// finish() writes the final shape into the header (fixed size, written first as a placeholder) and maps it.
// Errors: Error(input) when the file cannot be written or a row holds non-finite values (naming its number).
class HalfRowsWriter {
public:
    HalfRowsWriter(std::filesystem::path path, std::size_t dim);
    ~HalfRowsWriter();  // an unfinished file is removed
    HalfRowsWriter(const HalfRowsWriter&) = delete;
    HalfRowsWriter& operator=(const HalfRowsWriter&) = delete;
    void append(const float* rows, std::size_t count);
    std::size_t size() const { return n_; }
    std::shared_ptr<const HalfRows> finish(bool remove_on_close = false);

private:
    std::filesystem::path path_;
    std::FILE* file_ = nullptr;
    std::size_t dim_ = 0, n_ = 0;
};

// Compressed passage indexes, for collections beyond RAM-sized float32 (docs/INDEXES.md): FAISS codes in
// memory ("IVF<nlist>,SQ8": 1 byte per dimension; "PCA<d'>,IVF<nlist>,SQ8": 1 byte per dimension of the
// top d' principal components, a linear projection learned on the training sample; "IVF<nlist>,PQ<m>": m
// bytes per vector) give `rerank` candidates, re-ranked exactly against the full float16 rows
// memory-mapped from disk. Scores are then exact
// cosines (of the float16 rows); the rows' order among equal scores is the lower row first.
struct CompressedParams {
    std::string factory;              // e.g. "IVF4096,SQ8" (compressed_factory)
    std::size_t rerank = 0;           // candidates re-ranked (0: kDefaultRerank)
    std::size_t train_rows = 0;       // quantiser training sample, strided over the rows (0: automatic)
    int nprobe = 0;                   // default IVF lists visited (0: kDefaultCompressedNprobe)
    std::function<void(std::size_t done, std::size_t total)> on_progress;  // rows added
};
inline constexpr std::size_t kDefaultRerank = 200;
inline constexpr int kDefaultCompressedNprobe = 32;
// "flat" (exact float32), "ivf-sq8", "pca-ivf-sq8" or "ivf-pq": the index type by name. "auto" → flat up
// to kAutoCompressRows rows, pca-ivf-sq8 above. Errors: Error(usage) for another name.
inline constexpr std::size_t kAutoCompressRows = 1000000;
std::string resolve_index_type(const std::string& type, std::size_t rows);
// The FAISS factory of an index type for `rows` × `dim` ("Flat", "IVF<nlist>,SQ8", "PCA<pca_dims>,IVF<nlist>,SQ8",
// "IVF<nlist>,PQ<dim/8>"); nlist ≈ 4·√rows (a power of two, 16 … 65536), or `nlist` when it is not 0 (`mess index
// build --nlist`: the 10 M-row latency figures of docs/INDEXES.md are for 2048 lists, not the automatic 8192).
// Errors: Error(usage) for an unknown type, or an nlist above 65536 or above the rows (each list needs rows).
std::string compressed_factory(const std::string& type, std::size_t rows, std::size_t dim, std::size_t nlist = 0);
// The principal components a pca-ivf-sq8 index keeps of `dim`: a third, a multiple of 16 (768 → 256); all of
// a vector shorter than 48 (docs/INDEXES.md: recall against d' and re-rank depth).
std::size_t pca_dims(std::size_t dim);

// A FAISS index over L2-normalised vectors with inner-product metric, plus the vectors themselves (float32
// in memory, or for a compressed index float16 rows mapped from a file).
class VectorIndex {
public:
    VectorIndex();
    ~VectorIndex();
    VectorIndex(VectorIndex&&) noexcept;
    VectorIndex& operator=(VectorIndex&&) noexcept;

    // Trains (if the family needs it) and adds `n` vectors of `dim` floats (normalised here).
    // Errors: Error(usage) for a factory FAISS rejects or too few vectors to train it.
    static VectorIndex build(std::vector<float> vectors, std::size_t n, std::size_t dim, const std::string& factory);
    // FAISS's own file format (faiss.read_index opens it); `vectors` are the normalised rows (empty for a
    // flat index, which holds them). Errors: Error(input) naming the file.
    static VectorIndex read(const std::filesystem::path& path, std::vector<float> vectors, const std::string& factory);
    // A compressed index over the rows of a float16 file (HalfRowsWriter): trains the quantiser on a strided
    // sample, then adds the rows in chunks of 64 Ki rows (memory: the codes, the sample and one chunk).
    // Errors: Error(usage) for a factory FAISS rejects, a flat one, or too few rows to train it.
    static VectorIndex build_compressed(std::shared_ptr<const HalfRows> rows, const CompressedParams& params);
    // A compressed index read back: its FAISS file and its float16 rows. Errors: Error(input) naming the file.
    static VectorIndex read_compressed(const std::filesystem::path& path, std::shared_ptr<const HalfRows> rows,
                                       const std::string& factory, std::size_t rerank);
    void write(const std::filesystem::path& path) const;

    // The k best rows for one L2-normalised query, best first (fewer when the index holds fewer);
    // `exact` scans the stored vectors whatever the family.
    std::vector<std::pair<std::int64_t, float>> search(const float* query, std::size_t k, const SearchParams& params = {},
                                                       bool exact = false) const;
    std::size_t size() const { return n_; }
    std::size_t dimension() const { return dim_; }
    const std::string& factory() const { return factory_; }
    bool is_exact() const;   // a flat family: search == exact scan
    const float* vector(std::size_t row) const { return vectors_.data() + row * dim_; }  // float32 indexes only
    std::vector<float> row_vector(std::size_t row) const;  // any index: a row's normalised vector
    bool is_compressed() const { return half_ != nullptr; }
    const std::shared_ptr<const HalfRows>& half_rows() const { return half_; }  // compressed: the float16 rows
    std::size_t rerank() const { return rerank_; }
    const std::vector<float>& vectors() const { return vectors_; }
    int default_nprobe() const;     // 0 when not IVF
    int default_ef_search() const;  // 0 when not HNSW

private:
    std::unique_ptr<faiss::Index> index_;
    std::unique_ptr<std::shared_mutex> ef_mutex_;  // guards HNSW efSearch overrides
    std::vector<float> vectors_;  // [n, dim], normalised (empty when compressed)
    std::shared_ptr<const HalfRows> half_;  // compressed: the rows re-ranked against
    std::size_t n_ = 0, dim_ = 0, rerank_ = 0;
    std::string factory_;
};

// Exact top-k by inner product over `n` rows of `dim` floats (SIMD, runtime-dispatched).
std::vector<std::pair<std::int64_t, float>> exact_top_k(const float* rows, std::size_t n, std::size_t dim,
                                                        const float* query, std::size_t k);
// Which instruction set exact_top_k uses on this CPU: "avx512f", "avx2" or "baseline".
const char* exact_scan_isa();
// Which instruction set an IVF-SQ8 index's list scan uses on this CPU (MESS's own kernel, not FAISS's):
// "avx512f", "avx2" or "baseline".
const char* sq8_scan_isa();
// How many IVF-SQ8 queries since the process started had their lists scanned on two threads (a query whose
// lists hold more than 2 MiB of codes, when the scan's helper thread was free; benchmarks report it).
std::size_t sq8_split_scans();


// Every row's `k` nearest rows (itself included), best first: the answers of an exact scan queried with
// each row's vector (normalised again, as every query is), precomputed so that a service answers "similar to this row" without scanning. Computed in
// blocks through BLAS (FAISS's knn_inner_product) with a margin of extra candidates, then rescored with
// exact_top_k's own arithmetic and tie rule (higher score, then lower row), so that a list equals the
// first k rows of exact_top_k for that row. Cost: n² · dim multiply-adds (10k × 768: about a second on 2
// cores); memory n · k · 12 bytes.
struct NeighbourLists {
    std::size_t n = 0, k = 0;
    std::vector<std::int64_t> rows;  // [n, k]
    std::vector<float> scores;       // [n, k]
};
// Errors: Error(usage) for k < 1. `on_progress(done, n)` is called between blocks of rows.
std::shared_ptr<const NeighbourLists> compute_neighbour_lists(const VectorIndex& index, std::size_t k,
                                                              const std::function<void(std::size_t, std::size_t)>& on_progress = {});

// Learned aspect spaces of an index (aspects.hpp): the aspect models it was built with, and every row mapped
// by each model from its raw [L, D] stack (a window's segments row; a track's aggregated row) and
// L2-normalised, so that a row's similarity in aspect a is a dot product of 'out_dim' floats.
struct AspectSpaces {
    AspectSet models;
    std::size_t stack_layers = 0;                        // L of the raw stacks the models read
    std::map<std::string, std::vector<float>> vectors;   // aspect → [N, out_dim]
    bool empty() const { return models.aspects.empty(); }
    bool has(const std::string& aspect) const { return vectors.contains(aspect); }
    const float* row(const std::string& aspect, std::size_t r) const;
    // Every model's normalised vector for one raw [stack_layers, layer_dim] stack (size checked).
    std::map<std::string, std::vector<float>> embed(const float* stack, std::size_t size) const;
};

struct FusionCache;
std::shared_ptr<FusionCache> make_fusion_cache();  // internal: SearchIndex's cache of fused aspect vectors

struct SearchIndex {
    IndexKind kind = IndexKind::track;
    std::string dataset, model_name;
    std::string precision = "fp32", device = "cpu";  // how the features were computed (feature sidecars)
    LayerSpec layer_spec;
    std::vector<IndexRecord> records;  // row → record
    VectorIndex index;
    // Per-layer normalised vectors as float16 [N, layers, layer_dim]; empty unless built with keep_layers.
    std::vector<std::uint16_t> layer_vectors;
    std::size_t layers = 0, layer_dim = 0;
    double window_sec = 5.0;           // clip windows (overlap test and de-duplication)
    // Optional precomputed neighbours (compute_neighbour_lists over `index`): queries by a row of this index
    // without layer weights, on an exact family (or with exact = true), read them while the candidates they
    // need fit in k; anything else scans.
    std::shared_ptr<const NeighbourLists> neighbours;
    AspectSpaces aspect_spaces;        // learned aspect spaces (empty: built without aspect models)
    // Track id → its structure (index artifacts' structure.json.gz); null or missing tracks: none known.
    std::shared_ptr<const std::map<std::string, Structure>> structures;
    const Structure* structure_of(const std::string& track_id) const;  // nullptr when not known

    std::size_t size() const { return records.size(); }
    // Row of an id. Errors: Error(input) "unknown track|clip id '...'".
    std::size_t row_of(const std::string& id) const;
    // Clip rows of a track, ordered by start (clip index). Errors: Error(input) for an unknown track.
    const std::vector<std::size_t>& rows_of_track(const std::string& track_id) const;
    // The clip row of a track whose start is nearest `start_sec` (the earlier on a tie). Errors: as rows_of_track.
    std::size_t nearest_row(const std::string& track_id, double start_sec) const;
    void rebuild_lookup();  // after filling records
    bool has_layers() const { return !layer_vectors.empty(); }

    // Fused, normalised [N, layer_dim] vectors for layer weights (a few recent ones are cached).
    std::shared_ptr<const std::vector<float>> fused_vectors(const std::vector<double>& layer_weights) const;

private:
    std::map<std::string, std::size_t> by_id_;
    std::map<std::string, std::vector<std::size_t>> by_track_;
    std::shared_ptr<struct FusionCache> fusion_cache_ = make_fusion_cache();
};

struct BuildParams {
    IndexKind kind = IndexKind::track;
    LayerSpec layer_spec = LayerSpec::parse("default");  // the model's recommended layer
    std::string factory = "Flat";
    // "flat" (use `factory`), "auto" (flat up to kAutoCompressRows rows, else pca-ivf-sq8), "ivf-sq8", "pca-ivf-sq8" or "ivf-pq":
    // a compressed index, built in bounded memory (rows streamed to a float16 file in `scratch_dir`, the
    // quantiser trained on a sample, codes added in chunks); it keeps no per-layer vectors.
    std::string index_type = "flat";
    std::size_t rerank = 0;             // compressed: candidates re-ranked exactly (0: kDefaultRerank)
    std::size_t nlist = 0;              // compressed: IVF lists (0: automatic, compressed_factory)
    std::filesystem::path scratch_dir;  // compressed: where the float16 rows are written (default: the temp dir)
    bool keep_layers = true;            // store per-layer vectors for aspect search
    // Only tracks it accepts are indexed (e.g. one shard of a split by track: `mess index build --shard i/N`);
    // the others are neither indexed nor reported as skipped. Empty: every track.
    std::function<bool(const std::string& track_id)> track_filter;
    std::string model_name;             // recorded (from the feature sidecars when empty)
    SplitParams splits{};
    // Aspect models to map every row into (SearchIndex::aspect_spaces): called once, with the features'
    // model label, when the first track is read; nullopt: none. Errors it throws stop the build.
    std::function<std::optional<AspectSet>(const std::string& model)> aspect_models;
    // Called per track read, with done/total.
    std::function<void(std::int64_t done, std::int64_t total)> on_progress;
};

// Builds from a dataset's feature store: track vectors from aggregated/<track>.npy (or the mean of
// segments), clip vectors from segments/<track>.npy with the sidecar's true window starts; metadata and
// splits from the catalog. Tracks without features are skipped (listed in `skipped`).
// Errors: Error(input) when no track has features or their shapes disagree.
SearchIndex build_index(const Dataset& dataset, const BuildParams& params, std::vector<std::string>* skipped = nullptr);
// Builds from vectors in memory ([n, dim] rows matching `records`).
SearchIndex build_index_from_vectors(IndexKind kind, std::vector<IndexRecord> records, std::vector<float> vectors,
                                     std::size_t dim, const std::string& factory, std::vector<std::uint16_t> layer_vectors = {},
                                     std::size_t layers = 0, std::size_t layer_dim = 0);

// ---------------------------------------------------------------------------------------------
// Queries
// ---------------------------------------------------------------------------------------------

struct Filter {
    std::string key, value;   // case-insensitive equality on IndexRecord::field(key)
    static Filter parse(const std::string& text);  // "key=value"; Errors: Error(usage)
};

// Which hits a query drops for sharing something with it.
enum class SameScope { none, track, recording, work };
SameScope parse_same_scope(const std::string& text);  // "" | "none" | "track" | "recording" | "work"; Errors: Error(usage)
const char* to_string(SameScope scope);               // "" for none

struct QueryOptions {
    std::size_t k = 10;
    std::vector<Filter> filters;
    SameScope exclude_same = SameScope::none;  // drop hits sharing the query's track, recording or work
    std::vector<double> layer_weights; // non-empty: aspect search through the stored per-layer vectors
    // Non-empty: rank by learned aspect spaces, score = Σ w_a·cos_a / Σ |w_a| (a negative weight: unlike).
    std::map<std::string, double> learned_aspects;
    // aspect → +1 (more) | −1 (less): keep only rows whose predicted amount of the aspect (AspectModel::predict
    // in its learned space) exceeds (falls short of) the query's; the ranking is unchanged.
    std::map<std::string, int> more_less;
    SearchParams search;
    bool exact = false;                // force an exact scan on approximate indexes
    std::shared_ptr<const std::vector<bool>> allowed_rows;  // non-null: only rows marked true can be hits
};

struct Hit {
    std::size_t row = 0;
    const IndexRecord* record = nullptr;  // points into the index: valid while the index lives
    float score = 0;                   // cosine similarity
    // Why it matched: the hit's cosine similarity to the query in each learned aspect space of the index
    // (empty when the index has none, or the query is a vector in the index's own space).
    std::map<std::string, float> aspect_scores;
};

// Tracks most similar to a track of a track index (the track itself excluded).
std::vector<Hit> similar_tracks(const SearchIndex& index, const std::string& track_id, const QueryOptions& options);

struct PassageQuery {
    std::string clip_id;               // or track_id + start_sec (the window whose start is nearest)
    std::string track_id;
    double start_sec = 0;
    bool group_by_track = false;       // best passage per track
    double dedupe_sec = -1;            // hits of one track closer than this are de-duplicated (default: window)
    QueryOptions options;
};
// Passages most similar to a window of a clip index. The query window and its overlapping neighbours in
// the same track are excluded; hits of one track closer than dedupe_sec keep only the best.
std::vector<Hit> similar_passages(const SearchIndex& index, const PassageQuery& query);

// Rows most similar to an outside vector (e.g. an embedded audio excerpt): `query` is the index's vector
// space (dimension()), or with layer_weights a [layers, layer_dim] stack. Passage de-duplication and
// grouping as above when `passages` is given.
std::vector<Hit> search_vector(const SearchIndex& index, std::vector<float> query, const QueryOptions& options,
                               const PassageQuery* passages = nullptr);

// A structural moment a role search matched: its time (seconds) and, for modulations, the interval.
struct RoleMoment {
    double time = 0;
    std::optional<int> interval;  // semitones −5..+6 (modulations)
};

// Fan-out over shards of an index split by track (`mess index build --shard i/N`): every shard answers the
// same vector query, and the k best of their hits by score (equal scores: track id, then segment, the row order
// of the whole index, whose build sorts tracks by id) are the answer of the whole index; a track, and with it
// grouping and de-duplication, lives in one shard.
struct ShardHit {
    std::size_t shard = 0;
    Hit hit;
};
std::vector<ShardHit> merge_shard_hits(const std::vector<std::vector<Hit>>& per_shard, std::size_t k);

// A query as the shard holding it sees it (Searcher::shard_query), so that every shard of an index split by
// track ranks its own rows against exactly the query the single index would use (`mess route` sends it to
// every shard: SearchRequest::shard_query). Scores, exclusions and filters then equal the single index's.
struct ShardQuery {
    IndexKind kind = IndexKind::track;
    // What the ranker reads: the row's (or an audio excerpt's) vector in the index's space, or for aspect
    // search by layer weights its [layers, layer_dim] stack; empty when learned aspect spaces rank.
    std::vector<float> input;
    std::map<std::string, std::vector<float>> aspects;  // the query in each learned aspect space (normalised)
    // The query's row (id, track, recording, work, dataset, start_sec): rows of its track overlapping it (a
    // track index: all of them) are excluded, exclude_same compares with it. Empty id: an outside query.
    IndexRecord record;
    std::optional<RoleMoment> moment;  // role searches by track: the query track's moment; record is its window
    nlohmann::json to_json() const;
    // Errors: Error(input) naming the field that is missing or malformed.
    static ShardQuery from_json(const nlohmann::json& j);
};
// The rows of `index` most similar to a shard query, as similar_tracks / similar_passages / search_vector
// rank them for the same query on the index holding it. Errors: Error(input) for a query of the other kind,
// or input / aspect vectors of the wrong size; as search_vector.
std::vector<Hit> search_shard_query(const SearchIndex& index, const ShardQuery& query, const QueryOptions& options,
                                    const PassageQuery* passages = nullptr);
// The shard query of a row of `index` (`input` ignored), or of an outside query (`row` empty; `input` as
// search_vector takes it), for `options` (layer weights and learned aspects decide what `input` holds).
ShardQuery shard_query_of(const SearchIndex& index, std::optional<std::size_t> row, std::vector<float> input, const QueryOptions& options);

// The encoder that embeds outside queries for `index`: its recorded model (or `model_override`), in the
// precision its features were computed in (built-in encoders: fp32), on the CPU.
// Errors: Error(usage) when the index records no model and none is given; as open_encoder.
std::shared_ptr<const class Encoder> open_index_encoder(const SearchIndex& index, const std::string& model_override = {});

// ---------------------------------------------------------------------------------------------
// The search service
// ---------------------------------------------------------------------------------------------

// Two-stage ranking of tracks from passages (clip index): candidate tracks from the passage hits of every
// query window, then each candidate scored from the matrix S [query windows × its windows] of cosine
// similarities (distance = 1 − S) by a reduction:
//   min       the closest pair: max S
//   mean-min  the mean over query windows of their closest window (mean of row minima of distances)
//   mean-min-sym  mean-min both ways, averaged: (mean of row maxima of S + mean of column maxima) / 2, so
//             every window of either track must find a partner (symmetric: A against B scores as B against A)
//   best-k    the mean of the k largest S
//   pairs     best pairs without replacement: greedily the largest S whose row and column are both unused,
//             min(rows, columns) pairs, their mean
enum class Reduction { min, mean_min, mean_min_sym, best_k, pairs };
// Tempo ratios a context path may follow (SearchRequest::context): 0.7 … 1.4, the range of the corpora's
// tempo variants.
inline constexpr double kContextTempoRatios[] = {0.7, 0.8, 0.9, 1.0, 1.1, 1.25, 1.4};
Reduction parse_reduction(const std::string& text);  // "min" | "mean-min" | "mean-min-sym" | "best-k" | "pairs"; Errors: Error(usage)
const char* to_string(Reduction reduction);
struct RerankParams {
    Reduction reduction = Reduction::mean_min;
    std::size_t candidates = 50;   // passage hits per query window that propose candidate tracks
    std::size_t best_k = 3;        // best-k
};
// The reduction of a [rows, cols] similarity matrix (row-major). Errors: Error(usage) for an empty matrix.
double reduce_similarities(const std::vector<float>& s, std::size_t rows, std::size_t cols, const RerankParams& params);

// One query. Exactly one source: track_id (a track of a track index; with start_sec, the window nearest it
// in a clip index), clip_id (a window of a clip index), audio (an outside recording; start_sec where the
// excerpt starts) or vector (a vector in the index's space).
struct SearchRequest {
    std::string track_id, clip_id;
    std::optional<double> start_sec;                  // seconds
    std::optional<AudioView> audio;                   // at Searcher::encoder()'s sampling rate; borrowed: its
                                                      // owner (an Audio, an array) must outlive search()
    std::vector<float> vector;
    // aspect → weight (parse_aspect_request); empty: the index's own vectors. When the index has learned
    // aspect spaces for every named aspect, they rank (QueryOptions::learned_aspects); otherwise the layers
    // probing resolved. `unlike` (aspect → weight > 0): similar in `aspects` but different in these
    // (learned spaces only; alone: least similar in them).
    std::map<std::string, double> aspects;
    std::map<std::string, double> unlike;
    std::map<std::string, int> more_less;             // aspect → +1 more | −1 less than the query (learned directions)
    // Tracks from passages (clip index, a track or audio query): RerankParams; hits are tracks, each hit's
    // record its best-matching window, its score the track score (aspects: in the learned spaces' weighted sum).
    std::optional<RerankParams> rerank;
    std::string text;                                 // "like this but slower and more restrained": parse_text_query,
                                                      // merged into more_less; unknown words are an Error(usage)
    std::vector<double> layer_weights;                // instead of aspects: explicit weights over the index's layers
    double min_r2 = 0.5;                              // aspects probed below this R² are not available
    bool scale_by_r2 = true;                          // weight each aspect by its R²
    QueryOptions options;                             // k, filters, exclusion, approximate-search parameters
    bool group_by_track = false;                      // passages: the best one per track
    double dedupe_sec = -1;                           // passages: hits of one track closer than this keep the best
                                                      // (default -1: one window; 0: every passage on its own)
    int threads = 1;                                  // embedding an audio query
    std::shared_ptr<const class Encoder> encoder;     // audio queries: this encoder (default: the searcher's own)
    std::optional<Role> role;                         // passages at a structural role (see the top of this header)
    // Passages with their context (clip index, a window of the index as the query: clip_id, or track_id with
    // start_sec): > 0 scores each candidate window j by its neighbours too, as a short alignment. For every
    // tempo ratio ρ in kContextTempoRatios, the mean over offsets o = −context..context (windows of both
    // tracks that exist) of cos(query window + o, j + round(o·ρ)); the best ratio is the score. Candidates:
    // the passage hits of every context window (so filters and exclusions hold); in the query's own track none
    // whose context shares audio with the query's. The query then covers 2·context + 1 windows (context 3 at
    // the 2.5-s hop: 20 s of audio). 0: the window alone.
    int context = 0;
    // Instead of the four sources: the query as the shard holding it saw it (Searcher::shard_query), for the
    // shards of an index split by track. Not with rerank.
    std::shared_ptr<const ShardQuery> shard_query;
};

struct SearchResult {
    IndexKind kind = IndexKind::track;
    std::vector<Hit> hits;                            // best first; records point into the searcher's index
    std::vector<double> layer_weights;                // the layer weights ranked by (empty: the index's own vectors)
    std::map<std::string, double> learned_aspects;    // the learned aspect weights ranked by (empty: none)
    std::optional<Role> role;                         // role searches: the role,
    std::string query_clip_id;                        //   the query window (track queries),
    std::optional<RoleMoment> query_moment;           //   the query's moment (track queries),
    std::vector<RoleMoment> hit_moments;              //   one per hit: the moment its window holds
};

// Words for directions: a small vocabulary maps descriptive words to an aspect and a sign (more/less):
// faster/slower → tempo, louder/intense/stronger ↔ softer/quieter/restrained/gentler → dynamics,
// smoother/legato/connected ↔ crisper/detached/staccato/sharper → articulation, brighter ↔ darker →
// brightness. "less" before a word turns it round; a few function words (like, this, but, and, more, a, bit,
// ...) are skipped; every other word is reported in `unknown`, never guessed.
struct TextQuery {
    std::map<std::string, int> more_less;  // aspect → +1 | −1
    std::vector<std::string> unknown;      // words outside the vocabulary, in order
};
TextQuery parse_text_query(const std::string& text);  // Errors: Error(usage) for contradictory words (faster and slower)
// The vocabulary: word → (aspect, sign), for help texts and the API.
const std::map<std::string, std::pair<std::string, int>>& text_vocabulary();

// The one JSON form of hits: [{"rank", "score", "id", "track_id", "dataset_id", "recording_id", "work_id",
// "split", "metadata", and for passages "start_sec", "end_sec", "segment_idx"; "aspects": {aspect: cosine}
// when the hit has aspect scores}], and for role searches "role": {"name", "time", "interval"?}.
nlohmann::json hits_to_json(const SearchResult& result);
// The moments of `role` in a structure, ascending in time (modulations with their interval).
std::vector<RoleMoment> role_moments(const Structure& s, Role role);
// The JSON form of a role's moment: {"name", "time", "interval"?}.
nlohmann::json role_moment_to_json(Role role, const RoleMoment& m);


// ---------------------------------------------------------------------------------------------
// The same moment in the other performances of a work (cross-performance passage search)
// ---------------------------------------------------------------------------------------------

struct SameMoment {
    std::string track_id;     // another performance of the query track's work (same work_id in the index)
    double time_sec = 0;      // its second aligned to the query's (valid when error is empty)
    double confidence = 0;    // of the alignment (Alignment::confidence)
    int transposition = 0;    // semitones, this performance = the query's + transposition
    std::string clip_id;      // clip indexes: the passage holding that moment (the window whose centre is nearest)
    std::string error;        // why this performance has no moment (audio missing or unreadable, no reliable alignment)
};
// Where a track's audio is; throws Error(input) when it is not known.
using AudioLocator = std::function<std::filesystem::path(const std::string& track_id)>;

// Aligns the query track with every other track of its work in `index` (align_audio) and returns the second
// in each that matches `at_sec` of the query, in index order. A performance that cannot be aligned is kept
// with its reason in `error`. Errors: Error(input) for an unknown track, an `at_sec` outside the query, or
// query audio that cannot be read; Error(usage) for a track without a work id.
// Cost: one alignment per performance (about 0.1 s per minute of music).
std::vector<SameMoment> same_moment(const SearchIndex& index, const std::string& track_id, double at_sec, const AudioLocator& locate,
                                    const AlignParams& params = {});
// [{"track_id", "time_sec", "confidence", "transposition", "clip_id"?, "error"?}]
nlohmann::json same_moment_to_json(const std::vector<SameMoment>& moments);

// Searches one index with its resolved aspects. Thread safety: const member functions are safe from many
// threads (the encoder is opened once, under a lock).
class Searcher {
public:
    // `model_override`: the model that embeds audio queries instead of the index's recorded one.
    Searcher(std::shared_ptr<const SearchIndex> index, std::vector<ResolvedAspect> aspects, std::string model_override = {});

    const SearchIndex& index() const { return *index_; }
    const std::vector<ResolvedAspect>& aspects() const { return aspects_; }
    // Layer weights for aspect weights (see aspect_layer_weights). Errors: Error(usage) when the index has
    // no resolved aspects or no per-layer vectors, or for unknown or unvalidated aspects.
    std::vector<double> layer_weights(const std::map<std::string, double>& aspects, double min_r2 = 0.5, bool scale_by_r2 = true) const;
    // Checks the aspects of a request (learned or probed) as search() would. Errors: as search() for aspects.
    void check_aspects(const SearchRequest& request) const;
    // The learned aspects of the index (the names of its aspect spaces).
    std::vector<std::string> learned_aspects() const;
    // Errors: Error(usage) for a request without exactly one source, one the index cannot answer, or a filter
    // on a column no record has (the message lists the known ones); Error(input) for unknown ids (with the
    // closest known ones), zero or non-finite vectors, silent or unusable audio.
    SearchResult search(const SearchRequest& request) const;
    // The encoder for audio queries (open_index_encoder, opened on first use and kept).
    std::shared_ptr<const class Encoder> encoder() const;
    // The request's query as this index holds it (its row, or an embedded audio excerpt), to be searched on
    // every shard of a split index with the request's options (SearchRequest::shard_query). Errors: as
    // search() for the source (unknown ids, a role the track lacks, unusable audio).
    ShardQuery shard_query(const SearchRequest& request) const;

private:
    std::vector<float> audio_query(const SearchRequest& request, bool stack) const;
    std::map<std::string, double> learned_weights(const SearchRequest& request) const;
    std::map<std::string, int> more_less(const SearchRequest& request) const;
    std::vector<Hit> rerank_tracks(const SearchRequest& request, const QueryOptions& options) const;
    std::vector<Hit> context_passages(const SearchRequest& request, const QueryOptions& options) const;

    void check_filters(const std::vector<Filter>& filters) const;
    QueryOptions query_options(const SearchRequest& request, SearchResult& out) const;
    // Role searches by track: the query window's row and the track's moment of the role.
    std::optional<std::pair<std::size_t, RoleMoment>> role_query_window(const SearchRequest& request) const;
    void role_search(const SearchRequest& request, PassageQuery& query, SearchResult& out) const;

    std::shared_ptr<const SearchIndex> index_;
    std::vector<ResolvedAspect> aspects_;
    std::set<std::string> filter_keys_;  // record fields and metadata columns a filter may name
    std::string model_override_;
    struct EncoderSlot {  // shared by copies of a searcher: the model is opened once
        std::mutex mutex;
        std::shared_ptr<const class Encoder> encoder;
    };
    std::shared_ptr<EncoderSlot> encoder_slot_ = std::make_shared<EncoderSlot>();
};

// The [layers, dim] stack of an outside recording for a query, from `encoder` (the index's model): for a clip index, the window
// of at most 5 s starting at start_sec; for a track index, the mean over the windows of the audio from
// start_sec on (read in place). Errors: Error(input) for a start past the end.
std::vector<float> embed_query_stack(const class Encoder& encoder, AudioView audio, double start_sec, IndexKind kind, int threads);

// ---------------------------------------------------------------------------------------------
// Listening-test triplets: an anchor passage and two candidates for a human to judge
// ---------------------------------------------------------------------------------------------
//
//   mess::SamplerParams p;  p.first = mess::parse_geometry(searcher, "default");
//   p.second = mess::parse_geometry(searcher, "layer:0");  p.seed = 7;
//   mess::SampledTriplet t = mess::sample_triplet(searcher.index(), p, 0);   // draw 0, 1, 2, ... of seed 7
//
// A geometry is a way of measuring similarity over the index: its own vectors ("default"), one stored layer
// ("layer:N"), or a validated aspect's layer fusion (its name). Candidates for an anchor row are its k
// nearest rows in each geometry, one per track, none sharing the anchor's `exclude_same` scope. `random`
// draws two of the k nearest in the first geometry; `disagreement` takes, over the candidates of both, the
// pair the two geometries rank in opposite order with the largest min(|Δ first|, |Δ second|) of their
// similarities to the anchor (the pair a judgement tells most about), trying up to max_anchors anchors.
// Which candidate is shown as "a" is drawn too. Deterministic: std::mt19937_64 seeded from seed and draw.

struct Geometry {
    std::string name;                 // "default", "layer:3", "dynamics"
    std::vector<double> layer_weights; // empty: the index's own vectors
};
// Errors: Error(usage) for a layer out of range, an index without per-layer vectors, or an aspect the
// searcher cannot rank by (the message lists the known ones).
Geometry parse_geometry(const Searcher& searcher, const std::string& spec, double min_r2 = 0.5);

enum class SamplerKind { random, disagreement };
SamplerKind parse_sampler_kind(const std::string& text);  // "random" | "disagreement"; Errors: Error(usage)
const char* to_string(SamplerKind kind);

struct SamplerParams {
    SamplerKind kind = SamplerKind::disagreement;
    Geometry first, second;            // random uses `first` only
    std::size_t k = 10;                // candidates per geometry (1…1000; random needs 2)
    SameScope exclude_same = SameScope::track;
    std::uint64_t seed = 0;
    std::size_t max_anchors = 64;      // disagreement: anchors tried before giving up
};
// "disagreement:default/layer:0", "random:dynamics": recorded with each judgement.
std::string sampler_label(const SamplerParams& params);

struct SampledTriplet {
    std::size_t anchor = 0, a = 0, b = 0;          // rows of the index
    float first_a = 0, first_b = 0;                // similarity of a and b to the anchor in the first geometry
    float second_a = 0, second_b = 0;              // ... and in the second (disagreement)
};
// Draw number `draw` of the sequence that params.seed fixes. Errors: Error(usage) for k out of range;
// Error(input) when the index has fewer than three rows outside one scope, or no anchor tried has a pair
// the two geometries disagree on.
SampledTriplet sample_triplet(const SearchIndex& index, const SamplerParams& params, std::uint64_t draw);

}  // namespace mess
