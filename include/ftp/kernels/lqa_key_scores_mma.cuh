// Pass 2 of the LastQueriesAttention scorer for 16-bit inputs, register-resident: the key scores
// of one KV head group without an S tile in shared memory.
//
// Shapes (legend: T packed tokens, L one sequence's length, G = Hq / Hkv, n = min(N, L), d):
//   rows of a group:  R = G * n query rows, row r = query head g*G + r / n at position L - n + r % n
//   Q of the group:   [R_pad, d] bf16/fp16 in shared memory for the whole kernel (R_pad = R rounded
//                     up to 16, padding rows zero), with the rows' log2-domain lse and position
//   K tile:           [128, d] per step, 16 keys per warp held as mma B fragments in registers
//   out:              head_scores[g, t] = sum over rows r with key t visible of
//                     exp2(q_r . k_t * log2(e)/sqrt(d) - lse2_r)
// One CTA (8 warps) walks the 128-key tiles of its group with a grid stride; Q is reloaded only
// when the tile's sequence changes. The next K tile is prefetched into registers while the current
// one is multiplied. S = Q K^T runs on mma.sync m16n8k16 (fp32 accumulators); each thread keeps the
// column sums of its accumulator columns and the warp reduces them over its 8 row lanes at the end,
// always in the same order: scores are bitwise reproducible.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "ftp/kernels/last_queries_attention.cuh"
#include "ftp/kernels/mma_sm80.cuh"

namespace ftp::kernels {

namespace lqa_mma {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kKeysPerWarp = 16;                    // two n8 MMA tiles
constexpr int kTileKeys = kWarps * kKeysPerWarp;    // keys per CTA step
constexpr float kLog2e = 1.4426950408889634f;

/// Shared memory of one CTA holding `rows_pad` query rows of head size D.
template <int D>
constexpr std::size_t smem_bytes(int rows_pad) {
  return (static_cast<std::size_t>(rows_pad) + kTileKeys) * D * 2 + static_cast<std::size_t>(rows_pad) * 8;
}

using sm80::ldmatrix_x4;
using sm80::mma_16816;
using sm80::swizzle;

/// One 16-byte chunk of a 16-bit row: a single vector load when rows are 16-byte aligned, else 8
/// element loads. Rows past the valid range give zeros.
template <class T>
__device__ __forceinline__ uint4 load_chunk(const T* row, int chunk, bool valid, bool aligned) {
  uint4 v = make_uint4(0, 0, 0, 0);
  if (!valid) return v;
  if (aligned) return *reinterpret_cast<const uint4*>(row + chunk * 8);
  T e[8];
#pragma unroll
  for (int i = 0; i < 8; ++i) e[i] = row[chunk * 8 + i];
  static_assert(sizeof(e) == sizeof(uint4), "8 x 16-bit = 16 bytes");
  memcpy(&v, e, sizeof(v));
  return v;
}

}  // namespace lqa_mma

/// Pass 2 (key scores), register-resident. Grid: (CTAs per group, Hkv); block: 256 threads;
/// dynamic shared memory lqa_mma::smem_bytes<D>(p.rows_capacity). Tiles of 128 keys, numbered per
/// sequence by p.tile128_offsets, are walked with stride gridDim.x.
/// Row lse from p.lse (pass 1's), or the engine's read in place (p.engine_lse), natural base.
template <class T, int D>
__global__ void __launch_bounds__(lqa_mma::kThreads) lqa_key_scores_mma_kernel(const lqa::Params<T> p,
                                                                                int num_tokens) {
  using namespace lqa_mma;
  static_assert(!std::is_same_v<T, float>, "16-bit inputs only");
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  extern __shared__ __align__(16) unsigned char smem_raw[];
  T* q_s = reinterpret_cast<T*>(smem_raw);
  T* k_s = q_s + static_cast<std::size_t>(p.rows_capacity) * D;
  float* row_lse2 = reinterpret_cast<float*>(k_s + kTileKeys * D);
  int* row_pos = reinterpret_cast<int*>(row_lse2 + p.rows_capacity);

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int g4 = lane / 4, t4 = lane % 4;
  const int group = p.num_q_heads / p.num_kv_heads;
  const int kv = blockIdx.y;
  const int total_tiles = p.tile128_offsets[p.num_seqs];

  int loaded_seq = -1;  // sequence whose Q rows are in q_s
  int rows = 0, rows_pad = 0, start = 0, length = 0, n = 0;
  uint4 next[kTileKeys * kChunks / kThreads];  // the prefetched K tile

  // K tile `tile` (global index) of its sequence into registers; zeros past the sequence end.
  auto fetch_tile = [&](int tile) {
    const int b = lqa::find_segment(p.tile128_offsets, p.num_seqs, tile);
    const int seq_start = p.cu_seqlens[b];
    const int seq_len = p.cu_seqlens[b + 1] - seq_start;
    const int key0 = (tile - p.tile128_offsets[b]) * kTileKeys;
#pragma unroll
    for (int i = 0; i < kTileKeys * kChunks / kThreads; ++i) {
      const int idx = threadIdx.x + i * kThreads;
      const int r = idx / kChunks, c = idx % kChunks;
      const bool valid = key0 + r < seq_len;
      next[i] = load_chunk(lqa::key_row(p, seq_start + (valid ? key0 + r : 0), kv, D), c, valid, p.aligned);
    }
  };
  auto store_tile = [&] {
#pragma unroll
    for (int i = 0; i < kTileKeys * kChunks / kThreads; ++i) {
      const int idx = threadIdx.x + i * kThreads;
      *reinterpret_cast<uint4*>(k_s + swizzle<D>(idx / kChunks, idx % kChunks)) = next[i];
    }
  };

  int tile = blockIdx.x;
  if (tile >= total_tiles) return;
  fetch_tile(tile);
  for (; tile < total_tiles; tile += gridDim.x) {
    const int b = lqa::find_segment(p.tile128_offsets, p.num_seqs, tile);
    __syncthreads();  // every warp is done with the previous tile's k_s (and q_s, if it changes)
    store_tile();
    if (b != loaded_seq) {  // uniform over the CTA
      loaded_seq = b;
      start = p.cu_seqlens[b];
      length = p.cu_seqlens[b + 1] - start;
      n = min(p.last_queries, length);
      rows = group * n;
      rows_pad = (rows + 15) / 16 * 16;
      for (int idx = threadIdx.x; idx < rows_pad * kChunks; idx += kThreads) {
        const int r = idx / kChunks, c = idx % kChunks;
        const bool valid = r < rows;
        const T* src = lqa::query_row(p, start, length, n, kv, group, valid ? r : 0, D);
        *reinterpret_cast<uint4*>(q_s + swizzle<D>(r, c)) = lqa_mma::load_chunk(src, c, valid, p.aligned);
      }
      for (int r = threadIdx.x; r < rows_pad; r += kThreads) {
        float lse2 = INFINITY;  // padding rows: exp2(x - inf) = 0
        int pos = -1;
        if (r < rows) {
          const int head = kv * group + r / n, i = r % n;
          pos = length - n + i;
          if (p.engine_lse != nullptr) {  // the engine's lse, read in place (no gather launch)
            const std::int64_t token = start + pos;
            lse2 = p.engine_lse[token * p.engine_lse_token_stride + head * p.engine_lse_head_stride] *
                   p.engine_lse_to_natural * kLog2e;
          } else {
            lse2 = p.lse[(static_cast<std::int64_t>(b) * p.num_q_heads + head) * p.last_queries + i] * kLog2e;
          }
        }
        row_lse2[r] = lse2;
        row_pos[r] = pos;
      }
    }
    __syncthreads();  // k_s, q_s, row_lse2, row_pos are complete
    const int key0 = (tile - p.tile128_offsets[b]) * kTileKeys;
    if (tile + static_cast<int>(gridDim.x) < total_tiles) fetch_tile(tile + gridDim.x);  // lands during the MMAs

    // This warp's 16 keys as B fragments for every 16-wide k step: kb[ks][0..1] keys 0-7,
    // kb[ks][2..3] keys 8-15 of the warp.
    std::uint32_t kb[D / 16][4];
    {
      const int mi = lane >> 3;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        ldmatrix_x4(kb[ks], k_s + swizzle<D>(warp * kKeysPerWarp + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1)));
      }
    }
    const int warp_key0 = key0 + warp * kKeysPerWarp;
    // Keys below the first scored query's position are visible to every row (and exist).
    const bool all_visible = warp_key0 + kKeysPerWarp - 1 <= length - n;
    const float scale_log2 = p.scale * kLog2e;
    float colsum[2][2] = {{0.f, 0.f}, {0.f, 0.f}};  // [n tile][column 2t, 2t+1]
    if (warp_key0 < length) {
      for (int m0 = 0; m0 < rows_pad; m0 += 16) {
        float acc[2][4] = {{0.f, 0.f, 0.f, 0.f}, {0.f, 0.f, 0.f, 0.f}};
#pragma unroll
        for (int ks = 0; ks < D / 16; ++ks) {
          std::uint32_t a[4];
          ldmatrix_x4(a, q_s + swizzle<D>(m0 + (lane & 15), ks * 2 + (lane >> 4)));
          mma_16816<T>(acc[0], a, kb[ks][0], kb[ks][1]);
          mma_16816<T>(acc[1], a, kb[ks][2], kb[ks][3]);
        }
        const float lse_lo = row_lse2[m0 + g4], lse_hi = row_lse2[m0 + g4 + 8];
        if (all_visible) {
#pragma unroll
          for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) colsum[nt][e & 1] += exp2f(fmaf(acc[nt][e], scale_log2, -(e < 2 ? lse_lo : lse_hi)));
          }
        } else {
          const int pos_lo = row_pos[m0 + g4], pos_hi = row_pos[m0 + g4 + 8];
#pragma unroll
          for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
              const int key = warp_key0 + nt * 8 + 2 * t4 + (e & 1);
              const bool visible = key <= (e < 2 ? pos_lo : pos_hi);
              colsum[nt][e & 1] += visible ? exp2f(fmaf(acc[nt][e], scale_log2, -(e < 2 ? lse_lo : lse_hi))) : 0.f;
            }
          }
        }
      }
    }
    // Sum over the 8 row lanes (same t4) in a fixed butterfly order; lanes 0..3 hold the results.
#pragma unroll
    for (int nt = 0; nt < 2; ++nt) {
#pragma unroll
      for (int c = 0; c < 2; ++c) {
        float v = colsum[nt][c];
        v += __shfl_xor_sync(0xffffffffu, v, 4);
        v += __shfl_xor_sync(0xffffffffu, v, 8);
        v += __shfl_xor_sync(0xffffffffu, v, 16);
        const int key = warp_key0 + nt * 8 + 2 * t4 + c;
        if (g4 == 0 && key < length) p.head_scores[static_cast<std::int64_t>(kv) * num_tokens + start + key] = v;
      }
    }
  }
}

}  // namespace ftp::kernels
