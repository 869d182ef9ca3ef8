// Multi-key needle retrieval (after RULER's niah_multikey): several sentences "One of the special
// magic numbers for KEY is: VALUE." with distinct keys and 7-digit values at random depths of a
// real-prose haystack (sentence boundaries); the question asks for one key's value; exact match of
// that value in the greedy answer (Metric::ContainsNumber).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "haystack.hpp"

namespace evaltasks {

inline constexpr const char* kMultiKeyPreamble =
    "Some special magic numbers are hidden within the following text. Make sure to memorize them. "
    "I will quiz you about the numbers afterwards.\n\n";

/// Word lists for the keys ("amber-falcon"): 32 x 32 combinations.
inline const std::vector<std::string>& key_adjectives() {
  static const std::vector<std::string> w = {
      "amber", "brisk", "calm", "dusty", "eager", "faint", "gentle", "hollow", "icy", "jolly", "keen",
      "lively", "mellow", "noble", "olive", "proud", "quiet", "rapid", "silent", "tidy", "upper", "vivid",
      "wary", "young", "zesty", "bold", "crisp", "deep", "early", "fuzzy", "grand", "humble"};
  return w;
}
inline const std::vector<std::string>& key_nouns() {
  static const std::vector<std::string> w = {
      "falcon", "harbor", "meadow", "lantern", "canyon", "willow", "compass", "glacier", "orchard", "beacon",
      "ember", "forest", "garden", "island", "jungle", "kettle", "ladder", "mirror", "needle", "oyster",
      "pepper", "quarry", "river", "saddle", "tunnel", "valley", "wagon", "anchor", "basket", "castle",
      "dragon", "engine"};
  return w;
}

inline std::string multikey_sentence(const std::string& key, const std::string& value) {
  return "One of the special magic numbers for " + key + " is: " + value + ".";
}

class MultiKeyTask {
 public:
  static constexpr const char* kName = "multikey";
  static constexpr int kNewTokens = 16;  // a 7-digit number is 7 Qwen2 tokens, plus a few words

  MultiKeyTask(const llama3::Tokenizer& tok, const Haystack& hay, std::uint64_t seed = 2, int needles = 4)
      : tok_(tok), hay_(hay), seed_(seed), needles_(needles) {}

  static std::string question(const std::string& key) {
    return "\n\nWhat is the special magic number for " + key +
           " mentioned in the text above? Answer with the number only.";
  }

  Sample make(int length, int index, int requested_length = 0) const {
    Rng rng(mix_seed(seed_, static_cast<std::uint64_t>(length), static_cast<std::uint64_t>(index), 0x6b6579));
    std::vector<std::string> keys, values;
    std::set<std::string> seen_keys, seen_values;
    while (static_cast<int>(keys.size()) < needles_) {
      const std::string k = key_adjectives()[rng.below(key_adjectives().size())] + "-" +
                            key_nouns()[rng.below(key_nouns().size())];
      const std::string v = random_number(rng, 7);
      if (!seen_keys.insert(k).second || !seen_values.insert(v).second) continue;
      keys.push_back(k);
      values.push_back(v);
    }
    const std::size_t query = static_cast<std::size_t>(rng.below(keys.size()));
    const Frame frame = chat_frame(tok_, kMultiKeyPreamble, question(keys[query]));
    std::vector<Tokens> needles;
    std::vector<double> targets;
    int needle_tokens = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      needles.push_back(tok_.encode(" " + multikey_sentence(keys[i], values[i]), false, false));
      needle_tokens += static_cast<int>(needles.back().size());
      targets.push_back(0.02 + 0.96 * rng.unit());
    }
    const int H = body_budget(frame, length, needle_tokens + 64) - needle_tokens;
    std::vector<int> starts;
    const Tokens hay = hay_.fill(static_cast<std::size_t>(rng.below(hay_.segments())), H, true, &starts);
    const Placement p = place_needles(hay, starts, needles, targets, false, false);
    Sample s;
    s.task = kName;
    s.length = length;
    s.requested_length = requested_length > 0 ? requested_length : length;
    s.index = index;
    s.prompt = assemble(frame, p.body, length);
    s.max_new_tokens = kNewTokens;
    s.metric = Metric::ContainsNumber;
    s.answers = {values[query]};
    s.depth = static_cast<double>(p.hay_offset[query]) / H;
    for (std::size_t i = 0; i < needles.size(); ++i) s.needle_at.push_back(static_cast<int>(frame.prefix.size()) + p.at[i]);
    s.needles = needles;
    s.info = "key " + keys[query] + " (" + std::to_string(keys.size()) + " keys)";
    return s;
  }

 private:
  const llama3::Tokenizer& tok_;
  const Haystack& hay_;
  std::uint64_t seed_;
  int needles_;
};

}  // namespace evaltasks
