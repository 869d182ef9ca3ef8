// What the two prefill attention kernels share: the FlashAttention-2 one (mma.sync,
// attention_prefill.cuh) and the Hopper one (wgmma, attention_prefill_sm90.cuh). Their arguments and
// checks, the mapping of a CTA to a (sequence, query tile), and the online softmax over the
// accumulators of one thread, which both hold in the m16n8 layout (see online_softmax_step).
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "llama3/kernels/common.cuh"

namespace llama3::kernels::attn {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

struct Params {
  const bf16* q;
  std::int64_t q_row_stride;
  const bf16* k;
  std::int64_t k_row_stride;
  const bf16* v;
  std::int64_t v_row_stride;
  bf16* out;
  std::int64_t out_row_stride;  // Hq * d
  float* lse;                   // [T, Hq] natural-log row log-sum-exp, or null (not written)
  const int* cu_seqlens;        // [B+1]
  int num_seqs;                 // B
  int num_q_heads;              // Hq
  int group;                    // Hq / Hkv
  float scale_log2;             // log2(e) / sqrt(d): scores go straight into exp2
};

/// Checks the shapes and strides every launcher takes (also when there is no work) and fills Params;
/// lse is left null. Throws std::invalid_argument naming `where`.
template <int D>
inline Params make_params(const bf16* q, std::int64_t q_row_stride, const bf16* k, std::int64_t k_row_stride,
                          const bf16* v, std::int64_t v_row_stride, bf16* out, const int* cu_seqlens, int B, int T,
                          int Hq, int Hkv, const char* where) {
  detail::require(T >= 0 && B >= 0, where, "T and B must be >= 0");
  detail::require(Hq > 0 && Hkv > 0 && Hq % Hkv == 0, where,
                  "need Hq > 0, Hkv > 0 and Hq a multiple of Hkv, got Hq=" + std::to_string(Hq) +
                      " Hkv=" + std::to_string(Hkv));
  detail::require(q_row_stride >= static_cast<std::int64_t>(Hq) * D &&
                      k_row_stride >= static_cast<std::int64_t>(Hkv) * D &&
                      v_row_stride >= static_cast<std::int64_t>(Hkv) * D,
                  where, "row strides must be >= heads * d");
  detail::require(q_row_stride % 8 == 0 && k_row_stride % 8 == 0 && v_row_stride % 8 == 0, where,
                  "row strides must be multiples of 8 elements (16-byte copies)");
  Params p{};
  p.q = q;
  p.q_row_stride = q_row_stride;
  p.k = k;
  p.k_row_stride = k_row_stride;
  p.v = v;
  p.v_row_stride = v_row_stride;
  p.out = out;
  p.out_row_stride = static_cast<std::int64_t>(Hq) * D;
  p.lse = nullptr;
  p.cu_seqlens = cu_seqlens;
  p.num_seqs = B;
  p.num_q_heads = Hq;
  p.group = Hq / Hkv;
  p.scale_log2 = kLog2e / std::sqrt(static_cast<float>(D));
  return p;
}

/// Upper bound of the number of query tiles of kBlockM rows: sum_b ceil(L_b / M) <= ceil(T / M) + B.
template <int kBlockM>
inline int tile_slots(int T, int B) {
  return ceil_div(T, kBlockM) + B;
}

/// The checks that matter once there is work (T > 0, B > 0): pointers, alignment and the grid
/// (Hq, tile_slots) within CUDA's limits. Returns the number of tile slots.
template <int kBlockM>
inline int require_launchable(const Params& p, int T, const char* where) {
  detail::require(p.q && p.k && p.v && p.out && p.cu_seqlens, where, "null pointer");
  detail::require(detail::aligned16(p.q) && detail::aligned16(p.k) && detail::aligned16(p.v) &&
                      detail::aligned16(p.out),
                  where, "q, k, v and out must be 16-byte aligned");
  const int slots = tile_slots<kBlockM>(T, p.num_seqs);
  detail::require(slots <= 65535, where, "too many query tiles for gridDim.y (T too large)");
  detail::require(p.num_q_heads <= 65535, where, "Hq too large for gridDim.x");
  return slots;
}

/// Maps blockIdx.y to (sequence, query tile of kBlockM rows), last tile of each sequence first (the
/// longest causal rows start earliest), with no host table and no workspace. Run by warp 0 only: it
/// scans the per-sequence tile counts 32 sequences at a time and writes sched = {seq, tile}, seq = -1
/// for a slot past the last tile.
template <int kBlockM>
__device__ __forceinline__ void schedule_tile(const Params& p, int* sched) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int target = static_cast<int>(blockIdx.y);
  if (lane == 0) sched[0] = -1;
  __syncwarp();
  int base = 0;
  for (int b0 = 0; b0 < p.num_seqs && base <= target; b0 += 32) {
    const int b = b0 + lane;
    const int n = b < p.num_seqs ? ceil_div(p.cu_seqlens[b + 1] - p.cu_seqlens[b], kBlockM) : 0;
    int incl = n;
#pragma unroll
    for (int o = 1; o < 32; o <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, incl, o);
      if (lane >= o) incl += y;
    }
    const int excl = base + incl - n;
    if (target >= excl && target < excl + n) {  // true for at most one lane of one chunk
      sched[0] = b;
      sched[1] = n - 1 - (target - excl);
    }
    base += __shfl_sync(0xffffffffu, incl, 31);
  }
}

/// One CTA's query tile: query rows q0 .. q0 + kBlockM - 1 of sequence `seq` for query head `head`,
/// and the keys 0 .. kv_end - 1 that any of them can see, in num_kv_tiles tiles of kBlockN.
template <int D, int kBlockM, int kBlockN>
struct QueryTile {
  int seq_start;      // the sequence's first packed token
  int length;         // L
  int q0;             // first query row (position in the sequence)
  int num_kv_tiles;
  const bf16* q;      // row 0 of the sequence, this head
  const bf16* k;      // row 0 of the sequence, this head's KV head
  const bf16* v;

  __device__ __forceinline__ QueryTile(const Params& p, int seq, int tile, int head) {
    const int kv_head = head / p.group;
    seq_start = p.cu_seqlens[seq];
    length = p.cu_seqlens[seq + 1] - seq_start;
    q0 = tile * kBlockM;
    num_kv_tiles = ceil_div(min(length, q0 + kBlockM), kBlockN);
    q = p.q + static_cast<std::int64_t>(seq_start) * p.q_row_stride + head * D;
    k = p.k + static_cast<std::int64_t>(seq_start) * p.k_row_stride + kv_head * D;
    v = p.v + static_cast<std::int64_t>(seq_start) * p.v_row_stride + kv_head * D;
  }
};

// Both kernels hold S (a warp's 16 rows x kKeys keys) and O (16 rows x D) per thread in the m16n8
// accumulator layout: 8-column block nb, element e = 0..3 is row g + 8 (e >= 2), column
// 8 nb + 2 t + (e & 1), with g = lane / 4, t = lane % 4. The kernels store the blocks differently
// (float[n][4] for mma.sync, float[4n] for wgmma), so the helpers below reach them through
// accessors acc(nb, e) -> float&; with everything unrolled they compile to plain registers.

/// Sets the scores of keys past the row (causal) or past the sequence (length) to -inf. row_lo is
/// this thread's first row (g of its warp's 16), kv0 the tile's first key.
template <int kKeys, class Scores>
__device__ __forceinline__ void mask_scores(Scores s, int row_lo, int kv0, int t4, int length) {
#pragma unroll
  for (int nb = 0; nb < kKeys / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int row = row_lo + (e >= 2 ? 8 : 0);
      const int key = kv0 + nb * 8 + 2 * t4 + (e & 1);
      if (key > row || key >= length) s(nb, e) = -INFINITY;
    }
  }
}

/// One key tile of the online softmax (log2 domain) for this thread's rows r = 0 (row g) and 1
/// (g + 8): the row max m over the quad of threads sharing a row, S turned into P = exp2(S * scale -
/// m), this thread's part of the row sums l, and O rescaled by exp2(m_old - m_new).
template <int kKeys, int D, class Scores, class Out>
__device__ __forceinline__ void online_softmax_step(Scores s, Out o, float (&m)[2], float (&l)[2], float scale_log2) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    float mx = -INFINITY;
#pragma unroll
    for (int nb = 0; nb < kKeys / 8; ++nb) mx = fmaxf(mx, fmaxf(s(nb, 2 * r), s(nb, 2 * r + 1)));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));  // the 4 threads t = 0..3 share a row
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[r], mx * scale_log2);
    // A row with no visible key yet keeps m = -inf; subtract 0 then so exp2 gives 0, not NaN.
    const float m_use = m_new == -INFINITY ? 0.f : m_new;
    const float alpha = exp2f(m[r] - m_use);
    m[r] = m_new;
    float sum = 0.f;
#pragma unroll
    for (int nb = 0; nb < kKeys / 8; ++nb) {
      s(nb, 2 * r) = exp2f(fmaf(s(nb, 2 * r), scale_log2, -m_use));
      s(nb, 2 * r + 1) = exp2f(fmaf(s(nb, 2 * r + 1), scale_log2, -m_use));
      sum += s(nb, 2 * r) + s(nb, 2 * r + 1);
    }
    l[r] = l[r] * alpha + sum;
#pragma unroll
    for (int nb = 0; nb < D / 8; ++nb) {
      o(nb, 2 * r) *= alpha;
      o(nb, 2 * r + 1) *= alpha;
    }
  }
}

/// The end of the online softmax for this thread's two rows (row_lo, row_lo + 8): sums l over the
/// quad, writes each row's natural-log log-sum-exp (m + log2 l) ln 2 when p.lse is set and the row
/// is < L, and returns 1 / l in inv_l (0 for a row without keys).
__device__ __forceinline__ void finish_rows(float (&l)[2], const float (&m)[2], const Params& p, int row_lo,
                                            int length, int seq_start, int head, int t4, float (&inv_l)[2]) {
#pragma unroll
  for (int r = 0; r < 2; ++r) {
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
    l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    inv_l[r] = l[r] > 0.f ? 1.f / l[r] : 0.f;
  }
  if (p.lse != nullptr && t4 == 0) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = row_lo + 8 * r;
      // Every row < L sees at least its own key, so l >= 1.
      if (row < length) p.lse[static_cast<std::int64_t>(seq_start + row) * p.num_q_heads + head] = (m[r] + log2f(l[r])) * kLn2;
    }
  }
}

}  // namespace llama3::kernels::attn
