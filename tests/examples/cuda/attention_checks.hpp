// Checks shared by the runner's attention-kernel tests (wgmma, cuDNN): a bf16 output against an
// fp32 reference, and the poisoned guard rows past T that a kernel must leave untouched.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llama3/kernels/host_oracle.hpp"

namespace ftp_test {

/// The first n elements of a bf16 output (raw bits) against an fp32 reference: CHECKs that every
/// element is finite, that the relative L2 error is < 1e-2 and that no element is off by more than
/// 1e-2 |ref| + 1e-2 (bf16 output rounding, 2^-9 relative, plus bf16 P, 2^-9 per weight: ~2.5x
/// slack). The error, the largest |difference| and the first bad index are CAPTUREd.
inline void check_bf16_output(const std::vector<std::uint16_t>& out_bits, const std::vector<float>& ref,
                              std::size_t n) {
  std::size_t nonfinite = 0, bad = 0, first_bad = n;
  double num = 0, den = 0, max_abs = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const float o = llama3::host_oracle::bf16_to_float(out_bits[i]);
    if (!std::isfinite(o) || !std::isfinite(ref[i])) {
      ++nonfinite;
      continue;
    }
    const double e = std::abs(static_cast<double>(o) - ref[i]);
    num += e * e;
    den += static_cast<double>(ref[i]) * ref[i];
    max_abs = std::max(max_abs, e);
    if (e > 1e-2 * std::abs(ref[i]) + 1e-2) {
      if (bad++ == 0) first_bad = i;
    }
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  CAPTURE(rel); CAPTURE(max_abs); CAPTURE(first_bad);
  CHECK(nonfinite == 0);
  CHECK(rel < 1e-2);
  CHECK(bad == 0);
}

/// CHECKs that the guard elements past the first n_out of out (poisoned 0xFFFF) and past the first
/// n_lse of lse (poisoned 0xFFFFFFFF) were never written.
inline void check_guards_untouched(const std::vector<std::uint16_t>& out_bits, std::size_t n_out,
                                   const std::vector<float>& lse, std::size_t n_lse) {
  std::size_t guard_written = 0;
  for (std::size_t i = n_out; i < out_bits.size(); ++i) guard_written += out_bits[i] != 0xFFFFu;
  for (std::size_t i = n_lse; i < lse.size(); ++i) {
    std::uint32_t bits;
    std::memcpy(&bits, &lse[i], sizeof bits);
    guard_written += bits != 0xFFFFFFFFu;
  }
  CHECK(guard_written == 0);
}

}  // namespace ftp_test
