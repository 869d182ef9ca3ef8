// Device pieces of the 8-bit radix passes that both prefix selections run (the one-CTA fused select
// of prefix_selection.cuh and the multi-CTA select of radix_select.cuh): the score bits that order
// like the scores, the (count, mass) digit histogram of one pass, the warp that finds the cut
// digit in a 256-bin histogram, and the tie rules at the cut (how many ties are kept, which ones).
// Every weight is an integer, so the cut does not depend on the order in which atomics land.
#pragma once

#include <cstdint>

#include "ftp/detail/importance_mass.hpp"
#include "ftp/reserve/prefix_form.hpp"

namespace ftp {
namespace kernels {
namespace radix_digits {

constexpr int kBins = 256;

/// Score bits that order like the scores: valid scores are >= 0, and -0 becomes +0.
__device__ inline std::uint32_t score_bits(float s) { return __float_as_uint(detail::canonical_score(s)); }

/// Adds to the shared histograms count[kBins] (and mass[kBins] in mass mode) the digit
/// (bits >> shift) & 0xff of every token t in [lo, hi), visited with this thread's stride
/// (lo + threadIdx.x, then += step), whose higher bits (bits & mask) equal prefix. Run-length
/// accumulation: neighbouring tokens mostly share the high digits, so flushing a run only when the
/// digit changes keeps the shared atomics few.
template <PrefixForm kForm>
__device__ inline void accumulate_digits(const float* scores, int lo, int hi, int step, std::uint32_t mask,
                                         std::uint32_t prefix, int shift, int exponent, unsigned int* count,
                                         unsigned long long* mass) {
  int run_digit = -1;
  unsigned int run_count = 0;
  unsigned long long run_mass = 0;
  for (int t = lo + static_cast<int>(threadIdx.x); t < hi; t += step) {
    const float v = scores[t];
    const std::uint32_t bits = score_bits(v);
    if ((bits & mask) != prefix) continue;
    const int digit = static_cast<int>((bits >> shift) & 0xffu);
    if (digit != run_digit) {
      if (run_count != 0) {
        atomicAdd(&count[run_digit], run_count);
        if constexpr (kForm == PrefixForm::kMass) atomicAdd(&mass[run_digit], run_mass);
      }
      run_digit = digit;
      run_count = 0;
      run_mass = 0;
    }
    ++run_count;
    if constexpr (kForm == PrefixForm::kMass) run_mass += detail::quantize_mass(v, exponent);
  }
  if (run_count != 0) {
    atomicAdd(&count[run_digit], run_count);
    if constexpr (kForm == PrefixForm::kMass) atomicAdd(&mass[run_digit], run_mass);
  }
}

/// Lane l of one warp loads the weights (mass in mass mode, else count) of bins 8l..8l+7 into w and
/// returns their sum.
template <PrefixForm kForm>
__device__ inline unsigned long long load_lane_bins(int lane, const unsigned int* count,
                                                    const unsigned long long* mass, unsigned long long (&w)[8]) {
  unsigned long long lane_sum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) {
    w[j] = kForm == PrefixForm::kMass ? mass[8 * lane + j] : count[8 * lane + j];
    lane_sum += w[j];
  }
  return lane_sum;
}

/// Called by all 32 lanes with their bins from load_lane_bins, the weight of the candidates above
/// the prefix chosen so far and the target (above < target <= above + all candidates). The cut
/// digit is the first bin, from the top, where the weight above it plus its own reaches the target.
/// Returns true in exactly that bin's lane, with digit = the bin and above_cut = the weight of the
/// bins above it (plus above). Ends with __syncwarp, so every lane has read whatever it passed in
/// before the cut lane overwrites it.
__device__ inline bool find_cut_digit(int lane, const unsigned long long (&w)[8], unsigned long long lane_sum,
                                      unsigned long long above, unsigned long long target, int& digit,
                                      unsigned long long& above_cut) {
  unsigned long long inclusive = lane_sum;  // suffix sum over the lanes from this one up
  for (int o = 1; o < 32; o *= 2) {
    const unsigned long long other = __shfl_down_sync(0xffffffffu, inclusive, o);
    if (lane + o < 32) inclusive += other;
  }
  unsigned long long acc = above + inclusive - lane_sum;  // weight above this lane's bins
  __syncwarp();
  if (!(acc < target && acc + lane_sum >= target)) return false;
  digit = 8 * lane + 7;
  for (int j = 7; j >= 0; --j) {
    if (acc + w[j] >= target) {
      digit = 8 * lane + j;
      break;
    }
    acc += w[j];
  }
  above_cut = acc;
  return true;
}

/// Mass mode, first pass (which sees every middle token, so its bins sum to the total mass): the
/// target ceil(share x total) from each lane's bin sum, alike in all 32 lanes.
__device__ inline unsigned long long mass_target_of_bins(unsigned long long lane_sum, double share) {
  unsigned long long total = lane_sum;
  for (int o = 16; o > 0; o /= 2) total += __shfl_xor_sync(0xffffffffu, total, o);
  return detail::eta_threshold(total, share);
}

/// Count mode: what keep_count(n) decides for a middle of n tokens: no middle token (k <= 0), all
/// of them (k >= n), or a cut at the top k.
struct CountCut {
  bool keep_none;
  bool keep_all;
  unsigned long long target;  // k, clamped at 0
};
template <class Rule>
__device__ inline CountCut count_cut(const Rule& rule, int n) {
  const long long k = rule.keep_count(n);
  return CountCut{k <= 0, k >= n, static_cast<unsigned long long>(k > 0 ? k : 0)};
}

/// The count form's decisions that need no histogram, for a middle not already kept whole: keep
/// none, keep all, or the rank target of the cut. The mass form's target needs the first histogram
/// (decide_cut_digit), so it leaves everything as it is.
template <PrefixForm kForm, class Rule>
__device__ inline void take_count_cut(const Rule& rule, int n, bool& keep_all_middle, bool& keep_no_middle,
                                      unsigned long long& target) {
  if constexpr (kForm == PrefixForm::kCount) {
    if (keep_all_middle) return;
    const CountCut c = count_cut(rule, n);
    keep_no_middle = c.keep_none;
    keep_all_middle = c.keep_all;
    target = c.target;
  }
}

/// One digit of the cut, decided by one warp over a complete histogram (all 32 lanes call it, with
/// the same target, above and prefix, read before the call: the cut lane may overwrite their source
/// once it returns). first_digit: the first pass, whose bins hold the whole middle; in mass mode the
/// target is then ceil(share x their total).
struct DigitStep {
  bool keep_none;   // mass mode: the target is 0, the empty set already reaches it
  bool found_here;  // this lane holds the cut digit: prefix and above below are its
  std::uint32_t prefix;
  unsigned long long above;
  unsigned long long target;
};
template <PrefixForm kForm, class Rule>
__device__ inline DigitStep decide_cut_digit(int lane, const unsigned int* count, const unsigned long long* mass,
                                             const Rule& rule, bool first_digit, unsigned long long target,
                                             unsigned long long above, std::uint32_t prefix, int shift) {
  unsigned long long w[8];
  const unsigned long long lane_sum = load_lane_bins<kForm>(lane, count, mass, w);
  if constexpr (kForm == PrefixForm::kMass) {
    if (first_digit) target = mass_target_of_bins(lane_sum, rule.mass_share());
  }
  DigitStep step{target == 0, false, 0, 0, target};
  if (step.keep_none) return step;
  int digit = 0;
  step.found_here = find_cut_digit(lane, w, lane_sum, above, target, digit, step.above);
  step.prefix = prefix | (static_cast<std::uint32_t>(digit) << shift);
  return step;
}

/// The deciding warp's writes of one step into the state its CTAs share (prefix, above, target and
/// decision fields): lane 0 records keep_none_decision, the cut lane the digit. Returns true in the
/// cut lane, which then records the step's decision.
template <class SharedDecision>
__device__ inline bool record_digit(const DigitStep& step, int lane, SharedDecision& state,
                                    unsigned keep_none_decision) {
  if (step.keep_none) {
    if (lane == 0) state.decision = keep_none_decision;
    return false;
  }
  if (!step.found_here) return false;
  state.prefix = step.prefix;
  state.above = step.above;
  state.target = step.target;
  return true;
}

/// Keep / tie flags of kItems consecutive tokens from `first`, of which those outside [lo, hi) are
/// neither: a token outside the middle [begin, end) is kept, as is every one when keep_all_middle;
/// with a cut, a middle token above it is kept and one equal to it is a tie. Returns the ties.
template <int kItems>
__device__ inline int classify_items(const float* scores, int first, int lo, int hi, int begin, int end,
                                     bool keep_all_middle, bool cut_middle, std::uint32_t cut, int (&keep)[kItems],
                                     int (&tie)[kItems]) {
  int ties = 0;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    const int t = first + j;
    keep[j] = 0;
    tie[j] = 0;
    if (t < lo || t >= hi) continue;
    if (t < begin || t >= end || keep_all_middle) {
      keep[j] = 1;
    } else if (cut_middle) {
      const std::uint32_t bits = score_bits(scores[t]);
      if (bits > cut) keep[j] = 1; else if (bits == cut) tie[j] = 1;
    }
    ties += tie[j];
  }
  return ties;
}

/// How many of the tokens tied at the cut are kept (the earliest ones), given the target weight and
/// the weight `above` of the tokens above the cut (above < target <= above + the ties' weight): each
/// tie weighs its fixed-point mass (mass mode) or 1 (count mode).
template <PrefixForm kForm>
__device__ inline unsigned long long ties_kept_at_cut(std::uint32_t cut, int exponent, unsigned long long target,
                                                      unsigned long long above) {
  if constexpr (kForm == PrefixForm::kMass) {
    const unsigned long long tie_mass = detail::quantize_mass(__uint_as_float(cut), exponent);
    return (target - above + tie_mass - 1) / tie_mass;  // tie_mass > 0: the cut bin reached the target
  } else {
    (void)cut, (void)exponent;
    return target - above;
  }
}

/// Kept ties among the `ties` ties of ranks [first_rank, first_rank + ties) (ranks in token order
/// over the sequence): those below ties_kept.
__device__ inline long long kept_ties_in(long long first_rank, long long ties, unsigned long long ties_kept) {
  const long long limit = static_cast<long long>(ties_kept);
  return max(0LL, min(first_rank + ties, limit) - first_rank);
}

/// One thread's emission step: of its ties (tie[j] = 1), in token order from tie rank `first_rank`,
/// keeps those of rank below ties_kept (keep[j] = 1). Returns the thread's kept count.
template <int kItems>
__device__ inline int keep_earliest_ties(int (&keep)[kItems], const int (&tie)[kItems], long long first_rank,
                                         unsigned long long ties_kept) {
  int kept = 0;
#pragma unroll
  for (int j = 0; j < kItems; ++j) {
    if (tie[j]) {
      keep[j] = static_cast<unsigned long long>(first_rank) < ties_kept;
      ++first_rank;
    }
    kept += keep[j];
  }
  return kept;
}

}  // namespace radix_digits
}  // namespace kernels
}  // namespace ftp
