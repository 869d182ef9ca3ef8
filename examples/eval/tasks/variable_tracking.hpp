// Variable tracking (after RULER's vt): a chain of assignments "VAR AAAAA = 12345.", "VAR BBBBB =
// VAR AAAAA.", ... and a distractor chain with another value, each statement at a sentence boundary
// of a real-prose haystack, every chain in its own order; the question asks which variables are
// assigned the first chain's value. Score (Metric::FractionNamed, as RULER's string_match_all):
// the share of the chain's variables named in the answer. Names are matched as whole words and
// case-sensitively (stricter than RULER's lower-cased substring test, so that a name cannot match
// an ordinary word of the answer).
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"
#include "haystack.hpp"

namespace evaltasks {

inline constexpr const char* kVariablePreamble =
    "Memorize and track the chain(s) of variable assignment hidden in the following text.\n\n";

class VariableTrackingTask {
 public:
  static constexpr const char* kName = "variable_tracking";
  static constexpr int kNewTokens = 40;  // 5 names of 5 capitals (2-4 tokens each), separators, a preamble

  /// `chains` chains of `hops` + 1 variables each; the first chain is the one asked about.
  VariableTrackingTask(const llama3::Tokenizer& tok, const Haystack& hay, std::uint64_t seed = 3, int hops = 4,
                       int chains = 2)
      : tok_(tok), hay_(hay), seed_(seed), hops_(hops), chains_(chains) {}

  static std::string question(const std::string& value) {
    return "\n\nQuestion: Find all variables that are assigned the value " + value +
           " in the text above, directly or through other variables. Answer with the variable names only, "
           "separated by commas.";
  }

  Sample make(int length, int index, int requested_length = 0) const {
    Rng rng(mix_seed(seed_, static_cast<std::uint64_t>(length), static_cast<std::uint64_t>(index), 0x766172));
    std::set<std::string> names_seen, values_seen;
    std::vector<std::vector<std::string>> chain_names(static_cast<std::size_t>(chains_));
    std::vector<std::string> values;
    for (int c = 0; c < chains_; ++c) {
      std::string v;
      do v = random_number(rng, 5);
      while (!values_seen.insert(v).second);
      values.push_back(v);
      while (static_cast<int>(chain_names[c].size()) < hops_ + 1) {
        std::string n;
        for (int i = 0; i < 5; ++i) n += static_cast<char>('A' + rng.below(26));
        if (names_seen.insert(n).second) chain_names[c].push_back(n);
      }
    }
    // Statements of every chain in order, the chains interleaved at random.
    std::vector<std::string> statements;
    std::vector<std::size_t> next(static_cast<std::size_t>(chains_), 0);
    for (int left = chains_ * (hops_ + 1); left > 0; --left) {
      std::vector<std::size_t> open;
      for (std::size_t c = 0; c < next.size(); ++c) {
        if (next[c] < chain_names[c].size()) open.push_back(c);
      }
      const std::size_t c = open[static_cast<std::size_t>(rng.below(open.size()))];
      const std::size_t i = next[c]++;
      statements.push_back(i == 0 ? "VAR " + chain_names[c][0] + " = " + values[c] + "."
                                  : "VAR " + chain_names[c][i] + " = VAR " + chain_names[c][i - 1] + ".");
    }
    const Frame frame = chat_frame(tok_, kVariablePreamble, question(values[0]));
    std::vector<Tokens> needles;
    std::vector<double> targets;
    int needle_tokens = 0;
    for (const std::string& st : statements) {
      needles.push_back(tok_.encode(" " + st, false, false));
      needle_tokens += static_cast<int>(needles.back().size());
      targets.push_back(0.02 + 0.96 * rng.unit());
    }
    const int H = body_budget(frame, length, needle_tokens + 64) - needle_tokens;
    std::vector<int> starts;
    const Tokens hay = hay_.fill(static_cast<std::size_t>(rng.below(hay_.segments())), H, true, &starts);
    const Placement p = place_needles(hay, starts, needles, targets, /*keep_order=*/true, false);
    Sample s;
    s.task = kName;
    s.length = length;
    s.requested_length = requested_length > 0 ? requested_length : length;
    s.index = index;
    s.prompt = assemble(frame, p.body, length);
    s.max_new_tokens = kNewTokens;
    s.metric = Metric::FractionNamed;
    s.answers = chain_names[0];
    for (std::size_t i = 0; i < needles.size(); ++i) s.needle_at.push_back(static_cast<int>(frame.prefix.size()) + p.at[i]);
    s.needles = needles;
    s.info = "value " + values[0] + ", " + std::to_string(chains_) + " chains of " + std::to_string(hops_ + 1);
    return s;
  }

  int hops() const { return hops_; }
  int chains() const { return chains_; }

 private:
  const llama3::Tokenizer& tok_;
  const Haystack& hay_;
  std::uint64_t seed_;
  int hops_, chains_;
};

}  // namespace evaltasks
