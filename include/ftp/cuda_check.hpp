// Checks for CUDA runtime and cuBLAS calls: every failure becomes an ftp::Error carrying the
// library's own error string and the call that failed.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "ftp/error.hpp"

namespace ftp::detail {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    // A failed runtime call also leaves its error for cudaGetLastError(); take it, so that the
    // caller's next launch check does not report this failure a second time as its own.
    (void)cudaGetLastError();
    throw Error("", concat("CUDA error ", cudaGetErrorName(status), " (", cudaGetErrorString(status), ") in ",
                           call, " at ", file, ":", line));
  }
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error("", concat("cuBLAS error ", cublasGetStatusName(status), " (", cublasGetStatusString(status),
                           ") in ", call, " at ", file, ":", line));
  }
}

}  // namespace ftp::detail

/// Wraps a CUDA runtime call; throws ftp::Error on failure.
#define FTP_CUDA_CHECK(call) ::ftp::detail::check_cuda((call), #call, __FILE__, __LINE__)
/// Checks the last kernel launch (configuration errors surface here, not at the next sync).
#define FTP_CUDA_CHECK_LAUNCH() ::ftp::detail::check_cuda(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
/// Wraps a cuBLAS call; throws ftp::Error on failure.
#define FTP_CUBLAS_CHECK(call) ::ftp::detail::check_cublas((call), #call, __FILE__, __LINE__)
