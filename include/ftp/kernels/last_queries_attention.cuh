// Kernels of the LastQueriesAttention scorer: the softmax attention of the last n = min(N, L)
// queries of every sequence to all of that sequence's keys (causal), summed over all Hq query heads
// and those n queries, one fp32 score per token. Nothing of size L x L or H x N x L is stored.
//
// Two passes over the keys, both built on one S-tile: S[r][j] = q_r . k_j for 64 query rows r of
// one KV head group and 64 keys j, accumulated in fp32.
//   1. row statistics: per (sequence, query head, query) the log-sum-exp over its visible keys,
//      split over key ranges of kKeysPerSplit (partials [splits, Hq, N] of (max, sum)), then
//      combined in split order (deterministic).
//   2. key scores: per 64-key tile, score[j] = sum over heads and queries of exp(S*scale - lse),
//      key j visible to a query at position p iff j <= p. Warps' partial sums are added in a fixed
//      order: no atomics, so scores are bitwise reproducible.
// 16-bit inputs use tensor cores (WMMA bf16/fp16 -> fp32); fp32 inputs use CUDA cores so that fp32
// scores stay within 1e-5 of a double-precision reference.
#pragma once

#include <mma.h>

#include <cfloat>
#include <cstdint>
#include <type_traits>

#include "ftp/types.cuh"

namespace ftp::kernels {

namespace lqa {

constexpr int kThreads = 256;       // 8 warps
constexpr int kRows = 64;           // query rows per S-tile
constexpr int kKeys = 64;           // keys per S-tile
constexpr int kKeysPerSplit = 256;  // key range of one row-statistics block
constexpr int kScorePitch = kKeys + 4;

template <class T>
struct Params {
  const T* q;
  std::int64_t q_row_stride;
  const T* k;
  std::int64_t k_row_stride;
  int num_q_heads;   // Hq
  int num_kv_heads;  // Hkv
  int last_queries;  // N (per sequence n = min(N, L))
  bool aligned;      // q, k and their row strides allow 16-byte loads
  float scale;       // 1 / sqrt(d)
  const int* cu_seqlens;     // [B+1]
  int num_seqs;              // B
  const int* split_offsets;  // [B+1] prefix count of key splits per sequence
  const int* tile_offsets;   // [B+1] prefix count of 64-key tiles per sequence
  float2* partial;           // [total splits, Hq, N]: (running max, running sum) of logits*scale
  float* lse;                // [B, Hq, N]
  float* head_scores;        // [Hkv, T]: pass-2 partial scores of each KV head group
  float* scores;             // [T]
  // The register-resident pass 2 (lqa_key_scores_mma.cuh) only:
  const int* tile128_offsets = nullptr;  // [B+1] prefix count of 128-key tiles per sequence
  int rows_capacity = 0;                 // query rows of one group its shared memory holds (multiple of 16)
  // The engine's own row lse (AttentionView::lse), read in place instead of p.lse when not null
  const float* engine_lse = nullptr;
  std::int64_t engine_lse_token_stride = 0;
  std::int64_t engine_lse_head_stride = 0;
  float engine_lse_to_natural = 1.0f;  // ln 2 for a base-2 lse
};

/// Entry idx of the [B, Hq, N] row statistics (partial, lse): sequence b, query head h and query i,
/// the token at position L - n + i of the sequence, n = min(N, L). `used` is false for an idx past
/// the array and for i >= n (a sequence shorter than N).
struct StatRow {
  int b, h, i;
  int start, length;  // the sequence's first packed token and L
  bool used;
};
template <class T>
__device__ inline StatRow stat_row(const Params<T>& p, int idx) {
  StatRow r{};
  const int per_seq = p.num_q_heads * p.last_queries;
  if (idx >= p.num_seqs * per_seq) return r;
  r.b = idx / per_seq;
  r.h = (idx % per_seq) / p.last_queries;
  r.i = idx % p.last_queries;
  r.start = p.cu_seqlens[r.b];
  r.length = p.cu_seqlens[r.b + 1] - r.start;
  r.used = r.i < min(p.last_queries, r.length);
  return r;
}

/// Index b with offsets[b] <= x < offsets[b+1] (offsets non-decreasing, offsets[0] = 0).
__device__ inline int find_segment(const int* offsets, int count, int x) {
  int lo = 0, hi = count;  // answer in [lo, hi)
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (offsets[mid] <= x) lo = mid; else hi = mid;
  }
  return lo;
}

// Shared-memory element type and pitch of the Q and K tiles: 16-bit types stay 16-bit for WMMA
// (pitch d+8 keeps 16-byte alignment and spreads rows over banks); fp32 pitch d+4 lets float4 reads
// of 8 consecutive rows hit distinct banks.
template <class T>
struct TileLayout {
  static constexpr bool kTensorCores = !std::is_same_v<T, float>;
  using Smem = std::conditional_t<kTensorCores, T, float>;
  static constexpr int pad = kTensorCores ? 8 : 4;
};

template <class T, int D>
struct SharedTiles {
  using Smem = typename TileLayout<T>::Smem;
  static constexpr int kPitch = D + TileLayout<T>::pad;
  static constexpr std::size_t bytes() {
    return 2 * sizeof(Smem) * kRows * kPitch + sizeof(float) * kRows * kScorePitch + sizeof(float) * kRows;
  }

  /// Where the tiles lie in the dynamic shared memory, in this order: Q rows, K rows, the S tile and
  /// the rows' lse (pass 2 only).
  struct Views {
    Smem* q;
    Smem* k;
    float* s;
    float* row_lse;
  };
  static __device__ Views carve(unsigned char* smem) {
    Views v;
    v.q = reinterpret_cast<Smem*>(smem);
    v.k = v.q + kRows * kPitch;
    v.s = reinterpret_cast<float*>(v.k + kRows * kPitch);
    v.row_lse = v.s + kRows * kScorePitch;
    return v;
  }
};

// Copies `rows` rows of d elements into a shared tile, zero-filling rows past `valid`.
// Row r is read from row_address(r); loads are coalesced along d. 16-bit rows whose addresses are
// 16-byte aligned (checked by the launcher: `aligned`) move 8 elements per load.
template <class T, int D, class RowAddress>
__device__ inline void load_tile(typename TileLayout<T>::Smem* tile, int valid, RowAddress row_address,
                                 bool aligned) {
  using Smem = typename TileLayout<T>::Smem;
  constexpr int kPitch = SharedTiles<T, D>::kPitch;
  if constexpr (TileLayout<T>::kTensorCores) {
    if (aligned) {
      constexpr int kVectors = D / 8;  // 8 x 16-bit = 16 bytes
      for (int idx = threadIdx.x; idx < kRows * kVectors; idx += kThreads) {
        const int r = idx / kVectors, c = (idx % kVectors) * 8;
        uint4 value = make_uint4(0, 0, 0, 0);
        if (r < valid) value = *reinterpret_cast<const uint4*>(row_address(r) + c);
        *reinterpret_cast<uint4*>(tile + r * kPitch + c) = value;
      }
      return;
    }
  }
  for (int idx = threadIdx.x; idx < kRows * D; idx += kThreads) {
    const int r = idx / D, c = idx % D;
    Smem value{};
    if (r < valid) {
      const T x = row_address(r)[c];
      if constexpr (std::is_same_v<Smem, float>) value = detail::to_float(x); else value = x;
    }
    tile[r * kPitch + c] = value;
  }
}

// S[r][j] = sum_c Q[r][c] * K[j][c] for the 64 x 64 tile, fp32 result in shared memory.
template <class T, int D>
__device__ inline void compute_s_tile(const typename TileLayout<T>::Smem* qs, const typename TileLayout<T>::Smem* ks,
                                      float* s) {
  constexpr int kPitch = SharedTiles<T, D>::kPitch;
  if constexpr (TileLayout<T>::kTensorCores) {
    namespace wmma = nvcuda::wmma;
    const int warp = threadIdx.x / 32;
    const int row0 = (warp / 2) * 16;  // 4 row blocks x 2 key halves = 8 warps
    const int key0 = (warp % 2) * 32;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc0, acc1;
    wmma::fill_fragment(acc0, 0.0f);
    wmma::fill_fragment(acc1, 0.0f);
    for (int c = 0; c < D; c += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> a;
      wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> b0, b1;  // K rows = columns of K^T
      wmma::load_matrix_sync(a, qs + row0 * kPitch + c, kPitch);
      wmma::load_matrix_sync(b0, ks + key0 * kPitch + c, kPitch);
      wmma::load_matrix_sync(b1, ks + (key0 + 16) * kPitch + c, kPitch);
      wmma::mma_sync(acc0, a, b0, acc0);
      wmma::mma_sync(acc1, a, b1, acc1);
    }
    wmma::store_matrix_sync(s + row0 * kScorePitch + key0, acc0, kScorePitch, wmma::mem_row_major);
    wmma::store_matrix_sync(s + row0 * kScorePitch + key0 + 16, acc1, kScorePitch, wmma::mem_row_major);
  } else {
    // 16 x 16 threads, each a 4 x 4 block: rows ty*4 + i, keys tx + 16*j.
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    float acc[4][4] = {};
    for (int c = 0; c < D; c += 4) {
      float4 qv[4], kv[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) qv[i] = *reinterpret_cast<const float4*>(qs + (ty * 4 + i) * kPitch + c);
#pragma unroll
      for (int j = 0; j < 4; ++j) kv[j] = *reinterpret_cast<const float4*>(ks + (tx + 16 * j) * kPitch + c);
#pragma unroll
      for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          acc[i][j] = fmaf(qv[i].x, kv[j].x, acc[i][j]);
          acc[i][j] = fmaf(qv[i].y, kv[j].y, acc[i][j]);
          acc[i][j] = fmaf(qv[i].z, kv[j].z, acc[i][j]);
          acc[i][j] = fmaf(qv[i].w, kv[j].w, acc[i][j]);
        }
      }
    }
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
      for (int j = 0; j < 4; ++j) s[(ty * 4 + i) * kScorePitch + tx + 16 * j] = acc[i][j];
    }
  }
}

// Address of query row `row` of KV group g in a sequence starting at `start` with n scored
// queries: query head g*G + row / n at position L - n + row % n.
template <class T>
__device__ inline const T* query_row(const Params<T>& p, int start, int length, int n, int g, int group, int row,
                                     int head_dim) {
  const int head = g * group + row / n;
  const int token = start + length - n + row % n;
  return p.q + static_cast<std::int64_t>(token) * p.q_row_stride + static_cast<std::int64_t>(head) * head_dim;
}

// Address of the key of packed token `token` in KV head g.
template <class T>
__device__ inline const T* key_row(const Params<T>& p, int token, int g, int head_dim) {
  return p.k + static_cast<std::int64_t>(token) * p.k_row_stride + static_cast<std::int64_t>(g) * head_dim;
}

}  // namespace lqa

/// Pass 1 (row statistics). Grid: (total key splits, Hkv, ceil(G*N / 64)); block: 256 threads.
/// Writes partial[(split * Hq + h) * N + i] = (max, sum of exp(x - max)) over the split's keys
/// visible to query i of head h, where x = q.k * scale; (-inf, 0) when none is visible.
template <class T, int D>
__global__ void __launch_bounds__(lqa::kThreads) lqa_row_stats_kernel(const lqa::Params<T> p) {
  using namespace lqa;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const auto [qs, ks, s, unused_row_lse] = SharedTiles<T, D>::carve(smem_raw);

  const int split = blockIdx.x;
  if (split >= p.split_offsets[p.num_seqs]) return;
  const int b = find_segment(p.split_offsets, p.num_seqs, split);
  const int start = p.cu_seqlens[b];
  const int length = p.cu_seqlens[b + 1] - start;
  const int n = min(p.last_queries, length);
  const int group = p.num_q_heads / p.num_kv_heads;
  const int g = blockIdx.y;
  const int row_base = blockIdx.z * kRows;
  const int rows = min(kRows, group * n - row_base);
  if (rows <= 0) return;
  const int key_begin = (split - p.split_offsets[b]) * kKeysPerSplit;
  const int key_end = min(length, key_begin + kKeysPerSplit);

  load_tile<T, D>(qs, rows, [&](int r) { return query_row(p, start, length, n, g, group, row_base + r, D); },
                  p.aligned);

  // Four threads per row, each over 16 keys of the tile; state lives in the four threads alike.
  const int my_row = threadIdx.x / 4;
  const int quarter = threadIdx.x % 4;
  const int my_pos = length - n + (row_base + my_row) % n;  // query position within the sequence
  float run_max = -INFINITY, run_sum = 0.0f;

  for (int tile = key_begin; tile < key_end; tile += kKeys) {
    const int valid = min(kKeys, key_end - tile);
    __syncthreads();  // previous tile's readers are done with ks and s
    load_tile<T, D>(ks, valid, [&](int r) { return key_row(p, start + tile + r, g, D); }, p.aligned);
    __syncthreads();
    compute_s_tile<T, D>(qs, ks, s);
    __syncthreads();
    float x[16];
    float tile_max = -INFINITY;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const int key = quarter * 16 + j;
      const bool visible = key < valid && tile + key <= my_pos;
      x[j] = visible ? s[my_row * kScorePitch + key] * p.scale : -INFINITY;
      tile_max = fmaxf(tile_max, x[j]);
    }
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 1));
    tile_max = fmaxf(tile_max, __shfl_xor_sync(0xffffffffu, tile_max, 2));
    const float new_max = fmaxf(run_max, tile_max);
    if (new_max != -INFINITY) {
      float tile_sum = 0.0f;
#pragma unroll
      for (int j = 0; j < 16; ++j) tile_sum += expf(x[j] - new_max);
      tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 1);
      tile_sum += __shfl_xor_sync(0xffffffffu, tile_sum, 2);
      run_sum = run_sum * expf(run_max - new_max) + tile_sum;
      run_max = new_max;
    }
  }
  if (quarter == 0 && my_row < rows) {
    const int row = row_base + my_row;
    const int head = g * group + row / n;
    p.partial[(static_cast<std::int64_t>(split) * p.num_q_heads + head) * p.last_queries + row % n] =
        make_float2(run_max, run_sum);
  }
}

/// Combines the split partials of every (sequence, head, query) in split order into
/// lse[(b * Hq + h) * N + i] = max + log(sum). One thread per (b, h, i).
template <class T>
__global__ void lqa_combine_kernel(const lqa::Params<T> p) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  const lqa::StatRow row = lqa::stat_row(p, idx);
  if (!row.used) return;
  float m = -INFINITY, l = 0.0f;
  for (int split = p.split_offsets[row.b]; split < p.split_offsets[row.b + 1]; ++split) {
    const float2 part =
        p.partial[(static_cast<std::int64_t>(split) * p.num_q_heads + row.h) * p.last_queries + row.i];
    if (part.x == -INFINITY) continue;
    const float new_max = fmaxf(m, part.x);
    l = l * expf(m - new_max) + part.y * expf(part.x - new_max);
    m = new_max;
  }
  p.lse[idx] = m + logf(l);  // every query sees at least its own key, so l >= 1
}

/// Instead of pass 1: lse[(b * Hq + h) * N + i] = the engine's row lse of query i of head h (the
/// token at position L - n + i), taken to the natural base. One thread per (b, h, i).
template <class T>
__global__ void lqa_gather_lse_kernel(const lqa::Params<T> p, const float* engine_lse, std::int64_t token_stride,
                                      std::int64_t head_stride, float to_natural) {
  const int idx = blockIdx.x * blockDim.x + threadIdx.x;
  const lqa::StatRow row = lqa::stat_row(p, idx);
  if (!row.used) return;
  const std::int64_t token = row.start + row.length - min(p.last_queries, row.length) + row.i;
  p.lse[idx] = engine_lse[token * token_stride + static_cast<std::int64_t>(row.h) * head_stride] * to_natural;
}

/// Pass 2 (key scores). Grid: (total 64-key tiles, Hkv); block: 256 threads.
/// head_scores[g * T + start + j] = sum over the query heads h of KV group g and queries i < n with
/// j <= L-n+i of exp(q.k * scale - lse). One KV group per block keeps the grid wide at short L.
template <class T, int D>
__global__ void __launch_bounds__(lqa::kThreads) lqa_key_scores_kernel(const lqa::Params<T> p, int num_tokens) {
  using namespace lqa;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const auto [qs, ks, s, row_lse] = SharedTiles<T, D>::carve(smem_raw);

  const int tile_index = blockIdx.x;
  if (tile_index >= p.tile_offsets[p.num_seqs]) return;
  const int b = find_segment(p.tile_offsets, p.num_seqs, tile_index);
  const int start = p.cu_seqlens[b];
  const int length = p.cu_seqlens[b + 1] - start;
  const int n = min(p.last_queries, length);
  const int group = p.num_q_heads / p.num_kv_heads;
  const int g = blockIdx.y;
  const int tile = (tile_index - p.tile_offsets[b]) * kKeys;
  const int valid = min(kKeys, length - tile);

  // Four threads per key, each over 16 rows of the tile.
  const int my_key = threadIdx.x / 4;
  const int quarter = threadIdx.x % 4;
  float score = 0.0f;

  load_tile<T, D>(ks, valid, [&](int r) { return key_row(p, start + tile + r, g, D); }, p.aligned);
  for (int row_base = 0; row_base < group * n; row_base += kRows) {
    const int rows = min(kRows, group * n - row_base);
    __syncthreads();  // previous chunk's readers are done with qs, s, row_lse
    load_tile<T, D>(qs, rows, [&](int r) { return query_row(p, start, length, n, g, group, row_base + r, D); },
                    p.aligned);
    for (int r = threadIdx.x; r < kRows; r += kThreads) {
      const int row = row_base + r;
      row_lse[r] = r < rows ? p.lse[(static_cast<std::int64_t>(b) * p.num_q_heads + g * group + row / n) *
                                        p.last_queries + row % n]
                            : INFINITY;  // exp(x - inf) = 0 for padding rows
    }
    __syncthreads();
    compute_s_tile<T, D>(qs, ks, s);
    __syncthreads();
    float partial_sum = 0.0f;
#pragma unroll 4
    for (int i = 0; i < 16; ++i) {
      const int r = quarter * 16 + i;
      const int pos = length - n + (row_base + r) % n;
      const bool visible = r < rows && tile + my_key <= pos;
      partial_sum += visible ? expf(s[r * kScorePitch + my_key] * p.scale - row_lse[r]) : 0.0f;
    }
    score += partial_sum;
  }
  // Fixed-order reduction of the four quarters of each key.
  score += __shfl_xor_sync(0xffffffffu, score, 1);
  score += __shfl_xor_sync(0xffffffffu, score, 2);
  if (quarter == 0 && my_key < valid) {
    p.head_scores[static_cast<std::int64_t>(g) * num_tokens + start + tile + my_key] = score;
  }
}

/// scores[t] = sum over KV groups g in order of head_scores[g * T + t]. One thread per token.
template <class T>
__global__ void lqa_sum_heads_kernel(const lqa::Params<T> p, int num_tokens) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= num_tokens) return;
  float sum = 0.0f;
  for (int g = 0; g < p.num_kv_heads; ++g) sum += p.head_scores[static_cast<std::int64_t>(g) * num_tokens + t];
  p.scores[t] = sum;
}

}  // namespace ftp::kernels
