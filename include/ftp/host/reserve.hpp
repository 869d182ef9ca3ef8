// Host reference of the reserve policies: plain loops over each sequence, written to be obviously
// right. Each returns flags[T] (1 = the token runs the FFN).
//
// Shared with the device: the fixed-point mass definition (detail/importance_mass.hpp), which is
// part of the rule's specification. Written independently here: validation, ordering, the
// cumulative walk, and the reserved ranges.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/detail/importance_mass.hpp"

namespace ftp::host {

namespace detail_ref {

/// flags with the reserved tokens (first P, last N, whole short sequences) set.
inline std::vector<std::uint8_t> reserved_flags(const BatchLayout& layout, const Config& config) {
  std::vector<std::uint8_t> flags(layout.num_tokens(), 1);
  for (int b = 0; b < layout.num_seqs(); ++b) {
    const MiddleSegment mid = middle_segment(layout, b, config);
    for (int t = mid.begin; t < mid.end; ++t) flags[t] = 0;
  }
  return flags;
}

/// Middle tokens of sequence b by descending score, ties by ascending token index;
/// empty optional-like result (ok = false) when a score is NaN, Inf or negative.
inline bool ranked_middle(const std::vector<float>& scores, const MiddleSegment& mid, std::vector<int>& ranked) {
  ranked.clear();
  for (int t = mid.begin; t < mid.end; ++t) {
    if (!ftp::detail::is_valid_score(scores[t])) return false;
    ranked.push_back(t);
  }
  std::stable_sort(ranked.begin(), ranked.end(), [&](int x, int y) { return scores[x] > scores[y]; });
  return true;
}

/// Applies `keep_first(ranked, b)` -> k to every sequence: the top k middle tokens are kept;
/// a sequence with an invalid score keeps its whole middle.
template <class KeepFirst>
std::vector<std::uint8_t> keep_top(const std::vector<float>& scores, const BatchLayout& layout, const Config& config,
                                   KeepFirst keep_first) {
  std::vector<std::uint8_t> flags = reserved_flags(layout, config);
  std::vector<int> ranked;
  for (int b = 0; b < layout.num_seqs(); ++b) {
    const MiddleSegment mid = middle_segment(layout, b, config);
    if (mid.count() == 0) continue;
    if (!ranked_middle(scores, mid, ranked)) {
      for (int t = mid.begin; t < mid.end; ++t) flags[t] = 1;
      continue;
    }
    const long long k = std::min<long long>(keep_first(ranked), mid.count());
    for (long long r = 0; r < k; ++r) flags[ranked[r]] = 1;
  }
  return flags;
}

}  // namespace detail_ref

/// Reference of ftp::CumulativeEta: the fewest top tokens whose masses reach ceil(eta x total).
struct CumulativeEta {
  bool keeps_everything(const Config& config) const { return config.eta() >= 1.0; }

  std::vector<std::uint8_t> select(const std::vector<float>& scores, const BatchLayout& layout,
                                   const Config& config) const {
    if (keeps_everything(config)) return std::vector<std::uint8_t>(layout.num_tokens(), 1);
    return detail_ref::keep_top(scores, layout, config, [&](const std::vector<int>& ranked) {
      const int count = static_cast<int>(ranked.size());
      const int exponent = ftp::detail::mass_exponent(scores[ranked[0]], count);
      std::vector<std::uint64_t> mass(count);
      for (int r = 0; r < count; ++r) mass[r] = ftp::detail::quantize_mass(scores[ranked[r]], exponent);
      const std::uint64_t total = std::accumulate(mass.begin(), mass.end(), std::uint64_t{0});
      const std::uint64_t threshold = ftp::detail::eta_threshold(total, config.eta());
      long long k = 0;
      std::uint64_t reached = 0;
      while (k < count && reached < threshold) reached += mass[k++];
      return k;
    });
  }
};

/// Reference of ftp::TopRatio: ceil(ratio x count) top tokens.
struct TopRatio {
  double ratio = 0.5;
  bool keeps_everything(const Config&) const { return ratio >= 1.0; }
  std::vector<std::uint8_t> select(const std::vector<float>& scores, const BatchLayout& layout,
                                   const Config& config) const {
    if (keeps_everything(config)) return std::vector<std::uint8_t>(layout.num_tokens(), 1);
    return detail_ref::keep_top(scores, layout, config, [&](const std::vector<int>& ranked) {
      return static_cast<long long>(std::ceil(ratio * static_cast<double>(ranked.size())));
    });
  }
};

/// Reference of ftp::TopCount: min(count, middle size) top tokens.
struct TopCount {
  int count = 0;
  bool keeps_everything(const Config&) const { return false; }
  std::vector<std::uint8_t> select(const std::vector<float>& scores, const BatchLayout& layout,
                                   const Config& config) const {
    return detail_ref::keep_top(scores, layout, config, [&](const std::vector<int>&) { return count; });
  }
};

/// Reference of ftp::KeepAll.
struct KeepAll {
  bool keeps_everything(const Config&) const { return true; }
  std::vector<std::uint8_t> select(const std::vector<float>&, const BatchLayout& layout, const Config&) const {
    return std::vector<std::uint8_t>(layout.num_tokens(), 1);
  }
};

/// Ascending indices of flagged tokens.
inline std::vector<int> kept_tokens(const std::vector<std::uint8_t>& flags) {
  std::vector<int> kept;
  for (int t = 0; t < static_cast<int>(flags.size()); ++t) {
    if (flags[t]) kept.push_back(t);
  }
  return kept;
}

}  // namespace ftp::host
