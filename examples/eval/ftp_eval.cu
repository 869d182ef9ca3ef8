// ftp_eval: what FFN token pruning does to a real model's outputs (paper Sections 3.2 and 4.6),
// on texts every Debian machine has (the license texts in /usr/share/common-licenses).
//
//   ftp_eval [-m model.gguf] [--json out.json] [--quick]
//
// Sections (each writes its part of the JSON as soon as it is done, and prints one table):
//   a. fidelity   license texts cut to 1k..8k tokens + a question, paper defaults (P=100, N=50,
//                 F=10, eta=0.9): kept fraction per layer, first-token KL(dense || FTP), top-1
//                 agreement, exact match of the 32-token greedy continuations, TTFT and speedup
//   b. cumulative the cumulative share of the attention scores over the sorted middle tokens of
//                 each pruned layer (paper Fig. 6), one 4k text
//   c. needle     a passphrase inserted at depths 0..100% of a license haystack of 1k..8k tokens,
//                 greedy answer, exact match, dense vs FTP (paper Fig. 8)
//   d. ablations  policies swapped through DeviceModel::prefill_with: attention vs random scores at
//                 the same kept count per layer (Table 3), eta, F, P x N (Table 6), TopRatio vs
//                 CumulativeEta at the same mean kept fraction
//
// Progress goes to stderr, the tables to stdout. Every unit of work checks a time budget
// (--budget-s); what did not fit is marked "truncated" in the JSON rather than silently dropped.
// Exit codes: 0 done, 1 bad arguments or an error in a section, 2 no CUDA GPU.
// --dry-run builds every prompt and prints the plan without a GPU (tokenizer and corpus checks).
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
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model.cuh"
#include "llama3/report.hpp"
#include "llama3/model_config.hpp"
#include "llama3/tokenizer.hpp"
#include "eval_common.hpp"
#include "policies.cuh"

#ifndef FTP_SOURCE_DIR
#define FTP_SOURCE_DIR "."
#endif

namespace {

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

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ftp_eval [options]\n"
               "  -m, --model PATH   GGUF model (default: %s)\n"
               "  --json PATH        write the results as JSON (rewritten after every section)\n"
               "  --quick            small grid (smoke run, well under a minute)\n"
               "  --sections LIST    any of a b c d (default abcd): fidelity, cumulative curve, needle, ablations\n"
               "  --budget-s S       seconds for the sections after loading (default 200, quick 60); work past\n"
               "                     it is skipped and marked truncated\n"
               "  --reps R           timed prefills per configuration and text, median (default 5)\n"
               "  --corpus DIR       folder of the texts (default %s: the license files named in\n"
               "                     the source, or else every file in DIR)\n"
               "  --dry-run          build every prompt and print the plan; needs no GPU\n"
               "  -h, --help         this text\n",
               kDefaultModel, kDefaultCorpus);
}

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Returns false for --help.
bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ArgError(flag + " needs a value");
      return argv[++i];
    };
    const auto number = [&](const std::string& v) {
      try {
        std::size_t used = 0;
        const double x = std::stod(v, &used);
        if (used != v.size() || !std::isfinite(x)) throw std::invalid_argument(v);
        return x;
      } catch (const std::exception&) {
        throw ArgError(flag + " expects a number, got '" + v + "'");
      }
    };
    if (flag == "-h" || flag == "--help") return false;
    else if (flag == "-m" || flag == "--model") a.model = value();
    else if (flag == "--json") a.json_path = value();
    else if (flag == "--corpus") a.corpus = value();
    else if (flag == "--quick") a.quick = true;
    else if (flag == "--dry-run") a.dry_run = true;
    else if (flag == "--sections") a.sections = value();
    else if (flag == "--budget-s") a.budget_s = number(value());
    else if (flag == "--reps") a.reps = static_cast<int>(number(value()));
    else throw ArgError("unknown option '" + flag + "' (see --help)");
  }
  for (char c : a.sections) {
    if (c < 'a' || c > 'd') throw ArgError("--sections takes letters a-d, got '" + a.sections + "'");
  }
  if (a.reps < 1 || a.reps > 20) throw ArgError("--reps must be in 1..20");
  if (a.budget_s < 0) a.budget_s = a.quick ? 60 : 200;
  return true;
}

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

using evalpolicies::LayerClock;
using evalpolicies::PerLayerTopCount;
using evalpolicies::reserved_tokens;
using evalpolicies::ScoreCapture;
using evalpolicies::TaggedScorer;

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

// ---- a. fidelity ----------------------------------------------------------------------------------

void section_fidelity(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int F = E.paper.full_layers();
  std::vector<std::string> rows, summary;
  bool truncated = false;
  std::printf("\n== (a) fidelity on license texts, paper defaults P=%d N=%d F=%d eta=%.2f, %d greedy tokens\n",
              E.paper.initial_tokens(), E.paper.last_queries(), F, E.paper.eta(), kFidelityNewTokens);
  std::printf("%7s %5s %10s %10s %10s %6s %6s %10s %10s %8s\n", "tokens", "texts", "kept(F..)", "KL mean", "KL max",
              "top1", "exact", "TTFT dense", "TTFT FTP", "speedup");
  for (int L : E.grid.lengths) {
    if (E.out_of_time()) { truncated = true; break; }
    {  // warm this shape up (cuBLAS heuristics, CUB, lazy module loading) before any timing
      const Tokens p = fidelity_prompt(E, L, 0);
      model.prefill(p, false);
      model.prefill(p, true);
    }
    std::vector<std::vector<double>> kept;  // [text][layer]
    std::vector<double> kl, ttft_d, ttft_f, speedup;
    std::vector<bool> top1, exact;
    for (int t = 0; t < E.grid.texts; ++t) {
      if (E.out_of_time()) { truncated = true; break; }
      const Tokens prompt = fidelity_prompt(E, L, t);
      const DenseRef& d = dense_ref(E, L, t);
      const Generation f =
          generate(model, E.tok, prompt, kFidelityNewTokens, [&](const Tokens& p) { return model.prefill(p, true); });
      const double tf = median_ttft(E.args.reps, [&] { return model.prefill(prompt, true); });
      const Agreement a = agree(d.gen, f);
      kept.push_back(kept_fractions(f.prefill));
      kl.push_back(a.kl);
      top1.push_back(a.top1);
      exact.push_back(a.exact);
      ttft_d.push_back(d.ttft_ms);
      ttft_f.push_back(tf);
      speedup.push_back(d.ttft_ms / tf);
      rows.push_back(Obj()
                         .integer("length", L)
                         .integer("prompt_tokens", static_cast<long long>(prompt.size()))
                         .integer("text", t)
                         .str("first_document", E.corpus.name_of(t))
                         .num("kl", a.kl)
                         .boolean("top1_agree", a.top1)
                         .boolean("exact_match", a.exact)
                         .raw("first_diff", a.first_diff < 0 ? "null" : std::to_string(a.first_diff))
                         .boolean("finite_logits", a.finite)
                         .num("ttft_dense_ms", d.ttft_ms)
                         .num("ttft_ftp_ms", tf)
                         .num("speedup", d.ttft_ms / tf)
                         .raw("kept_fraction", jarr(kept.back()))
                         .num("mean_kept_fraction_pruned", mean_from(kept.back(), F))
                         .str("dense_text", d.gen.text)
                         .str("ftp_text", f.text)
                         .done());
      progress("(a) L=%d text %d (%s): kept %.3f KL %.4g top1 %d exact %d TTFT %.2f / %.2f ms", L, t,
               E.corpus.name_of(t).c_str(), mean_from(kept.back(), F), a.kl, a.top1, a.exact, d.ttft_ms, tf);
    }
    if (kept.empty()) continue;
    std::vector<double> kmean(static_cast<std::size_t>(E.layers())), kmin = kmean, kmax = kmean;
    for (int l = 0; l < E.layers(); ++l) {
      std::vector<double> v;
      for (const auto& k : kept) v.push_back(k[static_cast<std::size_t>(l)]);
      kmean[l] = mean(v);
      kmin[l] = *std::min_element(v.begin(), v.end());
      kmax[l] = max_of(v);
    }
    const double kept_pruned = mean_from(kmean, F);
    summary.push_back(Obj()
                          .integer("length", L)
                          .integer("texts", static_cast<long long>(kept.size()))
                          .raw("kept_fraction_mean", jarr(kmean))
                          .raw("kept_fraction_min", jarr(kmin))
                          .raw("kept_fraction_max", jarr(kmax))
                          .num("mean_kept_fraction_pruned", kept_pruned)
                          .num("ffn_work_share", mean(kmean))
                          .num("kl_mean", mean(kl))
                          .num("kl_median", median(kl))
                          .num("kl_max", max_of(kl))
                          .num("top1_rate", rate(top1))
                          .num("exact_rate", rate(exact))
                          .num("ttft_dense_ms", mean(ttft_d))
                          .num("ttft_ftp_ms", mean(ttft_f))
                          .num("speedup", mean(speedup))
                          .done());
    std::printf("%7d %5zu %10.3f %10.4g %10.4g %6.2f %6.2f %10.2f %10.2f %8.3f\n", L, kept.size(), kept_pruned,
                mean(kl), max_of(kl), rate(top1), rate(exact), mean(ttft_d), mean(ttft_f), mean(speedup));
  }
  if (truncated) std::printf("(truncated: time budget reached)\n");
  std::fflush(stdout);
  E.sections["fidelity"] = Obj()
                               .raw("config", Obj()
                                                  .integer("P", E.paper.initial_tokens())
                                                  .integer("N", E.paper.last_queries())
                                                  .integer("F", F)
                                                  .num("eta", E.paper.eta())
                                                  .done())
                               .integer("new_tokens", kFidelityNewTokens)
                               .str("question", kFidelityQuestion)
                               .boolean("truncated", truncated)
                               .raw("summary", jlist(summary))
                               .raw("rows", jlist(rows))
                               .done();
}

// ---- b. cumulative attention-score curve ------------------------------------------------------------

void section_cumulative(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int L = nearest(E.grid.lengths, 4096), text = 0;
  const Tokens prompt = fidelity_prompt(E, L, text);
  using Scorer = TaggedScorer<ftp::LastQueriesAttention>;
  auto clock = std::make_shared<LayerClock>();
  auto capture = std::make_shared<ScoreCapture>();
  ftp::Pruner<bf16, Scorer, ftp::CumulativeEta> pruner(E.paper, model.pruner_shape(),
                                                       Scorer(ftp::LastQueriesAttention{}, clock, capture));
  const llama3::PrefillResult r = model.prefill_with(prompt, pruner);

  const int P = E.paper.initial_tokens(), N = E.paper.last_queries();
  const int mid_begin = std::min(P, L), mid_end = std::max(mid_begin, L - N);
  const int M = L > P + N ? mid_end - mid_begin : 0;
  const std::vector<double> etas = {0.5, 0.8, 0.9, 0.95};
  std::vector<double> fractions, mean_curve(kCurvePoints, 0.0);
  for (int k = 1; k <= kCurvePoints; ++k) fractions.push_back(static_cast<double>(k) / kCurvePoints);
  std::vector<std::string> layers;
  int curves = 0;
  std::printf("\n== (b) cumulative attention-score share over the sorted middle tokens (%d tokens, %d middle)\n", L, M);
  std::printf("%5s %6s %9s %9s %9s %9s %9s %12s\n", "layer", "kept", "top 10%", "top 30%", "top 60%", "for 90%",
              "for 95%", "kept mid dev");
  for (const auto& [layer, scores] : capture->of_layer) {
    std::vector<double> mid;
    bool valid = static_cast<int>(scores.size()) == L;
    for (int t = mid_begin; valid && t < mid_end; ++t) {
      const float s = scores[static_cast<std::size_t>(t)];
      valid = std::isfinite(s) && s >= 0.0f;
      mid.push_back(s);
    }
    std::sort(mid.begin(), mid.end(), std::greater<double>());
    std::vector<double> prefix(mid.size() + 1, 0.0);
    for (std::size_t i = 0; i < mid.size(); ++i) prefix[i + 1] = prefix[i] + mid[i];
    const double total = prefix.back();
    const bool usable = valid && M > 0 && total > 0;
    std::vector<double> curve;
    for (int k = 1; k <= kCurvePoints && usable; ++k) {
      const std::size_t n = static_cast<std::size_t>(std::lround(static_cast<double>(k) / kCurvePoints * M));
      curve.push_back(prefix[n] / total);
    }
    Obj tokens_for;
    std::vector<double> need(etas.size(), NAN);
    for (std::size_t e = 0; e < etas.size() && usable; ++e) {
      const std::size_t n = static_cast<std::size_t>(
          std::lower_bound(prefix.begin(), prefix.end(), etas[e] * total) - prefix.begin());
      need[e] = static_cast<double>(n) / M;
      char key[16];
      std::snprintf(key, sizeof key, "%.2f", etas[e]);
      tokens_for.num(key, need[e]);
    }
    // The kept middle count the device chose, against the count these host scores give at eta
    // (double sums here, exact fixed point on the device: they may differ by a token or so).
    const int kept = r.kept_per_layer[static_cast<std::size_t>(layer)];
    const int kept_mid = kept - reserved_tokens(E.paper, L);
    const double host_mid =
        usable ? static_cast<double>(std::lower_bound(prefix.begin(), prefix.end(), E.paper.eta() * total) - prefix.begin())
               : NAN;
    if (usable) {
      for (int k = 0; k < kCurvePoints; ++k) mean_curve[static_cast<std::size_t>(k)] += curve[static_cast<std::size_t>(k)];
      ++curves;
    } else {
      progress("(b) WARNING: layer %d scores unusable (valid %d, middle %d, total %.3g)", layer, valid, M, total);
    }
    layers.push_back(Obj()
                         .integer("layer", layer)
                         .num("kept_fraction", static_cast<double>(kept) / L)
                         .integer("kept_middle", kept_mid)
                         .num("kept_middle_from_host_scores", host_mid)
                         .boolean("valid_scores", usable)
                         .num("score_total", total)
                         .raw("tokens_for_share", tokens_for.done())
                         .raw("curve", jarr(curve))
                         .done());
    const auto at = [&](int pct) { return usable ? curve[static_cast<std::size_t>(pct - 1)] : NAN; };
    std::printf("%5d %6.3f %9.3f %9.3f %9.3f %9.3f %9.3f %6d/%-5.0f\n", layer, static_cast<double>(kept) / L, at(10),
                at(30), at(60), need[2], need[3], kept_mid, host_mid);
  }
  for (double& v : mean_curve) v = curves > 0 ? v / curves : NAN;
  std::printf("mean over %d layers: top 10%% %.3f, top 30%% %.3f, top 60%% %.3f of the score mass\n", curves,
              mean_curve[9], mean_curve[29], mean_curve[59]);
  std::fflush(stdout);
  E.sections["cumulative"] = Obj()
                                 .integer("length", L)
                                 .integer("text", text)
                                 .str("first_document", E.corpus.name_of(text))
                                 .integer("middle_tokens", M)
                                 .raw("fractions", jarr(fractions))
                                 .raw("mean_curve", jarr(mean_curve))
                                 .raw("layers", jlist(layers))
                                 .done();
}

// ---- c. needle in a haystack ------------------------------------------------------------------------

void section_needle(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  std::vector<std::string> rows;
  std::map<std::pair<int, int>, std::pair<int, int>> hits;  // (depth, length) -> (dense, ftp)
  bool truncated = false;
  for (int L : E.grid.needle_lengths) {
    for (int depth : E.grid.needle_depths) {
      if (E.out_of_time()) { truncated = true; break; }
      double actual = 0;
      const Tokens prompt = needle_prompt(E, L, depth, &actual);
      const Generation d =
          generate(model, E.tok, prompt, kNeedleNewTokens, [&](const Tokens& p) { return model.prefill(p, false); });
      const Generation f =
          generate(model, E.tok, prompt, kNeedleNewTokens, [&](const Tokens& p) { return model.prefill(p, true); });
      const bool dh = d.text.find(kNeedleAnswer) != std::string::npos;
      const bool fh = f.text.find(kNeedleAnswer) != std::string::npos;
      const Agreement a = agree(d, f);
      hits[{depth, L}] = {dh, fh};
      rows.push_back(Obj()
                         .integer("length", L)
                         .integer("prompt_tokens", static_cast<long long>(prompt.size()))
                         .integer("depth_percent", depth)
                         .num("actual_depth", actual)
                         .boolean("dense_hit", dh)
                         .boolean("ftp_hit", fh)
                         .num("kl", a.kl)
                         .boolean("top1_agree", a.top1)
                         .boolean("exact_match", a.exact)
                         .num("mean_kept_fraction_pruned", mean_from(kept_fractions(f.prefill), E.paper.full_layers()))
                         .str("dense_answer", d.text)
                         .str("ftp_answer", f.text)
                         .done());
      progress("(c) L=%d depth %d%%: dense %s | FTP %s", L, depth, dh ? "hit" : "miss", fh ? "hit" : "miss");
    }
    if (truncated) break;
  }
  std::printf("\n== (c) needle in a haystack: cell = dense/FTP (1 = answer contains %s)\n%6s", kNeedleAnswer, "depth");
  for (int L : E.grid.needle_lengths) std::printf(" %7d", L);
  std::printf("\n");
  int dense_total = 0, ftp_total = 0, cells = 0;
  for (int depth : E.grid.needle_depths) {
    std::printf("%5d%%", depth);
    for (int L : E.grid.needle_lengths) {
      auto it = hits.find({depth, L});
      if (it == hits.end()) {
        std::printf(" %7s", "-");
      } else {
        std::printf("     %d/%d", it->second.first, it->second.second);
        dense_total += it->second.first;
        ftp_total += it->second.second;
        ++cells;
      }
    }
    std::printf("\n");
  }
  std::printf("retrieved: dense %d/%d, FTP %d/%d%s\n", dense_total, cells, ftp_total, cells,
              truncated ? " (truncated: time budget reached)" : "");
  std::fflush(stdout);
  E.sections["needle"] = Obj()
                             .str("needle", kNeedle)
                             .str("question", kNeedleQuestion)
                             .str("answer", kNeedleAnswer)
                             .integer("new_tokens", kNeedleNewTokens)
                             .raw("lengths", jarr(E.grid.needle_lengths))
                             .raw("depths", jarr(E.grid.needle_depths))
                             .integer("dense_hits", dense_total)
                             .integer("ftp_hits", ftp_total)
                             .integer("cells", cells)
                             .boolean("truncated", truncated)
                             .raw("rows", jlist(rows))
                             .done();
}

// ---- d. ablations -------------------------------------------------------------------------------------

/// One configuration's results over the ablation texts.
struct AblationResult {
  std::string group, label, scorer, reserve;
  ftp::Config config;
  double ratio = NAN;  // TopRatio only
  std::vector<std::vector<int>> kept;  // [text][layer] kept tokens
  std::vector<double> kl, ttft, speedup, dense_ttft;
  std::vector<bool> top1, exact;
};

/// Runs `pruner` through prefill_with on every ablation text: greedy generation against the dense
/// reference, then the median TTFT. `before_text(t)` may retune the pruner's policies per text.
template <class PrunerT, class BeforeText>
AblationResult run_ablation(Eval& E, AblationResult res, PrunerT& pruner, BeforeText&& before_text) {
  llama3::DeviceModel& model = *E.model;
  const int L = E.grid.ablation_length;
  for (int t = 0; t < E.grid.texts; ++t) {
    const Tokens prompt = fidelity_prompt(E, L, t);
    const DenseRef& d = dense_ref(E, L, t);
    before_text(t);
    const Generation g = generate(model, E.tok, prompt, kFidelityNewTokens,
                                  [&](const Tokens& p) { return model.prefill_with(p, pruner); });
    const double tt = median_ttft(E.args.reps, [&] { return model.prefill_with(prompt, pruner); });
    const Agreement a = agree(d.gen, g);
    res.kept.push_back(g.prefill.kept_per_layer);
    res.kl.push_back(a.kl);
    res.top1.push_back(a.top1);
    res.exact.push_back(a.exact);
    res.ttft.push_back(tt);
    res.dense_ttft.push_back(d.ttft_ms);
    res.speedup.push_back(d.ttft_ms / tt);
  }
  return res;
}

/// Middle kept fraction per text and layer >= F: (kept - reserved) / middle tokens.
double mean_middle_kept(const AblationResult& r, int L) {
  const int reserved = reserved_tokens(r.config, L), middle = L - reserved;
  std::vector<double> v;
  for (const auto& k : r.kept) {
    for (int l = r.config.full_layers(); l < static_cast<int>(k.size()); ++l) {
      v.push_back(middle > 0 ? static_cast<double>(k[static_cast<std::size_t>(l)] - reserved) / middle : 1.0);
    }
  }
  return mean(v);
}

std::string ablation_json(const AblationResult& r, int L, std::vector<double>* kept_mean_out = nullptr) {
  const std::size_t layers = r.kept.empty() ? 0 : r.kept.front().size();
  std::vector<double> kept_mean(layers, 0.0);
  for (const auto& k : r.kept) {
    for (std::size_t l = 0; l < layers; ++l) kept_mean[l] += static_cast<double>(k[l]) / L / r.kept.size();
  }
  if (kept_mean_out != nullptr) *kept_mean_out = kept_mean;
  std::vector<std::string> per_text;
  for (std::size_t t = 0; t < r.kl.size(); ++t) {
    per_text.push_back(Obj()
                           .integer("text", static_cast<long long>(t))
                           .num("kl", r.kl[t])
                           .boolean("top1_agree", r.top1[t])
                           .boolean("exact_match", r.exact[t])
                           .num("ttft_ms", r.ttft[t])
                           .num("speedup", r.speedup[t])
                           .done());
  }
  return Obj()
      .str("group", r.group)
      .str("label", r.label)
      .str("scorer", r.scorer)
      .str("reserve", r.reserve)
      .integer("P", r.config.initial_tokens())
      .integer("N", r.config.last_queries())
      .integer("F", r.config.full_layers())
      .num("eta", r.config.eta())
      .num("ratio", r.ratio)
      .integer("texts", static_cast<long long>(r.kl.size()))
      .num("mean_kept_fraction_pruned", mean_from(kept_mean, r.config.full_layers()))
      .num("ffn_work_share", mean(kept_mean))
      .num("mean_middle_kept_fraction", mean_middle_kept(r, L))
      .num("kl_mean", mean(r.kl))
      .num("kl_median", median(r.kl))
      .num("kl_max", max_of(r.kl))
      .num("top1_rate", rate(r.top1))
      .num("exact_rate", rate(r.exact))
      .num("ttft_ms", mean(r.ttft))
      .num("ttft_dense_ms", mean(r.dense_ttft))
      .num("speedup", mean(r.speedup))
      .raw("kept_fraction", jarr(kept_mean))
      .raw("per_text", jlist(per_text))
      .done();
}

void print_ablation_row(const AblationResult& r, int L) {
  std::vector<double> kept_mean;
  ablation_json(r, L, &kept_mean);
  std::printf("%-10s %-26s %9.3f %9.3f %10.4g %6.2f %6.2f %9.2f %8.3f\n", r.group.c_str(), r.label.c_str(),
              mean_from(kept_mean, r.config.full_layers()), mean(kept_mean), mean(r.kl), rate(r.top1), rate(r.exact),
              mean(r.ttft), mean(r.speedup));
  std::fflush(stdout);
}

void section_ablations(Eval& E) {
  llama3::DeviceModel& model = *E.model;
  const int L = E.grid.ablation_length;
  const ftp::WorkspaceShape shape = model.pruner_shape();
  std::vector<AblationResult> results;
  bool truncated = false;
  std::printf("\n== (d) ablations at %d tokens over %d texts (policies swapped through prefill_with)\n", L,
              E.grid.texts);
  std::printf("%-10s %-26s %9s %9s %10s %6s %6s %9s %8s\n", "group", "config", "kept(F..)", "FFN work", "KL mean",
              "top1", "exact", "TTFT ms", "speedup");

  // Dense references first (each one's generation warms the shape up before its timed prefills;
  // likewise every pruner's first generation below precedes its timing).
  for (int t = 0; t < E.grid.texts && !E.out_of_time(); ++t) dense_ref(E, L, t);

  const auto describe = [](const ftp::Config& c) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "P=%d N=%d F=%d eta=%.2f", c.initial_tokens(), c.last_queries(), c.full_layers(),
                  c.eta());
    return std::string(buf);
  };
  // CumulativeEta with the attention scorer at config c (the paper's policies, any settings).
  std::map<std::string, AblationResult> cache;  // by describe(c): the paper config appears in several groups
  const auto cumulative = [&](const std::string& group, const ftp::Config& c) -> const AblationResult* {
    auto it = cache.find(describe(c));
    if (it == cache.end()) {
      if (E.out_of_time()) { truncated = true; return nullptr; }
      ftp::Pruner<bf16> pruner(c, shape);
      AblationResult base;
      base.label = describe(c);
      base.scorer = "LastQueriesAttention";
      base.reserve = "CumulativeEta";
      base.config = c;
      it = cache.emplace(describe(c), run_ablation(E, base, pruner, [](int) {})).first;
      progress("(d) %s: KL %.4g", describe(c).c_str(), mean(it->second.kl));
    }
    AblationResult r = it->second;
    r.group = group;
    results.push_back(r);
    print_ablation_row(r, L);
    return &results.back();
  };

  // The paper's settings first: the random and TopRatio runs take their kept counts from it.
  const AblationResult* paper_ptr = cumulative("paper", E.paper);
  if (paper_ptr == nullptr) {
    std::printf("(truncated: time budget reached)\n");
  } else {
    const AblationResult paper = *paper_ptr;

    // (i) random scores at the attention scorer's kept count, per text and layer (Table 3).
    if (!E.out_of_time()) {
      using Scorer = TaggedScorer<ftp::RandomScorer>;
      auto clock = std::make_shared<LayerClock>();
      PerLayerTopCount reserve;
      reserve.clock = clock;
      ftp::Pruner<bf16, Scorer, PerLayerTopCount> pruner(E.paper, shape, Scorer(ftp::RandomScorer(1234), clock),
                                                         reserve);
      const int reserved = reserved_tokens(E.paper, L);
      AblationResult r;
      r.group = "scorer";
      r.label = "random, same kept counts";
      r.scorer = "RandomScorer(seed 1234)";
      r.reserve = "PerLayerTopCount";
      r.config = E.paper;
      r = run_ablation(E, r, pruner, [&](int t) {
        std::vector<int>& table = pruner.reserve().count_of_layer;
        table.assign(paper.kept[static_cast<std::size_t>(t)].size(), 0);
        for (std::size_t l = 0; l < table.size(); ++l) {
          table[l] = std::max(0, paper.kept[static_cast<std::size_t>(t)][l] - reserved);
        }
      });
      // The random run must have kept exactly the attention run's counts (same policy contract).
      for (std::size_t t = 0; t < r.kept.size(); ++t) {
        if (r.kept[t] != paper.kept[t]) progress("(d) WARNING: random run text %zu kept counts differ from the attention run's", t);
      }
      AblationResult attention = paper;
      attention.group = "scorer";
      attention.label = "attention (paper)";
      results.push_back(attention);
      print_ablation_row(attention, L);
      results.push_back(r);
      print_ablation_row(r, L);
    } else {
      truncated = true;
    }

    // (ii) eta, (iii) F, (iv) P x N (Table 6).
    for (double eta : E.grid.etas) cumulative("eta", E.paper.with_eta(eta));
    for (int F : E.grid.full_layers) cumulative("F", E.paper.with_full_layers(F));
    for (int P : E.grid.initial_tokens) {
      for (int N : E.grid.last_queries) cumulative("PxN", E.paper.with_initial_tokens(P).with_last_queries(N));
    }

    // (v) TopRatio at the paper run's mean middle kept fraction vs CumulativeEta.
    if (!E.out_of_time()) {
      const double ratio = std::min(1.0, std::max(1e-4, mean_middle_kept(paper, L)));
      ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::TopRatio> pruner(E.paper, shape, ftp::LastQueriesAttention{},
                                                                         ftp::TopRatio(ratio));
      AblationResult r;
      r.group = "reserve";
      char label[64];
      std::snprintf(label, sizeof label, "TopRatio %.3f", ratio);
      r.label = label;
      r.scorer = "LastQueriesAttention";
      r.reserve = "TopRatio";
      r.config = E.paper;
      r.ratio = ratio;
      r = run_ablation(E, r, pruner, [](int) {});
      AblationResult eta = paper;
      eta.group = "reserve";
      eta.label = "CumulativeEta 0.90 (paper)";
      results.push_back(eta);
      print_ablation_row(eta, L);
      results.push_back(r);
      print_ablation_row(r, L);
    } else {
      truncated = true;
    }
  }
  if (truncated) std::printf("(truncated: time budget reached)\n");
  std::fflush(stdout);
  std::vector<std::string> rows;
  for (const AblationResult& r : results) rows.push_back(ablation_json(r, L));
  E.sections["ablations"] = Obj()
                                .integer("length", L)
                                .integer("texts", E.grid.texts)
                                .integer("reps", E.args.reps)
                                .boolean("truncated", truncated)
                                .raw("rows", jlist(rows))
                                .done();
}

// ---- driver -----------------------------------------------------------------------------------------

void print_plan(const Eval& E) {
  std::printf("corpus: %zu license texts, %zu tokens:", E.corpus.docs.size(), E.corpus.total_tokens());
  for (std::size_t i = 0; i < E.corpus.docs.size(); ++i) std::printf(" %s=%zu", E.corpus.names[i].c_str(), E.corpus.docs[i].size());
  std::printf("\nframes: fidelity %zu+%zu tokens, needle %zu+%zu tokens (+%zu needle), chat template %s\n",
              E.fidelity_frame.prefix.size(), E.fidelity_frame.suffix.size(), E.needle_frame.prefix.size(),
              E.needle_frame.suffix.size(), E.needle.size(), E.fidelity_frame.chat ? "yes" : "no");
  std::printf("(a) lengths");
  for (int L : E.grid.lengths) std::printf(" %d", L);
  std::printf(", %d texts each; (c) %zu x %zu needle cells; (d) %d tokens, %zu eta, %zu F, %zu P x N configs\n",
              E.grid.texts, E.grid.needle_lengths.size(), E.grid.needle_depths.size(), E.grid.ablation_length,
              E.grid.etas.size(), E.grid.full_layers.size(), E.grid.initial_tokens.size() * E.grid.last_queries.size());
}

/// --dry-run: every prompt is built and its length checked; no GPU.
int dry_run(Eval& E) {
  print_plan(E);
  int problems = 0;
  for (int L : E.grid.lengths) {
    for (int t = 0; t < E.grid.texts; ++t) {
      const Tokens p = fidelity_prompt(E, L, t);
      if (static_cast<int>(p.size()) != L) ++problems;
    }
  }
  for (int L : E.grid.needle_lengths) {
    for (int depth : E.grid.needle_depths) {
      double actual = 0;
      const Tokens p = needle_prompt(E, L, depth, &actual);
      if (static_cast<int>(p.size()) != L) ++problems;
      std::printf("needle L=%d depth %3d%% -> %.3f (%zu tokens)\n", L, depth, actual, p.size());
    }
  }
  const Tokens sample = needle_prompt(E, E.grid.needle_lengths.front(), 50, nullptr);
  const std::string text = E.tok.decode(sample);
  const std::size_t at = text.find(kNeedle);
  std::printf("needle sentence found in the decoded prompt: %s\n", at == std::string::npos ? "NO" : "yes");
  std::printf("prompt tail: %s\n", jstr(text.substr(text.size() > 300 ? text.size() - 300 : 0)).c_str());
  if (at == std::string::npos) ++problems;
  std::printf("dry run: %s\n", problems == 0 ? "all prompts have their exact lengths" : "PROBLEMS (see above)");
  return problems == 0 ? 0 : 1;
}

int run(const Args& args) {
  progress("loading %s", args.model.c_str());
  const llama3::GgufFile gguf = llama3::GgufFile::open(args.model);
  const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(gguf);
  Eval E(tok);
  E.args = args;
  E.config = llama3::config_from_gguf(gguf);
  E.corpus = load_corpus(tok, args.corpus);
  E.fidelity_frame = make_frame(tok, kFidelityQuestion);
  E.needle_frame = make_frame(tok, kNeedleQuestion);
  E.needle = tok.encode(std::string("\n") + kNeedle + "\n", false, false);
  // The longest prompt leaves room for the greedy continuation inside the model's context.
  const int max_prompt = static_cast<int>(std::min<std::int64_t>(E.config.context_length, 1 << 20)) - kFidelityNewTokens;
  E.grid = make_grid(args.quick, max_prompt);
  progress("model: %s, %lld layers, C=%lld, I=%lld, heads %lld/%lld, d=%lld, V=%lld, context %lld",
           E.config.architecture.c_str(), (long long)E.config.n_layers, (long long)E.config.hidden,
           (long long)E.config.ffn, (long long)E.config.n_heads, (long long)E.config.n_kv_heads,
           (long long)E.config.head_dim, (long long)E.config.vocab, (long long)E.config.context_length);
  if (args.dry_run) return dry_run(E);
  print_plan(E);

  const int max_tokens = *std::max_element(E.grid.lengths.begin(), E.grid.lengths.end()) + kFidelityNewTokens;
  std::unique_ptr<llama3::DeviceModel> model;
  {
    const llama3::HostWeights weights = llama3::HostWeights::load(gguf, E.config);
    model = std::make_unique<llama3::DeviceModel>(E.config, weights, max_tokens, E.paper);
  }
  E.model = model.get();
  cudaDeviceProp prop{};
  LLAMA3_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  progress("on %s: %.0f MiB of bf16 weights, KV cache for %d tokens", prop.name, model->weight_bytes() / 1048576.0,
           max_tokens);
  {  // warm-up: lazy module loading, cuBLAS heuristics, both pruners, a decode step
    const Tokens p = fidelity_prompt(E, E.grid.lengths.back(), 0);
    model->prefill(p, false);
    model->prefill(p, true);
    model->decode_step(0, static_cast<int>(p.size()));
  }
  E.deadline_s = program_clock().seconds() + args.budget_s;
  E.meta = Obj()
               .str("model", args.model)
               .str("device", prop.name)
               .raw("model_config", Obj()
                                        .integer("layers", E.config.n_layers)
                                        .integer("hidden", E.config.hidden)
                                        .integer("ffn", E.config.ffn)
                                        .integer("q_heads", E.config.n_heads)
                                        .integer("kv_heads", E.config.n_kv_heads)
                                        .integer("head_dim", E.config.head_dim)
                                        .integer("vocab", E.config.vocab)
                                        .integer("context_length", E.config.context_length)
                                        .done())
               .boolean("quick", args.quick)
               .integer("reps", args.reps)
               .num("budget_s", args.budget_s)
               .raw("lengths", jarr(E.grid.lengths))
               .integer("texts", E.grid.texts)
               .boolean("chat_template", E.fidelity_frame.chat)
               .str("corpus", args.corpus)
               .done();
  write_json(E);

  const std::vector<std::pair<char, std::pair<const char*, void (*)(Eval&)>>> sections = {
      {'a', {"fidelity", section_fidelity}},
      {'b', {"cumulative", section_cumulative}},
      {'c', {"needle", section_needle}},
      {'d', {"ablations", section_ablations}},
  };
  for (const auto& [letter, named] : sections) {
    if (args.sections.find(letter) == std::string::npos) continue;
    progress("== section (%c) %s", letter, named.first);
    try {
      named.second(E);
    } catch (const std::exception& e) {
      // Record the failure in the JSON and go on: one section's error does not hide the others'.
      progress("ERROR in section (%c): %s", letter, e.what());
      std::printf("\n== (%c) %s: ERROR %s\n", letter, named.first, e.what());
      E.sections[named.first] = Obj().str("error", e.what()).done();
      E.failed = true;
    }
    write_json(E);
  }
  progress("done in %.1f s%s", program_clock().seconds(), E.failed ? " (with errors)" : "");
  return E.failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  program_clock();
  Args args;
  try {
    if (!parse_args(argc, argv, args)) {
      usage(stdout);
      return 0;
    }
  } catch (const ArgError& e) {
    std::fprintf(stderr, "ftp_eval: %s\n", e.what());
    usage(stderr);
    return 1;
  }
  if (!args.dry_run) {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
      std::fprintf(stderr, "ftp_eval: needs a CUDA GPU (none found: %s); --dry-run checks the prompts without one\n",
                   status != cudaSuccess ? cudaGetErrorString(status) : "device count 0");
      return 2;
    }
  }
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ftp_eval: error: %s\n", e.what());
    return 1;
  }
}
