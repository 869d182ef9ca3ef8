// CublasSwiGLU: the Llama / Qwen / SmolLM FFN, RMSNorm -> gate/up -> SiLU(gate)*up -> down.
#pragma once

#include <algorithm>
#include <cstddef>

#include "ftp/ffn/chunked.hpp"
#include "ftp/ffn/context.hpp"
#include "ftp/kernels/ffn.cuh"

namespace ftp {

namespace detail {
/// One chunk's buffers of CublasSwiGLU.
template <class T>
struct SwigluChunk {
  T* normed = nullptr;   // [chunk, C]
  T* gate_up = nullptr;  // [chunk, 2I]
  T* act = nullptr;      // [chunk, I]
  float* delta = nullptr;  // [chunk, C] fp32 FFN output before the scatter-add
  void* cublas = nullptr;

  void layout(WorkspaceCarver& carver, const WorkspaceShape& shape, int chunk) {
    const std::size_t m = static_cast<std::size_t>(chunk);
    const std::size_t c = static_cast<std::size_t>(shape.hidden), i = static_cast<std::size_t>(shape.ffn);
    normed = carver.take<T>(m * c, "cublas_swiglu.normed");
    gate_up = carver.take<T>(m * 2 * i, "cublas_swiglu.gate_up");
    act = carver.take<T>(m * i, "cublas_swiglu.act");
    delta = carver.take<float>(m * c, "cublas_swiglu.delta");
    cublas = carver.take<std::uint8_t>(kCublasWorkspaceBytes, "cublas_swiglu.cublas_workspace");
  }
};
}  // namespace detail

/// FFN(x) = W_down (SiLU(W_gate x') * W_up x'), x' = RMSNorm(x) * norm_weight, added into the
/// residual. Weights are the host application's device pointers, row-major [out, in] (the HF and
/// GGUF layout). Either `gate_up` ([2I, C], gate rows first: one GEMM) or `gate` and `up` ([I, C]
/// each: two GEMMs into one buffer) must be set.
/// Rows run in chunks of `chunk_rows` (default 4096), so the workspace is bounded by the chunk.
struct CublasSwiGLU : detail::ChunkedFfn<detail::SwigluChunk> {
  using ChunkedFfn::ChunkedFfn;

  template <class T>
  struct Weights {
    const T* norm_weight = nullptr;  ///< [C] post-attention RMSNorm weight
    const T* gate_up = nullptr;      ///< [2I, C] fused, or null when gate/up are given
    const T* gate = nullptr;         ///< [I, C]
    const T* up = nullptr;           ///< [I, C]
    const T* down = nullptr;         ///< [C, I]
    float eps = 1e-5f;               ///< RMSNorm epsilon
  };

  template <class T>
  void validate(const Weights<T>& w) const {
    detail::require_pointer(w.norm_weight, "weights.norm_weight");
    detail::require_pointer(w.down, "weights.down");
    if (w.gate_up == nullptr) {
      detail::require_pointer(w.gate, "weights.gate (or weights.gate_up)");
      detail::require_pointer(w.up, "weights.up (or weights.gate_up)");
    }
    detail::require(w.eps > 0.0f && w.eps < 1.0f, "weights.eps", w.eps, "0 < eps < 1");
  }

  template <class T>
  void run(const FfnContext<T>& ctx, const Weights<T>& w) const {
    const int C = ctx.shape.hidden, I = ctx.shape.ffn;
    const detail::SwigluChunk<T> buf = carve<T>(ctx.workspace, ctx.shape);
    const ScopedCublasBinding binding(ctx.cublas, ctx.stream, buf.cublas, kCublasWorkspaceBytes,
                                      ctx.caller_cublas_workspace);
    const bool dense = ctx.rows == nullptr;
    for (int first = 0; first < ctx.num_rows; first += chunk_rows) {
      const int M = std::min(chunk_rows, ctx.num_rows - first);
      const int* rows_chunk = dense ? nullptr : ctx.rows + first;
      kernels::gather_rmsnorm_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
          ctx.residual.data, ctx.residual.row_stride, rows_chunk, first, C, w.norm_weight, w.eps, buf.normed);
      FTP_CUDA_CHECK_LAUNCH();
      if (w.gate_up != nullptr) {
        gemm_x_wt(ctx.cublas, M, 2 * I, C, buf.normed, C, w.gate_up, C, buf.gate_up, 2 * I, 0.0f, ctx.gemm_output_init);
      } else {
        gemm_x_wt(ctx.cublas, M, I, C, buf.normed, C, w.gate, C, buf.gate_up, 2 * I, 0.0f, ctx.gemm_output_init);
        gemm_x_wt(ctx.cublas, M, I, C, buf.normed, C, w.up, C, buf.gate_up + I, 2 * I, 0.0f, ctx.gemm_output_init);
      }
      launch_swiglu(buf.gate_up, M, I, buf.act, ctx.stream);
      FTP_CUDA_CHECK_LAUNCH();
      if (dense) {
        // Contiguous rows: the down GEMM adds straight into the residual (beta = 1), one rounding.
        gemm_x_wt(ctx.cublas, M, C, I, buf.act, I, w.down, I,
                  ctx.residual.data + static_cast<std::int64_t>(first) * ctx.residual.row_stride,
                  ctx.residual.row_stride, 1.0f, ctx.gemm_output_init);
      } else {
        gemm_x_wt(ctx.cublas, M, C, I, buf.act, I, w.down, I, buf.delta, C, 0.0f, ctx.gemm_output_init);
        kernels::scatter_add_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
            ctx.residual.data, ctx.residual.row_stride, rows_chunk, first, C, buf.delta, static_cast<const T*>(nullptr));
        FTP_CUDA_CHECK_LAUNCH();
      }
    }
  }

 private:
  // 16-byte vectors when I allows them (I a multiple of 16 / sizeof(T)), else one element a thread.
  template <class T>
  static void launch_swiglu(const T* gate_up, int M, int I, T* act, cudaStream_t stream) {
    constexpr int kVector = 16 / sizeof(T);
    if (I % kVector == 0) {
      kernels::swiglu_kernel<T, kVector>
          <<<detail::elementwise_grid(static_cast<std::int64_t>(M) * I / kVector), 256, 0, stream>>>(gate_up, M, I, act);
    } else {
      kernels::swiglu_kernel<T, 1><<<detail::elementwise_grid(static_cast<std::int64_t>(M) * I), 256, 0, stream>>>(
          gate_up, M, I, act);
    }
  }
};

}  // namespace ftp
