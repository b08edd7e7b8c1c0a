// Decode workers → bounded queue → inference + atomic writes, one flock per track.
#include <atomic>
#include <chrono>
#include <cmath>
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
        const fs::path d = store.root() / dir;
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
    std::optional<FileStamp> stamp;  // the audio's, taken before decoding (recorded in the sidecar)
    TrackCheck before;               // the track's state before this run: why it is computed
};

// The audio's stamp, or nullopt when it cannot be stat'd (decoding then reports the problem).
std::optional<FileStamp> try_file_stamp(const fs::path& path) {
    try {
        return file_stamp(path);
    } catch (const Error&) {
        return std::nullopt;
    }
}

std::string utc_now() {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

// One run of the pipeline: decode workers feed a bounded queue; the calling thread embeds and writes.
class ExtractionRun {
public:
    ExtractionRun(std::vector<ExtractItem> items, const FeatureStore& store, const Encoder& encoder, const ExtractParams& p)
        : items_(std::move(items)), store_(store), encoder_(encoder), encoder_digest_(fingerprint_digest(encoder_fingerprint(encoder))), p_(p), capacity_(2 * static_cast<std::size_t>(p.workers)),
          workers_left_(p.workers) {
        report_.tracks_total = static_cast<std::int64_t>(items_.size());
        progress_.tracks_total = report_.tracks_total;
    }

    ExtractReport run() {
        std::vector<std::thread> pool;
        for (int w = 0; w < p_.workers; ++w) pool.emplace_back([this] { decode_worker(); });
        embed_and_write();
        for (auto& t : pool) t.join();
        std::sort(report_.failed.begin(), report_.failed.end(), [](const auto& a, const auto& b) { return a.track_id < b.track_id; });
        std::sort(report_.silent.begin(), report_.silent.end());
        std::sort(report_.recomputed.begin(), report_.recomputed.end(),
                  [](const auto& a, const auto& b) { return a.track_id < b.track_id; });
        return std::move(report_);
    }

private:
    // ---- decoding (worker threads) ----

    void decode_worker() {
        while (true) {
            const std::size_t i = next_++;
            if (i >= items_.size()) break;
            try {
                prepare(items_[i]);
            } catch (const std::exception& e) {
                fail(items_[i], e.what());
            }
        }
        std::lock_guard g(mu_);
        --workers_left_;
        not_empty_.notify_all();
    }

    // Locks the track, skips it when another run holds it or it is complete (check_track: intact views,
    // unchanged audio), else decodes it into the queue.
    void prepare(const ExtractItem& item) {
        auto lock = TrackLock::try_acquire(store_.lock_path(item.track_id));
        if (!lock) return count(report_.locked);
        const std::optional<FileStamp> stamp = try_file_stamp(item.audio_path);
        TrackCheck before;
        if (!p_.force) {
            before = store_.check_track(item.track_id, p_.level, stamp);
            if (before.state != TrackState::missing) before = check_against_this_run(item.track_id, std::move(before));
            if (before.state == TrackState::complete) return count(report_.cached);
            if (before.state != TrackState::missing)
                spdlog::info("track {}: recomputing ({}): {}", item.track_id, to_string(before.state), before.reason);
        }
        remove_stale_temps(store_, item.track_id);
        Audio audio = load_audio(item.audio_path, encoder_.info().sampling_rate);
        std::unique_lock g(mu_);
        not_full_.wait(g, [&] { return queue_.size() < capacity_; });
        queue_.push_back(Prepared{item, std::move(audio), std::move(*lock), stamp, std::move(before)});
        not_empty_.notify_one();
    }

    // What the store's check cannot know, from the one sidecar read: features of another precision are an
    // error until --force (recomputing one track would mix them; an index never mixes precisions), and a
    // complete track computed by another build of the encoder (its digest differs, or it records none where
    // this encoder has one) is recomputed: features of the old build would pass for this one's.
    // (An unreadable sidecar records nothing to compare: the store's check already calls it corrupt.)
    TrackCheck check_against_this_run(const std::string& track_id, TrackCheck before) const {
        const auto side = store_.try_read_sidecar(track_id);
        if (!side) return before;
        if (side->precision != encoder_.info().precision)
            throw_input("its features were extracted in {} and this run computes {}: --force recomputes them "
                        "(an index never mixes precisions)", side->precision, encoder_.info().precision);
        if (before.state != TrackState::complete || encoder_digest_.empty()) return before;
        const std::string where = store_.sidecar_path(track_id).string();
        if (side->encoder_digest.empty())
            return {TrackState::source_changed, fmt::format("{}: extracted before the encoder's digest was recorded", where)};
        if (const double d = fingerprint_distance(side->encoder_digest, encoder_digest_); d > kSameFingerprint)
            return {TrackState::source_changed, fmt::format("{}: the encoder '{}' changed since extraction (its fingerprint moved by {:.3g} relative)",
                                                            where, encoder_.info().name, d)};
        return before;
    }

    // ---- inference and writing (calling thread) ----

    std::optional<Prepared> next_job() {
        std::unique_lock g(mu_);
        not_empty_.wait(g, [&] { return !queue_.empty() || workers_left_ == 0; });
        if (queue_.empty()) return std::nullopt;
        std::optional<Prepared> job(std::move(queue_.front()));
        queue_.pop_front();
        not_full_.notify_one();
        return job;
    }

    void embed_and_write() {
        auto session = encoder_.session();
        EmbedParams embed;
        embed.batch_size = p_.batch_size;
        embed.keep_frames = wants(View::raw);  // segments and aggregated need only each window's frame means
        while (auto job = next_job()) {
            try {
                const auto t0 = std::chrono::steady_clock::now();
                const Embedding e = session->embed(job->audio, embed, p_.threads);
                const double busy = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                check_finite(e);
                // An old sidecar must not vouch for views half replaced by a run that dies here.
                std::error_code ec;
                fs::remove(store_.sidecar_path(job->item.track_id), ec);
                write_views(job->item.track_id, e);
                store_.write_sidecar(sidecar_of(*job, e, embed));  // last: marks completion
                std::lock_guard g(mu_);
                if (is_silent(job->audio)) report_.silent.push_back(job->item.track_id);
                count_computed(*job);
                report_.windows += e.states.batch;
                report_.model_busy_sec += busy;
                progress_.windows_done += e.states.batch;
                track_done();
            } catch (const std::exception& ex) {
                fail(job->item, ex.what());
            }
        }  // each job's end releases its track lock
    }

    // A model that produced NaN or infinity for a track: the track fails, nothing is written.
    static void check_finite(const Embedding& e) {
        if (const std::size_t bad = first_non_finite(e.segments); bad < e.segments.size()) {
            const auto per_window = static_cast<std::size_t>(e.states.layers * e.states.hidden);
            throw_input("the model produced non-finite values (NaN or infinity) in window {}; nothing was written",
                        bad / std::max<std::size_t>(1, per_window));
        }
    }

    void write_views(const std::string& track_id, const Embedding& e) const {
        const HiddenStates& h = e.states;
        const std::int64_t S = h.batch, L = h.layers, D = h.hidden;
        if (wants(View::raw)) {
            const fs::path raw = store_.view_path(View::raw, track_id);
            if (p_.raw_float16) write_npy(raw, NpyArray::float16_from(h.values, {S, L, h.frames, D}));
            else write_npy(raw, h.values, {S, L, h.frames, D});
        }
        if (wants(View::segments)) write_npy(store_.view_path(View::segments, track_id), e.segments, {S, L, D});
        write_npy(store_.view_path(View::aggregated, track_id), pool_windows(e.segments, S, L * D), {L, D});
    }

    Sidecar sidecar_of(const Prepared& job, const Embedding& e, const EmbedParams& embed) const {
        const EncoderInfo& info = encoder_.info();
        Sidecar side;
        side.track_id = job.item.track_id;
        side.audio_path = job.item.audio_path;
        side.model = p_.model_label.empty() ? info.name : p_.model_label;
        side.model_config = {info.architecture, info.hidden, info.layers, info.default_layer, info.layer_names};
        side.sample_rate = info.sampling_rate;
        side.window_seconds = embed.windows.seconds;
        side.overlap = embed.windows.overlap;
        side.duration_sec = job.audio.duration_sec();
        side.num_windows = e.states.batch;
        side.frames_per_window = e.states.frames;
        for (const auto& w : e.windows) side.windows.push_back({w.start_sec, w.end_sec});
        side.views = views_of(p_.level);
        side.raw_dtype = p_.raw_float16 ? "float16" : "float32";
        side.precision = info.precision;
        side.device = info.device;
        side.audio_stamp = job.stamp;
        side.mess_version = MESS_VERSION_STRING;
        side.encoder_digest = encoder_digest_;
        side.created_at_utc = utc_now();
        return side;
    }

    // ---- bookkeeping ----

    bool wants(View v) const {
        const auto views = views_of(p_.level);
        return std::find(views.begin(), views.end(), v) != views.end();
    }
    void count_computed(const Prepared& job) {  // call with mu_ held
        if (job.before.state == TrackState::corrupt || job.before.state == TrackState::source_changed)
            report_.recomputed.push_back({job.item.track_id, job.before.state, job.before.reason});
        else
            ++report_.processed;
    }
    void count(std::int64_t& counter) {
        std::lock_guard g(mu_);
        ++counter;
        track_done();
    }
    void track_done() {  // call with mu_ held
        ++progress_.tracks_done;
        if (p_.on_progress) p_.on_progress(progress_);
    }
    void fail(const ExtractItem& item, const std::string& reason) {
        std::lock_guard g(mu_);
        spdlog::warn("skipping track {}: {}", item.track_id, reason);
        report_.failed.push_back({item.track_id, item.audio_path, reason});
        track_done();
    }

    const std::vector<ExtractItem> items_;
    const FeatureStore& store_;
    const Encoder& encoder_;
    const std::vector<float> encoder_digest_;  // of this build of the encoder; empty: not a built-in one
    const ExtractParams& p_;
    const std::size_t capacity_;
    std::mutex mu_;
    std::condition_variable not_full_, not_empty_;
    std::deque<Prepared> queue_;
    std::atomic<std::size_t> next_{0};
    int workers_left_;
    ExtractReport report_;
    ExtractProgress progress_;
};

}  // namespace

ExtractReport extract_tracks(const std::vector<ExtractItem>& all_items, const FeatureStore& store, const Encoder& encoder,
                             const ExtractParams& p) {
    if (p.workers < 1 || p.threads < 1 || p.batch_size < 1)
        throw_usage("workers, threads and batch size must be ≥ 1 (got {}, {}, {})", p.workers, p.threads, p.batch_size);
    const auto start = std::chrono::steady_clock::now();
    std::vector<ExtractItem> items;
    for (const auto& it : all_items)
        if (p.shard.contains(it.track_id)) items.push_back(it);
    store.create();
    ExtractReport report = ExtractionRun(std::move(items), store, encoder, p).run();
    report.elapsed_sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return report;
}

}  // namespace mess
