// llama3::DeviceModel: the Llama forward pass on the GPU in bf16, every FFN block run through
// ftp::Pruner (dense or FTP). One sequence at a time: prefill from position 0, then decode steps
// against the KV cache.
//
// Shape letters as in kernels/common.cuh: T tokens of the prompt (L for one sequence; B = 1 here),
// C hidden, I FFN width, Hq / Hkv heads, d head size, V vocabulary, S = max_tokens (KV capacity),
// QKV = (Hq + 2 Hkv) d, the width of the fused q/k/v projection.
//
// One decoder layer, as in the paper's Figure 4 (attention, then the FFN on the kept tokens only):
//   n = RMSNorm(h)                         attn_norm
//   q|k|v = n Wqkv^T (+ bqkv)              one GEMM into [T, QKV]
//   q, k = RoPE(q, k)                      in place, positions 0..T-1
//   cache[k, v] = k, v                     for later decode steps
//   h += causal_attention(q, k, v) Wo^T    the o-proj GEMM adds into the residual (beta = 1)
//   pruner.run(layer, {q, k}, h, FFN)      scores tokens by the last queries' attention, keeps the
//                                          important ones, h[kept] += FFN(h[kept])
//
// Two constructors: from HostWeights (a GGUF file) or synthetic random weights of any shape filled
// on the GPU (benchmarks: Llama3-8B shape without a file). synthetic_host_weights() gives the very
// same synthetic values on the host, so the CPU reference can check the synthetic path as well.
#pragma once

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ftp/ffn/context.hpp"
#include "ftp/pruner.cuh"
#include "ftp/reserve/keep_all.cuh"
#include "ftp/workspace.hpp"
#include "llama3/bf16.hpp"
#include "llama3/cudnn_attention.hpp"
#include "llama3/cpu_reference.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/kernels/attention_decode.cuh"
#include "llama3/kernels/attention_prefill.cuh"
#include "llama3/kernels/attention_prefill_sm90.cuh"
#include "llama3/kernels/common.cuh"
#include "llama3/kernels/embedding.cuh"
#include "llama3/kernels/rmsnorm.cuh"
#include "llama3/kernels/rope.cuh"
#include "llama3/kernels/sampling.cuh"
#include "llama3/model_config.hpp"
#include "llama3/stage_timing.cuh"
#include "llama3/device_layout.cuh"
#include "llama3/device_resources.cuh"
#include "llama3/model_types.cuh"
#include "llama3/runner_kernels.cuh"
#include "llama3/synthetic_weights.cuh"

namespace llama3 {

using kernels::bf16;

// ---- the model -----------------------------------------------------------------------------------

/// A Llama-architecture model on one GPU, bf16 weights and activations (fp32 accumulation), with
/// a KV cache and activations for prompts of up to `max_tokens` tokens. Not copyable or movable
/// (the pruners' observers point at it). All work runs on one stream owned by the model.
class DeviceModel : private model_detail::Handles {
 public:
  /// The paper's policies (LastQueriesAttention + CumulativeEta + CublasSwiGLU), wrapped so that
  /// set_stage_timing can split each layer's FFN block into scoring, selection and FFN.
  using FtpPruner = ftp::Pruner<bf16, TimedScorer<ftp::LastQueriesAttention>, ftp::CumulativeEta,
                                TimedFfn<ftp::CublasSwiGLU>>;
  using DensePruner = ftp::Pruner<bf16, TimedScorer<ftp::LastQueriesAttention>, ftp::KeepAll,
                                  TimedFfn<ftp::CublasSwiGLU>>;

  /// Uploads `weights` (checked against `config`). `ftp_config`: P, N, F, eta of FTP prefills.
  DeviceModel(const LlamaConfig& config, const HostWeights& weights, int max_tokens,
              const ftp::Config& ftp_config = ftp::Config::llama3())
      : config_(config), max_tokens_(max_tokens) {
    init(ftp_config);
    upload(weights);
  }

  /// Synthetic random weights of any shape, filled on the GPU from `seed` (the same values as
  /// synthetic_host_weights(config, seed)).
  DeviceModel(const LlamaConfig& config, std::uint64_t seed, int max_tokens,
              const ftp::Config& ftp_config = ftp::Config::llama3())
      : config_(config), max_tokens_(max_tokens) {
    init(ftp_config);
    fill_synthetic(seed);
  }

  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  ~DeviceModel() {
    if (stream_ != nullptr) cudaStreamSynchronize(stream_);  // members free memory after this
  }

  /// Device bytes this model needs for `config` and `max_tokens`: weights, KV cache, activations,
  /// the two pruners' workspaces (FFN chunk buffers, scorer, selection). Needs a CUDA device (the
  /// pruners' sort sizes come from CUB's size queries).
  static std::size_t device_bytes(const LlamaConfig& config, int max_tokens,
                                  const ftp::Config& ftp_config = ftp::Config::llama3()) {
    Sizes s = sizes(config, max_tokens, ftp_config);
    return s.weights + s.activations + s.ftp_workspace + s.dense_workspace;
  }

  /// Prefill of one prompt from position 0: fills the KV cache, computes the last position's
  /// logits (last_logits()) and samples the first new token. With `ftp_enabled` the FFN blocks
  /// prune tokens with the FTP config; otherwise every token runs every FFN (ftp::KeepAll).
  PrefillResult prefill(const std::vector<std::int32_t>& tokens, bool ftp_enabled, const Sampling& sampling = {}) {
    return run_prefill(tokens, ftp_enabled, sampling, nullptr);
  }

  /// Logits of every position, [L, V] row-major fp32 (tests against the CPU reference; the
  /// rows are computed 64 at a time, so any L <= max_tokens works). Also a full prefill.
  std::vector<float> prefill_all_logits(const std::vector<std::int32_t>& tokens, bool ftp_enabled,
                                        PrefillResult* result = nullptr) {
    std::vector<float> logits;
    PrefillResult r = run_prefill(tokens, ftp_enabled, Sampling{}, &logits);
    if (result != nullptr) *result = std::move(r);
    return logits;
  }

  /// One decode step: token `token` at position `pos` (= the number of tokens already cached)
  /// attends to the cache, its k/v are appended, the FFN runs through the dense pruner (one token
  /// is never pruned). Returns the sampled next token; last_logits() holds its logits.
  std::int32_t decode_step(std::int32_t token, int pos, const Sampling& sampling = {}) {
    const int C = hidden(), QKV = qkv_dim(), KV = kv_dim(), QD = q_dim();
    if (pos < 0 || pos > cached_) {
      throw std::runtime_error("decode_step: position " + std::to_string(pos) + " leaves a gap: the KV cache holds " +
                               std::to_string(cached_) + " positions (decode the next position, " +
                               std::to_string(cached_) + ")");
    }
    if (pos >= max_tokens_) {
      throw std::runtime_error("decode_step: position " + std::to_string(pos) + " is past the KV cache (max_tokens = " +
                               std::to_string(max_tokens_) + "); build the model with a larger max_tokens");
    }
    check_token(token, "decode_step");
    if (!decode_planned_) {
      const int cu[2] = {0, 1};
      dense_pruner_->plan(cu, 1, 1, stream_);
      decode_planned_ = true;
    }
    int* staging = static_cast<int*>(host_ints_.get());
    staging[0] = token;
    staging[1] = pos;
    staging[2] = pos + 1;
    LLAMA3_CUDA_CHECK(cudaMemcpyAsync(a_.step, staging, 3 * sizeof(int), cudaMemcpyHostToDevice, stream_));
    const int* d_token = a_.step;
    const int* d_pos = a_.step + 1;
    const int* d_len = a_.step + 2;

    kernels::launch_embedding(w_.token_embd, d_token, a_.hidden, 1, C, vocab(), nullptr, stream_);
    for (int l = 0; l < layers(); ++l) {
      const LayerParams& L = w_.layers[static_cast<std::size_t>(l)];
      bf16* q = a_.qkv;
      bf16* k = a_.qkv + QD;
      bf16* v = a_.qkv + QD + KV;
      kernels::launch_rmsnorm(a_.hidden, L.attn_norm, a_.normed, 1, C, eps(), stream_);
      model_detail::gemm(cublas_, gemm_init_, 1, QKV, C, a_.normed, L.wqkv, a_.qkv, 0.0f);
      if (L.bqkv != nullptr) add_bias(L.bqkv, 1);
      rope(q, k, d_pos, 1);
      LLAMA3_CUDA_CHECK(cudaMemcpyAsync(k_cache(l) + static_cast<std::int64_t>(pos) * KV, k, KV * sizeof(bf16),
                                        cudaMemcpyDeviceToDevice, stream_));
      LLAMA3_CUDA_CHECK(cudaMemcpyAsync(v_cache(l) + static_cast<std::int64_t>(pos) * KV, v, KV * sizeof(bf16),
                                        cudaMemcpyDeviceToDevice, stream_));
      attention_decode(q, l, d_len, pos + 1);
      model_detail::gemm(cublas_, gemm_init_, 1, C, QD, a_.attn, L.wo, a_.hidden, 1.0f);
      dense_pruner_->run(l, attention_view(q, k), residual_view(), ffn_weights(L), stream_);
    }
    cached_ = pos + 1;
    last_logits_row(0);
    enqueue_sample(sampling);
    return read_sampled();
  }

  /// The logits [V] of the latest prefill's last position or the latest decode step (a copy).
  std::vector<float> last_logits() const {
    std::vector<float> out(static_cast<std::size_t>(vocab()));
    LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));
    LLAMA3_CUDA_CHECK(cudaMemcpy(out.data(), a_.logits, out.size() * sizeof(float), cudaMemcpyDeviceToHost));
    return out;
  }

  /// The pruner shape this model plans for (to build pruners for prefill_with).
  ftp::WorkspaceShape pruner_shape() const {
    return ftp::WorkspaceShape{max_tokens_, 1, hidden(), ffn(), q_heads(), kv_heads(), head_dim()};
  }

  /// Prefill through the caller's own pruner (any scorer / reserve policy with CublasSwiGLU): the
  /// hook for ablations and benchmarks. An observer that records the kept counts is added for the
  /// prefill and removed after it; the caller's own observers stay and see every layer too.
  template <class Pruner>
  PrefillResult prefill_with(const std::vector<std::int32_t>& tokens, Pruner& pruner, const Sampling& sampling = {}) {
    struct Recording {  // removes the recorder on every way out, exceptions included
      Pruner& pruner;
      int handle;
      ~Recording() { pruner.remove_observer(handle); }
    } recording{pruner, pruner.add_observer([this](const ftp::LayerReport& r) { record(r); })};
    return run_prefill_with(tokens, pruner, true, sampling, nullptr);
  }

  /// Replaces the FTP settings of later FTP prefills (rebuilds that pruner and its workspace).
  void set_ftp_config(const ftp::Config& ftp_config) {
    LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));
    ftp_pruner_.reset();
    ftp_pruner_ = std::make_unique<FtpPruner>(ftp_config, pruner_shape(), timed_scorer(), ftp::CumulativeEta{},
                                              timed_ffn());
    ftp_pruner_->set_observer([this](const ftp::LayerReport& r) { record(r); });
  }

  /// Records CUDA events at every layer's stage boundaries during prefill (PrefillResult::stages).
  /// Costs a few event records per layer and no synchronization beyond the prefill's own.
  void set_stage_timing(bool on) { clock_.enable(on, layers()); }

  /// The prefill attention kernel: Wgmma (Hopper, sm_90a) where the device and the build have it,
  /// else Fa2 (mma.sync, any sm_80+ GPU); Cudnn (cuDNN's fused flash attention) only when chosen.
  /// All compute the same function, row lse included (tested against each other).
  AttentionKernel attention_kernel() const { return attention_kernel_; }
  /// Chooses the prefill attention kernel. Throws std::runtime_error for Wgmma where it is not
  /// available, and for Cudnn when the build has no cuDNN (FTP_WITH_CUDNN), libcudnn.so.9 does not
  /// load, or cuDNN has no engine for this model's heads and head size (checked on a short prompt;
  /// a prompt length cuDNN then refuses throws from the prefill).
  void set_attention_kernel(AttentionKernel kernel) {
    if (kernel == AttentionKernel::Wgmma && !kernels::attention_prefill_sm90_available()) {
      throw std::runtime_error("set_attention_kernel: the wgmma kernel needs an sm_90 GPU and a build with sm_90a code");
    }
    if (kernel == AttentionKernel::Cudnn) {
#if defined(FTP_HAVE_CUDNN)
      if (!CudnnAttention::available()) {
        throw std::runtime_error("set_attention_kernel: cuDNN unavailable: " + CudnnAttention::unavailable_reason());
      }
      if (!cudnn_) {
        auto attn = std::make_unique<CudnnAttention>();
        const int probe_tokens = std::min(max_tokens_, 128);
        try {
          attn->prepare(probe_tokens, q_heads(), kv_heads(), head_dim(), qkv_dim(), qkv_dim());
        } catch (const std::exception& e) {
          throw std::runtime_error(std::string("set_attention_kernel: ") + e.what());
        }
        cudnn_ = std::move(attn);
      }
#else
      throw std::runtime_error(
          "set_attention_kernel: this build has no cuDNN attention (configure with FTP_WITH_CUDNN=AUTO/ON, cudnn.h "
          "and the cudnn-frontend headers of scripts/fetch_cudnn_frontend.sh)");
#endif
    }
    attention_kernel_ = kernel;
  }

  /// Whether FTP's scorer reuses the attention kernel's row log-sum-exp (default) or computes its
  /// own first pass over the keys (the library's fallback; for comparisons).
  void set_reuse_attention_lse(bool reuse) { reuse_attention_lse_ = reuse; }

  const ftp::Config& ftp_config() const { return ftp_pruner_->config(); }
  const LlamaConfig& config() const { return config_; }
  int max_tokens() const { return max_tokens_; }
  /// Positions now in the KV cache (the next decode position).
  int cached_tokens() const { return cached_; }
  cudaStream_t stream() const { return stream_; }
  /// Device bytes of weights (fused as uploaded).
  std::size_t weight_bytes() const { return sizes_.weights; }

 private:
  // Device layout types (llama3/device_layout.cuh).
  using LayerParams = model_detail::LayerParams;
  using Weights = model_detail::Weights;
  using Activations = model_detail::Activations;
  using Sizes = model_detail::Sizes;

  // ---- shape shorthands ----
  int hidden() const { return static_cast<int>(config_.hidden); }
  int ffn() const { return static_cast<int>(config_.ffn); }
  int layers() const { return static_cast<int>(config_.n_layers); }
  int q_heads() const { return static_cast<int>(config_.n_heads); }
  int kv_heads() const { return static_cast<int>(config_.n_kv_heads); }
  int head_dim() const { return static_cast<int>(config_.head_dim); }
  int q_dim() const { return static_cast<int>(config_.q_dim()); }
  int kv_dim() const { return static_cast<int>(config_.kv_dim()); }
  int qkv_dim() const { return q_dim() + 2 * kv_dim(); }
  int vocab() const { return static_cast<int>(config_.vocab); }
  float eps() const { return static_cast<float>(config_.rms_eps); }

  bf16* k_cache(int layer) const {
    return a_.kv_cache + static_cast<std::size_t>(layer) * 2 * static_cast<std::size_t>(max_tokens_) * kv_dim();
  }
  bf16* v_cache(int layer) const { return k_cache(layer) + static_cast<std::size_t>(max_tokens_) * kv_dim(); }


  static Sizes sizes(const LlamaConfig& c, int max_tokens, const ftp::Config& ftp_config, bool tied = false,
                     bool biases = false) {
    Sizes s;
    ftp::WorkspaceCarver wc;
    Weights w;
    model_detail::layout_weights(wc, c, tied, biases || c.qkv_bias, w);
    s.weights = wc.used();
    ftp::WorkspaceCarver ac;
    Activations a;
    model_detail::layout_activations(ac, c, max_tokens, a, &s.kv_cache);
    s.activations = ac.used();
    const ftp::WorkspaceShape shape{max_tokens, 1, static_cast<int>(c.hidden), static_cast<int>(c.ffn),
                                    static_cast<int>(c.n_heads), static_cast<int>(c.n_kv_heads),
                                    static_cast<int>(c.head_dim)};
    s.ftp_workspace = FtpPruner::workspace_bytes(shape, ftp_config);
    s.dense_workspace = DensePruner::workspace_bytes(shape, ftp_config);
    return s;
  }

  // ---- construction ----
  void validate_config() const {
    const LlamaConfig& c = config_;
    const auto fail = [](const std::string& m) { throw std::runtime_error("DeviceModel: " + m); };
    if (max_tokens_ < 1) fail("max_tokens is " + std::to_string(max_tokens_) + ": expected >= 1");
    if (c.n_layers < 1 || c.hidden < 1 || c.ffn < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.vocab < 1) {
      fail("config has a zero or negative size");
    }
    if (c.head_dim != 64 && c.head_dim != 128) {
      fail("head size d = " + std::to_string(c.head_dim) + " is not supported: the attention kernels take 64 or 128");
    }
    if (c.n_heads % c.n_kv_heads != 0 || c.n_heads / c.n_kv_heads > 8) {
      fail("Hq / Hkv = " + std::to_string(c.n_heads) + " / " + std::to_string(c.n_kv_heads) +
           " is not supported: expected a whole group size of at most 8 (decode attention)");
    }
    if (c.hidden % 8 != 0 || c.ffn % 8 != 0) {
      fail("C = " + std::to_string(c.hidden) + " and I = " + std::to_string(c.ffn) +
           " must be multiples of 8 (16-byte row accesses)");
    }
    if (c.rope_style == RopeStyle::NeoX && c.rope_dim != c.head_dim) {
      fail("partial NeoX RoPE (rope_dim " + std::to_string(c.rope_dim) + " < d " + std::to_string(c.head_dim) +
           ") is not supported");
    }
    if (c.vocab > (std::int64_t(1) << 31) - 1 || static_cast<std::int64_t>(max_tokens_) * c.hidden > (std::int64_t(1) << 40)) {
      fail("sizes out of range");
    }
  }

  void init(const ftp::Config& ftp_config) {
    validate_config();
    sizes_ = sizes(config_, max_tokens_, ftp_config);
    std::size_t free_bytes = 0, total_bytes = 0;
    LLAMA3_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
    const std::size_t need = sizes_.weights + sizes_.activations + sizes_.ftp_workspace + sizes_.dense_workspace;
    if (need > free_bytes) {
      throw std::runtime_error(
          "DeviceModel: needs " + model_detail::gib_text(need) + " of GPU memory for max_tokens = " +
          std::to_string(max_tokens_) + " (weights " + model_detail::gib_text(sizes_.weights) + ", KV cache " +
          model_detail::gib_text(sizes_.kv_cache) + ", activations " +
          model_detail::gib_text(sizes_.activations - sizes_.kv_cache) + ", FFN/pruner workspaces " +
          model_detail::gib_text(sizes_.ftp_workspace + sizes_.dense_workspace) + ") but only " +
          model_detail::gib_text(free_bytes) + " of " + model_detail::gib_text(total_bytes) +
          " are free; use fewer max tokens");
    }
    LLAMA3_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    LLAMA3_CUDA_CHECK(cudaEventCreate(&start_));
    LLAMA3_CUDA_CHECK(cudaEventCreate(&stop_));

    activations_mem_ = model_detail::device_alloc(sizes_.activations, "KV cache and activations");
    ftp::WorkspaceCarver ac(activations_mem_.get(), sizes_.activations);
    model_detail::layout_activations(ac, config_, max_tokens_, a_);

    LLAMA3_CUBLAS_CHECK(cublasCreate(&cublas_));
    LLAMA3_CUBLAS_CHECK(cublasSetStream(cublas_, stream_));  // resets the workspace: set it after
    LLAMA3_CUBLAS_CHECK(cublasSetWorkspace(cublas_, a_.cublas_ws, model_detail::kCublasWorkspaceBytes));

    void* pinned = nullptr;
    LLAMA3_CUDA_CHECK(cudaMallocHost(&pinned, 4 * sizeof(int)));
    host_ints_.reset(pinned);

    std::vector<int> positions(static_cast<std::size_t>(max_tokens_));
    for (int i = 0; i < max_tokens_; ++i) positions[static_cast<std::size_t>(i)] = i;
    LLAMA3_CUDA_CHECK(cudaMemcpy(a_.positions, positions.data(), positions.size() * sizeof(int), cudaMemcpyHostToDevice));
    dense_pruner_ = std::make_unique<DensePruner>(ftp_config, pruner_shape(), timed_scorer(), ftp::KeepAll{},
                                                  timed_ffn());
    dense_pruner_->set_observer([this](const ftp::LayerReport& r) { record(r); });
    set_ftp_config(ftp_config);
  }

  void carve_weights(bool tied, bool biases) {
    ftp::WorkspaceCarver sizing;
    model_detail::layout_weights(sizing, config_, tied, biases, w_);
    sizes_.weights = sizing.used();
    weights_mem_ = model_detail::device_alloc(sizes_.weights, "weights");
    ftp::WorkspaceCarver carver(weights_mem_.get(), sizes_.weights);
    model_detail::layout_weights(carver, config_, tied, biases, w_);
  }

  // RoPE table from the CPU reference's formula (rope_freqs divisors, linear or llama3 scaling);
  // pairs past rope_dim get 0: angle 0, no rotation (partial RoPE with adjacent pairs).
  void upload_rope_table(const std::vector<float>& rope_freqs) {
    const std::vector<double> inv = cpu::rope_inv_freq(config_, rope_freqs);
    std::vector<float> table(static_cast<std::size_t>(head_dim() / 2), 0.0f);
    for (std::size_t i = 0; i < inv.size() && i < table.size(); ++i) table[i] = static_cast<float>(inv[i]);
    LLAMA3_CUDA_CHECK(cudaMemcpy(a_.inv_freq, table.data(), table.size() * sizeof(float), cudaMemcpyHostToDevice));
  }

  void upload(const HostWeights& hw) {
    const std::size_t C = config_.hidden, I = config_.ffn, QD = config_.q_dim(), KVD = config_.kv_dim();
    const std::size_t V = config_.vocab;
    const auto need = [](const std::vector<uint16_t>& v, std::size_t n, const std::string& name) {
      if (v.size() != n) {
        throw std::runtime_error("DeviceModel: weight '" + name + "' has " + std::to_string(v.size()) +
                                 " elements, expected " + std::to_string(n) + " for this config");
      }
    };
    const auto put = [this](bf16* dst, const std::vector<uint16_t>& src) {
      // bf16 bits as stored by HostWeights: same bytes as __nv_bfloat16.
      LLAMA3_CUDA_CHECK(cudaMemcpy(dst, src.data(), src.size() * sizeof(uint16_t), cudaMemcpyHostToDevice));
    };
    if (hw.layers.size() != static_cast<std::size_t>(config_.n_layers)) {
      throw std::runtime_error("DeviceModel: weights have " + std::to_string(hw.layers.size()) + " layers, config " +
                               std::to_string(config_.n_layers));
    }
    bool biases = config_.qkv_bias;
    for (const LayerWeights& L : hw.layers) biases = biases || !L.bq.empty() || !L.bk.empty() || !L.bv.empty();
    carve_weights(hw.tied_output, biases);
    upload_rope_table(hw.rope_freqs);

    need(hw.token_embd, V * C, "token_embd");
    put(w_.token_embd, hw.token_embd);
    need(hw.output_norm, C, "output_norm");
    put(w_.output_norm, hw.output_norm);
    if (!hw.tied_output) {
      need(hw.output, V * C, "output");
      put(w_.output, hw.output);
    }
    for (std::size_t l = 0; l < hw.layers.size(); ++l) {
      const LayerWeights& src = hw.layers[l];
      const LayerParams& dst = w_.layers[l];
      const std::string at = " of layer " + std::to_string(l);
      need(src.attn_norm, C, "attn_norm" + at);
      need(src.wq, QD * C, "wq" + at);
      need(src.wk, KVD * C, "wk" + at);
      need(src.wv, KVD * C, "wv" + at);
      need(src.wo, C * QD, "wo" + at);
      need(src.ffn_norm, C, "ffn_norm" + at);
      need(src.w_gate, I * C, "w_gate" + at);
      need(src.w_up, I * C, "w_up" + at);
      need(src.w_down, C * I, "w_down" + at);
      put(dst.attn_norm, src.attn_norm);
      put(dst.wqkv, src.wq);  // fused [QKV, C]: q rows, k rows, v rows
      put(dst.wqkv + QD * C, src.wk);
      put(dst.wqkv + (QD + KVD) * C, src.wv);
      if (dst.bqkv != nullptr) {
        LLAMA3_CUDA_CHECK(cudaMemset(dst.bqkv, 0, (QD + 2 * KVD) * sizeof(bf16)));  // an absent bias is zero
        if (!src.bq.empty()) { need(src.bq, QD, "bq" + at); put(dst.bqkv, src.bq); }
        if (!src.bk.empty()) { need(src.bk, KVD, "bk" + at); put(dst.bqkv + QD, src.bk); }
        if (!src.bv.empty()) { need(src.bv, KVD, "bv" + at); put(dst.bqkv + QD + KVD, src.bv); }
      }
      put(dst.wo, src.wo);
      put(dst.ffn_norm, src.ffn_norm);
      put(dst.gate_up, src.w_gate);  // fused [2I, C]: gate rows first (CublasSwiGLU's layout)
      put(dst.gate_up + I * C, src.w_up);
      put(dst.down, src.w_down);
    }
  }

  void fill_synthetic(std::uint64_t seed) {
    using model_detail::synthetic_scale;
    using model_detail::tensor_id;
    carve_weights(/*tied=*/false, config_.qkv_bias);
    upload_rope_table({});
    const std::int64_t C = config_.hidden, I = config_.ffn, QD = config_.q_dim(), KVD = config_.kv_dim();
    const std::int64_t V = config_.vocab;
    const auto fill = [&](bf16* dst, std::int64_t n, SyntheticTensor t, std::int64_t layer) {
      const model_detail::SyntheticScale s = synthetic_scale(config_, t);
      model_kernels::fill_synthetic_kernel<><<<model_kernels::grid_for(n, 256), 256, 0, stream_>>>(
          dst, n, seed, tensor_id(t, layer), s.offset, s.scale);
      LLAMA3_CUDA_CHECK_LAUNCH();
    };
    fill(w_.token_embd, V * C, SyntheticTensor::TokenEmbd, 0);
    fill(w_.output_norm, C, SyntheticTensor::OutputNorm, 0);
    fill(w_.output, V * C, SyntheticTensor::Output, 0);
    for (std::int64_t l = 0; l < config_.n_layers; ++l) {
      const LayerParams& L = w_.layers[static_cast<std::size_t>(l)];
      fill(L.attn_norm, C, SyntheticTensor::AttnNorm, l);
      fill(L.wqkv, QD * C, SyntheticTensor::Wq, l);
      fill(L.wqkv + QD * C, KVD * C, SyntheticTensor::Wk, l);
      fill(L.wqkv + (QD + KVD) * C, KVD * C, SyntheticTensor::Wv, l);
      if (L.bqkv != nullptr) {
        fill(L.bqkv, QD, SyntheticTensor::Bq, l);
        fill(L.bqkv + QD, KVD, SyntheticTensor::Bk, l);
        fill(L.bqkv + QD + KVD, KVD, SyntheticTensor::Bv, l);
      }
      fill(L.wo, C * QD, SyntheticTensor::Wo, l);
      fill(L.ffn_norm, C, SyntheticTensor::FfnNorm, l);
      fill(L.gate_up, I * C, SyntheticTensor::Gate, l);
      fill(L.gate_up + I * C, I * C, SyntheticTensor::Up, l);
      fill(L.down, C * I, SyntheticTensor::Down, l);
    }
    LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // ---- the forward pass ----
  void check_token(std::int32_t id, const char* where) const {
    if (id < 0 || id >= vocab()) {
      throw std::runtime_error(std::string(where) + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                               std::to_string(vocab()) + ")");
    }
  }

  PrefillResult run_prefill(const std::vector<std::int32_t>& tokens, bool ftp_enabled, const Sampling& sampling,
                            std::vector<float>* all_logits) {
    if (ftp_enabled) return run_prefill_with(tokens, *ftp_pruner_, true, sampling, all_logits);
    return run_prefill_with(tokens, *dense_pruner_, false, sampling, all_logits);
  }

  template <class Pruner>
  PrefillResult run_prefill_with(const std::vector<std::int32_t>& tokens, Pruner& pruner, bool ftp_enabled,
                                 const Sampling& sampling, std::vector<float>* all_logits) {
    const int L = static_cast<int>(tokens.size());
    if (tokens.empty()) throw std::runtime_error("prefill: the prompt is empty");
    if (tokens.size() > static_cast<std::size_t>(max_tokens_)) {
      throw std::runtime_error("prefill: the prompt has " + std::to_string(tokens.size()) +
                               " tokens, more than max_tokens = " + std::to_string(max_tokens_) +
                               " (the KV cache and activations were sized for that); build the model with a larger "
                               "max_tokens");
    }
    for (std::int32_t id : tokens) check_token(id, "prefill");
    LLAMA3_CUDA_CHECK(cudaMemcpyAsync(a_.tokens, tokens.data(), tokens.size() * sizeof(int), cudaMemcpyHostToDevice,
                                      stream_));
    const int cu[2] = {0, L};
    LLAMA3_CUDA_CHECK(cudaMemcpyAsync(a_.cu_seqlens, cu, sizeof cu, cudaMemcpyHostToDevice, stream_));
    kept_.assign(static_cast<std::size_t>(layers()), -1);

    LLAMA3_CUDA_CHECK(cudaEventRecord(start_, stream_));
    // Only the model's own pruners carry the clock in their policies.
    constexpr bool kOwnPruner = std::is_same_v<Pruner, FtpPruner> || std::is_same_v<Pruner, DensePruner>;
    const bool timed = kOwnPruner && clock_.enabled();
    if (timed) clock_.begin(layers(), stream_);
    pruner.plan(cu, 1, L, stream_);
    forward_layers(L, pruner, timed);
    decode_planned_ = false;  // the dense pruner may now hold this prefill's plan
    cached_ = L;
    last_logits_row(L - 1);
    enqueue_sample(sampling);
    if (timed) clock_.end(stream_);
    LLAMA3_CUDA_CHECK(cudaEventRecord(stop_, stream_));
    const std::int32_t next = read_sampled();

    PrefillResult r;
    r.num_tokens = L;
    r.next_token = next;
    r.ftp = ftp_enabled;
    LLAMA3_CUDA_CHECK(cudaEventElapsedTime(&r.ttft_ms, start_, stop_));
    r.kept_per_layer = kept_;
    if (timed) r.stages = clock_.read();
    if (all_logits != nullptr) {
      all_rows_logits(L, *all_logits);
      last_logits_row(L - 1);  // the chunks reused the logits buffer
      LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));
    }
    return r;
  }

  // Embedding and every decoder layer over L prompt tokens (positions 0..L-1); the residual
  // stream ends in a_.hidden [L, C].
  template <class Pruner>
  void forward_layers(int L, Pruner& pruner, bool timed) {
    const int C = hidden(), QKV = qkv_dim(), KV = kv_dim(), QD = q_dim();
    kernels::launch_embedding(w_.token_embd, a_.tokens, a_.hidden, L, C, vocab(), nullptr, stream_);
    for (int l = 0; l < layers(); ++l) {
      const LayerParams& W = w_.layers[static_cast<std::size_t>(l)];
      bf16* q = a_.qkv;
      bf16* k = a_.qkv + QD;
      bf16* v = a_.qkv + QD + KV;
      const auto mark = [&](StageClock::Mark m) {
        if (timed) clock_.mark(l, m, stream_);
      };
      // attention block
      mark(StageClock::kLayerBegin);
      kernels::launch_rmsnorm(a_.hidden, W.attn_norm, a_.normed, L, C, eps(), stream_);
      model_detail::gemm(cublas_, gemm_init_, L, QKV, C, a_.normed, W.wqkv, a_.qkv, 0.0f);
      if (W.bqkv != nullptr) add_bias(W.bqkv, L);
      rope(q, k, a_.positions, L);
      write_kv_cache(l, k, v, L);
      mark(StageClock::kAttnBegin);
      attention_prefill(q, k, v, L);
      mark(StageClock::kAttnEnd);
      model_detail::gemm(cublas_, gemm_init_, L, C, QD, a_.attn, W.wo, a_.hidden, 1.0f);  // h += o_proj(attn)
      // FFN block through the library: score, keep, h[kept] += FFN(h[kept])
      mark(StageClock::kFfnBlockBegin);
      clock_layer_ = timed ? l : -1;  // TimedFfn marks this layer's FFN start
      pruner.run(l, attention_view(q, k), residual_view(), ffn_weights(W), stream_);
      mark(StageClock::kLayerEnd);
    }
    clock_layer_ = -1;
  }

  void add_bias(const bf16* bias, int T) {
    model_kernels::add_bias_kernel<><<<model_kernels::grid_for(static_cast<std::int64_t>(T) * qkv_dim(), 256), 256, 0,
                                       stream_>>>(a_.qkv, bias, T, qkv_dim());
    LLAMA3_CUDA_CHECK_LAUNCH();
  }

  void rope(bf16* q, bf16* k, const int* positions, int T) {
    const int QKV = qkv_dim();
    if (config_.rope_style == RopeStyle::Interleaved) {
      kernels::launch_rope<kernels::RopeStyle::Adjacent>(q, QKV, q_heads(), k, QKV, kv_heads(), positions, a_.inv_freq,
                                                         T, head_dim(), stream_);
    } else {
      kernels::launch_rope<kernels::RopeStyle::HalfSplit>(q, QKV, q_heads(), k, QKV, kv_heads(), positions,
                                                          a_.inv_freq, T, head_dim(), stream_);
    }
  }

  // Keys and values of positions 0..T-1 into the layer's cache: two strided copies out of the
  // fused qkv rows (rows of QKV elements -> rows of Hkv d elements).
  void write_kv_cache(int layer, const bf16* k, const bf16* v, int T) {
    const std::size_t row = static_cast<std::size_t>(kv_dim()) * sizeof(bf16);
    const std::size_t pitch = static_cast<std::size_t>(qkv_dim()) * sizeof(bf16);
    LLAMA3_CUDA_CHECK(cudaMemcpy2DAsync(k_cache(layer), row, k, pitch, row, T, cudaMemcpyDeviceToDevice, stream_));
    LLAMA3_CUDA_CHECK(cudaMemcpy2DAsync(v_cache(layer), row, v, pitch, row, T, cudaMemcpyDeviceToDevice, stream_));
  }

  void attention_prefill(const bf16* q, const bf16* k, const bf16* v, int T) {
    if (head_dim() == 64) {
      attention_prefill_d<64>(q, k, v, T);
    } else {
      attention_prefill_d<128>(q, k, v, T);
    }
  }
  template <int D>
  void attention_prefill_d(const bf16* q, const bf16* k, const bf16* v, int T) {
    const int QKV = qkv_dim();
#if defined(FTP_HAVE_CUDNN)
    if (attention_kernel_ == AttentionKernel::Cudnn) {
      cudnn_->run(q, QKV, k, v, QKV, a_.attn, a_.attn_lse, T, q_heads(), kv_heads(), D, stream_);
      return;
    }
#endif
    if (attention_kernel_ == AttentionKernel::Wgmma) {
      kernels::launch_attention_prefill_sm90<D>(q, QKV, k, QKV, v, QKV, a_.attn, a_.attn_lse, a_.cu_seqlens, 1, T,
                                                q_heads(), kv_heads(), stream_);
    } else {
      kernels::launch_attention_prefill<D>(q, QKV, k, QKV, v, QKV, a_.attn, a_.cu_seqlens, 1, T, q_heads(), kv_heads(),
                                           stream_, a_.attn_lse);
    }
  }

  void attention_decode(const bf16* q, int layer, const int* d_len, int len) {
    const std::int64_t KV = kv_dim();
    const std::int64_t batch_stride = static_cast<std::int64_t>(max_tokens_) * KV;
    if (head_dim() == 64) {
      kernels::launch_attention_decode<64>(q, k_cache(layer), v_cache(layer), batch_stride, KV, d_len, len, a_.attn, 1,
                                           q_heads(), kv_heads(), a_.decode_ws, a_.decode_ws_bytes, stream_);
    } else {
      kernels::launch_attention_decode<128>(q, k_cache(layer), v_cache(layer), batch_stride, KV, d_len, len, a_.attn,
                                            1, q_heads(), kv_heads(), a_.decode_ws, a_.decode_ws_bytes, stream_);
    }
  }

  // q/k of the layer and the row lse its attention kernel just wrote ([T, Hq]): the scorer then
  // makes one pass over the keys instead of two.
  ftp::AttentionView<bf16> attention_view(const bf16* q, const bf16* k) const {
    ftp::AttentionView<bf16> view{q, qkv_dim(), k, qkv_dim(), q_heads(), kv_heads(), head_dim()};
    if (reuse_attention_lse_) {
      view.lse = a_.attn_lse;
      view.lse_token_stride = q_heads();
      view.lse_head_stride = 1;
    }
    return view;
  }
  ftp::ResidualView<bf16> residual_view() const { return ftp::ResidualView<bf16>{a_.hidden, hidden(), hidden()}; }
  ftp::CublasSwiGLU::Weights<bf16> ffn_weights(const LayerParams& W) const {
    return ftp::CublasSwiGLU::Weights<bf16>{W.ffn_norm, W.gate_up, nullptr, nullptr, W.down, eps()};
  }

  // Final norm and logits of one residual row into logits row 0 (fp32 [V]).
  void last_logits_row(int row) {
    const int C = hidden();
    kernels::launch_rmsnorm(a_.hidden + static_cast<std::int64_t>(row) * C, w_.output_norm, a_.normed, 1, C, eps(),
                            stream_);
    model_detail::gemm(cublas_, gemm_init_, 1, vocab(), C, a_.normed, w_.output, a_.logits, 0.0f);
  }

  // Logits of all L rows, kLogitRows at a time, copied to the host: out [L, V].
  void all_rows_logits(int L, std::vector<float>& out) {
    const int C = hidden(), V = vocab();
    out.assign(static_cast<std::size_t>(L) * V, 0.0f);
    kernels::launch_rmsnorm(a_.hidden, w_.output_norm, a_.normed, L, C, eps(), stream_);
    for (int first = 0; first < L; first += model_detail::kLogitRows) {
      const int rows = std::min(model_detail::kLogitRows, L - first);
      model_detail::gemm(cublas_, gemm_init_, rows, V, C, a_.normed + static_cast<std::int64_t>(first) * C, w_.output,
                         a_.logits, 0.0f);
      LLAMA3_CUDA_CHECK(cudaMemcpyAsync(out.data() + static_cast<std::size_t>(first) * V, a_.logits,
                                        static_cast<std::size_t>(rows) * V * sizeof(float), cudaMemcpyDeviceToHost,
                                        stream_));
      LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the next chunk overwrites the buffer
    }
  }

  // Samples from logits row 0 on the device and enqueues the copy of the id to pinned memory;
  // read_sampled() waits for it. Apart so that the TTFT stop event goes in between.
  void enqueue_sample(const Sampling& s) {
    if (s.temperature > 0.0f) {
      kernels::launch_sample_temperature(a_.logits, vocab(), s.temperature, s.u, a_.next_token, stream_);
    } else {
      kernels::launch_sample_argmax(a_.logits, vocab(), a_.next_token, stream_);
    }
    LLAMA3_CUDA_CHECK(cudaMemcpyAsync(sampled_slot(), a_.next_token, sizeof(int), cudaMemcpyDeviceToHost, stream_));
  }
  std::int32_t read_sampled() {
    LLAMA3_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return *sampled_slot();
  }
  int* sampled_slot() const { return static_cast<int*>(host_ints_.get()) + 3; }

  void record(const ftp::LayerReport& r) {
    if (r.layer >= 0 && static_cast<std::size_t>(r.layer) < kept_.size()) kept_[static_cast<std::size_t>(r.layer)] = r.kept_tokens;
  }

  LlamaConfig config_;
  int max_tokens_ = 0;
  Sizes sizes_;
  std::unique_ptr<void, model_detail::CudaFree> weights_mem_;
  std::unique_ptr<void, model_detail::CudaFree> activations_mem_;
  std::unique_ptr<void, model_detail::CudaFreeHost> host_ints_;  // [4] pinned: decode step ints, sampled id
  Weights w_;
  Activations a_;
  std::vector<int> kept_;  // kept rows per layer of the running prefill (the observer fills it)
  int cached_ = 0;         // positions in the KV cache
  bool decode_planned_ = false;
  bool reuse_attention_lse_ = true;
  AttentionKernel attention_kernel_ =
      kernels::attention_prefill_sm90_available() ? AttentionKernel::Wgmma : AttentionKernel::Fa2;
#if defined(FTP_HAVE_CUDNN)
  std::unique_ptr<CudnnAttention> cudnn_;  // handle, graphs per prompt length, workspace (AttentionKernel::Cudnn)
#endif
  StageClock clock_;       // stage timing (off unless set_stage_timing(true)); before the pruners,
  int clock_layer_ = -1;   // which hold pointers to it; the layer being timed, -1 for none
  std::unique_ptr<DensePruner> dense_pruner_;
  std::unique_ptr<FtpPruner> ftp_pruner_;

  TimedScorer<ftp::LastQueriesAttention> timed_scorer() { return TimedScorer<ftp::LastQueriesAttention>({}, &clock_); }
  TimedFfn<ftp::CublasSwiGLU> timed_ffn() { return TimedFfn<ftp::CublasSwiGLU>({}, &clock_, &clock_layer_); }
};

}  // namespace llama3
