// The row-major GEMM ftp's FFN executors run through cuBLAS, public so that an
// engine's own projections can share it, and the guard that gives a caller's
// cuBLAS handle back as it was.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <atomic>
#include <climits>
#include <cstddef>
#include <cstdint>

#include "ftp/cuda_check.hpp"
#include "ftp/error.hpp"
#include "ftp/types.cuh"

namespace ftp {

/// What a GEMM with beta = 0 does to its output before cuBLAS writes it.
///
/// compute-sanitizer's initcheck does not see the stores of cuBLAS's Hopper
/// GEMM kernels (TMA bulk stores): it reports every later read of a GEMM's
/// output as uninitialized, although the GEMM wrote each element
/// (tests/library/cuda/test_cublas_probe.cu shows both facts). kZeroFirst zeroes the
/// output rectangle on the handle's stream first, so initcheck sees it written
/// and a report that remains is a real one. It costs one memset per GEMM: use
/// it only under initcheck.
enum class GemmOutputInit {
  kNone,       ///< cuBLAS writes the output; nothing else touches it (default)
  kZeroFirst,  ///< zero the output rectangle first (for compute-sanitizer
               ///< initcheck runs)
};

/// The GemmOutputInit a new Pruner starts with (kNone unless a program changes
/// it). A program run under initcheck sets it once at start-up, before it
/// builds its pruners; ftp's tests and the example runner do so when
/// FTP_INITCHECK_GEMM_OUTPUTS=1 (the library itself reads no environment).
/// Pruner::set_gemm_output_init changes one pruner.
inline std::atomic<GemmOutputInit> &default_gemm_output_init() {
  static std::atomic<GemmOutputInit> init{GemmOutputInit::kNone};
  return init;
}

/// out[M, n_out] (row-major, ldo) = x[M, K] (row-major, ldx) . w[n_out, K]^T +
/// beta * out, fp32 accumulation, on the stream and workspace the handle is
/// bound to. Row-major w[n_out, K] is column-major w^T, hence op(A) = T. M = 0
/// does nothing.
template <class T, class Out>
void gemm_x_wt(cublasHandle_t handle, int M, int n_out, int K, const T *x, std::int64_t ldx, const T *w,
               std::int64_t ldw, Out *out, std::int64_t ldo, float beta, GemmOutputInit init = GemmOutputInit::kNone) {
  if (M == 0) return;
  detail::require(ldx <= INT_MAX && ldw <= INT_MAX && ldo <= INT_MAX, "row_stride", ldx, "strides below 2^31 (cuBLAS)");
  if (beta == 0.0f && init == GemmOutputInit::kZeroFirst && n_out > 0) {
    cudaStream_t stream = nullptr;
    FTP_CUBLAS_CHECK(cublasGetStream(handle, &stream));
    FTP_CUDA_CHECK(cudaMemset2DAsync(out, static_cast<std::size_t>(ldo) * sizeof(Out), 0,
                                     static_cast<std::size_t>(n_out) * sizeof(Out), static_cast<std::size_t>(M),
                                     stream));
  }
  const float alpha = 1.0f;
  FTP_CUBLAS_CHECK(cublasGemmEx(
      handle, CUBLAS_OP_T, CUBLAS_OP_N, n_out, M, K, &alpha, w, detail::ElementTraits<T>::cuda_type,
      static_cast<int>(ldw), x, detail::ElementTraits<T>::cuda_type, static_cast<int>(ldx), &beta, out,
      detail::ElementTraits<Out>::cuda_type, static_cast<int>(ldo), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

/// cuBLAS workspace recommended for Hopper (cuBLAS docs: 32 MiB). Part of every
/// executor's slice, so cuBLAS never allocates inside a layer call.
inline constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;

/// A device buffer an engine bound to its cuBLAS handle with
/// cublasSetWorkspace.
struct CublasWorkspace {
  void *data = nullptr;  ///< nullptr: the handle uses cuBLAS's default pool
  std::size_t bytes = 0;
};

/// Binds a caller's cuBLAS handle to ftp's stream, workspace slice and host
/// pointer mode for one call, and gives it back as it was on every exit (an
/// exception included): its stream, its pointer mode, and its workspace. cuBLAS
/// cannot report a handle's workspace, and cublasSetStream resets it to the
/// default pool, so the caller names its own workspace
/// (Pruner::set_caller_cublas_workspace); without one the handle goes back to
/// the default pool, where it was.
class ScopedCublasBinding {
 public:
  ScopedCublasBinding(cublasHandle_t handle, cudaStream_t stream, void *workspace, std::size_t bytes,
                      CublasWorkspace caller_workspace)
      : handle_(handle), caller_workspace_(caller_workspace) {
    FTP_CUBLAS_CHECK(cublasGetStream(handle_, &caller_stream_));
    FTP_CUBLAS_CHECK(cublasGetPointerMode(handle_, &caller_pointer_mode_));
    FTP_CUBLAS_CHECK(cublasSetStream(handle_, stream));  // resets the workspace: set ours after it
    FTP_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace, bytes));
    FTP_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
  }
  ~ScopedCublasBinding() {
    // A destructor cannot throw; these calls only store host-side state and
    // fail only on a bad handle, which the constructor's calls would already
    // have reported.
    cublasSetStream(handle_, caller_stream_);
    if (caller_workspace_.data != nullptr) cublasSetWorkspace(handle_, caller_workspace_.data, caller_workspace_.bytes);
    cublasSetPointerMode(handle_, caller_pointer_mode_);
  }
  ScopedCublasBinding(const ScopedCublasBinding &) = delete;
  ScopedCublasBinding &operator=(const ScopedCublasBinding &) = delete;

 private:
  cublasHandle_t handle_;
  CublasWorkspace caller_workspace_;
  cudaStream_t caller_stream_ = nullptr;
  cublasPointerMode_t caller_pointer_mode_ = CUBLAS_POINTER_MODE_HOST;
};

}  // namespace ftp
