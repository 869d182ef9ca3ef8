// DeviceBatch: the batch layout as the kernels see it, uploaded once per batch by Pruner::plan.
#pragma once

namespace ftp {

/// Trivially copyable view of a planned batch (all pointers into the pruner's workspace).
/// The middle segment of sequence b (tokens that compete for the FFN) is [mid_begin[b], mid_end[b]).
struct DeviceBatch {
  const int* cu_seqlens = nullptr;    ///< [B+1]
  const int* seq_of_token = nullptr;  ///< [T]: sequence index of each packed token
  const int* mid_begin = nullptr;     ///< [B]
  const int* mid_end = nullptr;       ///< [B]
  int num_seqs = 0;                   ///< B
  int num_tokens = 0;                 ///< T
};

}  // namespace ftp
