// ftp::Pruner: FFN token pruning for one decoder layer at a time, composed of an ImportanceScorer,
// a ReservePolicy and an FFNExecutor. Read run() top to bottom: it is the paper's Algorithm 1.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/config.hpp"
#include "ftp/cuda_check.hpp"
#include "ftp/device_batch.hpp"
#include "ftp/ffn/cublas_swiglu.cuh"
#include "ftp/gemm.hpp"
#include "ftp/policy_traits.hpp"
#include "ftp/reserve/cumulative_eta.cuh"
#include "ftp/reserve/prefix_selection.cuh"
#include "ftp/reserve/sorted_selection.cuh"
#include "ftp/scorer/last_queries_attention.cuh"
#include "ftp/telemetry.hpp"
#include "ftp/types.cuh"
#include "ftp/views.hpp"
#include "ftp/workspace.hpp"

namespace ftp {

namespace detail {

struct CudaFree {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
struct CudaFreeHost {
  void operator()(void* p) const noexcept { cudaFreeHost(p); }
};
struct CublasDestroy {
  void operator()(cublasHandle_t h) const noexcept { cublasDestroy(h); }
};
struct EventDestroy {
  void operator()(CUevent_st* e) const noexcept { cudaEventDestroy(e); }
};

}  // namespace detail

/// How the kept tokens of a prefix rule are selected (Pruner::set_selection_path).
enum class SelectionPath {
  kAuto,      ///< fused radix select for batches whose longest middle is short, else the multi-CTA one (default)
  kFused,     ///< always the fused radix select (kernels/prefix_selection.cuh): one CTA per sequence
  kSorted,    ///< always the sort, scan and compaction (reserve/sorted_selection.cuh)
  kMultiCta,  ///< always the multi-CTA radix select (kernels/radix_select.cuh): tiles of every sequence
};

/// FFN token pruning for every decoder layer of a batch, on the caller's tensors and stream.
///
/// @tparam T        element type of activations and weights: float, __half or __nv_bfloat16
/// @tparam Scorer   ImportanceScorer (default: the paper's LastQueriesAttention)
/// @tparam Reserve  ReservePolicy (default: the paper's CumulativeEta)
/// @tparam Ffn      FFNExecutor (default: CublasSwiGLU, the Llama FFN)
///
/// Lifecycle: construct once (sizes the workspace for WorkspaceShape; the caller passes a buffer
/// of workspace_bytes() or the pruner allocates it once), plan() once per batch (validates
/// cu_seqlens, uploads the layout), run() once per decoder layer after self-attention.
///
/// Per-layer cost contract: run() allocates nothing. A pruned layer makes exactly one small
/// device-to-host copy (2B+1 ints: kept count per sequence, the total, invalid-score flags) and
/// waits for it, because cuBLAS needs the kept row count on the host. Dense layers (index < F, or a
/// policy that keeps everything) make no copy and no sync.
///
/// Snippet (bf16 Llama layer, paper defaults):
/// @code
///   ftp::WorkspaceShape shape{max_tokens, max_seqs, C, I, Hq, Hkv, d};
///   ftp::Pruner<__nv_bfloat16> pruner(ftp::Config::llama3(), shape);
///   pruner.plan(h_cu_seqlens, B, T, stream);
///   for (int layer = 0; layer < num_layers; ++layer) {
///     // ... attention writes h = x + attn(x) into d_hidden, and post-RoPE q/k ...
///     pruner.run(layer, {d_q, Hq * d, d_k, Hkv * d, Hq, Hkv, d}, {d_hidden, C, C},
///                {d_ffn_norm[layer], d_gate_up[layer], nullptr, nullptr, d_down[layer], 1e-5f}, stream);
///   }
/// @endcode
template <class T, class Scorer = LastQueriesAttention, class Reserve = CumulativeEta, class Ffn = CublasSwiGLU>
class Pruner {
  static_assert(is_supported_element_v<T>, "ftp::Pruner: T must be float, __half or __nv_bfloat16");
  static_assert(has_score_hook<Scorer, T>::value,
                "ftp::Pruner: Scorer lacks `template <class T> void score(const ftp::ScoreContext<T>&) const`");
  static_assert(has_scorer_plan_hook<Scorer>::value,
                "ftp::Pruner: Scorer lacks plan / workspace_bytes / kNeedsAttention: derive it from ftp::ScorerBase");
  static_assert(is_reserve_policy_v<Reserve>,
                "ftp::Pruner: Reserve needs keeps_everything(const Config&) const, rule(const Config&, int layer) "
                "const or rule(const Config&) const, and static constexpr bool kNeedsMasses");
  static_assert(is_ffn_executor_v<Ffn, T>,
                "ftp::Pruner: Ffn needs Weights<T>, workspace_bytes<T>(const WorkspaceShape&) const, "
                "validate(const Weights<T>&) const and run(const FfnContext<T>&, const Weights<T>&) const");

 public:
  using Element = T;
  using Weights = typename Ffn::template Weights<T>;

  /// Bytes of device workspace for batches up to `shape` (the same layout run() carves).
  static std::size_t workspace_bytes(const WorkspaceShape& shape, const Config& config, const Ffn& ffn = Ffn{}) {
    validate_shape(shape);
    WorkspaceCarver carver;
    Buffers buf;
    buf.layout(carver, shape, config, ffn);
    return carver.used();
  }

  /// @param config          P, N, F, eta
  /// @param shape           the largest batch and the model's sizes the workspace is planned for
  /// @param scorer          ImportanceScorer instance (its state, e.g. a seed)
  /// @param reserve         ReservePolicy instance (e.g. TopRatio{0.4})
  /// @param ffn             FFNExecutor instance (e.g. CublasSwiGLU(chunk_rows))
  /// @param d_workspace     caller's device buffer of at least workspace_bytes(shape, config, ffn)
  ///                        bytes, or nullptr to let the pruner allocate it once here
  /// @param workspace_size  bytes of d_workspace (ignored when it is nullptr)
  /// @param cublas          caller's cuBLAS handle, or nullptr to create one here. For each FFN
  ///                        call the pruner binds it to the call's stream and its workspace slice,
  ///                        then gives it back as it was (stream, pointer mode, and the workspace
  ///                        named by set_caller_cublas_workspace; ScopedCublasBinding in gemm.hpp).
  Pruner(const Config& config, const WorkspaceShape& shape, Scorer scorer = Scorer{}, Reserve reserve = Reserve{},
         Ffn ffn = Ffn{}, void* d_workspace = nullptr, std::size_t workspace_size = 0, cublasHandle_t cublas = nullptr)
      : config_(config), shape_(shape), scorer_(std::move(scorer)), reserve_(std::move(reserve)), ffn_(std::move(ffn)) {
    const std::size_t needed = workspace_bytes(shape_, config_, ffn_);
    if (d_workspace == nullptr) {
      void* p = nullptr;
      FTP_CUDA_CHECK(cudaMalloc(&p, std::max<std::size_t>(needed, 1)));
      owned_workspace_.reset(p);
      d_workspace = p;
      workspace_size = needed;
    } else {
      detail::require_workspace_size(workspace_size, needed);
    }
    workspace_ = d_workspace;
    WorkspaceCarver carver(workspace_, workspace_size);
    buf_.layout(carver, shape_, config_, ffn_);

    // Pinned host ints: the plan upload [3B+1], then the per-layer counts [2B+1], apart so that a
    // run on another stream cannot overwrite an upload still in flight.
    const std::size_t host_ints = 5 * static_cast<std::size_t>(shape_.max_seqs) + 2;
    void* pinned = nullptr;
    FTP_CUDA_CHECK(cudaMallocHost(&pinned, host_ints * sizeof(int)));
    host_staging_.reset(pinned);
    cudaEvent_t event = nullptr;
    FTP_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
    upload_done_.reset(event);
    if (cublas == nullptr) {
      cublasHandle_t handle = nullptr;
      FTP_CUBLAS_CHECK(cublasCreate(&handle));
      owned_cublas_.reset(handle);
      cublas = handle;
    }
    cublas_ = cublas;
    report_.seq_lengths.reserve(shape_.max_seqs);
    report_.kept_per_seq.reserve(shape_.max_seqs);
    report_.invalid_scores.reserve(shape_.max_seqs);
  }

  /// Sets the batch for the following run() calls: validates `h_cu_seqlens` (B+1 host offsets,
  /// starting at 0, non-decreasing, ending at T) and the sizes against the workspace shape, then
  /// uploads the layout (one host-to-device copy) and lets the scorer plan. Stream-ordered; it
  /// waits only for the previous plan's upload. Later run() calls must be ordered after it (the
  /// same stream, or an event).
  void plan(const int* h_cu_seqlens, int num_seqs, int num_tokens, cudaStream_t stream) {
    BatchLayout layout = make_batch_layout(h_cu_seqlens, num_seqs, num_tokens);
    detail::require_batch_fits(num_seqs, num_tokens, shape_);
    FTP_CUDA_CHECK(cudaEventSynchronize(upload_done_.get()));  // staging is free again
    int* staging = static_cast<int*>(host_staging_.get());
    const int B = num_seqs;
    for (int b = 0; b <= B; ++b) staging[b] = layout.cu_seqlens[b];
    for (int b = 0; b < B; ++b) {
      const MiddleSegment mid = middle_segment(layout, b, config_);
      staging[B + 1 + b] = mid.begin;
      staging[2 * B + 1 + b] = mid.end;
    }
    FTP_CUDA_CHECK(cudaMemcpyAsync(buf_.batch_ints, staging, sizeof(int) * (3 * B + 1), cudaMemcpyHostToDevice, stream));
    FTP_CUDA_CHECK(cudaEventRecord(upload_done_.get(), stream));
    batch_.cu_seqlens = buf_.batch_ints;
    batch_.mid_begin = buf_.batch_ints + B + 1;
    batch_.mid_end = buf_.batch_ints + 2 * B + 1;
    batch_.seq_of_token = buf_.seq_of_token;
    batch_.num_seqs = B;
    batch_.num_tokens = num_tokens;
    if (num_tokens > 0) {
      kernels::fill_seq_of_token_kernel<<<(num_tokens + 255) / 256, 256, 0, stream>>>(batch_.cu_seqlens, B, num_tokens,
                                                                                      buf_.seq_of_token);
      FTP_CUDA_CHECK_LAUNCH();
    }
    int longest_middle = 0;
    for (int b = 0; b < B; ++b) longest_middle = std::max(longest_middle, middle_segment(layout, b, config_).count());
    wide_sort_ = detail::use_wide_sort(longest_middle);
    fused_selection_fits_ = longest_middle <= detail::kLongestMiddleForFusedSelection;
    longest_middle_ = longest_middle;
    longest_seq_ = 0;
    for (int b = 0; b < B; ++b) longest_seq_ = std::max(longest_seq_, layout.length(b));
    layout_ = std::move(layout);
    scorer_.plan(ScorerPlanContext{layout_, batch_, config_, shape_, buf_.scorer, stream});
    planned_ = true;
  }

  /// FFN block of decoder layer `layer` for the planned batch: residual[t] += FFN(residual[t]) for
  /// every kept token t; pruned tokens pass unchanged. Layers < F and policies that keep everything
  /// run the dense FFN over all T rows. All arguments are validated before any work is enqueued.
  void run(int layer, const AttentionView<T>& attention, const ResidualView<T>& residual, const Weights& weights,
           cudaStream_t stream) {
    if (!planned_) throw Error("plan", "run() before plan(): call plan(cu_seqlens, B, T, stream) first");
    detail::require(layer >= 0, "layer", layer, "layer >= 0");
    detail::validate_residual(residual, shape_.hidden);
    ffn_.validate(weights);
    const bool pruned = config_.prunes_layer(layer) && !reserve_.keeps_everything(config_);
    if (pruned && Scorer::kNeedsAttention) validate_attention_shape(attention);

    const int T_ = batch_.num_tokens, B = batch_.num_seqs;
    report_.layer = layer;
    report_.pruned = pruned;
    report_.num_tokens = T_;
    report_.seq_lengths.resize(B);
    report_.kept_per_seq.resize(B);
    report_.invalid_scores.assign(B, 0);
    for (int b = 0; b < B; ++b) report_.seq_lengths[b] = layout_.length(b);

    if (!pruned) {
      run_ffn(residual, weights, nullptr, T_, stream);
      report_.kept_tokens = T_;
      report_.kept_per_seq = report_.seq_lengths;
    } else {
      // 1. importance of every token
      scorer_.score(ScoreContext<T>{layer, layout_, batch_, attention, config_, shape_, buf_.scores, buf_.scorer, stream});
      // 2. which tokens run the FFN
      select_kept_tokens(layer, stream);
      // 3. the one device-to-host copy: the kept count sizes the GEMMs
      int* counts = static_cast<int*>(host_staging_.get()) + 3 * shape_.max_seqs + 1;
      FTP_CUDA_CHECK(cudaMemcpyAsync(counts, buf_.selection.kept_counts, sizeof(int) * (2 * B + 1),
                                     cudaMemcpyDeviceToHost, stream));
      FTP_CUDA_CHECK(cudaStreamSynchronize(stream));
      const int kept = B > 0 ? counts[B] : 0;
      for (int b = 0; b < B; ++b) {
        report_.kept_per_seq[b] = counts[b];
        report_.invalid_scores[b] = counts[B + 1 + b];
      }
      report_.kept_tokens = kept;
      // 4. FFN on the kept rows, added into their residual
      run_ffn(residual, weights, buf_.selection.kept_tokens, kept, stream);
    }
    for (const auto& entry : observers_) entry.second(report_);
  }

  /// Which selection runs for rules with a prefix form (CumulativeEta, TopRatio, TopCount); other
  /// rules always sort. Both paths select exactly the same tokens; forcing one exists to test and
  /// time one against the other.
  void set_selection_path(SelectionPath path) { selection_path_ = path; }

  /// The workspace the caller bound to its own cuBLAS handle with cublasSetWorkspace, rebound after
  /// every FFN call (cuBLAS cannot report it, and cublasSetStream resets it to the default pool).
  /// Without it the caller's handle goes back to the default pool, as it was before any
  /// cublasSetWorkspace. Not needed when the pruner created the handle.
  void set_caller_cublas_workspace(CublasWorkspace workspace) { caller_cublas_workspace_ = workspace; }

  /// How this pruner's FFN GEMMs treat their outputs (default: default_gemm_output_init() at
  /// construction, kNone unless the program changed it); kZeroFirst only for initcheck runs.
  void set_gemm_output_init(GemmOutputInit init) { gemm_output_init_ = init; }
  GemmOutputInit gemm_output_init() const noexcept { return gemm_output_init_; }

  /// Adds an observer, called on the host after every run() with that layer's report, after the
  /// observers added before it. Returns the handle that remove_observer takes.
  int add_observer(LayerObserver observer) {
    if (!observer) throw Error("observer", "add_observer: the observer is an empty std::function: expected a callable");
    observers_.emplace_back(next_observer_, std::move(observer));
    return next_observer_++;
  }
  /// Removes the observer add_observer returned `handle` for; false when there is none (already
  /// removed, or never added).
  bool remove_observer(int handle) {
    for (auto it = observers_.begin(); it != observers_.end(); ++it) {
      if (it->first == handle) {
        observers_.erase(it);
        return true;
      }
    }
    return false;
  }
  /// Replaces every observer by `observer` (pass {} to remove them all).
  void set_observer(LayerObserver observer) {
    observers_.clear();
    if (observer) add_observer(std::move(observer));
  }
  /// The report of the latest run().
  const LayerReport& last_report() const noexcept { return report_; }
  /// Device array [last_report().kept_tokens] of the latest pruned layer's kept token indices
  /// (ascending, packed). Valid until the next run().
  const int* kept_token_indices() const noexcept { return buf_.selection.kept_tokens; }
  /// Device array [T] of the latest pruned layer's importance scores. Valid until the next run().
  const float* scores() const noexcept { return buf_.scores; }

  const Config& config() const noexcept { return config_; }
  const WorkspaceShape& shape() const noexcept { return shape_; }
  Scorer& scorer() noexcept { return scorer_; }
  Reserve& reserve() noexcept { return reserve_; }
  Ffn& ffn() noexcept { return ffn_; }

 private:
  struct Buffers {
    int* batch_ints = nullptr;    // [3B+1]: cu_seqlens, mid_begin, mid_end
    int* seq_of_token = nullptr;  // [T]
    float* scores = nullptr;      // [T]
    detail::SelectionBuffers selection;
    void* scorer = nullptr;
    void* ffn = nullptr;

    void layout(WorkspaceCarver& carver, const WorkspaceShape& shape, const Config& config, const Ffn& ffn_policy) {
      const std::size_t t = static_cast<std::size_t>(shape.max_tokens), b = static_cast<std::size_t>(shape.max_seqs);
      batch_ints = carver.take<int>(3 * b + 1, "batch.layout");
      seq_of_token = carver.take<int>(t, "batch.seq_of_token");
      scores = carver.take<float>(t, "scores");
      selection.layout(carver, shape.max_tokens, shape.max_seqs);
      scorer = carver.take<std::uint8_t>(Scorer::workspace_bytes(shape, config), "scorer");
      ffn = carver.take<std::uint8_t>(ffn_policy.template workspace_bytes<T>(shape), "ffn");
    }
  };

  static void validate_shape(const WorkspaceShape& s) {
    detail::require(s.max_tokens >= 0, "shape.max_tokens", s.max_tokens, "max_tokens >= 0");
    detail::require(s.max_seqs >= 0, "shape.max_seqs", s.max_seqs, "max_seqs >= 0");
    detail::require(s.hidden >= 1, "shape.hidden", s.hidden, "C >= 1");
    detail::require(s.ffn >= 1, "shape.ffn", s.ffn, "I >= 1");
    if (Scorer::kNeedsAttention) {
      detail::require(s.num_q_heads >= 1, "shape.num_q_heads", s.num_q_heads, "Hq >= 1");
      detail::require(s.num_kv_heads >= 1, "shape.num_kv_heads", s.num_kv_heads, "Hkv >= 1");
      detail::require(s.num_q_heads % s.num_kv_heads == 0, "shape.num_q_heads", s.num_q_heads,
                      "a multiple of num_kv_heads (GQA)");
      detail::require(is_supported_head_dim(s.head_dim), "shape.head_dim", s.head_dim, "64, 128 or 256");
    }
  }

  void validate_attention_shape(const AttentionView<T>& a) const {
    detail::validate_attention(a);
    detail::require(a.num_q_heads == shape_.num_q_heads, "attention.num_q_heads", a.num_q_heads,
                    "the workspace shape's num_q_heads");
    detail::require(a.num_kv_heads == shape_.num_kv_heads, "attention.num_kv_heads", a.num_kv_heads,
                    "the workspace shape's num_kv_heads");
    detail::require(a.head_dim == shape_.head_dim, "attention.head_dim", a.head_dim, "the workspace shape's head_dim");
  }

  // Marks and packs the kept tokens of layer `layer` of the planned batch into buf_.selection
  // (device work only).
  void select_kept_tokens(int layer, cudaStream_t stream) {
    const auto rule = rule_for_layer(reserve_, config_, layer);
    using Rule = std::decay_t<decltype(rule)>;
    if constexpr (has_prefix_form_v<Rule>) {
      const bool fused = selection_path_ == SelectionPath::kFused ||
                         (selection_path_ == SelectionPath::kAuto && fused_selection_fits_);
      if (fused) {
        detail::select_prefix_tokens(rule, buf_.scores, batch_, buf_.selection, stream);
        return;
      }
      if (selection_path_ == SelectionPath::kMultiCta || selection_path_ == SelectionPath::kAuto) {
        detail::select_prefix_tokens_multi_cta(rule, buf_.scores, batch_, longest_middle_, longest_seq_,
                                               buf_.selection, stream);
        return;
      }
    }
    detail::mark_kept_tokens(rule, Reserve::kNeedsMasses, wide_sort_, buf_.scores, batch_, buf_.selection, stream);
    detail::compact_kept_tokens(batch_, buf_.selection, stream);
  }

  void run_ffn(const ResidualView<T>& residual, const Weights& weights, const int* rows, int num_rows,
               cudaStream_t stream) {
    if (num_rows == 0) return;
    ffn_.run(FfnContext<T>{residual, rows, num_rows, shape_, buf_.ffn, cublas_, stream, caller_cublas_workspace_,
                           gemm_output_init_},
             weights);
  }

  Config config_;
  WorkspaceShape shape_;
  Scorer scorer_;
  Reserve reserve_;
  Ffn ffn_;
  std::unique_ptr<void, detail::CudaFree> owned_workspace_;
  std::unique_ptr<void, detail::CudaFreeHost> host_staging_;
  std::unique_ptr<CUevent_st, detail::EventDestroy> upload_done_;
  std::unique_ptr<cublasContext, detail::CublasDestroy> owned_cublas_;
  void* workspace_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  CublasWorkspace caller_cublas_workspace_;
  GemmOutputInit gemm_output_init_ = default_gemm_output_init().load();
  Buffers buf_;
  BatchLayout layout_;
  DeviceBatch batch_;
  bool planned_ = false;
  bool wide_sort_ = false;  // how the planned batch's middle segments are sorted (sorted_selection.cuh)
  int longest_middle_ = 0;  // tokens of the planned batch's longest middle segment and sequence: the
  int longest_seq_ = 0;     // grid of the multi-CTA radix select
  SelectionPath selection_path_ = SelectionPath::kAuto;
  bool fused_selection_fits_ = false;  // the planned batch's middles suit the fused select (kAuto)
  LayerReport report_;
  std::vector<std::pair<int, LayerObserver>> observers_;  // (handle, observer), called in order
  int next_observer_ = 0;
};

}  // namespace ftp
