// Ragged batches: B sequences packed token-major, described by cu_seqlens (B+1 offsets), the
// layout that varlen attention kernels and engines already keep. Host-side validation and the
// per-sequence segment arithmetic shared by the device policies and the host reference.
#pragma once

#include <cstdint>
#include <vector>

#include "ftp/config.hpp"
#include "ftp/error.hpp"

namespace ftp {

/// Host view of a batch layout: sequence b owns packed tokens [cu_seqlens[b], cu_seqlens[b+1]).
struct BatchLayout {
  std::vector<int> cu_seqlens;  ///< B+1 offsets, cu_seqlens[0] = 0, non-decreasing, last = T.

  int num_seqs() const noexcept { return cu_seqlens.empty() ? 0 : static_cast<int>(cu_seqlens.size()) - 1; }
  int num_tokens() const noexcept { return cu_seqlens.empty() ? 0 : cu_seqlens.back(); }
  int length(int b) const noexcept { return cu_seqlens[b + 1] - cu_seqlens[b]; }
  int max_length() const noexcept {
    int longest = 0;
    for (int b = 0; b < num_seqs(); ++b) longest = length(b) > longest ? length(b) : longest;
    return longest;
  }
};

/// Validates `cu_seqlens` (B+1 host values) against the token count T and returns the layout.
/// Throws ftp::Error naming "cu_seqlens" when it does not start at 0, decreases, or does not end at T.
inline BatchLayout make_batch_layout(const int* h_cu_seqlens, int num_seqs, int num_tokens) {
  detail::require(num_seqs >= 0, "num_seqs", num_seqs, "B >= 0");
  detail::require(num_tokens >= 0, "num_tokens", num_tokens, "T >= 0");
  detail::require(num_seqs == 0 || h_cu_seqlens != nullptr, "cu_seqlens", "null", "B+1 host offsets");
  BatchLayout layout;
  if (num_seqs == 0) {
    detail::require(num_tokens == 0, "num_tokens", num_tokens, "T = 0 for an empty batch");
    layout.cu_seqlens = {0};
    return layout;
  }
  layout.cu_seqlens.assign(h_cu_seqlens, h_cu_seqlens + num_seqs + 1);
  if (layout.cu_seqlens[0] != 0) {
    throw Error("cu_seqlens", detail::concat("argument 'cu_seqlens'[0] = ", layout.cu_seqlens[0],
                                             " is invalid: expected 0"));
  }
  for (int b = 0; b < num_seqs; ++b) {
    if (layout.cu_seqlens[b + 1] < layout.cu_seqlens[b]) {
      throw Error("cu_seqlens", detail::concat("argument 'cu_seqlens' is not monotone: cu_seqlens[", b + 1,
                                               "] = ", layout.cu_seqlens[b + 1], " < cu_seqlens[", b,
                                               "] = ", layout.cu_seqlens[b], ": expected non-decreasing offsets"));
    }
  }
  if (layout.cu_seqlens[num_seqs] != num_tokens) {
    throw Error("cu_seqlens", detail::concat("argument 'cu_seqlens'[B=", num_seqs, "] = ", layout.cu_seqlens[num_seqs],
                                             " is invalid: expected T = ", num_tokens));
  }
  return layout;
}

/// The tokens of one sequence that compete for the FFN: [begin, end) in packed token indices.
/// Tokens [start, start+P) and [start+L-N, start+L) are reserved (always kept); a sequence with
/// L <= P+N has an empty middle and keeps everything.
struct MiddleSegment {
  int begin;
  int end;
  int count() const noexcept { return end - begin; }
};

inline MiddleSegment middle_segment(const BatchLayout& layout, int b, const Config& config) {
  const int start = layout.cu_seqlens[b];
  const int length = layout.length(b);
  const long long reserved = static_cast<long long>(config.initial_tokens()) + config.last_queries();
  if (length <= reserved) return {start + length, start + length};
  return {start + config.initial_tokens(), start + length - config.last_queries()};
}

}  // namespace ftp
