// The C++ reference of bench/bench_python.py: Searcher::search for "tracks similar to this one" on an index
// artifact, timed over the same queries the Python side makes (track ids of rows 0, 7919, 2·7919, ... mod N).
// Usage: time_searches ARTIFACT_DIR [CALLS=1000] [K=10]   → one JSON line: calls, k, seconds_per_call (best of 3)
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include <fmt/format.h>

#include "mess/artifacts.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "usage: time_searches ARTIFACT_DIR [CALLS=1000] [K=10]\n");
        return 1;
    }
    const std::size_t calls = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 1000, k = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 10;
    const auto artifact = std::make_shared<const mess::LoadedArtifact>(mess::load_artifact(argv[1]));
    const mess::Searcher searcher = mess::make_searcher(artifact);
    const auto& records = artifact->index.records;
    std::size_t sink = 0;
    auto run = [&] {
        const auto t0 = std::chrono::steady_clock::now();
        for (std::size_t i = 0; i < calls; ++i) {
            mess::SearchRequest r;
            r.track_id = records[(i * 7919) % records.size()].id;
            r.options.k = k;
            sink += searcher.search(r).hits.size();
        }
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / static_cast<double>(calls);
    };
    run();  // warm-up
    double best = run();
    for (int rep = 0; rep < 2; ++rep) best = std::min(best, run());
    fmt::print("{{\"calls\": {}, \"k\": {}, \"seconds_per_call\": {:.9f}, \"hits\": {}}}\n", calls, k, best, sink);
    return 0;
}
