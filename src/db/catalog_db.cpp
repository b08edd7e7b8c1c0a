#include <chrono>
#include <cstdlib>
#include <ctime>
#include <thread>

#include <fmt/format.h>

#include "backends.hpp"

namespace mess::db {

std::string utc_now() {
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    return fmt::format("{}.{:03d}Z", text, static_cast<int>(ms));
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
    for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
        text.replace(at, from.size(), to);
    return text;
}

std::string portable_ddl(const std::string& sql, const char* id, const char* dbl, const char* bigint) {
    return replace_all(replace_all(replace_all(sql, "{id}", id), "{double}", dbl), "{bigint}", bigint);
}

std::string num(std::int64_t value) { return std::to_string(value); }
std::string num(double value) { return fmt::format("{}", value); }

Setting<std::string> catalog_setting(const ConfigFlags& flags, const Config& config, const char* (*getenv_fn)(const char*)) {
    Setting<std::string> s{"sqlite:" + (config.data_root.value / "catalog.sqlite").string(), "default (data root)"};
    if (auto it = flags.find("catalog"); it != flags.end()) s = {it->second, "flag --catalog"};
    else if (const char* v = getenv_fn ? getenv_fn("MESS_CATALOG") : std::getenv("MESS_CATALOG"); v != nullptr && *v != '\0')
        s = {v, "env MESS_CATALOG"};
    if (!s.value.starts_with("sqlite:") && !s.value.starts_with("postgresql://") && !s.value.starts_with("postgres://"))
        throw_usage("{}: unknown catalog '{}' (expected sqlite:<file> or postgresql://…)", s.source, redact_url(s.value));
    return s;
}

std::string catalog_url(const Config& config) { return catalog_setting({}, config).value; }

std::string redact_url(const std::string& url) {
    const std::size_t scheme = url.find("://");
    if (scheme == std::string::npos) return url;
    const std::size_t at = url.find('@', scheme + 3), slash = url.find('/', scheme + 3);
    std::string out = url;
    if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
        const std::size_t colon = url.find(':', scheme + 3);
        if (colon != std::string::npos && colon < at) out = url.substr(0, colon + 1) + "***" + url.substr(at);
    }
    const std::size_t pw = out.find("password=");
    if (pw != std::string::npos) {
        const std::size_t end = out.find('&', pw);
        out = out.substr(0, pw + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
    }
    return out;
}

const std::string& CatalogDb::Row::at(std::size_t i) const {
    static const std::string empty;
    if (i >= values.size()) throw_internal("catalog row has {} columns, asked for column {}", values.size(), i);
    return values[i] ? *values[i] : empty;
}

CatalogDb::~CatalogDb() = default;

std::unique_ptr<CatalogDb> CatalogDb::open(const std::string& url, const OpenOptions& options) {
    std::unique_ptr<CatalogDb> db;
    if (url.starts_with("sqlite:")) db = open_sqlite(url, options);
    else if (url.starts_with("postgresql://") || url.starts_with("postgres://")) db = open_postgres(url, options);
    else throw_usage("catalog '{}': unknown kind (expected sqlite:<file> or postgresql://…)", redact_url(url));
    if (options.migrate) db->migrate(options);
    return db;
}

// Retries the whole transaction on a busy database or a serialisation failure, with a growing pause.
void CatalogDb::transaction(const std::function<void()>& fn) {
    if (depth_ > 0) {
        fn();
        return;
    }
    for (int attempt = 0;; ++attempt) {
        try {
            begin_write();
            depth_ = 1;
            fn();
            exec("COMMIT");
            depth_ = 0;
            return;
        } catch (const Error& e) {
            const bool in_transaction = depth_ > 0;
            depth_ = 0;
            if (in_transaction) {
                try { exec("ROLLBACK"); } catch (const Error&) {}  // the error below is the one to report
            }
            if (!retryable(e) || attempt >= 40) throw;
            std::this_thread::sleep_for(std::chrono::milliseconds(5 + 5 * attempt));
        }
    }
}

}  // namespace mess::db
