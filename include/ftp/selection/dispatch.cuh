// One pruned layer's selection in one place: which path selects the kept tokens of a reserve rule
// (a radix select for rules with a prefix form, the sort for any other rule), the per-batch plan
// that decides it, and where the kept counts go. Pruner::run calls select_kept_tokens once per
// pruned layer; everything below it is device work on the caller's stream.
//
// Paths, all selecting exactly the same tokens (tests/library/cuda/test_selection.cu runs each):
//   kFused     one CTA per sequence (kernels/prefix_selection.cuh): fewest launches, one SM each
//   kCluster   one 8-CTA thread block cluster per sequence, one launch (kernels/cluster_select.cuh);
//              compute capability 9.0 and newer
//   kMultiCta  tiles of every sequence over the whole GPU, seven launches (kernels/radix_select.cuh)
//   kSorted    CUB sort, exact scan and compaction (selection/sorted.cuh): every rule, a dozen launches
#pragma once

#include <cuda_runtime.h>

#include <algorithm>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/cuda_check.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/selection/buffers.cuh"
#include "ftp/selection/kept_counts.hpp"
#include "ftp/selection/path.hpp"
#include "ftp/selection/prefix.cuh"
#include "ftp/selection/sorted.cuh"

namespace ftp {

namespace detail {

inline SelectionPlan make_selection_plan(const BatchLayout& layout, const Config& config, int device) {
  SelectionPlan plan;
  for (int b = 0; b < layout.num_seqs(); ++b) {
    plan.longest_middle = std::max(plan.longest_middle, middle_segment(layout, b, config).count());
    plan.longest_seq = std::max(plan.longest_seq, layout.length(b));
  }
  plan.wide_sort = use_wide_sort(plan.longest_middle);
  plan.cluster_supported = device_supports_cluster_select(device);
  return plan;
}

/// Selects the kept tokens of `rule` among the planned batch's `d_scores` into buf.kept_tokens
/// (ascending, packed) and their KeptCounts into buf.kept_counts. A radix select also writes the
/// counts into `host_counts` (host-mapped memory the device addresses, or nullptr); returns true
/// when it did, false when the caller must copy buf.kept_counts (the sort path, empty batches).
template <class Rule>
bool select_kept_tokens(const Rule& rule, bool needs_masses, SelectionPath path, const SelectionPlan& plan,
                        const float* d_scores, const DeviceBatch& batch, SelectionBuffers& buf, int* host_counts,
                        cudaStream_t stream) {
  const int T = batch.num_tokens, B = batch.num_seqs;
  if (T == 0 || B == 0) {
    FTP_CUDA_CHECK(cudaMemsetAsync(buf.kept_counts, 0, sizeof(int) * KeptCounts::ints(B), stream));
    return false;
  }
  if constexpr (has_prefix_form_v<Rule>) {
    if (path != SelectionPath::kSorted) {
      const KeptCounts::Writer counts{buf.kept_counts, host_counts, B};
      switch (resolve_prefix_path(path, plan)) {
        case SelectionPath::kCluster:
          select_prefix_tokens_cluster(rule, d_scores, batch, buf, counts, stream);
          break;
        case SelectionPath::kMultiCta:
          select_prefix_tokens_multi_cta(rule, d_scores, batch, plan.longest_middle, plan.longest_seq, buf, counts,
                                         stream);
          break;
        default:
          select_prefix_tokens(rule, d_scores, batch, buf, counts, stream);
          break;
      }
      return host_counts != nullptr;
    }
  }
  mark_kept_tokens(rule, needs_masses, plan.wide_sort, d_scores, batch, buf, stream);
  compact_kept_tokens(batch, buf, stream);
  return false;
}

}  // namespace detail
}  // namespace ftp
