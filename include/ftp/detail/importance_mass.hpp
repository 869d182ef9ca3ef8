// Fixed-point importance masses: the cumulative-eta rule on integers, so that a prefix sum gives
// the same bits whatever order a parallel scan adds in, and host and device select identical sets.
//
// Why: with float prefix sums, CUB's scan (tile-wise, look-back) and a sequential host loop round
// differently, and one ulp can move a token across the eta threshold. Here each sorted score s of a
// segment of n middle tokens with maximum s_max = m * 2^e (0.5 <= m < 1) becomes
//     q = floor(s * 2^(53 - ceil(log2 n) - e)),
// an exact power-of-two scaling followed by truncation. Every q < 2^(53 - ceil(log2 n)), so the
// segment total stays below 2^53 and is exact both as uint64 and as double. Resolution: a token
// whose score is below 2^-(53 - ceil(log2 n)) of the maximum (about 1e-11 at n = 32k) has mass 0.
// The threshold is ceil(eta * total), computed in double (exact inputs, one IEEE rounding).
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "ftp/detail/host_device.hpp"

namespace ftp::detail {

/// Smallest b with 2^b >= n (n >= 1); 0 for n <= 1.
FTP_HOST_DEVICE inline int ceil_log2(std::uint64_t n) {
  int bits = 0;
  while (bits < 63 && (std::uint64_t{1} << bits) < n) ++bits;
  return bits;
}

/// True for the scores the cumulative rules accept: finite and >= 0 (NaN fails both tests).
FTP_HOST_DEVICE inline bool is_valid_score(float s) { return s >= 0.0f && s <= FLT_MAX; }

/// Maps -0 to +0 so that radix sort (which orders -0 below +0) and host comparison agree on ties.
FTP_HOST_DEVICE inline float canonical_score(float s) { return s == 0.0f ? 0.0f : s; }

/// Binary exponent applied to every score of a segment with maximum `max_score` and `count` members.
FTP_HOST_DEVICE inline int mass_exponent(float max_score, int count) {
  if (!(max_score > 0.0f) || count <= 0) return 0;
  int exponent = 0;
  frexpf(max_score, &exponent);  // max_score = m * 2^exponent, 0.5 <= m < 1
  return 53 - ceil_log2(static_cast<std::uint64_t>(count)) - exponent;
}

/// Fixed-point mass of one valid score (exact scaling by 2^exponent, then truncation).
FTP_HOST_DEVICE inline std::uint64_t quantize_mass(float score, int exponent) {
  return static_cast<std::uint64_t>(floor(ldexp(static_cast<double>(score), exponent)));
}

/// Smallest integer mass the kept tokens must reach: ceil(eta * total). Never exceeds total.
FTP_HOST_DEVICE inline std::uint64_t eta_threshold(std::uint64_t total, double eta) {
  return static_cast<std::uint64_t>(ceil(eta * static_cast<double>(total)));
}

/// Number of top-ranked tokens TopRatio keeps of `count`: ceil(ratio * count).
FTP_HOST_DEVICE inline long long ratio_keep_count(double ratio, int count) {
  return static_cast<long long>(ceil(ratio * static_cast<double>(count)));
}

}  // namespace ftp::detail
