// Dequantization of GGUF tensor data (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K, Q6_K) to float
// and to bf16.
//
// Block layouts (ggml; all little-endian, fp16 = IEEE binary16). 32 elements per block:
//   Q8_0: fp16 d | int8 q[32]                value[i] = q[i] * d
//   Q4_0: fp16 d | uint8 qs[16]              value[j] = (lo(qs[j]) - 8) * d, value[j+16] = (hi(qs[j]) - 8) * d
//   Q4_1: fp16 d | fp16 m | uint8 qs[16]     value[j] = lo(qs[j]) * d + m,   value[j+16] = hi(qs[j]) * d + m
//   Q5_0: fp16 d | uint8 qh[4] | uint8 qs[16]
//         qh is a little-endian uint32 holding the 5th bit of element i in bit i:
//         value[j] = ((lo(qs[j]) | bit(qh, j) << 4) - 16) * d,
//         value[j+16] = ((hi(qs[j]) | bit(qh, j+16) << 4) - 16) * d
// where lo/hi are the low/high nibbles: low nibbles hold elements 0..15, high nibbles 16..31.
//
// 256 elements per block ("k-quants"), in sub-blocks that each have their own scale:
//   Q4_K: fp16 d | fp16 dmin | uint8 scales[12] | uint8 qs[128]   (144 bytes)
//         8 sub-blocks of 32, each with a 6-bit scale sc[s] and a 6-bit min m[s] packed in `scales`:
//           s < 4:  sc[s] = scales[s] & 63,  m[s] = scales[s+4] & 63
//           s >= 4: sc[s] = lo(scales[s+4]) | (scales[s-4] >> 6) << 4,
//                   m[s]  = hi(scales[s+4]) | (scales[s]   >> 6) << 4
//         Elements 64g .. 64g+63 (g = 0..3) come from the 32 bytes qs[32g ..]: the low nibbles are
//         sub-block 2g, the high nibbles sub-block 2g+1:
//           value[64g + l]      = (d * sc[2g])   * lo(qs[32g + l]) - dmin * m[2g]
//           value[64g + 32 + l] = (d * sc[2g+1]) * hi(qs[32g + l]) - dmin * m[2g+1]
//   Q6_K: uint8 ql[128] | uint8 qh[64] | int8 scales[16] | fp16 d   (210 bytes)
//         6-bit values q = (4 bits from ql) | (2 bits from qh) << 4, minus 32; 16 sub-blocks of 16
//         elements, value[i] = (d * scales[i / 16]) * q[i]. Each half h (elements 128h ..) uses
//         ql[64h ..], qh[32h ..]; within it, for l < 32:
//           element l:      lo(ql[l])      | bits 0-1 of qh[l]     element 64 + l: hi(ql[l])      | bits 4-5 of qh[l]
//           element 32 + l: lo(ql[l + 32]) | bits 2-3 of qh[l]     element 96 + l: hi(ql[l + 32]) | bits 6-7 of qh[l]
//
// Values are computed in float in the order written above, which is that of ggml and of gguf-py's
// numpy code (the k-quants form d * sc and dmin * m first). Every product is exact in float: d has
// 11 significant bits and the integers it multiplies at most 12 (a Q6_K scale's 7 times a 6-bit
// quant's 5; Q8_0's int8 has 7, Q4_K's scale and nibble 6 + 4), at most 23 < 24 in all. So
// only the final addition of Q4_1 and subtraction of Q4_K round, once, and the results equal
// gguf.quants.dequantize bit for bit whatever the product order and whether or not the compiler
// fuses `a * b - c` into an FMA (tests/examples/host/test_dequant.cpp checks them against
// tests/fixtures/dequant_golden.json). Values are rounded once to bf16 where asked.
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

/// The types dequantize_to_float / dequantize_to_bf16 handle, as error messages list them.
inline constexpr const char* kDequantizableTypes = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q4_K or Q6_K";

/// True for the types dequantize_to_float / dequantize_to_bf16 handle.
inline bool can_dequantize(GgmlType t) {
  switch (t) {
    case GgmlType::F32: case GgmlType::F16: case GgmlType::BF16:
    case GgmlType::Q8_0: case GgmlType::Q4_0: case GgmlType::Q4_1: case GgmlType::Q5_0:
    case GgmlType::Q4_K: case GgmlType::Q6_K:
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

inline uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

constexpr int kMaxBlock = 256;  // the most elements in one block of a type dequantized here

// One block of each block-quantized type: `b` points at its bytes, `y` receives its elements
// (32 for Q8_0/Q4_0/Q4_1/Q5_0, 256 for Q4_K/Q6_K). Layouts and formulas: see the file comment.

inline void dequantize_q8_0(const uint8_t* b, float* y) {
  const float d = float_from_fp16(load_u16(b));
  const int8_t* q = reinterpret_cast<const int8_t*>(b + 2);
  for (int i = 0; i < 32; ++i) y[i] = float(q[i]) * d;
}

inline void dequantize_q4_0(const uint8_t* b, float* y) {
  const float d = float_from_fp16(load_u16(b));
  const uint8_t* qs = b + 2;
  for (int j = 0; j < 16; ++j) {
    y[j] = float(int(qs[j] & 0x0f) - 8) * d;
    y[j + 16] = float(int(qs[j] >> 4) - 8) * d;
  }
}

inline void dequantize_q4_1(const uint8_t* b, float* y) {
  const float d = float_from_fp16(load_u16(b));
  const float m = float_from_fp16(load_u16(b + 2));
  const uint8_t* qs = b + 4;
  for (int j = 0; j < 16; ++j) {
    y[j] = float(qs[j] & 0x0f) * d + m;
    y[j + 16] = float(qs[j] >> 4) * d + m;
  }
}

inline void dequantize_q5_0(const uint8_t* b, float* y) {
  const float d = float_from_fp16(load_u16(b));
  const uint32_t qh = load_u32(b + 2);
  const uint8_t* qs = b + 6;
  for (int j = 0; j < 16; ++j) {
    const int x0 = (qs[j] & 0x0f) | (int((qh >> j) & 1u) << 4);
    const int x1 = (qs[j] >> 4) | (int((qh >> (j + 16)) & 1u) << 4);
    y[j] = float(x0 - 16) * d;
    y[j + 16] = float(x1 - 16) * d;
  }
}

/// The 6-bit scale and min of sub-block `s` (0..7) from a Q4_K block's 12 packed scale bytes.
inline void q4_k_scale_min(const uint8_t* scales, int s, int& sc, int& m) {
  if (s < 4) {
    sc = scales[s] & 63;
    m = scales[s + 4] & 63;
  } else {
    sc = (scales[s + 4] & 0x0f) | ((scales[s - 4] >> 6) << 4);
    m = (scales[s + 4] >> 4) | ((scales[s] >> 6) << 4);
  }
}

inline void dequantize_q4_k(const uint8_t* b, float* y) {
  const float d = float_from_fp16(load_u16(b));
  const float dmin = float_from_fp16(load_u16(b + 2));
  const uint8_t* scales = b + 4;
  const uint8_t* qs = b + 16;
  for (int s = 0; s < 8; ++s) {  // sub-block s: nibbles (low for even s, high for odd) of qs[32 * (s / 2) ..]
    int sc, m;
    q4_k_scale_min(scales, s, sc, m);
    const float scale = d * float(sc);
    const float min = dmin * float(m);
    const uint8_t* q = qs + 32 * (s / 2);
    const int shift = 4 * (s % 2);
    for (int l = 0; l < 32; ++l) y[32 * s + l] = scale * float((q[l] >> shift) & 0x0f) - min;
  }
}

inline void dequantize_q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const int8_t* sc = reinterpret_cast<const int8_t*>(b + 192);
  const float d = float_from_fp16(load_u16(b + 208));
  for (int half = 0; half < 2; ++half, ql += 64, qh += 32, sc += 8, y += 128) {
    for (int l = 0; l < 32; ++l) {
      const int is = l / 16;
      const int q1 = ((ql[l] & 0x0f) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q2 = ((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      y[l] = (d * float(sc[is])) * float(q1);
      y[l + 32] = (d * float(sc[is + 2])) * float(q2);
      y[l + 64] = (d * float(sc[is + 4])) * float(q3);
      y[l + 96] = (d * float(sc[is + 6])) * float(q4);
    }
  }
}

/// Dequantizes one block (ggml_type_traits(t)->block_size elements) of a block-quantized type.
inline void dequantize_block(GgmlType t, const uint8_t* b, float* y) {
  switch (t) {
    case GgmlType::Q8_0: dequantize_q8_0(b, y); break;
    case GgmlType::Q4_0: dequantize_q4_0(b, y); break;
    case GgmlType::Q4_1: dequantize_q4_1(b, y); break;
    case GgmlType::Q5_0: dequantize_q5_0(b, y); break;
    case GgmlType::Q4_K: dequantize_q4_k(b, y); break;
    case GgmlType::Q6_K: dequantize_q6_k(b, y); break;
    default: break;  // callers pass only the block types of can_dequantize
  }
}

[[noreturn]] inline void unsupported(GgmlType t) {
  throw LoadError("dequantize: tensor type " + ggml_type_name(t) + " is not supported: expected " +
                  kDequantizableTypes);
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
    default: {  // block-quantized
      const GgmlTypeTraits& traits = *ggml_type_traits(static_cast<uint32_t>(t));
      for (uint64_t b = 0; b < n / traits.block_size; ++b) {
        detail::dequantize_block(t, src + b * traits.block_bytes, dst + b * traits.block_size);
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
    default: {  // block-quantized
      const GgmlTypeTraits& traits = *ggml_type_traits(static_cast<uint32_t>(t));
      float block[detail::kMaxBlock];
      for (uint64_t b = 0; b < n / traits.block_size; ++b) {
        detail::dequantize_block(t, src + b * traits.block_bytes, block);
        uint16_t* out = dst + b * traits.block_size;
        for (uint32_t i = 0; i < traits.block_size; ++i) out[i] = bf16_from_float(block[i]);
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
