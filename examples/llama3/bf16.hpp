// bf16 <-> float conversion on the host. A bf16 is kept as its raw 16 bits in a uint16_t: the top
// half of an IEEE float32 (sign, 8 exponent bits, 7 mantissa bits).
#pragma once

#include <cstdint>
#include <cstring>

namespace llama3 {

/// Widens a bf16 to float; exact (every bf16 is a float with 16 zero low bits).
inline float float_from_bf16(uint16_t h) {
  const uint32_t bits = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

/// Rounds a float to the nearest bf16, ties to even, as the hardware conversion does.
/// NaN stays NaN (quiet bit set so rounding cannot turn it into infinity); overflow goes to inf.
inline uint16_t bf16_from_float(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return uint16_t((bits >> 16) | 0x0040u);
  // Adding 0x7fff rounds up when the dropped half exceeds one half ulp; adding the kept lsb on
  // top breaks exact ties toward the even result.
  bits += 0x7fffu + ((bits >> 16) & 1u);
  return uint16_t(bits >> 16);
}

}  // namespace llama3
