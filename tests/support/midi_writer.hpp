// A minimal Standard MIDI File writer for tests: tracks of (delta ticks, raw bytes) events.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace mess::test {

// A minimal SMF writer for tests: events are (delta ticks, raw bytes).
struct Track {
    std::string bytes;
    void vlq(std::uint32_t v) {
        char buf[5];
        int n = 0;
        buf[n++] = static_cast<char>(v & 0x7f);
        while (v >>= 7) buf[n++] = static_cast<char>((v & 0x7f) | 0x80);
        while (n) bytes += buf[--n];
    }
    void event(std::uint32_t delta, std::initializer_list<int> data) {
        vlq(delta);
        for (int b : data) bytes += static_cast<char>(b);
    }
    void tempo(std::uint32_t delta, std::uint32_t us) { event(delta, {0xff, 0x51, 3, static_cast<int>(us >> 16), static_cast<int>((us >> 8) & 0xff), static_cast<int>(us & 0xff)}); }
    void end(std::uint32_t delta = 0) { event(delta, {0xff, 0x2f, 0}); }
};

inline std::string be(std::uint32_t v, int n) {
    std::string s;
    for (int i = n - 1; i >= 0; --i) s += static_cast<char>((v >> (8 * i)) & 0xff);
    return s;
}

inline std::string smf(int format, int division, const std::vector<Track>& tracks) {
    std::string s = "MThd" + be(6, 4) + be(static_cast<std::uint32_t>(format), 2) + be(static_cast<std::uint32_t>(tracks.size()), 2) +
                    be(static_cast<std::uint32_t>(division), 2);
    for (const auto& t : tracks) s += "MTrk" + be(static_cast<std::uint32_t>(t.bytes.size()), 4) + t.bytes;
    return s;
}

// A melody over a bass line played three times: (pitch, length in eighths), 480 ticks per quarter at
// 120 BPM, on General MIDI `program`.
inline std::string melody_smf(const std::vector<std::pair<int, int>>& melody, int bass_root, int program) {
    Track t;
    t.tempo(0, 500000);
    t.event(0, {0xc0, program});
    for (int repeat = 0; repeat < 3; ++repeat)
        for (auto [pitch, eighths] : melody) {
            t.event(0, {0x90, pitch, 90});
            t.event(0, {0x90, bass_root, 60});
            t.event(static_cast<std::uint32_t>(eighths * 240), {0x80, pitch, 0});
            t.event(0, {0x80, bass_root, 0});
        }
    t.end();
    return smf(0, 480, {t});
}

}  // namespace mess::test
