// The runner's own small kernels (synthetic weight fill, q/k/v bias); the forward pass's other
// kernels live in kernels/. Apart from DeviceModel so they can be launched and read on their own.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "llama3/kernels/common.cuh"
#include "llama3/synthetic_weights.cuh"

namespace llama3 {

using kernels::bf16;

// ---- small kernels of the forward pass -----------------------------------------------------------

namespace model_kernels {

// fill_synthetic_kernel: w[i] = bf16(synthetic_value(seed, tensor, i, offset, scale)), i < n.
//   w [n] bf16. Grid-stride, one element per thread and step.
template <int kUnused = 0>
__global__ void fill_synthetic_kernel(bf16* __restrict__ w, std::int64_t n, std::uint64_t seed, std::uint32_t tensor,
                                      float offset, float scale) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    w[i] = __float2bfloat16_rn(synthetic_value(seed, tensor, static_cast<std::uint64_t>(i), offset, scale));
  }
}

// add_bias_kernel: x[t, j] = bf16(x[t, j] + b[j]) for t < T, j < n (Qwen2's q/k/v biases).
//   x [T, n] bf16 (row stride n), b [n] bf16. The GEMM already rounded x once; the second rounding
//   is within bf16 tolerance of HF's fused bias.
template <int kUnused = 0>
__global__ void add_bias_kernel(bf16* __restrict__ x, const bf16* __restrict__ b, int T, int n) {
  const std::int64_t total = static_cast<std::int64_t>(T) * n;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    x[i] = __float2bfloat16_rn(__bfloat162float(x[i]) + __bfloat162float(b[i % n]));
  }
}

inline unsigned grid_for(std::int64_t items, int threads) {
  return static_cast<unsigned>(std::max<std::int64_t>(1, std::min<std::int64_t>((items + threads - 1) / threads, 65535LL * 16)));
}

}  // namespace model_kernels

}  // namespace llama3
