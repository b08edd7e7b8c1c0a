// mess index build, mess search, mess publish, mess pull.
#include <cmath>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "catalog_cli.hpp"
#include "mess/artifacts.hpp"
#include "mess/extract.hpp"
#include "mess/model.hpp"
#include "mess/probe.hpp"
#include "mess/search.hpp"
#include "mess/server.hpp"

namespace mess::cli {
namespace fs = std::filesystem;
namespace {

struct BuildOptions {
    DatasetChoice source;
    std::string kind = "track", layer = "default", factory = "Flat", index_type = "flat", name, out, results, aspect_models;
    std::size_t rerank = 0, nlist = 0;
    std::string shard;
    bool no_layers = false, no_media = false, no_aspect_models = false, no_structure = false;
};

int run_build(const Context& ctx, const BuildOptions& o, bool json) {
    Dataset ds = open_dataset(ctx, o.source);
    ArtifactBuildParams p;
    p.index.kind = parse_index_kind(o.kind);
    p.index.layer_spec = LayerSpec::parse(o.layer);
    p.index.factory = o.factory;
    p.index.index_type = o.index_type;
    p.index.rerank = o.rerank;
    p.index.nlist = o.nlist;
    nlohmann::json shard_note;
    if (!o.shard.empty()) {  // one part of a split by track (the same rule as mess extract --shard)
        const Shard shard = Shard::parse(o.shard);
        p.index.track_filter = [shard](const std::string& id) { return shard.contains(id); };
        p.extra_manifest["shard"] = fmt::format("{}/{}", shard.index, shard.count);
    }
    p.index.keep_layers = !o.no_layers;
    p.root = o.out.empty() ? ctx.config.data_root.value / "indices" : fs::path(o.out);
    p.name = o.name;
    p.probing_results = o.results;
    p.media = !o.no_media;
    p.aspect_models = o.aspect_models;
    p.default_aspect_models = !o.no_aspect_models;
    RunRecord run(ctx, "index-build", {{"dataset", ds.id()}, {"kind", o.kind}, {"layer", o.layer}, {"factory", o.factory},
                                       {"name", o.name}, {"media", p.media}});
    use_catalog_metadata(run.catalog(), ds);  // the catalog's titles and works reach the index's track records
    p.structure = !o.no_structure;
    Progress progress("index " + ds.id() + " (tracks)", 0);
    p.index.on_progress = progress_sink(progress);
    Progress media_progress("media " + ds.id() + " (waveforms)", 0);
    p.on_media_progress = progress_sink(media_progress);
    Progress structure_progress("structure " + ds.id() + " (tracks)", 0);
    p.on_structure_progress = progress_sink(structure_progress);
    const ArtifactBuildReport r = build_artifact(ds, p);
    progress.finish();
    if (p.media) media_progress.finish();
    if (p.structure) structure_progress.finish();
    for (const auto& t : r.structure.skipped) spdlog::warn("no structure for {}", t);
    for (const auto& t : r.skipped_tracks) spdlog::warn("track {} has no features; not indexed", t);
    for (const auto& t : r.no_media) spdlog::warn("no waveform for {}", t);
    if (!r.aspect_models_refused.empty()) spdlog::warn("shipped aspect models not applied: {}", r.aspect_models_refused);
    if (!r.aspect_models.empty()) spdlog::info("learned aspect models from {}", r.aspect_models.string());
    const auto m = nlohmann::json::parse(read_file(r.dir / "manifest.json"));
    run.add_output(r.dir);
    run.finish({{"rows", r.rows}, {"dimension", r.dimension}, {"skipped_tracks", r.skipped_tracks.size()}});
    if (json) print_json({{"artifact_dir", r.dir.string()}, {"manifest", m}});
    else fmt::print("{} index over {} {} ({} dims, {}) → {}\n", to_string(p.index.kind), r.rows,
                    p.index.kind == IndexKind::track ? "tracks" : "clips", r.dimension, m.value("factory_string", o.factory), r.dir.string());
    return 0;
}

struct SearchOptions {
    std::string index, name, track, clip, audio, aspect, aspects, unlike, exclude_same, model, text, rerank, role;
    std::size_t rerank_candidates = 50, best_k = 3;
    int context = 0;
    std::vector<std::string> filters, more, less;
    double start = -1, min_r2 = 0.5;
    int k = 10, nprobe = 0, ef_search = 0, threads = 0;
    bool group = false, exact = false, no_r2_scaling = false, same_moment = false;
};

std::string clock_time(double sec) {
    const int s = static_cast<int>(std::floor(sec));
    return fmt::format("{}:{:02d}.{}", s / 60, s % 60, static_cast<int>((sec - s) * 10));
}

SearchRequest search_request(const Context& ctx, const SearchOptions& o) {
    const int sources = !o.track.empty() + !o.clip.empty() + !o.audio.empty();
    if (sources != 1)
        throw_usage("give exactly one query: --track ID [--start SEC], --clip ID, or --audio FILE [--start SEC]");
    if (o.k < 1) throw_usage("--k must be at least 1");
    if (!o.aspect.empty() && !o.aspects.empty()) throw_usage("give --aspect or --aspects, not both");
    SearchRequest r;
    r.track_id = o.track;
    r.clip_id = o.clip;
    if (o.start >= 0) r.start_sec = o.start;
    r.options.k = static_cast<std::size_t>(o.k);
    for (const auto& f : o.filters) r.options.filters.push_back(Filter::parse(f));
    r.options.exclude_same = parse_same_scope(o.exclude_same);
    r.options.search.nprobe = o.nprobe;
    r.options.search.ef_search = o.ef_search;
    r.options.exact = o.exact;
    if (!o.aspect.empty() || !o.aspects.empty()) r.aspects = parse_aspect_request(o.aspect.empty() ? o.aspects : o.aspect);
    if (!o.unlike.empty()) r.unlike = parse_aspect_request(o.unlike);
    for (const auto& [list, sign] : {std::pair{&o.more, 1}, std::pair{&o.less, -1}})
        for (const auto& a : *list)
            if (!r.more_less.emplace(a, sign).second) throw_usage("--more/--less {} given twice", a);
    r.text = o.text;
    if (!o.rerank.empty()) r.rerank = RerankParams{parse_reduction(o.rerank), o.rerank_candidates, o.best_k};
    r.context = o.context;
    r.min_r2 = o.min_r2;
    r.scale_by_r2 = !o.no_r2_scaling;
    r.group_by_track = o.group;
    if (!o.role.empty()) r.role = parse_role(o.role);
    r.threads = o.threads > 0 ? o.threads : ctx.config.workers.value;
    return r;
}

// "  [modulation at 1:02.5, +2]"
std::string role_text(const nlohmann::json& role) {
    std::string out = fmt::format("  [{} at {}", role["name"].get<std::string>(), clock_time(role["time"].get<double>()));
    if (role.contains("interval")) out += fmt::format(", {:+d}", role["interval"].get<int>());
    return out + "]";
}

void print_hits(const SearchResult& result, const nlohmann::json& hits) {
    if (hits.empty()) fmt::print("no results (filters too strict, or the index holds only the query)\n");
    for (const auto& h : hits) {
        std::string when = result.kind == IndexKind::clip
                               ? fmt::format("  {}–{}", clock_time(h["start_sec"].get<double>()), clock_time(h["end_sec"].get<double>()))
                               : "";
        if (h.contains("role")) when += role_text(h["role"]);
        if (h.contains("aligned_sec")) when += fmt::format("  (the query's moment: {})", clock_time(h["aligned_sec"].get<double>()));
        std::string why;
        const nlohmann::json scores = h.value("aspects", nlohmann::json::object());
        for (const auto& [aspect, cos] : scores.items())
            why += fmt::format("{}{} {:.2f}", why.empty() ? "  [" : ", ", aspect, cos.get<double>());
        fmt::print("{:>3}. {:6.3f}  {}{}{}\n", h["rank"].get<std::size_t>(), h["score"].get<double>(), h["id"].get<std::string>(), when,
                   why.empty() ? "" : why + "]");
    }
}

// "This moment in every other performance": the query's second aligned into each other performance of its
// work; passage hits on those performances carry the aligned second ("aligned_sec").
nlohmann::json moments_of(const Context& ctx, const LoadedArtifact& art, const SearchOptions& o, nlohmann::json& hits) {
    if (o.track.empty()) throw_usage("--same-moment needs --track (and --start: the moment)");
    const nlohmann::json media = read_media(art.dir);
    const auto locate = [&](const std::string& id) {
        if (!media.contains(id)) throw_input("the index holds no audio location for track '{}' (built with --no-media?)", id);
        return media_audio_path(media[id], ctx.config.data_root.value);
    };
    const auto moments = same_moment(art.index, o.track, std::max(0.0, o.start), locate);
    for (auto& h : hits)
        for (const auto& m : moments)
            if (m.error.empty() && h.value("track_id", "") == m.track_id) h["aligned_sec"] = m.time_sec;
    return same_moment_to_json(moments);
}

void print_moments(const SearchOptions& o, const nlohmann::json& moments) {
    fmt::print("\n{} at {} in the other performances of its work:\n", o.track, clock_time(std::max(0.0, o.start)));
    if (moments.empty()) fmt::print("  none: the index holds no other performance of this work\n");
    for (const auto& m : moments) {
        if (m.contains("error")) fmt::print("  {:<40} —  {}\n", m["track_id"].get<std::string>(), m["error"].get<std::string>());
        else fmt::print("  {:<40} {}  (confidence {:.2f}{})\n", m["track_id"].get<std::string>(), clock_time(m["time_sec"].get<double>()),
                        m["confidence"].get<double>(), m.contains("clip_id") ? ", clip " + m["clip_id"].get<std::string>() : "");
    }
}

int run_search(const Context& ctx, const SearchOptions& o, bool json) {
    if (o.index.empty()) throw_usage("give --index DIR (an artifact directory, or a root with --name)");
    SearchRequest request = search_request(ctx, o);
    const auto art = std::make_shared<const LoadedArtifact>(load_artifact(resolve_artifact_dir(o.index, o.name)));
    const Searcher searcher = make_searcher(art, o.model);
    std::optional<Audio> audio;
    if (!o.audio.empty()) {
        audio = load_audio(o.audio, searcher.encoder()->info().sampling_rate);
        request.audio = *audio;
        request.start_sec = std::max(0.0, o.start);
    }
    const SearchResult result = o.audio.empty() ? searcher.search(request) : with_context(o.audio, [&] { return searcher.search(request); });
    nlohmann::json hits = hits_to_json(result);
    const nlohmann::json moments = o.same_moment ? moments_of(ctx, *art, o, hits) : nlohmann::json();
    if (json) {
        nlohmann::json out = {{"index", art->dir.string()}, {"version_id", art->version_id()}, {"kind", to_string(result.kind)},
                              {"aspects", o.aspect.empty() ? o.aspects : o.aspect}, {"layer_weights", result.layer_weights},
                              {"learned_aspects", result.learned_aspects}, {"results", hits}};
        if (o.same_moment) out["same_moment"] = moments;
        if (result.query_moment) out["query"] = {{"clip_id", result.query_clip_id}, {"role", role_moment_to_json(*result.role, *result.query_moment)}};
        print_json(out);
        return 0;
    }
    if (result.query_moment)
        fmt::print("query: {}{}\n", result.query_clip_id, role_text(role_moment_to_json(*result.role, *result.query_moment)));
    print_hits(result, hits);
    if (o.same_moment) print_moments(o, moments);
    return 0;
}

void register_index_build(CLI::App& app, Context& ctx) {
    auto* index = app.add_subcommand("index", "Search indexes over extracted features");
    index->require_subcommand(1);
    auto* build = index->add_subcommand("build",
        "Builds a track index (one vector per track, from aggregated views) or a clip index (one per 5-s\n"
        "window, from segment views, with true start/end times) and writes a versioned artifact directory:\n"
        "index.faiss (FAISS, inner product over L2-normalised vectors = cosine), manifest.json, records,\n"
        "checksums.json. Probing results of the dataset, when present, are resolved into aspects for\n"
        "aspect search; learned aspect models (--aspect-models, or those shipped for dsp and mfcc-chroma)\n"
        "map every row into each aspect's space.");
    static BuildOptions b;
    add_dataset_options(build, b.source);
    build->add_option("--kind", b.kind, "track | clip")->capture_default_str();
    build->add_option("--layer", b.layer, "Vector per row: default (the model's: MERT middle, dsp overall), a layer number, middle,\nflatten, or weights:w0,w1,...")->capture_default_str();
    build->add_option("--factory", b.factory, "FAISS factory: Flat (exact), IVF256,Flat, HNSW32, IVF256,PQ16, ...")->capture_default_str();
    build->add_option("--index-type", b.index_type,
                      "flat (float32, --factory), ivf-sq8, pca-ivf-sq8 (8-bit codes of the top principal components) or ivf-pq "
                      "(compressed codes in memory, float16 rows memory-mapped for exact re-ranking; built in bounded memory), auto "
                      "(pca-ivf-sq8 above 1 M rows)")
        ->check(CLI::IsMember({"flat", "auto", "ivf-sq8", "pca-ivf-sq8", "ivf-pq"}))
        ->capture_default_str();
    build->add_option("--rerank-depth", b.rerank, "Compressed indexes: candidates re-ranked exactly from the float16 rows (default 200)");
    build->add_option("--nlist", b.nlist, "Compressed indexes: IVF lists (default: a power of two near 4·√rows; docs/INDEXES.md\n"
                                          "measured 10 M passages with 2048)")
        ->check(CLI::PositiveNumber);
    build->add_option("--shard", b.shard, "i/N: index only the tracks of shard i of N (split by track id, as mess extract --shard)");
    build->add_option("--name", b.name, "Artifact name (default: track_index / clip_index)");
    build->add_option("--out", b.out, "Artifact root (default: <data root>/indices)");
    build->add_option("--results", b.results, "Probing results for aspects (default: the dataset's, when present)");
    build->add_flag("--no-media", b.no_media, "Do not store audio locations and waveform peaks (the server then plays nothing)");
    build->add_flag("--no-structure", b.no_structure, "Do not store each track's structure (no role searches, no structure route)");
    build->add_flag("--no-layers", b.no_layers, "Do not store per-layer vectors (smaller; no aspect search)");
    build->add_option("--aspect-models", b.aspect_models, "Learned aspect models (mess train aspects --out DIR) to store and search by\n"
                                                          "(default: the models shipped for dsp and mfcc-chroma features)");
    build->add_flag("--no-aspect-models", b.no_aspect_models, "Do not store the shipped aspect models");
    bool& bjson = add_json_flag(build);
    build->callback([&ctx, &bjson] { ctx.run = [&ctx, &bjson] { return run_build(ctx, b, bjson); }; });
}

void register_search_query(CLI::App& app, Context& ctx) {
    auto* search = app.add_subcommand("search",
        "Similar tracks (track index) or similar passages (clip index) to a track, a window (--clip, or\n"
        "--track with --start), or an outside audio file (--audio, embedded with the index's model).\n"
        "Passage search excludes the query window and its overlapping neighbours and de-duplicates hits\n"
        "closer than a window on one track. --aspect/--aspects rank by musical aspects: in the learned\n"
        "aspect spaces of the index when it has them (each hit shows its similarity in every one), else\n"
        "through the layers probing validated (e.g. --aspects dynamics=0.7,articulation=0.3). --unlike\n"
        "tempo[=w]: similar in the chosen aspects but different in tempo (learned spaces).");
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
    search->add_option("--unlike", s.unlike, "Aspects the hits should differ in, e.g. tempo or tempo=0.5,dynamics");
    search->add_option("--more", s.more, "Only hits with more of this aspect than the query (tempo: faster, dynamics: louder,\n"
                                         "articulation: more legato; learned directions); repeatable");
    search->add_option("--rerank", s.rerank, "Tracks from passages (clip index): candidates from passage search, scored by the\n"
                                             "reduction of their passage similarity matrix: min | mean-min | mean-min-sym | best-k | pairs");
    search->add_option("--rerank-candidates", s.rerank_candidates, "Passage hits per query window proposing candidates")->capture_default_str();
    search->add_option("--context", s.context, "Passages (clip index, --clip or --track with --start): score each candidate with its neighbours\n"
                                               "too, N windows each side, as a short alignment at tempo ratios 0.7..1.4 (3 at the 2.5-s hop:\n"
                                               "the query covers 20 s). 0: the window alone")
        ->check(CLI::Range(0, 20))->capture_default_str();
    search->add_option("--best-k", s.best_k, "k of the best-k reduction")->capture_default_str();
    search->add_option("--less", s.less, "Only hits with less of this aspect than the query; repeatable");
    search->add_option("--text", s.text, "Directions in words: \"like this but slower and more restrained\" (faster/slower,\n"
                                         "louder/softer/intense/restrained, smoother/crisper/legato/staccato, brighter/darker);\n"
                                         "unknown words are an error"); 
    search->add_option("--min-r2", s.min_r2, "Aspects below this probe R² are not available")->capture_default_str();
    search->add_flag("--no-r2-scaling", s.no_r2_scaling, "Do not scale aspect weights by their R²");
    search->add_option("--k", s.k, "Results")->capture_default_str();
    search->add_option("--filter", s.filters, "key=value on metadata (dataset, split, composer, ...); repeatable");
    search->add_option("--exclude-same", s.exclude_same, "Drop hits sharing the query's track | recording | work");
    search->add_flag("--group-tracks", s.group, "Passages: best passage per track");
    search->add_option("--role", s.role,
                       "Passages at a structural role: climax | cadence | boundary | modulation. The query window is\n"
                       "taken at that role of --track (the moment nearest --start when given) and only windows holding\n"
                       "that role are results; modulations also rank by their interval");
    search->add_option("--nprobe", s.nprobe, "IVF lists to visit");
    search->add_option("--ef-search", s.ef_search, "HNSW candidate list size");
    search->add_flag("--exact", s.exact, "Exact scan even on an approximate index");
    search->add_option("--threads", s.threads, "Threads for embedding --audio");
    search->add_flag("--same-moment", s.same_moment,
                     "Also align --track with every other performance of its work and print the --start second in each\n"
                     "(passage hits on them get \"aligned_sec\"); needs the index's media (audio locations)");
    bool& sjson = add_json_flag(search);
    search->callback([&ctx, &sjson] { ctx.run = [&ctx, &sjson] { return run_search(ctx, s, sjson); }; });
}

void register_publish_pull(CLI::App& app, Context& ctx) {
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

}  // namespace

void register_search(CLI::App& app, Context& ctx) {
    register_index_build(app, ctx);
    register_search_query(app, ctx);
    register_publish_pull(app, ctx);
}

}  // namespace mess::cli
