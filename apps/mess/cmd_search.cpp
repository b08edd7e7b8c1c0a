// mess index build, mess search, mess publish, mess pull.
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "cli.hpp"
#include "mess/artifacts.hpp"
#include "mess/model.hpp"
#include "mess/probe.hpp"
#include "mess/search.hpp"
#include "mess/server.hpp"

namespace mess::cli {
namespace fs = std::filesystem;
namespace {

struct BuildOptions {
    DatasetChoice source;
    std::string kind = "track", layer = "default", factory = "Flat", name, out, results;
    bool no_layers = false, no_media = false;
};

int run_build(const Context& ctx, const BuildOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    BuildParams p;
    p.kind = parse_index_kind(o.kind);
    p.layer_spec = LayerSpec::parse(o.layer);
    p.factory = o.factory;
    p.keep_layers = !o.no_layers;
    Progress progress("index " + ds.id() + " (tracks)", 0);
    p.on_progress = progress_sink(progress);
    std::vector<std::string> skipped;
    SearchIndex idx = build_index(ds, p, &skipped);
    progress.finish();
    for (const auto& t : skipped) spdlog::warn("track {} has no features; not indexed", t);
    // Aspects resolved from the dataset's probing results travel in the manifest (aspect search needs them).
    nlohmann::json extra = {{"feature_source_dir", ds.features().root().string()}, {"skipped_tracks", skipped}};
    const fs::path results = o.results.empty() ? default_results_path(ctx.config.data_root.value, ds.id(), ProbeLevel::track) : fs::path(o.results);
    if (fs::exists(results)) {
        AspectParams all;
        all.min_r2 = -std::numeric_limits<double>::infinity();
        nlohmann::json aspects = nlohmann::json::array();
        for (const auto& a : resolve_aspects(read_discovery_results(results), all)) aspects.push_back(a.to_json());
        extra["aspects"] = std::move(aspects);
        extra["probing_results"] = results.string();
    } else if (!o.results.empty()) {
        throw_input("no probing results at {}", results.string());
    }
    const std::string name = o.name.empty() ? std::string(to_string(p.kind)) + "_index" : o.name;
    const fs::path root = o.out.empty() ? ctx.config.data_root.value / "indices" : fs::path(o.out);
    // Audio locations and waveform peaks for the server and web UI.
    std::map<std::string, std::string> files;
    if (!o.no_media) {
        std::vector<std::string> ids;
        for (const auto& r : idx.records)
            if (ids.empty() || ids.back() != r.track_id) ids.push_back(r.track_id);
        ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
        Progress media_progress("media " + ds.id() + " (waveforms)", static_cast<std::int64_t>(ids.size()));
        std::vector<std::string> no_media;
        files[kMediaFile] = build_media(ds, ids, &no_media, progress_sink(media_progress));
        media_progress.finish();
        for (const auto& t : no_media) spdlog::warn("no waveform for {}", t);
    }
    const fs::path dir = write_artifact(idx, root, name, extra, files);
    const auto m = nlohmann::json::parse(read_file(dir / "manifest.json"));
    if (json) print_json({{"artifact_dir", dir.string()}, {"manifest", m}});
    else fmt::print("{} index over {} {} ({} dims, {}) → {}\n", to_string(p.kind), idx.size(), p.kind == IndexKind::track ? "tracks" : "clips",
                    idx.index.dimension(), o.factory, dir.string());
    return 0;
}

struct SearchOptions {
    std::string index, name, track, clip, audio, aspect, aspects, exclude_same, model;
    std::vector<std::string> filters;
    double start = -1, min_r2 = 0.5;
    int k = 10, nprobe = 0, ef_search = 0, threads = 0;
    bool group = false, exact = false, no_r2_scaling = false;
};

std::string clock_time(double sec) {
    const int s = static_cast<int>(std::floor(sec));
    return fmt::format("{}:{:02d}.{}", s / 60, s % 60, static_cast<int>((sec - s) * 10));
}

int run_search(const Context& ctx, const SearchOptions& o, bool json) {
    if (o.index.empty()) throw_usage("give --index DIR (an artifact directory, or a root with --name)");
    const int sources = !o.track.empty() + !o.clip.empty() + !o.audio.empty();
    if (sources != 1)
        throw_usage("give exactly one query: --track ID [--start SEC], --clip ID, or --audio FILE [--start SEC]");
    const LoadedArtifact art = load_artifact(resolve_artifact_dir(o.index, o.name));
    const SearchIndex& idx = art.index;
    QueryOptions q;
    if (o.k < 1) throw_usage("--k must be at least 1");
    q.k = static_cast<std::size_t>(o.k);
    for (const auto& f : o.filters) q.filters.push_back(Filter::parse(f));
    q.exclude_same = o.exclude_same;
    q.search.nprobe = o.nprobe;
    q.search.ef_search = o.ef_search;
    q.exact = o.exact;
    std::string aspect_label;
    if (!o.aspect.empty() || !o.aspects.empty()) {
        if (!o.aspect.empty() && !o.aspects.empty()) throw_usage("give --aspect or --aspects, not both");
        std::vector<ResolvedAspect> resolved;
        for (const auto& a : art.manifest.value("aspects", nlohmann::json::array())) resolved.push_back(resolved_aspect_from_json(a));
        if (resolved.empty()) throw_usage("this index has no resolved aspects: run mess probe on its dataset, then rebuild the index");
        aspect_label = o.aspect.empty() ? o.aspects : o.aspect;
        q.layer_weights = aspect_layer_weights(resolved, parse_aspect_request(aspect_label), idx.layers, o.min_r2, !o.no_r2_scaling);
    }
    std::vector<Hit> hits;
    PassageQuery pq;
    pq.group_by_track = o.group;
    pq.options = q;
    if (!o.audio.empty()) {
        auto encoder = open_index_encoder(idx, o.model);
        const Audio audio = load_audio(o.audio, encoder->info().sampling_rate);
        std::vector<float> stack = with_context(o.audio, [&] {
            return embed_query_stack(*encoder, audio, std::max(0.0, o.start), idx.kind, o.threads > 0 ? o.threads : ctx.config.workers.value);
        });
        const auto L = static_cast<std::size_t>(encoder->info().layers), D = stack.size() / L;
        std::vector<float> query = q.layer_weights.empty() ? idx.layer_spec.apply(stack.data(), L, D) : stack;
        hits = search_vector(idx, std::move(query), q, idx.kind == IndexKind::clip ? &pq : nullptr);
    } else if (idx.kind == IndexKind::track) {
        if (!o.clip.empty() || o.start >= 0) throw_usage("this is a track index: query it with --track ID (passages need a clip index)");
        hits = similar_tracks(idx, o.track, q);
    } else {
        pq.clip_id = o.clip;
        pq.track_id = o.track;
        pq.start_sec = std::max(0.0, o.start);
        hits = similar_passages(idx, pq);
    }
    nlohmann::json out = nlohmann::json::array();
    for (std::size_t i = 0; i < hits.size(); ++i) {
        const auto& r = *hits[i].record;
        nlohmann::json h = {{"rank", i + 1}, {"score", hits[i].score}, {"id", r.id}, {"track_id", r.track_id}, {"dataset_id", r.dataset_id},
                            {"recording_id", r.recording_id}, {"work_id", r.work_id}, {"split", r.split}, {"metadata", r.metadata}};
        if (idx.kind == IndexKind::clip) {
            h["start_sec"] = r.start_sec;
            h["end_sec"] = r.end_sec;
            h["segment_idx"] = r.segment_idx;
        }
        out.push_back(std::move(h));
    }
    if (json) {
        print_json({{"index", art.dir.string()}, {"version_id", art.version_id()}, {"kind", to_string(idx.kind)},
                    {"aspects", aspect_label}, {"layer_weights", q.layer_weights}, {"results", out}});
        return 0;
    }
    if (hits.empty()) fmt::print("no results (filters too strict, or the index holds only the query)\n");
    for (const auto& h : out) {
        std::string when = idx.kind == IndexKind::clip ? fmt::format("  {}–{}", clock_time(h["start_sec"].get<double>()), clock_time(h["end_sec"].get<double>())) : "";
        fmt::print("{:>3}. {:6.3f}  {}{}\n", h["rank"].get<std::size_t>(), h["score"].get<double>(), h["id"].get<std::string>(), when);
    }
    return 0;
}

}  // namespace

void register_search(CLI::App& app, Context& ctx) {
    auto* index = app.add_subcommand("index", "Search indexes over extracted features");
    index->require_subcommand(1);
    auto* build = index->add_subcommand("build",
        "Builds a track index (one vector per track, from aggregated views) or a clip index (one per 5-s\n"
        "window, from segment views, with true start/end times) and writes a versioned artifact directory:\n"
        "index.faiss (FAISS, inner product over L2-normalised vectors = cosine), manifest.json, records,\n"
        "checksums.json. Probing results of the dataset, when present, are resolved into aspects for\n"
        "aspect search.");
    static BuildOptions b;
    add_dataset_options(build, b.source);
    build->add_option("--kind", b.kind, "track | clip")->capture_default_str();
    build->add_option("--layer", b.layer, "Vector per row: default (the model's: MERT middle, dsp overall), a layer number, middle,\nflatten, or weights:w0,w1,...")->capture_default_str();
    build->add_option("--factory", b.factory, "FAISS factory: Flat (exact), IVF256,Flat, HNSW32, IVF256,PQ16, ...")->capture_default_str();
    build->add_option("--name", b.name, "Artifact name (default: track_index / clip_index)");
    build->add_option("--out", b.out, "Artifact root (default: <data root>/indices)");
    build->add_option("--results", b.results, "Probing results for aspects (default: the dataset's, when present)");
    build->add_flag("--no-media", b.no_media, "Do not store audio locations and waveform peaks (the server then plays nothing)");
    build->add_flag("--no-layers", b.no_layers, "Do not store per-layer vectors (smaller; no aspect search)");
    bool& bjson = add_json_flag(build);
    build->callback([&ctx, &bjson] { ctx.run = [&ctx, &bjson] { return run_build(ctx, b, bjson); }; });

    auto* search = app.add_subcommand("search",
        "Similar tracks (track index) or similar passages (clip index) to a track, a window (--clip, or\n"
        "--track with --start), or an outside audio file (--audio, embedded with the index's model).\n"
        "Passage search excludes the query window and its overlapping neighbours and de-duplicates hits\n"
        "closer than a window on one track. --aspect/--aspects rank by musical aspects through the layers\n"
        "probing validated (e.g. --aspects dynamics=0.7,articulation=0.3).");
    static SearchOptions s;
    search->add_option("--index", s.index, "Artifact directory, or an artifact root with --name")->required();
    search->add_option("--name", s.name, "Artifact name under --index (newest version)");
    search->add_option("--track", s.track, "Query track id");
    search->add_option("--clip", s.clip, "Query clip id <dataset>:<track>:<00000>");
    search->add_option("--start", s.start, "Query window start in seconds (with --track or --audio)");
    search->add_option("--audio", s.audio, "Query by an audio file not in the index");
    search->add_option("--model", s.model, "Model for --audio: a directory, dsp or mfcc-chroma (default: the index's)");
    search->add_option("--aspect", s.aspect, "One aspect, e.g. dynamics");
    search->add_option("--aspects", s.aspects, "Weighted aspects, e.g. dynamics=0.7,articulation=0.3");
    search->add_option("--min-r2", s.min_r2, "Aspects below this probe R² are not available")->capture_default_str();
    search->add_flag("--no-r2-scaling", s.no_r2_scaling, "Do not scale aspect weights by their R²");
    search->add_option("--k", s.k, "Results")->capture_default_str();
    search->add_option("--filter", s.filters, "key=value on metadata (dataset, split, composer, ...); repeatable");
    search->add_option("--exclude-same", s.exclude_same, "Drop hits sharing the query's track | recording | work");
    search->add_flag("--group-tracks", s.group, "Passages: best passage per track");
    search->add_option("--nprobe", s.nprobe, "IVF lists to visit");
    search->add_option("--ef-search", s.ef_search, "HNSW candidate list size");
    search->add_flag("--exact", s.exact, "Exact scan even on an approximate index");
    search->add_option("--threads", s.threads, "Threads for embedding --audio");
    bool& sjson = add_json_flag(search);
    search->callback([&ctx, &sjson] { ctx.run = [&ctx, &sjson] { return run_search(ctx, s, sjson); }; });

    auto* publish = app.add_subcommand("publish",
        "Uploads an artifact directory to s3://bucket/prefix or a directory: every object is uploaded and\n"
        "verified (HEAD size and ETag = MD5), then <prefix>/<name>/latest.json is written last.\n"
        "S3: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL (local servers).");
    static std::string pub_index, pub_to;
    publish->add_option("--index", pub_index, "Artifact directory")->required();
    publish->add_option("--to", pub_to, "s3://bucket/prefix or a directory")->required();
    bool& pjson = add_json_flag(publish);
    publish->callback([&ctx, &pjson] {
        ctx.run = [&pjson] {
            const PublishReport r = publish_artifact(resolve_artifact_dir(pub_index), pub_to);
            if (pjson) print_json({{"artifact_prefix", r.artifact_prefix}, {"version_id", r.version_id}, {"objects", r.objects}});
            else fmt::print("published {} ({} objects) → {}\n", r.version_id, r.objects.size(), r.artifact_prefix);
            return 0;
        };
    });

    auto* pull = app.add_subcommand("pull",
        "Downloads the version latest.json names, verifying sizes, SHA-256 and the version id before it is\n"
        "moved into place under <dest>/<name>/<stamp>/ (reused when already there).");
    static std::string pull_from, pull_name, pull_to;
    pull->add_option("--from", pull_from, "s3://bucket/prefix or a directory")->required();
    pull->add_option("--name", pull_name, "Artifact name (track_index, clip_index, ...)")->required();
    pull->add_option("--to", pull_to, "Destination root (default: <data root>/indices)");
    bool& ljson = add_json_flag(pull);
    pull->callback([&ctx, &ljson] {
        ctx.run = [&ctx, &ljson] {
            const fs::path dest = pull_artifact(pull_from, pull_name, pull_to.empty() ? ctx.config.data_root.value / "indices" : fs::path(pull_to));
            const auto m = nlohmann::json::parse(read_file(dest / "manifest.json"));
            if (ljson) print_json({{"artifact_dir", dest.string()}, {"version_id", m["artifact_version_id"]}});
            else fmt::print("pulled {} → {}\n", m["artifact_version_id"].get<std::string>(), dest.string());
            return 0;
        };
    });
}

}  // namespace mess::cli
