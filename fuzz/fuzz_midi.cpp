// Standard MIDI File bytes → mess::parse_midi, then the MIDI targets computed from what it returns.
#include <algorithm>
#include <cmath>

#include "fuzz_common.hpp"
#include "mess/targets.hpp"

static const int kQuiet = mess_fuzz::quiet();

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    mess_fuzz::guarded([&] {
        const mess::MidiPerformance m = mess::parse_midi(mess_fuzz::as_text(data, size), "fuzz.mid");
        for (const auto& n : m.notes)
            if (!(n.offset_sec >= n.onset_sec) || !std::isfinite(n.onset_sec) || !std::isfinite(n.offset_sec))
                mess_fuzz::finding("parse_midi", "a note ends before it starts or has a non-finite time");
        mess::TargetSet targets;
        mess::add_midi_targets(m, std::clamp(m.end_sec, 1.0, 60.0), targets);
    });
    return 0;
}
