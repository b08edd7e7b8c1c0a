// Object stores (a directory, S3 through libcurl SigV4) and publish/pull of artifacts.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unistd.h>

#include <ctime>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include "mess/artifacts.hpp"
#include "mess/util.hpp"

namespace mess {
namespace fs = std::filesystem;

namespace {

std::string join_key(const std::string& a, const std::string& b) {
    if (a.empty()) return b;
    return a.back() == '/' ? a + b : a + "/" + b;
}

// A local directory as an object store; ETag = MD5 of the content, like S3's single-part ETag.
class DirStore final : public ObjectStore {
public:
    explicit DirStore(fs::path root) : root_(std::move(root)) {}
    void put(const std::string& key, const std::string& bytes) override {
        const fs::path p = root_ / key;
        fs::create_directories(p.parent_path());
        write_file_atomic(p, bytes);
    }
    std::optional<ObjectInfo> head(const std::string& key) override {
        const fs::path p = root_ / key;
        if (!fs::is_regular_file(p)) return std::nullopt;
        return ObjectInfo{static_cast<std::int64_t>(fs::file_size(p)), md5_hex(read_file(p))};
    }
    std::string get(const std::string& key) override {
        const fs::path p = root_ / key;
        if (!fs::is_regular_file(p)) throw_input("{}: no such object", p.string());
        return read_file(p);
    }
    std::string describe(const std::string& key) const override { return (root_ / key).string(); }

private:
    fs::path root_;
};

// RFC 3986 percent-encoding of everything but unreserved characters (and '/' in paths).
std::string uri_encode(const std::string& text, bool keep_slash) {
    static const char* hex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : text) {
        if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) out += static_cast<char>(c);
        else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

// Virtual-hosted AWS URL, or path-style under a configured endpoint (local and compatible servers).
std::string object_url(const S3Config& cfg, const std::string& bucket, const std::string& key) {
    if (cfg.endpoint.empty()) return "https://" + bucket + ".s3." + cfg.region + ".amazonaws.com/" + uri_encode(key, true);
    std::string e = cfg.endpoint;
    while (!e.empty() && e.back() == '/') e.pop_back();
    return e + "/" + bucket + "/" + uri_encode(key, true);
}

std::string hmac_sha256(std::string_view key, std::string_view data) {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(data.data()), data.size(),
              out, &len))
        throw_internal("OpenSSL HMAC failed");
    return std::string(reinterpret_cast<const char*>(out), len);
}

struct Response {
    long status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // lower-case names
};

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
    static_cast<std::string*>(user)->append(data, size * n);
    return size * n;
}
std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
    std::string line(data, size * n);
    const auto colon = line.find(':');
    if (colon != std::string::npos) {
        std::string name = line.substr(0, colon), value = line.substr(colon + 1);
        name = to_lower(name);
        value.erase(0, value.find_first_not_of(" \t"));
        value.erase(value.find_last_not_of(" \t\r\n") + 1);
        (*static_cast<std::map<std::string, std::string>*>(user))[name] = value;
    }
    return size * n;
}
struct Upload {
    const std::string* bytes;
    std::size_t pos = 0;
};
std::size_t on_read(char* buffer, std::size_t size, std::size_t n, void* user) {
    auto* u = static_cast<Upload*>(user);
    const std::size_t len = std::min(size * n, u->bytes->size() - u->pos);
    std::memcpy(buffer, u->bytes->data() + u->pos, len);
    u->pos += len;
    return len;
}

class S3Store final : public ObjectStore {
public:
    S3Store(std::string bucket, S3Config config) : bucket_(std::move(bucket)), cfg_(std::move(config)) {
        static std::once_flag once;
        std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
        if (cfg_.access_key.empty() || cfg_.secret_key.empty())
            throw_usage("S3 needs credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    }
    void put(const std::string& key, const std::string& bytes) override {
        const Response r = request("PUT", key, &bytes);
        if (r.status != 200) throw_input("PUT {}: HTTP {} {}", describe(key), r.status, r.body.substr(0, 300));
    }
    std::optional<ObjectInfo> head(const std::string& key) override {
        const Response r = request("HEAD", key, nullptr);
        if (r.status == 404) return std::nullopt;
        if (r.status != 200) throw_input("HEAD {}: HTTP {}", describe(key), r.status);
        ObjectInfo info;
        if (auto it = r.headers.find("content-length"); it != r.headers.end()) info.size = std::stoll(it->second);
        if (auto it = r.headers.find("etag"); it != r.headers.end()) {
            info.etag = it->second;
            info.etag.erase(std::remove(info.etag.begin(), info.etag.end(), '"'), info.etag.end());
        }
        return info;
    }
    std::string get(const std::string& key) override {
        Response r = request("GET", key, nullptr);
        if (r.status == 404) throw_input("{}: no such object", describe(key));
        if (r.status != 200) throw_input("GET {}: HTTP {} {}", describe(key), r.status, r.body.substr(0, 300));
        return std::move(r.body);
    }
    std::string describe(const std::string& key) const override { return "s3://" + bucket_ + "/" + key; }

private:
    std::string url(const std::string& key) const { return object_url(cfg_, bucket_, key); }

    Response request(const char* method, const std::string& key, const std::string* body) const {
        std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), curl_easy_cleanup);
        if (!curl) throw_internal("curl_easy_init failed");
        Response r;
        const std::string u = url(key), sigv4 = "aws:amz:" + cfg_.region + ":s3", userpwd = cfg_.access_key + ":" + cfg_.secret_key;
        curl_slist* headers = nullptr;
        const std::string hash = "x-amz-content-sha256: " + sha256_hex(body ? std::string_view(*body) : std::string_view());
        headers = curl_slist_append(headers, hash.c_str());
        const std::string token = "x-amz-security-token: " + cfg_.session_token;
        if (!cfg_.session_token.empty()) headers = curl_slist_append(headers, token.c_str());
        std::unique_ptr<curl_slist, void (*)(curl_slist*)> hold(headers, curl_slist_free_all);
        CURL* c = curl.get();
        curl_easy_setopt(c, CURLOPT_URL, u.c_str());
        curl_easy_setopt(c, CURLOPT_AWS_SIGV4, sigv4.c_str());
        curl_easy_setopt(c, CURLOPT_USERPWD, userpwd.c_str());
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
        curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        Upload up{body};
        if (std::strcmp(method, "PUT") == 0) {
            curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &up);
            curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body->size()));
        } else if (std::strcmp(method, "HEAD") == 0) {
            curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
        }
        const CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) throw_input("{} {}: {}", method, u, curl_easy_strerror(rc));
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        return r;
    }

    std::string bucket_;
    S3Config cfg_;
};

std::string env(const char* name) {
    const char* v = std::getenv(name);
    return v ? v : "";
}

// Test hook: MESS_FAULT_ABORT_AFTER_OBJECTS=N makes publish abort (as if killed) after N uploads.
void maybe_fault(std::size_t uploaded) {
    const std::string v = env("MESS_FAULT_ABORT_AFTER_OBJECTS");
    if (!v.empty() && uploaded >= static_cast<std::size_t>(std::stoul(v))) {
        spdlog::error("fault injection: aborting after {} uploaded objects", uploaded);
        std::_Exit(137);
    }
}

}  // namespace

std::pair<std::string, std::string> split_s3_uri(const std::string& uri) {
    if (!uri.starts_with("s3://")) throw_usage("'{}': expected s3://bucket/prefix", uri);
    const std::string rest = uri.substr(5);
    const auto slash = rest.find('/');
    std::string bucket = rest.substr(0, slash), prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (bucket.empty()) throw_usage("'{}': expected s3://bucket/prefix", uri);
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return {bucket, prefix};
}

std::string presign_get_url(const S3Config& config, const std::string& bucket, const std::string& key, int expires_sec, std::int64_t now) {
    if (config.access_key.empty() || config.secret_key.empty())
        throw_usage("presigning s3://{}/{} needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", bucket, key);
    if (expires_sec < 1 || expires_sec > 604800) throw_usage("presigned URL expiry {} s is outside 1 … 604800", expires_sec);
    const std::string url = object_url(config, bucket, key);
    const auto scheme_end = url.find("://") + 3;
    const auto path_start = url.find('/', scheme_end);
    const std::string host = url.substr(scheme_end, path_start - scheme_end), path = url.substr(path_start);
    const std::time_t t = static_cast<std::time_t>(now);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32], day[16];
    std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &tm);
    std::strftime(day, sizeof day, "%Y%m%d", &tm);
    const std::string scope = std::string(day) + "/" + config.region + "/s3/aws4_request";
    std::map<std::string, std::string> query = {{"X-Amz-Algorithm", "AWS4-HMAC-SHA256"},
                                                {"X-Amz-Credential", config.access_key + "/" + scope},
                                                {"X-Amz-Date", stamp},
                                                {"X-Amz-Expires", std::to_string(expires_sec)},
                                                {"X-Amz-SignedHeaders", "host"}};
    if (!config.session_token.empty()) query["X-Amz-Security-Token"] = config.session_token;
    std::string canonical_query;
    for (const auto& [k, v] : query) canonical_query += (canonical_query.empty() ? "" : "&") + k + "=" + uri_encode(v, false);
    const std::string canonical_request = "GET\n" + path + "\n" + canonical_query + "\nhost:" + host + "\n\nhost\nUNSIGNED-PAYLOAD";
    const std::string to_sign = "AWS4-HMAC-SHA256\n" + std::string(stamp) + "\n" + scope + "\n" + sha256_hex(canonical_request);
    std::string signing_key = hmac_sha256("AWS4" + config.secret_key, day);
    for (const std::string& part : {config.region, std::string("s3"), std::string("aws4_request")}) signing_key = hmac_sha256(signing_key, part);
    return url + "?" + canonical_query + "&X-Amz-Signature=" + hex_encode(hmac_sha256(signing_key, to_sign));
}

S3Config S3Config::from_environment() {
    S3Config c;
    c.endpoint = env("MESS_S3_ENDPOINT").empty() ? env("AWS_ENDPOINT_URL") : env("MESS_S3_ENDPOINT");
    c.region = !env("AWS_REGION").empty() ? env("AWS_REGION") : !env("AWS_DEFAULT_REGION").empty() ? env("AWS_DEFAULT_REGION") : "us-east-1";
    c.access_key = env("AWS_ACCESS_KEY_ID");
    c.secret_key = env("AWS_SECRET_ACCESS_KEY");
    c.session_token = env("AWS_SESSION_TOKEN");
    return c;
}

std::unique_ptr<ObjectStore> make_s3_store(const std::string& bucket, const S3Config& config) {
    return std::make_unique<S3Store>(bucket, config);
}

std::unique_ptr<ObjectStore> open_store(const std::string& uri, std::string* prefix_out) {
    if (uri.starts_with("s3://")) {
        auto [bucket, prefix] = split_s3_uri(uri);
        if (prefix_out) *prefix_out = prefix;
        return make_s3_store(bucket, S3Config::from_environment());
    }
    if (uri.find("://") != std::string::npos) throw_usage("'{}': only s3:// URIs and directories are supported", uri);
    if (prefix_out) prefix_out->clear();
    return std::make_unique<DirStore>(uri);
}

PublishReport publish_artifact(const fs::path& artifact_dir, const std::string& store_uri) {
    const LoadedArtifact local = load_artifact(artifact_dir);  // never publish something that does not verify
    const auto sums = nlohmann::json::parse(read_file(artifact_dir / "checksums.json"));
    std::string prefix;
    auto store = open_store(store_uri, &prefix);
    const std::string name = local.manifest["artifact_name"].get<std::string>();
    PublishReport report;
    report.version_id = local.version_id();
    report.artifact_prefix = join_key(join_key(prefix, name), artifact_dir.filename().string());
    nlohmann::json uploaded = nlohmann::json::object();
    std::vector<std::string> files;
    for (auto it = sums.begin(); it != sums.end(); ++it) files.push_back(it.key());
    files.push_back("checksums.json");
    for (const auto& f : files) {
        const std::string bytes = read_file(artifact_dir / f);
        const std::string key = join_key(report.artifact_prefix, f);
        store->put(key, bytes);
        const auto info = store->head(key);
        if (!info) throw_input("{}: uploaded but not found by HEAD", store->describe(key));
        if (info->size != static_cast<std::int64_t>(bytes.size()))
            throw_input("{}: HEAD reports {} bytes, uploaded {}", store->describe(key), info->size, bytes.size());
        if (!info->etag.empty() && info->etag.find('-') == std::string::npos && info->etag != md5_hex(bytes))
            throw_input("{}: ETag {} does not match the MD5 of the uploaded bytes", store->describe(key), info->etag);
        uploaded[f] = {{"etag", info->etag}};
        report.objects.push_back(key);
        spdlog::info("uploaded {} ({} bytes)", store->describe(key), bytes.size());
        maybe_fault(report.objects.size());
    }
    const nlohmann::json pointer = {{"schema_version", kArtifactSchemaVersion},
                                    {"artifact_name", name},
                                    {"artifact_version_id", report.version_id},
                                    {"artifact_prefix", report.artifact_prefix},
                                    {"created_at_utc", local.manifest["created_at_utc"]},
                                    {"checksums", sums},
                                    {"uploaded_objects", uploaded}};
    const std::string latest = join_key(join_key(prefix, name), "latest.json");
    const std::string body = pointer.dump(2) + "\n";
    store->put(latest, body);  // last: readers switch only to a complete, verified version
    const auto info = store->head(latest);
    if (!info || info->size != static_cast<std::int64_t>(body.size())) throw_input("{}: pointer did not verify", store->describe(latest));
    return report;
}

namespace {

// latest.json of `name`, parsed and checked: (pointer, its JSON).
std::pair<LatestPointer, nlohmann::json> fetch_latest(ObjectStore& store, const std::string& prefix, const std::string& name) {
    const std::string latest_key = join_key(join_key(prefix, name), "latest.json");
    const auto pointer = nlohmann::json::parse(store.get(latest_key), nullptr, false);
    if (pointer.is_discarded() || !pointer.is_object()) throw_input("{}: not a JSON object", store.describe(latest_key));
    for (const char* k : {"artifact_name", "artifact_version_id", "artifact_prefix", "checksums"})
        if (!pointer.contains(k)) throw_input("{}: pointer lacks '{}'", store.describe(latest_key), k);
    if (pointer["artifact_name"] != name)
        throw_input("{}: names artifact {}, expected {}", store.describe(latest_key), pointer["artifact_name"].dump(), name);
    if (!pointer["artifact_version_id"].is_string() || !pointer["artifact_prefix"].is_string() || !pointer["checksums"].is_object())
        throw_input("{}: artifact_version_id and artifact_prefix must be strings, checksums an object", store.describe(latest_key));
    LatestPointer p{pointer["artifact_version_id"].get<std::string>(), pointer["artifact_prefix"].get<std::string>(), {}};
    p.stamp = p.artifact_prefix.substr(p.artifact_prefix.find_last_of('/') + 1);
    if (p.stamp.empty() || p.stamp.starts_with(".")) throw_input("{}: bad artifact_prefix '{}'", store.describe(latest_key), p.artifact_prefix);
    return {std::move(p), pointer};
}

}  // namespace

LatestPointer read_latest(const std::string& store_uri, const std::string& name) {
    std::string prefix;
    auto store = open_store(store_uri, &prefix);
    return fetch_latest(*store, prefix, name).first;
}

fs::path pull_artifact(const std::string& store_uri, const std::string& name, const fs::path& dest_root) {
    std::string prefix;
    auto store = open_store(store_uri, &prefix);
    const auto [latest, pointer] = fetch_latest(*store, prefix, name);
    const std::string latest_key = join_key(join_key(prefix, name), "latest.json");
    const std::string &vid = latest.version_id, &aprefix = latest.artifact_prefix, &stamp = latest.stamp;
    const fs::path dest = dest_root / name / stamp;
    if (fs::exists(dest / "manifest.json")) {
        const auto m = nlohmann::json::parse(read_file(dest / "manifest.json"), nullptr, false);
        if (m.is_object() && m.value("artifact_version_id", "") == vid) {
            load_artifact(dest);
            return dest;  // already here and intact
        }
        throw_input("{} exists with another version id; remove it to pull {}", dest.string(), vid);
    }
    static std::atomic<int> pulls{0};  // unique per process and per call: concurrent pulls never share a directory
    const fs::path tmp = dest_root / name / fmt::format(".{}.pull-{}-{}", stamp, ::getpid(), pulls.fetch_add(1));
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    try {
        const auto& sums = pointer["checksums"];
        for (auto it = sums.begin(); it != sums.end(); ++it) {
            const std::string& f = it.key();
            if (f.find('/') != std::string::npos || f.starts_with(".")) throw_input("{}: bad file name '{}'", store->describe(latest_key), f);
            const std::string key = join_key(aprefix, f);
            const std::string bytes = store->get(key);
            if (static_cast<std::int64_t>(bytes.size()) != it->value("size", std::int64_t{-1}) || sha256_hex(bytes) != it->value("sha256", ""))
                throw_input("{}: size or SHA-256 differs from latest.json (corrupt object)", store->describe(key));
            write_file_atomic(tmp / f, bytes);
        }
        const std::string sums_bytes = store->get(join_key(aprefix, "checksums.json"));
        const auto remote_sums = nlohmann::json::parse(sums_bytes, nullptr, false);
        if (remote_sums != sums) throw_input("{}: checksums.json differs from latest.json", store->describe(join_key(aprefix, "checksums.json")));
        write_file_atomic(tmp / "checksums.json", sums_bytes);
        const LoadedArtifact a = load_artifact(tmp);
        if (a.version_id() != vid) throw_input("{}: manifest version {} but latest.json names {}", store->describe(aprefix), a.version_id(), vid);
        fs::create_directories(dest.parent_path());
        std::error_code ec;
        fs::rename(tmp, dest, ec);
        if (ec) {  // another process sharing dest_root (a replica on this machine) moved the same version in first
            if (!fs::exists(dest / "manifest.json")) throw_input("cannot move {} to {}: {}", tmp.string(), dest.string(), ec.message());
            fs::remove_all(tmp);
        }
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    return dest;
}

}  // namespace mess
