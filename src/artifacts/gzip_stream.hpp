// Streaming gzip for the artifact files that grow with the number of rows (records.json.gz,
// clip_records.json.gz): written and read a piece at a time, so a 10-million-passage index never holds
// its records as one JSON document or one decompressed string. Internal to the artifacts module.
#pragma once

#include <filesystem>
#include <functional>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "mess/util.hpp"

namespace mess::detail {

// Compresses what is written into `path` as gzip, atomically: the file appears only on commit(), and
// a writer destroyed without commit leaves nothing behind. Errors: Error(io) naming the file.
class GzipWriter {
public:
    explicit GzipWriter(std::filesystem::path path);
    ~GzipWriter();
    GzipWriter(const GzipWriter&) = delete;
    GzipWriter& operator=(const GzipWriter&) = delete;

    void write(std::string_view bytes);
    void commit();

private:
    void deflate_into_file(int flush);

    AtomicFile file_;
    struct State;
    State* state_;
};

// Calls `on_element` with each element of the JSON array stored gzip-compressed in `path`, in order,
// holding one element at a time. Returns the number of elements. Errors: Error(input) naming the file
// when it is not gzip, is truncated, is not JSON or its top level is not an array; what `on_element`
// throws passes through.
std::size_t for_each_gzip_json_element(const std::filesystem::path& path, const std::function<void(nlohmann::json&)>& on_element);

}  // namespace mess::detail
