// User-written FTP policies shared by the evaluation programs (ftp_eval, ftp_longeval): a
// score-capturing scorer wrapper and a per-layer top-count reserve policy (its rule takes the layer:
// reserve/layer_rule.hpp). With ftp::RandomScorer they give the paper's random-selection ablation
// at the kept counts the attention scorer chose (Table 3).
#pragma once

#include <cuda_runtime.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "ftp/ftp.hpp"
#include "llama3/kernels/common.cuh"

namespace evalpolicies {

/// Tokens a config always keeps in a sequence of L tokens (the first P and last N, or all).
inline int reserved_tokens(const ftp::Config& c, int L) {
  const long long r = static_cast<long long>(c.initial_tokens()) + c.last_queries();
  return L <= r ? L : static_cast<int>(r);
}

/// Host copies of each pruned layer's scores (T floats), for the cumulative curves.
struct ScoreCapture {
  std::map<int, std::vector<float>> of_layer;
};

/// ImportanceScorer wrapper: runs `Inner`, then copies each pruned layer's scores to the host
/// (a sync per layer: fine for an evaluation, never for timing).
template <class Inner>
class CapturingScorer : public Inner {
 public:
  CapturingScorer(Inner inner, std::shared_ptr<ScoreCapture> capture) : Inner(std::move(inner)), capture_(std::move(capture)) {}

  template <class T>
  void score(const ftp::ScoreContext<T>& ctx, const typename Inner::Plan& plan) const {
    ftp::invoke_score(static_cast<const Inner&>(*this), ctx, plan);
    std::vector<float>& host = capture_->of_layer[ctx.layer];
    host.assign(static_cast<std::size_t>(ctx.batch.num_tokens), 0.0f);
    if (!host.empty()) {
      LLAMA3_CUDA_CHECK(cudaMemcpyAsync(host.data(), ctx.scores, host.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                        ctx.stream));
    }
    LLAMA3_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
  }

 private:
  std::shared_ptr<ScoreCapture> capture_;
};

/// ReservePolicy with a count of middle tokens per layer: keeps the `count_of_layer[layer]`
/// top-scored middle tokens. With RandomScorer it is the paper's random selection at the kept
/// counts the attention scorer chose (Table 3). Its rule is a count per layer (rule(Config, layer)).
struct PerLayerTopCount {
  static constexpr bool kNeedsMasses = false;

  /// keep() comes from the count (CountPrefixRule), so the pruner selects it by a radix select.
  struct Rule : ftp::CountPrefixRule<Rule> {
    int count = 0;
    Rule() = default;
    FTP_HOST_DEVICE explicit Rule(int top_count) : count(top_count) {}
    FTP_HOST_DEVICE long long keep_count(int) const { return count; }
  };

  bool keeps_everything(const ftp::Config&) const { return false; }
  Rule rule(const ftp::Config&, int layer) const {
    if (layer < 0 || layer >= static_cast<int>(count_of_layer.size())) {
      throw std::runtime_error("PerLayerTopCount: no count for layer " + std::to_string(layer) + " (counts for " +
                               std::to_string(count_of_layer.size()) + " layers: set count_of_layer or match_kept)");
    }
    return Rule{count_of_layer[static_cast<std::size_t>(layer)]};
  }

  /// Sets the counts to a run's kept rows per layer minus the tokens every layer keeps anyway.
  void match_kept(const std::vector<int>& kept_per_layer, const ftp::Config& c, int L) {
    const int reserved = reserved_tokens(c, L);
    count_of_layer.assign(kept_per_layer.size(), 0);
    for (std::size_t l = 0; l < kept_per_layer.size(); ++l) count_of_layer[l] = std::max(0, kept_per_layer[l] - reserved);
  }

  std::vector<int> count_of_layer;
};

/// The random-selection pruner: random scores, the per-layer counts of another run.
template <class T>
using RandomSameCountPruner = ftp::Pruner<T, ftp::RandomScorer, PerLayerTopCount>;

template <class T>
std::unique_ptr<RandomSameCountPruner<T>> make_random_same_count_pruner(const ftp::Config& c,
                                                                        const ftp::WorkspaceShape& shape,
                                                                        std::uint64_t seed) {
  return std::make_unique<RandomSameCountPruner<T>>(c, shape, ftp::RandomScorer(seed), PerLayerTopCount{});
}

}  // namespace evalpolicies
