// Kernels of the fused selection for rules that keep a prefix of the score ranking: the top-ranked
// middle tokens up to a cut, where the cut is reached either by mass (CumulativeEta: the fewest top
// tokens whose fixed-point masses sum to ceil(eta x total)) or by count (TopRatio, TopCount). No
// sort: a radix select on the score bits finds the last kept score s* and how many of the tokens
// tied at s* are kept (the earliest ones, as the ranking breaks ties by token index); one ordered
// pass then writes the kept token indices ascending.
//
// One CTA of 512 threads per sequence b (tokens [start, stop), middle [begin, end), n = end - begin):
//   1. validity (NaN, Inf or negative middle score: keep the whole sequence) and the largest score
//   2. mass mode: total fixed-point mass and the threshold ceil(eta * total); count mode: K
//   3. four 8-bit radix passes over the score bits, highest first: a 256-bin histogram of (count,
//      mass) over the candidates that match the prefix chosen so far; one warp finds the bin where
//      the cumulative weight from the top reaches the target
//   4. ordered emission in chunks of 4096 tokens: reserved tokens, scores above s*, and the first
//      k ties at s*, packed by two block scans
// Every sum is an integer sum, so the cut is exact and the same as the host reference's whatever
// order the atomics land in. A second kernel packs the per-sequence lists when B > 1.
#pragma once

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "ftp/detail/importance_mass.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/kernels/radix_digits.cuh"
#include "ftp/reserve/prefix_form.hpp"
#include "ftp/selection/kept_counts.hpp"

namespace ftp {

namespace kernels {

namespace prefix_select {

constexpr int kThreads = 512;
constexpr int kWarps = kThreads / 32;
constexpr int kItems = 8;                       // consecutive tokens per thread in the emission
constexpr int kChunk = kThreads * kItems;
constexpr int kBins = radix_digits::kBins;
constexpr int kPackThreads = 256;               // pack_kept_kernel

struct SharedState {
  unsigned int count[kBins];
  unsigned long long mass[kBins];
  unsigned long long warp_sum[kWarps];
  std::uint32_t warp_max[kWarps];
  std::uint32_t prefix;        // chosen score bits so far
  unsigned long long above;    // weight of the candidates above the chosen prefix
};

/// Sum over the block of one uint64 per thread (every thread gets it).
__device__ inline unsigned long long block_sum(unsigned long long v, SharedState& s) {
  for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) s.warp_sum[warp] = v;
  __syncthreads();
  unsigned long long total = 0;
  for (int w = 0; w < kWarps; ++w) total += s.warp_sum[w];  // fixed order
  return total;
}

__device__ inline std::uint32_t block_max(std::uint32_t v, SharedState& s) {
  for (int o = 16; o > 0; o /= 2) v = max(v, __shfl_xor_sync(0xffffffffu, v, o));
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads();
  if (lane == 0) s.warp_max[warp] = v;
  __syncthreads();
  std::uint32_t m = 0;
  for (int w = 0; w < kWarps; ++w) m = max(m, s.warp_max[w]);
  return m;
}

using radix_digits::score_bits;

}  // namespace prefix_select

/// Fused selection, one CTA (512 threads) per sequence. Writes the kept token indices of sequence
/// b, ascending, to out + cu_seqlens[b] (the pruner's kept list itself when B = 1, else a scratch
/// array the pack kernel reads), and through `counts` how many and whether a middle score was
/// invalid (then the whole sequence is kept); for B = 1 also the total.
template <class Rule, PrefixForm kForm>
__global__ void __launch_bounds__(prefix_select::kThreads) prefix_select_kernel(Rule rule, const float* scores,
                                                                                DeviceBatch batch, int* out,
                                                                                KeptCounts::Writer counts) {
  using namespace prefix_select;
  using BlockScan = cub::BlockScan<int, kThreads>;
  __shared__ SharedState s;
  __shared__ typename BlockScan::TempStorage scan_storage;
  const int b = blockIdx.x, B = batch.num_seqs;
  const int start = batch.cu_seqlens[b], stop = batch.cu_seqlens[b + 1];
  const int begin = batch.mid_begin[b], end = batch.mid_end[b], n = end - begin;

  // 1. validity and the largest middle score
  int invalid_here = 0;
  std::uint32_t max_bits = 0;
  for (int t = begin + threadIdx.x; t < end; t += kThreads) {
    const float v = scores[t];
    if (detail::is_valid_score(v)) max_bits = max(max_bits, score_bits(v)); else invalid_here = 1;
  }
  const bool invalid = __syncthreads_or(invalid_here) != 0;
  max_bits = block_max(max_bits, s);

  // 2. the target weight of the cut, or a decision without a cut
  bool keep_all_middle = invalid || n == 0, keep_no_middle = false;
  int exponent = 0;
  unsigned long long target = 0;
  if (!keep_all_middle) {
    if constexpr (kForm == PrefixForm::kMass) {
      exponent = detail::mass_exponent(__uint_as_float(max_bits), n);
      unsigned long long mine = 0;
      for (int t = begin + threadIdx.x; t < end; t += kThreads) mine += detail::quantize_mass(scores[t], exponent);
      const unsigned long long total = block_sum(mine, s);
      target = detail::eta_threshold(total, rule.mass_share());
      keep_no_middle = target == 0;  // the empty set already reaches eta x 0
    } else {
      radix_digits::take_count_cut<kForm>(rule, n, keep_all_middle, keep_no_middle, target);
    }
  }

  // 3. radix select: s* (the last kept score's bits) and the weight of the tokens above it
  std::uint32_t cut = 0;
  unsigned long long above = 0;
  if (!keep_all_middle && !keep_no_middle) {  // uniform over the CTA
    if (threadIdx.x == 0) {
      s.prefix = 0;
      s.above = 0;
    }
    std::uint32_t mask = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < kBins; i += kThreads) {
        s.count[i] = 0;
        s.mass[i] = 0;
      }
      __syncthreads();
      const std::uint32_t prefix = s.prefix;
      radix_digits::accumulate_digits<kForm>(scores, begin, end, kThreads, mask, prefix, shift, exponent, s.count,
                                             s.mass);
      __syncthreads();
      if (threadIdx.x < 32) {
        const int lane = threadIdx.x;
        unsigned long long w[8];
        const unsigned long long lane_sum = radix_digits::load_lane_bins<kForm>(lane, s.count, s.mass, w);
        int digit = 0;
        unsigned long long above_cut = 0;
        if (radix_digits::find_cut_digit(lane, w, lane_sum, s.above, target, digit, above_cut)) {
          s.prefix = prefix | (static_cast<std::uint32_t>(digit) << shift);
          s.above = above_cut;
        }
      }
      mask |= 0xffu << shift;
      __syncthreads();
    }
    cut = s.prefix;
    above = s.above;
  }
  // How many of the tokens tied at the cut are kept (the earliest ones).
  const unsigned long long ties_kept =
      !keep_all_middle && !keep_no_middle ? radix_digits::ties_kept_at_cut<kForm>(cut, exponent, target, above) : 0;

  // 4. ordered emission: thread i owns tokens chunk + 8i .. 8i+7
  int kept_so_far = 0, ties_so_far = 0;
  for (int chunk = start; chunk < stop; chunk += kChunk) {
    int keep[kItems], tie[kItems];
    int my_ties = 0;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      const int t = chunk + threadIdx.x * kItems + j;
      keep[j] = 0;
      tie[j] = 0;
      if (t >= stop) continue;
      if (t < begin || t >= end || keep_all_middle) {
        keep[j] = 1;
      } else if (!keep_no_middle) {
        const std::uint32_t bits = score_bits(scores[t]);
        if (bits > cut) keep[j] = 1; else if (bits == cut) tie[j] = 1;
      }
      my_ties += tie[j];
    }
    int tie_offset = 0, chunk_ties = 0;
    BlockScan(scan_storage).ExclusiveSum(my_ties, tie_offset, chunk_ties);
    __syncthreads();
    const int my_keep = radix_digits::keep_earliest_ties(keep, tie, ties_so_far + tie_offset, ties_kept);
    int keep_offset = 0, chunk_kept = 0;
    BlockScan(scan_storage).ExclusiveSum(my_keep, keep_offset, chunk_kept);
    __syncthreads();
    int* dst = out + start + kept_so_far + keep_offset;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      if (keep[j]) *dst++ = chunk + threadIdx.x * kItems + j;
    }
    kept_so_far += chunk_kept;
    ties_so_far += chunk_ties;
  }
  if (threadIdx.x == 0) {
    counts.set_sequence(b, kept_so_far, invalid ? 1 : 0);
    if (B == 1) counts.set_total(kept_so_far);
  }
}

/// B > 1: packs the per-sequence lists (at their token offsets in `lists`) into kept[0 .. total)
/// in sequence order and writes the total. One CTA per sequence; its offset is the sum of the
/// counts before it.
template <int kThreads>
__global__ void __launch_bounds__(kThreads) pack_kept_kernel(DeviceBatch batch, const int* lists, int* kept,
                                                             KeptCounts::Writer counts) {
  __shared__ int offset;
  const int b = blockIdx.x, B = batch.num_seqs;
  if (threadIdx.x == 0) {
    int sum = 0;
    for (int i = 0; i < b; ++i) sum += counts.kept(i);
    offset = sum;
    if (b == B - 1) counts.set_total(sum + counts.kept(b));
  }
  __syncthreads();
  const int* src = lists + batch.cu_seqlens[b];
  const int n = counts.kept(b);
  for (int i = threadIdx.x; i < n; i += kThreads) kept[offset + i] = src[i];
}

}  // namespace kernels
}  // namespace ftp
