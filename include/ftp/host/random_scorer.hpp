// Host reference of ftp::RandomScorer (the hash is shared: it is the definition of the scores).
#pragma once

#include <cstdint>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/detail/random_score.hpp"

namespace ftp::host {

struct RandomScorer {
  std::uint64_t seed = 0;

  std::vector<float> score(int layer, const BatchLayout& layout) const {
    std::vector<float> scores(layout.num_tokens());
    for (int b = 0; b < layout.num_seqs(); ++b) {
      for (int t = layout.cu_seqlens[b]; t < layout.cu_seqlens[b + 1]; ++t) {
        scores[t] = detail::random_score(seed, layer, b, t - layout.cu_seqlens[b]);
      }
    }
    return scores;
  }
};

}  // namespace ftp::host
