// selection/path.hpp: which selection path runs for a prefix rule, from the planned batch's longest
// middle segment and the device (what Pruner::run asks before a pruned layer's selection).
#include <doctest/doctest.h>

#include "error_text.hpp"
#include "ftp/selection/path.hpp"

TEST_CASE("SelectionPath: kAuto picks by the longest middle and the device; kCluster needs clusters") {
  using ftp::SelectionPath;
  const auto resolve = [](SelectionPath path, int longest_middle, bool clusters) {
    ftp::SelectionPlan plan;
    plan.longest_middle = longest_middle;
    plan.cluster_supported = clusters;
    return ftp::detail::resolve_prefix_path(path, plan);
  };
  const int fused_over_cluster = ftp::detail::kLongestMiddleForFusedOverCluster;
  const int fused_over_multi = ftp::detail::kLongestMiddleForFusedSelection;
  CHECK(resolve(SelectionPath::kAuto, 0, true) == SelectionPath::kFused);
  CHECK(resolve(SelectionPath::kAuto, fused_over_cluster, true) == SelectionPath::kFused);
  CHECK(resolve(SelectionPath::kAuto, fused_over_cluster + 1, true) == SelectionPath::kCluster);
  CHECK(resolve(SelectionPath::kAuto, ftp::detail::kLongestMiddleForClusterSelection, true) == SelectionPath::kCluster);
  CHECK(resolve(SelectionPath::kAuto, ftp::detail::kLongestMiddleForClusterSelection + 1, true) ==
        SelectionPath::kMultiCta);
  CHECK(resolve(SelectionPath::kAuto, 131072, true) == SelectionPath::kMultiCta);
  CHECK(resolve(SelectionPath::kAuto, fused_over_multi, false) == SelectionPath::kFused);
  CHECK(resolve(SelectionPath::kAuto, fused_over_multi + 1, false) == SelectionPath::kMultiCta);
  for (SelectionPath forced : {SelectionPath::kFused, SelectionPath::kMultiCta, SelectionPath::kSorted}) {
    CHECK(resolve(forced, 100000, false) == forced);
    CHECK(resolve(forced, 10, true) == forced);
  }
  CHECK(resolve(SelectionPath::kCluster, 10, true) == SelectionPath::kCluster);
  try {
    resolve(SelectionPath::kCluster, 10, false);
    FAIL("kCluster without cluster support did not throw");
  } catch (const ftp::Error& e) {
    CHECK(e.argument() == "selection_path");
    CHECK(ftp_test::contains(e.what(), "compute capability 9.0"));
  }
}
