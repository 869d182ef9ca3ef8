// What the pruner hands an ImportanceScorer: the planned batch, the layer's attention inputs, and
// the scorer's slice of the workspace. See scorer/README in the API docs (ftp.hpp) for the hooks.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/views.hpp"
#include "ftp/workspace.hpp"

namespace ftp {

/// Passed to `Scorer::plan` once per batch (Pruner::plan), which returns the scorer's plan of the
/// batch as a value (`Scorer::Plan`); the pruner keeps it and hands it back to every score() of that
/// batch, so a scorer holds no per-batch state.
struct ScorerPlanContext {
  const BatchLayout& layout;    ///< host copy of the batch layout
  DeviceBatch batch;            ///< device copy
  const Config& config;
  const WorkspaceShape& shape;  ///< the sizes the workspace was planned for
  void* workspace;            ///< the scorer's slice, `Scorer::workspace_bytes` long
  cudaStream_t stream;
};

/// Passed to `Scorer::score` for every pruned layer.
template <class T>
struct ScoreContext {
  int layer;
  const BatchLayout& layout;
  DeviceBatch batch;
  AttentionView<T> attention;
  const Config& config;
  const WorkspaceShape& shape;  ///< the sizes the workspace was planned for
  float* scores;    ///< [T] output: one importance score per token (middle tokens must be written)
  void* workspace;  ///< the scorer's slice
  cudaStream_t stream;
};

/// Default hooks for scorers: no workspace, an empty plan. A custom scorer derives from this and
/// adds `template <class T> void score(const ScoreContext<T>&) const`, or, when it plans per
/// batch, its own `Plan`, `Plan plan(const ScorerPlanContext&) const` and
/// `template <class T> void score(const ScoreContext<T>&, const Plan&) const`.
struct ScorerBase {
  /// False for scorers that ignore q/k (the pruner then accepts an empty AttentionView).
  static constexpr bool kNeedsAttention = true;
  /// What a scorer derives from a batch's layout once per batch (nothing, by default).
  struct Plan {};
  static std::size_t workspace_bytes(const WorkspaceShape&, const Config&) { return 0; }
  Plan plan(const ScorerPlanContext&) const { return Plan{}; }
};

}  // namespace ftp
