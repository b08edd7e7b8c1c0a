// Single-query search latency, recall@10, build time and peak RSS on vectors that resemble real embeddings:
// overlapping anisotropic clusters (a decaying spectrum, cluster spread comparable to the spread of the
// centres, so that exact neighbours cross cluster borders; the share that does is printed).
//   bench_search [--n 100000] [--dim 768] [--queries 200] [--clusters 2000] [--noise 1.0] [--seed 0]
//                [--families exact,ivf,hnsw,sq8,pca,pq] [--dir DIR] [--nprobe 16,32,64,128] [--rerank 100,1000]
//                [--exact-queries 20] [--nlist N] [--pca 128,256] [--pq-m M] [--train-per-list 64]
//                [--rows FILE] [--index FILE] [--truth FILE] [--prepare | --build-only]
// Float32 families (exact scan vs FAISS flat as the in-process reference, IVF, HNSW) hold every vector in
// memory; the compressed families (ivf-sq8, ivf-pq: codes in memory, float16 rows memory-mapped from DIR,
// exact re-ranking) are built in bounded memory from a float16 file streamed to DIR (default: a temporary
// directory; 10 M × 768 needs 15 GB there), removed at the end. Recall is against an exact scan of the same
// rows (float32 families: the float32 rows; compressed: the float16 rows, scanned in chunks through BLAS).
// A compressed index goes the way of `mess index build` and `mess serve`: HalfRowsWriter, build_compressed,
// written (index.faiss beside the rows) and read back (read_compressed over the mapped rows); the loaded one
// is queried, and the reference of the same run is its exact scan of every float16 row (--exact-queries).
// --seed changes the centres, the rows and the queries (tune on one seed, report another).
// Files named by --rows, --index and --truth are reused when they exist and written (and kept) when not:
// --prepare writes the rows and the exact top-10 and stops; --build-only builds and writes the index and
// stops, so that at 10 M both can run at once and a later run sweeps over all three. Each sweep line prints
// the storage reads a query caused (/proc/self/io: re-ranking's page-cache misses), how many scans were split
// across two threads, and the load average.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <fstream>
#include <random>
#include <set>

#include <CLI/CLI.hpp>
#include <faiss/IndexFlat.h>
#include <faiss/utils/distances.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mess/npy.hpp"
#include "mess/search.hpp"
#include "mess/util.hpp"

using namespace mess;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }
double peak_rss_gb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_maxrss) / (1024.0 * 1024.0);
}
// The resident set now, from /proc/self/status: anonymous memory (the codes, the records, buffers) and
// pages of mapped files (the float16 rows touched by re-ranking, which the kernel can drop at will).
std::string rss_now() {
    std::ifstream in("/proc/self/status");
    std::string line, out;
    for (; std::getline(in, line);)
        for (const char* key : {"RssAnon:", "RssFile:", "VmHWM:"})
            if (line.starts_with(key)) {
                const double kb = std::strtod(line.c_str() + std::strlen(key), nullptr);
                out += fmt::format("{}{} {:.2f} GB", out.empty() ? "" : ", ", std::string(key, std::strlen(key) - 1), kb / (1024.0 * 1024.0));
            }
    return out;
}

// Centres and per-cluster anisotropic scales over a decaying spectrum σ_j ∝ (1 + j)^-1/2 (as the principal
// components of real embeddings decay); a point is its centre plus noise·scale·N(0, 1) per dimension.
struct Clusters {
    std::size_t count = 0, dim = 0;
    float noise = 1.0f;
    std::vector<float> centres, scales;
    Clusters(std::size_t c, std::size_t d, float nz, std::uint32_t seed)
        : count(c), dim(d), noise(nz), centres(c * d), scales(c * d) {
        std::mt19937 g(7 + seed);
        std::normal_distribution<float> normal(0, 1);
        std::uniform_real_distribution<float> aniso(0.3f, 1.7f);
        for (std::size_t i = 0; i < c; ++i)
            for (std::size_t j = 0; j < d; ++j) {
                const float sigma = 1.0f / std::sqrt(1.0f + static_cast<float>(j));
                centres[i * d + j] = sigma * normal(g);
                scales[i * d + j] = noise * sigma * aniso(g);
            }
    }
    // The cluster of row r of stream `seed` (a hash, so that it is known without generating the row).
    std::size_t cluster_of(std::uint32_t seed, std::size_t r) const {
        std::uint64_t z = (static_cast<std::uint64_t>(seed) << 40) + r + 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return static_cast<std::size_t>((z ^ (z >> 31)) % count);
    }
    // Rows [first, first + n) of the stream `seed`, normalised; each row has its own generator, so rows do not
    // depend on the chunking or the threads.
    void generate(std::uint32_t seed, std::size_t first, std::size_t n, float* out) const {
#pragma omp parallel for schedule(static)
        for (std::size_t i = 0; i < n; ++i) {
            const std::size_t r = first + i, c = cluster_of(seed, r);
            std::mt19937 g(static_cast<std::uint32_t>(r * 2654435761u) ^ seed);
            std::normal_distribution<float> normal(0, 1);
            float* v = out + i * dim;
            for (std::size_t j = 0; j < dim; ++j) v[j] = centres[c * dim + j] + scales[c * dim + j] * normal(g);
            l2_normalize(v, dim);
        }
    }
};

// Wall-clock latency, and the CPU time of every thread of the process (what a query costs whatever else the
// machine runs, the scan's helper thread included; queries run one at a time, so the process's CPU time is
// the query's; on a shared machine the wall-clock figures include waiting for a core).
struct Stats {
    double p50_ms, p99_ms, recall, cpu_p50_ms, cpu_p99_ms;
};
double process_cpu_ms() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) * 1e3 + static_cast<double>(t.tv_nsec) / 1e6;
}
using Ids = std::vector<std::int64_t>;

template <class F>
Stats measure(F&& search, const std::vector<float>& q, std::size_t nq, std::size_t dim, const std::vector<std::set<std::int64_t>>& truth) {
    std::vector<double> ms, cpu;
    double hit = 0;
    for (std::size_t i = 0; i < nq; ++i) {
        const auto t0 = Clock::now();
        const double c0 = process_cpu_ms();
        const Ids res = search(q.data() + i * dim);
        cpu.push_back(process_cpu_ms() - c0);
        ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
        for (auto r : res) hit += static_cast<double>(truth[i].count(r));
    }
    std::sort(ms.begin(), ms.end());
    std::sort(cpu.begin(), cpu.end());
    const std::size_t p99 = std::min(ms.size() - 1, ms.size() * 99 / 100);
    return {ms[ms.size() / 2], ms[p99], hit / static_cast<double>(nq * 10), cpu[cpu.size() / 2], cpu[p99]};
}

Ids ids(const std::vector<std::pair<std::int64_t, float>>& r) {
    Ids out;
    for (auto& [i, s] : r) out.push_back(i);
    return out;
}

void print(const std::string& what, const Stats& s, double ref_p50) {
    fmt::print("{:<34} p50 {:7.2f} ms  p99 {:7.2f} ms  (CPU p50 {:6.2f} p99 {:6.2f})  recall@10 {:.3f}", what, s.p50_ms, s.p99_ms,
               s.cpu_p50_ms, s.cpu_p99_ms, s.recall);
    if (ref_p50 > 0) fmt::print("  → {:.1f}x faster than FAISS flat", ref_p50 / s.p50_ms);
    fmt::print("\n");
    std::fflush(stdout);
}

// Exact top-10 of each query over rows read in chunks (BLAS through FAISS), merged across chunks.
struct TopTen {
    std::vector<std::vector<std::pair<float, std::int64_t>>> best;
    explicit TopTen(std::size_t nq) : best(nq) {}
    void add_chunk(const float* queries, std::size_t nq, const float* rows, std::size_t n, std::size_t first, std::size_t dim) {
        std::vector<float> d(nq * 10);
        std::vector<faiss::Index::idx_t> l(nq * 10);
        faiss::knn_inner_product(queries, rows, dim, nq, n, 10, d.data(), l.data());
        for (std::size_t q = 0; q < nq; ++q) {
            auto& b = best[q];
            for (std::size_t j = 0; j < 10; ++j)
                if (l[q * 10 + j] >= 0) b.emplace_back(d[q * 10 + j], static_cast<std::int64_t>(first) + l[q * 10 + j]);
            std::sort(b.begin(), b.end(), [](const auto& x, const auto& y) { return x.first > y.first || (x.first == y.first && x.second < y.second); });
            if (b.size() > 10) b.resize(10);
        }
    }
    std::vector<std::set<std::int64_t>> sets() const {
        std::vector<std::set<std::int64_t>> out(best.size());
        for (std::size_t q = 0; q < best.size(); ++q)
            for (auto& [s, r] : best[q]) out[q].insert(r);
        return out;
    }
};

struct Setup {
    std::size_t n = 100000, dim = 768, nq = 200, clusters = 2000, exact_queries = 20, nlist = 0, train_per_list = 0, pq_m = 0;
    float noise = 1.0f;
    std::uint32_t seed = 0;
    bool prepare_only = false, build_only = false;
    std::string families = "exact,ivf,hnsw,sq8,pq", dir, rows_file, index_file, truth_file;
    std::vector<int> nprobes = {16, 32, 64, 128}, reranks = {100, 1000}, pca_dims;
    std::uint32_t rows_stream() const { return 1 + 2 * seed; }
    std::uint32_t query_stream() const { return 2 + 2 * seed; }
};

// The share of exact neighbours that lie in another cluster than their query's.
void print_crossing(const Setup& s, const Clusters& cl, const std::vector<std::set<std::int64_t>>& truth) {
    double other = 0, all = 0;
    for (std::size_t q = 0; q < truth.size(); ++q)
        for (auto r : truth[q]) {
            other += cl.cluster_of(s.rows_stream(), static_cast<std::size_t>(r)) != cl.cluster_of(s.query_stream(), q) ? 1 : 0;
            all += 1;
        }
    fmt::print("exact neighbours in another cluster than their query: {:.1f}%\n", 100.0 * other / std::max(1.0, all));
    std::fflush(stdout);
}

bool wants(const Setup& s, const char* family) {
    for (const auto& f : split(s.families, ','))
        if (f == family) return true;
    return false;
}

// Float32 families, every vector in memory: MESS's exact scan against FAISS's flat search (the reference of
// the same run), IVF and HNSW sweeps.
void run_float(const Setup& s, const Clusters& cl, const std::vector<float>& queries) {
    std::vector<float> data(s.n * s.dim);
    cl.generate(s.rows_stream(), 0, s.n, data.data());
    TopTen top(s.nq);
    top.add_chunk(queries.data(), s.nq, data.data(), s.n, 0, s.dim);
    const auto truth = top.sets();
    auto ref = std::make_unique<faiss::IndexFlatIP>(static_cast<faiss::Index::idx_t>(s.dim));
    ref->add(static_cast<faiss::Index::idx_t>(s.n), data.data());
    const Stats faiss_flat = measure([&](const float* q) {
        std::vector<float> D(10);
        Ids I(10);
        ref->search(1, q, 10, D.data(), I.data());
        return I;
    }, queries, s.nq, s.dim, truth);
    ref.reset();
    print("FAISS IndexFlatIP (ref)", faiss_flat, 0);
    print("MESS exact SIMD scan", measure([&](const float* q) { return ids(exact_top_k(data.data(), s.n, s.dim, q, 10)); }, queries, s.nq, s.dim, truth),
          faiss_flat.p50_ms);
    const int nlist = static_cast<int>(std::clamp<std::size_t>(static_cast<std::size_t>(4 * std::sqrt(static_cast<double>(s.n))), 16, 4096));
    struct Config {
        const char* family;
        std::string factory;
        std::vector<SearchParams> sweep;
    };
    std::vector<Config> configs = {{"ivf", fmt::format("IVF{},Flat", nlist), {}}, {"hnsw", "HNSW32", {}}};
    for (int p : {8, 32, 128}) configs[0].sweep.push_back({p, 0, 0});
    for (int e : {16, 64, 128, 256}) configs[1].sweep.push_back({0, e, 0});
    for (const auto& c : configs) {
        if (!wants(s, c.family)) continue;
        const auto t0 = Clock::now();
        const VectorIndex idx = VectorIndex::build(data, s.n, s.dim, c.factory);
        fmt::print("build {} {:.1f} s\n", c.factory, seconds_since(t0));
        for (const auto& sp : c.sweep)
            print(fmt::format("{} {}={}", c.factory, sp.nprobe ? "nprobe" : "efSearch", sp.nprobe ? sp.nprobe : sp.ef_search),
                  measure([&](const float* q) { return ids(idx.search(q, 10, sp)); }, queries, s.nq, s.dim, truth), faiss_flat.p50_ms);
    }
}

// The float16 rows streamed to `path` in chunks (bounded memory), then mapped.
std::shared_ptr<const HalfRows> write_rows(const Setup& s, const Clusters& cl, const fs::path& path, bool keep) {
    const auto t0 = Clock::now();
    HalfRowsWriter w(path, s.dim);
    constexpr std::size_t kChunk = 65536;
    std::vector<float> chunk(kChunk * s.dim);
    for (std::size_t r0 = 0; r0 < s.n; r0 += kChunk) {
        const std::size_t c = std::min(kChunk, s.n - r0);
        cl.generate(s.rows_stream(), r0, c, chunk.data());
        w.append(chunk.data(), c);
    }
    auto rows = w.finish(/*remove_on_close=*/!keep);
    fmt::print("generated {} float16 rows ({:.2f} GB) in {:.1f} s\n", s.n, static_cast<double>(fs::file_size(path)) / 1e9, seconds_since(t0));
    std::fflush(stdout);
    return rows;
}

// Exact top-10 over the float16 rows, read in chunks with plain reads (not through the mapping).
std::vector<std::set<std::int64_t>> half_truth(const Setup& s, const HalfRows& rows, const std::vector<float>& queries) {
    const auto t0 = Clock::now();
    std::ifstream in(rows.path(), std::ios::binary);
    in.seekg(static_cast<std::streamoff>(read_npy_header(rows.path()).data_offset));
    constexpr std::size_t kChunk = 65536;
    std::vector<std::uint16_t> half(kChunk * s.dim);
    std::vector<float> f(kChunk * s.dim);
    TopTen top(s.nq);
    for (std::size_t r0 = 0; r0 < s.n; r0 += kChunk) {
        const std::size_t c = std::min(kChunk, s.n - r0);
        in.read(reinterpret_cast<char*>(half.data()), static_cast<std::streamsize>(c * s.dim * 2));
        if (!in) throw_input("{}: short read", rows.path().string());
        for (std::size_t i = 0; i < c * s.dim; ++i) f[i] = half_to_float(half[i]);
        top.add_chunk(queries.data(), s.nq, f.data(), c, r0, s.dim);
    }
    fmt::print("exact top-10 of {} queries over the float16 rows: {:.1f} s\n", s.nq, seconds_since(t0));
    std::fflush(stdout);
    return top.sets();
}

// --truth FILE: the exact top-10 read from FILE (int64 [queries, 10]) when it exists, else computed and written
// there (10 M rows: 4–6 minutes saved by each later run over the same rows, seed and queries).
std::vector<std::set<std::int64_t>> cached_truth(const Setup& s, const HalfRows& rows, const std::vector<float>& queries) {
    if (s.truth_file.empty()) return half_truth(s, rows, queries);
    if (fs::exists(s.truth_file)) {
        const NpyArray a = read_npy(s.truth_file);
        if (a.dtype != DType::i64 || a.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(s.nq), 10})
            throw_input("{}: {} but int64 [{}, 10] is expected", s.truth_file, a.describe(), s.nq);
        const std::int64_t* ids = a.view<std::int64_t>().data();
        std::vector<std::set<std::int64_t>> out(s.nq);
        for (std::size_t q = 0; q < s.nq; ++q) out[q].insert(ids + q * 10, ids + q * 10 + 10);
        fmt::print("exact top-10 read from {}\n", s.truth_file);
        return out;
    }
    const auto truth = half_truth(s, rows, queries);
    std::vector<std::int64_t> ids;
    for (const auto& t : truth) {
        if (t.size() != 10) throw_usage("--truth needs at least 10 rows");
        ids.insert(ids.end(), t.begin(), t.end());
    }
    write_npy(s.truth_file, NpyArray::from(ids, {static_cast<std::int64_t>(s.nq), 10}));
    return truth;
}

fs::path make_temp_dir(const fs::path& parent) {
    std::string t = (parent / "mess-bench-search.XXXXXX").string();
    if (!::mkdtemp(t.data())) throw_input("cannot create a temporary directory in {}", parent.string());
    return t;
}

// Built as `mess index build` builds a compressed index (the rows streamed to a float16 file, the quantiser
// trained on a sample, codes added in chunks), written as the artifact holds it (index.faiss beside the
// rows) and read back as `mess serve` loads it; the built copy is gone before the loaded one is queried.
std::string factory_of(const Setup& s, const std::string& type, int pca) {
    std::string f = compressed_factory(type, s.n, s.dim);
    const std::string prefix = pca > 0 ? fmt::format("PCA{},", pca) : "";
    if (pca > 0) f = f.substr(f.find(',') + 1);  // "PCA<d>,IVF…" → "IVF…"
    if (s.nlist > 0) f = fmt::format("IVF{}{}", s.nlist, f.substr(f.find(',')));
    f = prefix + f;
    if (s.pq_m > 0 && type == "ivf-pq") f = fmt::format("{},PQ{}", f.substr(0, f.find(',')), s.pq_m);
    return f;
}

VectorIndex build_write_load(const Setup& s, const std::shared_ptr<const HalfRows>& rows, const std::string& type, int pca, const fs::path& dir) {
    CompressedParams p;
    p.factory = factory_of(s, type, pca);
    if (s.train_per_list > 0) p.train_rows = std::stoul(p.factory.substr(p.factory.find("IVF") + 3)) * s.train_per_list;
    p.rerank = 1000;
    if (!s.index_file.empty() && fs::exists(s.index_file)) {  // --index: the index.faiss an earlier run wrote over the same rows
        const auto t0 = Clock::now();
        VectorIndex loaded = VectorIndex::read_compressed(s.index_file, rows, p.factory, p.rerank);
        fmt::print("loaded {} ({}) in {:.1f} s; {}\n", s.index_file, p.factory, seconds_since(t0), rss_now());
        std::fflush(stdout);
        return loaded;
    }
    const auto t0 = Clock::now();
    double trained = -1, next = 0.1;
    p.on_progress = [&](std::size_t done, std::size_t total) {
        if (trained < 0) trained = seconds_since(t0);
        if (static_cast<double>(done) < next * static_cast<double>(total) && done < total) return;
        fmt::print("  added {} of {} rows at {:.0f} s ({})\n", done, total, seconds_since(t0), rss_now());
        std::fflush(stdout);
        next += 0.1;
    };
    // --index naming a file not there yet: the built index is written there and kept for later runs.
    const fs::path file = !s.index_file.empty() ? fs::path(s.index_file) : dir / fmt::format("{}{}.faiss", type, pca > 0 ? fmt::format("-{}", pca) : "");
    {
        const VectorIndex built = VectorIndex::build_compressed(rows, p);
        fmt::print("build {} ({}) {:.1f} s (training {:.1f} s), peak RSS so far {:.2f} GB\n", type, p.factory, seconds_since(t0),
                   trained, peak_rss_gb());
        built.write(file);
    }
    const auto t1 = Clock::now();
    VectorIndex loaded = VectorIndex::read_compressed(file, rows, p.factory, p.rerank);
    fmt::print("written ({:.2f} GB of codes) and loaded in {:.1f} s; {}\n", static_cast<double>(fs::file_size(file)) / 1e9, seconds_since(t1),
               rss_now());
    std::fflush(stdout);
    return loaded;
}

std::string load_average() {
    double l[3] = {0, 0, 0};
    return ::getloadavg(l, 3) == 3 ? fmt::format("{:.1f} {:.1f} {:.1f}", l[0], l[1], l[2]) : "?";
}

// Bytes this process has had read from storage (/proc/self/io read_bytes): re-ranking's page-cache misses.
double storage_read_bytes() {
    std::ifstream in("/proc/self/io");
    std::string line;
    for (; std::getline(in, line);)
        if (line.starts_with("read_bytes:")) return std::strtod(line.c_str() + 11, nullptr);
    return 0;
}

// The sweep of nprobe × rerank on the loaded index, against its exact scan of every float16 row (the
// reference of the same run: single queries, a few of them, since each reads every row).
void sweep_compressed(const Setup& s, const VectorIndex& idx, const std::vector<float>& queries, const std::vector<std::set<std::int64_t>>& truth) {
    double exact_p50 = 0;
    if (s.exact_queries > 0) {
        const std::size_t nq = std::min(s.exact_queries, s.nq);
        const Stats ex = measure([&](const float* q) { return ids(idx.search(q, 10, {}, /*exact=*/true)); }, queries, nq, s.dim,
                                 std::vector<std::set<std::int64_t>>(truth.begin(), truth.begin() + static_cast<std::ptrdiff_t>(nq)));
        print(fmt::format("exact scan of the float16 rows ({} q)", nq), ex, 0);
        exact_p50 = ex.p50_ms;
    }
    // A serving process is warm: 20 untimed queries first (the first few pay for cold caches, the helper thread's
    // start and, after the exact scan, the page cache it emptied; measured: p99 48 ms instead of 9 ms at 10 M rows).
    if (!s.nprobes.empty() && !s.reranks.empty())
        for (std::size_t i = 0; i < std::min<std::size_t>(20, s.nq); ++i)
            (void)idx.search(queries.data() + i * s.dim, 10, {s.nprobes.front(), 0, s.reranks.front()});
    for (int nprobe : s.nprobes)
        for (int rerank : s.reranks) {
            const double read0 = storage_read_bytes();
            const std::size_t split0 = sq8_split_scans();
            const Stats st = measure([&](const float* q) { return ids(idx.search(q, 10, {nprobe, 0, rerank})); }, queries, s.nq, s.dim, truth);
            const double read_kb = (storage_read_bytes() - read0) / 1024.0 / static_cast<double>(s.nq);
            const std::size_t split = sq8_split_scans() - split0;
            fmt::print("{:<34} p50 {:7.2f} ms  p99 {:7.2f} ms  (CPU p50 {:6.2f} p99 {:6.2f})  recall@10 {:.3f}",
                       fmt::format("{} nprobe={} rerank={}", idx.factory(), nprobe, rerank), st.p50_ms, st.p99_ms, st.cpu_p50_ms,
                       st.cpu_p99_ms, st.recall);
            if (exact_p50 > 0) fmt::print("  → {:.0f}x faster than the exact scan", exact_p50 / st.p50_ms);
            fmt::print("  [{:.0f} KB read from storage a query; {} of {} scans on 2 threads; load {}]\n", read_kb, split, s.nq, load_average());
            std::fflush(stdout);
        }
    fmt::print("after the sweep: {}\n", rss_now());
}

void run_compressed(const Setup& s, const Clusters& cl, const std::vector<float>& queries) {
    const fs::path dir = make_temp_dir(s.dir.empty() ? fs::temp_directory_path() : fs::path(s.dir));
    {
        // --rows: the float16 rows of an earlier run with the same --n, --dim and --seed, or written there
        // (and kept) when the file does not exist yet.
        const auto rows = s.rows_file.empty()           ? write_rows(s, cl, dir / "rows.npy", false)
                          : !fs::exists(s.rows_file) ? write_rows(s, cl, s.rows_file, true)
                                                      : HalfRows::open(s.rows_file, s.n, s.dim);
        // --build-only: the index built and written (--index), no exact top-10 (a --prepare run may be computing it).
        const auto truth = s.build_only ? std::vector<std::set<std::int64_t>>() : cached_truth(s, *rows, queries);
        if (!s.build_only) print_crossing(s, cl, truth);
        if (s.prepare_only) fmt::print("--prepare: rows and exact top-10 written, no index built\n");
        auto run = [&](const std::string& type, int pca) {
            if (s.prepare_only) return;
            VectorIndex idx = build_write_load(s, rows, type, pca, dir);
            if (!s.build_only) sweep_compressed(s, idx, queries, truth);
        };
        for (const char* type : {"ivf-sq8", "ivf-pq"})
            if (wants(s, std::string(type).substr(4).c_str())) run(type, 0);
        for (int pca : s.pca_dims.empty() ? std::vector<int>{static_cast<int>(pca_dims(s.dim))} : s.pca_dims)
            if (wants(s, "pca")) run("pca-ivf-sq8", pca);
    }
    fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Search latency and recall benchmark"};
    Setup s;
    app.add_option("--noise", s.noise, "Cluster spread relative to the spread of the centres");
    app.add_option("--families", s.families, "Families to run: exact,ivf,hnsw (float32 in memory), sq8,pca,pq (compressed; pca: pca-ivf-sq8)");
    app.add_option("--dir", s.dir, "Where the compressed families' float16 rows are written (a temporary directory in it)");
    app.add_option("--n", s.n);
    app.add_option("--dim", s.dim);
    app.add_option("--queries", s.nq);
    app.add_option("--clusters", s.clusters);
    app.add_option("--seed", s.seed, "Seed of the centres, rows and queries (tune on one, report another)");
    app.add_option("--nprobe", s.nprobes, "Compressed families: IVF lists visited (a sweep)")->delimiter(',');
    app.add_option("--rerank", s.reranks, "Compressed families: candidates re-ranked exactly (a sweep)")->delimiter(',');
    app.add_option("--rows", s.rows_file, "Compressed families: reuse this float16 rows file of an earlier run (same --n, --dim, --seed); written there (and kept) when missing");
    app.add_option("--index", s.index_file, "Compressed families: load this index file an earlier run wrote over the --rows file (its build is skipped); built and written there when missing");
    app.add_option("--truth", s.truth_file, "Compressed families: the exact top-10 of the queries, read when the file exists, else written there");
    app.add_option("--nlist", s.nlist, "Compressed families: IVF lists (default: what `mess index build` chooses, ≈ 4·√n)");
    app.add_option("--pca", s.pca_dims, "pca-ivf-sq8: principal components kept (a sweep; default: the build's own, pca_dims)")->delimiter(',');
    app.add_option("--pq-m", s.pq_m, "ivf-pq: bytes of code per row (default: the build's own, dimension/8)");
    app.add_option("--train-per-list", s.train_per_list, "Compressed families: training rows per list (default: the build's own, 64)");
    app.add_option("--exact-queries", s.exact_queries, "Compressed families: queries timed with an exact scan of every row (the reference)");
    app.add_flag("--prepare", s.prepare_only, "Compressed families: write --rows and --truth (when missing) and stop before building");
    app.add_flag("--build-only", s.build_only, "Compressed families: build, write --index and stop (no exact top-10, no sweep)");
    CLI11_PARSE(app, argc, argv);
    const Clusters cl(s.clusters, s.dim, s.noise, s.seed);
    std::vector<float> queries(s.nq * s.dim);
    cl.generate(s.query_stream(), 0, s.nq, queries.data());
    fmt::print("{} vectors × {} dims ({} overlapping clusters, noise {}, seed {}), {} single queries, exact scan ISA {}, SQ8 scan ISA {}\n", s.n,
               s.dim, s.clusters, s.noise, s.seed, s.nq, exact_scan_isa(), sq8_scan_isa());
    if (wants(s, "exact") || wants(s, "ivf") || wants(s, "hnsw")) run_float(s, cl, queries);
    if (wants(s, "sq8") || wants(s, "pca") || wants(s, "pq")) run_compressed(s, cl, queries);
    fmt::print("peak RSS {:.2f} GB (getrusage); {}\n", peak_rss_gb(), rss_now());
    return 0;
}
