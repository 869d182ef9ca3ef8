// TopCount: a fixed number of each sequence's middle tokens, by score.
#pragma once

#include "ftp/config.hpp"
#include "ftp/detail/host_device.hpp"
#include "ftp/error.hpp"
#include "ftp/kernels/selection.cuh"
#include "ftp/reserve/prefix_form.hpp"

namespace ftp {

/// Keeps the min(count, middle size) top-scored middle tokens of each sequence (plus the reserved
/// ones). count >= 0.
struct TopCount {
  static constexpr bool kNeedsMasses = false;

  explicit TopCount(int keep_count = 0) : count(keep_count) {
    detail::require(keep_count >= 0, "count", keep_count, "count >= 0");
  }

  struct Rule {
    int count;
    FTP_HOST_DEVICE bool keep(const RankInfo& r) const { return r.rank < count; }
    /// The kept ranks are a prefix cut by count: the pruner selects them without a sort.
    static constexpr PrefixForm kPrefixForm = PrefixForm::kCount;
    FTP_HOST_DEVICE long long keep_count(int) const { return count; }
  };

  bool keeps_everything(const Config&) const { return false; }
  Rule rule(const Config&) const { return Rule{count}; }

  int count;
};

}  // namespace ftp
