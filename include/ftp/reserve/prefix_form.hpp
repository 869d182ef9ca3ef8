// PrefixForm: how a reserve rule whose kept ranks are a prefix of the score ranking places its cut.
// A rule with `static constexpr PrefixForm kPrefixForm` is selected by the fused radix select
// (reserve/prefix_selection.cuh) instead of the sort. A rule gets the member, and a keep() hook that
// agrees with it, by deriving from MassPrefixRule or CountPrefixRule (reserve/prefix_rule.hpp).
// Plain C++: the rules include it without the selection kernels.
#pragma once

namespace ftp {

/// How a prefix rule places its cut in the descending score ranking.
enum class PrefixForm {
  kMass,   ///< the fewest top tokens whose masses reach ceil(share x total); rule gives `mass_share()`
  kCount,  ///< the top `keep_count(n)` tokens of n; rule gives `keep_count(int n)`
};

}  // namespace ftp
