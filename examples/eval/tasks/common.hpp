// Shared pieces of the long-context task generators (host only, plain C++17): a seeded random
// generator, the Sample every task produces, prompt frames of an exact token length, the model's
// context limit, and the answer scorers (exact number match, names found, edit similarity).
//
// Every prompt is a concatenation of separately tokenized pieces (frame prefix, haystack
// segments, needles, frame suffix), so its length in the model's tokens is exact by construction
// and every inserted piece sits at a known token offset. (The concatenation is a valid
// tokenization of the prompt text; it is not always the one the tokenizer would produce for the
// whole text at once, which does not matter to the model.)
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "llama3/chat_template.hpp"
#include "llama3/tokenizer.hpp"

namespace evaltasks {

using Tokens = std::vector<std::int32_t>;

// ---- deterministic random numbers ------------------------------------------------------------------

/// splitmix64: the same sequence on every platform and standard library (std:: distributions are
/// not specified bit for bit, so they are not used).
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n) (n >= 1); the modulo bias is below 2^-40 for the n used here.
  std::uint64_t below(std::uint64_t n) { return n <= 1 ? 0 : next() % n; }
  /// Uniform in [lo, hi].
  long long between(long long lo, long long hi) {
    return lo + static_cast<long long>(below(static_cast<std::uint64_t>(hi - lo + 1)));
  }
  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[static_cast<std::size_t>(below(i))]);
  }

 private:
  std::uint64_t state_;
};

/// A seed for one sample from the task's seed and the sample's coordinates.
inline std::uint64_t mix_seed(std::uint64_t seed, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0) {
  Rng r(seed ^ (a * 0xD1B54A32D192ED03ull) ^ (b * 0xABC98388FB8FAC03ull) ^ (c * 0x8CB92BA72F3D8DD7ull));
  return r.next();
}

// ---- samples ---------------------------------------------------------------------------------------

/// How a sample's greedy answer is scored (score_answer).
enum class Metric {
  ContainsNumber,  ///< answers[0] (digits) occurs in the answer as a whole number: 1 or 0
  FractionNamed,   ///< share of answers[] found in the answer as whole words, case-sensitive
  EditSimilarity,  ///< code_sim(first code line of the answer, answers[0]) / 100
};

/// One prompt of a task, with what is needed to score the model's answer.
struct Sample {
  std::string task;
  int length = 0;            ///< prompt tokens, exact (prompt.size())
  int requested_length = 0;  ///< the grid's length before any cap to the model's context
  int index = 0;             ///< sample number within (task, length)
  Tokens prompt;
  int max_new_tokens = 0;
  bool stop_at_first_line = false;  ///< code: decoding may stop once the first code line is complete
  Metric metric = Metric::ContainsNumber;
  std::vector<std::string> answers;
  int depth_percent = -1;        ///< passkey: requested depth
  double depth = NAN;            ///< passkey: needle token offset / haystack tokens
  std::vector<int> needle_at;    ///< token offset in the prompt of each inserted needle
  std::vector<Tokens> needles;   ///< the inserted needle tokens, in the order of needle_at
  std::string info;              ///< e.g. the queried key, the source file and line
};

// ---- text helpers ------------------------------------------------------------------------------------

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

inline std::string strip(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && is_space(s[b])) ++b;
  while (e > b && is_space(s[e - 1])) --e;
  return s.substr(b, e - b);
}

inline std::string lstrip(const std::string& s) {
  std::size_t b = 0;
  while (b < s.size() && is_space(s[b])) ++b;
  return s.substr(b);
}

/// True when `number` (digits) occurs in `text` not adjacent to another digit.
inline bool contains_whole_number(const std::string& text, const std::string& number) {
  if (number.empty()) return false;
  for (std::size_t at = text.find(number); at != std::string::npos; at = text.find(number, at + 1)) {
    const bool left = at == 0 || !std::isdigit(static_cast<unsigned char>(text[at - 1]));
    const std::size_t end = at + number.size();
    const bool right = end >= text.size() || !std::isdigit(static_cast<unsigned char>(text[end]));
    if (left && right) return true;
  }
  return false;
}

inline bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

/// True when `word` occurs in `text` with no letter, digit or '_' right before or after it.
inline bool contains_whole_word(const std::string& text, const std::string& word) {
  if (word.empty()) return false;
  for (std::size_t at = text.find(word); at != std::string::npos; at = text.find(word, at + 1)) {
    const std::size_t end = at + word.size();
    if ((at == 0 || !is_word_char(text[at - 1])) && (end >= text.size() || !is_word_char(text[end]))) return true;
  }
  return false;
}

// ---- edit similarity (LongBench code_sim) --------------------------------------------------------------

/// Indel distance: the fewest single-character insertions and deletions turning a into b
/// (Levenshtein distance with substitution cost 2) = |a| + |b| - 2 LCS(a, b). Bytes, not code points.
inline std::size_t indel_distance(const std::string& a, const std::string& b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::size_t> prev(m + 1, 0), cur(m + 1, 0);  // LCS lengths, row by row
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      cur[j] = a[i - 1] == b[j - 1] ? prev[j - 1] + 1 : std::max(prev[j], cur[j - 1]);
    }
    std::swap(prev, cur);
  }
  return n + m - 2 * prev[m];
}

/// Edit similarity in [0, 100]: 100 * (1 - indel(a, b) / (|a| + |b|)), 100 when both are empty.
/// This is the fuzzy ratio LongBench's code_sim uses (fuzzywuzzy/thefuzz fuzz.ratio with
/// python-Levenshtein, = rapidfuzz fuzz.ratio), without its rounding to an integer.
inline double edit_similarity(const std::string& a, const std::string& b) {
  const std::size_t total = a.size() + b.size();
  if (total == 0) return 100.0;
  return 100.0 * (1.0 - static_cast<double>(indel_distance(a, b)) / static_cast<double>(total));
}

/// The line of a code completion that LongBench's code_sim compares: leading newlines dropped,
/// then the first line containing none of '`', '#', "//" (empty when there is none); here also
/// stripped of surrounding white space (the reference line is stripped too).
inline std::string first_code_line(const std::string& answer) {
  std::size_t b = 0;
  while (b < answer.size() && answer[b] == '\n') ++b;
  std::size_t pos = b;
  while (pos <= answer.size()) {
    std::size_t end = answer.find('\n', pos);
    if (end == std::string::npos) end = answer.size();
    const std::string line = answer.substr(pos, end - pos);
    if (line.find('`') == std::string::npos && line.find('#') == std::string::npos &&
        line.find("//") == std::string::npos) {
      return strip(line);
    }
    if (end == answer.size()) break;
    pos = end + 1;
  }
  return "";
}

/// True once `answer` holds the complete line first_code_line() would pick (decoding can stop).
inline bool first_code_line_complete(const std::string& answer) {
  std::size_t b = 0;
  while (b < answer.size() && answer[b] == '\n') ++b;
  for (std::size_t pos = b;;) {
    const std::size_t end = answer.find('\n', pos);
    if (end == std::string::npos) return false;  // the line in progress may still change
    const std::string line = answer.substr(pos, end - pos);
    if (line.find('`') == std::string::npos && line.find('#') == std::string::npos &&
        line.find("//") == std::string::npos) {
      return true;
    }
    pos = end + 1;
  }
}

/// The score of a greedy answer in [0, 1] (see Metric).
inline double score_answer(const Sample& s, const std::string& answer) {
  switch (s.metric) {
    case Metric::ContainsNumber:
      return !s.answers.empty() && contains_whole_number(answer, s.answers[0]) ? 1.0 : 0.0;
    case Metric::FractionNamed: {
      if (s.answers.empty()) return 0.0;
      int found = 0;
      for (const std::string& name : s.answers) found += contains_whole_word(answer, name) ? 1 : 0;
      return static_cast<double>(found) / static_cast<double>(s.answers.size());
    }
    case Metric::EditSimilarity:
      return s.answers.empty() ? 0.0 : edit_similarity(first_code_line(answer), strip(s.answers[0])) / 100.0;
  }
  return 0.0;
}

// ---- prompt frames of an exact length --------------------------------------------------------------

/// The token ids around a prompt's body: prefix = chat template up to the body (system turn, the
/// user turn's start, the task's preamble), suffix = after the body (the question, the end of the
/// user turn, the assistant turn's start). Rendered around a marker and encoded on both sides.
struct Frame {
  Tokens prefix, suffix;
  bool chat = false;

  int overhead() const { return static_cast<int>(prefix.size() + suffix.size()); }
  Tokens around(const Tokens& body) const {
    Tokens p = prefix;
    p.insert(p.end(), body.begin(), body.end());
    p.insert(p.end(), suffix.begin(), suffix.end());
    return p;
  }
};

/// A frame for the user message `before + BODY + after` in the model's chat template (ChatML or
/// Llama 3); a model without a supported template gets plain text ending in "\nAnswer:".
inline Frame chat_frame(const llama3::Tokenizer& tok, const std::string& before, const std::string& after) {
  const std::string marker = "@@FTP_LONGEVAL_BODY@@";
  Frame f;
  bool add_bos = tok.add_bos();
  std::string rendered;
  if (!tok.chat_template().empty()) {
    try {
      const llama3::ChatFormat format = llama3::detect_chat_format(tok.chat_template());
      rendered = llama3::apply_chat_template(tok.chat_template(), {{"user", before + marker + after}}, true);
      if (format == llama3::ChatFormat::Llama3) add_bos = false;  // the rendering has <|begin_of_text|>
      f.chat = true;
    } catch (const std::invalid_argument&) {
      rendered.clear();
    }
  }
  if (!f.chat) rendered = before + marker + after + "\nAnswer:";
  const std::size_t at = rendered.find(marker);
  f.prefix = tok.encode(rendered.substr(0, at), add_bos, /*parse_special=*/true);
  f.suffix = tok.encode(rendered.substr(at + marker.size()), false, /*parse_special=*/true);
  return f;
}

/// No chat frame: the body is the whole prompt (after the BOS token when the model wants one).
inline Frame raw_frame(const llama3::Tokenizer& tok) {
  Frame f;
  if (tok.add_bos() && tok.bos_id() >= 0) f.prefix.push_back(tok.bos_id());
  return f;
}

/// Body tokens that give a prompt of exactly `length` tokens in `frame`; throws when fewer than
/// `min_body` remain.
inline int body_budget(const Frame& frame, int length, int min_body) {
  const int body = length - frame.overhead();
  if (body < min_body) {
    throw std::runtime_error("a prompt of " + std::to_string(length) + " tokens leaves " + std::to_string(body) +
                             " body tokens after its frame (" + std::to_string(frame.overhead()) +
                             "); at least " + std::to_string(min_body) + " are needed");
  }
  return body;
}

/// frame + body, checked to be exactly `length` tokens.
inline Tokens assemble(const Frame& frame, const Tokens& body, int length) {
  Tokens p = frame.around(body);
  if (static_cast<int>(p.size()) != length) {
    throw std::logic_error("prompt has " + std::to_string(p.size()) + " tokens, wanted " + std::to_string(length));
  }
  return p;
}

// ---- prompt lengths and the model's context -----------------------------------------------------------

/// A grid length as used on a model: the prompt and its answer must fit the context.
struct LengthChoice {
  int requested = 0;
  int used = 0;         ///< 0 when skipped
  bool skipped = false;
  std::string note;     ///< why it was capped or skipped; empty when used as requested
};

/// Each requested length for a model of `context` tokens whose answers take up to `new_tokens`:
/// used as is when length + new_tokens <= context; capped to context - new_tokens when the length
/// itself fits the context (32k on a 32k model); skipped when it exceeds the context. Never silent:
/// every cap or skip has its note.
inline std::vector<LengthChoice> fit_lengths(const std::vector<int>& requested, long long context, int new_tokens) {
  std::vector<LengthChoice> out;
  for (int L : requested) {
    LengthChoice c;
    c.requested = L;
    if (L > context) {
      c.skipped = true;
      c.note = "skipped: " + std::to_string(L) + " tokens exceed the model's context of " + std::to_string(context);
    } else if (L + new_tokens > context) {
      c.used = static_cast<int>(context) - new_tokens;
      c.note = "capped to " + std::to_string(c.used) + " tokens: the context of " + std::to_string(context) +
               " must also hold " + std::to_string(new_tokens) + " answer tokens";
    } else {
      c.used = L;
    }
    out.push_back(c);
  }
  return out;
}

/// "5-digit" numbers and the like: a decimal number of exactly `digits` digits (no leading zero).
inline std::string random_number(Rng& rng, int digits) {
  long long lo = 1;
  for (int i = 1; i < digits; ++i) lo *= 10;
  return std::to_string(rng.between(lo, lo * 10 - 1));
}

}  // namespace evaltasks
