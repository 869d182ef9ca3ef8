// SelectionPath and SelectionPlan: which path selects a pruned layer's kept tokens, and the
// per-batch facts that decide it (selection/dispatch.cuh runs the choice). Plain C++: the choice is
// host logic, tested on the host (tests/library/host/test_selection_path.cpp).
#pragma once

#include "ftp/error.hpp"

namespace ftp {

/// How the kept tokens of a prefix rule are selected (Pruner::set_selection_path). Rules without a
/// prefix form always sort.
enum class SelectionPath {
  kAuto,      ///< by the planned batch's longest middle segment and the device (default)
  kFused,     ///< always the one-CTA radix select
  kSorted,    ///< always the sort, scan and compaction
  kMultiCta,  ///< always the multi-CTA radix select
  kCluster,   ///< always the cluster radix select (compute capability 9.0 and newer)
};

/// What the selection knows of a planned batch (computed once in Pruner::plan, on the host).
struct SelectionPlan {
  int longest_middle = 0;          ///< tokens of the longest middle segment
  int longest_seq = 0;             ///< tokens of the longest sequence
  bool wide_sort = false;          ///< the sort path sorts all tokens at once (selection/sorted.cuh)
  bool cluster_supported = false;  ///< the device launches thread block clusters
};

namespace detail {

/// kAuto's choice for prefix rules, from the longest middle segment. The one-CTA select costs one
/// launch but leaves all SMs but one per sequence idle, so its time grows with the middle; the
/// cluster select spreads a sequence over 8 SMs at the price of its cluster barriers; the multi-CTA
/// select spreads it over the whole GPU in seven launches, flat in the length.
/// Measured on an H100 (bench/overhead.cu, selection alone, pipelined, B = 1, 2026-12-07),
/// one-CTA / cluster / multi-CTA in ms: 1k 0.032 / 0.036 / 0.057, 4k 0.059 / 0.041 / 0.071,
/// 8k 0.096 / 0.046 / 0.071, 16k 0.169 / 0.056 / 0.071, 32k 0.318 / 0.077 / 0.073,
/// 131k 1.30 / 0.20 / 0.077.
/// Where clusters exist: one-CTA up to this middle, the cluster select up to the next, multi-CTA above.
constexpr int kLongestMiddleForFusedOverCluster = 2048;
constexpr int kLongestMiddleForClusterSelection = 24576;
/// Without clusters: one-CTA up to this middle, multi-CTA above.
constexpr int kLongestMiddleForFusedSelection = 6144;

/// The path that runs for a prefix rule: `requested`, or kAuto's choice for the planned batch.
inline SelectionPath resolve_prefix_path(SelectionPath requested, const SelectionPlan& plan) {
  switch (requested) {
    case SelectionPath::kAuto:
      if (plan.cluster_supported) {
        if (plan.longest_middle <= kLongestMiddleForFusedOverCluster) return SelectionPath::kFused;
        return plan.longest_middle <= kLongestMiddleForClusterSelection ? SelectionPath::kCluster
                                                                        : SelectionPath::kMultiCta;
      }
      return plan.longest_middle <= kLongestMiddleForFusedSelection ? SelectionPath::kFused : SelectionPath::kMultiCta;
    case SelectionPath::kCluster:
      if (!plan.cluster_supported) {
        throw Error("selection_path",
                    "SelectionPath::kCluster needs a device that launches thread block clusters (compute "
                    "capability 9.0 or newer): choose kAuto, kFused, kMultiCta or kSorted");
      }
      return requested;
    default:
      return requested;
  }
}

}  // namespace detail
}  // namespace ftp
