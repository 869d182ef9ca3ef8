// TopCount: a fixed number of each sequence's middle tokens, by score.
#pragma once

#include "ftp/config.hpp"
#include "ftp/detail/host_device.hpp"
#include "ftp/error.hpp"
#include "ftp/reserve/prefix_rule.hpp"

namespace ftp {

/// Keeps the min(count, middle size) top-scored middle tokens of each sequence (plus the reserved
/// ones). count >= 0.
struct TopCount {
  static constexpr bool kNeedsMasses = false;

  explicit TopCount(int keep_count = 0) : count(keep_count) {
    detail::require(keep_count >= 0, "count", keep_count, "count >= 0");
  }

  /// Keeps the top `count` ranks (all of a shorter segment): keep() and the prefix form both come
  /// from CountPrefixRule.
  struct Rule : CountPrefixRule<Rule> {
    int count;
    Rule() = default;
    FTP_HOST_DEVICE explicit Rule(int top_count) : count(top_count) {}
    FTP_HOST_DEVICE long long keep_count(int) const { return count; }
  };

  bool keeps_everything(const Config&) const { return false; }
  Rule rule(const Config&) const { return Rule{count}; }

  int count;
};

}  // namespace ftp
