// What the pruner hands an FFNExecutor, and the cuBLAS helper the executors share.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <cstdint>

#include "ftp/cuda_check.hpp"
#include "ftp/initcheck_support.hpp"
#include "ftp/types.cuh"
#include "ftp/views.hpp"
#include "ftp/workspace.hpp"

namespace ftp {

/// One FFN call: run on M rows of the residual and add the result into them.
/// `rows` = ascending packed token indices of kept tokens (pruned layer), or nullptr for the dense
/// path over all T rows (M = T): then no gather and no scatter happen.
template <class T>
struct FfnContext {
  ResidualView<T> residual;
  const int* rows;  ///< [M] device, or nullptr (dense)
  int num_rows;     ///< M
  const WorkspaceShape& shape;
  void* workspace;  ///< the executor's slice, `workspace_bytes` long
  cublasHandle_t cublas;
  cudaStream_t stream;
};

namespace detail {

/// out[M, n_out] (row-major, ldo) = x[M, K] (row-major, ldx) . w[n_out, K]^T + beta * out, with fp32
/// accumulation. Row-major w[n_out, K] is column-major w^T, hence op(A) = T.
template <class T, class Out>
void gemm_x_wt(cublasHandle_t handle, int M, int n_out, int K, const T* x, std::int64_t ldx, const T* w,
               std::int64_t ldw, Out* out, std::int64_t ldo, float beta) {
  if (M == 0) return;
  require(ldx <= INT_MAX && ldw <= INT_MAX && ldo <= INT_MAX, "row_stride", ldx, "strides below 2^31 (cuBLAS)");
  if (beta == 0.0f) mark_gemm_output_written(handle, out, M, n_out, ldo);
  const float alpha = 1.0f;
  FTP_CUBLAS_CHECK(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n_out, M, K, &alpha, w, ElementTraits<T>::cuda_type,
                                static_cast<int>(ldw), x, ElementTraits<T>::cuda_type, static_cast<int>(ldx), &beta, out,
                                ElementTraits<Out>::cuda_type, static_cast<int>(ldo), CUBLAS_COMPUTE_32F,
                                CUBLAS_GEMM_DEFAULT));
}

/// cuBLAS workspace recommended for Hopper (cuBLAS docs: 32 MiB). Part of every executor's slice,
/// so cuBLAS never allocates inside a layer call.
constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

/// Binds the handle to the call's stream and to our workspace slice (cublasSetStream resets the
/// workspace, so both are set on every call; both are host-side only).
inline void bind_cublas(cublasHandle_t handle, cudaStream_t stream, void* workspace, std::size_t bytes) {
  FTP_CUBLAS_CHECK(cublasSetStream(handle, stream));
  FTP_CUBLAS_CHECK(cublasSetWorkspace(handle, workspace, bytes));
  FTP_CUBLAS_CHECK(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_HOST));
}

inline unsigned elementwise_grid(std::int64_t items) {
  const std::int64_t blocks = (items + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace detail
}  // namespace ftp
