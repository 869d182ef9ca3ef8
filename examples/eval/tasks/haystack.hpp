// Haystack: real prose cut into sentence-like segments, each tokenized once, from which filler of
// an exact token length is drawn; needles go in at segment starts (sentence boundaries).
//
// Default texts: the license texts every Debian machine has in /usr/share/common-licenses (the
// base-files package), distinct contents only (GPL, LGPL, GFDL are links to the latest versions).
#pragma once

#include <algorithm>
#include <filesystem>
#include <limits>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.hpp"

namespace evaltasks {

inline const std::vector<std::string>& default_license_files() {
  static const std::vector<std::string> names = {"GPL-3",    "GPL-2",   "LGPL-2.1", "Apache-2.0", "MPL-2.0",
                                                 "GFDL-1.3", "Artistic", "MPL-1.1", "GPL-1",      "LGPL-3",
                                                 "GFDL-1.2", "LGPL-2",  "CC0-1.0",  "BSD"};
  return names;
}

/// Splits prose into segments: each holds the white space before it and one sentence (ending in
/// '.', '!' or '?' before white space), or a paragraph piece (a blank line ends a segment); a
/// segment over `max_bytes` also ends at its next line end. Control characters other than tab and
/// newline are dropped. Concatenating the segments gives the cleaned text back.
inline std::vector<std::string> split_segments(const std::string& raw, std::size_t max_bytes = 600) {
  std::string text;
  text.reserve(raw.size());
  for (char c : raw) {
    const unsigned char u = static_cast<unsigned char>(c);
    if (u >= 0x20 || c == '\n' || c == '\t') text += c;
    else if (c == '\r') continue;
  }
  std::vector<std::string> out;
  std::string cur;
  bool has_content = false;  // cur holds more than leading white space
  const auto flush = [&] {  // called only when cur holds text
    out.push_back(cur);
    cur.clear();
    has_content = false;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' && has_content) {
      // A blank line ahead (only spaces/tabs before the next newline): end the segment here, so
      // that the white space of the paragraph break starts the next one.
      std::size_t j = i + 1;
      while (j < text.size() && (text[j] == ' ' || text[j] == '\t')) ++j;
      if ((j < text.size() && text[j] == '\n') || cur.size() >= max_bytes) {
        flush();
        cur += c;
        continue;
      }
    }
    cur += c;
    if (!is_space(c)) has_content = true;
    if ((c == '.' || c == '!' || c == '?') && has_content && (i + 1 >= text.size() || is_space(text[i + 1]))) {
      flush();
    }
  }
  if (!cur.empty()) {
    if (has_content) out.push_back(cur);
    else if (!out.empty()) out.back() += cur;
  }
  return out;
}

class Haystack {
 public:
  /// Segments of `texts` in order (named by `names`), tokenized without special tokens.
  static Haystack from_texts(const llama3::Tokenizer& tok, const std::vector<std::string>& names,
                             const std::vector<std::string>& texts) {
    Haystack h;
    for (std::size_t t = 0; t < texts.size(); ++t) {
      if (texts[t].empty()) continue;
      h.names_.push_back(t < names.size() ? names[t] : "text" + std::to_string(t));
      for (const std::string& seg : split_segments(texts[t])) {
        Segment s;
        s.text = seg;
        s.tokens = tok.encode(seg, false, false);
        const std::string bare = lstrip(seg);
        s.stripped = bare.size() == seg.size() ? s.tokens : tok.encode(bare, false, false);
        if (s.tokens.empty() || s.stripped.empty()) continue;
        h.total_ += s.tokens.size();
        h.segments_.push_back(std::move(s));
      }
    }
    if (h.segments_.size() < 2) throw std::runtime_error("haystack: fewer than two segments of text");
    return h;
  }

  /// The files `names` of `dir`, distinct contents only; when fewer than two are there, every
  /// regular file of `dir` sorted by name. Throws when no two texts are found.
  static Haystack from_dir(const llama3::Tokenizer& tok, const std::string& dir,
                           const std::vector<std::string>& names = default_license_files()) {
    std::vector<std::string> used, texts;
    std::set<std::string> seen;
    const auto add = [&](const std::string& name) {
      const std::string text = read_text_file(dir + "/" + name);
      if (text.empty() || !seen.insert(text).second) return;
      used.push_back(name);
      texts.push_back(text);
    };
    for (const std::string& n : names) add(n);
    if (texts.size() < 2) {
      std::vector<std::string> all;
      std::error_code ec;
      for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
        if (e.is_regular_file(ec)) all.push_back(e.path().filename().string());
      }
      std::sort(all.begin(), all.end());
      for (const std::string& n : all) add(n);
    }
    if (texts.size() < 2) {
      throw std::runtime_error("haystack: need at least two text files in " + dir + ", found " +
                               std::to_string(texts.size()));
    }
    return from_texts(tok, used, texts);
  }

  std::size_t segments() const { return segments_.size(); }
  std::size_t total_tokens() const { return total_; }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& segment_text(std::size_t i) const { return segments_.at(i % segments_.size()).text; }

  /// Exactly `count` tokens: segment `first` (mod the number of segments), then the following ones
  /// (cycling past the end), the last one cut to fit. `strip_first` drops the first segment's
  /// leading white space. *starts gets the token offset of every segment start inside the result
  /// (0 first): the sentence boundaries where needles may go.
  Tokens fill(std::size_t first, int count, bool strip_first, std::vector<int>* starts = nullptr) const {
    Tokens out;
    out.reserve(static_cast<std::size_t>(std::max(count, 0)));
    if (starts != nullptr) starts->clear();
    for (std::size_t i = first % segments_.size(); static_cast<int>(out.size()) < count; i = (i + 1) % segments_.size()) {
      if (starts != nullptr) starts->push_back(static_cast<int>(out.size()));
      const Tokens& t = (out.empty() && strip_first) ? segments_[i].stripped : segments_[i].tokens;
      out.insert(out.end(), t.begin(), t.end());
    }
    out.resize(static_cast<std::size_t>(std::max(count, 0)));
    return out;
  }

 private:
  struct Segment {
    std::string text;
    Tokens tokens, stripped;
  };
  std::vector<Segment> segments_;
  std::vector<std::string> names_;
  std::size_t total_ = 0;
};

/// Needles placed into a haystack at sentence boundaries.
struct Placement {
  Tokens body;                 ///< haystack with the needles inserted
  std::vector<int> at;         ///< token offset of each needle in body, in the order given
  std::vector<int> hay_offset; ///< haystack tokens before each needle
};

/// Inserts needles[i] at the boundary in `starts` nearest to targets[i] * hay.size(), every
/// needle at a different boundary. With `keep_order`, needles keep their given order in the text
/// (targets are then sorted first). Boundary 0 is only used when `allow_front` (the caller then
/// passes a needle tokenized without leading white space and a haystack whose first segment keeps
/// its own). Throws when there are too few boundaries.
inline Placement place_needles(const Tokens& hay, const std::vector<int>& starts, const std::vector<Tokens>& needles,
                               std::vector<double> targets, bool keep_order, bool allow_front) {
  if (needles.size() != targets.size()) throw std::invalid_argument("place_needles: one target per needle");
  std::vector<int> candidates;
  for (int s : starts) {
    if ((s > 0 || allow_front) && s <= static_cast<int>(hay.size())) candidates.push_back(s);
  }
  if (candidates.size() < needles.size()) {
    throw std::runtime_error("place_needles: " + std::to_string(needles.size()) + " needles but only " +
                             std::to_string(candidates.size()) + " sentence boundaries in the haystack");
  }
  if (keep_order) std::sort(targets.begin(), targets.end());
  std::vector<bool> used(candidates.size(), false);
  std::vector<int> chosen(needles.size());
  for (std::size_t n = 0; n < needles.size(); ++n) {
    const double want = std::min(1.0, std::max(0.0, targets[n])) * static_cast<double>(hay.size());
    std::size_t best = candidates.size();
    for (std::size_t c = 0; c < candidates.size(); ++c) {
      if (used[c]) continue;
      if (best == candidates.size() ||
          std::abs(candidates[c] - want) < std::abs(candidates[best] - want)) {
        best = c;
      }
    }
    used[best] = true;
    chosen[n] = candidates[best];
  }
  if (keep_order) std::sort(chosen.begin(), chosen.end());
  // Build the body: haystack pieces with the needles between them, in text order.
  std::vector<std::size_t> order(needles.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return chosen[a] < chosen[b]; });
  Placement p;
  p.at.assign(needles.size(), 0);
  p.hay_offset = chosen;
  int from = 0;
  for (std::size_t k : order) {
    p.body.insert(p.body.end(), hay.begin() + from, hay.begin() + chosen[k]);
    p.at[k] = static_cast<int>(p.body.size());
    p.body.insert(p.body.end(), needles[k].begin(), needles[k].end());
    from = chosen[k];
  }
  p.body.insert(p.body.end(), hay.begin() + from, hay.end());
  return p;
}

}  // namespace evaltasks
