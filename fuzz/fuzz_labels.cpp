// labels.json text → JSON → mess::parse_labels (what read_labels does), then lookups by id.
#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "mess/eval.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto j = nlohmann::json::parse(mess_fuzz::as_text(data, size), nullptr, false);
    if (j.is_discarded()) return 0;  // read_labels rejects it before parse_labels
    mess_fuzz::guarded([&] {
        const mess::Labels labels = mess::parse_labels(j, "labels.json");
        for (const auto& item : labels.items)
            if (labels.find(item.id) == nullptr) mess_fuzz::finding("parse_labels", "an item cannot be found by its id");
    });
    return 0;
}
