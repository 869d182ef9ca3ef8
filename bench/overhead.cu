// FTP overhead per layer: scoring (LastQueriesAttention) + selection (CumulativeEta) + the one
// kept-count copy, without the FFN, for the Llama3-8B attention shape (Hq=32, Hkv=8, d=128).
// Selection alone is timed with RandomScorer (a hash per token), so scoring = total - selection.
//
// Usage: ftp_bench_overhead [--json out.json] [--max-tokens 131072]
#include <cstdio>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"

namespace {

/// An FFNExecutor that does nothing: isolates scoring and selection.
struct NoFfn {
  template <class T>
  struct Weights {};
  template <class T>
  std::size_t workspace_bytes(const ftp::WorkspaceShape&) const { return 0; }
  template <class T>
  void validate(const Weights<T>&) const {}
  template <class T>
  void run(const ftp::FfnContext<T>&, const Weights<T>&) const {}
};

template <class Scorer>
double time_layer(int B, int L, int Hq, int Hkv, int d, const __nv_bfloat16* q, const __nv_bfloat16* k,
                  __nv_bfloat16* residual, double* kept_fraction, cudaStream_t stream) {
  const int T = B * L;
  std::vector<int> cu(B + 1);
  for (int b = 0; b <= B; ++b) cu[b] = b * L;
  ftp::Pruner<__nv_bfloat16, Scorer, ftp::CumulativeEta, NoFfn> pruner(ftp::Config::llama3(), {T, B, 64, 64, Hq, Hkv, d});
  pruner.plan(cu.data(), B, T, stream);
  const ftp::AttentionView<__nv_bfloat16> attention{q, Hq * d, k, Hkv * d, Hq, Hkv, d};
  const double ms = bench::median_ms([&] { pruner.run(10, attention, {residual, 64, 64}, {}, stream); }, stream);
  *kept_fraction = pruner.last_report().kept_fraction();
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int max_tokens = std::stoi(bench::arg_value(argc, argv, "--max-tokens", "131072"));
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_overhead needs a CUDA GPU\n");
    return 2;
  }
  const int Hq = 32, Hkv = 8, d = 128;
  cudaStream_t stream;
  bench::check(cudaStreamCreate(&stream), "stream");
  const std::size_t T_max = static_cast<std::size_t>(max_tokens);
  __nv_bfloat16* q = bench::random_bf16(T_max * Hq * d, 1, -2.0f, 2.0f);
  __nv_bfloat16* k = bench::random_bf16(T_max * Hkv * d, 2, -2.0f, 2.0f);
  __nv_bfloat16* residual = bench::random_bf16(T_max * 64, 3, -1.0f, 1.0f);
  std::vector<std::string> rows;
  std::printf("%6s %8s %12s %12s %12s %8s\n", "batch", "seq_len", "total_ms", "select_ms", "score_ms", "kept");
  for (int B : {1, 4, 16}) {
    for (int L : {1024, 4096, 8192, 16384, 32768, 65536, 131072}) {
      if (static_cast<std::size_t>(B) * L > T_max) continue;
      double kept = 0.0, kept_random = 0.0;
      const double total = time_layer<ftp::LastQueriesAttention>(B, L, Hq, Hkv, d, q, k, residual, &kept, stream);
      const double select = time_layer<ftp::RandomScorer>(B, L, Hq, Hkv, d, q, k, residual, &kept_random, stream);
      std::printf("%6d %8d %12.4f %12.4f %12.4f %8.3f\n", B, L, total, select, total - select, kept);
      char row[512];
      std::snprintf(row, sizeof(row),
                    "{\"batch\": %d, \"seq_len\": %d, \"score_select_ms\": %.5f, \"select_ms\": %.5f, \"score_ms\": %.5f, "
                    "\"kept_fraction\": %.4f}",
                    B, L, total, select, total - select, kept);
      rows.push_back(row);
    }
  }
  const ftp::WorkspaceShape llama_32k{32768, 1, 4096, 14336, 32, 8, 128};
  const std::size_t ws = ftp::Pruner<__nv_bfloat16>::workspace_bytes(llama_32k, ftp::Config::llama3());
  std::printf("workspace for one 32k-token sequence, Llama3-8B shape (bf16, default CublasSwiGLU): %zu bytes (%.1f MiB)\n",
              ws, ws / 1048576.0);
  char row[256];
  std::snprintf(row, sizeof(row), "{\"workspace_bytes_llama3_8b_32k\": %zu}", ws);
  rows.push_back(row);
  bench::write_json(json, "overhead", rows);
  return 0;
}
