#include <chrono>
#include <cstdlib>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"
#include "mess/catalog.hpp"
#include "mess/extract.hpp"

namespace mess::cli {
namespace {

struct ExtractOptions {
    DatasetChoice source;
    std::string model_dir, feature_level = "segments", raw_dtype = "float32", shard, precision = "fp32";
    int threads = 0, shard_count = 0;
    bool force = false;
    std::uint64_t split_seed = 42;
};

// --shard i/N, else the index a Kubernetes Indexed Job or a Slurm array gives, with --shard-count N.
Shard resolve_shard(const ExtractOptions& o) {
    if (!o.shard.empty()) return Shard::parse(o.shard);
    for (const char* var : {"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"}) {
        const char* v = std::getenv(var);
        if (!v || !*v) continue;
        int count = o.shard_count;
        if (count == 0 && std::string(var) == "SLURM_ARRAY_TASK_ID")
            if (const char* c = std::getenv("SLURM_ARRAY_TASK_COUNT")) count = std::atoi(c);
        if (count < 1) throw_usage("{} is set: give the number of shards with --shard-count N", var);
        Shard s = Shard::parse(fmt::format("{}/{}", v, count));
        spdlog::info("shard {}/{} (from {})", s.index, s.count, var);
        return s;
    }
    return {};
}

ClipIndex write_clips(const Dataset& ds, const MetadataTable& meta, std::uint64_t seed) {
    SplitParams sp;
    sp.seed = seed;
    ClipIndex clips = build_clip_index(ds, meta, sp);
    write_clip_index(ds.clip_index_path(), clips);
    return clips;
}

// Each track's extraction state in the catalog, in one transaction: failed (with the reason), done when
// complete at the run's level, else skipped (another run held its lock). Attempts count in the database, so
// concurrent runs never lose an update.
// Returns how many of the shard's tracks are done.
std::int64_t record_states(RunRecord& run, const Dataset& ds, const std::vector<ExtractItem>& items, const ExtractReport& r,
                           const ExtractParams& p, const std::string& precision) {
    std::map<std::string, std::string> failed;
    for (const auto& f : r.failed) failed[f.track_id] = f.reason;
    const FeatureStore store = ds.features();
    std::int64_t done = 0;
    run.catalog().transaction([&] {
        done = 0;
        for (const auto& it : items) {
            if (!p.shard.contains(it.track_id)) continue;
            db::ExtractionRow s{.dataset_id = ds.id(), .track_id = it.track_id, .model = p.model_label, .precision = precision,
                                .run_id = run.id()};
            const auto f = failed.find(it.track_id);
            s.status = f != failed.end() ? "failed" : store.is_complete(it.track_id, p.level) ? "done" : "skipped";
            if (f != failed.end()) s.error = f->second;
            done += s.status == "done" ? 1 : 0;
            run.catalog().set_extraction(s);
        }
    });
    return done;
}

// One attempt at one shard (i/N; an unsharded run is shard 0/1) in the catalog's extraction_shards: running
// while it runs, then done (every track of the shard complete) or failed with the reason; failed too when
// an error stops the command. An earlier attempt the catalog still shows running never recorded its end
// (killed, node lost): its run is closed as failed, naming this one.
class ShardAttempt {
public:
    ShardAttempt(RunRecord& run, db::ShardRow row) : run_(run), row_(std::move(row)) {
        const std::string previous = run_.catalog().start_shard(row_);
        const auto old = previous.empty() ? std::nullopt : run_.catalog().run(previous);
        if (!old || old->status != "running") return;
        const std::string why = fmt::format("interrupted: shard {}/{} was started again by run {} before this run recorded "
                                            "its end (killed or lost)", row_.index, row_.count, run_.id());
        run_.catalog().finish_run(previous, "failed", old->metrics, old->outputs, why);
        spdlog::warn("run {}: {}", previous, why);
    }
    ~ShardAttempt() {
        if (finished_) return;
        row_.status = "failed";
        row_.error = "stopped by an error (see the command's output)";
        try {
            run_.catalog().finish_shard(row_);
        } catch (const Error& e) {
            spdlog::warn("shard {}/{}: could not record its end: {}", row_.index, row_.count, e.what());
        }
    }
    ShardAttempt(const ShardAttempt&) = delete;
    ShardAttempt& operator=(const ShardAttempt&) = delete;
    void finish(const ExtractReport& r, std::int64_t done) {
        row_.processed = r.processed;
        row_.cached = r.cached;
        row_.failed = static_cast<std::int64_t>(r.failed.size());
        row_.locked = r.locked;
        row_.windows = r.windows;
        row_.elapsed_s = r.elapsed_sec;
        row_.status = done == row_.tracks ? "done" : "failed";
        if (done != row_.tracks)
            row_.error = fmt::format("{} of {} track(s) not complete: {} failed{}, {} locked by another run", row_.tracks - done,
                                     row_.tracks, r.failed.size(),
                                     r.failed.empty() ? "" : fmt::format(" (first {}: {})", r.failed[0].track_id, r.failed[0].reason),
                                     r.locked);
        if (!run_.catalog().finish_shard(row_))
            spdlog::warn("shard {}/{}: a later attempt started while this run went on; the catalog keeps that one's state",
                         row_.index, row_.count);
        finished_ = true;
    }

private:
    RunRecord& run_;
    db::ShardRow row_;
    bool finished_ = false;
};

// The run's own report, extract_report.<run id>.json (never overwritten by a concurrent run), and the
// latest run's copy at the usual name (extract_report[.shard<i>of<N>].json).
std::filesystem::path write_reports(const Dataset& ds, const ExtractParams& p, const RunRecord& run, const nlohmann::json& j) {
    const std::filesystem::path root = ds.features().root();
    const std::filesystem::path own = root / fmt::format("extract_report.{}.json", run.id());
    write_file_atomic(own, j.dump(2) + "\n");
    write_file_atomic(root / (p.shard.count > 1 ? fmt::format("extract_report.shard{}of{}.json", p.shard.index, p.shard.count)
                                                : std::string("extract_report.json")), j.dump(2) + "\n");
    return own;
}

ExtractParams extract_params(const Context& ctx, const ExtractOptions& o) {
    ExtractParams p;
    p.level = parse_feature_level(o.feature_level);
    if (o.raw_dtype != "float32" && o.raw_dtype != "float16") throw_usage("--raw-dtype must be float32 or float16");
    p.raw_float16 = o.raw_dtype == "float16";
    p.workers = ctx.config.workers.value;
    p.threads = o.threads > 0 ? o.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    p.batch_size = ctx.config.batch_size.value;
    p.force = o.force;
    p.shard = resolve_shard(o);
    p.model_label = o.model_dir;
    return p;
}

void print_extract(const std::string& dataset, const ExtractReport& r, const nlohmann::json& j) {
    fmt::print("extract {}: {} processed, {} recomputed (source changed), {} recomputed (corrupt), {} cached, "
               "{} locked by another run, {} failed; {} windows in {:.1f} s ({:.2f} windows/s, model busy {:.0f}% of the time)\n",
               dataset, r.processed, r.recomputed_because(TrackState::source_changed), r.recomputed_because(TrackState::corrupt),
               r.cached, r.locked, r.failed.size(), r.windows, r.elapsed_sec, r.windows_per_sec(), 100.0 * r.model_busy_share());
    for (const auto& c : r.recomputed) fmt::print("  {}: recomputed: {}: {}\n", c.track_id, to_string(c.cause), c.reason);
    for (const auto& f : r.failed) fmt::print("  failed {}: {}\n", f.track_id, f.reason);
    for (const auto& t : r.silent) fmt::print("  silent {}: its audio is digital silence, so its features say nothing\n", t);
    fmt::print("report {}\nclip index {} ({} clips)\n", j["report_path"].get<std::string>(), j["clip_index_path"].get<std::string>(),
               j["num_clips"].get<std::size_t>());
}

ExtractReport run_tracks(const std::vector<ExtractItem>& items, const Dataset& ds, const Encoder& encoder, ExtractParams& p,
                         std::int64_t in_shard) {
    Progress progress("extract " + ds.id() + " (tracks)", in_shard);
    std::int64_t last = 0;
    const auto t0 = std::chrono::steady_clock::now();
    p.on_progress = [&](const ExtractProgress& pr) {
        double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        progress.set_note(fmt::format("{} windows, {:.2f} windows/s", pr.windows_done, secs > 0 ? static_cast<double>(pr.windows_done) / secs : 0.0));
        progress.advance(pr.tracks_done - last);
        last = pr.tracks_done;
    };
    ExtractReport r = extract_tracks(items, ds.features(), encoder, p);
    progress.finish();
    return r;
}

int run_extract(const Context& ctx, const ExtractOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    auto tracks = ds.tracks();
    if (!std::filesystem::exists(ds.metadata_path())) ds.metadata().write(ds.metadata_path());  // the import/export form
    ExtractParams p = extract_params(ctx, o);
    RunRecord run(ctx, "extract", {{"dataset", ds.id()}, {"model", o.model_dir}, {"precision", o.precision},
                                   {"feature_level", o.feature_level}, {"shard", fmt::format("{}/{}", p.shard.index, p.shard.count)},
                                   {"force", o.force}});
    const MetadataTable meta = use_catalog_metadata(run.catalog(), ds);
    std::vector<ExtractItem> items;
    for (const auto& t : tracks) items.push_back({t.track_id, t.audio_path});

    LoadParams lp;
    lp.precision = parse_precision(o.precision);
    lp.device = parse_device(ctx.config.device.value);
    auto encoder = open_encoder(o.model_dir, lp);
    std::int64_t in_shard = 0;
    for (const auto& it : items) in_shard += p.shard.contains(it.track_id) ? 1 : 0;
    spdlog::info("extract {}: {} track(s){} from {}, model {} ({}, {}), views {}", ds.id(), in_shard,
                 p.shard.count > 1 ? fmt::format(" in shard {}/{}", p.shard.index, p.shard.count) : "",
                 ds.audio_dir().string(), o.model_dir, encoder->info().precision, encoder->info().device, describe_views(p.level));
    ShardAttempt attempt(run, {.dataset_id = ds.id(), .model = p.model_label, .precision = encoder->info().precision,
                               .index = p.shard.index, .count = p.shard.count, .status = "running", .run_id = run.id(),
                               .tracks = in_shard});
    const ExtractReport r = run_tracks(items, ds, *encoder, p, in_shard);

    nlohmann::json j = r.to_json();
    j["dataset"] = ds.id();
    j["model"] = o.model_dir;
    j["precision"] = encoder->info().precision;
    j["device"] = encoder->info().device;
    j["feature_level"] = o.feature_level;
    j["shard"] = fmt::format("{}/{}", p.shard.index, p.shard.count);
    j["run_id"] = run.id();
    const std::filesystem::path report_path = write_reports(ds, p, run, j);
    ClipIndex clips = write_clips(ds, meta, o.split_seed);
    attempt.finish(r, record_states(run, ds, items, r, p, encoder->info().precision));
    record_clips(run.catalog(), ds.id(), clips);
    for (const auto& out : {ds.features().root(), report_path, ds.clip_index_path()}) run.add_output(out);
    run.finish(j, r.failed.empty() ? "ok" : "failed", r.failed.empty() ? "" : fmt::format("{} track(s) failed", r.failed.size()));
    j["report_path"] = report_path.string();
    j["clip_index_path"] = ds.clip_index_path().string();
    j["num_clips"] = clips.size();
    if (json) print_json(j);
    else print_extract(ds.id(), r, j);
    return r.failed.empty() ? 0 : 2;
}

}  // namespace

void register_extract(CLI::App& app, Context& ctx) {
    auto* cmd = app.add_subcommand(
        "extract",
        "Extract features for a dataset: decode (worker threads) → 5-s windows → model (batched) →\n"
        "embeddings/<dataset>-emb/{raw,segments,aggregated}/<track>.npy + meta/<track>.json sidecars,\n"
        "then metadata/<dataset>_clip_index.csv. Complete tracks are skipped (resume after a crash);\n"
        "a track whose audio changed (size or modification time) or whose files are damaged is recomputed,\n"
        "and the report says which and why. Concurrent runs share the work safely; a bad file is reported\n"
        "and skipped (exit 2).\n"
        "Decode workers: --workers / MESS_WORKERS; batch: --batch-size / MESS_BATCH_SIZE.");
    static ExtractOptions o;
    add_dataset_options(cmd, o.source);
    cmd->add_option("--model", o.model_dir, "Model: a Hugging Face directory, or dsp / mfcc-chroma (built in, no weights)")->required();
    cmd->add_option("--feature-level", o.feature_level,
                    "Views to keep: segments (+aggregated) | aggregated | all (adds raw [S,L,T,D], ~15 MB per window)")
        ->capture_default_str()->check(CLI::IsMember({"all", "segments", "aggregated"}));
    cmd->add_option("--raw-dtype", o.raw_dtype, "float32 | float16 (halves raw)")->capture_default_str()
        ->check(CLI::IsMember({"float32", "float16"}));
    cmd->add_option("--threads", o.threads, "Inference threads (default: CPU cores)");
    cmd->add_option("--precision", o.precision,
                    "fp32 (exact) | bf16 (MERT only: about 1.8x faster on AVX512-BF16 CPUs, per-layer cosine to fp32 ≥ 0.999)\n"
                    "| fp16 (--device cuda only). Recorded in each sidecar; tracks of another precision are refused until --force")
        ->capture_default_str()->check(CLI::IsMember({"fp32", "bf16", "fp16"}));
    cmd->add_flag("--force", o.force, "Recompute tracks that are already complete");
    cmd->add_option("--shard", o.shard, "Process shard i of N (i/N): a deterministic 1/N of the tracks");
    cmd->add_option("--shard-count", o.shard_count, "N when the shard index comes from JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID");
    cmd->add_option("--split-seed", o.split_seed, "Seed of the train/val/test assignment of recordings")->capture_default_str();
    bool& json = add_json_flag(cmd);
    cmd->callback([&ctx, &json] { ctx.run = [&ctx, &json] { return run_extract(ctx, o, json); }; });

    auto* clips = app.add_subcommand("clips", "Rebuild metadata/<dataset>_clip_index.csv from the extraction sidecars\n"
                                              "(e.g. after sharded runs on several machines)");
    static ExtractOptions c;
    add_dataset_options(clips, c.source);
    clips->add_option("--split-seed", c.split_seed, "Seed of the train/val/test assignment")->capture_default_str();
    bool& clips_json = add_json_flag(clips);
    clips->callback([&ctx, &clips_json] {
        ctx.run = [&ctx, &clips_json] {
            Dataset ds = open_dataset(ctx, c.source);
            ClipIndex idx = write_clips(ds, use_catalog_metadata(*open_catalog(ctx), ds), c.split_seed);
            std::map<std::string, int> per_split;
            for (const auto& clip : idx) per_split[clip.split]++;
            if (clips_json) print_json({{"clip_index_path", ds.clip_index_path().string()}, {"num_clips", idx.size()}, {"splits", per_split}});
            else fmt::print("{}: {} clips (train {}, val {}, test {})\n", ds.clip_index_path().string(), idx.size(),
                            per_split["train"], per_split["val"], per_split["test"]);
            return 0;
        };
    });
}

}  // namespace mess::cli
