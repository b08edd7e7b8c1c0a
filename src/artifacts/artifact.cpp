// Artifact directories: writing, validated loading, hashes and gzip.
#include <algorithm>
#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>
#include <random>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "mess/artifacts.hpp"
#include "mess/npy.hpp"
#include "mess/util.hpp"

#include "gzip_stream.hpp"

namespace mess {
namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Hashes and gzip
// ---------------------------------------------------------------------------------------------

namespace {

std::string digest_hex(const EVP_MD* md, std::string_view bytes) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(bytes.data(), bytes.size(), out, &len, md, nullptr) != 1) throw_internal("OpenSSL digest failed");
    return hex_encode(std::string_view(reinterpret_cast<const char*>(out), len));
}

}  // namespace

std::string sha256_hex(std::string_view bytes) { return digest_hex(EVP_sha256(), bytes); }
std::string md5_hex(std::string_view bytes) { return digest_hex(EVP_md5(), bytes); }

FileDigests file_digests(const fs::path& path, bool md5) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw_input("{}: cannot read: {}", path.string(), std::strerror(errno));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free), m5(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    if (!sha || !m5 || EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) != 1 || EVP_DigestInit_ex(m5.get(), EVP_md5(), nullptr) != 1) {
        std::fclose(f);
        throw_internal("OpenSSL digest failed");
    }
    FileDigests d;
    std::vector<char> buf(kDigestChunk);
    std::size_t got = 0;
    while ((got = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
        EVP_DigestUpdate(sha.get(), buf.data(), got);
        if (md5) EVP_DigestUpdate(m5.get(), buf.data(), got);
        d.size += got;
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) throw_input("{}: read error", path.string());
    auto finish = [](EVP_MD_CTX* ctx) {
        unsigned char out[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        if (EVP_DigestFinal_ex(ctx, out, &len) != 1) throw_internal("OpenSSL digest failed");
        return hex_encode(std::string_view(reinterpret_cast<const char*>(out), len));
    };
    d.sha256 = finish(sha.get());
    if (md5) d.md5 = finish(m5.get());
    return d;
}

std::string sha256_file(const fs::path& path) { return file_digests(path, false).sha256; }

std::string gzip_compress(std::string_view data) {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) throw_internal("zlib init failed");
    std::string out(deflateBound(&z, static_cast<uLong>(data.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    const int rc = deflate(&z, Z_FINISH);
    deflateEnd(&z);
    if (rc != Z_STREAM_END) throw_internal("gzip compression failed");
    out.resize(z.total_out);
    return out;
}

std::string gzip_decompress(std::string_view data, const std::string& name) {
    z_stream z{};
    if (inflateInit2(&z, 15 + 16) != Z_OK) throw_internal("zlib init failed");
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    std::string out;
    char buf[1 << 16];
    int rc = Z_OK;
    while (rc == Z_OK) {
        z.next_out = reinterpret_cast<Bytef*>(buf);
        z.avail_out = sizeof buf;
        rc = inflate(&z, Z_NO_FLUSH);
        out.append(buf, sizeof buf - z.avail_out);
        if (rc == Z_BUF_ERROR && z.avail_in == 0) break;
    }
    inflateEnd(&z);
    if (rc != Z_STREAM_END) throw_input("{}: corrupt or truncated gzip data", name);
    return out;
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

namespace {

std::string utc_stamp(std::time_t t, const char* format) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

std::string new_version_id() {
    std::random_device rd;
    std::string s = "vid-";
    static const char* hex = "0123456789abcdef";
    for (int i = 0; i < 32; ++i) s += hex[rd() & 15];
    return s;
}

nlohmann::json record_json(const IndexRecord& r, bool clip) {
    nlohmann::json j = {{"dataset_id", r.dataset_id}, {"recording_id", r.recording_id}, {"work_id", r.work_id},
                        {"track_id", r.track_id},     {"split", r.split}};
    if (clip) {
        j["clip_id"] = r.id;
        j["segment_idx"] = r.segment_idx;
        j["start_time"] = r.start_sec;
        j["end_time"] = r.end_sec;
    } else {
        j["duration_sec"] = r.end_sec;
    }
    return j;
}

// records.json.gz (every field, read back by load_artifact) and the row file Python users read
// (clip_records.json.gz, or track_names.json for a track index), written a record at a time: a
// 10-million-row index never holds them as one JSON document.
void write_record_files(const std::vector<IndexRecord>& records, bool clip, const fs::path& dir) {
    detail::GzipWriter full(dir / "records.json.gz");
    std::optional<detail::GzipWriter> rows;
    if (clip) rows.emplace(dir / "clip_records.json.gz");
    nlohmann::json names = nlohmann::json::array();
    for (std::size_t i = 0; i < records.size(); ++i) {
        const IndexRecord& r = records[i];
        const char* separator = i == 0 ? "[" : ",";
        nlohmann::json f = record_json(r, clip);
        if (rows) rows->write(separator + f.dump());
        else names.push_back(r.track_id);
        f["id"] = r.id;
        f["metadata"] = r.metadata;
        full.write(separator + f.dump());
    }
    const char* end = records.empty() ? "[]" : "]";
    full.write(end);
    full.commit();
    if (rows) {
        rows->write(end);
        rows->commit();
    } else {
        write_file_atomic(dir / "track_names.json", names.dump() + "\n");
    }
}

// The learned aspect spaces: the models (aspect_models.aspects.json + .npy) and every row in each space
// (aspect_vectors.<aspect>.npy [N, out_dim] float32); returns the manifest entry.
nlohmann::json write_aspect_spaces(const AspectSpaces& sp, const fs::path& dir, std::size_t n) {
    save_aspect_set(sp.models, dir, "aspect_models.");
    nlohmann::json names = nlohmann::json::array();
    for (const auto& [name, v] : sp.vectors) {
        const std::int64_t k = sp.models.aspects.at(name).out_dim;
        write_npy(dir / ("aspect_vectors." + name + ".npy"), NpyArray::from(v, {static_cast<std::int64_t>(n), k}));
        names.push_back(name);
    }
    return {{"aspects", names}, {"stack_layers", sp.stack_layers}, {"encoder", sp.models.encoder}};
}

// The float16 rows of a compressed index: a hard link when the scratch file is on the same file system
// (no copy of gigabytes), else a copy.
void link_or_copy(const fs::path& from, const fs::path& to) {
    std::error_code ec;
    fs::create_hard_link(from, to, ec);
    if (ec) fs::copy_file(from, to, fs::copy_options::overwrite_existing);
}

// "ivf-sq8" / "pca-ivf-sq8" / "ivf-pq" for the factories compressed_factory makes, else the factory string itself.
std::string compressed_type_of(const std::string& factory) {
    if (factory.starts_with("IVF") && factory.ends_with(",SQ8")) return "ivf-sq8";
    if (factory.starts_with("PCA") && factory.find(",IVF") != std::string::npos && factory.ends_with(",SQ8")) return "pca-ivf-sq8";
    if (factory.starts_with("IVF") && factory.find(",PQ") != std::string::npos) return "ivf-pq";
    return factory;
}

// The manifest's own fields (write_artifact adds the caller's extra ones).
nlohmann::json manifest_of(const SearchIndex& index, const std::string& name, std::time_t now) {
    const std::size_t n = index.size(), dim = index.index.dimension();
    nlohmann::json m = {{"schema_version", kArtifactSchemaVersion},
                        {"artifact_name", name},
                        {"artifact_version_id", new_version_id()},
                        {"kind", to_string(index.kind)},
                        {"index_type", index.index.factory()},
                        {"factory_string", index.index.factory()},
                        {"metric", "cosine_ip"},
                        {"dataset", index.dataset},
                        {"model_name", index.model_name},
                        {"precision", index.precision},
                        {"device", index.device},
                        {"layer", index.layer_spec.to_string()},
                        {"dimension", dim},
                        {"ntotal", n},
                        {"window_sec", index.window_sec},
                        {"created_at_utc", utc_stamp(now, "%Y-%m-%dT%H:%M:%SZ")}};
    if (index.index.is_compressed()) {
        m["schema_version"] = kCompressedSchemaVersion;
        m["index_type"] = compressed_type_of(index.index.factory());
        m["vectors_file"] = kHalfVectorsFile;
        m["rerank"] = index.index.rerank();
    }
    if (int np = index.index.default_nprobe(); np > 0) m["default_nprobe"] = np;
    if (int ef = index.index.default_ef_search(); ef > 0) m["default_ef_search"] = ef;
    if (index.has_layers()) {
        m["layers"] = index.layers;
        m["layer_dim"] = index.layer_dim;
    }
    return m;
}

}  // namespace

fs::path write_artifact(const SearchIndex& index, const fs::path& root, const std::string& name, const nlohmann::json& extra,
                        const std::map<std::string, std::string>& extra_files) {
    auto plain = [](const std::string& s) { return !s.empty() && s.find('/') == std::string::npos && !s.starts_with("."); };
    if (!plain(name)) throw_usage("artifact name '{}' must be a plain directory name", name);
    for (const auto& [file, bytes] : extra_files)
        if (!plain(file) || file == "manifest.json" || file == "checksums.json" || file == "index.faiss" || file.starts_with("records.") ||
            file.starts_with("vectors") || file.starts_with("layers.") || file == "track_names.json" || file.starts_with("clip_records.") ||
            file.starts_with("aspect_models.") || file.starts_with("aspect_vectors."))
            throw_usage("extra artifact file '{}' must be a plain name that is not one of the artifact's own files", file);
    const bool clip = index.kind == IndexKind::clip;
    const std::time_t now = std::time(nullptr);
    std::string stamp = utc_stamp(now, "%Y%m%dT%H%M%SZ");
    const fs::path parent = root / name;
    fs::create_directories(parent);
    for (int i = 2; fs::exists(parent / stamp); ++i) stamp = utc_stamp(now, "%Y%m%dT%H%M%SZ") + "-" + std::to_string(i);
    const fs::path tmp = parent / fmt::format(".{}.tmp-{}", stamp, ::getpid());
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        index.index.write(tmp / "index.faiss");
        const std::size_t n = index.size(), dim = index.index.dimension();
        if (index.index.is_compressed()) link_or_copy(index.index.half_rows()->path(), tmp / kHalfVectorsFile);
        else if (!index.index.is_exact())
            write_npy(tmp / "vectors.npy", NpyArray::from(index.index.vectors(), {static_cast<std::int64_t>(n), static_cast<std::int64_t>(dim)}));
        if (index.has_layers())
            write_npy(tmp / "layers.npy", NpyArray::from_bytes(DType::f16, {static_cast<std::int64_t>(n), static_cast<std::int64_t>(index.layers),
                                                                            static_cast<std::int64_t>(index.layer_dim)},
                                                            index.layer_vectors.data(), index.layer_vectors.size() * 2));
        write_record_files(index.records, clip, tmp);
        for (const auto& [file, bytes] : extra_files) write_file_atomic(tmp / file, bytes);

        nlohmann::json m = manifest_of(index, name, now);
        if (!index.aspect_spaces.empty()) m["aspect_models"] = write_aspect_spaces(index.aspect_spaces, tmp, n);
        m.update(extra);
        write_file_atomic(tmp / "manifest.json", m.dump(2) + "\n");

        nlohmann::json sums = nlohmann::json::object();
        for (const auto& e : fs::directory_iterator(tmp)) {
            const FileDigests d = file_digests(e.path());
            sums[e.path().filename().string()] = {{"sha256", d.sha256}, {"md5", d.md5}, {"size", d.size}};
        }
        write_file_atomic(tmp / "checksums.json", sums.dump(2) + "\n");
        fs::rename(tmp, parent / stamp);
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    return parent / stamp;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

std::vector<fs::path> artifact_versions(const fs::path& root, const std::string& name) {
    const fs::path base = name.empty() ? root : root / name;
    std::vector<fs::path> out;
    std::error_code ec;
    if (!fs::is_directory(base, ec)) return out;
    for (const auto& e : fs::directory_iterator(base, ec)) {
        const std::string s = e.path().filename().string();
        if (!s.starts_with(".") && fs::exists(e.path() / "manifest.json", ec)) out.push_back(e.path());
    }
    std::sort(out.begin(), out.end(), [](const fs::path& a, const fs::path& b) { return a.filename().string() > b.filename().string(); });
    return out;
}

fs::path resolve_artifact_dir(const fs::path& path, const std::string& name) {
    if (fs::exists(path / "manifest.json")) return path;
    const auto versions = artifact_versions(path, name);
    if (versions.empty())
        throw_input("no index artifact at {} (expected manifest.json, or version directories with one)", (name.empty() ? path : path / name).string());
    return versions.front();
}

LoadedArtifact load_newest_artifact(const fs::path& path, const std::string& name, std::vector<std::string>* refused) {
    if (fs::exists(path / "manifest.json")) return load_artifact(path);
    std::vector<std::string> problems;
    for (const fs::path& dir : artifact_versions(path, name)) {
        try {
            return load_artifact(dir);
        } catch (const Error& e) {
            problems.push_back(e.what());
            if (refused) refused->push_back(e.what());
        }
    }
    const std::string where = (name.empty() ? path : path / name).string();
    if (problems.empty()) throw_input("no index artifact at {} (expected manifest.json, or version directories with one)", where);
    std::string all;
    for (const auto& p : problems) all += (all.empty() ? "" : "; ") + p;
    throw_input("no version of the index at {} loads: {}", where, all);
}

namespace {

fs::path need_file(const fs::path& dir, const char* file) {
    if (!fs::exists(dir / file)) throw_input("artifact {}: missing {}", dir.string(), file);
    return dir / file;
}

nlohmann::json parse_object(const fs::path& p) {
    auto j = nlohmann::json::parse(read_file(p), nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw_input("{}: not a JSON object", p.string());
    return j;
}

// A manifest count (ntotal, dimension, layers, layer_dim): present and a non-negative whole number. A float
// or a negative number would be converted to size_t (undefined behaviour; found by fuzzing).
std::size_t manifest_count(const nlohmann::json& m, const char* key, const fs::path& path) {
    if (!m.contains(key)) throw_input("{}: manifest lacks '{}'", path.string(), key);
    const auto& v = m.at(key);
    if (!v.is_number_unsigned()) throw_input("{}: manifest '{}' is {}, not a non-negative whole number", path.string(), key, v.dump());
    return v.get<std::size_t>();
}

void check_manifest(const nlohmann::json& m, const fs::path& path) {
    for (const char* key : {"schema_version", "artifact_name", "artifact_version_id", "kind", "factory_string", "metric", "dimension",
                            "ntotal", "created_at_utc", "layer"})
        if (!m.contains(key)) throw_input("{}: manifest lacks '{}'", path.string(), key);
    if (m["schema_version"] != kArtifactSchemaVersion && m["schema_version"] != kCompressedSchemaVersion)
        throw_input("{}: schema_version {} is not supported (this build reads {} and {})", path.string(), m["schema_version"].dump(),
                    kArtifactSchemaVersion, kCompressedSchemaVersion);
    if (m["schema_version"] == kCompressedSchemaVersion && m.value("vectors_file", std::string()) != kHalfVectorsFile)
        throw_input("{}: schema_version {} needs \"vectors_file\": \"{}\"", path.string(), kCompressedSchemaVersion, kHalfVectorsFile);
    const std::string vid = m["artifact_version_id"].get<std::string>();
    if (!vid.starts_with("vid-") || vid.size() != 36 || vid.find_first_not_of("0123456789abcdef", 4) != std::string::npos)
        throw_input("{}: artifact_version_id '{}' is not vid-<32 hex>", path.string(), vid);
    if (m["metric"] != "cosine_ip") throw_input("{}: metric {} is not cosine_ip", path.string(), m["metric"].dump());
}

// Every file in checksums.json: present, right size, right SHA-256; and every payload file is listed.
void check_files(const fs::path& dir, const nlohmann::json& sums, bool verify_checksums) {
    for (auto it = sums.begin(); it != sums.end(); ++it) {
        const fs::path p = dir / it.key();
        if (it.key().find('/') != std::string::npos || !fs::exists(p)) throw_input("artifact {}: missing {}", dir.string(), it.key());
        const auto size = static_cast<std::int64_t>(fs::file_size(p));
        if (size != it->value("size", std::int64_t{-1}))
            throw_input("artifact {}: {} is {} bytes, checksums.json says {}", dir.string(), it.key(), size, it->value("size", std::int64_t{-1}));
        if (verify_checksums && sha256_file(p) != it->value("sha256", std::string()))
            throw_input("artifact {}: {} does not match its SHA-256 in checksums.json (corrupt)", dir.string(), it.key());
    }
    for (const auto& e : fs::directory_iterator(dir)) {
        const std::string f = e.path().filename().string();
        if (f != "checksums.json" && !sums.contains(f)) throw_input("artifact {}: {} is not listed in checksums.json", dir.string(), f);
    }
}

VectorIndex read_vectors(const fs::path& dir, const nlohmann::json& m, std::size_t n, std::size_t dim) {
    if (m.contains("vectors_file")) {  // compressed (schema 4): codes in index.faiss, float16 rows mapped
        auto rows = HalfRows::open(need_file(dir, kHalfVectorsFile), n, dim);
        return VectorIndex::read_compressed(need_file(dir, "index.faiss"), std::move(rows), m["factory_string"].get<std::string>(),
                                           manifest_count(m, "rerank", dir / "manifest.json"));
    }
    std::vector<float> vectors;
    if (fs::exists(dir / "vectors.npy")) {
        const NpyArray v = read_npy(dir / "vectors.npy");
        if (v.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(n), static_cast<std::int64_t>(dim)})
            throw_input("{}: shape {} but the manifest says [{}, {}]", (dir / "vectors.npy").string(), v.describe(), n, dim);
        vectors = v.to_float32();
    }
    VectorIndex index = VectorIndex::read(need_file(dir, "index.faiss"), std::move(vectors), m["factory_string"].get<std::string>());
    if (index.dimension() != dim || index.size() != n)
        throw_input("{}: index holds {} × {}, the manifest says {} × {}", (dir / "index.faiss").string(), index.size(), index.dimension(), n,
                    dim);
    return index;
}

void read_layer_vectors(SearchIndex& idx, const fs::path& dir, const nlohmann::json& m, std::size_t n) {
    if (!m.contains("layers")) return;
    idx.layers = manifest_count(m, "layers", dir / "manifest.json");
    idx.layer_dim = manifest_count(m, "layer_dim", dir / "manifest.json");
    const NpyArray l = read_npy(need_file(dir, "layers.npy"));
    if (l.dtype != DType::f16 || l.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(n), static_cast<std::int64_t>(idx.layers),
                                                                       static_cast<std::int64_t>(idx.layer_dim)})
        throw_input("{}: {} but the manifest says float16 [{}, {}, {}]", (dir / "layers.npy").string(), l.describe(), n, idx.layers,
                    idx.layer_dim);
    const auto* p = reinterpret_cast<const std::uint16_t*>(l.data.data());
    idx.layer_vectors.assign(p, p + n * idx.layers * idx.layer_dim);
}

void read_aspect_spaces(SearchIndex& idx, const fs::path& dir, const nlohmann::json& m, std::size_t n) {
    if (!m.contains("aspect_models")) return;
    const nlohmann::json& e = m["aspect_models"];
    AspectSpaces& sp = idx.aspect_spaces;
    sp.models = load_aspect_set(dir, "aspect_models.");
    sp.stack_layers = manifest_count(e, "stack_layers", dir / "manifest.json");
    for (int l : sp.models.layers)
        if (l < 0 || static_cast<std::size_t>(l) >= sp.stack_layers)
            throw_input("{}: aspect models read layer {} of {}", (dir / "aspect_models.aspects.json").string(), l, sp.stack_layers);
    for (const auto& [name, model] : sp.models.aspects) {
        if (name.empty() || name.find('/') != std::string::npos || name.starts_with("."))
            throw_input("{}: aspect name '{}' is not a plain name", (dir / "aspect_models.aspects.json").string(), name);
        const fs::path file = need_file(dir, ("aspect_vectors." + name + ".npy").c_str());
        const NpyArray a = read_npy(file);
        if (a.dtype != DType::f32 || a.shape != std::vector<std::int64_t>{static_cast<std::int64_t>(n), model.out_dim})
            throw_input("{}: {} but the index has {} rows and aspect {} has {} dimensions (float32 expected)", file.string(), a.describe(), n,
                        name, model.out_dim);
        sp.vectors[name] = a.to_float32();
    }
}

IndexRecord record_from_json(const nlohmann::json& r, IndexKind kind) {
    IndexRecord rec;
    rec.id = r.at("id").get<std::string>();
    rec.dataset_id = r.at("dataset_id").get<std::string>();
    rec.track_id = r.at("track_id").get<std::string>();
    rec.recording_id = r.at("recording_id").get<std::string>();
    rec.work_id = r.at("work_id").get<std::string>();
    rec.split = r.at("split").get<std::string>();
    if (kind == IndexKind::clip) {
        rec.segment_idx = r.at("segment_idx").get<int>();
        rec.start_sec = r.at("start_time").get<double>();
        rec.end_sec = r.at("end_time").get<double>();
    } else {
        rec.end_sec = r.value("duration_sec", 0.0);
    }
    rec.metadata = r.value("metadata", std::map<std::string, std::string>{});
    return rec;
}

std::vector<IndexRecord> read_records(const fs::path& dir, IndexKind kind, std::size_t n) {
    const fs::path rec_path = need_file(dir, "records.json.gz");
    std::vector<IndexRecord> out;
    out.reserve(n);
    const std::size_t count = detail::for_each_gzip_json_element(rec_path, [&](nlohmann::json& r) {
        if (out.size() == n) throw_input("{}: expected a list of {} records, found more", rec_path.string(), n);
        try {
            out.push_back(record_from_json(r, kind));
        } catch (const nlohmann::json::exception& e) {
            throw_input("{}: malformed record {}: {}", rec_path.string(), out.size(), e.what());
        }
    });
    if (count != n) throw_input("{}: expected a list of {} records, found {}", rec_path.string(), n, count);
    return out;
}

// The row file Python users read (clip_records.json.gz or track_names.json) must say what records.json.gz
// says, row by row: the same clip ids (clip index) or track ids (track index). A wrong one is named.
void check_row_file(const fs::path& dir, IndexKind kind, const std::vector<IndexRecord>& records) {
    const bool clip = kind == IndexKind::clip;
    const fs::path p = need_file(dir, clip ? "clip_records.json.gz" : "track_names.json");
    auto check_row = [&](std::size_t i, const nlohmann::json& row) {
        if (i >= records.size()) throw_input("{}: expected a list of {} rows matching records.json.gz, found more", p.string(), records.size());
        const bool same = clip ? row.is_object() && row.value("clip_id", std::string()) == records[i].id
                               : row.is_string() && row.get<std::string>() == records[i].track_id;
        if (!same) throw_input("{}: row {} is {}, records.json.gz says '{}'", p.string(), i, row.dump(), records[i].id);
    };
    std::size_t count = 0;
    if (clip) {
        count = detail::for_each_gzip_json_element(p, [&](nlohmann::json& row) { check_row(count++, row); });
    } else {
        const auto rows = nlohmann::json::parse(read_file(p), nullptr, false);
        if (!rows.is_array()) throw_input("{}: expected a list of {} rows matching records.json.gz", p.string(), records.size());
        for (const auto& row : rows) check_row(count++, row);
    }
    if (count != records.size())
        throw_input("{}: expected a list of {} rows matching records.json.gz, found {}", p.string(), records.size(), count);
}

}  // namespace

static LoadedArtifact load_artifact_checked(const fs::path& dir, bool verify_checksums) {
    LoadedArtifact a;
    a.dir = dir;
    a.manifest = parse_object(need_file(dir, "manifest.json"));
    const nlohmann::json sums = parse_object(need_file(dir, "checksums.json"));
    const auto& m = a.manifest;
    check_manifest(m, dir / "manifest.json");
    const IndexKind kind = parse_index_kind(m["kind"].get<std::string>());
    check_files(dir, sums, verify_checksums);
    const std::size_t n = manifest_count(m, "ntotal", dir / "manifest.json"), dim = manifest_count(m, "dimension", dir / "manifest.json");
    SearchIndex& idx = a.index;
    idx.index = read_vectors(dir, m, n, dim);
    idx.kind = kind;
    idx.dataset = m.value("dataset", std::string());
    idx.model_name = m.value("model_name", std::string());
    idx.precision = m.value("precision", std::string("fp32"));
    idx.device = m.value("device", std::string("cpu"));
    idx.layer_spec = LayerSpec::parse(m["layer"].get<std::string>());
    idx.window_sec = m.value("window_sec", 5.0);
    read_layer_vectors(idx, dir, m, n);
    read_aspect_spaces(idx, dir, m, n);
    idx.records = read_records(dir, kind, n);
    check_row_file(dir, kind, idx.records);
    idx.rebuild_lookup();
    idx.structures = read_structures(dir);
    return a;
}

LoadedArtifact load_artifact(const fs::path& dir, bool verify_checksums) {
    try {
        return load_artifact_checked(dir, verify_checksums);
    } catch (const nlohmann::json::exception& e) {  // a manifest field of the wrong type
        throw_input("artifact {}: malformed manifest.json: {}", dir.string(), e.what());
    }
}

}  // namespace mess
