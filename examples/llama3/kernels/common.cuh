// Shared helpers of the Llama runner's kernels: error checks, bf16 conversion, 16-byte vector
// loads and stores, small integer helpers.
//
// Shape legend used by every kernel comment in this folder:
//   B sequences, T packed tokens (sum of the B lengths), L one sequence's length, C hidden size,
//   Hq / Hkv query / key-value heads, d head size, V vocabulary size, S KV-cache capacity.
// Tensors are row-major; "[T, Hq, d]" means token-major, then head, then the head's d elements.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace llama3::kernels {

using bf16 = __nv_bfloat16;

namespace detail {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("CUDA error ") + cudaGetErrorName(status) + " (" +
                             cudaGetErrorString(status) + ") in " + call + " at " + file + ":" +
                             std::to_string(line));
  }
}

/// Throws std::invalid_argument("<where>: <what>") when `ok` is false.
inline void require(bool ok, const char* where, const std::string& what) {
  if (!ok) throw std::invalid_argument(std::string(where) + ": " + what);
}

inline bool aligned16(const void* p) { return (reinterpret_cast<std::uintptr_t>(p) & 15u) == 0; }

}  // namespace detail

/// Wraps a CUDA runtime call; throws std::runtime_error carrying cudaGetErrorString on failure.
#define LLAMA3_CUDA_CHECK(call) ::llama3::kernels::detail::check_cuda((call), #call, __FILE__, __LINE__)
/// Checks the last kernel launch (configuration errors surface here, not at the next sync).
#define LLAMA3_CUDA_CHECK_LAUNCH() \
  ::llama3::kernels::detail::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)

template <class I>
__host__ __device__ constexpr I ceil_div(I a, I b) {
  return (a + b - 1) / b;
}

// ---- scalar conversion: every kernel computes in fp32 --------------------------------------------

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(bf16 x) { return __bfloat162float(x); }

template <class T>
__device__ __forceinline__ T from_float(float x);
template <>
__device__ __forceinline__ float from_float<float>(float x) { return x; }
template <>
__device__ __forceinline__ bf16 from_float<bf16>(float x) { return __float2bfloat16_rn(x); }

/// Two floats -> one 32-bit word of two bf16 (low half = a, the lower address), round to nearest.
__device__ __forceinline__ std::uint32_t pack_bf16x2(float a, float b) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(a, b);  // .x = a (low), .y = b (high)
  return *reinterpret_cast<const std::uint32_t*>(&v);
}

__device__ __forceinline__ float2 unpack_bf16x2(std::uint32_t w) {
  __nv_bfloat162 v;
  *reinterpret_cast<std::uint32_t*>(&v) = w;
  return __bfloat1622float2(v);
}

// ---- 8-element vectors: one 16-byte access for bf16, two for fp32 --------------------------------
// Callers guarantee 16-byte alignment (launchers check base pointers and that strides are multiples
// of 8 elements).

template <class T>
__device__ __forceinline__ void load8(const T* p, float (&v)[8]);

template <>
__device__ __forceinline__ void load8<float>(const float* p, float (&v)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  const float4 b = *reinterpret_cast<const float4*>(p + 4);
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
  v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

template <>
__device__ __forceinline__ void load8<bf16>(const bf16* p, float (&v)[8]) {
  const uint4 w = *reinterpret_cast<const uint4*>(p);
  float2 f;
  f = unpack_bf16x2(w.x); v[0] = f.x; v[1] = f.y;
  f = unpack_bf16x2(w.y); v[2] = f.x; v[3] = f.y;
  f = unpack_bf16x2(w.z); v[4] = f.x; v[5] = f.y;
  f = unpack_bf16x2(w.w); v[6] = f.x; v[7] = f.y;
}

template <class T>
__device__ __forceinline__ void store8(T* p, const float (&v)[8]);

template <>
__device__ __forceinline__ void store8<float>(float* p, const float (&v)[8]) {
  *reinterpret_cast<float4*>(p) = make_float4(v[0], v[1], v[2], v[3]);
  *reinterpret_cast<float4*>(p + 4) = make_float4(v[4], v[5], v[6], v[7]);
}

template <>
__device__ __forceinline__ void store8<bf16>(bf16* p, const float (&v)[8]) {
  uint4 w;
  w.x = pack_bf16x2(v[0], v[1]);
  w.y = pack_bf16x2(v[2], v[3]);
  w.z = pack_bf16x2(v[4], v[5]);
  w.w = pack_bf16x2(v[6], v[7]);
  *reinterpret_cast<uint4*>(p) = w;
}

// ---- warp reductions -----------------------------------------------------------------------------

__device__ __forceinline__ float warp_sum(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}

__device__ __forceinline__ float warp_max(float x) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

}  // namespace llama3::kernels
