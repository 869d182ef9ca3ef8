// Passkey retrieval grid: a sentence "The pass key is NNNNN. Remember it." inserted at depth d of a
// haystack of real prose (at a sentence boundary), in a chat prompt of an exact token length that
// ends with the question; scored by exact match of the 5-digit key in the greedy answer
// (Metric::ContainsNumber: the key as a whole number anywhere in the answer).
//
// Depth = haystack tokens before the needle / haystack tokens (the frame's preamble and question
// excluded). Depth 0 puts the needle first; depth 100 puts it before the last (cut) segment.
#pragma once

#include <cstdint>
#include <string>

#include "common.hpp"
#include "haystack.hpp"

namespace evaltasks {

inline constexpr const char* kPasskeyPreamble =
    "There is an important piece of information hidden inside a lot of irrelevant text. Find it and "
    "memorize it. I will quiz you about it afterwards.\n\n";
inline constexpr const char* kPasskeyQuestion = "\n\nWhat is the pass key? Answer with the pass key only.";

inline std::string passkey_sentence(const std::string& key) { return "The pass key is " + key + ". Remember it."; }

class PasskeyTask {
 public:
  static constexpr const char* kName = "passkey";
  static constexpr int kNewTokens = 12;  // "The pass key is 1 2 3 4 5." is ~11 Qwen2 tokens (digits split)

  PasskeyTask(const llama3::Tokenizer& tok, const Haystack& hay, std::uint64_t seed = 1)
      : tok_(tok), hay_(hay), seed_(seed), frame_(chat_frame(tok, kPasskeyPreamble, kPasskeyQuestion)) {}

  const Frame& frame() const { return frame_; }

  /// The cell (length, depth_percent), from the seed.
  Sample make(int length, int depth_percent, int requested_length = 0) const {
    // One haystack per length (the same text at every depth, as in the usual needle grid), a
    // fresh key per cell.
    Rng hay_rng(mix_seed(seed_, static_cast<std::uint64_t>(length), 0x686179));
    const std::size_t first = static_cast<std::size_t>(hay_rng.below(hay_.segments()));
    Rng rng(mix_seed(seed_, static_cast<std::uint64_t>(length), static_cast<std::uint64_t>(depth_percent)));
    const std::string key = random_number(rng, 5);
    const std::string sentence = passkey_sentence(key);
    const bool front = depth_percent <= 0;
    // Inside the text the needle follows a sentence end, so it carries a leading space; at the
    // front it starts the body and the haystack's first segment keeps its own leading space.
    const Tokens needle = tok_.encode(front ? sentence : " " + sentence, false, false);
    const int H = body_budget(frame_, length, static_cast<int>(needle.size()) + 16) - static_cast<int>(needle.size());
    std::vector<int> starts;
    const Tokens hay = hay_.fill(first, H, /*strip_first=*/!front, &starts);
    const Placement p =
        place_needles(hay, starts, {needle}, {front ? 0.0 : depth_percent / 100.0}, false, /*allow_front=*/front);
    Sample s;
    s.task = kName;
    s.length = length;
    s.requested_length = requested_length > 0 ? requested_length : length;
    s.index = depth_percent;
    s.prompt = assemble(frame_, p.body, length);
    s.max_new_tokens = kNewTokens;
    s.metric = Metric::ContainsNumber;
    s.answers = {key};
    s.depth_percent = depth_percent;
    s.depth = static_cast<double>(p.hay_offset[0]) / H;
    s.needle_at = {static_cast<int>(frame_.prefix.size()) + p.at[0]};
    s.needles = {needle};
    s.info = "key " + key;
    return s;
  }

 private:
  const llama3::Tokenizer& tok_;
  const Haystack& hay_;
  std::uint64_t seed_;
  Frame frame_;
};

}  // namespace evaltasks
