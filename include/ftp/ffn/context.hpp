// What the pruner hands an FFNExecutor (the GEMM helper the executors share is ftp/gemm.hpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstddef>
#include <cstdint>

#include "ftp/cuda_check.hpp"
#include "ftp/gemm.hpp"
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
  /// The workspace the caller's handle had (ScopedCublasBinding rebinds it after the call).
  CublasWorkspace caller_cublas_workspace = {};
  /// Pass to every beta = 0 gemm_x_wt (Pruner::set_gemm_output_init).
  GemmOutputInit gemm_output_init = GemmOutputInit::kNone;
};

namespace detail {

inline unsigned elementwise_grid(std::int64_t items) {
  const std::int64_t blocks = (items + 255) / 256;
  return static_cast<unsigned>(blocks < 65535 * 8 ? (blocks > 0 ? blocks : 1) : 65535 * 8);
}

}  // namespace detail
}  // namespace ftp
