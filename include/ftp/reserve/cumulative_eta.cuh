// CumulativeEta: the paper's reserve rule (Eq. 2-3).
#pragma once

#include "ftp/config.hpp"
#include "ftp/detail/host_device.hpp"
#include "ftp/reserve/prefix_rule.hpp"

namespace ftp {

/// Keeps, per sequence, the fewest top-scored middle tokens whose scores sum to at least
/// eta x the middle total (Config::eta), plus the reserved first P and last N tokens.
///
/// Decisions (each tested):
/// - eta = 1 keeps every token: the paper identifies eta = 1 with running the whole layer
///   (Section 3.2.2), so the pruner skips scoring and runs the dense FFN.
/// - all-zero middle scores: the total is 0, the empty set already reaches eta x 0, so no middle
///   token is kept (only the reserved ones).
/// - a NaN, Inf or negative middle score: that sequence keeps all its tokens (dense FFN result for
///   it) and the layer report flags it; other sequences are unaffected.
/// - ties break by token index: of equal scores the earlier token ranks first.
/// - sums are exact fixed-point integers (detail/importance_mass.hpp), so the device selects
///   exactly the set the host reference selects from the same scores.
struct CumulativeEta {
  static constexpr bool kNeedsMasses = true;

  /// Rank r is kept iff the ranks before it have not yet reached ceil(eta x total): keep() and the
  /// prefix form both come from MassPrefixRule.
  struct Rule : MassPrefixRule<Rule> {
    double eta;
    Rule() = default;
    FTP_HOST_DEVICE explicit Rule(double share) : eta(share) {}
    FTP_HOST_DEVICE double mass_share() const { return eta; }
  };

  bool keeps_everything(const Config& config) const { return config.eta() >= 1.0; }
  Rule rule(const Config& config) const { return Rule{config.eta()}; }
};

}  // namespace ftp
