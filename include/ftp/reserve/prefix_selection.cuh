// The fused selection of prefix rules (kernels/prefix_selection.cuh) and the trait by which the
// pruner recognizes them: a rule whose kept ranks are the top of the ranking up to a cut by mass
// or by count declares `static constexpr PrefixForm kPrefixForm` and the cut's parameter
// (`mass_share()` or `keep_count(n)`); the pruner then selects with one or two launches instead of
// the sort, scan and compaction of sorted_selection.cuh. Both give exactly the same tokens.
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "ftp/cuda_check.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/kernels/prefix_selection.cuh"
#include "ftp/reserve/sorted_selection.cuh"

namespace ftp {

template <class Rule, class = void>
struct has_prefix_form : std::false_type {};
template <class Rule>
struct has_prefix_form<Rule, std::void_t<decltype(Rule::kPrefixForm)>> : std::true_type {};
/// True for reserve rules with a prefix form (CumulativeEta, TopRatio, TopCount).
template <class Rule>
inline constexpr bool has_prefix_form_v = has_prefix_form<Rule>::value;

namespace detail {

/// The fused select runs one CTA per sequence; it beats the sort's dozen launches on short
/// sequences and loses on long ones. Measured on an H200 (bench/overhead.cu, CumulativeEta, B = 1):
/// fused / sorted 0.037 / 0.080 ms at 1k tokens, 0.063 / 0.088 at 4k, 0.099 / 0.098 at 8k, 0.33 / 0.11
/// at 32k. SelectionPath::kAuto takes the fused select up to this longest middle segment and the
/// multi-CTA radix select (select_prefix_tokens_multi_cta) beyond it, where one CTA per sequence
/// leaves the GPU idle and the sort pays for five latency-bound passes.
constexpr int kLongestMiddleForFusedSelection = 6144;

/// Kept token indices (ascending) into buf.kept_tokens and the counts, total and invalid flags into
/// buf.kept_counts, for a prefix rule. Device work only; the caller copies the counts.
template <class Rule>
void select_prefix_tokens(const Rule& rule, const float* d_scores, const DeviceBatch& batch, SelectionBuffers& buf,
                          cudaStream_t stream) {
  const int T = batch.num_tokens, B = batch.num_seqs;
  if (T == 0 || B == 0) {
    FTP_CUDA_CHECK(cudaMemsetAsync(buf.kept_counts, 0, sizeof(int) * (2 * B + 1), stream));
    return;
  }
  // One sequence writes its list in place; several write theirs at their token offsets in a scratch
  // array, packed afterwards.
  int* lists = B == 1 ? buf.kept_tokens : buf.values;
  kernels::prefix_select_kernel<Rule, Rule::kPrefixForm>
      <<<static_cast<unsigned>(B), kernels::prefix_select::kThreads, 0, stream>>>(rule, d_scores, batch, lists,
                                                                                 buf.kept_counts);
  FTP_CUDA_CHECK_LAUNCH();
  if (B > 1) {
    kernels::pack_kept_kernel<kSelectionThreads><<<static_cast<unsigned>(B), kSelectionThreads, 0, stream>>>(
        batch, buf.values, buf.kept_tokens, buf.kept_counts);
    FTP_CUDA_CHECK_LAUNCH();
  }
}

/// One 8-bit pass (digit (bits >> kShift) & 0xff) of the multi-CTA radix select.
template <int kShift, class Rule>
void launch_radix_pass(const Rule& rule, const float* d_scores, const DeviceBatch& batch, dim3 grid,
                       SelectionBuffers& buf, cudaStream_t stream) {
  kernels::radix_select_pass_kernel<Rule, Rule::kPrefixForm, kShift>
      <<<grid, kernels::radix_select::kThreads, 0, stream>>>(rule, d_scores, batch, buf.radix_state);
  FTP_CUDA_CHECK_LAUNCH();
}

/// The same selection as select_prefix_tokens by the multi-CTA radix select
/// (kernels/radix_select.cuh): seven launches and a memset, each spread over tiles of every
/// sequence, for batches with long middles. `longest_middle` and `longest_seq` (tokens) size the grid.
template <class Rule>
void select_prefix_tokens_multi_cta(const Rule& rule, const float* d_scores, const DeviceBatch& batch, int longest_middle,
                                    int longest_seq, SelectionBuffers& buf, cudaStream_t stream) {
  namespace rs = kernels::radix_select;
  const int T = batch.num_tokens, B = batch.num_seqs;
  if (T == 0 || B == 0) {
    FTP_CUDA_CHECK(cudaMemsetAsync(buf.kept_counts, 0, sizeof(int) * (2 * B + 1), stream));
    return;
  }
  FTP_CUDA_CHECK(cudaMemsetAsync(buf.radix_state, 0, sizeof(rs::RadixSelectState) * B, stream));
  const dim3 pass_grid(static_cast<unsigned>(rs::tiles_of(longest_middle)), static_cast<unsigned>(B));
  const dim3 emit_grid(static_cast<unsigned>(rs::tiles_of(longest_seq)), static_cast<unsigned>(B));
  kernels::radix_select_stats_kernel<<<pass_grid, rs::kThreads, 0, stream>>>(d_scores, batch, buf.radix_state);
  FTP_CUDA_CHECK_LAUNCH();
  launch_radix_pass<24>(rule, d_scores, batch, pass_grid, buf, stream);  // highest digit first
  launch_radix_pass<16>(rule, d_scores, batch, pass_grid, buf, stream);
  launch_radix_pass<8>(rule, d_scores, batch, pass_grid, buf, stream);
  launch_radix_pass<0>(rule, d_scores, batch, pass_grid, buf, stream);
  kernels::radix_select_count_kernel<<<emit_grid, rs::kThreads, 0, stream>>>(d_scores, batch, buf.radix_state,
                                                                             buf.radix_tile_counts);
  FTP_CUDA_CHECK_LAUNCH();
  kernels::radix_select_emit_kernel<<<emit_grid, rs::kThreads, 0, stream>>>(d_scores, batch, buf.radix_state,
                                                                            buf.radix_tile_counts, buf.kept_tokens,
                                                                            buf.kept_counts);
  FTP_CUDA_CHECK_LAUNCH();
}

}  // namespace detail
}  // namespace ftp
