// Rotary position embedding (RoPE) applied in place to queries and keys.
#pragma once

#include <cmath>
#include <optional>
#include <vector>

#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

/// Which elements of a head form the rotated pairs.
enum class RopeStyle {
  Adjacent,   ///< pairs (2i, 2i+1): llama.cpp's "normal" RoPE; GGUF Llama weights need this one.
  HalfSplit,  ///< pairs (i, i + d/2): GPT-NeoX / HF transformers / Qwen2.
};

/// Llama 3.1 frequency scaling ("rope_type": "llama3" in HF config, rope_scaling in GGUF metadata).
struct Llama3RopeScaling {
  double factor = 8.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  double original_max_position = 8192.0;
};

/// Host: the [d/2] table inv_freq[i] = theta^(-2i/d), with llama3 scaling when given (same formula
/// as HF's _compute_llama3_parameters): wavelengths longer than original_max/low_freq_factor are
/// divided by `factor`, shorter than original_max/high_freq_factor kept, and the band between
/// interpolated smoothly. Computed in double, stored as float.
inline std::vector<float> rope_inv_freq(int head_dim, double theta, std::optional<Llama3RopeScaling> scaling = {}) {
  detail::require(head_dim > 0 && head_dim % 2 == 0, "rope_inv_freq", "head_dim must be even and > 0");
  detail::require(theta > 0, "rope_inv_freq", "theta must be > 0");
  const double kPi = 3.14159265358979323846;
  std::vector<float> inv(head_dim / 2);
  for (int i = 0; i < head_dim / 2; ++i) {
    double f = 1.0 / std::pow(theta, (2.0 * i) / head_dim);
    if (scaling) {
      const Llama3RopeScaling& s = *scaling;
      const double low_wavelen = s.original_max_position / s.low_freq_factor;
      const double high_wavelen = s.original_max_position / s.high_freq_factor;
      const double wavelen = 2.0 * kPi / f;
      if (wavelen > low_wavelen) {
        f = f / s.factor;
      } else if (wavelen >= high_wavelen) {  // medium band: neither < high nor > low
        const double smooth =
            (s.original_max_position / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
    inv[i] = static_cast<float>(f);
  }
  return inv;
}

// rope_kernel: rotates, in place, every pair (x_a, x_b) of every head of q [T, Hq, d] and
// k [T, Hkv, d] (bf16; token rows `q_row_stride` / `k_row_stride` elements apart, heads d apart):
//   angle = float(pos[t]) * inv_freq[i]    (fp32 product, then sincosf with full range reduction)
//   x_a' = x_a cos - x_b sin,  x_b' = x_a sin + x_b cos,   rounded to bf16 once.
// Pair i is (2i, 2i+1) for Adjacent and (i, i + d/2) for HalfSplit; i < d/2.
// Precision: the fp32 product pos*inv_freq carries a relative error of 2^-24, i.e. up to
// pos * 6e-8 rad (8e-3 rad at pos = 131072): the same rounding HF's fp32 path makes. Using sincosf
// (not __sincosf) keeps the sine itself accurate to ~1 ulp for large angles.
// One thread per pair; positions come from `pos` [T] int32 so ragged batches and decode steps work.
template <RopeStyle kStyle>
__global__ void rope_kernel(bf16* __restrict__ q, std::int64_t q_row_stride, int Hq, bf16* __restrict__ k,
                            std::int64_t k_row_stride, int Hkv, const int* __restrict__ pos,
                            const float* __restrict__ inv_freq, int T, int d) {
  const int half = d / 2;
  const int heads = Hq + Hkv;
  const std::int64_t total = static_cast<std::int64_t>(T) * heads * half;
  for (std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; idx < total;
       idx += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int i = static_cast<int>(idx % half);
    const std::int64_t th = idx / half;
    const int h = static_cast<int>(th % heads);
    const int t = static_cast<int>(th / heads);
    bf16* head = h < Hq ? q + t * q_row_stride + static_cast<std::int64_t>(h) * d
                        : k + t * k_row_stride + static_cast<std::int64_t>(h - Hq) * d;
    const float angle = static_cast<float>(pos[t]) * inv_freq[i];
    float s, c;
    sincosf(angle, &s, &c);
    if constexpr (kStyle == RopeStyle::Adjacent) {
      __nv_bfloat162* p = reinterpret_cast<__nv_bfloat162*>(head + 2 * i);
      const float2 x = __bfloat1622float2(*p);
      *p = __floats2bfloat162_rn(x.x * c - x.y * s, x.x * s + x.y * c);
    } else {
      const float a = __bfloat162float(head[i]);
      const float b = __bfloat162float(head[i + half]);
      head[i] = __float2bfloat16_rn(a * c - b * s);
      head[i + half] = __float2bfloat16_rn(a * s + b * c);
    }
  }
}

/// Applies RoPE in place to q [T, Hq, d] and k [T, Hkv, d] (either may be null with its head count
/// 0). pos [T] int32 and inv_freq [d/2] float are device arrays (inv_freq from rope_inv_freq()).
template <RopeStyle kStyle>
void launch_rope(bf16* q, std::int64_t q_row_stride, int Hq, bf16* k, std::int64_t k_row_stride, int Hkv,
                 const int* pos, const float* inv_freq, int T, int d, cudaStream_t stream) {
  constexpr const char* where = "launch_rope";
  detail::require(T >= 0 && Hq >= 0 && Hkv >= 0, where, "T, Hq and Hkv must be >= 0");
  detail::require(d > 0 && d % 2 == 0, where, "d must be even and > 0, got " + std::to_string(d));
  detail::require(q_row_stride >= static_cast<std::int64_t>(Hq) * d, where, "q_row_stride < Hq * d");
  detail::require(k_row_stride >= static_cast<std::int64_t>(Hkv) * d, where, "k_row_stride < Hkv * d");
  if (T == 0 || Hq + Hkv == 0) return;
  detail::require((Hq == 0 || q != nullptr) && (Hkv == 0 || k != nullptr) && pos != nullptr && inv_freq != nullptr,
                  where, "null pointer");
  if (kStyle == RopeStyle::Adjacent) {  // bf16x2 accesses
    detail::require(q_row_stride % 2 == 0 && k_row_stride % 2 == 0, where, "row strides must be even");
    detail::require((reinterpret_cast<std::uintptr_t>(q) & 3u) == 0 && (reinterpret_cast<std::uintptr_t>(k) & 3u) == 0,
                    where, "q and k must be 4-byte aligned");
  }
  const int threads = 256;
  const std::int64_t work = static_cast<std::int64_t>(T) * (Hq + Hkv) * (d / 2);
  const int blocks = static_cast<int>(std::min<std::int64_t>(ceil_div<std::int64_t>(work, threads), 65535LL * 16));
  rope_kernel<kStyle><<<blocks, threads, 0, stream>>>(q, q_row_stride, Hq, k, k_row_stride, Hkv, pos, inv_freq, T, d);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
