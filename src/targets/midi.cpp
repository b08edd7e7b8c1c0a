// Standard MIDI File reader and MIDI targets.
#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <numeric>

#include "mess/dsp.hpp"
#include "mess/targets.hpp"
#include "stats.hpp"

namespace mess {
namespace {

struct RawEvent {
    std::uint64_t tick;
    int order;       // file order, to keep simultaneous events stable
    int kind;        // 0 tempo, 1 note on, 2 note off, 3 control change, 4 end of track, 5 program change
    int channel, a, b;
    std::uint32_t tempo_us = 0;
};

class Reader {
public:
    Reader(std::string_view d, const std::string& name) : d_(d), name_(name) {}
    [[noreturn]] void fail(const std::string& why) const { throw_input("{}: malformed MIDI at byte {}: {}", name_, pos_, why); }
    bool done() const { return pos_ >= d_.size(); }
    std::size_t pos() const { return pos_; }
    std::uint32_t u8() {
        if (pos_ >= d_.size()) fail("unexpected end of file");
        return static_cast<unsigned char>(d_[pos_++]);
    }
    std::uint32_t be(int n) {
        std::uint32_t v = 0;
        for (int i = 0; i < n; ++i) v = v << 8 | u8();
        return v;
    }
    std::uint32_t vlq() {
        std::uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            const std::uint32_t b = u8();
            v = v << 7 | (b & 0x7f);
            if (!(b & 0x80)) return v;
        }
        fail("variable-length quantity longer than 4 bytes");
    }
    std::string_view take(std::size_t n) {
        if (n > d_.size() - pos_) fail(fmt::format("chunk or event of {} bytes runs past the end of the file", n));
        auto s = d_.substr(pos_, n);
        pos_ += n;
        return s;
    }

private:
    std::string_view d_;
    std::string name_;
    std::size_t pos_ = 0;
};

}  // namespace

MidiPerformance parse_midi(std::string_view bytes, const std::string& name) {
    Reader r(bytes, name);
    if (bytes.size() < 14 || r.take(4) != "MThd") throw_input("{}: not a Standard MIDI File (no MThd header)", name);
    const std::uint32_t hlen = r.be(4);
    if (hlen < 6) r.fail("header shorter than 6 bytes");
    const std::uint32_t format = r.be(2), ntracks = r.be(2), division = r.be(2);
    r.take(hlen - 6);
    if (format > 1) throw_input("{}: MIDI format {} is not supported (formats 0 and 1)", name, format);
    if (division == 0) r.fail("time division 0");
    std::vector<RawEvent> events;
    int order = 0;
    std::uint32_t tracks_seen = 0;
    while (!r.done()) {
        const std::string_view id = r.take(4);
        const std::uint32_t len = r.be(4);
        const std::size_t end = r.pos() + len;
        if (len > bytes.size() - r.pos()) r.fail(fmt::format("chunk '{}' of {} bytes is truncated", std::string(id), len));
        if (id != "MTrk") {  // unknown chunks are skipped, as the standard asks
            r.take(len);
            continue;
        }
        ++tracks_seen;
        std::uint64_t tick = 0;
        std::uint32_t status = 0;
        bool ended = false;
        while (r.pos() < end) {
            if (ended) r.fail("events after end-of-track");
            tick += r.vlq();
            std::uint32_t first = r.u8();
            if (first == 0xff) {  // meta event
                const std::uint32_t type = r.u8(), mlen = r.vlq();
                std::string_view data = r.take(mlen);
                if (type == 0x2f) {
                    ended = true;
                    events.push_back({tick, order++, 4, 0, 0, 0});  // the file lasts until its last end-of-track
                }
                if (type == 0x51) {
                    if (mlen != 3) r.fail("tempo meta event with length " + std::to_string(mlen));
                    const auto tempo = static_cast<std::uint32_t>(static_cast<unsigned char>(data[0]) << 16 | static_cast<unsigned char>(data[1]) << 8 |
                                                                  static_cast<unsigned char>(data[2]));
                    if (tempo == 0) r.fail("tempo of 0 µs per quarter note");
                    events.push_back({tick, order++, 0, 0, 0, 0, tempo});
                }
                status = 0;  // meta and SysEx cancel running status
                continue;
            }
            if (first == 0xf0 || first == 0xf7) {
                r.take(r.vlq());
                status = 0;
                continue;
            }
            std::uint32_t d1;
            if (first & 0x80) {
                if (first >= 0xf0) r.fail(fmt::format("system message 0x{:02x} inside a track", first));
                status = first;
                d1 = r.u8();
            } else {
                if (!status) r.fail("data byte without a running status");
                d1 = first;
            }
            const std::uint32_t type = status & 0xf0, channel = status & 0x0f;
            const bool two = type != 0xc0 && type != 0xd0;
            const std::uint32_t d2 = two ? r.u8() : 0;
            if (d1 > 127 || d2 > 127) r.fail("data byte above 127");
            if (type == 0x90 && d2 > 0) events.push_back({tick, order++, 1, static_cast<int>(channel), static_cast<int>(d1), static_cast<int>(d2)});
            else if (type == 0x80 || type == 0x90) events.push_back({tick, order++, 2, static_cast<int>(channel), static_cast<int>(d1), 0});
            else if (type == 0xb0) events.push_back({tick, order++, 3, static_cast<int>(channel), static_cast<int>(d1), static_cast<int>(d2)});
            else if (type == 0xc0) events.push_back({tick, order++, 5, static_cast<int>(channel), static_cast<int>(d1), 0});
        }
        if (r.pos() != end) r.fail("an event runs past the end of its track");
        if (!ended) r.fail("track without end-of-track");
    }
    if (tracks_seen != ntracks) throw_input("{}: header announces {} track(s), file holds {}", name, ntracks, tracks_seen);

    // Ticks → seconds through the tempo map (PPQ), or a fixed rate (SMPTE).
    std::stable_sort(events.begin(), events.end(), [](const RawEvent& a, const RawEvent& b) {
        return a.tick != b.tick ? a.tick < b.tick : (a.kind == 0) > (b.kind == 0) || ((a.kind == 0) == (b.kind == 0) && a.order < b.order);
    });
    const bool smpte = division & 0x8000;
    const double smpte_tick = smpte ? 1.0 / (-static_cast<std::int8_t>(division >> 8) * static_cast<double>(division & 0xff)) : 0.0;
    double tempo = 500000.0, seconds = 0.0;
    std::uint64_t last_tick = 0;
    MidiPerformance out;
    std::map<std::pair<int, int>, std::deque<std::pair<double, int>>> sounding;  // (channel, pitch) → (onset, velocity)
    std::map<int, double> pedal_down;
    for (const auto& e : events) {
        seconds += smpte ? static_cast<double>(e.tick - last_tick) * smpte_tick
                         : static_cast<double>(e.tick - last_tick) * tempo / 1e6 / static_cast<double>(division);
        last_tick = e.tick;
        switch (e.kind) {
            case 0: tempo = e.tempo_us; break;
            case 1: sounding[{e.channel, e.a}].push_back({seconds, e.b}); break;
            case 2: {
                auto& q = sounding[{e.channel, e.a}];
                if (q.empty()) break;  // a stray note-off: nothing to close
                out.notes.push_back({q.front().first, seconds, e.a, q.front().second, e.channel});
                q.pop_front();
                break;
            }
            case 5:
                if (out.programs[static_cast<std::size_t>(e.channel)] < 0) out.programs[static_cast<std::size_t>(e.channel)] = e.a;
                break;
            case 3:
                if (e.a != 64) break;
                if (e.b >= 64 && !pedal_down.count(e.channel)) pedal_down[e.channel] = seconds;
                else if (e.b < 64 && pedal_down.count(e.channel)) {
                    out.pedal.emplace_back(pedal_down[e.channel], seconds);
                    pedal_down.erase(e.channel);
                }
                break;
        }
    }
    out.end_sec = seconds;
    for (auto& [key, q] : sounding)
        for (auto [on, vel] : q) out.notes.push_back({on, seconds, key.second, vel, key.first});
    for (auto [ch, down] : pedal_down) out.pedal.emplace_back(down, seconds);
    std::sort(out.notes.begin(), out.notes.end(), [](const MidiNote& a, const MidiNote& b) {
        return a.onset_sec != b.onset_sec ? a.onset_sec < b.onset_sec : a.pitch < b.pitch;
    });
    std::sort(out.pedal.begin(), out.pedal.end());
    return out;
}

MidiPerformance read_midi(const std::filesystem::path& path) { return parse_midi(read_file(path), path.string()); }

std::filesystem::path find_midi_for(const std::filesystem::path& audio) {
    std::error_code ec;
    const std::string stem = audio.stem().string();
    for (const char* ext : {".mid", ".midi", ".MID", ".MIDI"}) {
        auto p = audio.parent_path() / (stem + ext);
        if (std::filesystem::exists(p, ec)) return p;
    }
    for (const char* ext : {".mid", ".midi"}) {  // SMD: audio/smd/wav-44/<id>.wav ↔ audio/smd/midi/<id>.mid
        auto p = audio.parent_path().parent_path() / "midi" / (stem + ext);
        if (std::filesystem::exists(p, ec)) return p;
    }
    return {};
}

using targets_detail::median;
using targets_detail::stdev;

void add_midi_targets(const MidiPerformance& midi, double duration, TargetSet& out) {
    auto put = [&](const std::string& name, double v) { out.arrays[name] = {static_cast<float>(v)}; };
    out.arrays["midi/available"] = {1.0f};
    // Expression (v1): every non-drum note of the performance.
    std::vector<MidiNote> notes;
    for (const auto& n : midi.notes)
        if (n.channel != 9 && n.onset_sec <= duration) notes.push_back(n);
    if (notes.size() >= 10) {
        std::vector<double> vel, pos_ioi, ratio_dur, bpm, onsets;
        for (std::size_t i = 0; i < notes.size(); ++i) {
            vel.push_back(notes[i].velocity);
            onsets.push_back(notes[i].onset_sec);
            if (i + 1 < notes.size()) {
                const double ioi = notes[i + 1].onset_sec - notes[i].onset_sec;
                if (ioi > 0) {
                    pos_ioi.push_back(ioi);
                    ratio_dur.push_back((notes[i].offset_sec - notes[i].onset_sec) / ioi);
                    bpm.push_back(60.0 / ioi);
                }
            }
        }
        std::vector<double> ratios;
        for (std::size_t i = 0; i + 1 < pos_ioi.size(); ++i) ratios.push_back(pos_ioi[i] / pos_ioi[i + 1]);
        put("expression/rubato", pos_ioi.size() >= 3 ? stdev(ratios) : 0.0);
        put("expression/velocity_mean", targets_detail::mean(vel));
        put("expression/velocity_std", stdev(vel));
        put("expression/velocity_range", *std::max_element(vel.begin(), vel.end()) - *std::min_element(vel.begin(), vel.end()));
        put("expression/articulation_ratio",
            ratio_dur.empty() ? 1.0 : targets_detail::mean(ratio_dur));
        put("expression/tempo_variability", stdev(bpm));
        double timing = 0.0;
        if (onsets.size() >= 4 && !pos_ioi.empty()) {
            const double g = median(pos_ioi);
            std::vector<double> dev;
            for (double o : onsets) dev.push_back(o - std::round(o / g) * g);
            timing = stdev(dev);
        }
        put("expression/onset_timing_std", timing);
    }
    // T6–T8: every note, first 30 s of the audio.
    const double window = std::min(30.0, duration);
    std::vector<MidiNote> early;
    for (const auto& n : midi.notes)
        if (n.onset_sec <= window) early.push_back(n);
    std::vector<float> hist(16, 0.0f);
    if (early.size() < 2) {
        std::fill(hist.begin(), hist.end(), 1.0f / 16);
    } else {
        for (std::size_t i = 0; i + 1 < early.size(); ++i) {
            const double off = std::min(early[i].offset_sec, window);
            double r = (off - early[i].onset_sec) / std::max(early[i + 1].onset_sec - early[i].onset_sec, 1e-3);
            r = std::clamp(r, 0.0, 1.5);
            hist[static_cast<std::size_t>(std::min(15.0, std::floor(r / 1.5 * 16)))] += 1.0f;
        }
        const float total = std::accumulate(hist.begin(), hist.end(), 0.0f);
        for (auto& h : hist) h /= total;
    }
    out.arrays["midi/articulation_hist"] = hist;
    if (early.size() >= 2) {
        std::vector<double> vel;
        for (const auto& n : early) vel.push_back(n.velocity);
        put("midi/velocity_std", stdev(vel));
    }
    std::vector<double> logioi;
    for (std::size_t i = 0; i + 1 < early.size(); ++i) {
        const double ioi = early[i + 1].onset_sec - early[i].onset_sec;
        if (ioi > 0) logioi.push_back(std::log(ioi + 1e-6));
    }
    put("midi/ioi_std", stdev(logioi));
    // Pedal: fraction of each 0.5-s frame held (10-ms steps), zero past the audio, mean over 60 frames.
    double held = 0.0;
    for (int f = 0; f < 60; ++f)
        for (int s = 0; s < 50; ++s) {
            const double t = f * 0.5 + (s + 0.5) * 0.01;
            if (t >= duration) continue;
            for (auto [down, up] : midi.pedal)
                if (t >= down && t < up) {
                    held += 1.0;
                    break;
                }
        }
    put("midi/pedal_ratio", held / (60.0 * 50.0));
    // Performance tempo: median IOI of onsets within ±1 s of each frame centre.
    std::vector<double> onsets;
    for (const auto& n : early) onsets.push_back(n.onset_sec);
    onsets.erase(std::unique(onsets.begin(), onsets.end()), onsets.end());
    if (onsets.size() >= 4) {
        std::vector<float> curve(60);
        double previous = 1.0;
        for (int f = 0; f < 60; ++f) {
            const double c = (f + 0.5) / 2.0;
            std::vector<double> near;
            for (double o : onsets)
                if (std::fabs(o - c) <= 1.0) near.push_back(o);
            if (near.size() >= 3) {
                std::vector<double> iois;
                for (std::size_t i = 0; i + 1 < near.size(); ++i) iois.push_back(near[i + 1] - near[i]);
                previous = std::log2(std::clamp(60.0 / median(iois), 40.0, 240.0) / 60.0);
            }
            curve[static_cast<std::size_t>(f)] = static_cast<float>(previous);
        }
        out.arrays["midi/perf_tempo"] = dsp::median_filter(curve, 3);
    }
}

}  // namespace mess
