// What DeviceModel's calls take and return: Sampling, AttentionKernel, PrefillResult. Apart so that
// callers' result handling does not depend on the model class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "llama3/stage_timing.cuh"

namespace llama3 {

/// Next-token choice: greedy when temperature == 0, else softmax(logits / temperature) sampled
/// with the caller's uniform draw u in [0, 1) (reproducible runs).
struct Sampling {
  float temperature = 0.0f;
  float u = 0.0f;
};

/// Prefill attention kernels of the runner (see DeviceModel::set_attention_kernel).
enum class AttentionKernel { Fa2, Wgmma };

/// What one prefill did.
struct PrefillResult {
  int num_tokens = 0;               ///< L
  std::int32_t next_token = -1;     ///< sampled from the last position's logits
  float ttft_ms = 0.0f;             ///< CUDA events: embedding -> first token sampled
  std::vector<int> kept_per_layer;  ///< FFN rows each layer ran on (L for dense layers)
  bool ftp = false;
  /// GPU time per stage; all zero unless DeviceModel::set_stage_timing(true) (and for prefills
  /// through a caller's own pruner, whose policies carry no clock).
  StageTimes stages;

  double kept_fraction(std::size_t layer) const {
    return num_tokens == 0 ? 1.0 : static_cast<double>(kept_per_layer[layer]) / num_tokens;
  }
  /// FFN rows run over all layers / (L x layers).
  double mean_kept_fraction() const {
    if (kept_per_layer.empty() || num_tokens == 0) return 1.0;
    double sum = 0;
    for (int k : kept_per_layer) sum += k;
    return sum / (static_cast<double>(num_tokens) * kept_per_layer.size());
  }
};

}  // namespace llama3
