// KeepAll: no pruning at all; the pruner runs the dense FFN and never scores.
#pragma once

#include "ftp/config.hpp"
#include "ftp/detail/host_device.hpp"
#include "ftp/reserve/rank_info.hpp"

namespace ftp {

/// Keeps every token. With it the pruner takes the executor's dense path (no gather, no scatter),
/// which gives bitwise the result of the plain dense FFN.
struct KeepAll {
  static constexpr bool kNeedsMasses = false;

  struct Rule {
    FTP_HOST_DEVICE bool keep(const RankInfo&) const { return true; }
  };

  bool keeps_everything(const Config&) const { return true; }
  Rule rule(const Config&) const { return Rule{}; }
};

}  // namespace ftp
