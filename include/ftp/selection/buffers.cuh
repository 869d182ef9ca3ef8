// SelectionBuffers: the workspace slices every selection path of a pruned layer works in, carved
// once from the pruner's workspace (sizing and carving share one layout).
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
#include "ftp/kernels/radix_select.cuh"
#include "ftp/selection/kept_counts.hpp"
#include "ftp/workspace.hpp"

namespace ftp::detail {

/// Workspace slices of the selection, carved from one WorkspaceCarver layout (sizing or carving).
struct SelectionBuffers {
  float* keys = nullptr;                 // [T] sanitized scores
  std::uint64_t* wide_keys = nullptr;    // [T] (sequence, class, score) keys of the one-sort path
  std::uint64_t* sorted_wide_keys = nullptr;  // [T]
  int* values = nullptr;                 // [T] token indices
  float* sorted_keys = nullptr;          // [T]
  int* sorted_values = nullptr;          // [T]
  std::uint64_t* masses = nullptr;       // [T]
  std::uint64_t* prefix = nullptr;       // [T]
  std::uint8_t* flags = nullptr;         // [T] 1 = token runs the FFN
  int* kept_tokens = nullptr;            // [T] ascending packed indices of kept tokens
  int* kept_counts = nullptr;            // [2B+1]: KeptCounts (selection/kept_counts.hpp)
  kernels::radix_select::RadixSelectState* radix_state = nullptr;  // [B] the multi-CTA select's state
  int* radix_tile_counts = nullptr;      // [2 x B x tiles of the longest sequence] its emission tiles
  void* cub_temp = nullptr;
  std::size_t cub_temp_bytes = 0;

  /// The kept counts of the current batch of B sequences.
  KeptCounts counts(int num_seqs) const { return KeptCounts{kept_counts, num_seqs}; }
  /// invalid[b] = 1 when sequence b had a NaN/Inf/negative middle score (KeptCounts' last B ints).
  int* invalid(int num_seqs) const { return counts(num_seqs).invalid_flags(); }

  /// Bytes CUB needs for the largest batch (each call is sized for max T and B; calls run in turn
  /// on one stream, so they share one temporary buffer).
  static std::size_t cub_bytes(int max_tokens, int max_seqs) {
    std::size_t sort_bytes = 0, wide_sort_bytes = 0, scan_bytes = 0, select_bytes = 0;
    const int items = std::max(max_tokens, 1), segments = std::max(max_seqs, 1);
    FTP_CUDA_CHECK(cub::DeviceSegmentedRadixSort::SortPairsDescending(
        nullptr, sort_bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
        static_cast<const int*>(nullptr), static_cast<int*>(nullptr), items, segments,
        static_cast<const int*>(nullptr), static_cast<const int*>(nullptr)));
    FTP_CUDA_CHECK(cub::DeviceRadixSort::SortPairs(nullptr, wide_sort_bytes, static_cast<const std::uint64_t*>(nullptr),
                                                   static_cast<std::uint64_t*>(nullptr), static_cast<const int*>(nullptr),
                                                   static_cast<int*>(nullptr), items));
    FTP_CUDA_CHECK(cub::DeviceScan::InclusiveScanByKey(
        nullptr, scan_bytes, static_cast<const int*>(nullptr), static_cast<const std::uint64_t*>(nullptr),
        static_cast<std::uint64_t*>(nullptr), ::cuda::std::plus<>{}, items));
    FTP_CUDA_CHECK(cub::DeviceSelect::Flagged(nullptr, select_bytes, thrust::counting_iterator<int>(0),
                                              static_cast<const std::uint8_t*>(nullptr), static_cast<int*>(nullptr),
                                              static_cast<int*>(nullptr), items));
    return std::max({sort_bytes, wide_sort_bytes, scan_bytes, select_bytes});
  }

  void layout(WorkspaceCarver& carver, int max_tokens, int max_seqs) {
    const std::size_t t = static_cast<std::size_t>(max_tokens), b = static_cast<std::size_t>(max_seqs);
    keys = carver.take<float>(t, "selection.keys");
    wide_keys = carver.take<std::uint64_t>(t, "selection.wide_keys");
    sorted_wide_keys = carver.take<std::uint64_t>(t, "selection.sorted_wide_keys");
    values = carver.take<int>(t, "selection.values");
    sorted_keys = carver.take<float>(t, "selection.sorted_keys");
    sorted_values = carver.take<int>(t, "selection.sorted_values");
    masses = carver.take<std::uint64_t>(t, "selection.masses");
    prefix = carver.take<std::uint64_t>(t, "selection.prefix");
    flags = carver.take<std::uint8_t>(t, "selection.flags");
    kept_tokens = carver.take<int>(t, "selection.kept_tokens");
    kept_counts = carver.take<int>(KeptCounts::ints(max_seqs), "selection.kept_counts");
    radix_state = carver.take<kernels::radix_select::RadixSelectState>(b, "selection.radix_state");
    radix_tile_counts = carver.take<int>(2 * b * static_cast<std::size_t>(kernels::radix_select::tiles_of(max_tokens)),
                                         "selection.radix_tile_counts");
    cub_temp_bytes = cub_bytes(max_tokens, max_seqs);
    cub_temp = carver.take<std::uint8_t>(cub_temp_bytes, "selection.cub_temp");
  }
};

}  // namespace ftp::detail
