// The radix selects of prefix rules and the trait by which the dispatcher (selection/dispatch.cuh)
// recognizes them: a rule whose kept ranks are the top of the ranking up to a cut by mass or by
// count derives from MassPrefixRule or CountPrefixRule (reserve/prefix_rule.hpp), which give it
// `kPrefixForm` and keep() from the cut's parameter (`mass_share()` or `keep_count(n)`); it is then
// selected without the sort, scan and compaction of selection/sorted.cuh, by one of three
// launchers here:
//   select_prefix_tokens            one CTA per sequence (kernels/prefix_selection.cuh)
//   select_prefix_tokens_multi_cta  tiles of every sequence, seven launches (kernels/radix_select.cuh)
//   select_prefix_tokens_cluster    one thread block cluster per sequence, one launch, sm_90+
//                                   (kernels/cluster_select.cuh)
// All give exactly the same tokens. Each writes the counts through a KeptCounts::Writer, so they
// also reach the host-mapped copy when the caller passes one.
#pragma once

#include <cuda_runtime.h>

#include <type_traits>

#include "ftp/cuda_check.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/kernels/cluster_select.cuh"
#include "ftp/kernels/prefix_selection.cuh"
#include "ftp/kernels/radix_select.cuh"
#include "ftp/selection/buffers.cuh"
#include "ftp/selection/kept_counts.hpp"

namespace ftp {

template <class Rule, class = void>
struct has_prefix_form : std::false_type {};
template <class Rule>
struct has_prefix_form<Rule, std::void_t<decltype(Rule::kPrefixForm)>> : std::true_type {};
/// True for reserve rules with a prefix form (CumulativeEta, TopRatio, TopCount).
template <class Rule>
inline constexpr bool has_prefix_form_v = has_prefix_form<Rule>::value;

namespace detail {

/// B > 1: packs the lists the one-CTA or the cluster select wrote at each sequence's token offset
/// in buf.values into buf.kept_tokens, and writes the total.
inline void pack_kept_lists(const DeviceBatch& batch, SelectionBuffers& buf, const KeptCounts::Writer& counts,
                            cudaStream_t stream) {
  kernels::pack_kept_kernel<kernels::prefix_select::kPackThreads>
      <<<static_cast<unsigned>(batch.num_seqs), kernels::prefix_select::kPackThreads, 0, stream>>>(
          batch, buf.values, buf.kept_tokens, counts);
  FTP_CUDA_CHECK_LAUNCH();
}

/// Kept token indices (ascending) into buf.kept_tokens and the counts through `counts`, for a
/// prefix rule, by one CTA per sequence. Device work only; T > 0 and B > 0 (the dispatcher handles
/// empty batches).
template <class Rule>
void select_prefix_tokens(const Rule& rule, const float* d_scores, const DeviceBatch& batch, SelectionBuffers& buf,
                          const KeptCounts::Writer& counts, cudaStream_t stream) {
  const int B = batch.num_seqs;
  // One sequence writes its list in place; several write theirs at their token offsets in a scratch
  // array, packed afterwards.
  int* lists = B == 1 ? buf.kept_tokens : buf.values;
  kernels::prefix_select_kernel<Rule, Rule::kPrefixForm>
      <<<static_cast<unsigned>(B), kernels::prefix_select::kThreads, 0, stream>>>(rule, d_scores, batch, lists,
                                                                                 counts);
  FTP_CUDA_CHECK_LAUNCH();
  if (B > 1) pack_kept_lists(batch, buf, counts, stream);
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
/// sequence, for batches with long middles. `longest_middle` and `longest_seq` (tokens) size the
/// grid. T > 0 and B > 0.
template <class Rule>
void select_prefix_tokens_multi_cta(const Rule& rule, const float* d_scores, const DeviceBatch& batch, int longest_middle,
                                    int longest_seq, SelectionBuffers& buf, const KeptCounts::Writer& counts,
                                    cudaStream_t stream) {
  namespace rs = kernels::radix_select;
  const int B = batch.num_seqs;
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
                                                                            counts);
  FTP_CUDA_CHECK_LAUNCH();
}

/// True when `device` can launch thread block clusters (compute capability 9.0 and newer).
inline bool device_supports_cluster_select(int device) {
  int supported = 0;
  FTP_CUDA_CHECK(cudaDeviceGetAttribute(&supported, cudaDevAttrClusterLaunch, device));
  return supported != 0;
}

/// The same selection by the cluster radix select (kernels/cluster_select.cuh): one launch, one
/// cluster of kClusterSize CTAs per sequence, plus the pack kernel when B > 1. Needs a device for
/// which device_supports_cluster_select is true. T > 0 and B > 0.
template <class Rule>
void select_prefix_tokens_cluster(const Rule& rule, const float* d_scores, const DeviceBatch& batch,
                                  SelectionBuffers& buf, const KeptCounts::Writer& counts, cudaStream_t stream) {
  namespace cs = kernels::cluster_select;
  const int B = batch.num_seqs;
  int* lists = B == 1 ? buf.kept_tokens : buf.values;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(static_cast<unsigned>(cs::kClusterSize * B));
  config.blockDim = dim3(cs::kThreads);
  config.dynamicSmemBytes = 0;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeClusterDimension;
  attribute[0].val.clusterDim.x = cs::kClusterSize;
  attribute[0].val.clusterDim.y = 1;
  attribute[0].val.clusterDim.z = 1;
  config.attrs = attribute;
  config.numAttrs = 1;
  FTP_CUDA_CHECK(cudaLaunchKernelEx(&config, kernels::cluster_select_kernel<Rule, Rule::kPrefixForm>, rule, d_scores,
                                    batch, lists, counts));
  if (B > 1) pack_kept_lists(batch, buf, counts, stream);
}

}  // namespace detail
}  // namespace ftp
