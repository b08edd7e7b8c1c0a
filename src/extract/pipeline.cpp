// Decode workers → bounded queue → inference + atomic writes, one flock per track.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "mess/extract.hpp"
#include "mess/npy.hpp"

namespace mess {
namespace fs = std::filesystem;
namespace {

// An exclusive advisory lock on a file, held for the object's lifetime; released by the kernel when the
// process dies, so a killed run never leaves a stale lock.
class TrackLock {
public:
    static std::optional<TrackLock> try_acquire(const fs::path& path) {
        int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) throw_input("{}: cannot open lock file", path.string());
        if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
            ::close(fd);
            return std::nullopt;
        }
        return TrackLock(fd);
    }
    TrackLock(TrackLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    TrackLock& operator=(TrackLock&&) = delete;
    ~TrackLock() {
        if (fd_ >= 0) ::close(fd_);  // closing drops the flock
    }

private:
    explicit TrackLock(int fd) : fd_(fd) {}
    int fd_;
};

// Leftover temporary files of a track from a killed run (AtomicFile names them .<name>.tmp.XXXXXX).
void remove_stale_temps(const FeatureStore& store, const std::string& track_id) {
    std::error_code ec;
    for (const char* dir : {"raw", "segments", "aggregated", "meta"}) {
        const fs::path d = store.root / dir;
        if (!fs::is_directory(d, ec)) continue;
        for (const auto& prefix : {"." + track_id + ".npy.tmp.", "." + track_id + ".json.tmp."})
            for (const auto& e : fs::directory_iterator(d, ec))
                if (e.path().filename().string().starts_with(prefix)) fs::remove(e.path(), ec);
    }
}

struct Prepared {
    ExtractItem item;
    Audio audio;
    TrackLock lock;
};

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

}  // namespace

ExtractReport extract_tracks(const std::vector<ExtractItem>& all_items, const FeatureStore& store, const Encoder& encoder,
                             const ExtractParams& p) {
    if (p.workers < 1 || p.threads < 1 || p.batch_size < 1)
        throw_usage("workers, threads and batch size must be ≥ 1 (got {}, {}, {})", p.workers, p.threads, p.batch_size);
    const auto start = std::chrono::steady_clock::now();
    std::vector<ExtractItem> items;
    for (const auto& it : all_items)
        if (p.shard.contains(it.track_id)) items.push_back(it);

    std::error_code ec;
    for (const char* dir : {"raw", "segments", "aggregated", "meta", ".locks"}) {
        fs::create_directories(store.root / dir, ec);
        if (ec) throw_input("{}: cannot create the feature store: {}", (store.root / dir).string(), ec.message());
    }
    const auto views = views_of(p.level);
    auto wants = [&](const std::string& v) { return std::find(views.begin(), views.end(), v) != views.end(); };

    ExtractReport report;
    report.tracks_total = static_cast<std::int64_t>(items.size());
    std::mutex mu;
    std::condition_variable not_full, not_empty;
    std::deque<Prepared> queue;
    const std::size_t capacity = 2 * static_cast<std::size_t>(p.workers);
    std::atomic<std::size_t> next{0};
    int workers_left = p.workers;
    ExtractProgress progress{0, report.tracks_total, 0};
    auto track_done = [&] {  // call with mu held
        ++progress.tracks_done;
        if (p.on_progress) p.on_progress(progress);
    };
    auto fail = [&](const ExtractItem& item, const std::string& reason) {
        std::lock_guard g(mu);
        spdlog::warn("skipping track {}: {}", item.track_id, reason);
        report.failed.push_back({item.track_id, item.audio_path, reason});
        track_done();
    };

    auto decode_worker = [&] {
        while (true) {
            const std::size_t i = next++;
            if (i >= items.size()) break;
            const ExtractItem& item = items[i];
            try {
                auto lock = TrackLock::try_acquire(store.lock_path(item.track_id));
                if (!lock) {
                    std::lock_guard g(mu);
                    ++report.locked;
                    track_done();
                    continue;
                }
                if (!p.force && track_complete(store, item.track_id, p.level)) {
                    // A store never mixes precisions silently: features of another precision are an error until --force.
                    if (const std::string had = stored_precision(store, item.track_id); had != encoder.info().precision)
                        throw_input("its features were extracted in {} and this run computes {}: --force recomputes them "
                                    "(an index never mixes precisions)", had, encoder.info().precision);
                    std::lock_guard g(mu);
                    ++report.cached;
                    track_done();
                    continue;
                }
                remove_stale_temps(store, item.track_id);
                Audio audio = load_audio(item.audio_path, encoder.info().sampling_rate);
                std::unique_lock g(mu);
                not_full.wait(g, [&] { return queue.size() < capacity; });
                queue.push_back(Prepared{item, std::move(audio), std::move(*lock)});
                not_empty.notify_one();
            } catch (const std::exception& e) {
                fail(item, e.what());
            }
        }
        std::lock_guard g(mu);
        --workers_left;
        not_empty.notify_all();
    };

    std::vector<std::thread> pool;
    for (int w = 0; w < p.workers; ++w) pool.emplace_back(decode_worker);

    auto session = encoder.session();
    EmbedParams embed;
    embed.batch_size = p.batch_size;
    embed.keep_frames = wants("raw");  // segments and aggregated need only each window's frame means
    while (true) {
        std::optional<Prepared> job;
        {
            std::unique_lock g(mu);
            not_empty.wait(g, [&] { return !queue.empty() || workers_left == 0; });
            if (queue.empty()) break;
            job.emplace(std::move(queue.front()));
            queue.pop_front();
            not_full.notify_one();
        }
        const ExtractItem& item = job->item;
        try {
            auto t0 = std::chrono::steady_clock::now();
            Embedding e = session->embed(job->audio, embed, p.threads);
            const double busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const HiddenStates& h = e.states;
            const std::int64_t S = h.batch, L = h.layers, D = h.hidden;
            if (wants("raw")) {
                if (p.raw_float16) write_npy(store.view_path("raw", item.track_id), NpyArray::float16_from(h.values, {S, L, h.frames, D}));
                else write_npy(store.view_path("raw", item.track_id), h.values, {S, L, h.frames, D});
            }
            if (wants("segments")) write_npy(store.view_path("segments", item.track_id), e.segments, {S, L, D});
            write_npy(store.view_path("aggregated", item.track_id), pool_windows(e.segments, S, L * D), {L, D});
            nlohmann::json windows = nlohmann::json::array();
            for (const auto& w : e.windows) windows.push_back({{"start_sec", w.start_sec}, {"end_sec", w.end_sec}});
            const EncoderInfo& info = encoder.info();
            nlohmann::json side = {{"track_id", item.track_id},
                                   {"audio_path", item.audio_path.string()},
                                   {"model", p.model_label.empty() ? info.name : p.model_label},
                                   {"model_config", {{"architecture", info.architecture}, {"hidden_size", info.hidden},
                                                     {"num_hidden_states", info.layers},
                                                     {"default_layer", info.default_layer},
                                                     {"layer_names", info.layer_names}}},
                                   {"sample_rate", info.sampling_rate},
                                   {"window_seconds", embed.windows.seconds},
                                   {"overlap", embed.windows.overlap},
                                   {"duration_sec", job->audio.duration_sec()},
                                   {"num_windows", S},
                                   {"frames_per_window", h.frames},
                                   {"windows", windows},
                                   {"views", views},
                                   {"raw_dtype", p.raw_float16 ? "float16" : "float32"},
                                   {"precision", info.precision},
                                   {"device", info.device},
                                   {"mess_version", MESS_VERSION_STRING},
                                   {"created_at_utc", utc_now()}};
            write_file_atomic(store.sidecar_path(item.track_id), side.dump(2) + "\n");  // last: marks completion
            std::lock_guard g(mu);
            ++report.processed;
            report.windows += S;
            report.model_busy_sec += busy;
            progress.windows_done += S;
            track_done();
        } catch (const std::exception& e) {
            fail(item, e.what());
        }
        job.reset();  // releases the track lock
    }
    for (auto& t : pool) t.join();
    report.elapsed_sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::sort(report.failed.begin(), report.failed.end(), [](const auto& a, const auto& b) { return a.track_id < b.track_id; });
    return report;
}

}  // namespace mess
