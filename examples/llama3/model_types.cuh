// What DeviceModel's calls take and return: Sampling, AttentionKernel, PrefillResult. Apart so that
// callers' result handling does not depend on the model class.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "llama3/stage_timing.cuh"

namespace llama3 {

/// Next-token choice: greedy when temperature == 0, else softmax(logits / temperature) sampled
/// with the caller's uniform draw u in [0, 1) (reproducible runs).
struct Sampling {
  float temperature = 0.0f;
  float u = 0.0f;
};

/// Prefill attention kernels of the runner (see DeviceModel::set_attention_kernel). Wgmma is the
/// default where it runs (else Fa2); Cudnn (cuDNN's fused flash attention, a build with
/// FTP_WITH_CUDNN and libcudnn.so.9 at run time) only when asked for: which one is fastest is for
/// the measurements (bench/model_ttft --attention LIST, bench/attention_kernel) to decide.
enum class AttentionKernel { Fa2, Wgmma, Cudnn };

/// "fa2", "wgmma", "cudnn": the names the CLI flags take and the benchmarks print.
inline const char* attention_kernel_name(AttentionKernel k) {
  switch (k) {
    case AttentionKernel::Fa2: return "fa2";
    case AttentionKernel::Wgmma: return "wgmma";
    case AttentionKernel::Cudnn: return "cudnn";
  }
  return "?";
}

/// The kernel of a name as attention_kernel_name() gives it; false when the name is none of them.
inline bool parse_attention_kernel(const std::string& name, AttentionKernel& out) {
  for (AttentionKernel k : {AttentionKernel::Fa2, AttentionKernel::Wgmma, AttentionKernel::Cudnn}) {
    if (name == attention_kernel_name(k)) {
      out = k;
      return true;
    }
  }
  return false;
}

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
