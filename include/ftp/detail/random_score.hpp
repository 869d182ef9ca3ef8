// The seeded hash behind RandomScorer, shared by the kernel and the host reference (it is the
// definition of the scores, so both must compute it bit for bit alike).
#pragma once

#include <cstdint>

#include "ftp/detail/host_device.hpp"

namespace ftp::detail {

/// SplitMix64 finalizer (Steele, Lea, Flood 2014): a bijective 64-bit mix.
FTP_HOST_DEVICE inline std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

/// Uniform score in [0, 1) with 24 random bits (exact in float) for (seed, layer, sequence,
/// position within the sequence): independent of where the sequence sits in the batch.
FTP_HOST_DEVICE inline float random_score(std::uint64_t seed, int layer, int sequence, int position) {
  std::uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ static_cast<std::uint32_t>(layer));
  h = splitmix64(h ^ static_cast<std::uint32_t>(sequence));
  h = splitmix64(h ^ static_cast<std::uint32_t>(position));
  return static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
}

}  // namespace ftp::detail
