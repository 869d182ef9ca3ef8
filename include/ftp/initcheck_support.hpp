// Support for checking an engine that uses ftp with compute-sanitizer's initcheck.
//
// initcheck does not see the stores of cuBLAS's Hopper GEMM kernels (TMA bulk stores): it reports
// every later read of a GEMM's output as a read of uninitialized memory, although the GEMM wrote
// each element (tests/cuda/test_cublas_probe.cu shows both facts on a lone GEMM). Those reports hide
// any real one. With FTP_INITCHECK_GEMM_OUTPUTS=1 in the environment, every GEMM that overwrites its
// output (beta = 0) first zeroes exactly that output rectangle on the cuBLAS handle's stream, so
// initcheck sees it written; a report that remains is a read of memory no one wrote. Off by default:
// it costs one memset per GEMM.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "ftp/cuda_check.hpp"

namespace ftp::detail {

/// FTP_INITCHECK_GEMM_OUTPUTS=1, read once.
inline bool initcheck_gemm_outputs() {
  static const bool on = [] {
    const char* env = std::getenv("FTP_INITCHECK_GEMM_OUTPUTS");
    return env != nullptr && env[0] == '1' && env[1] == '\0';
  }();
  return on;
}

/// Before a beta = 0 GEMM into out[rows, cols] (row-major, leading dimension ld elements): zeroes
/// that rectangle when initcheck_gemm_outputs(), else does nothing.
template <class Out>
void mark_gemm_output_written(cublasHandle_t handle, Out* out, int rows, int cols, std::int64_t ld) {
  if (!initcheck_gemm_outputs() || rows <= 0 || cols <= 0) return;
  cudaStream_t stream = nullptr;
  FTP_CUBLAS_CHECK(cublasGetStream(handle, &stream));
  FTP_CUDA_CHECK(cudaMemset2DAsync(out, static_cast<std::size_t>(ld) * sizeof(Out), 0,
                                   static_cast<std::size_t>(cols) * sizeof(Out), static_cast<std::size_t>(rows), stream));
}

}  // namespace ftp::detail
