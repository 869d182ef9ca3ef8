// NoFfn: an FFNExecutor that runs nothing, for measuring or testing scoring and selection alone.
#pragma once

#include <cstddef>

#include "ftp/ffn/context.hpp"

namespace ftp {

/// Runs no FFN: the residual is left as it is and the pruner's report still gives the kept sets.
/// An ablation policy (like KeepAll and RandomScorer): it isolates the cost and the choices of the
/// scorer and the reserve rule.
struct NoFfn {
  template <class T>
  struct Weights {};
  template <class T>
  std::size_t workspace_bytes(const WorkspaceShape&) const { return 0; }
  template <class T>
  void validate(const Weights<T>&) const {}
  template <class T>
  void run(const FfnContext<T>&, const Weights<T>&) const {}
};

}  // namespace ftp
