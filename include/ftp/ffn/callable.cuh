// CallableFfn: hands the kept rows to the host application's own FFN (quantized, MoE, ...).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "ftp/ffn/chunked.hpp"
#include "ftp/ffn/context.hpp"
#include "ftp/kernels/ffn.cuh"

namespace ftp {

/// The rows a CallableFfn's function works on: `input` [M, C] (row stride `input_row_stride`) are
/// the residual rows of the kept tokens (not normalized: the function applies its own norm);
/// the function writes FFN(input) to `output` [M, C] fp32, which the library then adds into the
/// residual rows. `tokens` [M] are their packed token indices (null on the dense path, where row m
/// is token first_token + m).
template <class T>
struct FfnRows {
  const T* input;
  std::int64_t input_row_stride;
  float* output;
  int num_rows;
  int hidden;
  const int* tokens;
  int first_token;
};

namespace detail {
/// One chunk's buffers of CallableFfn.
template <class T>
struct CallableChunk {
  T* input = nullptr;       // [chunk, C] gathered rows
  float* output = nullptr;  // [chunk, C] the function's result

  void layout(WorkspaceCarver& carver, const WorkspaceShape& shape, int chunk) {
    const std::size_t m = static_cast<std::size_t>(chunk), c = static_cast<std::size_t>(shape.hidden);
    input = carver.take<T>(m * c, "callable_ffn.input");
    output = carver.take<float>(m * c, "callable_ffn.output");
  }
};
}  // namespace detail

/// Executor over a user function `fn(const FfnRows<T>&, const void* layer_user_data, cudaStream_t)`
/// (a generic lambda or a functor with a templated call operator). The function must enqueue its
/// work on the stream it is given and must not synchronize it if the pruner is graph-captured.
template <class Fn>
struct CallableFfn : detail::ChunkedFfn<detail::CallableChunk> {
  template <class T>
  struct Weights {
    const void* user = nullptr;  ///< passed through to fn unchanged (e.g. this layer's weights)
  };

  explicit CallableFfn(Fn function, int rows_per_chunk = 4096)
      : ChunkedFfn<detail::CallableChunk>(rows_per_chunk), fn(std::move(function)) {}

  template <class T>
  void validate(const Weights<T>&) const {}

  template <class T>
  void run(const FfnContext<T>& ctx, const Weights<T>& w) const {
    const int C = ctx.shape.hidden;
    const detail::CallableChunk<T> buf = carve<T>(ctx.workspace, ctx.shape);
    for (int first = 0; first < ctx.num_rows; first += chunk_rows) {
      const int M = std::min(chunk_rows, ctx.num_rows - first);
      FfnRows<T> rows_view{nullptr, C, buf.output, M, C, nullptr, first};
      if (ctx.rows != nullptr) {
        kernels::gather_rows_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
            ctx.residual.data, ctx.residual.row_stride, ctx.rows + first, 0, C, buf.input);
        FTP_CUDA_CHECK_LAUNCH();
        rows_view.input = buf.input;
        rows_view.tokens = ctx.rows + first;
      } else {
        rows_view.input = ctx.residual.data + static_cast<std::int64_t>(first) * ctx.residual.row_stride;
        rows_view.input_row_stride = ctx.residual.row_stride;
      }
      fn(rows_view, w.user, ctx.stream);
      kernels::scatter_add_kernel<T><<<M, kernels::kRowThreads, 0, ctx.stream>>>(
          ctx.residual.data, ctx.residual.row_stride, rows_view.tokens, first, C, buf.output,
          static_cast<const T*>(nullptr));
      FTP_CUDA_CHECK_LAUNCH();
    }
  }

  Fn fn;
};

}  // namespace ftp
