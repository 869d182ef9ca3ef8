// DeviceModel's CUDA/cuBLAS plumbing: error checks, owned device allocations, the GEMM and the
// stream/events/handle base class. Apart: no model logic, only resource handling.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>

#include "ftp/gemm.hpp"
#include "llama3/kernels/common.cuh"

namespace llama3 {

using kernels::bf16;

namespace model_detail {

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("cuBLAS error ") + cublasGetStatusString(status) + " in " + call + " at " +
                             file + ":" + std::to_string(line));
  }
}
#define LLAMA3_CUBLAS_CHECK(call) ::llama3::model_detail::check_cublas((call), #call, __FILE__, __LINE__)

struct CudaFree {
  void operator()(void* p) const noexcept { cudaFree(p); }
};
struct CudaFreeHost {
  void operator()(void* p) const noexcept { cudaFreeHost(p); }
};

inline double gib(std::size_t bytes) { return static_cast<double>(bytes) / (1024.0 * 1024.0 * 1024.0); }

inline std::string gib_text(std::size_t bytes) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", gib(bytes));
  return buf;
}

/// One device allocation of `bytes`, with a message naming what it was for when it fails.
inline std::unique_ptr<void, CudaFree> device_alloc(std::size_t bytes, const char* what) {
  void* p = nullptr;
  const cudaError_t status = cudaMalloc(&p, std::max<std::size_t>(bytes, 1));
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state of a failed allocation
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw std::runtime_error(std::string("DeviceModel: cudaMalloc of ") + gib_text(bytes) + " for the " + what +
                             " failed (" + cudaGetErrorString(status) + "); " + gib_text(free_bytes) + " of " +
                             gib_text(total_bytes) + " free");
  }
  return std::unique_ptr<void, CudaFree>(p);
}

/// out[M, n] = x[M, k] . w[n, k]^T + beta * out, all row-major (ld = row length), fp32 accumulation,
/// through the library's public GEMM. `init` is the model's Handles::gemm_init_.
template <class Out>
void gemm(cublasHandle_t handle, ftp::GemmOutputInit init, int M, int n, int k, const bf16* x, const bf16* w, Out* out,
          float beta) {
  ftp::gemm_x_wt(handle, M, n, k, x, k, w, k, out, n, beta, init);
}

/// The stream, timing events and cuBLAS handle of a DeviceModel. A base class, so they are released
/// after every member (the pruners and buffers) and also when a constructor throws half-way.
struct Handles {
  cudaStream_t stream_ = nullptr;
  cudaEvent_t start_ = nullptr, stop_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  /// How the model's GEMMs treat their outputs: ftp::default_gemm_output_init() when the model is
  /// built, the setting its pruners also start from (the GPU tests set kZeroFirst under initcheck,
  /// tests/common/initcheck_mode.cu). Read once here, not on every GEMM.
  ftp::GemmOutputInit gemm_init_ = ftp::default_gemm_output_init().load();

  Handles() = default;
  Handles(const Handles&) = delete;
  Handles& operator=(const Handles&) = delete;
  ~Handles() {
    if (cublas_ != nullptr) cublasDestroy(cublas_);
    if (start_ != nullptr) cudaEventDestroy(start_);
    if (stop_ != nullptr) cudaEventDestroy(stop_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
};

}  // namespace model_detail

}  // namespace llama3
