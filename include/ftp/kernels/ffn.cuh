// Element-wise and row kernels of the FFN executors. M rows are either gathered through a token
// index (rows[m], pruned layers) or contiguous from `first_row` (dense path: rows == nullptr).
// All arithmetic in fp32; each output is rounded to T once.
#pragma once

#include <cstdint>

#include "ftp/types.cuh"

namespace ftp::kernels {

constexpr int kRowThreads = 256;

__device__ inline std::int64_t token_of(const int* rows, int first_row, int m) {
  return rows != nullptr ? rows[m] : static_cast<std::int64_t>(first_row) + m;
}

/// Fixed-order block sum (deterministic) for blocks of kRowThreads threads.
__device__ inline float block_sum(float value, float* scratch) {
  for (int offset = 16; offset > 0; offset /= 2) value += __shfl_xor_sync(0xffffffffu, value, offset);
  __syncthreads();  // scratch may still be read by a previous call
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = value;
  __syncthreads();
  float total = 0.0f;
  for (int w = 0; w < kRowThreads / 32; ++w) total += scratch[w];
  return total;
}

/// out[m, :] = RMSNorm(residual[token(m), :]) * weight: x / sqrt(mean(x^2) + eps) * w.
/// residual [T, C] (row stride), weight [C], out [M, C] contiguous. One block per row.
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    gather_rmsnorm_kernel(const T* residual, std::int64_t stride, const int* rows, int first_row, int hidden,
                          const T* weight, float eps, T* out) {
  __shared__ float scratch[kRowThreads / 32];
  const int m = blockIdx.x;
  const T* x = residual + token_of(rows, first_row, m) * stride;
  float sum_sq = 0.0f;
  for (int c = threadIdx.x; c < hidden; c += kRowThreads) {
    const float v = detail::to_float(x[c]);
    sum_sq = fmaf(v, v, sum_sq);
  }
  const float inv_rms = rsqrtf(block_sum(sum_sq, scratch) / hidden + eps);
  T* y = out + static_cast<std::int64_t>(m) * hidden;
  for (int c = threadIdx.x; c < hidden; c += kRowThreads) {
    y[c] = detail::from_float<T>(detail::to_float(x[c]) * inv_rms * detail::to_float(weight[c]));
  }
}

/// out[m, :] = LayerNorm(residual[token(m), :]) * weight + bias (bias may be null).
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    gather_layernorm_kernel(const T* residual, std::int64_t stride, const int* rows, int first_row, int hidden,
                            const T* weight, const T* bias, float eps, T* out) {
  __shared__ float scratch[kRowThreads / 32];
  const int m = blockIdx.x;
  const T* x = residual + token_of(rows, first_row, m) * stride;
  float sum = 0.0f;
  for (int c = threadIdx.x; c < hidden; c += kRowThreads) sum += detail::to_float(x[c]);
  const float mean = block_sum(sum, scratch) / hidden;
  float sum_sq = 0.0f;
  for (int c = threadIdx.x; c < hidden; c += kRowThreads) {
    const float v = detail::to_float(x[c]) - mean;
    sum_sq = fmaf(v, v, sum_sq);
  }
  const float inv_std = rsqrtf(block_sum(sum_sq, scratch) / hidden + eps);
  T* y = out + static_cast<std::int64_t>(m) * hidden;
  for (int c = threadIdx.x; c < hidden; c += kRowThreads) {
    const float b = bias != nullptr ? detail::to_float(bias[c]) : 0.0f;
    y[c] = detail::from_float<T>((detail::to_float(x[c]) - mean) * inv_std * detail::to_float(weight[c]) + b);
  }
}

/// out[m, :] = residual[token(m), :] (plain gather, for user FFNs). out [M, C].
template <class T>
__global__ void gather_rows_kernel(const T* residual, std::int64_t stride, const int* rows, int first_row,
                                   int hidden, T* out) {
  const int m = blockIdx.x;
  const T* x = residual + token_of(rows, first_row, m) * stride;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) out[static_cast<std::int64_t>(m) * hidden + c] = x[c];
}

/// act[m, i] = silu(gate) * up with gate = gate_up[m, i], up = gate_up[m, I + i].
/// gate_up [M, 2I], act [M, I]. Grid-stride over groups of kVector consecutive i: with
/// kVector = 16 / sizeof(T) each thread moves 16 bytes per load and store (the caller checks that
/// I is a multiple of kVector; the buffers are 256-byte aligned workspace slices), which took this
/// memory-bound step from 1.2 to ~2.5 TB/s on an H100. kVector = 1 is the plain fallback.
template <class T, int kVector>
__global__ void swiglu_kernel(const T* gate_up, int M, int ffn, T* act) {
  struct alignas(sizeof(T) * kVector) Pack {
    T v[kVector];
  };
  const int groups = ffn / kVector;
  const std::int64_t total = static_cast<std::int64_t>(M) * groups;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t m = idx / groups, i = (idx % groups) * kVector;
    const Pack g = *reinterpret_cast<const Pack*>(gate_up + m * 2 * ffn + i);
    const Pack u = *reinterpret_cast<const Pack*>(gate_up + m * 2 * ffn + ffn + i);
    Pack out;
#pragma unroll
    for (int j = 0; j < kVector; ++j) {
      const float gj = detail::to_float(g.v[j]);
      out.v[j] = detail::from_float<T>(gj / (1.0f + expf(-gj)) * detail::to_float(u.v[j]));
    }
    *reinterpret_cast<Pack*>(act + m * ffn + i) = out;
  }
}

/// x[m, i] = gelu_tanh(x[m, i] + bias[i]) in place (bias may be null). x [M, I].
/// GELU tanh approximation, as GPT-2 ("gelu_new").
template <class T>
__global__ void bias_gelu_kernel(T* x, const T* bias, int M, int ffn) {
  const std::int64_t total = static_cast<std::int64_t>(M) * ffn;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    float v = detail::to_float(x[idx]) + (bias != nullptr ? detail::to_float(bias[idx % ffn]) : 0.0f);
    const float k0 = 0.7978845608028654f;  // sqrt(2/pi)
    v = 0.5f * v * (1.0f + tanhf(k0 * (v + 0.044715f * v * v * v)));
    x[idx] = detail::from_float<T>(v);
  }
}

/// residual[token(m), c] += delta[m, c] (+ bias[c]), rounded once. delta [M, C] fp32.
/// Token rows are distinct, so no atomics are needed.
template <class T>
__global__ void scatter_add_kernel(T* residual, std::int64_t stride, const int* rows, int first_row, int hidden,
                                   const float* delta, const T* bias) {
  const int m = blockIdx.x;
  T* x = residual + token_of(rows, first_row, m) * stride;
  const float* d = delta + static_cast<std::int64_t>(m) * hidden;
  for (int c = threadIdx.x; c < hidden; c += blockDim.x) {
    const float b = bias != nullptr ? detail::to_float(bias[c]) : 0.0f;
    x[c] = detail::from_float<T>(detail::to_float(x[c]) + (d[c] + b));
  }
}

}  // namespace ftp::kernels
