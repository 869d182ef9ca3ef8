// Decode attention: one new query per sequence against that sequence's KV cache, split over the
// cache length (split-K) with a second pass that merges the splits.
//
// Layout: q [B, Hq, d] bf16 (contiguous); k_cache and v_cache hold, for sequence b, position s and
// KV head h, the d contiguous bf16 elements at  b * batch_stride + s * row_stride + h * d  (a
// [B, S, Hkv, d] cache has row_stride = Hkv*d and batch_stride = S*Hkv*d). lens [B] device int32:
// sequence b attends to positions 0 .. lens[b]-1 (the new token's k/v must already be written).
// out [B, Hq, d] bf16. Query head h reads KV head h / (Hq / Hkv); softmax scale 1/sqrt(d).
// A sequence with len 0 gets a zero output row.
//
// Workspace (caller-provided, see attention_decode_workspace_bytes): per (b, query head, split)
// the split's running max m, sum l (float2) and unnormalized output o [d] (fp32).
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>

#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

namespace attn_decode {

constexpr int kThreads = 128;
constexpr int kChunk = 256;    // cache positions per split: 32 K + 32 V rows per warp of traffic
constexpr int kMaxGroup = 8;   // Hq / Hkv supported (Llama3 4, Qwen2 7, SmolLM2 3)

inline int num_splits(int max_len) { return max_len <= 0 ? 1 : ceil_div(max_len, kChunk); }

struct Params {
  const bf16* q;
  const bf16* k;
  const bf16* v;
  std::int64_t batch_stride;
  std::int64_t row_stride;
  const int* lens;
  int num_q_heads;  // Hq
  int group;        // Hq / Hkv
  int splits;
  float scale;      // 1 / sqrt(d)
  float2* ml;       // [B, Hq, splits]
  float* o_part;    // [B, Hq, splits, d]
  bf16* out;        // [B, Hq, d]
};

// split_kernel: for one (split, KV head, sequence) and all G query heads of that KV head,
//   m = max_s q.k_s*scale, l = sum_s exp(q.k_s*scale - m), o = sum_s exp(q.k_s*scale - m) v_s
// over the split's positions s in [split*kChunk, min(len, (split+1)*kChunk)). Grid (splits, Hkv, B).
// Every K/V row is read once for all G heads. Empty splits write m = -inf, l = 0.
template <int D>
__global__ void __launch_bounds__(kThreads) split_kernel(const Params p) {
  __shared__ float q_s[kMaxGroup][D];
  __shared__ float s_s[kMaxGroup][kChunk];
  __shared__ float m_s[kMaxGroup], l_s[kMaxGroup];
  constexpr int kSlices = kThreads / D;  // threads per output column in the P V pass
  __shared__ float red[kSlices > 1 ? kSlices - 1 : 1][kMaxGroup][D];

  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int G = p.group;
  const int len = p.lens[b];
  const int k0 = split * kChunk;
  const int n = min(kChunk, len - k0);  // positions of this split (<= 0: empty)
  const std::int64_t part = (static_cast<std::int64_t>(b) * p.num_q_heads + kvh * G) * p.splits + split;
  if (n <= 0) {
    if (threadIdx.x < G) p.ml[part + static_cast<std::int64_t>(threadIdx.x) * p.splits] = make_float2(-INFINITY, 0.f);
    return;
  }
  for (int i = threadIdx.x; i < G * D; i += kThreads) {
    const int g = i / D, e = i % D;
    q_s[g][e] = __bfloat162float(p.q[(static_cast<std::int64_t>(b) * p.num_q_heads + kvh * G + g) * D + e]) * p.scale;
  }
  __syncthreads();

  const bf16* kb = p.k + b * p.batch_stride + static_cast<std::int64_t>(k0) * p.row_stride + kvh * D;
  const bf16* vb = p.v + b * p.batch_stride + static_cast<std::int64_t>(k0) * p.row_stride + kvh * D;

  // Scores: one thread per position, the row read as 16-byte vectors.
  for (int s = threadIdx.x; s < n; s += kThreads) {
    const bf16* kr = kb + s * p.row_stride;
    float acc[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) acc[g] = 0.f;
#pragma unroll 4
    for (int e = 0; e < D; e += 8) {
      float kv[8];
      load8(kr + e, kv);
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g) {
        if (g < G) {
#pragma unroll
          for (int i = 0; i < 8; ++i) acc[g] = fmaf(q_s[g][e + i], kv[i], acc[g]);
        }
      }
    }
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < G) s_s[g][s] = acc[g];
  }
  __syncthreads();

  // Max and exp-sum per head, one warp per head.
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int g = warp; g < G; g += kThreads / 32) {
    float mx = -INFINITY;
    for (int s = lane; s < n; s += 32) mx = fmaxf(mx, s_s[g][s]);
    mx = warp_max(mx);
    float sum = 0.f;
    for (int s = lane; s < n; s += 32) {
      const float e = expf(s_s[g][s] - mx);
      s_s[g][s] = e;
      sum += e;
    }
    sum = warp_sum(sum);
    if (lane == 0) { m_s[g] = mx; l_s[g] = sum; }
  }
  __syncthreads();

  // o[g][c] = sum_s p[g][s] v[s][c]: column c per thread (coalesced rows), kSlices position slices.
  const int c = threadIdx.x % D, slice = threadIdx.x / D;
  float acc[kMaxGroup];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) acc[g] = 0.f;
  for (int s = slice; s < n; s += kSlices) {
    const float vv = __bfloat162float(vb[s * p.row_stride + c]);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < G) acc[g] = fmaf(s_s[g][s], vv, acc[g]);
  }
  if constexpr (kSlices > 1) {
    if (slice > 0) {
#pragma unroll
      for (int g = 0; g < kMaxGroup; ++g)
        if (g < G) red[slice - 1][g][c] = acc[g];
    }
    __syncthreads();
    if (slice > 0) return;
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g)
      if (g < G)
        for (int sl = 0; sl < kSlices - 1; ++sl) acc[g] += red[sl][g][c];  // fixed order: deterministic
  }
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < G) {
      const std::int64_t idx = part + static_cast<std::int64_t>(g) * p.splits;
      p.o_part[idx * D + c] = acc[g];
      if (c == 0) p.ml[idx] = make_float2(m_s[g], l_s[g]);
    }
  }
}

// merge_kernel: out[b, h, c] = sum_k exp(m_k - M) o_k[c] / sum_k exp(m_k - M) l_k over the splits k
// (M = max m_k), skipping empty splits; zero when the sequence is empty. Grid (Hq, B), block D.
template <int D>
__global__ void merge_kernel(const Params p) {
  const int h = blockIdx.x, b = blockIdx.y, c = threadIdx.x;
  const std::int64_t base = (static_cast<std::int64_t>(b) * p.num_q_heads + h) * p.splits;
  float M = -INFINITY;
  for (int k = 0; k < p.splits; ++k) M = fmaxf(M, p.ml[base + k].x);
  float num = 0.f, den = 0.f;
  if (M != -INFINITY) {
    for (int k = 0; k < p.splits; ++k) {
      const float2 ml = p.ml[base + k];
      if (ml.x == -INFINITY) continue;  // empty split: its o was never written
      const float w = expf(ml.x - M);
      num = fmaf(w, p.o_part[(base + k) * D + c], num);
      den = fmaf(w, ml.y, den);
    }
  }
  p.out[(static_cast<std::int64_t>(b) * p.num_q_heads + h) * D + c] = __float2bfloat16_rn(den > 0.f ? num / den : 0.f);
}

}  // namespace attn_decode

/// Workspace bytes launch_attention_decode needs for B sequences of at most max_len positions.
inline std::size_t attention_decode_workspace_bytes(int B, int Hq, int d, int max_len) {
  const std::size_t parts =
      static_cast<std::size_t>(B) * static_cast<std::size_t>(Hq) * static_cast<std::size_t>(attn_decode::num_splits(max_len));
  return parts * (sizeof(float2) + sizeof(float) * static_cast<std::size_t>(d));
}

/// Decode attention (see the top of this file). D = 64 or 128. `max_len` (host) bounds every
/// lens[b] and fixes the split count; positions past it are not read. `workspace` (16-byte aligned)
/// holds attention_decode_workspace_bytes(B, Hq, D, max_len) bytes. Two kernels, no allocation.
template <int D>
void launch_attention_decode(const bf16* q, const bf16* k_cache, const bf16* v_cache, std::int64_t batch_stride,
                             std::int64_t row_stride, const int* lens, int max_len, bf16* out, int B, int Hq, int Hkv,
                             void* workspace, std::size_t workspace_bytes, cudaStream_t stream) {
  static_assert(D == 64 || D == 128, "head size must be 64 or 128");
  using namespace attn_decode;
  constexpr const char* where = "launch_attention_decode";
  detail::require(B >= 0 && max_len >= 0, where, "B and max_len must be >= 0");
  detail::require(Hq > 0 && Hkv > 0 && Hq % Hkv == 0, where, "need Hq > 0, Hkv > 0 and Hq a multiple of Hkv");
  detail::require(Hq / Hkv <= kMaxGroup, where, "Hq / Hkv must be <= " + std::to_string(kMaxGroup));
  detail::require(row_stride >= static_cast<std::int64_t>(Hkv) * D && row_stride % 8 == 0, where,
                  "row_stride must be >= Hkv * d and a multiple of 8");
  detail::require(batch_stride % 8 == 0 && batch_stride >= 0, where, "batch_stride must be a multiple of 8");
  if (B == 0) return;
  detail::require(q && k_cache && v_cache && lens && out && workspace, where, "null pointer");
  detail::require(detail::aligned16(k_cache) && detail::aligned16(v_cache) && detail::aligned16(workspace), where,
                  "k_cache, v_cache and workspace must be 16-byte aligned");
  const std::size_t need = attention_decode_workspace_bytes(B, Hq, D, max_len);
  detail::require(workspace_bytes >= need, where,
                  "workspace too small: need " + std::to_string(need) + " bytes, got " + std::to_string(workspace_bytes));
  detail::require(B <= 65535, where, "B must be <= 65535");
  Params p{};
  p.q = q; p.k = k_cache; p.v = v_cache;
  p.batch_stride = batch_stride; p.row_stride = row_stride;
  p.lens = lens; p.num_q_heads = Hq; p.group = Hq / Hkv;
  p.splits = num_splits(max_len);
  p.scale = 1.f / std::sqrt(static_cast<float>(D));
  const std::size_t parts = static_cast<std::size_t>(B) * Hq * p.splits;
  p.ml = static_cast<float2*>(workspace);
  p.o_part = reinterpret_cast<float*>(static_cast<float2*>(workspace) + parts);
  p.out = out;
  split_kernel<D><<<dim3(p.splits, Hkv, B), kThreads, 0, stream>>>(p);
  LLAMA3_CUDA_CHECK_LAUNCH();
  merge_kernel<D><<<dim3(Hq, B), D, 0, stream>>>(p);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
