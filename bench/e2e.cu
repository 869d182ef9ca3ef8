// End-to-end prefill of a Llama3-8B-shaped model (32 layers, C=4096, I=14336, GQA 32/8, d=128,
// random bf16 weights generated on the GPU) at 4k-32k tokens: dense TTFT, FTP with the paper's
// CumulativeEta (eta=0.9, F=10, P=100, N=50), and FTP with TopRatio 0.6 / 0.4, which stand in for
// the attention concentration of trained models (random weights give nearly uniform attention).
// Every FFN runs through ftp::Pruner (KeepAll for dense). Attention: the runner's default kernel
// (wgmma on Hopper), and for comparison one dense prefill with the FA2 (mma.sync) kernel and, in a
// build with cuDNN, dense and keep 0.4 with cuDNN's fused attention ("*_cudnn_attention" rows).
// Median of 3 CUDA-event TTFTs after a warm-up of each variant. Memory per length, as bench/long_context.cu reports it: the FTP pruner's
// workspace for a batch of that many tokens ("pruner_workspace_bytes": the library's size query,
// through DeviceModel's own pruner type and shape) and the device memory in use after that length's
// runs ("device_used_bytes" = cudaMemGetInfo total - free: the model sized once for --max-tokens,
// its two pruners, the two TopRatio pruners, cuBLAS and the CUDA context; long_context.cu's
// "device_bytes_in_use" is instead the growth of use while its model lives).
//
// Usage: ftp_bench_e2e [--json out.json] [--max-tokens 32768]
#include <algorithm>
#include <cstdio>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"
#include "llama3/model.cuh"

namespace {

template <class Run>
llama3::PrefillResult median_prefill(Run run) {
  run();  // warm-up
  std::vector<llama3::PrefillResult> results;
  for (int i = 0; i < 3; ++i) results.push_back(run());
  std::sort(results.begin(), results.end(), [](const auto& a, const auto& b) { return a.ttft_ms < b.ttft_ms; });
  return results[1];
}

/// Median milliseconds of one dense FFN block (RMSNorm, gate/up, SiLU*up, down, residual add) of
/// the model's shape over L rows, through the library's FFN on random weights of that shape: the
/// per-layer FFN time against which the FTP saving is compared (ideal saving = sum over pruned
/// layers of (1 - kept) x this time).
double dense_ffn_ms(const llama3::LlamaConfig& shape, int L) {
  const int C = static_cast<int>(shape.hidden), I = static_cast<int>(shape.ffn);
  using DenseFfn = ftp::Pruner<__nv_bfloat16, ftp::LastQueriesAttention, ftp::KeepAll>;
  DenseFfn pruner(ftp::Config::llama3(), {L, 1, C, I, static_cast<int>(shape.n_heads), static_cast<int>(shape.n_kv_heads),
                                          static_cast<int>(shape.head_dim)});
  __nv_bfloat16* norm = bench::random_bf16(C, 11, 0.9f, 1.1f);
  __nv_bfloat16* gate_up = bench::random_bf16(static_cast<std::size_t>(2) * I * C, 12, -0.02f, 0.02f);
  __nv_bfloat16* down = bench::random_bf16(static_cast<std::size_t>(C) * I, 13, -0.02f, 0.02f);
  __nv_bfloat16* residual = bench::random_bf16(static_cast<std::size_t>(L) * C, 14, -1.0f, 1.0f);
  const int cu[2] = {0, L};
  cudaStream_t stream;
  bench::check(cudaStreamCreate(&stream), "stream");
  pruner.plan(cu, 1, L, stream);
  const ftp::CublasSwiGLU::Weights<__nv_bfloat16> weights{norm, gate_up, nullptr, nullptr, down, 1e-5f};
  const double ms = bench::median_ms([&] { pruner.run(0, {}, {residual, C, C}, weights, stream); }, stream, 3, 10);
  bench::check(cudaStreamSynchronize(stream), "sync");
  for (void* p : {static_cast<void*>(norm), static_cast<void*>(gate_up), static_cast<void*>(down),
                  static_cast<void*>(residual)}) {
    cudaFree(p);
  }
  cudaStreamDestroy(stream);
  return ms;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int max_tokens = std::stoi(bench::arg_value(argc, argv, "--max-tokens", "32768"));
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_e2e needs a CUDA GPU\n");
    return 2;
  }
  const llama3::LlamaConfig shape = llama3::llama3_8b_shape();
  const ftp::Config paper = ftp::Config::llama3();
  llama3::DeviceModel model(shape, /*seed=*/1, max_tokens, paper);
  using RatioPruner = ftp::Pruner<__nv_bfloat16, ftp::LastQueriesAttention, ftp::TopRatio>;
  RatioPruner keep_06(paper, model.pruner_shape(), {}, ftp::TopRatio{0.6});
  RatioPruner keep_04(paper, model.pruner_shape(), {}, ftp::TopRatio{0.4});

  const std::size_t model_bytes = llama3::DeviceModel::device_bytes(shape, max_tokens, paper);
  std::printf("prefill attention kernel: %s\n",
              model.attention_kernel() == llama3::AttentionKernel::Wgmma ? "wgmma (sm_90a)" : "FA2 (mma.sync)");
  std::printf("model planned for %d tokens: %.1f MiB of device memory (DeviceModel::device_bytes)\n", max_tokens,
              model_bytes / 1048576.0);

  std::vector<std::string> rows;
  std::printf("%7s %10s %10s %8s %10s %8s %10s %8s %8s %8s\n", "tokens", "dense_ms", "eta0.9_ms", "kept", "keep0.6_ms",
              "speedup", "keep0.4_ms", "speedup", "ws_MiB", "used_GiB");
  std::mt19937 rng(5);
  for (int L : {4096, 8192, 16384, 32768}) {
    if (L > max_tokens) continue;
    std::vector<std::int32_t> tokens(L);
    for (auto& t : tokens) t = static_cast<std::int32_t>(rng() % shape.vocab);
    const auto dense = median_prefill([&] { return model.prefill(tokens, false); });
    // The same dense prefill with the FA2 (mma.sync) attention kernel, when wgmma is the default.
    const bool has_wgmma = model.attention_kernel() == llama3::AttentionKernel::Wgmma;
    llama3::PrefillResult dense_fa2;
    if (has_wgmma) {
      model.set_attention_kernel(llama3::AttentionKernel::Fa2);
      dense_fa2 = median_prefill([&] { return model.prefill(tokens, false); });
      model.set_attention_kernel(llama3::AttentionKernel::Wgmma);
    }
    const auto eta = median_prefill([&] { return model.prefill(tokens, true); });
    const auto r06 = median_prefill([&] { return model.prefill_with(tokens, keep_06); });
    const auto r04 = median_prefill([&] { return model.prefill_with(tokens, keep_04); });
    // Dense and keep 0.4 again with cuDNN's fused attention, where this build and machine have it:
    // the runner's attention is the lever on the dense-vs-HF ratio, and both kernels are timed here.
    llama3::PrefillResult dense_cudnn, r04_cudnn;
    bool has_cudnn = false;
    const llama3::AttentionKernel default_kernel = model.attention_kernel();
    try {
      model.set_attention_kernel(llama3::AttentionKernel::Cudnn);
      has_cudnn = true;
    } catch (const std::exception& e) {
      if (L == 4096) std::fprintf(stderr, "cuDNN attention rows left out: %s\n", e.what());
    }
    if (has_cudnn) {
      dense_cudnn = median_prefill([&] { return model.prefill(tokens, false); });
      r04_cudnn = median_prefill([&] { return model.prefill_with(tokens, keep_04); });
      model.set_attention_kernel(default_kernel);
    }
    ftp::WorkspaceShape length_shape = model.pruner_shape();
    length_shape.max_tokens = L;
    const std::size_t workspace = llama3::DeviceModel::FtpPruner::workspace_bytes(length_shape, paper);
    std::size_t free_bytes = 0, total_bytes = 0;
    bench::check(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo");
    const std::size_t in_use = total_bytes - free_bytes;
    std::printf("%7d %10.2f %10.2f %8.3f %10.2f %7.3fx %10.2f %7.3fx %8.1f %8.2f\n", L, dense.ttft_ms, eta.ttft_ms,
                eta.mean_kept_fraction(), r06.ttft_ms, dense.ttft_ms / r06.ttft_ms, r04.ttft_ms,
                dense.ttft_ms / r04.ttft_ms, workspace / 1048576.0, in_use / 1073741824.0);
    if (has_cudnn) {
      std::printf("%7s cudnn attention: dense %.2f ms, keep0.4 %.2f ms (%.3fx)\n", "", dense_cudnn.ttft_ms,
                  r04_cudnn.ttft_ms, dense_cudnn.ttft_ms / r04_cudnn.ttft_ms);
    }
    const double ffn_ms = dense_ffn_ms(shape, L);
    auto row = [&](const char* variant, const llama3::PrefillResult& r) {
      // kept share of the pruned layers (index >= F), for the ideal-saving comparison
      int pruned_layers = 0;
      double kept_sum = 0.0;
      for (std::size_t l = 0; l < r.kept_per_layer.size(); ++l) {
        if (!paper.prunes_layer(static_cast<int>(l))) continue;
        ++pruned_layers;
        kept_sum += r.kept_fraction(l);
      }
      const double pruned_kept = pruned_layers > 0 ? kept_sum / pruned_layers : 1.0;
      char text[1024];
      std::snprintf(text, sizeof(text),
                    "{\"model\": \"llama3-8b-shape\", \"variant\": \"%s\", \"seq_len\": %d, \"ttft_ms\": %.3f, "
                    "\"mean_kept_fraction\": %.4f, \"speedup_vs_dense\": %.4f, \"pruner_workspace_bytes\": %zu, "
                    "\"model_device_bytes\": %zu, \"device_used_bytes\": %zu, \"ffn_ms_per_layer\": %.4f, "
                    "\"pruned_layers\": %d, \"pruned_kept_fraction\": %.4f}",
                    variant, L, r.ttft_ms, r.mean_kept_fraction(), dense.ttft_ms / r.ttft_ms, workspace, model_bytes,
                    in_use, ffn_ms, pruned_layers, pruned_kept);
      rows.push_back(text);
    };
    row("dense", dense);
    if (has_wgmma) row("dense_fa2_attention", dense_fa2);
    row("ftp_eta_0.9", eta);
    row("ftp_top_ratio_0.6", r06);
    row("ftp_top_ratio_0.4", r04);
    if (has_cudnn) {
      row("dense_cudnn_attention", dense_cudnn);
      // speedup_vs_dense of this row is against the wgmma dense row; the summary compares it with
      // dense_cudnn_attention instead.
      row("ftp_top_ratio_0.4_cudnn_attention", r04_cudnn);
    }
  }
  bench::write_json(json, "e2e", rows);
  return 0;
}
