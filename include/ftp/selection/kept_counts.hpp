// KeptCounts: what a pruned layer's selection reports about a batch of B sequences, one array of
// 2B+1 ints so that a single write set (and, on the sort path, a single copy) brings all of it to
// the host:
//   [0, B)        kept tokens of each sequence (reserved ones included)
//   [B]           the total, which sizes the FFN's GEMMs
//   [B+1, 2B+1)   1 where the sequence had a NaN, Inf or negative middle score (it kept everything)
// The selection kernels write it through KeptCounts::Writer, which also stores into the pruner's
// host-mapped copy when it has one: the host then reads the counts right after the stream sync,
// without a device-to-host copy. Plain C++ (FTP_HOST_DEVICE), so host code reads it too.
#pragma once

#include <cstddef>

#include "ftp/detail/host_device.hpp"

namespace ftp {

/// A view of the 2B+1 kept-count ints of one layer (device or host memory).
struct KeptCounts {
  int* data = nullptr;
  int num_seqs = 0;

  /// Ints of the array for B sequences.
  FTP_HOST_DEVICE static constexpr std::size_t ints(int num_seqs) { return 2 * static_cast<std::size_t>(num_seqs) + 1; }

  FTP_HOST_DEVICE int& kept(int b) const { return data[b]; }
  FTP_HOST_DEVICE int& total() const { return data[num_seqs]; }
  FTP_HOST_DEVICE int& invalid(int b) const { return data[num_seqs + 1 + b]; }
  /// The invalid flags as one array [B] (the sort path's kernels write them there).
  FTP_HOST_DEVICE int* invalid_flags() const { return data + num_seqs + 1; }

  /// Device-side writer: every store goes to the device array and, when `host` is not null, to
  /// the same slot of the host-mapped array (pinned host memory the device addresses directly).
  struct Writer {
    int* device = nullptr;
    int* host = nullptr;
    int num_seqs = 0;

    FTP_HOST_DEVICE void set_sequence(int b, int kept_tokens, int invalid_score) const {
      device[b] = kept_tokens;
      device[num_seqs + 1 + b] = invalid_score;
      if (host != nullptr) {
        host[b] = kept_tokens;
        host[num_seqs + 1 + b] = invalid_score;
      }
    }
    FTP_HOST_DEVICE void set_total(int total) const {
      device[num_seqs] = total;
      if (host != nullptr) host[num_seqs] = total;
    }
    FTP_HOST_DEVICE int kept(int b) const { return device[b]; }
  };
};

}  // namespace ftp
