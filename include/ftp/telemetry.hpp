// LayerReport: what one pruner call kept, handed to an optional observer after the layer.
#pragma once

#include <functional>
#include <vector>

namespace ftp {

/// Kept tokens of one layer call. For a dense layer (index < F, or a policy that keeps everything)
/// kept equals length and no device work was spent on scoring.
struct LayerReport {
  int layer = 0;
  bool pruned = false;             ///< scoring and selection ran (layer >= F and the policy prunes)
  int num_tokens = 0;              ///< T
  int kept_tokens = 0;             ///< rows the FFN ran on (M)
  std::vector<int> seq_lengths;    ///< [B]
  std::vector<int> kept_per_seq;   ///< [B]
  std::vector<int> invalid_scores; ///< [B] 1 where a middle score was NaN/Inf/negative (kept all)

  double kept_fraction() const { return num_tokens == 0 ? 1.0 : static_cast<double>(kept_tokens) / num_tokens; }
};

/// Called on the host after each Pruner::run with that layer's report.
using LayerObserver = std::function<void(const LayerReport&)>;

}  // namespace ftp
