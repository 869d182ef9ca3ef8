// A caller's cuBLAS handle passed to the Pruner comes back as it was after
// every run(): its stream, its pointer mode and (named with
// set_caller_cublas_workspace) its workspace, so the engine's own later GEMMs
// on that handle run where the engine put them. Also on a layer whose input is
// rejected.
#include <cublas_v2.h>
#include <doctest/doctest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "ftp/ftp.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

struct HandleState {
  cudaStream_t stream = nullptr;
  cublasPointerMode_t pointer_mode = CUBLAS_POINTER_MODE_HOST;
};

HandleState state_of(cublasHandle_t handle) {
  HandleState s;
  REQUIRE(cublasGetStream(handle, &s.stream) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasGetPointerMode(handle, &s.pointer_mode) == CUBLAS_STATUS_SUCCESS);
  return s;
}

}  // namespace

TEST_CASE(
    "Pruner gives the caller's cuBLAS handle back with its stream, "
    "pointer mode and workspace" *
    ftp_test::needs_gpu()) {
  using bf16 = __nv_bfloat16;
  std::mt19937 rng(77);
  const int C = 256, I = 512, Hq = 4, Hkv = 2, d = 64;
  const ftp::BatchLayout layout = layout_of({700, 333});
  const int T_ = layout.num_tokens();
  const ftp::WorkspaceShape shape{T_, 2, C, I, Hq, Hkv, d};
  RandomTensor<bf16> residual(static_cast<std::size_t>(T_) * C, rng, -1.0f, 1.0f);
  RandomTensor<bf16> q(static_cast<std::size_t>(T_) * Hq * d, rng, -1.0f, 1.0f);
  RandomTensor<bf16> k(static_cast<std::size_t>(T_) * Hkv * d, rng, -1.0f, 1.0f);
  RandomTensor<bf16> norm(C, rng, 0.5f, 1.5f), gate_up(static_cast<std::size_t>(2) * I * C, rng, -0.08f, 0.08f),
      down(static_cast<std::size_t>(C) * I, rng, -0.05f, 0.05f);
  DeviceArray<bf16> d_residual(residual.device_values), d_q(q.device_values), d_k(k.device_values),
      d_norm(norm.device_values), d_gate_up(gate_up.device_values), d_down(down.device_values);
  const ftp::AttentionView<bf16> attention{d_q.get(), Hq * d, d_k.get(), Hkv * d, Hq, Hkv, d};
  const ftp::CublasSwiGLU::Weights<bf16> weights{d_norm.get(), d_gate_up.get(), nullptr, nullptr, d_down.get(), 1e-5f};

  // The engine's handle: its own stream, device pointer mode and a workspace of
  // its own.
  cudaStream_t engine_stream = nullptr, ftp_stream = nullptr;
  REQUIRE(cudaStreamCreateWithFlags(&engine_stream, cudaStreamNonBlocking) == cudaSuccess);
  REQUIRE(cudaStreamCreateWithFlags(&ftp_stream, cudaStreamNonBlocking) == cudaSuccess);
  cublasHandle_t handle = nullptr;
  REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
  DeviceArray<std::uint8_t> engine_workspace(ftp::kCublasWorkspaceBytes);
  REQUIRE(cublasSetStream(handle, engine_stream) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasSetWorkspace(handle, engine_workspace.get(), ftp::kCublasWorkspaceBytes) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cublasSetPointerMode(handle, CUBLAS_POINTER_MODE_DEVICE) == CUBLAS_STATUS_SUCCESS);

  {
    ftp::Pruner<bf16> pruner(ftp::Config::llama3(), shape, {}, {}, {}, nullptr, 0, handle);
    pruner.set_caller_cublas_workspace({engine_workspace.get(), ftp::kCublasWorkspaceBytes});
    pruner.plan(layout.cu_seqlens.data(), 2, T_, ftp_stream);
    for (const int layer : {3, 12}) {  // a dense layer and a pruned one
      CAPTURE(layer);
      pruner.run(layer, attention, {d_residual.get(), C, C}, weights, ftp_stream);
      const HandleState after = state_of(handle);
      CHECK(after.stream == engine_stream);
      CHECK(after.pointer_mode == CUBLAS_POINTER_MODE_DEVICE);
    }
    CHECK(pruner.last_report().pruned);
    // A rejected call (null down weight) throws before any binding: the handle
    // is untouched too.
    ftp::CublasSwiGLU::Weights<bf16> bad = weights;
    bad.down = nullptr;
    CHECK_THROWS_AS(pruner.run(12, attention, {d_residual.get(), C, C}, bad, ftp_stream), ftp::Error);
    CHECK(state_of(handle).stream == engine_stream);
    REQUIRE(cudaStreamSynchronize(ftp_stream) == cudaSuccess);
  }

  // The engine's own GEMM on the handle after ftp's calls runs on its stream
  // with its workspace and its device pointer mode: alpha and beta are read
  // from device memory.
  const int M = 64, N = 96, K = 128;
  RandomTensor<bf16> x(static_cast<std::size_t>(M) * K, rng, -1.0f, 1.0f),
      w(static_cast<std::size_t>(N) * K, rng, -1.0f, 1.0f);
  DeviceArray<bf16> d_x(x.device_values), d_w(w.device_values);
  DeviceArray<float> d_out(static_cast<std::size_t>(M) * N), d_scalars(std::vector<float>{1.0f, 0.0f});
  REQUIRE(cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, M, K, d_scalars.get(), d_w.get(), CUDA_R_16BF, K, d_x.get(),
                       CUDA_R_16BF, K, d_scalars.get() + 1, d_out.get(), CUDA_R_32F, N, CUBLAS_COMPUTE_32F,
                       CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
  REQUIRE(cudaStreamSynchronize(engine_stream) == cudaSuccess);
  const std::vector<float> got = d_out.download();
  double worst = 0;
  for (int m = 0; m < M; ++m) {
    for (int n = 0; n < N; ++n) {
      double want = 0;
      for (int kk = 0; kk < K; ++kk) {
        want += static_cast<double>(x.host[static_cast<std::size_t>(m) * K + kk]) *
                w.host[static_cast<std::size_t>(n) * K + kk];
      }
      worst = std::max(worst, std::abs(got[static_cast<std::size_t>(m) * N + n] - want) / (std::abs(want) + 1.0));
    }
  }
  MESSAGE("engine GEMM after the pruner's calls: worst relative error ", worst);
  CHECK(worst < 1e-3);

  cublasDestroy(handle);
  cudaStreamDestroy(engine_stream);
  cudaStreamDestroy(ftp_stream);
}
