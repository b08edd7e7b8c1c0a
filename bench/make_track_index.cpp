// Writes a track-index artifact of clustered random unit vectors (for the HTTP load benchmark): N tracks of
// D dims in 100-track clusters ("works"), with composer/title metadata.
// Usage: make_track_index OUT_ROOT [N=10000] [D=768]
#include <cstdlib>
#include <random>

#include <fmt/format.h>

#include "mess/artifacts.hpp"

int main(int argc, char** argv) {
    if (argc < 2) {
        fmt::print(stderr, "usage: make_track_index OUT_ROOT [N=10000] [D=768]\n");
        return 1;
    }
    const std::size_t n = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10000, dim = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 768;
    std::mt19937 g(3);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    const std::size_t clusters = std::max<std::size_t>(1, n / 100);
    std::vector<float> centres(clusters * dim), vectors(n * dim);
    for (float& x : centres) x = normal(g);
    std::vector<mess::IndexRecord> records(n);
    for (std::size_t i = 0; i < n; ++i) {
        const std::size_t c = i % clusters;
        for (std::size_t d = 0; d < dim; ++d) vectors[i * dim + d] = centres[c * dim + d] + 0.7f * normal(g);
        auto& r = records[i];
        r.id = r.track_id = r.recording_id = fmt::format("track-{:05d}", i);
        r.dataset_id = "bench";
        r.work_id = fmt::format("work-{:04d}", c);
        r.split = "train";
        r.end_sec = 180;
        r.metadata = {{"composer", fmt::format("Composer {}", c % 40)}, {"title", fmt::format("Piece {}", i)}};
    }
    mess::SearchIndex idx = mess::build_index_from_vectors(mess::IndexKind::track, std::move(records), std::move(vectors), dim, "Flat");
    idx.dataset = "bench";
    idx.model_name = "random";
    fmt::print("{}\n", mess::write_artifact(idx, argv[1], "track_index").string());
    return 0;
}
