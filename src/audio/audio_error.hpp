// Internal to the audio module: an Error that also says which AudioProblem it is.
#pragma once

#include "mess/audio.hpp"

namespace mess::audio_detail {

class AudioFileError : public Error {
public:
    AudioFileError(AudioProblem problem, std::string message)
        : Error(ErrorKind::input, std::move(message)), problem_(problem) {}
    AudioProblem problem() const noexcept { return problem_; }

private:
    AudioProblem problem_;
};

template <class... Args>
[[noreturn]] void fail(AudioProblem p, fmt::format_string<Args...> f, Args&&... args) {
    throw AudioFileError(p, fmt::format(f, std::forward<Args>(args)...));
}

// The decoder's raw result, before any judgement about minimum duration.
struct Decoded {
    AudioInfo info;
    Audio audio;
};

Decoded decode_file(const std::filesystem::path& path);

}  // namespace mess::audio_detail
