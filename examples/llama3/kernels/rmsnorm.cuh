// RMSNorm of the residual stream (Llama's attention_norm / ffn_norm / output_norm).
#pragma once

#include <algorithm>

#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

namespace rmsnorm_detail {

constexpr int kThreads = 256;

// Sum over the block, fixed reduction order (deterministic). `scratch` holds kThreads/32 floats.
__device__ __forceinline__ float block_sum(float x, float* scratch) {
  x = warp_sum(x);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = x;
  __syncthreads();
  float total = 0.f;
#pragma unroll
  for (int w = 0; w < kThreads / 32; ++w) total += scratch[w];
  return total;
}

}  // namespace rmsnorm_detail

// rmsnorm_kernel: out[t, c] = bf16( x[t, c] * rsqrt(mean_c(x[t, :]^2) + eps) * w[c] ).
//   x [T, C] (fp32 or bf16), w [C] (fp32 or bf16; GGUF stores norm weights as fp32), out [T, C] bf16.
// One block per row; squares are summed in fp32. The normalized value is multiplied by the weight in
// fp32 and rounded once (HF rounds x*rsqrt to the input dtype first; for fp32 input they agree).
// kVec: C % 8 == 0 and 16-byte aligned rows, so each thread moves 8 elements per access.
template <class TIn, class TW, bool kVec>
__global__ void __launch_bounds__(rmsnorm_detail::kThreads)
    rmsnorm_kernel(const TIn* __restrict__ x, const TW* __restrict__ w, bf16* __restrict__ out, int C, float eps) {
  __shared__ float scratch[rmsnorm_detail::kThreads / 32];
  const std::int64_t row = blockIdx.x;
  const TIn* xr = x + row * C;
  bf16* yr = out + row * C;
  float ss = 0.f;
  if constexpr (kVec) {
    for (int c = threadIdx.x * 8; c < C; c += rmsnorm_detail::kThreads * 8) {
      float v[8];
      load8(xr + c, v);
#pragma unroll
      for (int e = 0; e < 8; ++e) ss += v[e] * v[e];
    }
  } else {
    for (int c = threadIdx.x; c < C; c += rmsnorm_detail::kThreads) {
      const float v = to_float(xr[c]);
      ss += v * v;
    }
  }
  const float inv_rms = rsqrtf(rmsnorm_detail::block_sum(ss, scratch) / static_cast<float>(C) + eps);
  // Second pass re-reads the row: it is in L1/L2, and keeping it in registers would tie the block
  // size to C.
  if constexpr (kVec) {
    for (int c = threadIdx.x * 8; c < C; c += rmsnorm_detail::kThreads * 8) {
      float v[8], g[8];
      load8(xr + c, v);
      load8(w + c, g);
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = v[e] * inv_rms * g[e];
      store8(yr + c, v);
    }
  } else {
    for (int c = threadIdx.x; c < C; c += rmsnorm_detail::kThreads) {
      yr[c] = __float2bfloat16_rn(to_float(xr[c]) * inv_rms * to_float(w[c]));
    }
  }
}

/// RMSNorm of T rows of C: x [T, C] -> out [T, C] bf16 with weight w [C]. x and out may not alias
/// unless TIn is bf16 (each block reads its row fully before writing it, so in-place is safe then).
template <class TIn, class TW>
void launch_rmsnorm(const TIn* x, const TW* w, bf16* out, int T, int C, float eps, cudaStream_t stream) {
  constexpr const char* where = "launch_rmsnorm";
  detail::require(T >= 0 && C >= 0, where, "T and C must be >= 0");
  detail::require(eps >= 0.f, where, "eps must be >= 0");
  if (T == 0 || C == 0) return;
  detail::require(x != nullptr && w != nullptr && out != nullptr, where, "null pointer");
  const bool vec = C % 8 == 0 && detail::aligned16(x) && detail::aligned16(w) && detail::aligned16(out);
  if (vec) {
    rmsnorm_kernel<TIn, TW, true><<<T, rmsnorm_detail::kThreads, 0, stream>>>(x, w, out, C, eps);
  } else {
    rmsnorm_kernel<TIn, TW, false><<<T, rmsnorm_detail::kThreads, 0, stream>>>(x, w, out, C, eps);
  }
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
