// ftp_llama3: run a Llama-architecture GGUF model on the GPU with or without FFN token pruning,
// in the manner of llama.cpp's CLI.
//
//   ftp_llama3 -m model.gguf -p "prompt" -n 32              FTP prefill (paper defaults), then decode
//   ftp_llama3 -f prompt.txt --no-ftp                        dense prefill
//   ftp_llama3 -f long.txt --chat --compare -n 48            dense vs FTP on the same prompt
//   ftp_llama3 ... --json                                    machine-readable summary on stdout
//
// Progress and statistics go to stderr, the generated text to stdout (only the JSON with --json).
// Exit codes: 0 done, 1 bad arguments or a runtime error, 2 no CUDA GPU.
#include <cuda_runtime.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "llama3/chat_template.hpp"
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model.cuh"
#include "llama3/report.hpp"
#include "llama3/model_config.hpp"
#include "llama3/tokenizer.hpp"

#ifndef FTP_SOURCE_DIR
#define FTP_SOURCE_DIR "."
#endif

namespace {

constexpr const char* kDefaultModel = FTP_SOURCE_DIR "/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf";
constexpr const char* kDefaultPrompt = "Explain in one paragraph why the sky is blue.";

struct Args {
  std::string model = kDefaultModel;
  std::string prompt;
  std::string prompt_file;
  int chat = -1;  // -1: on for instruct models with a chat template
  int n_new = 32;
  float temperature = 0.0f;
  std::uint64_t seed = 42;
  bool ftp = true;
  ftp::Config ftp_config = ftp::Config::llama3();
  int ctx = 0;  // max tokens of the KV cache; 0: prompt + n_new
  bool json = false;
  bool compare = false;
  bool warmup = true;
  bool eta_given = false;  // without --eta the architecture's paper default applies
  bool profile = false;
  std::string attention;  // "", fa2, wgmma or cudnn: the prefill attention kernel ("" = the default)
};

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: ftp_llama3 [options]\n"
               "  -m, --model PATH    GGUF model (default: %s)\n"
               "  -p, --prompt TEXT   prompt (default: \"%s\")\n"
               "  -f, --file PATH     read the prompt from a file\n"
               "  --chat / --no-chat  wrap the prompt in the model's chat template (default: on for instruct models)\n"
               "  -n, --n-predict N   new tokens to generate (default 32)\n"
               "  --temp T            sampling temperature, 0 = greedy (default 0)\n"
               "  --seed S            sampling seed (default 42)\n"
               "  --ftp / --no-ftp    FFN token pruning in prefill (default on)\n"
               "  --eta E             cumulative importance kept, 0 < E <= 1 (default: the paper's, 0.9 for\n"
               "                      Llama, 0.95 for Qwen2)\n"
               "  -F N                leading layers run in full (default 10)\n"
               "  -P N                initial tokens always kept (default 100)\n"
               "  -N N                last queries that score, last tokens always kept (default 50)\n"
               "  -c, --ctx N         KV cache size in tokens (default: prompt + n)\n"
               "  --compare           dense then FTP on the same prompt: TTFT speedup, first-token KL,\n"
               "                      top-1 agreement, greedy continuations (forces --temp 0)\n"
               "  --no-warmup         skip the untimed warm-up prefill\n"
               "  --profile           time every prefill's stages (projections, attention, scoring,\n"
               "                      selection, FFN) with CUDA events\n"
               "  --attention K       prefill attention kernel: wgmma (default on sm_90), fa2 (default\n"
               "                      elsewhere) or cudnn (cuDNN fused attention; a build with\n"
               "                      FTP_WITH_CUDNN and libcudnn.so.9 on LD_LIBRARY_PATH)\n"
               "  --json              machine-readable summary on stdout\n"
               "  -h, --help          this text\n",
               kDefaultModel, kDefaultPrompt);
}

struct ArgError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int to_int(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    const long x = std::stol(v, &used);
    if (used != v.size() || x < INT32_MIN || x > INT32_MAX) throw std::invalid_argument(v);
    return static_cast<int>(x);
  } catch (const std::exception&) {
    throw ArgError(flag + " expects an integer, got '" + v + "'");
  }
}

double to_double(const std::string& flag, const std::string& v) {
  try {
    std::size_t used = 0;
    const double x = std::stod(v, &used);
    if (used != v.size()) throw std::invalid_argument(v);
    return x;
  } catch (const std::exception&) {
    throw ArgError(flag + " expects a number, got '" + v + "'");
  }
}

// Returns false when the program should exit 0 (--help).
bool parse_args(int argc, char** argv, Args& a) {
  int P = a.ftp_config.initial_tokens(), N = a.ftp_config.last_queries(), F = a.ftp_config.full_layers();
  double eta = a.ftp_config.eta();
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw ArgError(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "-h" || flag == "--help") return false;
    else if (flag == "-m" || flag == "--model") a.model = value();
    else if (flag == "-p" || flag == "--prompt") a.prompt = value();
    else if (flag == "-f" || flag == "--file") a.prompt_file = value();
    else if (flag == "--chat") a.chat = 1;
    else if (flag == "--no-chat") a.chat = 0;
    else if (flag == "-n" || flag == "--n-predict") a.n_new = to_int(flag, value());
    else if (flag == "--temp") a.temperature = static_cast<float>(to_double(flag, value()));
    else if (flag == "--seed") a.seed = static_cast<std::uint64_t>(to_int(flag, value()));
    else if (flag == "--ftp") a.ftp = true;
    else if (flag == "--no-ftp") a.ftp = false;
    else if (flag == "--eta") { eta = to_double(flag, value()); a.eta_given = true; }
    else if (flag == "-F") F = to_int(flag, value());
    else if (flag == "-P") P = to_int(flag, value());
    else if (flag == "-N") N = to_int(flag, value());
    else if (flag == "-c" || flag == "--ctx") a.ctx = to_int(flag, value());
    else if (flag == "--json") a.json = true;
    else if (flag == "--compare") a.compare = true;
    else if (flag == "--no-warmup") a.warmup = false;
    else if (flag == "--profile") a.profile = true;
    else if (flag == "--attention") {
      a.attention = value();
      llama3::AttentionKernel k;
      if (!llama3::parse_attention_kernel(a.attention, k)) throw ArgError("--attention expects wgmma, fa2 or cudnn, got '" + a.attention + "'");
    }
    else throw ArgError("unknown option '" + flag + "' (see --help)");
  }
  if (!a.prompt.empty() && !a.prompt_file.empty()) throw ArgError("give either -p or -f, not both");
  if (a.n_new < 1) throw ArgError("-n must be >= 1");
  if (!(a.temperature >= 0.0f) || !std::isfinite(a.temperature)) throw ArgError("--temp must be a finite number >= 0");
  if (a.ctx < 0) throw ArgError("--ctx must be >= 0");
  try {
    a.ftp_config = ftp::Config(P, N, F, eta);
  } catch (const ftp::Error& e) {
    throw ArgError(e.what());
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read prompt file '" + path + "'");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

using llama3::report::json_number;
using llama3::report::json_string;

// ---- one generation ------------------------------------------------------------------------------

struct Run {
  llama3::PrefillResult prefill;
  std::vector<float> first_logits;       // [V] of the last prompt position
  std::vector<std::int32_t> generated;   // the first one comes from prefill
  double decode_ms = 0.0;
  int decode_steps = 0;
  std::string text;

  double tokens_per_s() const { return decode_steps > 0 && decode_ms > 0 ? decode_steps / (decode_ms / 1e3) : 0.0; }
};

float uniform(std::mt19937_64& rng) {
  const float u = std::uniform_real_distribution<float>(0.0f, 1.0f)(rng);
  return std::min(u, std::nextafter(1.0f, 0.0f));  // some libraries can return 1.0f
}

Run generate(llama3::DeviceModel& model, const llama3::Tokenizer& tok, const std::vector<std::int32_t>& prompt,
             bool ftp_on, int n_new, float temperature, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  const auto sampling = [&] { return llama3::Sampling{temperature, temperature > 0 ? uniform(rng) : 0.0f}; };
  Run r;
  r.prefill = model.prefill(prompt, ftp_on, sampling());
  r.first_logits = model.last_logits();
  r.generated.push_back(r.prefill.next_token);
  const int L = static_cast<int>(prompt.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i + 1 < n_new; ++i) {
    const std::int32_t last = r.generated.back();
    if (tok.is_end_of_generation(last) || L + i >= model.max_tokens()) break;
    r.generated.push_back(model.decode_step(last, L + i, sampling()));
    ++r.decode_steps;
  }
  r.decode_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<std::int32_t> shown = r.generated;
  if (!shown.empty() && tok.is_end_of_generation(shown.back())) shown.pop_back();
  r.text = tok.decode(shown);
  return r;
}

using llama3::report::argmax;
using llama3::report::kl_divergence;

// ---- reporting -----------------------------------------------------------------------------------

std::string kept_line(const llama3::PrefillResult& p) {
  std::string s;
  char buf[16];
  for (std::size_t l = 0; l < p.kept_per_layer.size(); ++l) {
    std::snprintf(buf, sizeof buf, "%s%.2f", l ? " " : "", p.kept_fraction(l));
    s += buf;
  }
  return s;
}

void print_run(const char* label, const Run& r, bool profile) {
  std::fprintf(stderr, "[%s] TTFT %.2f ms | decode %d tokens in %.1f ms, %.1f tokens/s\n", label, r.prefill.ttft_ms,
               r.decode_steps, r.decode_ms, r.tokens_per_s());
  std::fprintf(stderr, "[%s] kept fraction per layer: %s (mean %.3f)\n", label, kept_line(r.prefill).c_str(),
               r.prefill.mean_kept_fraction());
  if (profile) {
    const llama3::StageTimes& s = r.prefill.stages;
    std::fprintf(stderr,
                 "[%s] stages (ms): projections %.2f | attention %.2f | scoring %.2f | selection %.2f | FFN %.2f | "
                 "other %.2f | total %.2f\n",
                 label, s.projections_ms, s.attention_ms, s.scoring_ms, s.selection_ms, s.ffn_ms, s.other_ms,
                 s.total_ms);
  }
}

std::string stages_json(const llama3::StageTimes& s) {
  return "{\"projections_ms\": " + json_number(s.projections_ms) + ", \"attention_ms\": " + json_number(s.attention_ms) +
         ", \"scoring_ms\": " + json_number(s.scoring_ms) + ", \"selection_ms\": " + json_number(s.selection_ms) +
         ", \"ffn_ms\": " + json_number(s.ffn_ms) + ", \"other_ms\": " + json_number(s.other_ms) +
         ", \"total_ms\": " + json_number(s.total_ms) + "}";
}

std::string run_json(const char* mode, const Run& r) {
  std::string s = "{\"mode\": \"" + std::string(mode) + "\", \"ttft_ms\": " + json_number(r.prefill.ttft_ms) +
                  ", \"decode_tokens_per_s\": " + json_number(r.tokens_per_s()) +
                  ", \"decode_steps\": " + std::to_string(r.decode_steps) +
                  ", \"new_tokens\": " + std::to_string(r.generated.size()) +
                  ", \"mean_kept_fraction\": " + json_number(r.prefill.mean_kept_fraction()) + ", \"kept_fraction\": [";
  for (std::size_t l = 0; l < r.prefill.kept_per_layer.size(); ++l) {
    s += (l ? ", " : "") + json_number(r.prefill.kept_fraction(l));
  }
  s += "], \"stages\": " + stages_json(r.prefill.stages) + ", \"tokens\": [";
  for (std::size_t i = 0; i < r.generated.size(); ++i) s += (i ? ", " : "") + std::to_string(r.generated[i]);
  return s + "], \"text\": " + json_string(r.text) + "}";
}

int no_gpu_exit(const std::string& reason) {
  std::fprintf(stderr, "ftp llama3 runner: needs a CUDA GPU (none found: %s)\n", reason.c_str());
  return 2;
}

int run(Args args) {
  // 1. The model file: config, tokenizer, weights (dequantized to bf16 on the host).
  const auto t_load = std::chrono::steady_clock::now();
  std::fprintf(stderr, "loading %s\n", args.model.c_str());
  const llama3::GgufFile gguf = llama3::GgufFile::open(args.model);
  const llama3::LlamaConfig config = llama3::config_from_gguf(gguf);
  const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(gguf);
  std::fprintf(stderr,
               "model: %s, %lld layers, C=%lld, I=%lld, heads %lld/%lld, d=%lld, V=%lld, context %lld\n",
               config.architecture.c_str(), (long long)config.n_layers, (long long)config.hidden,
               (long long)config.ffn, (long long)config.n_heads, (long long)config.n_kv_heads,
               (long long)config.head_dim, (long long)config.vocab, (long long)config.context_length);
  if (!args.eta_given && config.architecture == "qwen2") {
    const ftp::Config& c = args.ftp_config;  // the paper's Qwen2 setting
    args.ftp_config = ftp::Config(c.initial_tokens(), c.last_queries(), c.full_layers(), ftp::Config::qwen2().eta());
  }

  // 2. The prompt, optionally in the chat template.
  std::string text = !args.prompt_file.empty() ? read_file(args.prompt_file)
                                               : (args.prompt.empty() ? kDefaultPrompt : args.prompt);
  const std::string name = lower((gguf.has("general.name") ? gguf.get_string("general.name") : "") + " " + args.model);
  const bool instruct = name.find("instruct") != std::string::npos || name.find("chat") != std::string::npos;
  const bool chat = args.chat == 1 || (args.chat == -1 && instruct && !tok.chat_template().empty());
  bool add_bos = tok.add_bos();
  if (chat) {
    const llama3::ChatFormat format = llama3::detect_chat_format(tok.chat_template());
    text = llama3::apply_chat_template(tok.chat_template(), {{"user", text}}, /*add_generation_prompt=*/true);
    if (format == llama3::ChatFormat::Llama3) add_bos = false;  // the rendering starts with <|begin_of_text|>
  }
  const std::vector<std::int32_t> prompt = tok.encode(text, add_bos, /*parse_special=*/true);
  if (prompt.empty()) throw std::runtime_error("the prompt encodes to no tokens");
  const int L = static_cast<int>(prompt.size());
  std::fprintf(stderr, "prompt: %d tokens%s\n", L, chat ? " (chat template)" : "");
  if (args.ctx == 0 && L + args.n_new > config.context_length) {
    throw std::runtime_error("prompt (" + std::to_string(L) + " tokens) + -n " + std::to_string(args.n_new) +
                             " exceeds the model's context length " + std::to_string(config.context_length));
  }
  const int max_tokens = args.ctx > 0 ? args.ctx : L + args.n_new;
  if (L > max_tokens) {
    throw std::runtime_error("prompt has " + std::to_string(L) + " tokens, more than --ctx " + std::to_string(max_tokens));
  }

  // 3. Upload to the GPU.
  std::unique_ptr<llama3::DeviceModel> model;
  {
    const llama3::HostWeights weights = llama3::HostWeights::load(gguf, config);
    model = std::make_unique<llama3::DeviceModel>(config, weights, max_tokens, args.ftp_config);
  }
  const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
  std::fprintf(stderr, "loaded in %.2f s: %.0f MiB of bf16 weights on the GPU, KV cache for %d tokens\n", load_s,
               model->weight_bytes() / 1048576.0, max_tokens);
  model->set_stage_timing(args.profile);
  if (!args.attention.empty()) {
    llama3::AttentionKernel k;
    llama3::parse_attention_kernel(args.attention, k);
    model->set_attention_kernel(k);  // throws (with the reason) where that kernel is unavailable
  }
  std::fprintf(stderr, "prefill attention: %s\n", llama3::attention_kernel_name(model->attention_kernel()));
  const ftp::Config& fc = args.ftp_config;
  std::fprintf(stderr, "FTP: P=%d N=%d F=%d eta=%.3g\n", fc.initial_tokens(), fc.last_queries(), fc.full_layers(),
               fc.eta());

  // 4. Warm-up (cuBLAS heuristics, lazy kernel loading) so the timed TTFT is the steady state.
  if (args.warmup) {
    if (args.compare || !args.ftp) model->prefill(prompt, false);
    if (args.compare || args.ftp) model->prefill(prompt, true);
  }

  // 5. Generate.
  std::string json = "{\"model\": " + json_string(args.model) + ", \"prompt_tokens\": " + std::to_string(L) +
                     ", \"max_tokens\": " + std::to_string(max_tokens) + ", \"chat\": " + (chat ? "true" : "false") +
                     ", \"ftp_config\": {\"P\": " + std::to_string(fc.initial_tokens()) +
                     ", \"N\": " + std::to_string(fc.last_queries()) + ", \"F\": " + std::to_string(fc.full_layers()) +
                     ", \"eta\": " + json_number(fc.eta()) + "}";
  if (args.compare) {
    if (args.temperature > 0) std::fprintf(stderr, "--compare: greedy decoding (--temp ignored)\n");
    const Run dense = generate(*model, tok, prompt, false, args.n_new, 0.0f, args.seed);
    const Run pruned = generate(*model, tok, prompt, true, args.n_new, 0.0f, args.seed);
    const double speedup = dense.prefill.ttft_ms / pruned.prefill.ttft_ms;
    const double kl = kl_divergence(dense.first_logits, pruned.first_logits);
    const bool top1 = argmax(dense.first_logits) == argmax(pruned.first_logits);
    int first_diff = -1;
    const std::size_t n = std::max(dense.generated.size(), pruned.generated.size());
    for (std::size_t i = 0; i < n && first_diff < 0; ++i) {
      if (i >= dense.generated.size() || i >= pruned.generated.size() || dense.generated[i] != pruned.generated[i]) {
        first_diff = static_cast<int>(i);
      }
    }
    print_run("dense", dense, args.profile);
    print_run("ftp", pruned, args.profile);
    std::fprintf(stderr, "TTFT speedup %.3fx | first-token KL(dense||ftp) %.3g | top-1 %s | greedy continuations %s",
                 speedup, kl, top1 ? "agree" : "differ", first_diff < 0 ? "match\n" : "differ");
    if (first_diff >= 0) std::fprintf(stderr, " from new token %d\n", first_diff);
    if (args.json) {
      json += ", \"runs\": [" + run_json("dense", dense) + ", " + run_json("ftp", pruned) + "]";
      json += ", \"compare\": {\"ttft_speedup\": " + json_number(speedup) + ", \"first_token_kl\": " + json_number(kl) +
              ", \"top1_agree\": " + (top1 ? "true" : "false") +
              ", \"continuations_match\": " + (first_diff < 0 ? "true" : "false") +
              ", \"first_diff\": " + (first_diff < 0 ? "null" : std::to_string(first_diff)) + "}}";
      std::printf("%s\n", json.c_str());
    } else {
      std::printf("--- dense ---\n%s\n--- ftp ---\n%s\n", dense.text.c_str(), pruned.text.c_str());
    }
  } else {
    const Run r = generate(*model, tok, prompt, args.ftp, args.n_new, args.temperature, args.seed);
    print_run(args.ftp ? "ftp" : "dense", r, args.profile);
    if (args.json) {
      json += ", \"runs\": [" + run_json(args.ftp ? "ftp" : "dense", r) + "]}";
      std::printf("%s\n", json.c_str());
    } else {
      std::printf("%s\n", r.text.c_str());
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args args;
  try {
    if (!parse_args(argc, argv, args)) {
      usage(stdout);
      return 0;
    }
  } catch (const ArgError& e) {
    std::fprintf(stderr, "ftp_llama3: %s\n", e.what());
    usage(stderr);
    return 1;
  }
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess) return no_gpu_exit(cudaGetErrorString(status));
  if (devices == 0) return no_gpu_exit("device count 0");
  try {
    return run(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ftp_llama3: error: %s\n", e.what());
    return 1;
  }
}
