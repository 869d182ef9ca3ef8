// Host reference of one ftp::Pruner::run: score -> select -> FFN on kept rows, the paper's
// Algorithm 1 in plain C++. The oracle of the GPU tests for the whole per-layer step.
#pragma once

#include <cstdint>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/host/ffn.hpp"
#include "ftp/host/reserve.hpp"

namespace ftp::host {

/// One layer: for layer >= F (and a policy that prunes) the tokens `reserve` keeps given `scores`
/// run `ffn`; otherwise all tokens do. Returns the kept flags; updates residual [T, C] in place.
template <class Reserve, class Ffn, class FfnWeights>
std::vector<std::uint8_t> run_layer(int layer, const Config& config, const BatchLayout& layout,
                                    const std::vector<float>& scores, const Reserve& reserve, const Ffn& ffn,
                                    float* residual, std::int64_t stride, int C, int I, const FfnWeights& weights,
                                    Rounding round = no_rounding) {
  std::vector<std::uint8_t> flags;
  if (!config.prunes_layer(layer) || reserve.keeps_everything(config)) {
    flags.assign(layout.num_tokens(), 1);
  } else {
    flags = reserve.select(scores, layout, config);
  }
  ffn.run(residual, stride, C, I, kept_tokens(flags), weights, round);
  return flags;
}

}  // namespace ftp::host
