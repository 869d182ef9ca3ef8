// Causal GQA attention over a packed ragged batch (prefill), FlashAttention-2 style.
//
// Layout: q [T, Hq, d], k and v [T, Hkv, d], out [T, Hq, d], all bf16. A token's rows are
// `*_row_stride` elements apart (>= heads * d, a multiple of 8) so q/k/v can be views into a fused
// QKV buffer or a KV cache laid out [S, Hkv, d]; a head's d elements are contiguous. Sequence b
// owns tokens cu_seqlens[b] .. cu_seqlens[b+1]-1 (device int32 [B+1], cu_seqlens[0] = 0,
// cu_seqlens[B] = T), and token i of a sequence attends to tokens 0..i of the same sequence.
// Query head h reads KV head h / (Hq / Hkv). Softmax scale 1/sqrt(d).
#pragma once

#include <cmath>
#include <cstdint>

#include "ftp/kernels/mma_sm80.cuh"
#include "llama3/kernels/attention_prefill_common.cuh"
#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

namespace attn_prefill {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kBlockM = 16 * kWarps;  // query rows per CTA: one m16 MMA row block per warp
constexpr int kBlockN = 64;           // keys per K/V tile
using attn::Params;

/// Dynamic shared memory of one CTA: Q tile plus double-buffered K and V tiles.
template <int D>
constexpr int smem_bytes() {
  return (kBlockM * D + 2 * 2 * kBlockN * D) * static_cast<int>(sizeof(bf16));
}

// The sm_80 PTX wrappers (cp.async, ldmatrix, mma.sync m16n8k16) and the tiles' XOR swizzle are
// ftp's (ftp/kernels/mma_sm80.cuh): its scorer's tensor-core pass is built from the same ones.
using ftp::kernels::sm80::cp_async16;
using ftp::kernels::sm80::cp_async_commit;
using ftp::kernels::sm80::cp_async_wait;
using ftp::kernels::sm80::ldmatrix_x4;
using ftp::kernels::sm80::ldmatrix_x4_trans;
using ftp::kernels::sm80::mma_16816;
using ftp::kernels::sm80::swizzle;

/// Copies rows [row0, row0 + R) of one head of a sequence into a swizzled smem tile; rows >= L are
/// zero-filled (so padded keys/values are 0, never NaN garbage that 0 * NaN would spread).
template <int D, int R>
__device__ __forceinline__ void load_tile(bf16* tile, const bf16* base, std::int64_t row_stride, int row0, int L) {
  constexpr int kChunksPerRow = D / 8;
  constexpr int kChunks = R * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile must split evenly over the CTA");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int idx = threadIdx.x + i * kThreads;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow;
    const bool ok = row0 + r < L;
    const bf16* src = base + (ok ? static_cast<std::int64_t>(row0 + r) * row_stride : 0) + c * 8;
    cp_async16(tile + swizzle<D>(r, c), src, ok ? 16 : 0);
  }
}

// prefill_kernel: out[t, h, :] = softmax_j( q[t,h,:] . k[j,h/G,:] / sqrt(d) ) v[j,h/G,:] over the
// tokens j <= t of t's sequence. Grid (Hq, tile_slots); block (kThreads).
// One CTA = one (query head, 128-row query tile of one sequence); blockIdx.y is mapped to
// (sequence, tile) on the device from cu_seqlens (no host table, no workspace), last tile of each
// sequence first so that the longest causal rows start earliest. Each warp owns 16 query rows and
// runs the online softmax over 64-key tiles in fp32 (row max m, row sum l, O rescaled by
// exp2(m_old - m_new)); S = Q K^T and O += P V use mma.sync m16n8k16 bf16 -> fp32. K/V tiles are
// double-buffered with cp.async; tiles above the diagonal are never loaded, and a warp skips tiles
// fully masked for its 16 rows.
// Occupancy: d=64 fits two CTAs per SM (<= 128 registers); d=128 needs ~166 registers per thread
// (64 fp32 O accumulators + 32 S accumulators), so capping it at 128 spills: it runs one CTA per SM.
template <int D>
__global__ void __launch_bounds__(kThreads, D == 128 ? 1 : 2) prefill_kernel(const Params p) {
  static_assert(D == 64 || D == 128, "head size must be 64 or 128");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  bf16* q_s = reinterpret_cast<bf16*>(smem_raw);
  bf16* k_s = q_s + kBlockM * D;       // [2][kBlockN * D]
  bf16* v_s = k_s + 2 * kBlockN * D;   // [2][kBlockN * D]

  const int warp = threadIdx.x / 32;
  const int lane = threadIdx.x % 32;

  __shared__ int sched[2];  // (sequence, query tile) of this CTA
  if (warp == 0) attn::schedule_tile<kBlockM>(p, sched);
  __syncthreads();
  if (sched[0] < 0) return;  // slot past the last tile: whole CTA leaves together
  const int head = blockIdx.x;
  const attn::QueryTile<D, kBlockM, kBlockN> qt(p, sched[0], sched[1], head);
  const int seq_start = qt.seq_start;
  const int L = qt.length;
  const int q0 = qt.q0;

  // Prologue: group 0 = Q + K0, group 1 = V0.
  load_tile<D, kBlockM>(q_s, qt.q, p.q_row_stride, q0, L);
  load_tile<D, kBlockN>(k_s, qt.k, p.k_row_stride, 0, L);
  cp_async_commit();
  load_tile<D, kBlockN>(v_s, qt.v, p.v_row_stride, 0, L);
  cp_async_commit();

  const int g = lane / 4;      // MMA row within the 8-row half
  const int t4 = lane % 4;     // MMA column pair
  const int wr0 = q0 + warp * 16;  // first query row of this warp (local position)
  const bool warp_has_rows = wr0 < L;

  float o[D / 8][4];
  const auto o_acc = [&o](int nb, int e) -> float& { return o[nb][e]; };
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.f;
  float m[2] = {-INFINITY, -INFINITY};  // running max of score * scale_log2, rows g and g + 8
  float l[2] = {0.f, 0.f};              // this thread's part of the running row sums

  for (int j = 0; j < qt.num_kv_tiles; ++j) {
    const int kv0 = j * kBlockN;
    const int buf = j & 1;
    const bf16* kt = k_s + buf * kBlockN * D;
    const bf16* vt = v_s + buf * kBlockN * D;

    // K_j has landed (only V_j may still be in flight); the barrier also tells every warp that the
    // other K buffer (K_{j-1}) is no longer read, so K_{j+1} may overwrite it.
    cp_async_wait<1>();
    __syncthreads();
    if (j + 1 < qt.num_kv_tiles) load_tile<D, kBlockN>(k_s + (buf ^ 1) * kBlockN * D, qt.k, p.k_row_stride, kv0 + kBlockN, L);
    cp_async_commit();  // possibly empty: keeps the group count uniform

    const bool active = warp_has_rows && kv0 <= wr0 + 15;
    float s[kBlockN / 8][4];
    const auto s_acc = [&s](int nb, int e) -> float& { return s[nb][e]; };
    if (active) {
      // ---- S = Q K^T (16 x 64 per warp) ----
#pragma unroll
      for (int i = 0; i < kBlockN / 8; ++i) s[i][0] = s[i][1] = s[i][2] = s[i][3] = 0.f;
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        std::uint32_t a[4];
        ldmatrix_x4(a, q_s + swizzle<D>(warp * 16 + (lane & 15), ks * 2 + (lane >> 4)));
#pragma unroll
        for (int np = 0; np < kBlockN / 16; ++np) {
          std::uint32_t b[4];
          const int mi = lane >> 3;
          ldmatrix_x4(b, kt + swizzle<D>(np * 16 + (mi >> 1) * 8 + (lane & 7), ks * 2 + (mi & 1)));
          mma_16816<bf16>(s[2 * np], a, b[0], b[1]);
          mma_16816<bf16>(s[2 * np + 1], a, b[2], b[3]);
        }
      }
      // ---- causal / length mask, only on tiles that reach the diagonal or the end ----
      if (kv0 + kBlockN - 1 > wr0 || kv0 + kBlockN > L) attn::mask_scores<kBlockN>(s_acc, wr0 + g, kv0, t4, L);
      attn::online_softmax_step<kBlockN, D>(s_acc, o_acc, m, l, p.scale_log2);
    }

    // V_j has landed; the barrier also frees the other V buffer (V_{j-1}) for V_{j+1}.
    cp_async_wait<1>();
    __syncthreads();
    if (j + 1 < qt.num_kv_tiles) load_tile<D, kBlockN>(v_s + (buf ^ 1) * kBlockN * D, qt.v, p.v_row_stride, kv0 + kBlockN, L);
    cp_async_commit();

    if (active) {
      // ---- O += P V: the S accumulators become A fragments in registers (FA2's register reuse) ----
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        std::uint32_t a[4];
        a[0] = pack_bf16x2(s[2 * kk][0], s[2 * kk][1]);
        a[1] = pack_bf16x2(s[2 * kk][2], s[2 * kk][3]);
        a[2] = pack_bf16x2(s[2 * kk + 1][0], s[2 * kk + 1][1]);
        a[3] = pack_bf16x2(s[2 * kk + 1][2], s[2 * kk + 1][3]);
#pragma unroll
        for (int dp = 0; dp < D / 16; ++dp) {
          std::uint32_t b[4];
          const int mi = lane >> 3;
          ldmatrix_x4_trans(b, vt + swizzle<D>(kk * 16 + (mi & 1) * 8 + (lane & 7), dp * 2 + (mi >> 1)));
          mma_16816<bf16>(o[2 * dp], a, b[0], b[1]);
          mma_16816<bf16>(o[2 * dp + 1], a, b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();  // no copy may still target smem when the CTA exits

  if (!warp_has_rows) return;  // no barrier follows: warps finish independently
  // ---- normalize, stage the warp's 16 x D block in its own Q rows (only this warp reads them),
  //      then write rows < L with 16-byte stores ----
  float inv_l[2];
  attn::finish_rows(l, m, p, wr0 + g, L, seq_start, head, t4, inv_l);
  __syncwarp();
  bf16* stage = q_s + warp * 16 * D;
#pragma unroll
  for (int nb = 0; nb < D / 8; ++nb) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = g + 8 * r;
      *reinterpret_cast<std::uint32_t*>(stage + swizzle<D>(row, nb) + 2 * t4) =
          pack_bf16x2(o[nb][2 * r] * inv_l[r], o[nb][2 * r + 1] * inv_l[r]);
    }
  }
  __syncwarp();
  constexpr int kChunksPerRow = D / 8;
#pragma unroll
  for (int i = 0; i < 16 * kChunksPerRow / 32; ++i) {
    const int idx = lane + i * 32;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow;
    if (wr0 + r < L) {
      bf16* dst = p.out + static_cast<std::int64_t>(seq_start + wr0 + r) * p.out_row_stride + head * D + c * 8;
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(stage + swizzle<D>(r, c));
    }
  }
}

// reference_kernel: the same function, naive and in fp32, for validation only. One thread per
// (token, query head); a single pass with an online softmax over keys 0..i, expf, fp32 O.
// out_ref [T, Hq, d] fp32 (contiguous).
template <int D>
__global__ void reference_kernel(const Params p, float* __restrict__ out_ref, int T, float scale) {
  const std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::int64_t>(T) * p.num_q_heads) return;
  const int t = static_cast<int>(idx / p.num_q_heads);
  const int h = static_cast<int>(idx % p.num_q_heads);
  int lo = 0, hi = p.num_seqs;  // largest b with cu_seqlens[b] <= t
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (p.cu_seqlens[mid] <= t) lo = mid; else hi = mid;
  }
  const int start = p.cu_seqlens[lo];
  const int kvh = h / p.group;
  float qf[D], acc[D];
  for (int e = 0; e < D; ++e) {
    qf[e] = __bfloat162float(p.q[static_cast<std::int64_t>(t) * p.q_row_stride + h * D + e]);
    acc[e] = 0.f;
  }
  float m = -INFINITY, l = 0.f;
  for (int j = start; j <= t; ++j) {
    const bf16* kr = p.k + static_cast<std::int64_t>(j) * p.k_row_stride + kvh * D;
    const bf16* vr = p.v + static_cast<std::int64_t>(j) * p.v_row_stride + kvh * D;
    float s = 0.f;
    for (int e = 0; e < D; ++e) s += qf[e] * __bfloat162float(kr[e]);
    s *= scale;
    const float m_new = fmaxf(m, s);
    const float a = expf(m - m_new);
    const float w = expf(s - m_new);
    l = l * a + w;
    for (int e = 0; e < D; ++e) acc[e] = acc[e] * a + w * __bfloat162float(vr[e]);
    m = m_new;
  }
  for (int e = 0; e < D; ++e) out_ref[idx * D + e] = acc[e] / l;
}

using attn::make_params;

}  // namespace attn_prefill

/// Causal GQA prefill attention (see the top of this file for shapes). D = head size (64 or 128).
/// `lse` (optional, fp32 [T, Hq] contiguous): each row's natural-log log-sum-exp of its scaled
/// logits, ln sum_j exp(q.k_j / sqrt(d)), the normalizer FTP's scorer can reuse (ftp::AttentionView::lse).
/// `T` must equal cu_seqlens[B] (the host copy of the packed length: it sizes the grid, and tiles
/// past it would be silently skipped). Pointers q, k, v, out 16-byte aligned; out is contiguous
/// [T, Hq, d] and must not overlap q, k or v. Uses 96 KB (d=128) / 48 KB (d=64) of dynamic shared
/// memory per CTA; no workspace, no allocation.
template <int D>
void launch_attention_prefill(const bf16* q, std::int64_t q_row_stride, const bf16* k, std::int64_t k_row_stride,
                              const bf16* v, std::int64_t v_row_stride, bf16* out, const int* cu_seqlens, int B,
                              int T, int Hq, int Hkv, cudaStream_t stream, float* lse = nullptr) {
  using namespace attn_prefill;
  constexpr const char* where = "launch_attention_prefill";
  Params p = make_params<D>(q, q_row_stride, k, k_row_stride, v, v_row_stride, out, cu_seqlens, B, T, Hq, Hkv, where);
  p.lse = lse;
  if (T == 0 || B == 0) return;
  const int slots = attn::require_launchable<kBlockM>(p, T, where);
  constexpr int smem = smem_bytes<D>();
  // Raising the dynamic shared-memory limit is per function and cheap; doing it on every call keeps
  // the launcher free of global state.
  LLAMA3_CUDA_CHECK(cudaFuncSetAttribute(prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  prefill_kernel<D><<<dim3(Hq, slots), kThreads, smem, stream>>>(p);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

/// Naive fp32 reference of launch_attention_prefill (validation only; slow): out_ref [T, Hq, d] fp32.
template <int D>
void launch_attention_prefill_reference(const bf16* q, std::int64_t q_row_stride, const bf16* k,
                                        std::int64_t k_row_stride, const bf16* v, std::int64_t v_row_stride,
                                        float* out_ref, const int* cu_seqlens, int B, int T, int Hq, int Hkv,
                                        cudaStream_t stream) {
  using namespace attn_prefill;
  const Params p = make_params<D>(q, q_row_stride, k, k_row_stride, v, v_row_stride, nullptr, cu_seqlens, B, T, Hq,
                                  Hkv, "launch_attention_prefill_reference");
  if (T == 0 || B == 0) return;
  const std::int64_t n = static_cast<std::int64_t>(T) * Hq;
  const int threads = 128;
  reference_kernel<D><<<static_cast<unsigned>(ceil_div<std::int64_t>(n, threads)), threads, 0, stream>>>(
      p, out_ref, T, 1.f / std::sqrt(static_cast<float>(D)));
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
