// A cuBLAS GEMM on its own, with no ftp kernel involved, whose output a plain copy kernel then reads.
// Two cases, each a correctness check of what ftp relies on (the GEMM writes every element of its
// output: a never-written buffer ends bitwise equal to a poisoned one, and both match double loops)
// and each a probe for compute-sanitizer initcheck (scripts/sanitize.sh runs this file's CTest
// entry, gpu.library.cublas_probe, under ctest -T memcheck with FTP_INITCHECK_GEMM_OUTPUTS=1):
//   1. a raw cublasGemmEx, read by initcheck_probe_copy_kernel: initcheck reports those reads,
//      although the GEMM wrote every element. That is its blind spot for cuBLAS's Hopper (TMA)
//      stores, and the triage counts these reports apart;
//   2. the same GEMM through ftp::gemm_x_wt, which zeroes its output first when the tests run with
//      FTP_INITCHECK_GEMM_OUTPUTS=1 (GemmOutputInit::kZeroFirst, ftp/gemm.hpp; initcheck_mode.cu
//      sets the default), read by gemm_output_copy_kernel: initcheck must report nothing.
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <vector>

#include "ftp/gemm.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

namespace {

using ftp_test::DeviceArray;
using bf16 = __nv_bfloat16;

/// dst[i] = src[i] over the output of a raw cuBLAS GEMM (the case that shows initcheck's blind spot).
__global__ void initcheck_probe_copy_kernel(const bf16* src, bf16* dst, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) dst[i] = src[i];
}

/// dst[i] = src[i] over the output of ftp's GEMM helper (initcheck must report nothing here).
__global__ void gemm_output_copy_kernel(const bf16* src, bf16* dst, int n) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) dst[i] = src[i];
}

/// The shape of SmolLM2's gate/up product on 257 rows: out[M, N] = x[M, K] . w[N, K]^T.
struct ProbeGemm {
  static constexpr int M = 257, N = 3072, K = 576;
  std::mt19937 rng{4242};
  ftp_test::RandomTensor<bf16> x{static_cast<std::size_t>(M) * K, rng, -1.0f, 1.0f};
  ftp_test::RandomTensor<bf16> w{static_cast<std::size_t>(N) * K, rng, -0.1f, 0.1f};
  DeviceArray<bf16> d_x{x.device_values}, d_w{w.device_values};
  cublasHandle_t handle = nullptr;

  ProbeGemm() { REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS); }
  ~ProbeGemm() { cublasDestroy(handle); }
  ProbeGemm(const ProbeGemm&) = delete;
  ProbeGemm& operator=(const ProbeGemm&) = delete;

  static std::size_t size() { return static_cast<std::size_t>(M) * N; }

  /// The GEMM through ftp's helper, with the output init the tests run with (kZeroFirst under
  /// FTP_INITCHECK_GEMM_OUTPUTS=1, see initcheck_mode.cu).
  void via_ftp(bf16* out) const {
    ftp::gemm_x_wt(handle, M, N, K, d_x.get(), K, d_w.get(), K, out, N, 0.0f, ftp::default_gemm_output_init().load());
  }

  /// The same GEMM straight through cuBLAS, nothing before it.
  void raw(bf16* out) const {
    const float alpha = 1.0f, beta = 0.0f;
    REQUIRE(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, &alpha, d_w.get(), CUDA_R_16BF, K, d_x.get(),
                         CUDA_R_16BF, K, &beta, out, CUDA_R_16BF, N, CUBLAS_COMPUTE_32F,
                         CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  }

  /// `copied` (a kernel's copy of a never-written buffer the GEMM filled) equals `poisoned` (the same
  /// GEMM into a poisoned buffer) bitwise, and `poisoned` matches double loops.
  void expect_written(const DeviceArray<bf16>& copied, const DeviceArray<bf16>& poisoned) const {
    const std::vector<bf16> got_copied = copied.download();
    const std::vector<bf16> got_poisoned = poisoned.download();
    CHECK(std::memcmp(got_copied.data(), got_poisoned.data(), size() * sizeof(bf16)) == 0);
    std::vector<float> want(size());
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
    CHECK(error < ftp_test::tolerance<bf16>());
  }

  /// Runs `gemm` (raw or via_ftp) into a never-written buffer (no memset: what initcheck is asked
  /// about) and into a poisoned one, lets the kernel `copy` read the never-written one, then checks
  /// that the GEMM wrote every element.
  template <class Gemm>
  void check_written_then_read(Gemm gemm, void (*copy)(const bf16*, bf16*, int)) const {
    DeviceArray<bf16> never_written(size());
    DeviceArray<bf16> poisoned(size()), copied(size());
    poisoned.poison();
    copied.poison();
    gemm(never_written.get());
    gemm(poisoned.get());
    copy<<<256, 256>>>(never_written.get(), copied.get(), static_cast<int>(size()));
    ftp_test::cuda_ok(cudaGetLastError(), "copy kernel launch");
    expect_written(copied, poisoned);
  }
};

TEST_CASE("cuBLAS writes every element of a GEMM's output (raw cublasGemmEx: initcheck's blind-spot probe)" *
          ftp_test::needs_gpu()) {
  ProbeGemm g;
  g.check_written_then_read([&](bf16* out) { g.raw(out); }, initcheck_probe_copy_kernel);
}

TEST_CASE("ftp's GEMM helper writes every element of its output (initcheck reports nothing when "
          "FTP_INITCHECK_GEMM_OUTPUTS=1)" *
          ftp_test::needs_gpu()) {
  ProbeGemm g;
  g.check_written_then_read([&](bf16* out) { g.via_ftp(out); }, gemm_output_copy_kernel);
  // Zero rows: nothing is launched and nothing is marked.
  DeviceArray<bf16> out(ProbeGemm::size());
  CHECK_NOTHROW(ftp::gemm_x_wt(g.handle, 0, ProbeGemm::N, ProbeGemm::K, g.d_x.get(), ProbeGemm::K, g.d_w.get(),
                               ProbeGemm::K, out.get(), ProbeGemm::N, 0.0f, ftp::GemmOutputInit::kZeroFirst));
}

}  // namespace
