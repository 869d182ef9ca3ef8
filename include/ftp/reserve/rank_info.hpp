// RankInfo: what a reserve rule's keep() hook sees of one ranked middle token. Plain C++: the rules,
// the host tests and the selection kernels (kernels/selection.cuh) all include it.
#pragma once

#include <cstdint>

namespace ftp {

/// What a reserve rule sees for the token of rank `rank` (0 = highest score) in its sequence's
/// middle segment of `count` tokens. Masses are the exact fixed-point scores (detail/importance_mass.hpp).
struct RankInfo {
  int rank;                   ///< 0-based position in descending score order (ties: lower token index first)
  int count;                  ///< tokens in the middle segment
  std::uint64_t mass_before;  ///< sum of the masses of ranks [0, rank)
  std::uint64_t total_mass;   ///< sum of all masses of the segment
  float score;                ///< this token's score
  float max_score;            ///< the segment's largest score
};

}  // namespace ftp
