// User-written FTP policies shared by the evaluation programs (ftp_eval, ftp_longeval): a layer
// clock, a score-capturing scorer wrapper and a per-layer top-count reserve policy. With
// ftp::RandomScorer they give the paper's random-selection ablation at the kept counts the
// attention scorer chose (Table 3).
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

/// Which layer the pruner is working on: the scorer below writes it, the reserve policy reads it.
/// (Pruner::run scores before it asks the reserve policy for its rule, within one layer.)
struct LayerClock {
  int layer = -1;
};

/// Host copies of each pruned layer's scores (T floats), for the cumulative curves.
struct ScoreCapture {
  std::map<int, std::vector<float>> of_layer;
};

/// ImportanceScorer wrapper: runs `Inner`, tells the LayerClock the layer, and optionally copies
/// the scores to the host (a sync per layer: fine for an evaluation, never for timing).
/// DeviceModel::prefill_with replaces the pruner's observer with its own kept-count recorder, so
/// per-layer state travels through the policies instead of a LayerReport observer.
template <class Inner>
class TaggedScorer : public Inner {
 public:
  TaggedScorer(Inner inner, std::shared_ptr<LayerClock> clock, std::shared_ptr<ScoreCapture> capture = nullptr)
      : Inner(std::move(inner)), clock_(std::move(clock)), capture_(std::move(capture)) {}

  template <class T>
  void score(const ftp::ScoreContext<T>& ctx) const {
    clock_->layer = ctx.layer;
    Inner::score(ctx);
    if (capture_) {
      std::vector<float>& host = capture_->of_layer[ctx.layer];
      host.assign(static_cast<std::size_t>(ctx.batch.num_tokens), 0.0f);
      if (!host.empty()) {
        LLAMA3_CUDA_CHECK(cudaMemcpyAsync(host.data(), ctx.scores, host.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                          ctx.stream));
      }
      LLAMA3_CUDA_CHECK(cudaStreamSynchronize(ctx.stream));
    }
  }

 private:
  std::shared_ptr<LayerClock> clock_;
  std::shared_ptr<ScoreCapture> capture_;
};

/// ReservePolicy with a count of middle tokens per layer: keeps the `count_of_layer[layer]`
/// top-scored middle tokens. With RandomScorer it is the paper's random selection at the kept
/// counts the attention scorer chose (Table 3). Its rule is the `keep(const RankInfo&)` hook.
struct PerLayerTopCount {
  static constexpr bool kNeedsMasses = false;

  struct Rule {
    int count;
    FTP_HOST_DEVICE bool keep(const ftp::RankInfo& r) const { return r.rank < count; }
  };

  bool keeps_everything(const ftp::Config&) const { return false; }
  Rule rule(const ftp::Config&) const {
    const int layer = clock ? clock->layer : -1;
    if (layer < 0 || layer >= static_cast<int>(count_of_layer.size())) {
      throw std::runtime_error("PerLayerTopCount: no count for layer " + std::to_string(layer) +
                               " (the scorer must be a TaggedScorer sharing this LayerClock)");
    }
    return Rule{count_of_layer[static_cast<std::size_t>(layer)]};
  }

  /// Sets the counts to a run's kept rows per layer minus the tokens every layer keeps anyway.
  void match_kept(const std::vector<int>& kept_per_layer, const ftp::Config& c, int L) {
    const int reserved = reserved_tokens(c, L);
    count_of_layer.assign(kept_per_layer.size(), 0);
    for (std::size_t l = 0; l < kept_per_layer.size(); ++l) count_of_layer[l] = std::max(0, kept_per_layer[l] - reserved);
  }

  std::shared_ptr<const LayerClock> clock;
  std::vector<int> count_of_layer;
};

/// The random-selection pruner: random scores, the per-layer counts of another run.
using RandomScorerTagged = TaggedScorer<ftp::RandomScorer>;
template <class T>
using RandomSameCountPruner = ftp::Pruner<T, RandomScorerTagged, PerLayerTopCount>;

/// A RandomSameCountPruner sharing one clock between its scorer and its reserve policy.
template <class T>
std::unique_ptr<RandomSameCountPruner<T>> make_random_same_count_pruner(const ftp::Config& c,
                                                                        const ftp::WorkspaceShape& shape,
                                                                        std::uint64_t seed) {
  auto clock = std::make_shared<LayerClock>();
  PerLayerTopCount reserve;
  reserve.clock = clock;
  return std::make_unique<RandomSameCountPruner<T>>(c, shape, RandomScorerTagged(ftp::RandomScorer(seed), clock),
                                                    reserve);
}

}  // namespace evalpolicies
