// Code completion (after LongBench's LCC): long real source files of the machine (the Python
// standard library under /usr/lib/python3*/ and the C headers under /usr/include), cut just before
// a non-trivial line; the prompt is the code before the cut (its last B tokens, so that the prompt
// has exactly the requested length), the model continues it, and the first code line of the answer
// is scored by edit similarity against the true line (Metric::EditSimilarity: LongBench code_sim's
// line choice and fuzzy ratio, see edit_similarity and first_code_line in common.hpp).
//
// Prompt format: raw code, no chat frame (Qwen2.5-Coder completes raw code; a chat turn would ask
// for prose around the code). The prompt ends with the newline that ends the line before the cut,
// so the model writes the next line's indentation itself; both lines are compared stripped.
//
// Files are chosen deterministically: the candidate paths (sorted) in two pools, Python and
// headers, each shuffled with the seed and taken in turn (one file per base name); each file gives
// at most one sample per length and pass, its cut line drawn with the seed among the eligible
// lines (code, not inside a comment or docstring) that have at least B tokens before them. The chosen paths
// and lines are in Sample::info: a machine with other Python or header versions gets other files.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common.hpp"

namespace evaltasks {

/// The roots searched by default: every /usr/lib/python3* folder (sorted) and /usr/include.
inline std::vector<std::string> default_code_roots() {
  std::vector<std::string> roots;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/usr/lib", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("python3", 0) == 0 && e.is_directory(ec) && !e.is_symlink(ec)) roots.push_back(e.path().string());
  }
  std::sort(roots.begin(), roots.end());
  roots.push_back("/usr/include");
  return roots;
}

/// Source files under `roots`: *.py, *.h, *.hpp of at least `min_bytes`, no symbolic links, not in
/// test, cache, data-table or third-party folders; sorted by path, duplicates by content dropped later.
inline std::vector<std::string> list_code_files(const std::vector<std::string>& roots, std::uintmax_t min_bytes = 8192) {
  static const std::vector<std::string> skip_dirs = {"__pycache__", "test",          "tests",         "idle_test",
                                                     "pydoc_data",  "encodings",     "site-packages", "dist-packages",
                                                     "lib2to3"};
  std::vector<std::string> out;
  for (const std::string& root : roots) {
    std::error_code ec;
    std::filesystem::recursive_directory_iterator it(root, std::filesystem::directory_options::skip_permission_denied, ec);
    for (; !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
      const std::filesystem::directory_entry& e = *it;
      const std::string name = e.path().filename().string();
      if (e.is_symlink(ec)) {
        if (e.is_directory(ec)) it.disable_recursion_pending();
        continue;
      }
      if (e.is_directory(ec)) {
        bool skip = false;
        for (const std::string& d : skip_dirs) skip = skip || name == d;
        skip = skip || name.rfind("config-3", 0) == 0;  // the build configuration of libpython
        if (skip) it.disable_recursion_pending();
        continue;
      }
      if (!e.is_regular_file(ec)) continue;
      const std::string ext = e.path().extension().string();
      if (ext != ".py" && ext != ".h" && ext != ".hpp") continue;
      if (e.file_size(ec) < min_bytes) continue;
      out.push_back(e.path().string());
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

/// A line worth predicting: at least 8 non-blank characters with a letter or digit, and no
/// comment, docstring or doctest marker ('#', "//", '`', a leading '*', "/*", "*/", triple
/// quotes, a leading ">>>"). Lines inside block comments and docstrings are excluded by the caller.
inline bool is_target_line(const std::string& line) {
  const std::string s = strip(line);
  if (s.size() < 8 || s.size() > 200) return false;
  if (s.find('#') != std::string::npos || s.find("//") != std::string::npos || s.find('`') != std::string::npos) return false;
  if (s[0] == '*' || s.find("/*") != std::string::npos || s.find("*/") != std::string::npos ||
      s.find("\"\"\"") != std::string::npos || s.find("'''") != std::string::npos || s.rfind(">>>", 0) == 0) {
    return false;
  }
  return std::any_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; });
}

class CodeCompletionTask {
 public:
  static constexpr const char* kName = "code_completion";
  static constexpr int kNewTokens = 32;  // one line; decoding stops once the first code line is complete

  CodeCompletionTask(const llama3::Tokenizer& tok, std::vector<std::string> files, std::uint64_t seed = 4)
      : tok_(tok), seed_(seed), frame_(raw_frame(tok)) {
    // Two pools (Python sources, C/C++ headers), each shuffled, then taken in turn so that both
    // kinds are represented; only the first file of each base name is kept (the same header is
    // often installed for several architectures or versions).
    std::vector<std::string> py, headers;
    for (std::string& f : files) (is_python(f) ? py : headers).push_back(std::move(f));
    Rng rng(seed_);
    rng.shuffle(py);
    rng.shuffle(headers);
    std::set<std::string> names;
    for (std::size_t i = 0; i < std::max(py.size(), headers.size()); ++i) {
      for (const std::vector<std::string>* pool : {&py, &headers}) {
        if (i >= pool->size()) continue;
        const std::string& f = (*pool)[i];
        if (names.insert(std::filesystem::path(f).filename().string()).second) files_.push_back(f);
      }
    }
  }

  static bool is_python(const std::string& path) {
    return path.size() > 3 && path.compare(path.size() - 3, 3, ".py") == 0;
  }

  const Frame& frame() const { return frame_; }
  const std::vector<std::string>& files_in_order() const { return files_; }
  std::size_t files_tokenized() const { return cache_.size(); }

  /// `count` samples of `length` tokens. Fewer when the files run out (a note in *notes).
  std::vector<Sample> make(int length, int count, std::vector<std::string>* notes = nullptr,
                           int requested_length = 0) const {
    const int B = body_budget(frame_, length, 64);
    std::vector<Sample> out;
    std::map<std::string, std::vector<std::size_t>> used;  // path -> cut bytes taken at this length
    for (int pass = 0; pass < 3 && static_cast<int>(out.size()) < count; ++pass) {
      for (std::size_t f = 0; f < files_.size() && static_cast<int>(out.size()) < count; ++f) {
        // Bytes >= tokens always; code runs at 3-4 bytes a token, so files under 2 B bytes are
        // skipped untokenized (a deterministic filter).
        std::error_code ec;
        const std::uintmax_t bytes = std::filesystem::file_size(files_[f], ec);
        if (ec || bytes < 2 * static_cast<std::uintmax_t>(B)) continue;
        const File& file = load(files_[f]);
        if (file.duplicate || static_cast<int>(file.tokens.size()) < B + 16) continue;
        std::vector<std::size_t> cuts;  // token index at which an eligible line starts
        for (std::size_t c = 0; c < file.line_token.size(); ++c) {
          const std::size_t k = file.line_token[c];
          if (static_cast<int>(k) < B) continue;
          const auto& taken = used[files_[f]];
          if (std::find(taken.begin(), taken.end(), k) != taken.end()) continue;
          cuts.push_back(c);
        }
        if (cuts.empty()) continue;
        Rng rng(mix_seed(seed_, static_cast<std::uint64_t>(length), f, static_cast<std::uint64_t>(pass)));
        const std::size_t c = cuts[static_cast<std::size_t>(rng.below(cuts.size()))];
        const std::size_t k = file.line_token[c];
        used[files_[f]].push_back(k);
        Tokens body(file.tokens.begin() + static_cast<std::ptrdiff_t>(k - B), file.tokens.begin() + static_cast<std::ptrdiff_t>(k));
        Sample s;
        s.task = kName;
        s.length = length;
        s.requested_length = requested_length > 0 ? requested_length : length;
        s.index = static_cast<int>(out.size());
        s.prompt = assemble(frame_, body, length);
        s.max_new_tokens = kNewTokens;
        s.stop_at_first_line = true;
        s.metric = Metric::EditSimilarity;
        s.answers = {file.line_text[c]};
        s.info = files_[f] + ":" + std::to_string(file.line_no[c]);
        out.push_back(std::move(s));
      }
    }
    if (static_cast<int>(out.size()) < count && notes != nullptr) {
      notes->push_back("code_completion: only " + std::to_string(out.size()) + " of " + std::to_string(count) +
                       " samples at " + std::to_string(length) + " tokens (not enough long source files)");
    }
    return out;
  }

 private:
  struct File {
    Tokens tokens;
    std::vector<std::size_t> line_token;  // token index where each eligible line starts
    std::vector<std::string> line_text;   // that line, without its newline
    std::vector<int> line_no;             // 1-based
    bool duplicate = false;
  };

  /// Tokenizes a file once: the eligible lines that start at a token boundary.
  const File& load(const std::string& path) const {
    auto it = cache_.find(path);
    if (it != cache_.end()) return *it->second;
    auto file = std::make_unique<File>();
    const std::string text = read_text_file(path);
    if (!contents_.insert(text).second) {
      file->duplicate = true;
      return *cache_.emplace(path, std::move(file)).first->second;
    }
    file->tokens = tok_.encode(text, false, false);
    std::map<std::size_t, std::size_t> token_at_byte;  // byte offset of a token start -> token index
    std::size_t byte = 0;
    for (std::size_t i = 0; i < file->tokens.size(); ++i) {
      token_at_byte.emplace(byte, i);
      byte += tok_.token_to_piece(file->tokens[i]).size();
    }
    const bool python = is_python(path);
    bool in_block = false;  // C: inside /* ... */ (string literals are not parsed: a rare miss)
    std::string in_doc;     // Python: the open triple quote, or empty
    int line_no = 1;
    for (std::size_t pos = 0; pos < text.size();) {
      std::size_t end = text.find('\n', pos);
      if (end == std::string::npos) end = text.size();
      const std::string line = text.substr(pos, end - pos);
      const bool starts_inside = in_block || !in_doc.empty();
      if (python) {
        for (std::size_t i = 0; i + 3 <= line.size();) {
          const std::string q = line.substr(i, 3);
          if ((q == "\"\"\"" || q == "'''") && (in_doc.empty() || in_doc == q)) {
            in_doc = in_doc.empty() ? q : "";
            i += 3;
          } else {
            ++i;
          }
        }
      } else {
        for (std::size_t i = 0; i + 1 < line.size();) {
          if (!in_block && line.compare(i, 2, "/*") == 0) {
            in_block = true;
            i += 2;
          } else if (in_block && line.compare(i, 2, "*/") == 0) {
            in_block = false;
            i += 2;
          } else {
            ++i;
          }
        }
      }
      // Some earlier line must precede; the line must be code (not in a comment or docstring)
      // and start at a token boundary.
      if (pos > 0 && !starts_inside && in_doc.empty() && !in_block && is_target_line(line)) {
        auto t = token_at_byte.find(pos);
        if (t != token_at_byte.end()) {
          file->line_token.push_back(t->second);
          file->line_text.push_back(line);
          file->line_no.push_back(line_no);
        }
      }
      pos = end + 1;
      ++line_no;
    }
    return *cache_.emplace(path, std::move(file)).first->second;
  }

  const llama3::Tokenizer& tok_;
  std::vector<std::string> files_;
  std::uint64_t seed_;
  Frame frame_;
  mutable std::map<std::string, std::unique_ptr<File>> cache_;
  mutable std::set<std::string> contents_;
};

}  // namespace evaltasks
