// ftp_eval's shared state and helpers: constants, Args, corpus and prompt frames, generation and
// agreement, the grid, Eval, dense references, JSON output. Apart: every section header uses them.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ftp/ftp.hpp"
#include "llama3/chat_template.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model.cuh"
#include "llama3/report.hpp"
#include "llama3/model_config.hpp"
#include "llama3/tokenizer.hpp"
#include "../eval_common.hpp"
#include "../policies.cuh"

#ifndef FTP_SOURCE_DIR
#define FTP_SOURCE_DIR "."
#endif

namespace ftp_eval {

using bf16 = __nv_bfloat16;
using Tokens = std::vector<std::int32_t>;

constexpr const char* kDefaultModel = FTP_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr const char* kDefaultCorpus = "/usr/share/common-licenses";
// Distinct texts only (GPL, LGPL and GFDL are links to the latest versions on Debian).
const std::vector<std::string> kLicenseFiles = {"GPL-3",   "GPL-2",    "LGPL-2.1", "Apache-2.0", "MPL-2.0",
                                                "GFDL-1.3", "Artistic", "MPL-1.1",  "GPL-1",      "CC0-1.0",
                                                "BSD"};
constexpr const char* kFidelityQuestion =
    "Which license is the text above taken from, and what does it say about warranty? Answer in two sentences.";
constexpr const char* kNeedle = "The secret passphrase for the vault is BLUE-HARBOR-42.";
constexpr const char* kNeedleAnswer = "BLUE-HARBOR-42";
constexpr const char* kNeedleQuestion = "What is the secret passphrase for the vault? Answer with the passphrase only.";
constexpr int kFidelityNewTokens = 32;
constexpr int kNeedleNewTokens = 16;
constexpr int kCurvePoints = 100;

// ---- arguments -----------------------------------------------------------------------------------

struct Args {
  std::string model = kDefaultModel;
  std::string json_path;
  std::string corpus = kDefaultCorpus;
  bool quick = false;
  bool dry_run = false;
  std::string sections = "abcd";
  double budget_s = -1;  // < 0: the mode's default
  int reps = 5;          // timed prefills per configuration and text (median)
};

// ---- progress, time budget, JSON, statistics: examples/eval/eval_common.hpp ------------------------

using evalcommon::all_finite;
using evalcommon::argmax;
using evalcommon::jarr;
using evalcommon::jlist;
using evalcommon::jnum;
using evalcommon::jstr;
using evalcommon::kl_divergence;
using evalcommon::max_of;
using evalcommon::mean;
using evalcommon::median;
using evalcommon::Obj;
using evalcommon::program_clock;
using evalcommon::progress;
using evalcommon::rate;
using evalcommon::Stopwatch;

// ---- corpus and prompts --------------------------------------------------------------------------

/// The license texts, each tokenized once; contexts are cut from their concatenation.
struct Corpus {
  std::vector<std::string> names;
  std::vector<Tokens> docs;
  Tokens separator;  // "\n\n" between documents

  std::size_t total_tokens() const {
    std::size_t n = 0;
    for (const Tokens& d : docs) n += d.size();
    return n;
  }

  /// `count` tokens: document `first` (mod the number of documents), then the following ones in
  /// turn (cycling when the corpus is shorter than `count`), separated by blank lines.
  Tokens stream(int first, int count) const {
    Tokens out;
    out.reserve(static_cast<std::size_t>(count));
    for (std::size_t d = static_cast<std::size_t>(first) % docs.size(); static_cast<int>(out.size()) < count;
         d = (d + 1) % docs.size()) {
      if (!out.empty()) out.insert(out.end(), separator.begin(), separator.end());
      out.insert(out.end(), docs[d].begin(), docs[d].end());
    }
    out.resize(static_cast<std::size_t>(count));
    return out;
  }

  std::string name_of(int first) const { return names[static_cast<std::size_t>(first) % names.size()]; }
};

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The license texts of `dir` named in kLicenseFiles; when fewer than two of them are there,
/// every regular file of `dir` (sorted by name, duplicates by content dropped).
Corpus load_corpus(const llama3::Tokenizer& tok, const std::string& dir) {
  Corpus c;
  std::vector<std::string> texts;
  const auto add = [&](const std::string& name, const std::string& text) {
    if (text.empty() || std::find(texts.begin(), texts.end(), text) != texts.end()) return;
    texts.push_back(text);
    c.names.push_back(name);
    c.docs.push_back(tok.encode(text, /*add_bos=*/false, /*parse_special=*/false));
  };
  for (const std::string& name : kLicenseFiles) add(name, read_text_file(dir + "/" + name));
  if (c.docs.size() < 2) {
    progress("note: fewer than two of the usual license texts in %s; using every file there", dir.c_str());
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.is_regular_file(ec)) names.push_back(entry.path().filename().string());
    }
    std::sort(names.begin(), names.end());
    for (const std::string& name : names) add(name, read_text_file(dir + "/" + name));
  }
  if (c.docs.size() < 2) {
    throw std::runtime_error("need at least two text files in " + dir + " (on Debian the base-files package's " +
                             kDefaultCorpus + "); found " + std::to_string(c.docs.size()) + " (see --corpus)");
  }
  c.separator = tok.encode("\n\n", false, false);
  return c;
}

/// The token ids around a body of text: prefix = chat template up to the user's text, suffix =
/// "\n\n" + question + the rest of the template up to the assistant's reply. Built by rendering
/// the template around a marker and encoding both sides, so the prompt length is exact.
struct Frame {
  Tokens prefix, suffix;
  bool chat = false;

  std::size_t overhead() const { return prefix.size() + suffix.size(); }
  Tokens around(const Tokens& body) const {
    Tokens p = prefix;
    p.insert(p.end(), body.begin(), body.end());
    p.insert(p.end(), suffix.begin(), suffix.end());
    return p;
  }
};

Frame make_frame(const llama3::Tokenizer& tok, const std::string& question) {
  const std::string marker = "@@FTP_EVAL_BODY@@";
  Frame f;
  bool add_bos = tok.add_bos();
  std::string rendered;
  if (!tok.chat_template().empty()) {
    try {
      const llama3::ChatFormat format = llama3::detect_chat_format(tok.chat_template());
      rendered = llama3::apply_chat_template(tok.chat_template(), {{"user", marker + "\n\n" + question}}, true);
      if (format == llama3::ChatFormat::Llama3) add_bos = false;  // the rendering begins with <|begin_of_text|>
      f.chat = true;
    } catch (const std::invalid_argument&) {
      rendered.clear();  // an unsupported template: plain text below
    }
  }
  if (!f.chat) rendered = marker + "\n\n" + question + "\nAnswer:";
  const std::size_t at = rendered.find(marker);
  f.prefix = tok.encode(rendered.substr(0, at), add_bos, /*parse_special=*/true);
  f.suffix = tok.encode(rendered.substr(at + marker.size()), false, /*parse_special=*/true);
  return f;
}

// ---- generation and agreement --------------------------------------------------------------------

struct Generation {
  llama3::PrefillResult prefill;
  std::vector<float> first_logits;  // [V] of the last prompt position
  Tokens tokens;                    // greedy; the first comes from the prefill
  std::string text;
};

/// Prefill through `prefill_fn(prompt)`, then greedy decode steps (dense FFN, as the paper prunes
/// prefill only) up to `n_new` tokens or the end of the turn.
template <class PrefillFn>
Generation generate(llama3::DeviceModel& model, const llama3::Tokenizer& tok, const Tokens& prompt, int n_new,
                    PrefillFn&& prefill_fn) {
  Generation g;
  g.prefill = prefill_fn(prompt);
  g.first_logits = model.last_logits();
  g.tokens.push_back(g.prefill.next_token);
  const int L = static_cast<int>(prompt.size());
  for (int i = 0; i + 1 < n_new; ++i) {
    const std::int32_t last = g.tokens.back();
    if (tok.is_end_of_generation(last) || L + i >= model.max_tokens()) break;
    g.tokens.push_back(model.decode_step(last, L + i));
  }
  Tokens shown = g.tokens;
  if (!shown.empty() && tok.is_end_of_generation(shown.back())) shown.pop_back();
  g.text = tok.decode(shown);
  return g;
}

struct Agreement {
  double kl = NAN;
  bool top1 = false;
  bool exact = false;   // identical greedy continuations
  int first_diff = -1;  // first differing new token, -1 when they match
  bool finite = true;   // both logit vectors finite
};

Agreement agree(const Generation& dense, const Generation& other) {
  Agreement a;
  a.finite = all_finite(dense.first_logits) && all_finite(other.first_logits);
  if (!a.finite) progress("WARNING: non-finite first-token logits (KL reported as null)");
  a.kl = kl_divergence(dense.first_logits, other.first_logits);
  a.top1 = argmax(dense.first_logits) == argmax(other.first_logits);
  const std::size_t n = std::max(dense.tokens.size(), other.tokens.size());
  for (std::size_t i = 0; i < n && a.first_diff < 0; ++i) {
    if (i >= dense.tokens.size() || i >= other.tokens.size() || dense.tokens[i] != other.tokens[i]) {
      a.first_diff = static_cast<int>(i);
    }
  }
  a.exact = a.first_diff < 0;
  return a;
}

/// Median TTFT (CUDA events, ms) of `reps` prefills; the caller has warmed this shape up.
template <class PrefillFn>
double median_ttft(int reps, PrefillFn&& prefill_fn) {
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(prefill_fn().ttft_ms);
  return median(t);
}

// ---- user-written policies (the ablations' showcase): examples/eval/policies.cuh ------------------

using evalpolicies::PerLayerTopCount;
using evalpolicies::reserved_tokens;
using evalpolicies::ScoreCapture;
using evalpolicies::CapturingScorer;

// ---- the evaluation's state ----------------------------------------------------------------------

struct Grid {
  std::vector<int> lengths;         // fidelity contexts (prompt tokens)
  int texts = 0;                    // fidelity texts per length
  std::vector<int> needle_lengths;  // haystack contexts
  std::vector<int> needle_depths;   // percent
  int ablation_length = 0;
  std::vector<double> etas;
  std::vector<int> full_layers;
  std::vector<int> initial_tokens, last_queries;
};

/// The nearest of `lengths` to `want`.
int nearest(const std::vector<int>& lengths, int want) {
  int best = lengths.front();
  for (int L : lengths) best = std::abs(L - want) < std::abs(best - want) ? L : best;
  return best;
}

Grid make_grid(bool quick, int max_prompt) {
  Grid g;
  const std::vector<int> wanted = quick ? std::vector<int>{1024, 4096} : std::vector<int>{1024, 2048, 4096, 6144, 8192};
  for (int L : wanted) {
    const int capped = std::min(L, max_prompt);
    if (std::find(g.lengths.begin(), g.lengths.end(), capped) == g.lengths.end()) g.lengths.push_back(capped);
  }
  g.texts = quick ? 2 : 8;
  g.needle_lengths = g.lengths;
  if (quick) {
    g.needle_depths = {0, 50, 100};
  } else {
    for (int d = 0; d <= 100; d += 10) g.needle_depths.push_back(d);
  }
  g.ablation_length = nearest(g.lengths, 4096);
  g.etas = quick ? std::vector<double>{0.75, 0.9} : std::vector<double>{0.65, 0.75, 0.85, 0.9, 0.95};
  g.full_layers = quick ? std::vector<int>{6, 10} : std::vector<int>{4, 6, 8, 10};
  g.initial_tokens = quick ? std::vector<int>{50, 100} : std::vector<int>{50, 100, 200};
  g.last_queries = quick ? std::vector<int>{25, 50} : std::vector<int>{25, 50, 100};
  return g;
}

struct DenseRef {
  Generation gen;
  double ttft_ms = NAN;
};

struct Eval {
  Args args;
  Grid grid;
  llama3::LlamaConfig config;
  const llama3::Tokenizer& tok;
  Corpus corpus;
  Frame fidelity_frame, needle_frame;
  Tokens needle;
  ftp::Config paper = ftp::Config::llama3();
  llama3::DeviceModel* model = nullptr;  // null in --dry-run
  double deadline_s = 0;                 // program clock
  std::map<std::string, std::string> sections;  // name -> JSON object
  std::string meta;
  std::map<std::pair<int, int>, DenseRef> dense;  // (length, text) -> dense reference
  bool failed = false;  // a section threw

  Eval(const llama3::Tokenizer& t) : tok(t) {}

  bool out_of_time() const { return program_clock().seconds() > deadline_s; }
  int layers() const { return static_cast<int>(config.n_layers); }
};

Tokens fidelity_prompt(const Eval& E, int length, int text) {
  const int body = length - static_cast<int>(E.fidelity_frame.overhead());
  if (body < 1) throw std::runtime_error("context " + std::to_string(length) + " is shorter than the prompt frame");
  return E.fidelity_frame.around(E.corpus.stream(text, body));
}

/// Haystack with the needle sentence inserted at `depth_percent` of it, at the nearest earlier
/// line or sentence end (so that no word is split). Returns the prompt; *actual_depth gets the
/// inserted position / haystack length.
Tokens needle_prompt(const Eval& E, int length, int depth_percent, double* actual_depth) {
  const int H = length - static_cast<int>(E.needle_frame.overhead() + E.needle.size());
  if (H < 1) throw std::runtime_error("needle context " + std::to_string(length) + " is shorter than the frame");
  Tokens hay = E.corpus.stream(/*first=*/1, H);  // GPL-2 first: plain prose
  int at = static_cast<int>(std::lround(static_cast<double>(depth_percent) / 100.0 * H));
  if (at > 0 && at < H) {
    for (int back = 0; back < 256 && at - back > 0; ++back) {
      const std::string& piece = E.tok.token_to_piece(hay[static_cast<std::size_t>(at - back - 1)]);
      if (!piece.empty() && (piece.back() == '\n' || piece.back() == '.')) {
        at -= back;
        break;
      }
    }
  }
  if (actual_depth != nullptr) *actual_depth = static_cast<double>(at) / H;
  hay.insert(hay.begin() + at, E.needle.begin(), E.needle.end());
  return E.needle_frame.around(hay);
}

/// Dense generation and dense TTFT of fidelity text (length, text), computed once.
const DenseRef& dense_ref(Eval& E, int length, int text) {
  const auto key = std::make_pair(length, text);
  auto it = E.dense.find(key);
  if (it != E.dense.end()) return it->second;
  llama3::DeviceModel& model = *E.model;
  const Tokens prompt = fidelity_prompt(E, length, text);
  DenseRef r;
  r.gen = generate(model, E.tok, prompt, kFidelityNewTokens, [&](const Tokens& p) { return model.prefill(p, false); });
  r.ttft_ms = median_ttft(E.args.reps, [&] { return model.prefill(prompt, false); });
  return E.dense.emplace(key, std::move(r)).first->second;
}

std::vector<double> kept_fractions(const llama3::PrefillResult& r) {
  std::vector<double> out;
  for (std::size_t l = 0; l < r.kept_per_layer.size(); ++l) out.push_back(r.kept_fraction(l));
  return out;
}

/// Mean kept fraction over layers [first_layer, layers).
double mean_from(const std::vector<double>& per_layer, int first_layer) {
  std::vector<double> v(per_layer.begin() + std::min<std::size_t>(first_layer, per_layer.size()), per_layer.end());
  return mean(v);
}

void write_json(const Eval& E) {
  if (E.args.json_path.empty()) return;
  std::string s = "{\n  \"meta\": " + E.meta;
  for (const char* name : {"fidelity", "cumulative", "needle", "ablations"}) {
    auto it = E.sections.find(name);
    if (it != E.sections.end()) s += ",\n  " + jstr(name) + ": " + it->second;
  }
  s += "\n}\n";
  const std::string tmp = E.args.json_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write '" + tmp + "'");
    out << s;
    if (!out) throw std::runtime_error("write to '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), E.args.json_path.c_str()) != 0) {
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + E.args.json_path + "'");
  }
}

}  // namespace ftp_eval
