// Prefill of a real GGUF model (Qwen2.5-Coder-1.5B by default) at 4k-32k tokens of real text:
// dense TTFT against FTP with the paper's Qwen2 setting (P=100, N=50, F=10, eta=0.95) and eta=0.9,
// the kept fraction per layer, and where each prefill's GPU time goes (projections, attention,
// scoring, selection, FFN; llama3/stage_timing.cuh). The HF transformers side of the same GGUF is
// bench/hf_gguf_prefill.py, run in the same device call.
//
// The prompt: the model's chat template around a long document (the text files given, cut to
// length) followed by a question, exactly `length` tokens. TTFT: median of --repeats CUDA-event
// prefills after one warm-up of each variant, with stage timing off; the stage split comes from one
// extra prefill with timing on (its events cost a few microseconds per layer).
//
// Usage: ftp_bench_model_ttft -m model.gguf [--json out.json] [--lengths 4096,8192,16384,32768]
//                             [--repeats 5] [--text FILE]...   (default text: Debian's license texts
//                             and the Python standard library's own sources, sorted by name)
//                             [--attention LIST]   prefill attention kernels to time, in one process,
//                             e.g. wgmma,cudnn (default: the model's default kernel); each row of the
//                             table and of the JSON names its kernel ("attention"). A kernel that is
//                             unavailable here (cudnn without cuDNN) is reported on stderr and left out.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"
#include "llama3/chat_template.hpp"
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model.cuh"
#include "llama3/model_config.hpp"
#include "llama3/report.hpp"
#include "llama3/tokenizer.hpp"

namespace {

using Tokens = std::vector<std::int32_t>;
using llama3::report::json_number;

constexpr const char* kQuestion = "\n\nSummarize the document above in three sentences.";

std::vector<int> parse_lengths(const std::string& text) {
  std::vector<int> out;
  std::stringstream s(text);
  for (std::string item; std::getline(s, item, ',');) out.push_back(std::stoi(item));
  return out;
}

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

/// The default document: license texts, then Python sources, until `want_bytes` are collected.
std::vector<std::string> default_texts(std::size_t want_bytes) {
  std::vector<std::string> files;
  for (const char* dir : {"/usr/share/common-licenses", "/usr/lib/python3.11", "/usr/lib/python3"}) {
    std::error_code ec;
    std::vector<std::string> here;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.is_regular_file(ec) && (std::string(dir).find("python") == std::string::npos ||
                                    e.path().extension() == ".py")) {
        here.push_back(e.path().string());
      }
    }
    std::sort(here.begin(), here.end());
    files.insert(files.end(), here.begin(), here.end());
  }
  std::vector<std::string> picked;
  std::size_t bytes = 0;
  for (const std::string& f : files) {
    if (bytes >= want_bytes) break;
    picked.push_back(f);
    bytes += std::filesystem::file_size(f);
  }
  return picked;
}

struct Frame {
  Tokens prefix, suffix;  // chat template before and after the document
};

Frame make_frame(const llama3::Tokenizer& tok) {
  const std::string marker = "@@DOCUMENT@@";
  const std::string rendered =
      tok.chat_template().empty()
          ? marker + kQuestion
          : llama3::apply_chat_template(tok.chat_template(), {{"user", marker + kQuestion}}, true);
  const std::size_t at = rendered.find(marker);
  Frame f;
  f.prefix = tok.encode(rendered.substr(0, at), tok.add_bos(), /*parse_special=*/true);
  f.suffix = tok.encode(rendered.substr(at + marker.size()), false, /*parse_special=*/true);
  return f;
}

template <class Run>
float median_ttft(int repeats, Run run) {
  std::vector<float> t;
  for (int i = 0; i < repeats; ++i) t.push_back(run().ttft_ms);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

std::string stages_json(const llama3::StageTimes& s) {
  return "{\"projections_ms\": " + json_number(s.projections_ms) + ", \"attention_ms\": " + json_number(s.attention_ms) +
         ", \"scoring_ms\": " + json_number(s.scoring_ms) + ", \"selection_ms\": " + json_number(s.selection_ms) +
         ", \"ffn_ms\": " + json_number(s.ffn_ms) + ", \"other_ms\": " + json_number(s.other_ms) +
         ", \"total_ms\": " + json_number(s.total_ms) + "}";
}

std::string kept_json(const llama3::PrefillResult& r) {
  std::string s = "[";
  for (std::size_t l = 0; l < r.kept_per_layer.size(); ++l) s += (l ? ", " : "") + json_number(r.kept_fraction(l));
  return s + "]";
}

}  // namespace

int main(int argc, char** argv) {
  const std::string model_path = bench::arg_value(argc, argv, "-m", FTP_SOURCE_DIR "/.cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf");
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int repeats = std::stoi(bench::arg_value(argc, argv, "--repeats", "5"));
  std::vector<int> lengths = parse_lengths(bench::arg_value(argc, argv, "--lengths", "4096,8192,16384,32768"));
  std::vector<std::string> texts;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::string(argv[i]) == "--text") texts.push_back(argv[i + 1]);
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_model_ttft: needs a CUDA GPU\n");
    return 2;
  }
  try {
    const llama3::GgufFile gguf = llama3::GgufFile::open(model_path);
    const llama3::LlamaConfig config = llama3::config_from_gguf(gguf);
    const llama3::Tokenizer tok = llama3::Tokenizer::from_gguf(gguf);
    std::vector<int> usable;
    for (int L : lengths) {
      if (L <= config.context_length) {
        usable.push_back(L);
      } else {
        std::fprintf(stderr, "length %d skipped: past the model's context of %lld tokens\n", L,
                     static_cast<long long>(config.context_length));
      }
    }
    if (usable.empty()) throw std::runtime_error("no length fits the model's context");
    const int max_len = *std::max_element(usable.begin(), usable.end());

    // The document, tokenized once; each length takes its first tokens.
    if (texts.empty()) texts = default_texts(static_cast<std::size_t>(max_len) * 6);
    std::string document;
    for (const std::string& t : texts) document += read_all(t) + "\n\n";
    const Tokens doc = tok.encode(document, false, /*parse_special=*/false);
    const Frame frame = make_frame(tok);
    const int overhead = static_cast<int>(frame.prefix.size() + frame.suffix.size());
    if (static_cast<int>(doc.size()) + overhead < max_len) {
      throw std::runtime_error("the document has only " + std::to_string(doc.size()) + " tokens: give longer --text files");
    }
    std::fprintf(stderr, "model %s: %lld layers, C=%lld, I=%lld, heads %lld/%lld, d=%lld; document %zu tokens from %zu files\n",
                 config.architecture.c_str(), (long long)config.n_layers, (long long)config.hidden,
                 (long long)config.ffn, (long long)config.n_heads, (long long)config.n_kv_heads,
                 (long long)config.head_dim, doc.size(), texts.size());

    const ftp::Config paper = config.architecture == "qwen2" ? ftp::Config::qwen2() : ftp::Config::llama3();
    const double other_eta = paper.eta() > 0.925 ? 0.9 : 0.95;
    std::unique_ptr<llama3::DeviceModel> model;
    {
      const llama3::HostWeights weights = llama3::HostWeights::load(gguf, config);
      model = std::make_unique<llama3::DeviceModel>(config, weights, max_len, paper);
    }
    std::vector<llama3::AttentionKernel> kernels;
    const std::string attention_list = bench::arg_value(argc, argv, "--attention");
    if (attention_list.empty()) {
      kernels.push_back(model->attention_kernel());
    } else {
      std::stringstream names(attention_list);
      for (std::string name; std::getline(names, name, ',');) {
        llama3::AttentionKernel k;
        if (!llama3::parse_attention_kernel(name, k)) {
          throw std::runtime_error("--attention: '" + name + "' is none of wgmma, fa2, cudnn");
        }
        try {
          model->set_attention_kernel(k);
          kernels.push_back(k);
        } catch (const std::exception& e) {
          std::fprintf(stderr, "attention kernel %s left out: %s\n", name.c_str(), e.what());
        }
      }
      if (kernels.empty()) throw std::runtime_error("--attention: none of the kernels asked for is available");
    }
    struct Variant {
      std::string name;
      double eta;  // 1: dense
    };
    const std::vector<Variant> variants = {{"dense", 1.0}, {"ftp", paper.eta()}, {"ftp", other_eta}};
    std::vector<std::string> rows;
    std::printf("%7s %-5s %-5s %5s %9s %8s %8s | %8s %8s %8s %8s %8s\n", "tokens", "attn", "mode", "eta", "TTFT ms",
                "speedup", "kept", "proj", "attn", "score", "select", "FFN");
    for (int L : usable) {
      Tokens prompt = frame.prefix;
      prompt.insert(prompt.end(), doc.begin(), doc.begin() + (L - overhead));
      prompt.insert(prompt.end(), frame.suffix.begin(), frame.suffix.end());
      for (const llama3::AttentionKernel kernel : kernels) {
        model->set_attention_kernel(kernel);
        const char* kernel_name = llama3::attention_kernel_name(kernel);
        float dense_ms = 0;  // speedups are against dense prefill with the same attention kernel
        for (const Variant& v : variants) {
          const bool ftp_on = v.eta < 1.0;
          if (ftp_on) model->set_ftp_config(ftp::Config(paper.initial_tokens(), paper.last_queries(), paper.full_layers(), v.eta));
          model->set_stage_timing(false);
          model->prefill(prompt, ftp_on);  // warm-up
          const float ttft = median_ttft(repeats, [&] { return model->prefill(prompt, ftp_on); });
          model->set_stage_timing(true);
          const llama3::PrefillResult profiled = model->prefill(prompt, ftp_on);
          model->set_stage_timing(false);
          if (!ftp_on) dense_ms = ttft;
          const llama3::StageTimes& s = profiled.stages;
          std::printf("%7d %-5s %-5s %5.2f %9.2f %8.3f %8.3f | %8.2f %8.2f %8.2f %8.2f %8.2f\n", L, kernel_name,
                      v.name.c_str(), ftp_on ? v.eta : 1.0, ttft, dense_ms / ttft, profiled.mean_kept_fraction(), s.projections_ms,
                      s.attention_ms, s.scoring_ms, s.selection_ms, s.ffn_ms);
          std::fflush(stdout);
          rows.push_back("{\"tokens\": " + std::to_string(L) + ", \"attention\": \"" + kernel_name +
                         "\", \"mode\": \"" + v.name + "\", \"eta\": " +
                         json_number(ftp_on ? v.eta : 1.0) + ", \"ttft_ms\": " + json_number(ttft) +
                         ", \"speedup_vs_dense\": " + json_number(dense_ms / ttft) + ", \"repeats\": " +
                         std::to_string(repeats) + ", \"mean_kept_fraction\": " + json_number(profiled.mean_kept_fraction()) +
                         ", \"kept_fraction\": " + kept_json(profiled) + ", \"stages\": " + stages_json(s) + "}");
        }
      }
    }
    bench::write_json(json, "model_ttft " + config.architecture + " " + std::filesystem::path(model_path).filename().string(),
                      rows);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ftp_bench_model_ttft: %s\n", e.what());
    return 1;
  }
  return 0;
}
