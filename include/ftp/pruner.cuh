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
#include "ftp/selection/dispatch.cuh"
#include "ftp/selection/kept_counts.hpp"
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
/// Per-layer cost contract: run() allocates nothing. A pruned layer waits once for the stream,
/// because cuBLAS needs the kept row count on the host: the radix selects write the 2B+1 kept
/// counts (KeptCounts: per sequence, the total, invalid-score flags) straight into pinned
/// host-mapped memory; the sort path makes one small device-to-host copy of them. Dense layers
/// (index < F, or a policy that keeps everything) make no copy and no sync.
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
                "ftp::Pruner: Scorer lacks `template <class T> void score(const ftp::ScoreContext<T>&) const` "
                "(or `score(const ftp::ScoreContext<T>&, const Plan&) const`)");
  static_assert(has_scorer_plan_hook<Scorer>::value,
                "ftp::Pruner: Scorer lacks Plan / `Plan plan(const ftp::ScorerPlanContext&) const` / workspace_bytes / "
                "kNeedsAttention: derive it from ftp::ScorerBase");
  static_assert(is_reserve_policy_v<Reserve>,
                "ftp::Pruner: Reserve needs keeps_everything(const Config&) const, rule(const Config&, int layer) "
                "const or rule(const Config&) const, and static constexpr bool kNeedsMasses");
  static_assert(is_ffn_executor_v<Ffn, T>,
                "ftp::Pruner: Ffn needs Weights<T>, workspace_bytes<T>(const WorkspaceShape&) const, "
                "validate(const Weights<T>&) const and run(const FfnContext<T>&, const Weights<T>&) const");

 public:
  using Element = T;
  using Weights = typename Ffn::template Weights<T>;

  /// Everything plan() derives from one batch, held as one value: the policies keep no per-batch
  /// state, and a run() depends only on this plan, the layer's inputs and the workspace.
  struct BatchPlan {
    BatchLayout layout;            ///< host copy of the layout
    DeviceBatch batch;             ///< the device copy (pointers into the workspace)
    SelectionPlan selection;       ///< what decides the selection path (selection/dispatch.cuh)
    typename Scorer::Plan scorer;  ///< the scorer's plan (Scorer::plan)
  };

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
    // run on another stream cannot overwrite an upload still in flight. Mapped, so that the
    // selection kernels store the counts into it directly (no copy before the host reads them).
    const std::size_t host_ints = 3 * static_cast<std::size_t>(shape_.max_seqs) + 1 + KeptCounts::ints(shape_.max_seqs);
    void* pinned = nullptr;
    FTP_CUDA_CHECK(cudaHostAlloc(&pinned, host_ints * sizeof(int), cudaHostAllocMapped));
    host_staging_.reset(pinned);
    void* mapped = nullptr;
    if (cudaHostGetDevicePointer(&mapped, host_counts(), 0) == cudaSuccess) {
      host_counts_on_device_ = static_cast<int*>(mapped);
    } else {
      (void)cudaGetLastError();  // no mapping on this system: the counts are copied instead
      host_counts_on_device_ = nullptr;
    }
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
    BatchPlan next;
    next.layout = make_batch_layout(h_cu_seqlens, num_seqs, num_tokens);
    detail::require_batch_fits(num_seqs, num_tokens, shape_);
    FTP_CUDA_CHECK(cudaEventSynchronize(upload_done_.get()));  // staging is free again
    int* staging = static_cast<int*>(host_staging_.get());
    const int B = num_seqs;
    for (int b = 0; b <= B; ++b) staging[b] = next.layout.cu_seqlens[b];
    for (int b = 0; b < B; ++b) {
      const MiddleSegment mid = middle_segment(next.layout, b, config_);
      staging[B + 1 + b] = mid.begin;
      staging[2 * B + 1 + b] = mid.end;
    }
    planned_ = false;  // the device copy changes now: no run() on a half-made plan
    FTP_CUDA_CHECK(cudaMemcpyAsync(buf_.batch_ints, staging, sizeof(int) * (3 * B + 1), cudaMemcpyHostToDevice, stream));
    FTP_CUDA_CHECK(cudaEventRecord(upload_done_.get(), stream));
    DeviceBatch& batch = next.batch;
    batch.cu_seqlens = buf_.batch_ints;
    batch.mid_begin = buf_.batch_ints + B + 1;
    batch.mid_end = buf_.batch_ints + 2 * B + 1;
    batch.seq_of_token = buf_.seq_of_token;
    batch.num_seqs = B;
    batch.num_tokens = num_tokens;
    if (num_tokens > 0) {
      kernels::fill_seq_of_token_kernel<<<(num_tokens + 255) / 256, 256, 0, stream>>>(batch.cu_seqlens, B, num_tokens,
                                                                                      buf_.seq_of_token);
      FTP_CUDA_CHECK_LAUNCH();
    }
    int device = 0;
    FTP_CUDA_CHECK(cudaGetDevice(&device));
    next.selection = detail::make_selection_plan(next.layout, config_, device);
    next.scorer = scorer_.plan(ScorerPlanContext{next.layout, next.batch, config_, shape_, buf_.scorer, stream});
    plan_ = std::move(next);
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
    if (pruned) check_selection_path();

    const int T_ = plan_.batch.num_tokens, B = plan_.batch.num_seqs;
    report_.layer = layer;
    report_.pruned = pruned;
    report_.num_tokens = T_;
    report_.seq_lengths.resize(B);
    report_.kept_per_seq.resize(B);
    report_.invalid_scores.assign(B, 0);
    for (int b = 0; b < B; ++b) report_.seq_lengths[b] = plan_.layout.length(b);

    if (!pruned) {
      run_ffn(residual, weights, nullptr, T_, stream);
      report_.kept_tokens = T_;
      report_.kept_per_seq = report_.seq_lengths;
    } else {
      // 1. importance of every token
      const ScoreContext<T> score_context{layer,  plan_.layout, plan_.batch, attention, config_,
                                          shape_, buf_.scores,  buf_.scorer, stream};
      invoke_score(scorer_, score_context, plan_.scorer);
      // 2. which tokens run the FFN
      const KeptCounts counts{host_counts(), B};
      std::fill(counts.data, counts.data + KeptCounts::ints(B), -1);  // unwritten counts show as -1
      const bool counts_on_host = select_kept_tokens(layer, stream);
      // 3. the one wait: the kept count sizes the GEMMs
      if (!counts_on_host) {
        FTP_CUDA_CHECK(cudaMemcpyAsync(counts.data, buf_.selection.kept_counts, sizeof(int) * KeptCounts::ints(B),
                                       cudaMemcpyDeviceToHost, stream));
      }
      FTP_CUDA_CHECK(cudaStreamSynchronize(stream));
      const int kept = counts.total();
      if (kept < 0 || kept > T_) {
        throw Error("selection", detail::concat("the selection reported ", kept, " kept tokens of ", T_,
                                                ": expected 0 to ", T_, " (an internal error of ftp)"));
      }
      for (int b = 0; b < B; ++b) {
        report_.kept_per_seq[b] = counts.kept(b);
        report_.invalid_scores[b] = counts.invalid(b);
      }
      report_.kept_tokens = kept;
      // 4. FFN on the kept rows, added into their residual
      run_ffn(residual, weights, buf_.selection.kept_tokens, kept, stream);
    }
    for (const auto& entry : observers_) entry.second(report_);
  }

  /// Which selection runs for rules with a prefix form (CumulativeEta, TopRatio, TopCount); other
  /// rules always sort. Every path selects exactly the same tokens; forcing one exists to test and
  /// time one against the other (selection/dispatch.cuh). kCluster on a device without thread
  /// block clusters throws ftp::Error("selection_path") at the next pruned run().
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
  /// The plan of the batch the latest plan() set (valid once plan() has returned).
  const BatchPlan& batch_plan() const noexcept { return plan_; }
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

  // The kept tokens of layer `layer` of the planned batch into buf_.selection (device work only);
  // true when the counts also went straight to host_counts().
  bool select_kept_tokens(int layer, cudaStream_t stream) {
    using Rule = decltype(rule_for_layer(reserve_, config_, layer));
    if constexpr (has_prefix_form_v<Rule>) {
      static_assert(Rule::kPrefixForm != PrefixForm::kMass || Reserve::kNeedsMasses,
                    "ftp::Pruner: a reserve whose rule cuts by mass (MassPrefixRule) needs kNeedsMasses = true, or "
                    "the sort path would rank it on zero masses");
    }
    return detail::select_kept_tokens(rule_for_layer(reserve_, config_, layer), Reserve::kNeedsMasses, selection_path_,
                                      plan_.selection, buf_.scores, plan_.batch, buf_.selection, host_counts_on_device_,
                                      stream);
  }

  // Throws ftp::Error("selection_path") for a forced path the device cannot run, before any work of
  // the layer. Only a rule with a prefix form takes the path; any other rule always sorts.
  void check_selection_path() const {
    using Rule = decltype(rule_for_layer(reserve_, config_, 0));
    if constexpr (has_prefix_form_v<Rule>) (void)detail::resolve_prefix_path(selection_path_, plan_.selection);
  }

  // The per-layer counts' part of the pinned staging (after the plan upload's 3B+1 ints).
  int* host_counts() const noexcept { return static_cast<int*>(host_staging_.get()) + 3 * shape_.max_seqs + 1; }

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
  BatchPlan plan_;
  bool planned_ = false;
  SelectionPath selection_path_ = SelectionPath::kAuto;
  int* host_counts_on_device_ = nullptr;  // host_counts() as the device addresses it, or nullptr
  LayerReport report_;
  std::vector<std::pair<int, LayerObserver>> observers_;  // (handle, observer), called in order
  int next_observer_ = 0;
};

}  // namespace ftp
