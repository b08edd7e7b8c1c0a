// Audio file bytes → the front end: mess::load_audio (libsndfile decode by content, truncation and NaN
// checks, downmix, soxr to 24 kHz) and the window plan of the result; then check_audio, which must not throw.
#include "fuzz_common.hpp"
#include "mess/audio.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto path = mess_fuzz::write_scratch("fuzz.audio", mess_fuzz::as_text(data, size));
    mess_fuzz::guarded([&] {
        const mess::Audio a = mess::load_audio(path);
        (void)mess::plan_windows(static_cast<std::int64_t>(a.samples.size()));
    });
    mess_fuzz::guarded([&] {
        const mess::AudioCheck c = mess::check_audio(path);
        if (!c.valid && c.message.empty()) mess_fuzz::finding("check_audio", "invalid without a message");
    });
    return 0;
}
