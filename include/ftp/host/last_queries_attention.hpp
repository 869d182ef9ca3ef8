// Host reference of ftp::LastQueriesAttention: the same scores by plain loops in double precision.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <thread>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/views.hpp"

namespace ftp::host {

/// q/k as float arrays in the device layout (row strides in elements).
struct AttentionInputs {
  const float* q = nullptr;
  std::int64_t q_row_stride = 0;
  const float* k = nullptr;
  std::int64_t k_row_stride = 0;
  int num_q_heads = 0;
  int num_kv_heads = 0;
  int head_dim = 0;
  /// Optional engine log-sum-exp, as in ftp::AttentionView: when given it replaces the normalizer
  /// this reference would compute itself.
  const float* lse = nullptr;
  std::int64_t lse_token_stride = 0;
  std::int64_t lse_head_stride = 0;
  LseBase lse_base = LseBase::kNatural;
};

struct LastQueriesAttention {
  /// score[j] = sum_{h, i < n} softmax over keys <= pos_i of q_{h,i} . k_{h/G, j} / sqrt(d).
  /// Query heads run on up to `threads` host threads; each writes its own partial row, summed in
  /// head order, so the result does not depend on the thread count.
  std::vector<float> score(int /*layer*/, const BatchLayout& layout, const AttentionInputs& a, const Config& config,
                           int threads = 1) const {
    const int T = layout.num_tokens(), H = a.num_q_heads, d = a.head_dim;
    const int group = a.num_q_heads / a.num_kv_heads;
    const double scale = 1.0 / std::sqrt(static_cast<double>(d));
    std::vector<std::vector<double>> per_head(H, std::vector<double>(T, 0.0));
    auto run_head = [&](int h) {
      std::vector<double> logits;
      for (int b = 0; b < layout.num_seqs(); ++b) {
        const int start = layout.cu_seqlens[b], L = layout.length(b);
        const int n = std::min(config.last_queries(), L);
        for (int i = 0; i < n; ++i) {
          const int pos = L - n + i;
          const float* q = a.q + static_cast<std::int64_t>(start + pos) * a.q_row_stride + static_cast<std::int64_t>(h) * d;
          logits.assign(pos + 1, 0.0);
          double max_logit = -INFINITY;
          for (int j = 0; j <= pos; ++j) {
            const float* k = a.k + static_cast<std::int64_t>(start + j) * a.k_row_stride +
                             static_cast<std::int64_t>(h / group) * d;
            double dot = 0.0;
            for (int c = 0; c < d; ++c) dot += static_cast<double>(q[c]) * k[c];
            logits[j] = dot * scale;
            max_logit = std::max(max_logit, logits[j]);
          }
          if (a.lse != nullptr) {  // the engine's normalizer: p_j = exp(logit_j - lse)
            double lse = a.lse[static_cast<std::int64_t>(start + pos) * a.lse_token_stride +
                               static_cast<std::int64_t>(h) * a.lse_head_stride];
            if (a.lse_base == LseBase::kLog2) lse *= std::log(2.0);
            for (int j = 0; j <= pos; ++j) per_head[h][start + j] += std::exp(logits[j] - lse);
            continue;
          }
          double normalizer = 0.0;
          for (int j = 0; j <= pos; ++j) normalizer += std::exp(logits[j] - max_logit);
          for (int j = 0; j <= pos; ++j) per_head[h][start + j] += std::exp(logits[j] - max_logit) / normalizer;
        }
      }
    };
    std::vector<std::thread> pool;
    const int workers = std::max(1, std::min(threads, H));
    for (int w = 0; w < workers; ++w) {
      pool.emplace_back([&, w] {
        for (int h = w; h < H; h += workers) run_head(h);
      });
    }
    for (auto& t : pool) t.join();
    std::vector<float> scores(T, 0.0f);
    for (int t = 0; t < T; ++t) {
      double sum = 0.0;
      for (int h = 0; h < H; ++h) sum += per_head[h][t];
      scores[t] = static_cast<float>(sum);
    }
    return scores;
  }
};

}  // namespace ftp::host
