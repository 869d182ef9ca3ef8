// MassPrefixRule and CountPrefixRule: bases that give a reserve rule with a prefix form its keep()
// hook, derived from the form's one parameter. The pruner decides with either description of a
// rule: keep(const RankInfo&) on the sorted path (and the tests), the prefix form in the radix
// selects (kernels/prefix_selection.cuh, kernels/radix_select.cuh). A rule that wrote both by hand
// could make the two paths keep different tokens; with these bases it writes only the parameter.
// Plain C++ (the rules and the host tests include it); every hook is FTP_HOST_DEVICE because rules
// are passed by value into kernels.
#pragma once

#include "ftp/detail/host_device.hpp"
#include "ftp/detail/importance_mass.hpp"
#include "ftp/reserve/prefix_form.hpp"
#include "ftp/reserve/rank_info.hpp"

namespace ftp {

/// Base of a rule that keeps, per sequence, the fewest top-ranked middle tokens whose masses reach
/// ceil(share x total), where `Derived` provides the share in [0, 1]:
///
///     struct HalfTheMass : ftp::MassPrefixRule<HalfTheMass> {
///       FTP_HOST_DEVICE double mass_share() const { return 0.5; }
///     };
///
/// The sorted path fills RankInfo's masses only for a policy with `kNeedsMasses = true`, so a
/// policy whose rule derives from this base declares it (as CumulativeEta does).
template <class Derived>
struct MassPrefixRule {
  /// The kept ranks are a prefix cut by mass: the pruner selects them without a sort.
  static constexpr PrefixForm kPrefixForm = PrefixForm::kMass;

  /// Rank r is kept iff the ranks before it have not yet reached ceil(mass_share() x total).
  FTP_HOST_DEVICE bool keep(const RankInfo& r) const {
    return r.mass_before < detail::eta_threshold(r.total_mass, static_cast<const Derived&>(*this).mass_share());
  }
};

/// Base of a rule that keeps, per sequence, the top `keep_count(n)` of its n middle tokens (all of
/// them where keep_count(n) >= n, none where it is <= 0), where `Derived` provides the count:
///
///     struct TopTwo : ftp::CountPrefixRule<TopTwo> {
///       FTP_HOST_DEVICE long long keep_count(int) const { return 2; }
///     };
template <class Derived>
struct CountPrefixRule {
  /// The kept ranks are a prefix cut by count: the pruner selects them without a sort.
  static constexpr PrefixForm kPrefixForm = PrefixForm::kCount;

  /// Rank r is kept iff r < keep_count(n) for the segment's n tokens.
  FTP_HOST_DEVICE bool keep(const RankInfo& r) const {
    return r.rank < static_cast<const Derived&>(*this).keep_count(r.count);
  }
};

}  // namespace ftp
