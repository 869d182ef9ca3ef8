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
#include "sections/ablations.cuh"
#include "sections/common.cuh"
#include "sections/cumulative.cuh"
#include "sections/fidelity.cuh"
#include "sections/needle.cuh"

namespace {

using namespace ftp_eval;  // the shared state and the sections: sections/

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