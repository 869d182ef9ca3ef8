// FTP overhead per layer: scoring (LastQueriesAttention) + selection (CumulativeEta) + the one
// kept-count copy and host wait, without the FFN, for the Llama3-8B attention shape (Hq=32, Hkv=8,
// d=128, bf16; batches 1, 4, 16) and the Qwen2.5-Coder-1.5B shape (Hq=12, Hkv=2, d=128; batch 1),
// each JSON row naming its "shape". Three scorers:
//   two-pass   the scorer computes the rows' log-sum-exp itself (a pass over the keys), then scores
//   one-pass   the engine hands over its attention kernel's lse (AttentionView::lse): scores only
//   select     RandomScorer (one hash per token): selection and the copy alone, by the one-CTA
//              fused radix select ("select"), by the sort path ("sorted"), by the multi-CTA
//              radix select ("multi") and by the cluster radix select ("cluster", sm_90+); the two
//              scorers above take the pruner's automatic choice (SelectionPath::kAuto)
// and two ways to time one pruned layer:
//   isolated   events around run() on an idle GPU: includes every host launch and the host wait
//   pipelined  the same run() queued behind 0.5 ms of other GPU work, as in a real prefill where
//              the layer's attention is still running while the host enqueues FTP's kernels: the
//              start event fires when that work ends, the stop event after run() returned, so the
//              time is FTP's device work, the gaps between its kernels, and the host's round trip
//              for the kept count; host launch costs hidden behind the earlier work drop out.
// The engine lse here is the value ln(L) + 0.9 for every row (the expected lse of L random logits
// of this scale): one-pass timing does not depend on the values, and the kept fraction printed is
// the two-pass one.
//
// Usage: ftp_bench_overhead [--json out.json] [--max-tokens 131072] [--only-seq-len L]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"

namespace {

/// Keeps the GPU busy for `ns` nanoseconds of the global timer (one thread), so that the host can
/// enqueue what follows before the GPU reaches it.
__device__ inline unsigned long long global_ns() {
  unsigned long long t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}
__global__ void busy_kernel(unsigned long long ns) {
  const unsigned long long start = global_ns();
  while (global_ns() - start < ns) {
  }
}

__global__ void fill_kernel(float* x, std::size_t n, float value) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    x[i] = value;
  }
}

/// A time for the JSON, null where it was not measured (negative).
std::string ms_or_null(double ms) {
  if (ms < 0.0) return "null";
  char text[32];
  std::snprintf(text, sizeof(text), "%.5f", ms);
  return text;
}

struct Timing {
  double isolated_ms = 0.0, pipelined_ms = 0.0, kept = 0.0;
};

template <class Scorer>
Timing time_layer(int B, int L, int Hq, int Hkv, int d, const ftp::AttentionView<__nv_bfloat16>& attention,
                  __nv_bfloat16* residual, cudaStream_t stream,
                  ftp::SelectionPath path = ftp::SelectionPath::kAuto) {
  const int T = B * L;
  std::vector<int> cu(B + 1);
  for (int b = 0; b <= B; ++b) cu[b] = b * L;
  ftp::Pruner<__nv_bfloat16, Scorer, ftp::CumulativeEta, ftp::NoFfn> pruner(ftp::Config::llama3(), {T, B, 64, 64, Hq, Hkv, d});
  pruner.plan(cu.data(), B, T, stream);
  pruner.set_selection_path(path);
  auto layer = [&] { pruner.run(10, attention, {residual, 64, 64}, {}, stream); };
  Timing t;
  t.isolated_ms = bench::median_ms(layer, stream);
  t.pipelined_ms = bench::median_ms(layer, stream, 5, 30, [&] { busy_kernel<<<1, 1, 0, stream>>>(500000); });
  t.kept = pruner.last_report().kept_fraction();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int max_tokens = std::stoi(bench::arg_value(argc, argv, "--max-tokens", "131072"));
  // --only-seq-len L: just B = 1 at that length (a short run to profile, e.g. under ncu)
  const int only_seq_len = std::stoi(bench::arg_value(argc, argv, "--only-seq-len", "0"));
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_overhead needs a CUDA GPU\n");
    return 2;
  }
  struct AttentionShape {
    const char* name;
    int Hq, Hkv, d;
    std::vector<int> batches;
  };
  int cluster_launch = 0;
  bench::check(cudaDeviceGetAttribute(&cluster_launch, cudaDevAttrClusterLaunch, 0), "cluster attribute");
  const bool has_clusters = cluster_launch != 0;  // else the cluster columns print -1
  const AttentionShape shapes[] = {{"llama3-8b", 32, 8, 128, {1, 4, 16}}, {"qwen2.5-1.5b", 12, 2, 128, {1}}};
  const int Hq_max = 32, Hkv_max = 8, d = 128;
  cudaStream_t stream;
  bench::check(cudaStreamCreate(&stream), "stream");
  const std::size_t T_max = static_cast<std::size_t>(max_tokens);
  __nv_bfloat16* q = bench::random_bf16(T_max * Hq_max * d, 1, -2.0f, 2.0f);
  __nv_bfloat16* k = bench::random_bf16(T_max * Hkv_max * d, 2, -2.0f, 2.0f);
  __nv_bfloat16* residual = bench::random_bf16(T_max * 64, 3, -1.0f, 1.0f);
  float* lse = nullptr;
  bench::check(cudaMalloc(&lse, T_max * Hq_max * sizeof(float)), "cudaMalloc lse");
  std::vector<std::string> rows;
  std::printf("per pruned layer, ms (isolated | pipelined: queued behind other GPU work, as in a prefill)\n");
  for (const AttentionShape& shape : shapes) {
    const int Hq = shape.Hq, Hkv = shape.Hkv;
    std::printf("%s attention shape (Hq=%d, Hkv=%d, d=%d)\n", shape.name, Hq, Hkv, d);
    std::printf("%5s %7s | %9s %9s %9s %9s %9s %9s | %9s %9s %9s %9s %9s %9s | %6s\n", "batch", "seq_len", "two-pass",
                "one-pass", "select", "sorted", "multi", "cluster", "two-pass", "one-pass", "select", "sorted", "multi",
                "cluster", "kept");
    for (int B : shape.batches) {
      for (int L : {1024, 4096, 8192, 16384, 32768, 65536, 131072}) {
        if (static_cast<std::size_t>(B) * L > T_max) continue;
        if (only_seq_len > 0 && (B != 1 || L != only_seq_len)) continue;
        const int T = B * L;
        fill_kernel<<<1024, 256, 0, stream>>>(lse, static_cast<std::size_t>(T) * Hq, std::log(static_cast<float>(L)) + 0.9f);
        bench::check(cudaGetLastError(), "fill lse");
        ftp::AttentionView<__nv_bfloat16> two_pass_view{q, Hq * d, k, Hkv * d, Hq, Hkv, d};
        ftp::AttentionView<__nv_bfloat16> one_pass_view = two_pass_view;
        one_pass_view.lse = lse;
        one_pass_view.lse_token_stride = Hq;
        one_pass_view.lse_head_stride = 1;
        const Timing two = time_layer<ftp::LastQueriesAttention>(B, L, Hq, Hkv, d, two_pass_view, residual, stream);
        const Timing one = time_layer<ftp::LastQueriesAttention>(B, L, Hq, Hkv, d, one_pass_view, residual, stream);
        const Timing sel = time_layer<ftp::RandomScorer>(B, L, Hq, Hkv, d, two_pass_view, residual, stream,
                                                         ftp::SelectionPath::kFused);
        const Timing sorted = time_layer<ftp::RandomScorer>(B, L, Hq, Hkv, d, two_pass_view, residual, stream,
                                                            ftp::SelectionPath::kSorted);
        const Timing multi = time_layer<ftp::RandomScorer>(B, L, Hq, Hkv, d, two_pass_view, residual, stream,
                                                           ftp::SelectionPath::kMultiCta);
        const Timing cluster = has_clusters ? time_layer<ftp::RandomScorer>(B, L, Hq, Hkv, d, two_pass_view, residual,
                                                                            stream, ftp::SelectionPath::kCluster)
                                            : Timing{-1.0, -1.0, 0.0};
        std::printf("%5d %7d | %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f | %9.4f %9.4f %9.4f %9.4f %9.4f %9.4f | %6.3f\n", B,
                    L, two.isolated_ms, one.isolated_ms, sel.isolated_ms, sorted.isolated_ms, multi.isolated_ms,
                    cluster.isolated_ms, two.pipelined_ms, one.pipelined_ms, sel.pipelined_ms, sorted.pipelined_ms,
                    multi.pipelined_ms, cluster.pipelined_ms, two.kept);
        char row[1024];
        std::snprintf(row, sizeof(row),
                      "{\"shape\": \"%s\", \"batch\": %d, \"seq_len\": %d, \"score_select_ms\": %.5f, \"score_select_lse_ms\": %.5f, "
                      "\"select_ms\": %.5f, \"score_ms\": %.5f, \"pipelined_score_select_ms\": %.5f, "
                      "\"pipelined_score_select_lse_ms\": %.5f, \"pipelined_select_ms\": %.5f, \"select_sorted_ms\": %.5f, "
                      "\"pipelined_select_sorted_ms\": %.5f, \"select_multi_cta_ms\": %.5f, "
                      "\"pipelined_select_multi_cta_ms\": %.5f, \"select_cluster_ms\": %s, "
                      "\"pipelined_select_cluster_ms\": %s, \"kept_fraction\": %.4f}",
                      shape.name, B, L, two.isolated_ms, one.isolated_ms, sel.isolated_ms, two.isolated_ms - sel.isolated_ms,
                      two.pipelined_ms, one.pipelined_ms, sel.pipelined_ms, sorted.isolated_ms, sorted.pipelined_ms,
                      multi.isolated_ms, multi.pipelined_ms, ms_or_null(cluster.isolated_ms).c_str(),
                      ms_or_null(cluster.pipelined_ms).c_str(), two.kept);
        rows.push_back(row);
      }
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
  cudaFree(lse);
  return 0;
}
