// Kernels of the sorted-segment selection shared by the score-ranked reserve policies
// (CumulativeEta, TopRatio, TopCount and user rules), and of the batch plan.
//
// Flow per pruned layer (T packed tokens, B sequences):
//   prepare   scores[T] -> sort keys/values over the middle segments, flags[T] (reserved = 1,
//             middle = 0), invalid[B] (a middle score is NaN, Inf or negative)
//   (CUB segmented radix sort, descending, stable: ties keep ascending token order)
//   quantize  sorted keys -> fixed-point masses[T] (0 outside middle segments)
//   (CUB inclusive scan by sequence id -> prefix[T], exact integers)
//   mark      flags[token of rank r] = 1 where the rule keeps rank r, or the sequence is invalid
//   count     kept tokens per sequence
#pragma once
// Non-template kernels in these headers are `static __global__`: each translation unit gets its own
// copy, so a header-only library can be included from several .cu files of one program.

#include <cstdint>

#include "ftp/detail/importance_mass.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/reserve/rank_info.hpp"

namespace ftp {

namespace kernels {

/// seq_of_token[t] = b with cu_seqlens[b] <= t < cu_seqlens[b+1]. One thread per token.
static __global__ void fill_seq_of_token_kernel(const int* cu_seqlens, int num_seqs, int num_tokens, int* seq_of_token) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= num_tokens) return;
  int lo = 0, hi = num_seqs;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (cu_seqlens[mid] <= t) lo = mid; else hi = mid;
  }
  seq_of_token[t] = lo;
}

/// Sort inputs and initial flags. One thread per token t of sequence b:
///   middle token: key = canonical score (0 if invalid), flag 0; invalid score -> invalid[b] = 1
///   reserved token: key = 0, flag 1.   value = t always.
/// With `wide_keys` (the one-sort path for long sequences) each token also gets a 64-bit key
///   b << 34 | class << 32 | payload,  class 0 = before the middle, 1 = middle, 2 = after it,
/// payload = ~bits(score) in the middle (descending scores ascend) and the local index elsewhere.
/// One ascending radix sort of these keys leaves every reserved token in place and sorts each
/// middle segment descending within [mid_begin, mid_end), stable, like the segmented sort.
static __global__ void prepare_selection_kernel(const float* scores, DeviceBatch batch, float* keys, int* values,
                                                std::uint8_t* flags, int* invalid, std::uint64_t* wide_keys) {
  const int t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= batch.num_tokens) return;
  const int b = batch.seq_of_token[t];
  const bool middle = t >= batch.mid_begin[b] && t < batch.mid_end[b];
  float key = 0.0f;
  if (middle) {
    const float s = scores[t];
    if (detail::is_valid_score(s)) {
      key = detail::canonical_score(s);
    } else {
      invalid[b] = 1;  // benign race: every writer stores 1
    }
  }
  keys[t] = key;
  values[t] = t;
  flags[t] = middle ? 0 : 1;
  if (wide_keys != nullptr) {
    const std::uint64_t cls = t < batch.mid_begin[b] ? 0 : (middle ? 1 : 2);
    const std::uint32_t payload = middle ? ~__float_as_uint(key) : static_cast<std::uint32_t>(t - batch.cu_seqlens[b]);
    wide_keys[t] = (static_cast<std::uint64_t>(b) << 34) | (cls << 32) | payload;
  }
}

/// sorted_keys[i] = the score encoded in the wide key at middle position i (the one-sort path).
static __global__ void decode_wide_keys_kernel(const std::uint64_t* sorted_wide_keys, DeviceBatch batch,
                                               float* sorted_keys) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= batch.num_tokens) return;
  const int b = batch.seq_of_token[i];
  if (i >= batch.mid_begin[b] && i < batch.mid_end[b]) {
    sorted_keys[i] = __uint_as_float(~static_cast<std::uint32_t>(sorted_wide_keys[i]));
  }
}

/// masses[i] = fixed-point mass of the sorted key at position i of a middle segment, else 0.
static __global__ void quantize_masses_kernel(const float* sorted_keys, DeviceBatch batch, std::uint64_t* masses) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= batch.num_tokens) return;
  const int b = batch.seq_of_token[i];
  const int begin = batch.mid_begin[b], end = batch.mid_end[b];
  std::uint64_t mass = 0;
  if (i >= begin && i < end) {
    const int exponent = detail::mass_exponent(sorted_keys[begin], end - begin);
    mass = detail::quantize_mass(sorted_keys[i], exponent);
  }
  masses[i] = mass;
}

/// Sets flags[token] = 1 for every middle token its sequence keeps. `prefix` (inclusive scan of
/// masses by sequence) is read only when the rule needs masses (prefix may be null otherwise).
template <class Rule>
static __global__ void mark_kept_kernel(Rule rule, DeviceBatch batch, const float* sorted_keys, const int* sorted_values,
                                 const std::uint64_t* masses, const std::uint64_t* prefix, const int* invalid,
                                 std::uint8_t* flags) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= batch.num_tokens) return;
  const int b = batch.seq_of_token[i];
  const int begin = batch.mid_begin[b], end = batch.mid_end[b];
  if (i < begin || i >= end) return;
  bool keep = invalid[b] != 0;
  if (!keep) {
    RankInfo info;
    info.rank = i - begin;
    info.count = end - begin;
    info.mass_before = prefix != nullptr ? prefix[i] - masses[i] : 0;
    info.total_mass = prefix != nullptr ? prefix[end - 1] : 0;
    info.score = sorted_keys[i];
    info.max_score = sorted_keys[begin];
    keep = rule.keep(info);
  }
  if (keep) flags[sorted_values[i]] = 1;
}

/// counts[b] = number of flagged tokens of sequence b. One block per sequence; fixed-order
/// reduction.
template <int kThreads>
static __global__ void __launch_bounds__(kThreads) count_kept_kernel(const std::uint8_t* flags, const int* cu_seqlens,
                                                              int* counts) {
  __shared__ int warp_sums[kThreads / 32];
  const int b = blockIdx.x;
  int sum = 0;
  for (int t = cu_seqlens[b] + threadIdx.x; t < cu_seqlens[b + 1]; t += kThreads) sum += flags[t];
  for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_down_sync(0xffffffffu, sum, offset);
  if (threadIdx.x % 32 == 0) warp_sums[threadIdx.x / 32] = sum;
  __syncthreads();
  if (threadIdx.x == 0) {
    int total = 0;
    for (int w = 0; w < kThreads / 32; ++w) total += warp_sums[w];
    counts[b] = total;
  }
}

/// Prefix offsets of per-sequence work units of `unit` tokens: offsets[b+1] = offsets[b] +
/// ceil(L_b / unit). One thread (B is small and this runs once per plan).
static __global__ void unit_offsets_kernel(const int* cu_seqlens, int num_seqs, int unit, int* offsets) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  int total = 0;
  offsets[0] = 0;
  for (int b = 0; b < num_seqs; ++b) {
    const int length = cu_seqlens[b + 1] - cu_seqlens[b];
    total += (length + unit - 1) / unit;
    offsets[b + 1] = total;
  }
}

}  // namespace kernels
}  // namespace ftp
