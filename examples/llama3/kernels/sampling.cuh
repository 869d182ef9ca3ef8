// Next-token selection from one row of logits: greedy argmax and temperature sampling.
#pragma once

#include <climits>
#include <cmath>

#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

namespace sampling_detail {

constexpr int kThreads = 1024;  // one block: a decode step samples one row of V ~ 1e5 logits
constexpr int kWarps = kThreads / 32;

/// (value, index) pair order: larger value first, then lower index. NaN never wins.
__device__ __forceinline__ bool better(float v, int i, float bv, int bi) { return v > bv || (v == bv && i < bi); }

__device__ __forceinline__ void block_argmax(float& v, int& i, float* sv, int* si) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, o);
    const int oi = __shfl_xor_sync(0xffffffffu, i, o);
    if (better(ov, oi, v, i)) { v = ov; i = oi; }
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) { sv[warp] = v; si[warp] = i; }
  __syncthreads();
  v = -INFINITY; i = INT_MAX;
  for (int w = 0; w < kWarps; ++w)
    if (better(sv[w], si[w], v, i)) { v = sv[w]; i = si[w]; }
  __syncthreads();  // sv/si may be reused by the caller
}

}  // namespace sampling_detail

// argmax_kernel: *out_id = the lowest i with logits[i] = max(logits), logits [V] fp32. NaN logits
// are ignored; if every logit is NaN the result is 0. One block of 1024 threads, strided
// (coalesced) scan, then a block reduction of (value, index) pairs. (A template only so that the
// header can be included by several translation units: non-template kernels cannot be inline.)
template <int kBlock = sampling_detail::kThreads>
__global__ void __launch_bounds__(kBlock)
    argmax_kernel(const float* __restrict__ logits, int V, int* __restrict__ out_id) {
  using namespace sampling_detail;
  static_assert(kBlock == kThreads, "the loops stride by kThreads");
  __shared__ float sv[kWarps];
  __shared__ int si[kWarps];
  float bv = -INFINITY;
  int bi = INT_MAX;
  for (int i = threadIdx.x; i < V; i += kThreads)
    if (better(logits[i], i, bv, bi)) { bv = logits[i]; bi = i; }
  block_argmax(bv, bi, sv, si);
  if (threadIdx.x == 0) *out_id = bi == INT_MAX ? 0 : bi;
}

// sample_kernel: inverse-CDF sampling from p_i = exp((x_i - max x) / temperature) / Z, logits
// x [V] fp32, with a caller-given uniform u in [0, 1): *out_id = the lowest i whose cumulative
// weight exceeds u * Z. Deterministic for a given (logits, temperature, u): thread t owns the
// contiguous range [t*chunk, (t+1)*chunk), sums it in index order, and the block combines the
// 1024 partial sums in a fixed order, so every run does the same fp32 operations.
// NaN and -inf logits get weight 0. If rounding leaves u * Z at or above the last cumulative
// weight, the last index with positive weight is returned; if no weight is positive, 0.
template <int kBlock = sampling_detail::kThreads>
__global__ void __launch_bounds__(kBlock)
    sample_kernel(const float* __restrict__ logits, int V, float inv_temperature, float u, int* __restrict__ out_id) {
  using namespace sampling_detail;
  static_assert(kBlock == kThreads, "the loops stride by kThreads");
  __shared__ float sv[kWarps];
  __shared__ int si[kWarps];
  __shared__ float warp_tot[kWarps];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  // 1. max logit (NaN ignored).
  float mx = -INFINITY;
  int dummy = 0;
  for (int i = threadIdx.x; i < V; i += kThreads) mx = fmaxf(mx, logits[i]);
  block_argmax(mx, dummy, sv, si);  // the index is irrelevant here; only the value is used

  // 2. this thread's contiguous range and its weight sum in index order.
  const int chunk = ceil_div(V, kThreads);
  const int lo = min(V, threadIdx.x * chunk), hi = min(V, lo + chunk);
  auto weight = [&](float x) { return (x == x && mx != -INFINITY) ? expf((x - mx) * inv_temperature) : 0.f; };
  float mine = 0.f;
  for (int i = lo; i < hi; ++i) mine += weight(logits[i]);

  // 3. exclusive prefix of the per-thread sums (fixed shape: warp scan, then warp totals).
  float incl = mine;
#pragma unroll
  for (int o = 1; o < 32; o <<= 1) {
    const float y = __shfl_up_sync(0xffffffffu, incl, o);
    if (lane >= o) incl += y;
  }
  if (lane == 31) warp_tot[warp] = incl;
  __syncthreads();
  float before = 0.f, total = 0.f;
  for (int w = 0; w < kWarps; ++w) {
    if (w < warp) before += warp_tot[w];
    total += warp_tot[w];
  }
  const float prefix = before + incl - mine;
  const float target = u * total;

  // 4. first index whose running cumulative weight exceeds the target; fallback: last positive.
  int first = INT_MAX, last_pos = -1;
  float run = prefix;
  for (int i = lo; i < hi; ++i) {
    const float w = weight(logits[i]);
    if (w > 0.f) last_pos = i;
    run += w;
    if (first == INT_MAX && w > 0.f && run > target) first = i;
  }
  // Block min of `first` and max of `last_pos` through the argmax reduction (value = -index).
  float fv = first == INT_MAX ? -INFINITY : -static_cast<float>(first);
  int fi = first;
  block_argmax(fv, fi, sv, si);
  float lv = static_cast<float>(last_pos);
  int li = last_pos;
  block_argmax(lv, li, sv, si);
  if (threadIdx.x == 0) *out_id = fi != INT_MAX ? fi : (li >= 0 ? li : 0);
}

/// Greedy decoding: *out_id (device int) = argmax of logits [V] (lowest id on ties).
inline void launch_sample_argmax(const float* logits, int V, int* out_id, cudaStream_t stream) {
  detail::require(V > 0, "launch_sample_argmax", "V must be > 0");
  detail::require(logits && out_id, "launch_sample_argmax", "null pointer");
  argmax_kernel<><<<1, sampling_detail::kThreads, 0, stream>>>(logits, V, out_id);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

/// Temperature sampling: *out_id drawn from softmax(logits / temperature) by the uniform u in [0, 1)
/// (the caller's RNG, so runs are reproducible). temperature must be > 0 (use argmax for 0).
inline void launch_sample_temperature(const float* logits, int V, float temperature, float u, int* out_id,
                                      cudaStream_t stream) {
  constexpr const char* where = "launch_sample_temperature";
  detail::require(V > 0, where, "V must be > 0");
  detail::require(temperature > 0.f && std::isfinite(temperature), where, "temperature must be finite and > 0");
  detail::require(u >= 0.f && u < 1.f, where, "u must be in [0, 1)");
  detail::require(logits && out_id, where, "null pointer");
  sample_kernel<><<<1, sampling_detail::kThreads, 0, stream>>>(logits, V, 1.f / temperature, u, out_id);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
