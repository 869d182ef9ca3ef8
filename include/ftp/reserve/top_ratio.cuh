// TopRatio: a fixed share of each sequence's middle tokens, by score (ablations, benchmarks).
#pragma once

#include <cmath>

#include "ftp/config.hpp"
#include "ftp/detail/host_device.hpp"
#include "ftp/detail/importance_mass.hpp"
#include "ftp/error.hpp"
#include "ftp/reserve/prefix_rule.hpp"

namespace ftp {

/// Keeps ceil(ratio x count) top-scored middle tokens of each sequence (plus the reserved ones).
/// ratio in (0, 1]; ratio = 1 keeps everything and skips scoring.
struct TopRatio {
  static constexpr bool kNeedsMasses = false;

  explicit TopRatio(double keep_ratio = 0.5) : ratio(keep_ratio) {
    detail::require(std::isfinite(keep_ratio) && keep_ratio > 0.0 && keep_ratio <= 1.0, "ratio", keep_ratio,
                    "0 < ratio <= 1");
  }

  /// Keeps the top ceil(ratio x n) ranks of n: keep() and the prefix form both come from
  /// CountPrefixRule.
  struct Rule : CountPrefixRule<Rule> {
    double ratio;
    Rule() = default;
    FTP_HOST_DEVICE explicit Rule(double keep_ratio) : ratio(keep_ratio) {}
    FTP_HOST_DEVICE long long keep_count(int count) const { return detail::ratio_keep_count(ratio, count); }
  };

  bool keeps_everything(const Config&) const { return ratio >= 1.0; }
  Rule rule(const Config&) const { return Rule{ratio}; }

  double ratio;
};

}  // namespace ftp
