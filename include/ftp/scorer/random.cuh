// RandomScorer: seeded uniform scores, the paper's random-selection ablation (Table 3).
#pragma once

#include <cstdint>

#include "ftp/cuda_check.hpp"
#include "ftp/detail/random_score.hpp"
#include "ftp/scorer/context.hpp"

namespace ftp {

namespace kernels {

/// scores[t] = random_score(seed, layer, b, t - cu_seqlens[b]). One thread per token.
static __global__ void random_scores_kernel(std::uint64_t seed, int layer, DeviceBatch batch, float* scores) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= batch.num_tokens) return;
  const int b = batch.seq_of_token[t];
  scores[t] = detail::random_score(seed, layer, b, t - batch.cu_seqlens[b]);
}

}  // namespace kernels

/// Scores tokens by a seeded hash of (seed, layer, sequence, position): reproducible, needs no
/// attention inputs (AttentionView may be empty).
struct RandomScorer : ScorerBase {
  static constexpr bool kNeedsAttention = false;

  explicit RandomScorer(std::uint64_t random_seed = 0) : seed(random_seed) {}

  template <class T>
  void score(const ScoreContext<T>& ctx) const {
    const int T_ = ctx.batch.num_tokens;
    if (T_ == 0) return;
    kernels::random_scores_kernel<<<(T_ + 255) / 256, 256, 0, ctx.stream>>>(seed, ctx.layer, ctx.batch, ctx.scores);
    FTP_CUDA_CHECK_LAUNCH();
  }

  std::uint64_t seed;
};

}  // namespace ftp
