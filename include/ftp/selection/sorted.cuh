// The selection machinery every score-ranked reserve policy shares: validate and sort each
// sequence's middle scores (descending), turn them into exact prefix masses (CUB scan by
// sequence), apply the policy's rank rule, and compact the kept token indices (CUB select). A
// policy only supplies the rule; the rest is written once here.
//
// Two ways to sort, same result (stable, descending, ties by token index):
// - CUB DeviceSegmentedRadixSort over the middle segments, for batches of short sequences: it
//   gives each segment one thread block, which suits many short segments;
// - one CUB DeviceRadixSort of 64-bit keys (sequence, class, score) over all T tokens, for batches
//   with a long sequence, where one block per segment would leave the GPU idle (at 32k tokens
//   the segmented sort alone took 0.17 ms on an H100).
#pragma once

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>
#include <cub/device/device_select.cuh>
#include <thrust/iterator/counting_iterator.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "ftp/cuda_check.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/kernels/selection.cuh"
#include "ftp/selection/buffers.cuh"

namespace ftp::detail {

constexpr int kSelectionThreads = 256;

/// Middle segments longer than this are sorted by the one-sort path (see the file comment).
constexpr int kLongestSegmentForSegmentedSort = 4096;

/// Chooses the sort for a planned batch from its longest middle segment.
inline bool use_wide_sort(int longest_middle) { return longest_middle > kLongestSegmentForSegmentedSort; }

inline unsigned grid_for(int items) {
  return static_cast<unsigned>((std::max(items, 1) + kSelectionThreads - 1) / kSelectionThreads);
}

/// Marks the kept tokens of every sequence in buf.flags: reserved tokens, the tokens `rule` keeps
/// among each middle segment, and all middle tokens of sequences with an invalid score.
template <class Rule>
void mark_kept_tokens(const Rule& rule, bool needs_masses, bool wide_sort, const float* d_scores,
                      const DeviceBatch& batch, SelectionBuffers& buf, cudaStream_t stream) {
  const int T = batch.num_tokens, B = batch.num_seqs;
  if (T == 0) return;
  FTP_CUDA_CHECK(cudaMemsetAsync(buf.invalid(B), 0, sizeof(int) * B, stream));
  kernels::prepare_selection_kernel<<<grid_for(T), kSelectionThreads, 0, stream>>>(
      d_scores, batch, buf.keys, buf.values, buf.flags, buf.invalid(B), wide_sort ? buf.wide_keys : nullptr);
  FTP_CUDA_CHECK_LAUNCH();
  std::size_t bytes = buf.cub_temp_bytes;
  if (wide_sort) {
    // key bits in use: 32 payload + 2 class + enough for the sequence index
    const int end_bit = 34 + ceil_log2(static_cast<std::uint64_t>(B));
    FTP_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(buf.cub_temp, bytes, buf.wide_keys, buf.sorted_wide_keys, buf.values,
                                                   buf.sorted_values, T, 0, end_bit, stream));
    kernels::decode_wide_keys_kernel<<<grid_for(T), kSelectionThreads, 0, stream>>>(buf.sorted_wide_keys, batch,
                                                                                    buf.sorted_keys);
    FTP_CUDA_CHECK_LAUNCH();
  } else {
    FTP_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
        buf.cub_temp, bytes, buf.keys, buf.sorted_keys, buf.values, buf.sorted_values, T, B, batch.mid_begin,
        batch.mid_end, 0, static_cast<int>(sizeof(float) * 8), stream));
  }
  if (needs_masses) {
    kernels::quantize_masses_kernel<<<grid_for(T), kSelectionThreads, 0, stream>>>(buf.sorted_keys, batch,
                                                                                   buf.masses);
    FTP_CUDA_CHECK_LAUNCH();
    bytes = buf.cub_temp_bytes;
    FTP_CUDA_CHECK(cub::DeviceScan::InclusiveScanByKey(buf.cub_temp, bytes, batch.seq_of_token, buf.masses,
                                                       buf.prefix, ::cuda::std::plus<>{}, T,
                                                       ::cuda::std::equal_to<>{}, stream));
  }
  kernels::mark_kept_kernel<<<grid_for(T), kSelectionThreads, 0, stream>>>(
      rule, batch, buf.sorted_keys, buf.sorted_values, buf.masses, needs_masses ? buf.prefix : nullptr, buf.invalid(B),
      buf.flags);
  FTP_CUDA_CHECK_LAUNCH();
}

/// Compacts the flagged tokens into buf.kept_tokens (ascending) and writes per-sequence counts and
/// the total into buf.kept_counts[0..B]. Device work only; the caller copies the counts.
inline void compact_kept_tokens(const DeviceBatch& batch, SelectionBuffers& buf, cudaStream_t stream) {
  const int T = batch.num_tokens, B = batch.num_seqs;
  if (T == 0 || B == 0) {
    FTP_CUDA_CHECK(cudaMemsetAsync(buf.kept_counts, 0, sizeof(int) * (2 * B + 1), stream));
    return;
  }
  std::size_t bytes = buf.cub_temp_bytes;
  FTP_CUDA_CHECK(cub::DeviceSelect::Flagged(buf.cub_temp, bytes, thrust::counting_iterator<int>(0), buf.flags,
                                            buf.kept_tokens, buf.kept_counts + B, T, stream));
  kernels::count_kept_kernel<kSelectionThreads>
      <<<static_cast<unsigned>(B), kSelectionThreads, 0, stream>>>(buf.flags, batch.cu_seqlens, buf.kept_counts);
  FTP_CUDA_CHECK_LAUNCH();
}

}  // namespace ftp::detail
