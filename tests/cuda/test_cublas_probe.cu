// A cuBLAS GEMM on its own, with no ftp kernel involved, whose output is then read by a plain copy
// kernel and by cudaMemcpy. Two purposes:
//   - the GEMM writes every element of its output: a never-written buffer and a poisoned one end up
//     bitwise equal, and both match a host reference (a correctness check of what ftp relies on);
//   - under compute-sanitizer initcheck, scripts/sanitize.sh counts the reports on the never-written
//     buffer in initcheck_probe_copy_kernel. Reports there, where nothing but cuBLAS wrote, show
//     initcheck's blind spot for cuBLAS's Hopper GEMM stores; the same reports in ftp's kernels that
//     read GEMM outputs (swiglu, scatter_add, bias_gelu) are then the tool's, not ftp's.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ftp/ffn/context.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

namespace {

using ftp_test::DeviceArray;

/// dst[i] = src[i]: a read of every element of src by a kernel of the test's own.
__global__ void initcheck_probe_copy_kernel(const __nv_bfloat16* src, __nv_bfloat16* dst, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) dst[i] = src[i];
}

TEST_CASE("cuBLAS writes every element of a GEMM's output (and the initcheck probe reads it)" *
          ftp_test::needs_gpu()) {
  // The shape of SmolLM2's gate/up product on 257 rows: out[M, N] = x[M, K] . w[N, K]^T.
  const int M = 257, N = 3072, K = 576;
  std::mt19937 rng(4242);
  const ftp_test::RandomTensor<__nv_bfloat16> x(static_cast<std::size_t>(M) * K, rng, -1.0f, 1.0f);
  const ftp_test::RandomTensor<__nv_bfloat16> w(static_cast<std::size_t>(N) * K, rng, -0.1f, 0.1f);
  DeviceArray<__nv_bfloat16> d_x(x.device_values), d_w(w.device_values);
  DeviceArray<__nv_bfloat16> never_written(static_cast<std::size_t>(M) * N);  // no memset: initcheck's probe
  DeviceArray<__nv_bfloat16> poisoned(static_cast<std::size_t>(M) * N);
  DeviceArray<__nv_bfloat16> copied(static_cast<std::size_t>(M) * N);
  poisoned.poison();
  copied.poison();

  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  ftp::detail::gemm_x_wt(handle, M, N, K, d_x.get(), K, d_w.get(), K, never_written.get(), N, 0.0f);
  ftp::detail::gemm_x_wt(handle, M, N, K, d_x.get(), K, d_w.get(), K, poisoned.get(), N, 0.0f);
  initcheck_probe_copy_kernel<<<256, 256>>>(never_written.get(), copied.get(), M * N);
  ftp_test::cuda_ok(cudaGetLastError(), "initcheck_probe_copy_kernel launch");
  cublasDestroy(handle);

  const std::vector<__nv_bfloat16> got_poisoned = poisoned.download();
  const std::vector<__nv_bfloat16> got_fresh = never_written.download();
  const std::vector<__nv_bfloat16> got_copied = copied.download();
  // Every element written: the poison is gone, and the never-written buffer holds the same bits.
  CHECK(std::memcmp(got_fresh.data(), got_poisoned.data(), got_fresh.size() * sizeof(__nv_bfloat16)) == 0);
  CHECK(std::memcmp(got_copied.data(), got_fresh.data(), got_fresh.size() * sizeof(__nv_bfloat16)) == 0);

  std::vector<float> want(static_cast<std::size_t>(M) * N);
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double acc = 0.0;
      for (int k = 0; k < K; ++k) {
        acc += static_cast<double>(x.host[static_cast<std::size_t>(m) * K + k]) * w.host[static_cast<std::size_t>(n) * K + k];
      }
      want[static_cast<std::size_t>(m) * N + n] = static_cast<float>(acc);
    }
  }
  const double error = ftp_test::relative_error(ftp_test::to_floats(got_poisoned), want);
  MESSAGE("cuBLAS bf16 GEMM ", M, "x", N, "x", K, ": relative error ", error, " vs double loops");
  CHECK(error < ftp_test::tolerance<__nv_bfloat16>());
}

}  // namespace
