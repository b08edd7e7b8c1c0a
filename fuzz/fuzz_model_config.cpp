// config.json (and preprocessor_config.json after the first NUL byte, when there is one) → ModelConfig::parse,
// then the size arithmetic every loader does with a parsed config.
#include <algorithm>

#include "fuzz_common.hpp"
#include "mess/model.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = mess_fuzz::as_text(data, size);
    const std::size_t nul = text.find('\0');
    const std::string config(text.substr(0, nul)), pre(nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1));
    mess_fuzz::guarded([&] {
        const mess::ModelConfig c = mess::ModelConfig::parse(config, pre, "config.json");
        (void)c.min_samples();
        (void)c.frames_for(120000);
        (void)c.head_dim();
        (void)mess::architecture_table(c);
    });
    return 0;
}
