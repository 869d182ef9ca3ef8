// LastQueriesAttention: the paper's importance score (Section 3.2.1).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "ftp/cuda_check.hpp"
#include "ftp/detail/smem_opt_in.hpp"
#include "ftp/kernels/last_queries_attention.cuh"
#include "ftp/kernels/lqa_key_scores_mma.cuh"
#include "ftp/kernels/selection.cuh"
#include "ftp/scorer/context.hpp"

namespace ftp {

/// score[j] = sum over query heads h and the last n = min(N, L) queries i of its sequence of
/// softmax_j(q_{h,i} . k_{g(h),j} / sqrt(d)), causal (key j <= query position), fp32 accumulation.
/// Exact softmax: the normalizer runs over all of the query's visible keys, reserved ones included.
///
/// Cost: two passes over the keys (row statistics, then key scores), 16-bit inputs on tensor
/// cores; one pass when the engine hands over its attention's row log-sum-exp
/// (AttentionView::lse). Extra memory: (T/256 + B) x Hq x N float pairs, B x Hq x N floats and
/// Hkv x T floats; never L x L or H x N x L.
struct LastQueriesAttention : ScorerBase {
  static std::size_t workspace_bytes(const WorkspaceShape& shape, const Config& config) {
    WorkspaceCarver carver;
    Buffers{}.layout(carver, shape, config);
    return carver.used();
  }

  /// The grid sizes of one planned batch, and the device they were planned on.
  struct Plan {
    int total_splits = 0;    // key splits of the row-statistics pass over the batch
    int total_tiles = 0;     // key tiles of the S-tile scores kernel
    int total_tiles128 = 0;  // key tiles of the MMA scores kernel
    int rows_capacity = 0;   // query rows of one group the register-resident pass 2 holds
    int num_sms = 0;
    int max_smem_optin = 0;
    int device = -1;
  };

  Plan plan(const ScorerPlanContext& ctx) const {
    const int B = ctx.layout.num_seqs();
    Plan plan;
    for (int b = 0; b < B; ++b) {
      const int length = ctx.layout.length(b);
      plan.total_splits += (length + kernels::lqa::kKeysPerSplit - 1) / kernels::lqa::kKeysPerSplit;
      plan.total_tiles += (length + kernels::lqa::kKeys - 1) / kernels::lqa::kKeys;
      plan.total_tiles128 += (length + kernels::lqa_mma::kTileKeys - 1) / kernels::lqa_mma::kTileKeys;
    }
    if (B == 0) return plan;
    // The register-resident pass 2 holds one group's G * n query rows in shared memory.
    const int group = ctx.shape.num_q_heads / ctx.shape.num_kv_heads;
    plan.rows_capacity = (group * std::min(ctx.config.last_queries(), ctx.layout.max_length()) + 15) / 16 * 16;
    FTP_CUDA_CHECK(cudaGetDevice(&plan.device));
    FTP_CUDA_CHECK(cudaDeviceGetAttribute(&plan.num_sms, cudaDevAttrMultiProcessorCount, plan.device));
    FTP_CUDA_CHECK(cudaDeviceGetAttribute(&plan.max_smem_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, plan.device));
    const Buffers buf = carve(ctx.workspace, ctx.shape, ctx.config);
    kernels::unit_offsets_kernel<<<1, 1, 0, ctx.stream>>>(ctx.batch.cu_seqlens, B, kernels::lqa::kKeysPerSplit,
                                                         buf.split_offsets);
    FTP_CUDA_CHECK_LAUNCH();
    kernels::unit_offsets_kernel<<<1, 1, 0, ctx.stream>>>(ctx.batch.cu_seqlens, B, kernels::lqa::kKeys,
                                                         buf.tile_offsets);
    FTP_CUDA_CHECK_LAUNCH();
    kernels::unit_offsets_kernel<<<1, 1, 0, ctx.stream>>>(ctx.batch.cu_seqlens, B, kernels::lqa_mma::kTileKeys,
                                                         buf.tile128_offsets);
    FTP_CUDA_CHECK_LAUNCH();
    return plan;
  }

  template <class T>
  void score(const ScoreContext<T>& ctx, const Plan& plan) const {
    switch (ctx.attention.head_dim) {
      case 64: return launch<T, 64>(ctx, plan);
      case 128: return launch<T, 128>(ctx, plan);
      case 256: return launch<T, 256>(ctx, plan);
      default:
        throw Error("attention.head_dim", detail::concat("argument 'attention.head_dim' = ", ctx.attention.head_dim,
                                                         " is invalid: expected 64, 128 or 256"));
    }
  }

 private:
  // This scorer's slices, laid out for the largest batch the pruner was built for.
  struct Buffers {
    int* split_offsets = nullptr;    // [B+1]
    int* tile_offsets = nullptr;     // [B+1]
    int* tile128_offsets = nullptr;  // [B+1]
    float2* partial = nullptr;     // [T/1024 + B, Hq, N]
    float* lse = nullptr;          // [B, Hq, N]
    float* head_scores = nullptr;  // [Hkv, T]

    void layout(WorkspaceCarver& carver, const WorkspaceShape& shape, const Config& config) {
      const std::size_t b = static_cast<std::size_t>(shape.max_seqs);
      const std::size_t rows = static_cast<std::size_t>(shape.num_q_heads) * config.last_queries();
      // Each sequence has ceil(L / split) splits: at most T / split + B in all.
      const std::size_t splits = static_cast<std::size_t>(shape.max_tokens) / kernels::lqa::kKeysPerSplit + b;
      split_offsets = carver.take<int>(b + 1, "last_queries_attention.split_offsets");
      tile_offsets = carver.take<int>(b + 1, "last_queries_attention.tile_offsets");
      tile128_offsets = carver.take<int>(b + 1, "last_queries_attention.tile128_offsets");
      partial = carver.take<float2>(splits * rows, "last_queries_attention.partial");
      lse = carver.take<float>(b * rows, "last_queries_attention.lse");
      head_scores = carver.take<float>(static_cast<std::size_t>(shape.num_kv_heads) * shape.max_tokens,
                                       "last_queries_attention.head_scores");
    }
  };

  static Buffers carve(void* workspace, const WorkspaceShape& shape, const Config& config) {
    WorkspaceCarver carver(workspace, workspace_bytes(shape, config));
    Buffers buf;
    buf.layout(carver, shape, config);
    return buf;
  }

  template <class T, int D>
  void launch(const ScoreContext<T>& ctx, const Plan& plan) const {
    const int B = ctx.layout.num_seqs();
    if (B == 0 || ctx.layout.num_tokens() == 0) return;
    smem_opt_in_.use_device(plan.device);
    const Buffers buf = carve(ctx.workspace, ctx.shape, ctx.config);
    const AttentionView<T>& a = ctx.attention;
    kernels::lqa::Params<T> p;
    p.q = a.q;
    p.q_row_stride = a.q_row_stride;
    p.k = a.k;
    p.k_row_stride = a.k_row_stride;
    p.num_q_heads = a.num_q_heads;
    p.num_kv_heads = a.num_kv_heads;
    p.last_queries = ctx.config.last_queries();
    p.scale = 1.0f / std::sqrt(static_cast<float>(D));
    p.cu_seqlens = ctx.batch.cu_seqlens;
    p.num_seqs = B;
    p.split_offsets = buf.split_offsets;
    p.tile_offsets = buf.tile_offsets;
    p.partial = buf.partial;
    p.lse = buf.lse;
    p.head_scores = buf.head_scores;
    p.scores = ctx.scores;
    // 16-byte loads need 16-byte aligned rows: base pointers and row strides (in bytes).
    auto aligned16 = [](const void* ptr, std::int64_t stride_elements) {
      return reinterpret_cast<std::uintptr_t>(ptr) % 16 == 0 && (stride_elements * sizeof(T)) % 16 == 0;
    };
    p.aligned = aligned16(a.q, a.q_row_stride) && aligned16(a.k, a.k_row_stride);

    p.tile128_offsets = buf.tile128_offsets;
    p.rows_capacity = plan.rows_capacity;

    // 1. row log-sum-exp of the last n queries: the engine's, or pass 1 over the keys
    const int stat_rows = B * a.num_q_heads * ctx.config.last_queries();
    const std::size_t smem = kernels::lqa::SharedTiles<T, D>::bytes();
    const std::size_t mma_smem = kernels::lqa_mma::smem_bytes<D>(plan.rows_capacity);
    const bool mma_pass = !std::is_same_v<T, float> && mma_smem <= static_cast<std::size_t>(plan.max_smem_optin);
    if (a.lse != nullptr && mma_pass) {
      // the MMA pass reads the engine's lse in place: no gather launch
      p.engine_lse = a.lse;
      p.engine_lse_token_stride = a.lse_token_stride;
      p.engine_lse_head_stride = a.lse_head_stride;
      p.engine_lse_to_natural = a.lse_base == LseBase::kLog2 ? 0.6931471805599453f : 1.0f;
    } else if (a.lse != nullptr) {
      const float to_natural = a.lse_base == LseBase::kLog2 ? 0.6931471805599453f : 1.0f;
      kernels::lqa_gather_lse_kernel<T><<<(stat_rows + 255) / 256, 256, 0, ctx.stream>>>(
          p, a.lse, a.lse_token_stride, a.lse_head_stride, to_natural);
      FTP_CUDA_CHECK_LAUNCH();
    } else {
      const int group = a.num_q_heads / a.num_kv_heads;
      const int row_chunks = (group * std::min(ctx.config.last_queries(), ctx.layout.max_length()) +
                              kernels::lqa::kRows - 1) / kernels::lqa::kRows;
      smem_opt_in_.ensure(kernels::lqa_row_stats_kernel<T, D>, smem);
      const dim3 stats_grid(static_cast<unsigned>(plan.total_splits), static_cast<unsigned>(a.num_kv_heads),
                            static_cast<unsigned>(row_chunks));
      kernels::lqa_row_stats_kernel<T, D><<<stats_grid, kernels::lqa::kThreads, smem, ctx.stream>>>(p);
      FTP_CUDA_CHECK_LAUNCH();
      kernels::lqa_combine_kernel<T><<<(stat_rows + 255) / 256, 256, 0, ctx.stream>>>(p);
      FTP_CUDA_CHECK_LAUNCH();
    }

    // 2. key scores per KV group, then summed over the groups in order
    const int T_ = ctx.layout.num_tokens();
    if constexpr (!std::is_same_v<T, float>) {
      if (mma_pass) {
        smem_opt_in_.ensure(kernels::lqa_key_scores_mma_kernel<T, D>, mma_smem);
        // Two CTAs per multiprocessor over all groups; each CTA walks its group's tiles with a stride.
        const int per_group = std::max(1, std::min(plan.total_tiles128, (2 * plan.num_sms + a.num_kv_heads - 1) / a.num_kv_heads));
        const dim3 grid(static_cast<unsigned>(per_group), static_cast<unsigned>(a.num_kv_heads));
        kernels::lqa_key_scores_mma_kernel<T, D><<<grid, kernels::lqa_mma::kThreads, mma_smem, ctx.stream>>>(p, T_);
        FTP_CUDA_CHECK_LAUNCH();
        kernels::lqa_sum_heads_kernel<T><<<(T_ + 255) / 256, 256, 0, ctx.stream>>>(p, T_);
        FTP_CUDA_CHECK_LAUNCH();
        return;
      }
    }
    // fp32 inputs, or more query rows per group than shared memory holds: the S-tile kernel
    smem_opt_in_.ensure(kernels::lqa_key_scores_kernel<T, D>, smem);
    const dim3 scores_grid(static_cast<unsigned>(plan.total_tiles), static_cast<unsigned>(a.num_kv_heads));
    kernels::lqa_key_scores_kernel<T, D><<<scores_grid, kernels::lqa::kThreads, smem, ctx.stream>>>(p, T_);
    FTP_CUDA_CHECK_LAUNCH();
    kernels::lqa_sum_heads_kernel<T><<<(T_ + 255) / 256, 256, 0, ctx.stream>>>(p, T_);
    FTP_CUDA_CHECK_LAUNCH();
  }

  // Not batch state: which kernels were already allowed their dynamic shared memory on the device
  // last scored on, so that the driver call happens on the first pruned layer only.
  mutable detail::SmemOptIn smem_opt_in_;
};

}  // namespace ftp
