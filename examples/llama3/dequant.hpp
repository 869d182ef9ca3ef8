// Dequantization of GGUF tensor data (F32, F16, BF16, Q8_0, Q4_0, Q4_1) to float and to bf16.
//
// Block layouts (ggml; all little-endian, fp16 = IEEE binary16), 32 elements per block:
//   Q8_0: fp16 d | int8 q[32]                value[i] = q[i] * d
//   Q4_0: fp16 d | uint8 qs[16]              value[j] = (lo(qs[j]) - 8) * d, value[j+16] = (hi(qs[j]) - 8) * d
//   Q4_1: fp16 d | fp16 m | uint8 qs[16]     value[j] = lo(qs[j]) * d + m,   value[j+16] = hi(qs[j]) * d + m
// where lo/hi are the low/high nibbles: low nibbles hold elements 0..15, high nibbles 16..31.
// Values are computed in float (as ggml and gguf-py do) and rounded once to bf16 where asked.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "llama3/bf16.hpp"
#include "llama3/gguf.hpp"

namespace llama3 {

/// Widens an IEEE half (binary16) to float; exact, including subnormals, inf and NaN.
inline float float_from_fp16(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu;
  const uint32_t mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0) {
    if (mantissa == 0) {
      bits = sign;
    } else {
      // Subnormal: mantissa * 2^-24, exactly representable as a normal float.
      float v = float(mantissa) * (1.0f / 16777216.0f);
      std::memcpy(&bits, &v, sizeof bits);
      bits |= sign;
    }
  } else if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);
  } else {
    // Rebias the exponent from 15 to 127.
    bits = sign | ((exponent + (127 - 15)) << 23) | (mantissa << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// True for the types dequantize_to_float / dequantize_to_bf16 handle.
inline bool can_dequantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1:
      return true;
    default:
      return false;
  }
}

namespace detail {

inline uint16_t load_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr int kQBlock = 32;  // elements per Q8_0 / Q4_0 / Q4_1 block

/// Dequantizes one 32-element block of a block-quantized type to float.
inline void dequantize_block(GgmlType t, const uint8_t* b, float* y) {
  switch (t) {
    case GgmlType::Q8_0: {
      const float d = float_from_fp16(load_u16(b));
      const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
      for (int i = 0; i < kQBlock; ++i) y[i] = float(q[i]) * d;
      break;
    }
    case GgmlType::Q4_0: {
      const float d = float_from_fp16(load_u16(b));
      const uint8_t* qs = b + 2;
      for (int j = 0; j < kQBlock / 2; ++j) {
        y[j] = float(int(qs[j] & 0x0f) - 8) * d;
        y[j + kQBlock / 2] = float(int(qs[j] >> 4) - 8) * d;
      }
      break;
    }
    case GgmlType::Q4_1: {
      const float d = float_from_fp16(load_u16(b));
      const float m = float_from_fp16(load_u16(b + 2));
      const uint8_t* qs = b + 4;
      for (int j = 0; j < kQBlock / 2; ++j) {
        y[j] = float(qs[j] & 0x0f) * d + m;
        y[j + kQBlock / 2] = float(qs[j] >> 4) * d + m;
      }
      break;
    }
    default:
      break;
  }
}

[[noreturn]] inline void unsupported(GgmlType t) {
  throw LoadError("dequantize: tensor type " + ggml_type_name(t) +
                  " is not supported: expected F32, F16, BF16, Q8_0, Q4_0 or Q4_1");
}

inline void check_count(GgmlType t, uint64_t n) {
  const GgmlTypeTraits* traits = ggml_type_traits(static_cast<uint32_t>(t));
  if (traits && n % traits->block_size != 0) {
    throw LoadError(cat("dequantize: ", n, " elements of ", traits->name,
                        " is not a whole number of blocks of ", traits->block_size));
  }
}

}  // namespace detail

/// Dequantizes `n` elements of type `t` at `src` into `dst` (float). `n` must be a whole number
/// of blocks. Throws LoadError for types not listed in can_dequantize.
inline void dequantize_to_float(GgmlType t, const uint8_t* src, uint64_t n, float* dst) {
  if (!can_dequantize(t)) detail::unsupported(t);
  detail::check_count(t, n);
  switch (t) {
    case GgmlType::F32:
      std::memcpy(dst, src, n * sizeof(float));
      return;
    case GgmlType::F16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = float_from_fp16(detail::load_u16(src + 2 * i));
      return;
    case GgmlType::BF16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = float_from_bf16(detail::load_u16(src + 2 * i));
      return;
    default: {
      const uint32_t block_bytes = ggml_type_traits(static_cast<uint32_t>(t))->block_bytes;
      for (uint64_t b = 0; b < n / detail::kQBlock; ++b) {
        detail::dequantize_block(t, src + b * block_bytes, dst + b * detail::kQBlock);
      }
      return;
    }
  }
}

/// Dequantizes `n` elements of type `t` at `src` into bf16 bits at `dst`, rounding each value
/// (computed in float) to nearest even. BF16 input is copied unchanged.
inline void dequantize_to_bf16(GgmlType t, const uint8_t* src, uint64_t n, uint16_t* dst) {
  if (!can_dequantize(t)) detail::unsupported(t);
  detail::check_count(t, n);
  switch (t) {
    case GgmlType::BF16:
      std::memcpy(dst, src, n * sizeof(uint16_t));
      return;
    case GgmlType::F32:
      for (uint64_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, src + 4 * i, sizeof v);
        dst[i] = bf16_from_float(v);
      }
      return;
    case GgmlType::F16:
      for (uint64_t i = 0; i < n; ++i) dst[i] = bf16_from_float(float_from_fp16(detail::load_u16(src + 2 * i)));
      return;
    default: {
      const uint32_t block_bytes = ggml_type_traits(static_cast<uint32_t>(t))->block_bytes;
      float block[detail::kQBlock];
      for (uint64_t b = 0; b < n / detail::kQBlock; ++b) {
        detail::dequantize_block(t, src + b * block_bytes, block);
        for (int i = 0; i < detail::kQBlock; ++i) dst[b * detail::kQBlock + i] = bf16_from_float(block[i]);
      }
      return;
    }
  }
}

/// The whole tensor `t` of `file` as bf16, in GGUF element order (ne[0] fastest).
/// Errors name the tensor.
inline std::vector<uint16_t> tensor_to_bf16(const GgufFile& file, const TensorInfo& t) {
  std::vector<uint16_t> out(static_cast<size_t>(t.n_elements));
  try {
    dequantize_to_bf16(t.type, file.tensor_data(t), t.n_elements, out.data());
  } catch (const LoadError& e) {
    throw LoadError("tensor '" + t.name + "': " + e.what());
  }
  return out;
}

/// The whole tensor `t` of `file` as float, in GGUF element order. Errors name the tensor.
inline std::vector<float> tensor_to_float(const GgufFile& file, const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.n_elements));
  try {
    dequantize_to_float(t.type, file.tensor_data(t), t.n_elements, out.data());
  } catch (const LoadError& e) {
    throw LoadError("tensor '" + t.name + "': " + e.what());
  }
  return out;
}

}  // namespace llama3
