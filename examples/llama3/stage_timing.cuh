// Where a prefill's GPU time goes, per stage: the attention block's projections, the attention
// kernel, FTP's scoring, FTP's selection (with its one kept-count copy and host wait) and the FFN.
//
// CUDA events are recorded on the model's stream at the stage boundaries of every layer and read
// once after the prefill, so timing adds no synchronization; with timing off nothing is recorded.
// The two boundaries inside ftp::Pruner::run come from policies, not from hooks in the library:
// TimedScorer<S> records after S's scores, TimedFfn<F> before F's FFN, so everything between
// them is the selection (the device work, the count copy, and the gap while the host waits and
// launches the FFN). Boundaries of one layer (layer_begin ... layer_end):
//
//   layer_begin | norm, QKV GEMM, bias, RoPE, KV-cache write | attn_begin | attention kernel |
//   attn_end | o_proj GEMM | ffn_block_begin | scoring | score_end | selection | ffn_begin | FFN | layer_end
//
// A dense layer (index < F, or a policy that keeps everything) has no score_end: its time from
// ffn_block_begin to ffn_begin is counted as selection (the pruner's bookkeeping; ~0).
#pragma once

#include <cuda_runtime.h>

#include <array>
#include <cstddef>
#include <utility>
#include <vector>

#include "ftp/ffn/context.hpp"
#include "ftp/scorer/context.hpp"
#include "llama3/kernels/common.cuh"

namespace llama3 {

/// GPU milliseconds of one prefill, summed over layers. `other` is what lies outside the layers
/// (embedding, final norm, logits, sampling).
struct StageTimes {
  float projections_ms = 0;  ///< norm, QKV GEMM, bias, RoPE, KV write, o_proj
  float attention_ms = 0;    ///< the prefill attention kernel
  float scoring_ms = 0;      ///< FTP's importance scores (pruned layers)
  float selection_ms = 0;    ///< FTP's kept-token selection, the count copy and the host wait
  float ffn_ms = 0;          ///< the FFN over the kept (or all) rows, residual add included
  float other_ms = 0;        ///< embedding, logits and sampling
  float total_ms = 0;        ///< first to last event (= TTFT when recorded around the prefill)
};

/// The events of every layer of one prefill. Not copyable (owns CUDA events).
class StageClock {
 public:
  enum Mark : int { kLayerBegin, kAttnBegin, kAttnEnd, kFfnBlockBegin, kScoreEnd, kFfnBegin, kLayerEnd, kMarks };

  StageClock() = default;
  StageClock(const StageClock&) = delete;
  StageClock& operator=(const StageClock&) = delete;
  ~StageClock() { release(); }

  bool enabled() const { return enabled_; }

  /// Turns timing on for `layers` layers (creates the events once) or off.
  void enable(bool on, int layers) {
    enabled_ = on;
    if (on && static_cast<int>(events_.size()) < layers) {
      const std::size_t have = events_.size();
      events_.resize(static_cast<std::size_t>(layers));
      for (std::size_t l = have; l < events_.size(); ++l) {
        for (cudaEvent_t& e : events_[l]) LLAMA3_CUDA_CHECK(cudaEventCreate(&e));
      }
      if (begin_ == nullptr) LLAMA3_CUDA_CHECK(cudaEventCreate(&begin_));
      if (end_ == nullptr) LLAMA3_CUDA_CHECK(cudaEventCreate(&end_));
    }
  }

  /// Starts a prefill of `layers` layers: clears which layers were scored.
  void begin(int layers, cudaStream_t stream) {
    if (!enabled_) return;
    layers_ = layers;
    scored_.assign(static_cast<std::size_t>(layers), false);
    LLAMA3_CUDA_CHECK(cudaEventRecord(begin_, stream));
  }
  void end(cudaStream_t stream) {
    if (enabled_) LLAMA3_CUDA_CHECK(cudaEventRecord(end_, stream));
  }

  /// Records boundary `m` of `layer` on `stream`.
  void mark(int layer, Mark m, cudaStream_t stream) {
    if (!enabled_ || layer < 0 || layer >= layers_) return;
    if (m == kScoreEnd) scored_[static_cast<std::size_t>(layer)] = true;
    LLAMA3_CUDA_CHECK(cudaEventRecord(events_[static_cast<std::size_t>(layer)][m], stream));
  }

  /// The stage sums of the last prefill; waits for its end event. All zero when timing is off.
  StageTimes read() const {
    StageTimes s;
    if (!enabled_ || layers_ == 0) return s;
    LLAMA3_CUDA_CHECK(cudaEventSynchronize(end_));
    const auto ms = [](cudaEvent_t a, cudaEvent_t b) {
      float t = 0;
      LLAMA3_CUDA_CHECK(cudaEventElapsedTime(&t, a, b));
      return t;
    };
    float in_layers = 0;
    for (int l = 0; l < layers_; ++l) {
      const auto& e = events_[static_cast<std::size_t>(l)];
      s.projections_ms += ms(e[kLayerBegin], e[kAttnBegin]) + ms(e[kAttnEnd], e[kFfnBlockBegin]);
      s.attention_ms += ms(e[kAttnBegin], e[kAttnEnd]);
      if (scored_[static_cast<std::size_t>(l)]) {
        s.scoring_ms += ms(e[kFfnBlockBegin], e[kScoreEnd]);
        s.selection_ms += ms(e[kScoreEnd], e[kFfnBegin]);
      } else {
        s.selection_ms += ms(e[kFfnBlockBegin], e[kFfnBegin]);
      }
      s.ffn_ms += ms(e[kFfnBegin], e[kLayerEnd]);
      in_layers += ms(e[kLayerBegin], e[kLayerEnd]);
    }
    s.total_ms = ms(begin_, end_);
    s.other_ms = s.total_ms - in_layers;
    return s;
  }

 private:
  void release() {
    for (auto& layer : events_) {
      for (cudaEvent_t e : layer) {
        if (e != nullptr) cudaEventDestroy(e);
      }
    }
    if (begin_ != nullptr) cudaEventDestroy(begin_);
    if (end_ != nullptr) cudaEventDestroy(end_);
  }

  bool enabled_ = false;
  int layers_ = 0;
  std::vector<std::array<cudaEvent_t, kMarks>> events_;
  std::vector<bool> scored_;
  cudaEvent_t begin_ = nullptr, end_ = nullptr;
};

/// ImportanceScorer that runs `Scorer` and then marks the end of scoring on the clock (if any).
template <class Scorer>
struct TimedScorer : Scorer {
  StageClock* clock = nullptr;

  TimedScorer() = default;
  explicit TimedScorer(Scorer inner, StageClock* c = nullptr) : Scorer(std::move(inner)), clock(c) {}

  template <class T>
  void score(const ftp::ScoreContext<T>& ctx, const typename Scorer::Plan& plan) const {
    ftp::invoke_score(static_cast<const Scorer&>(*this), ctx, plan);
    if (clock != nullptr) clock->mark(ctx.layer, StageClock::kScoreEnd, ctx.stream);
  }
};

/// FFNExecutor that marks the start of the FFN on the clock (if any), then runs `Ffn`. The layer
/// comes from the clock's owner (FfnContext carries none): `layer` is set before each Pruner::run.
template <class Ffn>
struct TimedFfn : Ffn {
  StageClock* clock = nullptr;
  const int* layer = nullptr;

  TimedFfn() = default;
  explicit TimedFfn(Ffn inner, StageClock* c = nullptr, const int* l = nullptr)
      : Ffn(std::move(inner)), clock(c), layer(l) {}

  template <class T>
  void run(const ftp::FfnContext<T>& ctx, const typename Ffn::template Weights<T>& w) const {
    if (clock != nullptr && layer != nullptr) clock->mark(*layer, StageClock::kFfnBegin, ctx.stream);
    Ffn::run(ctx, w);
  }
};

}  // namespace llama3
