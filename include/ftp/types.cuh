// Element types the library runs on (bf16, fp16, fp32) and their conversions and cuBLAS tags.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <library_types.h>

#include <type_traits>

namespace ftp {

/// Element types accepted for activations and weights.
template <class T>
inline constexpr bool is_supported_element_v =
    std::is_same_v<T, float> || std::is_same_v<T, __half> || std::is_same_v<T, __nv_bfloat16>;

namespace detail {

template <class T>
struct ElementTraits;

template <>
struct ElementTraits<float> {
  static constexpr cudaDataType_t cuda_type = CUDA_R_32F;
  static constexpr const char* name = "fp32";
  __host__ __device__ static float to_float(float x) { return x; }
  __host__ __device__ static float from_float(float x) { return x; }
};

template <>
struct ElementTraits<__half> {
  static constexpr cudaDataType_t cuda_type = CUDA_R_16F;
  static constexpr const char* name = "fp16";
  __host__ __device__ static float to_float(__half x) { return __half2float(x); }
  __host__ __device__ static __half from_float(float x) { return __float2half_rn(x); }
};

template <>
struct ElementTraits<__nv_bfloat16> {
  static constexpr cudaDataType_t cuda_type = CUDA_R_16BF;
  static constexpr const char* name = "bf16";
  __host__ __device__ static float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
  __host__ __device__ static __nv_bfloat16 from_float(float x) { return __float2bfloat16_rn(x); }
};

template <class T>
__host__ __device__ inline float to_float(T x) {
  return ElementTraits<T>::to_float(x);
}

template <class T>
__host__ __device__ inline T from_float(float x) {
  return ElementTraits<T>::from_float(x);
}

}  // namespace detail
}  // namespace ftp
