// Words for directions: "like this but slower and more restrained" → tempo −1, dynamics −1.
#include <cctype>

#include "mess/search.hpp"
#include "mess/util.hpp"

namespace mess {

const std::map<std::string, std::pair<std::string, int>>& text_vocabulary() {
    static const std::map<std::string, std::pair<std::string, int>> words = {
        {"faster", {"tempo", 1}},           {"quicker", {"tempo", 1}},          {"slower", {"tempo", -1}},
        {"louder", {"dynamics", 1}},        {"intense", {"dynamics", 1}},       {"stronger", {"dynamics", 1}},
        {"softer", {"dynamics", -1}},       {"quieter", {"dynamics", -1}},      {"restrained", {"dynamics", -1}},
        {"gentler", {"dynamics", -1}},      {"smoother", {"articulation", 1}},  {"legato", {"articulation", 1}},
        {"connected", {"articulation", 1}}, {"crisper", {"articulation", -1}},  {"detached", {"articulation", -1}},
        {"staccato", {"articulation", -1}}, {"sharper", {"articulation", -1}},  {"brighter", {"brightness", 1}},
        {"darker", {"brightness", -1}}};
    return words;
}

TextQuery parse_text_query(const std::string& text) {
    static const std::set<std::string> skipped = {"like", "this", "that", "one", "but", "and", "more", "a", "bit", "little", "much",
                                                  "slightly", "somewhat", "the", "with", "same", "similar", "only", "just", "rather"};
    TextQuery q;
    std::string word;
    bool negate = false;
    auto take = [&] {
        if (word.empty()) return;
        const std::string w = to_lower(word);
        word.clear();
        if (w == "less") {
            negate = true;
            return;
        }
        const auto it = text_vocabulary().find(w);
        if (it == text_vocabulary().end()) {
            if (!skipped.contains(w)) q.unknown.push_back(w);
            return;
        }
        const int sign = negate ? -it->second.second : it->second.second;
        negate = false;
        const auto [at, fresh] = q.more_less.emplace(it->second.first, sign);
        if (!fresh && at->second != sign) throw_usage("'{}' asks for both more and less {}", text, it->second.first);
    };
    for (char c : text) {
        if (std::isalpha(static_cast<unsigned char>(c)) || c == '-') word += c;
        else take();
    }
    take();
    return q;
}

}  // namespace mess
