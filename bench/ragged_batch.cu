// One pruned layer's FFN block over a ragged batch, as an engine that prefills several prompts at
// once hands it to ftp::Pruner: 8 prompts of 2k-16k tokens (62,464 in all), Llama3-8B shape
// (C=4096, I=14336, Hq=32, Hkv=8, d=128, bf16, random weights and activations generated on the GPU).
// Per layer, median of CUDA-event timings after warm-up:
//   dense          KeepAll: the FFN over every token of the batch
//   eta0.9         LastQueriesAttention + CumulativeEta(0.9), the paper's Llama3 setting (random
//                  q/k give nearly uniform attention, so it keeps most tokens: the cost of the
//                  machinery on a batch)
//   keep0.4        LastQueriesAttention + TopRatio(0.4), standing in for a trained model's
//                  attention concentration
//   keep0.4 split  the same, one plan() + run() per prompt, summed: what batching saves
//   overhead       scoring + selection alone (NoFfn) of eta0.9 on the batch, and the sum over the
//                  prompts one by one
// plus the ideal FFN time at the kept fraction (dense x kept) for each pruned variant.
//
// Usage: ftp_bench_ragged_batch [--json out.json] [--lengths 2048,16384,...]
#include <algorithm>
#include <cstdio>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"

namespace {

using bf16 = __nv_bfloat16;
constexpr int kC = 4096, kI = 14336, kHq = 32, kHkv = 8, kD = 128;
constexpr int kPrunedLayer = 10;  // >= F of Config::llama3()

struct Tensors {
  bf16 *q, *k, *residual, *norm, *gate_up, *down;
};

template <class Pruner, class Weights>
double time_batch(Pruner& pruner, const std::vector<int>& cu, const Tensors& x, const Weights& weights,
                  cudaStream_t stream, double* kept_fraction) {
  const int B = static_cast<int>(cu.size()) - 1;
  pruner.plan(cu.data(), B, cu[B], stream);
  const ftp::AttentionView<bf16> attention{x.q, kHq * kD, x.k, kHkv * kD, kHq, kHkv, kD};
  const double ms = bench::median_ms([&] { pruner.run(kPrunedLayer, attention, {x.residual, kC, kC}, weights, stream); },
                                     stream, 2, 7);
  if (kept_fraction != nullptr) *kept_fraction = pruner.last_report().kept_fraction();
  return ms;
}

/// The same layer, one prompt at a time (each its own plan and run on its rows), summed.
template <class Pruner, class Weights>
double time_split(Pruner& pruner, const std::vector<int>& cu, const Tensors& x, const Weights& weights,
                  cudaStream_t stream) {
  double total = 0;
  for (std::size_t b = 0; b + 1 < cu.size(); ++b) {
    const int L = cu[b + 1] - cu[b];
    const std::vector<int> one{0, L};
    Tensors part = x;
    part.q += static_cast<std::size_t>(cu[b]) * kHq * kD;
    part.k += static_cast<std::size_t>(cu[b]) * kHkv * kD;
    part.residual += static_cast<std::size_t>(cu[b]) * kC;
    total += time_batch(pruner, one, part, weights, stream, nullptr);
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  std::vector<int> lengths;
  {
    std::stringstream list(bench::arg_value(argc, argv, "--lengths", "2048,16384,4096,12288,3072,8192,6144,10240"));
    for (std::string item; std::getline(list, item, ',');) {
      if (!item.empty()) lengths.push_back(std::stoi(item));
    }
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_ragged_batch needs a CUDA GPU\n");
    return 2;
  }
  const int B = static_cast<int>(lengths.size());
  std::vector<int> cu(B + 1, 0);
  for (int b = 0; b < B; ++b) cu[b + 1] = cu[b] + lengths[b];
  const int T = cu[B];
  const std::size_t t = static_cast<std::size_t>(T);
  Tensors x{bench::random_bf16(t * kHq * kD, 1, -2.0f, 2.0f),
            bench::random_bf16(t * kHkv * kD, 2, -2.0f, 2.0f),
            bench::random_bf16(t * kC, 3, -1.0f, 1.0f),
            bench::random_bf16(kC, 4, 0.9f, 1.1f),
            bench::random_bf16(static_cast<std::size_t>(2) * kI * kC, 5, -0.02f, 0.02f),
            bench::random_bf16(static_cast<std::size_t>(kC) * kI, 6, -0.02f, 0.02f)};
  cudaStream_t stream;
  bench::check(cudaStreamCreate(&stream), "stream");

  const ftp::Config config = ftp::Config::llama3();
  const ftp::WorkspaceShape shape{T, B, kC, kI, kHq, kHkv, kD};
  ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::KeepAll> dense(config, shape);
  ftp::Pruner<bf16> eta(config, shape);  // LastQueriesAttention + CumulativeEta (config.eta)
  ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::TopRatio> keep04(config, shape, {}, ftp::TopRatio{0.4});
  ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::CumulativeEta, ftp::NoFfn> overhead(config, shape);

  const ftp::CublasSwiGLU::Weights<bf16> ffn{x.norm, x.gate_up, nullptr, nullptr, x.down, 1e-5f};
  const ftp::NoFfn::Weights<bf16> none{};
  double kept_eta = 1, kept_04 = 1, kept_dense = 1;
  const double dense_ms = time_batch(dense, cu, x, ffn, stream, &kept_dense);
  const double eta_ms = time_batch(eta, cu, x, ffn, stream, &kept_eta);
  const double keep04_ms = time_batch(keep04, cu, x, ffn, stream, &kept_04);
  const double keep04_split_ms = time_split(keep04, cu, x, ffn, stream);
  const double overhead_ms = time_batch(overhead, cu, x, none, stream, nullptr);
  const double overhead_split_ms = time_split(overhead, cu, x, none, stream);

  std::string lens;
  for (int L : lengths) lens += (lens.empty() ? "" : ",") + std::to_string(L);
  std::printf("ragged batch of %d prompts (%s), %d tokens, Llama3-8B shape, one pruned layer (ms)\n", B, lens.c_str(), T);
  std::printf("%-22s %10s %8s %10s %8s\n", "variant", "ms", "kept", "ideal_ms", "realized");
  auto line = [&](const char* name, double ms, double kept) {
    const double ideal = dense_ms * kept;
    const double realized = kept < 1 ? (dense_ms - ms) / (dense_ms - ideal) : 0.0;
    std::printf("%-22s %10.3f %8.3f %10.3f %7.1f%%\n", name, ms, kept, ideal, 100 * realized);
  };
  line("dense", dense_ms, kept_dense);
  line("eta0.9", eta_ms, kept_eta);
  line("keep0.4", keep04_ms, kept_04);
  line("keep0.4 one by one", keep04_split_ms, kept_04);
  std::printf("scoring + selection: batched %.3f ms, one prompt at a time %.3f ms (sum)\n", overhead_ms,
              overhead_split_ms);

  std::vector<std::string> rows;
  char row[1024];
  std::snprintf(row, sizeof(row),
                "{\"shape\": \"llama3-8b\", \"num_seqs\": %d, \"lengths\": [%s], \"num_tokens\": %d, "
                "\"dense_ms\": %.4f, \"eta_ms\": %.4f, \"eta_kept_fraction\": %.4f, \"keep04_ms\": %.4f, "
                "\"keep04_kept_fraction\": %.4f, \"keep04_one_by_one_ms\": %.4f, \"score_select_ms\": %.4f, "
                "\"score_select_one_by_one_ms\": %.4f}",
                B, lens.c_str(), T, dense_ms, eta_ms, kept_eta, keep04_ms, kept_04, keep04_split_ms, overhead_ms,
                overhead_split_ms);
  rows.push_back(row);
  bench::write_json(json, "ragged_batch", rows);
  for (bf16* p : {x.q, x.k, x.residual, x.norm, x.gate_up, x.down}) cudaFree(p);
  cudaStreamDestroy(stream);
  return 0;
}
