// Kernels of the multi-CTA radix select: the same cut as the one-CTA fused select
// (kernels/prefix_selection.cuh) for prefix rules, spread over many CTAs per sequence so that a
// long middle (16k-128k tokens) is read by the whole GPU instead of one SM.
//
// Grid (tiles, B): CTA (x, b) owns the tile x of sequence b's middle (kTile tokens) in the passes,
// and the tile x of the whole sequence in the emission. Per-sequence state lives in global memory
// (RadixSelectState, zeroed by the caller before the first kernel):
//   1. stats         validity (NaN, Inf, negative) and the largest middle score's bits (atomics)
//   2. pass<24..0>   four 8-bit histogram passes of (count, fixed-point mass) over the candidates
//                    that match the prefix chosen so far; each CTA adds its shared histogram into
//                    the sequence's global one, and the last CTA to arrive (a ticket) picks the cut
//                    digit, clears the histogram for the next pass and, after the last pass, the
//                    number of kept ties. Pass 24 also yields the total mass (the sum of its bins).
//   3. count         per emission tile: tokens kept above the cut (reserved ones included) and ties
//   4. emit          per tile: its offset from the tiles and sequences before it, then the kept
//                    token indices in ascending order (two block scans), and the counts
// Every sum is an integer sum, so the cut is exact and identical to the host reference's whatever
// order the atomics land in.
#pragma once
// The non-template kernels are `static __global__`, as in kernels/selection.cuh: one copy per
// translation unit, so that a header-only library links from several .cu files.

#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "ftp/detail/importance_mass.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/kernels/radix_digits.cuh"
#include "ftp/reserve/prefix_form.hpp"
#include "ftp/selection/kept_counts.hpp"

namespace ftp {
namespace kernels {
namespace radix_select {

constexpr int kThreads = 256;
constexpr int kItems = 8;                      // consecutive tokens per thread in the emission
constexpr int kTile = kThreads * kItems;       // tokens per CTA, passes and emission
constexpr int kBins = radix_digits::kBins;

/// What the passes decided for a sequence.
enum Decision : unsigned { kUndecided = 0, kCut = 1, kKeepAllMiddle = 2, kKeepNoMiddle = 3 };

/// One sequence's state across the kernels (zeroed before the stats kernel).
struct RadixSelectState {
  unsigned long long mass[kBins];
  unsigned int count[kBins];
  unsigned long long target;     // weight the kept middle must reach
  unsigned long long above;      // weight of the candidates above the chosen prefix
  unsigned long long ties_kept;  // how many tokens tied at the cut are kept (the earliest)
  unsigned int max_bits;
  unsigned int invalid;
  unsigned int prefix;  // score bits chosen so far; the cut after the last pass
  unsigned int decision;
  unsigned int ticket;
};

/// Tiles of n tokens (at least one, so that every sequence has a CTA that decides and writes).
__host__ __device__ inline int tiles_of(int n) { return n > kTile ? (n + kTile - 1) / kTile : 1; }

using radix_digits::score_bits;

struct MaxOp {
  __device__ unsigned operator()(unsigned a, unsigned b) const { return a > b ? a : b; }
};

}  // namespace radix_select

/// 1. Validity and the largest middle score of each sequence.
static __global__ void __launch_bounds__(radix_select::kThreads) radix_select_stats_kernel(const float* scores,
                                                                                   DeviceBatch batch,
                                                                                   radix_select::RadixSelectState* st) {
  using namespace radix_select;
  using BlockMax = cub::BlockReduce<unsigned, kThreads>;
  __shared__ typename BlockMax::TempStorage storage;
  const int b = blockIdx.y, x = blockIdx.x;
  const int begin = batch.mid_begin[b], end = batch.mid_end[b];
  if (x >= tiles_of(end - begin)) return;
  const int lo = begin + x * kTile, hi = min(end, lo + kTile);
  unsigned max_bits = 0;
  int invalid_here = 0;
  for (int t = lo + threadIdx.x; t < hi; t += kThreads) {
    const float v = scores[t];
    if (detail::is_valid_score(v)) max_bits = max(max_bits, score_bits(v)); else invalid_here = 1;
  }
  const bool invalid = __syncthreads_or(invalid_here) != 0;
  const unsigned m = BlockMax(storage).Reduce(max_bits, MaxOp{});
  if (threadIdx.x == 0) {
    if (m != 0) atomicMax(&st[b].max_bits, m);
    if (invalid) atomicOr(&st[b].invalid, 1u);
  }
}

/// 2. One 8-bit histogram pass at bit `kShift` (24, 16, 8, 0); the last CTA of a sequence decides.
template <class Rule, PrefixForm kForm, int kShift>
__global__ void __launch_bounds__(radix_select::kThreads) radix_select_pass_kernel(Rule rule, const float* scores,
                                                                                  DeviceBatch batch,
                                                                                  radix_select::RadixSelectState* state) {
  using namespace radix_select;
  __shared__ unsigned int s_count[kBins];
  __shared__ unsigned long long s_mass[kBins];
  __shared__ bool s_last;
  const int b = blockIdx.y, x = blockIdx.x;
  const int begin = batch.mid_begin[b], end = batch.mid_end[b], n = end - begin;
  const int tiles = tiles_of(n);
  if (x >= tiles) return;
  RadixSelectState& st = state[b];
  if (st.decision != kUndecided) return;  // decided by an earlier pass (uniform over the sequence's CTAs)

  const int exponent = kForm == PrefixForm::kMass ? detail::mass_exponent(__uint_as_float(st.max_bits), n) : 0;
  if constexpr (kShift == 24) {
    // Decisions that need no histogram, taken alike by every CTA of the sequence.
    unsigned decided = kUndecided;
    if (st.invalid != 0 || n == 0) {
      decided = kKeepAllMiddle;
    } else if constexpr (kForm == PrefixForm::kCount) {
      const radix_digits::CountCut c = radix_digits::count_cut(rule, n);
      if (c.keep_none) decided = kKeepNoMiddle; else if (c.keep_all) decided = kKeepAllMiddle;
    }
    if (decided != kUndecided) {
      if (x == 0 && threadIdx.x == 0) st.decision = decided;
      return;
    }
  }

  for (int i = threadIdx.x; i < kBins; i += kThreads) {
    s_count[i] = 0;
    if constexpr (kForm == PrefixForm::kMass) s_mass[i] = 0;
  }
  __syncthreads();
  const std::uint32_t mask = kShift == 24 ? 0u : ~((1u << (kShift + 8)) - 1u);
  const std::uint32_t prefix = st.prefix;
  const int lo = begin + x * kTile, hi = min(end, lo + kTile);
  radix_digits::accumulate_digits<kForm>(scores, lo, hi, kThreads, mask, prefix, kShift, exponent, s_count, s_mass);
  __syncthreads();
  for (int i = threadIdx.x; i < kBins; i += kThreads) {
    if (s_count[i] != 0) {
      atomicAdd(&st.count[i], s_count[i]);
      if constexpr (kForm == PrefixForm::kMass) atomicAdd(&st.mass[i], s_mass[i]);
    }
  }
  // The last CTA to arrive sees every other CTA's histogram (fence, then the ticket).
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) s_last = atomicAdd(&st.ticket, 1u) == static_cast<unsigned>(tiles - 1);
  __syncthreads();
  if (!s_last) return;
  __threadfence();
  for (int i = threadIdx.x; i < kBins; i += kThreads) {
    s_count[i] = __ldcg(&st.count[i]);
    if constexpr (kForm == PrefixForm::kMass) s_mass[i] = __ldcg(&st.mass[i]);
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x;
    // The first pass starts from nothing above the prefix; a count rule's target is k (mass: from the bins).
    unsigned long long target = st.target, above = st.above;
    if constexpr (kShift == 24) {
      target = 0;
      if constexpr (kForm == PrefixForm::kCount) target = radix_digits::count_cut(rule, n).target;
      above = 0;
    }
    const radix_digits::DigitStep step = radix_digits::decide_cut_digit<kForm>(lane, s_count, s_mass, rule, kShift == 24,
                                                                               target, above, prefix, kShift);
    if (radix_digits::record_digit(step, lane, st, kKeepNoMiddle)) {
      if constexpr (kShift == 0) {
        st.ties_kept = radix_digits::ties_kept_at_cut<kForm>(step.prefix, exponent, step.target, step.above);
        st.decision = kCut;
      }
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < kBins; i += kThreads) {  // a clean histogram for the next pass
    st.count[i] = 0;
    st.mass[i] = 0;
  }
  if (threadIdx.x == 0) st.ticket = 0;
}

namespace radix_select {

/// keep / tie flags of one thread's kItems consecutive tokens from `first`.
__device__ inline int classify(const float* scores, int first, int start, int stop, int begin, int end, unsigned decision,
                               std::uint32_t cut, int (&keep)[kItems], int (&tie)[kItems]) {
  return radix_digits::classify_items<kItems>(scores, first, start, stop, begin, end, decision == kKeepAllMiddle,
                                              decision == kCut, cut, keep, tie);
}

}  // namespace radix_select

/// 3. Per emission tile of the whole sequence: tokens kept outright and ties at the cut.
/// tile_counts[2 * (b * tiles + x)] = kept outright, [.. + 1] = ties (tiles = gridDim.x).
static __global__ void __launch_bounds__(radix_select::kThreads) radix_select_count_kernel(
    const float* scores, DeviceBatch batch, const radix_select::RadixSelectState* state, int* tile_counts) {
  using namespace radix_select;
  using BlockReduce = cub::BlockReduce<int, kThreads>;
  __shared__ typename BlockReduce::TempStorage storage;
  const int b = blockIdx.y, x = blockIdx.x;
  const int start = batch.cu_seqlens[b], stop = batch.cu_seqlens[b + 1];
  if (x >= tiles_of(stop - start)) return;
  const RadixSelectState& st = state[b];
  int keep[kItems], tie[kItems];
  const int first = start + x * kTile + threadIdx.x * kItems;
  const int ties = classify(scores, first, start, stop, batch.mid_begin[b], batch.mid_end[b], st.decision, st.prefix,
                            keep, tie);
  int kept = 0;
#pragma unroll
  for (int j = 0; j < kItems; ++j) kept += keep[j];
  const int tile_kept = BlockReduce(storage).Sum(kept);
  __syncthreads();
  const int tile_ties = BlockReduce(storage).Sum(ties);
  if (threadIdx.x == 0) {
    int* c = tile_counts + 2 * (static_cast<long long>(b) * gridDim.x + x);
    c[0] = tile_kept;
    c[1] = tile_ties;
  }
}

/// 4. Ordered emission: the kept token indices, ascending and packed over the batch, into kept;
/// through `counts`: kept in sequence b, whether b had an invalid middle score, and the total.
static __global__ void __launch_bounds__(radix_select::kThreads) radix_select_emit_kernel(
    const float* scores, DeviceBatch batch, const radix_select::RadixSelectState* state, const int* tile_counts,
    int* kept, KeptCounts::Writer counts) {
  using namespace radix_select;
  using BlockScan = cub::BlockScan<int, kThreads>;
  __shared__ typename BlockScan::TempStorage scan_storage;
  __shared__ long long s_offset, s_ties_before;
  const int b = blockIdx.y, x = blockIdx.x, B = batch.num_seqs, tiles = static_cast<int>(gridDim.x);
  const int start = batch.cu_seqlens[b], stop = batch.cu_seqlens[b + 1];
  if (x >= tiles_of(stop - start)) return;
  const RadixSelectState& st = state[b];
  if (threadIdx.x == 0) {
    // Kept tokens of a sequence: those kept outright plus its first ties_kept ties; a tile's kept
    // ties are the part of [ties before it, + its ties) below ties_kept.
    long long offset = 0;
    for (int q = 0; q < b; ++q) {
      const int qt = tiles_of(batch.cu_seqlens[q + 1] - batch.cu_seqlens[q]);
      long long ties = 0;
      for (int y = 0; y < qt; ++y) {
        const int* c = tile_counts + 2 * (static_cast<long long>(q) * tiles + y);
        offset += c[0];
        ties += c[1];
      }
      offset += static_cast<long long>(state[q].decision == kCut ? min(static_cast<unsigned long long>(ties), state[q].ties_kept) : 0);
    }
    const long long ties_kept = st.decision == kCut ? static_cast<long long>(st.ties_kept) : 0;
    long long before = 0, ties_before = 0, seq_total = 0;
    const int my_tiles = tiles_of(stop - start);
    for (int y = 0; y < my_tiles; ++y) {
      const int* c = tile_counts + 2 * (static_cast<long long>(b) * tiles + y);
      const long long tie_lo = ties_before, tie_hi = ties_before + c[1];
      const long long kept_ties = radix_digits::kept_ties_in(tie_lo, c[1], static_cast<unsigned long long>(ties_kept));
      if (y == x) {
        before = seq_total;
        s_ties_before = ties_before;
      }
      seq_total += c[0] + kept_ties;
      ties_before = tie_hi;
    }
    s_offset = offset + before;
    if (x == 0) {
      counts.set_sequence(b, static_cast<int>(seq_total), st.invalid != 0 ? 1 : 0);
      if (b == B - 1) counts.set_total(static_cast<int>(offset + seq_total));
    }
  }
  __syncthreads();
  int keep[kItems], tie[kItems];
  const int first = start + x * kTile + threadIdx.x * kItems;
  const int my_ties = classify(scores, first, start, stop, batch.mid_begin[b], batch.mid_end[b], st.decision, st.prefix,
                               keep, tie);
  int tie_offset = 0;
  BlockScan(scan_storage).ExclusiveSum(my_ties, tie_offset);
  __syncthreads();
  const unsigned long long ties_kept = st.decision == kCut ? st.ties_kept : 0;
  const int my_keep = radix_digits::keep_earliest_ties(keep, tie, s_ties_before + tie_offset, ties_kept);
  int keep_offset = 0;
  BlockScan(scan_storage).ExclusiveSum(my_keep, keep_offset);
  int* dst = kept + s_offset + keep_offset;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    if (keep[j]) *dst++ = first + j;
  }
}

}  // namespace kernels
}  // namespace ftp
