// Kernel of the cluster radix select (Hopper, sm_90+): the same cut as the one-CTA fused select
// (kernels/prefix_selection.cuh) and the multi-CTA select (kernels/radix_select.cuh), in one
// launch. Each sequence gets a thread block cluster of kClusterSize CTAs; the CTAs split the
// sequence's middle into contiguous slices for the passes and the whole sequence into contiguous
// ranges for the emission, and meet at hardware cluster barriers instead of kernel boundaries.
// Partial results travel through distributed shared memory (each CTA reads the others' shared
// memory), so no global state, memset or ticket is needed.
//
// Per sequence b (middle [begin, end), n tokens), CTA rank r:
//   1. validity and the largest score of its slice      -> cluster barrier, every CTA combines them
//   2. four 8-bit passes, highest digit first: its slice's (count, mass) histogram of the
//      candidates matching the prefix so far            -> barrier; rank 0 sums the CTAs' bins, picks
//      the cut digit (pass 24 also yields the total mass, hence the eta target) -> barrier, every
//      CTA reads rank 0's decision
//   3. kept-outright and tie counts of its range        -> barrier, offsets from the ranks before it
//   4. ordered emission of its range (two block scans a chunk), as in the fused select
// Every sum is an integer sum, so the cut is exact and identical to the host reference's.
#pragma once

#include <cooperative_groups.h>
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
namespace cluster_select {

constexpr int kClusterSize = 8;  // CTAs per sequence: the portable cluster size limit
constexpr int kThreads = 512;
constexpr int kItems = 8;        // consecutive tokens per thread in the emission
constexpr int kChunk = kThreads * kItems;
constexpr int kBins = radix_digits::kBins;

/// What rank 0 decided after a pass.
enum Decision : unsigned { kUndecided = 0, kCut = 1, kKeepNoMiddle = 2 };

/// One CTA's shared state; the fields other CTAs read are written once per phase, before the
/// cluster barrier that publishes them, and not rewritten until every CTA has passed the next one.
struct SharedState {
  unsigned int count[kBins];
  unsigned long long mass[kBins];
  unsigned int max_bits;  // phase 1: this CTA's slice
  unsigned int invalid;
  int kept;               // phase 3: this CTA's range
  int ties;
  // rank 0's decision after each pass
  unsigned int prefix;
  unsigned int decision;
  unsigned long long above;
  unsigned long long target;
};

}  // namespace cluster_select

/// One cluster of kClusterSize CTAs per sequence (grid = kClusterSize x B, launched with the
/// cluster dimension attribute). Writes the kept token indices of sequence b ascending to
/// out + cu_seqlens[b] (the pruner's kept list itself when B = 1, else a scratch array that
/// pack_kept_kernel packs) and its counts through `counts` (and, when B = 1, the total).
template <class Rule, PrefixForm kForm>
__global__ void __launch_bounds__(cluster_select::kThreads) cluster_select_kernel(Rule rule, const float* scores,
                                                                                  DeviceBatch batch, int* out,
                                                                                  KeptCounts::Writer counts) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  using namespace cluster_select;
  namespace cg = cooperative_groups;
  using BlockScan = cub::BlockScan<int, kThreads>;
  using BlockReduce = cub::BlockReduce<int, kThreads>;
  __shared__ SharedState s;
  __shared__ union {
    typename BlockScan::TempStorage scan;
    typename BlockReduce::TempStorage reduce;
    typename cub::BlockReduce<unsigned, kThreads>::TempStorage reduce_max;
  } storage;
  cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int b = static_cast<int>(blockIdx.x) / kClusterSize, B = batch.num_seqs;
  const int start = batch.cu_seqlens[b], stop = batch.cu_seqlens[b + 1];
  const int begin = batch.mid_begin[b], end = batch.mid_end[b], n = end - begin;
  const int slice = (n + kClusterSize - 1) / kClusterSize;
  const int lo = begin + min(n, rank * slice), hi = begin + min(n, (rank + 1) * slice);

  // 1. validity and the largest middle score
  int invalid_here = 0;
  unsigned max_here = 0;
  for (int t = lo + static_cast<int>(threadIdx.x); t < hi; t += kThreads) {
    const float v = scores[t];
    if (detail::is_valid_score(v)) max_here = max(max_here, radix_digits::score_bits(v)); else invalid_here = 1;
  }
  invalid_here = __syncthreads_or(invalid_here);
  max_here = cub::BlockReduce<unsigned, kThreads>(storage.reduce_max).Reduce(max_here, [](unsigned a, unsigned c) {
    return a > c ? a : c;
  });
  if (threadIdx.x == 0) {
    s.max_bits = max_here;
    s.invalid = invalid_here != 0 ? 1u : 0u;
  }
  cluster.sync();
  unsigned max_bits = 0;
  bool invalid = false;
  for (int r = 0; r < kClusterSize; ++r) {
    const SharedState* other = cluster.map_shared_rank(&s, r);
    max_bits = max(max_bits, other->max_bits);
    invalid = invalid || other->invalid != 0;
  }

  // Decisions that need no histogram, alike in every CTA of the cluster.
  bool keep_all_middle = invalid || n == 0, keep_no_middle = false;
  unsigned long long target = 0;
  const int exponent = kForm == PrefixForm::kMass ? detail::mass_exponent(__uint_as_float(max_bits), n) : 0;
  radix_digits::take_count_cut<kForm>(rule, n, keep_all_middle, keep_no_middle, target);

  // 2. radix select: the cut (the last kept score's bits) and the weight above it
  std::uint32_t cut = 0;
  unsigned long long above = 0;
  if (!keep_all_middle && !keep_no_middle) {  // uniform over the cluster
    std::uint32_t mask = 0, prefix = 0;
    for (int shift = 24; shift >= 0; shift -= 8) {
      for (int i = threadIdx.x; i < kBins; i += kThreads) {
        s.count[i] = 0;
        s.mass[i] = 0;
      }
      __syncthreads();
      radix_digits::accumulate_digits<kForm>(scores, lo, hi, kThreads, mask, prefix, shift, exponent, s.count, s.mass);
      cluster.sync();  // every CTA's histogram is complete
      if (rank == 0) {
        // Bin i summed over the CTAs in rank order, in place: only rank 0 reads rank 0's bins.
        for (int i = threadIdx.x; i < kBins; i += kThreads) {
          unsigned int c = 0;
          unsigned long long m = 0;
          for (int r = 0; r < kClusterSize; ++r) {
            const SharedState* other = cluster.map_shared_rank(&s, r);
            c += other->count[i];
            if constexpr (kForm == PrefixForm::kMass) m += other->mass[i];
          }
          s.count[i] = c;
          s.mass[i] = m;
        }
        __syncthreads();
        if (threadIdx.x < 32) {
          const int lane = threadIdx.x;
          const radix_digits::DigitStep step = radix_digits::decide_cut_digit<kForm>(
              lane, s.count, s.mass, rule, shift == 24, target, above, prefix, shift);
          if (radix_digits::record_digit(step, lane, s, kKeepNoMiddle)) s.decision = shift == 0 ? kCut : kUndecided;
        }
      }
      cluster.sync();  // rank 0's decision is visible
      const SharedState* first = cluster.map_shared_rank(&s, 0);
      const unsigned decision = first->decision;
      if (decision == kKeepNoMiddle) {
        keep_no_middle = true;
        break;
      }
      prefix = first->prefix;
      above = first->above;
      target = first->target;
      mask |= 0xffu << shift;
    }
    cut = prefix;
  }
  // How many of the tokens tied at the cut are kept (the earliest ones).
  const bool cut_middle = !keep_all_middle && !keep_no_middle;
  const unsigned long long ties_kept =
      cut_middle ? radix_digits::ties_kept_at_cut<kForm>(cut, exponent, target, above) : 0;

  // keep / tie flags of the kItems consecutive tokens from `first` (of this CTA's range [e_lo, e_hi))
  const int length = stop - start;
  const int range = (length + kClusterSize - 1) / kClusterSize;
  const int e_lo = start + min(length, rank * range), e_hi = start + min(length, (rank + 1) * range);
  auto classify = [&](int first, int (&keep)[kItems], int (&tie)[kItems]) {
    return radix_digits::classify_items<kItems>(scores, first, e_lo, e_hi, begin, end, keep_all_middle, cut_middle,
                                                cut, keep, tie);
  };

  // 3. this range's kept-outright and tie counts, then its offsets from the ranks before it
  int kept_here = 0, ties_here = 0;
  for (int chunk = e_lo; chunk < e_hi; chunk += kChunk) {
    int keep[kItems], tie[kItems];
    ties_here += classify(chunk + static_cast<int>(threadIdx.x) * kItems, keep, tie);
#pragma unroll
    for (int j = 0; j < kItems; ++j) kept_here += keep[j];
  }
  kept_here = BlockReduce(storage.reduce).Sum(kept_here);
  __syncthreads();
  ties_here = BlockReduce(storage.reduce).Sum(ties_here);
  if (threadIdx.x == 0) {
    s.kept = kept_here;
    s.ties = ties_here;
  }
  cluster.sync();
  long long kept_before = 0, ties_before = 0, seq_total = 0, ties_seen = 0;
  for (int r = 0; r < kClusterSize; ++r) {
    const SharedState* other = cluster.map_shared_rank(&s, r);
    if (r == rank) {
      kept_before = seq_total;
      ties_before = ties_seen;
    }
    seq_total += other->kept + radix_digits::kept_ties_in(ties_seen, other->ties, ties_kept);
    ties_seen += other->ties;
  }
  cluster.sync();  // no CTA reads another's shared memory after this: each may finish alone
  if (rank == 0 && threadIdx.x == 0) {
    counts.set_sequence(b, static_cast<int>(seq_total), invalid ? 1 : 0);
    if (B == 1) counts.set_total(static_cast<int>(seq_total));
  }

  // 4. ordered emission of this range: thread i owns tokens chunk + 8i .. 8i+7
  int kept_so_far = static_cast<int>(kept_before);
  long long ties_so_far = ties_before;
  for (int chunk = e_lo; chunk < e_hi; chunk += kChunk) {
    int keep[kItems], tie[kItems];
    const int first = chunk + static_cast<int>(threadIdx.x) * kItems;
    const int my_ties = classify(first, keep, tie);
    int tie_offset = 0, chunk_ties = 0;
    BlockScan(storage.scan).ExclusiveSum(my_ties, tie_offset, chunk_ties);
    __syncthreads();
    const int my_keep = radix_digits::keep_earliest_ties(keep, tie, ties_so_far + tie_offset, ties_kept);
    int keep_offset = 0, chunk_kept = 0;
    BlockScan(storage.scan).ExclusiveSum(my_keep, keep_offset, chunk_kept);
    __syncthreads();
    int* dst = out + start + kept_so_far + keep_offset;
#pragma unroll
    for (int j = 0; j < kItems; ++j) {
      if (keep[j]) *dst++ = first + j;
    }
    kept_so_far += chunk_kept;
    ties_so_far += chunk_ties;
  }
#else
  (void)rule, (void)scores, (void)batch, (void)out, (void)counts;
  __trap();  // launched only on devices of compute capability 9.0 or newer (the dispatcher checks)
#endif
}

}  // namespace kernels
}  // namespace ftp
