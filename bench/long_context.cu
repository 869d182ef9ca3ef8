// Long context: prefill of a Llama-3.1-8B-shaped stack (4 layers, GQA 32/8, d=128, llama3 RoPE
// scaling, random bf16 weights) at 8k-128k tokens, dense and FTP: whether it fits, the pruner
// workspace, the model's device bytes, and the peak device memory in use, as tokens grow.
//
// Usage: ftp_bench_long_context [--json out.json] [--layers 4]
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"
#include "llama3/model.cuh"

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int layers = std::stoi(bench::arg_value(argc, argv, "--layers", "4"));
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_long_context needs a CUDA GPU\n");
    return 2;
  }
  llama3::LlamaConfig shape = llama3::llama3_8b_shape();
  shape.n_layers = layers;
  const ftp::Config paper = ftp::Config::llama3().with_full_layers(1);  // prune from layer 1 of the short stack
  std::vector<std::string> rows;
  std::printf("%7s %14s %14s %12s %12s %10s %10s %8s\n", "tokens", "model_MiB", "workspace_MiB", "peak_used_MiB",
              "free_MiB", "dense_ms", "ftp_ms", "kept");
  std::mt19937 rng(3);
  for (int L : {8192, 32768, 65536, 131072}) {
    std::size_t free0 = 0, total = 0;
    bench::check(cudaMemGetInfo(&free0, &total), "mem");
    const std::size_t model_bytes = llama3::DeviceModel::device_bytes(shape, L, paper);
    const std::size_t ws = ftp::Pruner<__nv_bfloat16>::workspace_bytes(
        {L, 1, static_cast<int>(shape.hidden), static_cast<int>(shape.ffn), static_cast<int>(shape.n_heads),
         static_cast<int>(shape.n_kv_heads), static_cast<int>(shape.head_dim)},
        paper);
    std::vector<std::int32_t> tokens(L);
    for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % shape.vocab);
    double dense_ms = 0, ftp_ms = 0, kept = 0;
    std::size_t used_peak = 0;
    std::string error;
    try {
      llama3::DeviceModel model(shape, /*seed=*/1, L, paper);
      model.prefill(tokens, false);  // warm-up
      dense_ms = model.prefill(tokens, false).ttft_ms;
      model.prefill(tokens, true);
      const llama3::PrefillResult r = model.prefill(tokens, true);
      ftp_ms = r.ttft_ms;
      kept = r.mean_kept_fraction();
      std::size_t free1 = 0;
      bench::check(cudaMemGetInfo(&free1, &total), "mem");
      used_peak = free0 - free1;  // everything the model and its pruners hold while alive
    } catch (const std::exception& e) {
      error = e.what();
    }
    std::printf("%7d %14.1f %14.1f %12.1f %12.1f %10.1f %10.1f %8.3f %s\n", L, model_bytes / 1048576.0, ws / 1048576.0,
                used_peak / 1048576.0, free0 / 1048576.0, dense_ms, ftp_ms, kept, error.c_str());
    char row[768];
    std::snprintf(row, sizeof(row),
                  "{\"layers\": %d, \"seq_len\": %d, \"model_device_bytes\": %zu, \"pruner_workspace_bytes\": %zu, "
                  "\"device_bytes_in_use\": %zu, \"dense_ttft_ms\": %.3f, \"ftp_ttft_ms\": %.3f, \"kept\": %.4f, "
                  "\"error\": \"%s\"}",
                  layers, L, model_bytes, ws, used_peak, dense_ms, ftp_ms, kept, error.c_str());
    rows.push_back(row);
  }
  bench::write_json(json, "long_context", rows);
  return 0;
}
