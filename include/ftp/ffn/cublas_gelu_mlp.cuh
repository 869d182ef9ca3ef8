// CublasGeluMlp: the GPT-style MLP, LayerNorm -> up (+bias) -> GELU -> down (+bias).
#pragma once

#include <algorithm>
#include <cstddef>

#include "ftp/ffn/chunked.hpp"
#include "ftp/ffn/context.hpp"
#include "ftp/kernels/ffn.cuh"

namespace ftp {

namespace detail {
/// One chunk's buffers of CublasGeluMlp.
template <class T>
struct GeluMlpChunk {
  T* normed = nullptr;     // [chunk, C]
  T* hidden = nullptr;     // [chunk, I]
  float* delta = nullptr;  // [chunk, C]
  void* cublas = nullptr;

  void layout(WorkspaceCarver& carver, const WorkspaceShape& shape, int chunk) {
    const std::size_t m = static_cast<std::size_t>(chunk);
    const std::size_t c = static_cast<std::size_t>(shape.hidden), i = static_cast<std::size_t>(shape.ffn);
    normed = carver.take<T>(m * c, "cublas_gelu_mlp.normed");
    hidden = carver.take<T>(m * i, "cublas_gelu_mlp.hidden");
    delta = carver.take<float>(m * c, "cublas_gelu_mlp.delta");
    cublas = carver.take<std::uint8_t>(kCublasWorkspaceBytes, "cublas_gelu_mlp.cublas_workspace");
  }
};
}  // namespace detail

/// FFN(x) = W_down gelu_tanh(W_up x' + b_up) + b_down, x' = LayerNorm(x) * norm_weight + norm_bias.
/// Weights row-major [out, in]; every bias is optional (null). Rows run in chunks of `chunk_rows`.
struct CublasGeluMlp : detail::ChunkedFfn<detail::GeluMlpChunk> {
  using ChunkedFfn::ChunkedFfn;

  template <class T>
  struct Weights {
    const T* norm_weight = nullptr;  ///< [C]
    const T* norm_bias = nullptr;    ///< [C] or null
    const T* up = nullptr;           ///< [I, C]
    const T* up_bias = nullptr;      ///< [I] or null
    const T* down = nullptr;         ///< [C, I]
    const T* down_bias = nullptr;    ///< [C] or null
    float eps = 1e-5f;               ///< LayerNorm epsilon
  };

  template <class T>
  void validate(const Weights<T>& w) const {
    detail::require_pointer(w.norm_weight, "weights.norm_weight");
    detail::require_pointer(w.up, "weights.up");
    detail::require_pointer(w.down, "weights.down");
    detail::require(w.eps > 0.0f && w.eps < 1.0f, "weights.eps", w.eps, "0 < eps < 1");
  }

  template <class T>
  void run(const FfnContext<T>& ctx, const Weights<T>& w) const {
    const int C = ctx.shape.hidden, I = ctx.shape.ffn;
    const detail::GeluMlpChunk<T> buf = carve<T>(ctx.workspace, ctx.shape);
    const ScopedCublasBinding binding(ctx.cublas, ctx.stream, buf.cublas, kCublasWorkspaceBytes,
                                      ctx.caller_cublas_workspace);
    for (int first = 0; first < ctx.num_rows; first += chunk_rows) {
      const int M = std::min(chunk_rows, ctx.num_rows - first);
      const int* rows_chunk = ctx.rows != nullptr ? ctx.rows + first : nullptr;
      kernels::gather_layernorm_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
          ctx.residual.data, ctx.residual.row_stride, rows_chunk, first, C, w.norm_weight, w.norm_bias, w.eps,
          buf.normed);
      FTP_CUDA_CHECK_LAUNCH();
      gemm_x_wt(ctx.cublas, M, I, C, buf.normed, C, w.up, C, buf.hidden, I, 0.0f, ctx.gemm_output_init);
      kernels::bias_gelu_kernel<T><<<detail::elementwise_grid(static_cast<std::int64_t>(M) * I), 256, 0,
                                     ctx.stream>>>(buf.hidden, w.up_bias, M, I);
      FTP_CUDA_CHECK_LAUNCH();
      gemm_x_wt(ctx.cublas, M, C, I, buf.hidden, I, w.down, I, buf.delta, C, 0.0f, ctx.gemm_output_init);
      kernels::scatter_add_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
          ctx.residual.data, ctx.residual.row_stride, rows_chunk, first, C, buf.delta, w.down_bias);
      FTP_CUDA_CHECK_LAUNCH();
    }
  }
};

}  // namespace ftp
