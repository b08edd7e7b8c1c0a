// Internal to the eval module: the rendering pieces corpus.cpp owns and factor_corpus.cpp reuses —
// timed synth events, the libfluidsynth renderer (one SoundFont load, reverb and chorus off), WAV and SMF
// writers, the SoundFont search and work ids. Not a public header.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fluidsynth.h>

#include "mess/eval.hpp"
#include "mess/targets.hpp"
#include "mess/util.hpp"

namespace mess::corpus_render {

namespace fs = std::filesystem;

struct Event {
    double sec;
    int order;  // at equal times: pedal up, note off, program, pedal down, note on
    int type;   // 0 note on, 1 note off, 2 cc64, 3 program
    int channel, a, b;
};


// One synthesizer (the SoundFont loaded once), reverb and chorus off so every rendering is a pure
// function of its events.
class Synth {
public:
    Synth(const fs::path& soundfont, int rate) {
        fluid_set_log_function(FLUID_WARN, nullptr, nullptr);
        fluid_set_log_function(FLUID_INFO, nullptr, nullptr);
        fluid_set_log_function(FLUID_DBG, nullptr, nullptr);
        settings_ = new_fluid_settings();
        fluid_settings_setnum(settings_, "synth.sample-rate", rate);
        fluid_settings_setint(settings_, "synth.reverb.active", 0);
        fluid_settings_setint(settings_, "synth.chorus.active", 0);
        fluid_settings_setint(settings_, "synth.cpu-cores", 1);
        fluid_settings_setint(settings_, "synth.polyphony", 256);
        synth_ = new_fluid_synth(settings_);
        if (!synth_ || fluid_synth_sfload(synth_, soundfont.c_str(), 1) == FLUID_FAILED) {
            cleanup();
            throw_input("{}: fluidsynth could not load this SoundFont", soundfont.string());
        }
    }
    ~Synth() { cleanup(); }
    Synth(const Synth&) = delete;
    Synth& operator=(const Synth&) = delete;

    std::vector<float> render(const std::vector<Event>& ev, double end_sec, int rate) {
        fluid_synth_system_reset(synth_);
        std::vector<float> out, left(512), right(512);
        auto run_until = [&](std::int64_t sample) {
            while (static_cast<std::int64_t>(out.size()) < sample) {
                const int n = static_cast<int>(std::min<std::int64_t>(512, sample - static_cast<std::int64_t>(out.size())));
                fluid_synth_write_float(synth_, n, left.data(), 0, 1, right.data(), 0, 1);
                for (int i = 0; i < n; ++i) out.push_back(0.5f * (left[i] + right[i]));
            }
        };
        for (const Event& e : ev) {
            run_until(static_cast<std::int64_t>(std::llround(e.sec * rate)));
            switch (e.type) {
                case 0: fluid_synth_noteon(synth_, e.channel, e.a, e.b); break;
                case 1: fluid_synth_noteoff(synth_, e.channel, e.a); break;
                case 2: fluid_synth_cc(synth_, e.channel, 64, e.b); break;
                default: fluid_synth_program_change(synth_, e.channel, e.a); break;
            }
        }
        // Let the last notes ring out (at most 3 s).
        fluid_synth_all_notes_off(synth_, -1);
        const auto tail_end = static_cast<std::int64_t>(std::llround((end_sec + 3.0) * rate));
        run_until(static_cast<std::int64_t>(std::llround((end_sec + 0.5) * rate)));
        while (static_cast<std::int64_t>(out.size()) < tail_end && fluid_synth_get_active_voice_count(synth_) > 0)
            run_until(static_cast<std::int64_t>(out.size()) + rate / 10);
        return out;
    }

private:
    void cleanup() {
        if (synth_) delete_fluid_synth(synth_);
        if (settings_) delete_fluid_settings(settings_);
        synth_ = nullptr;
        settings_ = nullptr;
    }
    fluid_settings_t* settings_ = nullptr;
    fluid_synth_t* synth_ = nullptr;
};

// 16-bit PCM mono WAV, written atomically (samples clamped to [-1, 1]).
void write_wav16(const fs::path& path, const std::vector<float>& x, int rate);
// Format-0 SMF of the events (480 ticks per quarter at 120 BPM), written atomically.
void save_smf(const fs::path& path, const std::vector<Event>& ev);
// params.soundfont, or the first of default_soundfonts() installed. Errors: Error(usage) when none.
fs::path find_soundfont(const CorpusParams& params);
// The file's stem, lower-cased, non-alphanumerics → '-'.
std::string work_id_of(const fs::path& path);
// The GM program of the first pitched note's channel (-1: none given).
int first_pitched_program(const MidiPerformance& midi);

}  // namespace mess::corpus_render
