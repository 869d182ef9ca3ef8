// ftp_longeval: long-context task accuracy of FFN token pruning on a real GGUF model (made for
// Qwen2.5-Coder-1.5B-Instruct: 28 layers, 32k context), dense vs FTP at the paper's Qwen2
// settings (P=100, N=50, F=10, eta=0.95) and at eta=0.9, plus random selection at eta 0.95's
// kept counts per layer (paper Table 3) on the passkey grid and code completion.
//
//   ftp_longeval [-m model.gguf] [--json out.json] [--tasks LIST] [--samples N] [--lengths LIST]
//                [--budget-s S] [--dry-run]
//
// Tasks (generators and scorers: examples/eval/tasks/*.hpp, host tests in tests/examples/host/test_eval_tasks.cpp):
//   passkey            "The pass key is NNNNN." at depths 0..100% of license prose, 1k..32k tokens,
//                      exact match of the key                                          (chat template)
//   multikey           4 "special magic number for KEY" needles, one asked; exact match (chat template)
//   variable_tracking  a 5-variable assignment chain + a distractor chain; share named (chat template)
//   code_completion    real Python / C header files cut before a code line; edit similarity of the
//                      first answer line (LongBench code_sim)                          (raw code)
// Every prompt has exactly its length in the model's tokens (frame included). For each sample
// and configuration: the score of the greedy answer, first-token KL(dense || config) and top-1
// agreement, TTFT of the prefill, kept rows per layer. Decoding is greedy with the dense FFN (FTP
// prunes prefill only) and stops at the end of the turn, at the task's token limit, or (code)
// once the first code line is complete.
//
// Time budget (--budget-s, default 300 s after loading): the default grid is planned for about
// 6 minutes on one H100 for the 1.5B model, with prefill ~0.1 s at 16k and ~0.35 s at 32k tokens
// and ~6 ms per decode step (estimate printed with the plan; the 32k passkey row is most of the
// prefill time). Each task gets a share of the remaining budget by its estimated cost; samples
// past it are not run and are listed as truncated in the JSON and the tables, never dropped
// silently. Lengths above the model's context are skipped, and a length whose answer would not
// fit the context is capped to context - answer tokens, each with a printed note.
//
// --dry-run builds and tokenizes every prompt without a GPU, checks lengths and needles, and
// prints the plan. Progress goes to stderr, tables to stdout. Exit codes: 0 done, 1 bad
// arguments or an error, 2 no CUDA GPU.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "eval_common.hpp"
#include "ftp/ftp.hpp"
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model.cuh"
#include "llama3/model_config.hpp"
#include "llama3/tokenizer.hpp"
#include "policies.cuh"
#include "tasks/code_completion.hpp"
#include "tasks/common.hpp"
#include "tasks/haystack.hpp"
#include "tasks/multikey.hpp"
#include "tasks/passkey.hpp"
#include "tasks/variable_tracking.hpp"

#ifndef FTP_SOURCE_DIR
#define FTP_SOURCE_DIR "."
#endif

namespace {

using bf16 = __nv_bfloat16;
using evalcommon::jarr;
using evalcommon::jlist;
using evalcommon::jnum;
using evalcommon::jstr;
using evalcommon::mean;
using evalcommon::median;
using evalcommon::max_of;
using evalcommon::Obj;
using evalcommon::program_clock;
using evalcommon::progress;
using evaltasks::Sample;
using evaltasks::Tokens;

constexpr const char* kDefaultModel = FTP_SOURCE_DIR "/.cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";
constexpr const char* kDefaultCorpus = "/usr/share/common-licenses";
constexpr std::uint64_t kRandomSeed = 1234;

const std::vector<std::string> kTaskNames = {"passkey", "multikey", "variable_tracking", "code_completion"};

// ---- arguments ---------------------------------------------------------------------------------------

struct Args {
  std::string model = kDefaultModel;
  std::string json_path;
  std::string corpus = kDefaultCorpus;
  std::vector<std::string> code_roots;  // empty: evaltasks::default_code_roots()
  std::vector<std::string> tasks = kTaskNames;
  int samples = -1;          // per length for multikey / variable_tracking / code_completion; < 0: defaults
  std::vector<int> lengths;  // empty: each task's default lengths
  double budget_s = 300;
  bool dry_run = false;
  std::uint64_t seed = 1;
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ftp_longeval [options]\n"
               "  -m, --model PATH    GGUF model (default: %s)\n"
               "  --json PATH         write the results as JSON (rewritten after every task)\n"
               "  --tasks LIST        comma list of passkey, multikey, variable_tracking (vt), code_completion (code)\n"
               "                      (default: all four)\n"
               "  --samples N         samples per length for multikey, variable_tracking, code_completion\n"
               "                      (default 20, 20, 40); the passkey grid is one sample per (length, depth)\n"
               "  --lengths LIST      comma list of prompt lengths in tokens for every task (default: passkey\n"
               "                      1024..32768, the others 4096,8192,16384); k suffix allowed (4k)\n"
               "  --budget-s S        seconds for the tasks after loading (default 300); the rest is truncated\n"
               "  --corpus DIR        haystack texts (default %s)\n"
               "  --code-roots LIST   comma list of folders with source files (default /usr/lib/python3*, /usr/include)\n"
               "  --seed N            generator seed (default 1)\n"
               "  --dry-run           build and check every prompt, print the plan; needs no GPU\n"
               "  -h, --help          this text\n",
               kDefaultModel, kDefaultCorpus);
}

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    item = evaltasks::strip(item);
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

double parse_number(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    const double x = std::stod(v, &used);
    if (used != v.size() || !std::isfinite(x)) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw ArgError(flag + " expects a number, got '" + v + "'");
  }
}

bool parse_args(int argc, char** argv, Args& a) {
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ArgError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "-h" || flag == "--help") return false;
    else if (flag == "-m" || flag == "--model") a.model = value();
    else if (flag == "--json") a.json_path = value();
    else if (flag == "--corpus") a.corpus = value();
    else if (flag == "--code-roots") a.code_roots = split_list(value());
    else if (flag == "--dry-run") a.dry_run = true;
    else if (flag == "--budget-s") a.budget_s = parse_number(flag, value());
    else if (flag == "--seed") a.seed = static_cast<std::uint64_t>(parse_number(flag, value()));
    else if (flag == "--samples") {
      a.samples = static_cast<int>(parse_number(flag, value()));
      if (a.samples < 1) throw ArgError("--samples must be at least 1");
    } else if (flag == "--tasks") {
      a.tasks.clear();
      for (std::string t : split_list(value())) {
        if (t == "vt") t = "variable_tracking";
        if (t == "code") t = "code_completion";
        if (std::find(kTaskNames.begin(), kTaskNames.end(), t) == kTaskNames.end()) {
          throw ArgError("unknown task '" + t + "' (passkey, multikey, variable_tracking, code_completion)");
        }
        if (std::find(a.tasks.begin(), a.tasks.end(), t) == a.tasks.end()) a.tasks.push_back(t);
      }
      if (a.tasks.empty()) throw ArgError("--tasks names no task");
    } else if (flag == "--lengths") {
      a.lengths.clear();
      for (std::string t : split_list(value())) {
        double scale = 1;
        if (!t.empty() && (t.back() == 'k' || t.back() == 'K')) {
          scale = 1024;
          t.pop_back();
        }
        const double x = parse_number(flag, t) * scale;
        if (x < 256 || x > (1 << 22)) throw ArgError("--lengths: " + t + " is outside 256..4M tokens");
        a.lengths.push_back(static_cast<int>(x));
      }
      if (a.lengths.empty()) throw ArgError("--lengths names no length");
    } else {
      throw ArgError("unknown option '" + flag + "' (see --help)");
    }
  }
  if (a.budget_s <= 0) throw ArgError("--budget-s must be positive");
  return true;
}

// ---- cost model (for the plan and the budget shares) -----------------------------------------------------

/// Estimated seconds of one prefill of L tokens of the 1.5B on an H100: a + b L^2 fit to ~0.1 s at
/// 16k and ~0.35 s at 32k (FFN/projections linear, attention quadratic in L).
double est_prefill_s(int L) { return 1.53e-6 * L + 2.79e-10 * static_cast<double>(L) * L; }
constexpr double kEstDecodeStepS = 0.006;

// ---- the plan -----------------------------------------------------------------------------------------

/// One prefill configuration of a sample.
struct ConfigSpec {
  std::string name;   // "dense", "ftp_eta0.95", "ftp_eta0.90", "random_eta0.95"
  std::string label;  // table header
};

const ConfigSpec kDense{"dense", "dense"};
const ConfigSpec kFtp95{"ftp_eta0.95", "eta.95"};
const ConfigSpec kFtp90{"ftp_eta0.90", "eta.90"};
const ConfigSpec kRandom95{"random_eta0.95", "rand.95"};

struct TaskPlan {
  std::string name;
  std::vector<evaltasks::LengthChoice> lengths;
  std::vector<Sample> samples;  // in run order (coarse to fine: truncation thins the grid evenly)
  std::vector<ConfigSpec> configs;
  std::vector<std::string> notes;
  int new_tokens = 0;
  double est_s = 0;

  std::vector<int> used_lengths() const {
    std::vector<int> out;
    for (const auto& c : lengths) {
      if (!c.skipped) out.push_back(c.used);
    }
    return out;
  }
};

/// Passkey depths in a coarse-to-fine order, so that a truncated grid still spans 0..100%.
const std::vector<int> kDepthOrder = {50, 0, 100, 20, 80, 40, 60, 10, 90, 30, 70};

std::vector<int> default_lengths(const std::string& task) {
  if (task == "passkey") return {1024, 2048, 4096, 8192, 16384, 32768};
  return {4096, 8192, 16384};
}

int default_samples(const std::string& task) { return task == "code_completion" ? 40 : 20; }

struct Inputs {
  const llama3::Tokenizer* tok = nullptr;
  std::unique_ptr<evaltasks::Haystack> hay;
  std::unique_ptr<evaltasks::CodeCompletionTask> code;
  std::vector<std::string> code_files;
};

TaskPlan plan_task(const std::string& name, const Args& args, Inputs& in, long long context) {
  TaskPlan p;
  p.name = name;
  const std::vector<int> wanted = args.lengths.empty() ? default_lengths(name) : args.lengths;
  const int per_length = args.samples > 0 ? args.samples : default_samples(name);
  if (name == "passkey") {
    p.new_tokens = evaltasks::PasskeyTask::kNewTokens;
    p.configs = {kDense, kFtp95, kFtp90, kRandom95};
  } else if (name == "multikey") {
    p.new_tokens = evaltasks::MultiKeyTask::kNewTokens;
    p.configs = {kDense, kFtp95, kFtp90};
  } else if (name == "variable_tracking") {
    p.new_tokens = evaltasks::VariableTrackingTask::kNewTokens;
    p.configs = {kDense, kFtp95, kFtp90};
  } else {
    p.new_tokens = evaltasks::CodeCompletionTask::kNewTokens;
    p.configs = {kDense, kFtp95, kFtp90, kRandom95};
  }
  p.lengths = evaltasks::fit_lengths(wanted, context, p.new_tokens);
  for (const auto& c : p.lengths) {
    if (!c.note.empty()) p.notes.push_back(name + ": " + c.note);
  }
  if (name == "passkey") {
    const evaltasks::PasskeyTask task(*in.tok, *in.hay, args.seed * 101 + 1);
    for (int d : kDepthOrder) {
      for (const auto& c : p.lengths) {
        if (!c.skipped) p.samples.push_back(task.make(c.used, d, c.requested));
      }
    }
  } else if (name == "multikey" || name == "variable_tracking") {
    std::vector<std::vector<Sample>> by_length;
    for (const auto& c : p.lengths) {
      if (c.skipped) continue;
      by_length.emplace_back();
      for (int i = 0; i < per_length; ++i) {
        if (name == "multikey") {
          const evaltasks::MultiKeyTask task(*in.tok, *in.hay, args.seed * 101 + 2);
          by_length.back().push_back(task.make(c.used, i, c.requested));
        } else {
          const evaltasks::VariableTrackingTask task(*in.tok, *in.hay, args.seed * 101 + 3);
          by_length.back().push_back(task.make(c.used, i, c.requested));
        }
      }
    }
    for (int i = 0; i < per_length; ++i) {
      for (auto& v : by_length) {
        if (i < static_cast<int>(v.size())) p.samples.push_back(std::move(v[static_cast<std::size_t>(i)]));
      }
    }
  } else {
    if (!in.code) {
      in.code_files = evaltasks::list_code_files(args.code_roots.empty() ? evaltasks::default_code_roots() : args.code_roots);
      in.code = std::make_unique<evaltasks::CodeCompletionTask>(*in.tok, in.code_files, args.seed * 101 + 4);
    }
    if (in.code_files.empty()) p.notes.push_back("code_completion: no source files found under the code roots: task skipped");
    std::vector<std::vector<Sample>> by_length;
    for (const auto& c : p.lengths) {
      if (c.skipped || in.code_files.empty()) continue;
      by_length.push_back(in.code->make(c.used, per_length, &p.notes, c.requested));
    }
    for (int i = 0; i < per_length; ++i) {
      for (auto& v : by_length) {
        if (i < static_cast<int>(v.size())) p.samples.push_back(std::move(v[static_cast<std::size_t>(i)]));
      }
    }
  }
  // Estimated GPU seconds: every config prefills and decodes (code: ~half its token limit).
  const double steps = name == "code_completion" ? 0.5 * p.new_tokens : p.new_tokens;
  for (const Sample& s : p.samples) {
    p.est_s += static_cast<double>(p.configs.size()) * (est_prefill_s(s.length) + steps * kEstDecodeStepS);
  }
  return p;
}

// ---- generation --------------------------------------------------------------------------------------

struct Generation {
  llama3::PrefillResult prefill;
  std::vector<float> first_logits;
  Tokens tokens;
  std::string text;
};

template <class PrefillFn>
Generation generate(llama3::DeviceModel& model, const llama3::Tokenizer& tok, const Sample& s, PrefillFn&& prefill_fn) {
  Generation g;
  g.prefill = prefill_fn(s.prompt);
  g.first_logits = model.last_logits();
  g.tokens.push_back(g.prefill.next_token);
  const int L = static_cast<int>(s.prompt.size());
  const auto shown = [&] {
    Tokens t = g.tokens;
    if (!t.empty() && tok.is_end_of_generation(t.back())) t.pop_back();
    return tok.decode(t);
  };
  for (int i = 0; i + 1 < s.max_new_tokens; ++i) {
    const std::int32_t last = g.tokens.back();
    if (tok.is_end_of_generation(last) || L + i >= model.max_tokens()) break;
    if (s.stop_at_first_line && evaltasks::first_code_line_complete(shown())) break;
    g.tokens.push_back(model.decode_step(last, L + i));
  }
  g.text = shown();
  return g;
}

struct RunResult {
  std::string answer;
  double score = NAN;
  double kl = NAN;   // vs dense
  bool top1 = true;  // same first token as dense
  double ttft_ms = NAN;
  std::vector<int> kept;
  int new_tokens = 0;
};

// ---- results -------------------------------------------------------------------------------------------

struct SampleResult {
  const Sample* sample = nullptr;
  std::map<std::string, RunResult> runs;  // by config name
};

struct TaskResult {
  TaskPlan plan;
  std::vector<SampleResult> done;
  std::vector<const Sample*> not_run;
  bool truncated = false;
  std::string error;
};

struct Group {
  std::vector<double> score, kl, ttft;
  std::vector<bool> top1;
  std::vector<std::vector<int>> kept;
  std::vector<int> lengths;
};

double kept_fraction_pruned(const std::vector<int>& kept, int L, int F) {
  std::vector<double> f;
  for (std::size_t l = static_cast<std::size_t>(F); l < kept.size(); ++l) f.push_back(static_cast<double>(kept[l]) / L);
  return mean(f);
}

std::vector<double> mean_kept_per_layer(const Group& g) {
  if (g.kept.empty()) return {};
  std::vector<double> out(g.kept[0].size(), 0.0);
  for (std::size_t i = 0; i < g.kept.size(); ++i) {
    for (std::size_t l = 0; l < out.size() && l < g.kept[i].size(); ++l) out[l] += static_cast<double>(g.kept[i][l]) / g.lengths[i];
  }
  for (double& x : out) x /= static_cast<double>(g.kept.size());
  return out;
}

/// Mean over a group's runs of the kept fraction of layers F..end.
double mean_kept_pruned(const Group& g, int F) {
  std::vector<double> v;
  for (std::size_t i = 0; i < g.kept.size(); ++i) v.push_back(kept_fraction_pruned(g.kept[i], g.lengths[i], F));
  return mean(v);
}

double rate_of(const std::vector<bool>& v) { return evalcommon::rate(v); }

/// (length, config) -> group, over the samples done.
std::map<std::pair<int, std::string>, Group> group_results(const TaskResult& r) {
  std::map<std::pair<int, std::string>, Group> g;
  for (const SampleResult& s : r.done) {
    for (const auto& [config, run] : s.runs) {
      Group& x = g[{s.sample->length, config}];
      x.score.push_back(run.score);
      x.ttft.push_back(run.ttft_ms);
      x.lengths.push_back(s.sample->length);
      x.kept.push_back(run.kept);
      if (config != "dense") {
        x.kl.push_back(run.kl);
        x.top1.push_back(run.top1);
      }
    }
  }
  return g;
}

std::string task_json(const TaskResult& r, int F) {
  std::vector<std::string> lengths, summary, samples, not_run, notes;
  for (const auto& c : r.plan.lengths) {
    lengths.push_back(Obj()
                          .integer("requested", c.requested)
                          .integer("used", c.used)
                          .boolean("skipped", c.skipped)
                          .str("note", c.note)
                          .done());
  }
  for (const std::string& n : r.plan.notes) notes.push_back(jstr(n));
  const auto groups = group_results(r);
  for (const auto& [key, g] : groups) {
    const Group& dense = groups.at({key.first, "dense"});
    summary.push_back(Obj()
                          .integer("length", key.first)
                          .str("config", key.second)
                          .integer("samples", static_cast<long long>(g.score.size()))
                          .num("score_mean", mean(g.score))
                          .num("kl_mean", mean(g.kl))
                          .num("kl_median", median(g.kl))
                          .num("kl_max", max_of(g.kl))
                          .num("top1_rate", rate_of(g.top1))
                          .num("ttft_ms_median", median(g.ttft))
                          .num("speedup_vs_dense", median(dense.ttft) / median(g.ttft))
                          .num("mean_kept_fraction_pruned", mean_kept_pruned(g, F))
                          .raw("kept_fraction_per_layer", jarr(mean_kept_per_layer(g)))
                          .done());
  }
  for (const SampleResult& s : r.done) {
    const Sample& x = *s.sample;
    std::vector<std::string> runs;
    for (const auto& [config, run] : s.runs) {
      runs.push_back(jstr(config) + ": " +
                     Obj()
                         .str("answer", run.answer)
                         .num("score", run.score)
                         .num("kl", run.kl)
                         .boolean("top1_agree", run.top1)
                         .num("ttft_ms", run.ttft_ms)
                         .integer("new_tokens", run.new_tokens)
                         .raw("kept", jarr(run.kept))
                         .done());
    }
    std::vector<std::string> answers;
    for (const std::string& a : x.answers) answers.push_back(jstr(a));
    std::string runs_obj = "{";
    for (std::size_t i = 0; i < runs.size(); ++i) runs_obj += (i ? ", " : "") + runs[i];
    runs_obj += "}";
    Obj o;
    o.integer("length", x.length).integer("requested_length", x.requested_length).integer("index", x.index);
    if (x.depth_percent >= 0) o.integer("depth_percent", x.depth_percent);
    if (std::isfinite(x.depth)) o.num("depth", x.depth);
    o.str("info", x.info).raw("expected", "[" + [&] {
      std::string t;
      for (std::size_t i = 0; i < answers.size(); ++i) t += (i ? ", " : "") + answers[i];
      return t;
    }() + "]").raw("runs", runs_obj);
    samples.push_back(o.done());
  }
  for (const Sample* s : r.not_run) {
    Obj o;
    o.integer("length", s->length).integer("index", s->index);
    if (s->depth_percent >= 0) o.integer("depth_percent", s->depth_percent);
    not_run.push_back(o.done());
  }
  std::vector<std::string> configs;
  for (const ConfigSpec& c : r.plan.configs) configs.push_back(jstr(c.name));
  Obj o;
  o.integer("planned_samples", static_cast<long long>(r.plan.samples.size()))
      .integer("samples_done", static_cast<long long>(r.done.size()))
      .boolean("truncated", r.truncated)
      .integer("max_new_tokens", r.plan.new_tokens)
      .raw("configs", "[" + [&] {
        std::string t;
        for (std::size_t i = 0; i < configs.size(); ++i) t += (i ? ", " : "") + configs[i];
        return t;
      }() + "]")
      .raw("lengths", jlist(lengths))
      .raw("notes", jlist(notes))
      .raw("summary", jlist(summary))
      .raw("not_run", jlist(not_run))
      .raw("samples", jlist(samples));
  if (!r.error.empty()) o.str("error", r.error);
  return o.done();
}

void print_task_table(const TaskResult& r, int F) {
  const auto groups = group_results(r);
  std::printf("\n== %s: %zu of %zu samples run%s; score = %s\n", r.plan.name.c_str(), r.done.size(),
              r.plan.samples.size(), r.truncated ? " (TRUNCATED: time budget)" : "",
              r.plan.name == "code_completion"      ? "edit similarity / 100"
              : r.plan.name == "variable_tracking" ? "share of the variables named"
                                                   : "exact match");
  std::printf("%7s %4s", "tokens", "n");
  for (const ConfigSpec& c : r.plan.configs) std::printf(" %8s", c.label.c_str());
  for (const ConfigSpec& c : r.plan.configs) {
    if (c.name != "dense") std::printf(" %9s", ("KL " + c.label).c_str());
  }
  for (const ConfigSpec& c : r.plan.configs) {
    if (c.name != "dense") std::printf(" %9s", ("top1 " + c.label).c_str());
  }
  for (const ConfigSpec& c : r.plan.configs) {
    if (c.name == kFtp95.name || c.name == kFtp90.name) std::printf(" %9s", ("kept " + c.label).c_str());
  }
  for (const ConfigSpec& c : r.plan.configs) std::printf(" %10s", ("ms " + c.label).c_str());
  std::printf("\n");
  for (int L : r.plan.used_lengths()) {
    auto d = groups.find({L, "dense"});
    if (d == groups.end()) {
      std::printf("%7d %4d (not run)\n", L, 0);
      continue;
    }
    std::printf("%7d %4zu", L, d->second.score.size());
    for (const ConfigSpec& c : r.plan.configs) {
      auto g = groups.find({L, c.name});
      std::printf(" %8.3f", g == groups.end() ? NAN : mean(g->second.score));
    }
    for (const ConfigSpec& c : r.plan.configs) {
      if (c.name == "dense") continue;
      auto g = groups.find({L, c.name});
      std::printf(" %9.4f", g == groups.end() ? NAN : mean(g->second.kl));
    }
    for (const ConfigSpec& c : r.plan.configs) {
      if (c.name == "dense") continue;
      auto g = groups.find({L, c.name});
      std::printf(" %9.2f", g == groups.end() ? NAN : rate_of(g->second.top1));
    }
    for (const ConfigSpec& c : r.plan.configs) {
      if (c.name != kFtp95.name && c.name != kFtp90.name) continue;
      auto g = groups.find({L, c.name});
      std::printf(" %9.3f", g == groups.end() ? NAN : mean_kept_pruned(g->second, F));
    }
    for (const ConfigSpec& c : r.plan.configs) {
      auto g = groups.find({L, c.name});
      std::printf(" %10.2f", g == groups.end() ? NAN : median(g->second.ttft));
    }
    std::printf("\n");
  }
  std::printf("(KL = first-token KL(dense || config), top1 = same first token as dense, kept = mean kept fraction of\n"
              " layers F..end, ms = median TTFT)\n");
  if (r.plan.name == "passkey") {
    std::map<std::pair<int, int>, const SampleResult*> cell;  // (length, depth) -> result
    for (const SampleResult& s : r.done) cell[{s.sample->length, s.sample->depth_percent}] = &s;
    const std::vector<int> Ls = r.plan.used_lengths();
    for (const ConfigSpec& c : r.plan.configs) {
      std::printf("passkey %s: exact match by depth (rows) and length (columns), '.' = not run\n%6s", c.name.c_str(),
                  "depth");
      for (int L : Ls) std::printf(" %6d", L);
      std::printf("\n");
      for (int d = 0; d <= 100; d += 10) {
        std::printf("%5d%%", d);
        for (int L : Ls) {
          const auto it = cell.find({L, d});
          const auto run = it == cell.end() ? nullptr : &it->second->runs;
          if (run == nullptr || run->find(c.name) == run->end()) std::printf(" %6s", ".");
          else std::printf(" %6d", static_cast<int>(run->at(c.name).score));
        }
        std::printf("\n");
      }
    }
  }
  for (const std::string& n : r.plan.notes) std::printf("note: %s\n", n.c_str());
  std::fflush(stdout);
}

// ---- the run -----------------------------------------------------------------------------------------------

struct Runner {
  const Args& args;
  const llama3::Tokenizer& tok;
  llama3::DeviceModel& model;
  ftp::Config c95, c90;
  ftp::Pruner<bf16> p95, p90;
  std::unique_ptr<evalpolicies::RandomSameCountPruner<bf16>> random95;
  std::set<int> warmed;

  Runner(const Args& a, const llama3::Tokenizer& t, llama3::DeviceModel& m)
      : args(a), tok(t), model(m), c95(ftp::Config::qwen2()), c90(ftp::Config::qwen2().with_eta(0.90)),
        p95(c95, m.pruner_shape()), p90(c90, m.pruner_shape()),
        random95(evalpolicies::make_random_same_count_pruner<bf16>(c95, m.pruner_shape(), kRandomSeed)) {}

  /// Untimed prefills of this length through every pruner (lazy loading, cuBLAS heuristics).
  void warm_up(const Sample& s) {
    if (!warmed.insert(s.length).second) return;
    model.prefill(s.prompt, false);
    const llama3::PrefillResult r = model.prefill_with(s.prompt, p95);
    model.prefill_with(s.prompt, p90);
    random95->reserve().match_kept(r.kept_per_layer, c95, s.length);
    model.prefill_with(s.prompt, *random95);
  }

  SampleResult run(const Sample& s, const std::vector<ConfigSpec>& configs) {
    warm_up(s);
    SampleResult out;
    out.sample = &s;
    const Generation dense = generate(model, tok, s, [&](const Tokens& p) { return model.prefill(p, false); });
    const auto record = [&](const std::string& name, const Generation& g) {
      RunResult r;
      r.answer = g.text;
      r.score = evaltasks::score_answer(s, g.text);
      r.ttft_ms = g.prefill.ttft_ms;
      r.kept = g.prefill.kept_per_layer;
      r.new_tokens = static_cast<int>(g.tokens.size());
      if (name != "dense") {
        r.kl = evalcommon::kl_divergence(dense.first_logits, g.first_logits);
        r.top1 = evalcommon::argmax(dense.first_logits) == evalcommon::argmax(g.first_logits);
      }
      out.runs[name] = r;
    };
    record("dense", dense);
    std::vector<int> kept95;
    for (const ConfigSpec& c : configs) {
      if (c.name == kFtp95.name) {
        const Generation g = generate(model, tok, s, [&](const Tokens& p) { return model.prefill_with(p, p95); });
        kept95 = g.prefill.kept_per_layer;
        record(c.name, g);
      } else if (c.name == kFtp90.name) {
        record(c.name, generate(model, tok, s, [&](const Tokens& p) { return model.prefill_with(p, p90); }));
      } else if (c.name == kRandom95.name) {
        if (kept95.empty()) throw std::logic_error("the random run needs the eta 0.95 run first");
        random95->reserve().match_kept(kept95, c95, s.length);
        const Generation g = generate(model, tok, s, [&](const Tokens& p) { return model.prefill_with(p, *random95); });
        if (g.prefill.kept_per_layer != kept95) progress("WARNING: random run kept other counts than eta 0.95's");
        record(c.name, g);
      }
    }
    return out;
  }
};

void write_json(const Args& args, const std::string& meta, const std::vector<TaskResult>& results, int F) {
  if (args.json_path.empty()) return;
  std::string s = "{\n  \"meta\": " + meta + ",\n  \"tasks\": {";
  for (std::size_t i = 0; i < results.size(); ++i) {
    s += (i ? ",\n    " : "\n    ") + jstr(results[i].plan.name) + ": " + task_json(results[i], F);
  }
  s += "\n  }\n}\n";
  const std::string tmp = args.json_path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary);
    if (!out) throw std::runtime_error("cannot write '" + tmp + "'");
    out << s;
    if (!out) throw std::runtime_error("write to '" + tmp + "' failed");
  }
  if (std::rename(tmp.c_str(), args.json_path.c_str()) != 0) {
    throw std::runtime_error("cannot rename '" + tmp + "' to '" + args.json_path + "'");
  }
}

void print_plan(const std::vector<TaskPlan>& plans, const Inputs& in, long long context) {
  std::printf("haystack: %zu texts (%zu segments, %zu tokens) from the corpus; code: %zu candidate files, %zu tokenized\n",
              in.hay->names().size(), in.hay->segments(), in.hay->total_tokens(), in.code_files.size(),
              in.code ? in.code->files_tokenized() : std::size_t{0});
  std::printf("model context: %lld tokens\n", context);
  std::printf("%-18s %8s %8s %7s %6s %9s  %s\n", "task", "tokens", "samples", "configs", "new", "est GPU s", "note");
  double total = 0;
  for (const TaskPlan& p : plans) {
    for (const auto& c : p.lengths) {
      int n = 0;
      double est = 0;
      for (const Sample& s : p.samples) {
        if (!c.skipped && s.length == c.used) {
          ++n;
          est += static_cast<double>(p.configs.size()) *
                 (est_prefill_s(s.length) + (p.name == "code_completion" ? 0.5 : 1.0) * p.new_tokens * kEstDecodeStepS);
        }
      }
      std::printf("%-18s %8d %8d %7zu %6d %9.1f  %s\n", p.name.c_str(), c.skipped ? c.requested : c.used, n,
                  p.configs.size(), p.new_tokens, est, c.note.c_str());
    }
    std::printf("%-18s %8s %8zu %7s %6s %9.1f\n", p.name.c_str(), "all", p.samples.size(), "", "", p.est_s);
    total += p.est_s;
  }
  std::printf("estimated GPU time (H100, 1.5B; prefill ~0.1 s at 16k, ~0.35 s at 32k; %.0f ms a decode step): %.0f s\n",
              kEstDecodeStepS * 1000, total);
  for (const TaskPlan& p : plans) {
    for (const std::string& n : p.notes) std::printf("note: %s\n", n.c_str());
  }
}

/// Checks what the tests check, on every prompt of the plan: exact length, needles in place, the
/// expected answer in the prompt text (needle tasks) or right after it in the source file (code).
int check_plan(const std::vector<TaskPlan>& plans, const llama3::Tokenizer& tok) {
  int problems = 0;
  for (const TaskPlan& p : plans) {
    int bad = 0;
    for (const Sample& s : p.samples) {
      bool ok = static_cast<int>(s.prompt.size()) == s.length;
      for (std::size_t k = 0; ok && k < s.needle_at.size(); ++k) {
        ok = std::equal(s.needles[k].begin(), s.needles[k].end(), s.prompt.begin() + s.needle_at[k]);
      }
      if (ok && s.metric != evaltasks::Metric::EditSimilarity) {
        const std::string text = tok.decode(s.prompt);
        for (const std::string& a : s.answers) ok = ok && text.find(a) != std::string::npos;
      }
      if (ok && s.metric == evaltasks::Metric::EditSimilarity) {
        ok = !evaltasks::strip(s.answers[0]).empty();
      }
      if (!ok) {
        ++bad;
        std::printf("PROBLEM: %s length %d sample %d (%s)\n", p.name.c_str(), s.length, s.index, s.info.c_str());
      }
    }
    std::printf("%s: %zu prompts checked, %d problems\n", p.name.c_str(), p.samples.size(), bad);
    problems += bad;
  }
  return problems;
}

void print_examples(const std::vector<TaskPlan>& plans, const llama3::Tokenizer& tok) {
  for (const TaskPlan& p : plans) {
    if (p.name == "passkey") {  // requested vs actual needle depth of every cell
      std::printf("\npasskey needle depth (haystack tokens before the needle / haystack tokens):\n%6s", "depth");
      for (int L : p.used_lengths()) std::printf(" %6d", L);
      std::printf("\n");
      for (int d = 0; d <= 100; d += 10) {
        std::printf("%5d%%", d);
        for (int L : p.used_lengths()) {
          double actual = NAN;
          for (const Sample& s : p.samples) {
            if (s.length == L && s.depth_percent == d) actual = s.depth;
          }
          std::printf(" %6.3f", actual);
        }
        std::printf("\n");
      }
    }
    if (p.name == "code_completion") {  // the files and lines chosen (they depend on the machine)
      std::printf("\ncode completion samples (file:line of the cut, the true line):\n");
      for (const Sample& s : p.samples) {
        std::printf("  %6d %s %s\n", s.length, s.info.c_str(), jstr(evaltasks::strip(s.answers[0])).c_str());
      }
    }
  }
  for (const TaskPlan& p : plans) {
    if (p.samples.empty()) continue;
    const Sample& s = p.samples.front();
    const std::string text = tok.decode(s.prompt);
    std::printf("\n-- %s, %d tokens, sample %d (%s); expected:", p.name.c_str(), s.length, s.index, s.info.c_str());
    for (const std::string& a : s.answers) std::printf(" %s", jstr(a).c_str());
    std::printf("\n   head: %s\n   tail: %s\n", jstr(text.substr(0, 240)).c_str(),
                jstr(text.substr(text.size() > 300 ? text.size() - 300 : 0)).c_str());
  }
  std::fflush(stdout);
}

int run(const Args& args) {
  progress("loading %s", args.model.c_str());
  const llama3::GgufFile gguf = llama3::GgufFile::open(args.model);
  const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(gguf);
  const llama3::LlamaConfig config = llama3::config_from_gguf(gguf);
  const long long context = std::min<long long>(config.context_length > 0 ? config.context_length : 4096, 1 << 20);
  progress("model: %s, %lld layers, C=%lld, I=%lld, heads %lld/%lld, d=%lld, V=%lld, context %lld",
           config.architecture.c_str(), (long long)config.n_layers, (long long)config.hidden, (long long)config.ffn,
           (long long)config.n_heads, (long long)config.n_kv_heads, (long long)config.head_dim,
           (long long)config.vocab, context);

  Inputs in;
  in.tok = &tok;
  in.hay = std::make_unique<evaltasks::Haystack>(evaltasks::Haystack::from_dir(tok, args.corpus));
  std::vector<TaskPlan> plans;
  for (const std::string& name : kTaskNames) {
    if (std::find(args.tasks.begin(), args.tasks.end(), name) == args.tasks.end()) continue;
    plans.push_back(plan_task(name, args, in, context));
    progress("planned %s: %zu prompts", name.c_str(), plans.back().samples.size());
  }
  print_plan(plans, in, context);
  if (args.dry_run) {
    const int problems = check_plan(plans, tok);
    print_examples(plans, tok);
    std::printf("\ndry run: %s (prompts built in %.1f s)\n",
                problems == 0 ? "every prompt has its exact length, needles and answers in place" : "PROBLEMS (see above)",
                program_clock().seconds());
    return problems == 0 ? 0 : 1;
  }

  int max_tokens = 256;
  for (const TaskPlan& p : plans) {
    for (const Sample& s : p.samples) max_tokens = std::max(max_tokens, s.length + p.new_tokens);
  }
  max_tokens = static_cast<int>(std::min<long long>(max_tokens, context));
  const ftp::Config paper = ftp::Config::qwen2();
  std::unique_ptr<llama3::DeviceModel> model;
  {
    const llama3::HostWeights weights = llama3::HostWeights::load(gguf, config);
    model = std::make_unique<llama3::DeviceModel>(config, weights, max_tokens, paper);
  }
  cudaDeviceProp prop{};
  LLAMA3_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  progress("on %s: %.0f MiB of bf16 weights, KV cache for %d tokens", prop.name, model->weight_bytes() / 1048576.0,
           max_tokens);
  Runner runner(args, tok, *model);
  model->decode_step(0, 0);  // warm the decode path (the cache holds one position after it)
  const double start = program_clock().seconds();
  const double deadline = start + args.budget_s;

  std::vector<std::string> plan_rows;
  for (const TaskPlan& p : plans) {
    plan_rows.push_back(Obj().str("task", p.name).integer("prompts", static_cast<long long>(p.samples.size())).num("est_gpu_s", p.est_s).done());
  }
  const std::string meta = Obj()
                               .str("model", args.model)
                               .str("device", prop.name)
                               .raw("model_config", Obj()
                                                        .str("architecture", config.architecture)
                                                        .integer("layers", config.n_layers)
                                                        .integer("hidden", config.hidden)
                                                        .integer("ffn", config.ffn)
                                                        .integer("q_heads", config.n_heads)
                                                        .integer("kv_heads", config.n_kv_heads)
                                                        .integer("head_dim", config.head_dim)
                                                        .integer("vocab", config.vocab)
                                                        .integer("context_length", context)
                                                        .done())
                               .raw("ftp", Obj()
                                               .integer("P", paper.initial_tokens())
                                               .integer("N", paper.last_queries())
                                               .integer("F", paper.full_layers())
                                               .raw("eta", "[0.95, 0.90]")
                                               .integer("random_seed", static_cast<long long>(kRandomSeed))
                                               .str("random", "RandomScorer + PerLayerTopCount at the eta 0.95 run's kept counts per layer")
                                               .done())
                               .num("budget_s", args.budget_s)
                               .integer("seed", static_cast<long long>(args.seed))
                               .str("corpus", args.corpus)
                               .integer("code_files", static_cast<long long>(in.code_files.size()))
                               .raw("plan", jlist(plan_rows))
                               .done();

  std::vector<TaskResult> results;
  bool failed = false;
  double remaining_est = 0;
  for (const TaskPlan& p : plans) remaining_est += p.est_s;
  for (TaskPlan& p : plans) {
    TaskResult r;
    r.plan = std::move(p);
    // This task's share of the time left, by its estimated cost.
    const double now = program_clock().seconds();
    const double share = remaining_est > 0 ? r.plan.est_s / remaining_est : 1.0;
    const double task_deadline = std::min(deadline, now + std::max(0.0, deadline - now) * share);
    remaining_est -= r.plan.est_s;
    progress("== %s: %zu prompts, %.0f s of budget (estimated %.0f s)", r.plan.name.c_str(), r.plan.samples.size(),
             task_deadline - now, r.plan.est_s);
    try {
      for (const Sample& s : r.plan.samples) {
        if (program_clock().seconds() > task_deadline) {
          r.truncated = true;
          r.not_run.push_back(&s);
          continue;
        }
        r.done.push_back(runner.run(s, r.plan.configs));
        const SampleResult& d = r.done.back();
        std::string line;
        for (const auto& [name, run] : d.runs) {
          char buf[96];
          std::snprintf(buf, sizeof buf, " %s=%.2f", name.c_str(), run.score);
          line += buf;
        }
        progress("%s L=%d #%d%s:%s (dense: %s)", r.plan.name.c_str(), s.length, s.index,
                 s.depth_percent >= 0 ? (" depth " + std::to_string(s.depth_percent) + "%").c_str() : "", line.c_str(),
                 jstr(d.runs.at("dense").answer.substr(0, 60)).c_str());
      }
    } catch (const std::exception& e) {
      progress("ERROR in %s: %s", r.plan.name.c_str(), e.what());
      r.error = e.what();
      failed = true;
    }
    print_task_table(r, paper.full_layers());
    results.push_back(std::move(r));
    write_json(args, meta, results, paper.full_layers());
  }
  // Overall summary: every task and config, over all lengths run.
  std::printf("\n== summary (all lengths run)\n%-18s %-15s %6s %8s %9s %6s %9s %9s\n", "task", "config", "n", "score",
              "KL mean", "top1", "kept(F..)", "speedup");
  for (const TaskResult& r : results) {
    const auto groups = group_results(r);
    for (const ConfigSpec& c : r.plan.configs) {
      Group all;
      std::vector<double> speedups, kept;
      for (const auto& [key, g] : groups) {
        if (key.second != c.name) continue;
        all.score.insert(all.score.end(), g.score.begin(), g.score.end());
        all.kl.insert(all.kl.end(), g.kl.begin(), g.kl.end());
        all.top1.insert(all.top1.end(), g.top1.begin(), g.top1.end());
        speedups.push_back(median(groups.at({key.first, "dense"}).ttft) / median(g.ttft));
        kept.push_back(mean_kept_pruned(g, paper.full_layers()));
      }
      std::printf("%-18s %-15s %6zu %8.3f %9.4f %6.2f %9.3f %9.3f\n", r.plan.name.c_str(), c.name.c_str(),
                  all.score.size(), mean(all.score), mean(all.kl), rate_of(all.top1), mean(kept), mean(speedups));
    }
  }
  progress("done in %.1f s (%.1f s of tasks)%s", program_clock().seconds(), program_clock().seconds() - start,
           failed ? " with errors" : "");
  return failed ? 1 : 0;
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
    std::fprintf(stderr, "ftp_longeval: %s\n", e.what());
    usage(stderr);
    return 1;
  }
  if (!args.dry_run) {
    int devices = 0;
    const cudaError_t status = cudaGetDeviceCount(&devices);
    if (status != cudaSuccess || devices == 0) {
      std::fprintf(stderr, "ftp_longeval: needs a CUDA GPU (none found: %s); --dry-run checks the prompts without one\n",
                   status != cudaSuccess ? cudaGetErrorString(status) : "device count 0");
      return 2;
    }
  }
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ftp_longeval: error: %s\n", e.what());
    return 1;
  }
}
