#include "mess/util.hpp"

namespace mess {

Error Error::with_context(std::string_view context) const {
    return Error(kind_, fmt::format("{}: {}", context, what()));
}

int exit_code(ErrorKind kind) noexcept {
    switch (kind) {
        case ErrorKind::usage: return 1;
        case ErrorKind::input: return 2;
        case ErrorKind::internal: return 3;
    }
    return 3;
}

}  // namespace mess
