// Faults from outside the library: a stream that cannot take plan() / run() work, and a cuBLAS call
// that fails. The contract (include/ftp/cuda_check.hpp): the failure surfaces as ftp::Error with an
// empty argument() and a message carrying CUDA's (or cuBLAS's) own name and string for the error;
// nothing crashes; the device stays usable, so the next plan/run on a valid stream matches the host
// reference. Error strings are never written here: the test reads the code the message names and
// compares with what cudaGetErrorString / cublasGetStatusString report for that code.
//
// The faulty stream is one under CUDA graph capture (cudaStreamBeginCapture), where CUDA defines the
// errors: host synchronisation with it is refused (a pruned layer must copy its kept count to the
// host) and invalidates the capture. A *destroyed* stream is not used: CUDA leaves using one
// undefined, and on an H200 (driver 580, CUDA 13.0) the first runtime call given one died with
// SIGSEGV inside CUDA, before any ftp code ran, so no library can turn it into an error.
#include <doctest/doctest.h>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ftp/ftp.hpp"
#include "ftp/host/ffn.hpp"
#include "ftp/host/last_queries_attention.hpp"
#include "ftp/host/pruner.hpp"
#include "ftp/host/reserve.hpp"
#include "runtime_skip.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

using bf16 = __nv_bfloat16;

// A small paper-default layer: layer 0 runs the dense FFN (F = 1), layer 1 is pruned.
constexpr int kC = 256, kI = 512, kHq = 4, kHkv = 2, kD = 64;
constexpr int kDenseLayer = 0, kPrunedLayer = 1;
const ftp::Config kConfig(100, 50, 1, 0.9);

/// Random inputs of one layer on the host (rounded to bf16) and on the device.
struct FaultLayer {
  ftp::BatchLayout layout = layout_of({400, 237});
  int T = layout.num_tokens(), B = layout.num_seqs();
  std::mt19937 rng{2024};
  RandomTensor<bf16> norm{kC, rng, 0.5f, 1.5f};
  RandomTensor<bf16> gate_up{static_cast<std::size_t>(2) * kI * kC, rng, -0.08f, 0.08f};  // [gate; up]
  RandomTensor<bf16> down{static_cast<std::size_t>(kC) * kI, rng, -0.05f, 0.05f};
  RandomTensor<bf16> residual{static_cast<std::size_t>(T) * kC, rng, -1.0f, 1.0f};
  RandomTensor<bf16> q{static_cast<std::size_t>(T) * kHq * kD, rng, -3.0f, 3.0f};
  RandomTensor<bf16> k{static_cast<std::size_t>(T) * kHkv * kD, rng, -3.0f, 3.0f};
  DeviceArray<bf16> d_norm{norm.device_values}, d_gate_up{gate_up.device_values}, d_down{down.device_values};
  DeviceArray<bf16> d_residual{residual.device_values}, d_q{q.device_values}, d_k{k.device_values};

  ftp::WorkspaceShape shape() const { return {T, B, kC, kI, kHq, kHkv, kD}; }
  ftp::AttentionView<bf16> attention() const {
    ftp::AttentionView<bf16> a;
    a.q = d_q.get();
    a.q_row_stride = kHq * kD;
    a.k = d_k.get();
    a.k_row_stride = kHkv * kD;
    a.num_q_heads = kHq;
    a.num_kv_heads = kHkv;
    a.head_dim = kD;
    return a;
  }
  ftp::ResidualView<bf16> residual_view() const { return {d_residual.get(), kC, kC}; }
  ftp::CublasSwiGLU::Weights<bf16> weights() const {
    return {d_norm.get(), d_gate_up.get(), nullptr, nullptr, d_down.get(), 1e-5f};
  }
  ftp::host::SwiGluWeights host_weights() const {
    return {norm.host.data(), gate_up.host.data(), gate_up.host.data() + static_cast<std::size_t>(kI) * kC,
            down.host.data(), 1e-5f};
  }
  void reset_residual() { d_residual.upload(residual.device_values); }
  bool residual_untouched() const {
    const std::vector<bf16> now = d_residual.download();
    return std::memcmp(now.data(), residual.device_values.data(), now.size() * sizeof(bf16)) == 0;
  }

  /// After `pruner` ran `layer` on this layer's inputs: scores, kept set and residual equal the
  /// host reference (as check_whole_step in test_ffn_pruner.cu compares them).
  template <class Pruner>
  void expect_matches_host_reference(const Pruner& pruner, int layer) const {
    const ftp::LayerReport& report = pruner.last_report();
    const std::vector<float> got = to_floats(d_residual.download());
    std::vector<float> gpu_scores(T);
    std::vector<float> want = residual.host;
    std::vector<std::uint8_t> flags;
    if (report.pruned) {
      cuda_ok(cudaMemcpy(gpu_scores.data(), pruner.scores(), sizeof(float) * T, cudaMemcpyDeviceToHost), "scores");
      const ftp::host::AttentionInputs inputs{q.host.data(), kHq * kD, k.host.data(), kHkv * kD, kHq, kHkv, kD};
      const std::vector<float> host_scores = ftp::host::LastQueriesAttention{}.score(layer, layout, inputs, kConfig, 8);
      CHECK(relative_error(gpu_scores, host_scores) < 1e-5);
    }
    flags = ftp::host::run_layer(layer, kConfig, layout, gpu_scores, ftp::host::CumulativeEta{},
                                 ftp::host::CublasSwiGLU{}, want.data(), kC, kC, kI, host_weights(), round_to<bf16>);
    if (report.pruned) {
      std::vector<int> gpu_kept(report.kept_tokens);
      cuda_ok(cudaMemcpy(gpu_kept.data(), pruner.kept_token_indices(), sizeof(int) * gpu_kept.size(),
                         cudaMemcpyDeviceToHost),
              "kept");
      CHECK(gpu_kept == ftp::host::kept_tokens(flags));
    }
    // Kept rows within the bf16 tolerance of the reference; pruned rows bitwise unchanged.
    compare_residual(got, want, residual.host, flags, kC, kC, tolerance<bf16>());
  }
};

/// What a call did: threw ftp::Error (message and argument kept) or returned.
struct Outcome {
  bool threw = false;
  std::string message;
  std::string argument;
};

template <class F>
Outcome attempt(F&& f) {
  try {
    f();
  } catch (const ftp::Error& e) {
    return {true, e.what(), e.argument()};
  }
  return {};
}

/// The code whose name follows `marker` in `message` ("CUDA error cudaErrorX (...)"), found by
/// asking the library for the name of every code in [first, last]; `fallback` when none matches.
template <class Code, class NameOf>
Code named_code(const std::string& message, const std::string& marker, int first, int last, NameOf name_of,
                Code fallback) {
  const std::size_t at = message.find(marker);
  if (at == std::string::npos) return fallback;
  const std::size_t begin = at + marker.size();
  const std::string name = message.substr(begin, message.find(' ', begin) - begin);
  for (int code = first; code <= last; ++code) {
    const char* candidate = name_of(static_cast<Code>(code));
    if (candidate != nullptr && name == candidate) return static_cast<Code>(code);
  }
  return fallback;
}

/// The CUDA error an ftp::Error message names, or cudaSuccess.
cudaError_t cuda_error_in(const std::string& message) {
  return named_code<cudaError_t>(message, "CUDA error ", 1, 1000, cudaGetErrorName, cudaSuccess);
}

/// The cuBLAS status an ftp::Error message names, or CUBLAS_STATUS_SUCCESS.
cublasStatus_t cublas_status_in(const std::string& message) {
  return named_code<cublasStatus_t>(message, "cuBLAS error ", 1, 64, cublasGetStatusName, CUBLAS_STATUS_SUCCESS);
}

/// A thrown fault carries CUDA's (or, where cuBLAS reported it, cuBLAS's) name and string for the
/// code it names, and no argument. Returns the CUDA code (cudaSuccess for a cuBLAS status).
cudaError_t check_fault_message(const Outcome& o) {
  CAPTURE(o.message);
  CHECK(o.argument.empty());
  const cudaError_t code = cuda_error_in(o.message);
  if (code != cudaSuccess) {
    const std::string expected = std::string("CUDA error ") + cudaGetErrorName(code) + " (" + cudaGetErrorString(code) + ")";
    CHECK(o.message.find(expected) != std::string::npos);
    return code;
  }
  const cublasStatus_t status = cublas_status_in(o.message);
  CHECK_MESSAGE(status != CUBLAS_STATUS_SUCCESS, "the message names neither a CUDA error nor a cuBLAS status");
  const std::string expected =
      std::string("cuBLAS error ") + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")";
  CHECK(o.message.find(expected) != std::string::npos);
  return cudaSuccess;
}

/// The last-error slot after a fault holds nothing or the very error that was reported (a failed
/// runtime call records its non-sticky error there too); either way it is read and cleared here.
void clear_reported_error(cudaError_t reported) {
  const cudaError_t pending = cudaGetLastError();
  CAPTURE(cudaGetErrorName(pending));
  CHECK((pending == cudaSuccess || pending == reported));
}

/// Starts recording `stream` into a graph (global mode): until end_capture its work is captured, not
/// run, and host synchronisation with it is an error.
void begin_capture(cudaStream_t stream) {
  cuda_ok(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal), "cudaStreamBeginCapture");
}

/// Ends the capture: the graph, or nullptr when a refused call invalidated it (that error is cleared).
cudaGraph_t end_capture(cudaStream_t stream) {
  cudaGraph_t graph = nullptr;
  if (cudaStreamEndCapture(stream, &graph) != cudaSuccess) {
    (void)cudaGetLastError();
    return nullptr;
  }
  return graph;
}

/// Runs a captured graph on `stream`, waits, and frees it.
void replay(cudaGraph_t graph, cudaStream_t stream) {
  cudaGraphExec_t exec = nullptr;
  cuda_ok(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
  cuda_ok(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
  cuda_ok(cudaStreamSynchronize(stream), "sync after replay");
  cuda_ok(cudaGraphExecDestroy(exec), "cudaGraphExecDestroy");
  cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
}

/// Holds every free byte of device memory while it lives: chunks from 16 GiB, halving on each
/// refusal, down to 1 MiB.
class DeviceMemoryHog {
 public:
  DeviceMemoryHog() {
    for (std::size_t chunk = std::size_t{1} << 34; chunk >= (std::size_t{1} << 20);) {
      void* p = nullptr;
      if (cudaMalloc(&p, chunk) == cudaSuccess) {
        blocks_.push_back(p);
      } else {
        (void)cudaGetLastError();
        chunk /= 2;
      }
    }
  }
  DeviceMemoryHog(const DeviceMemoryHog&) = delete;
  DeviceMemoryHog& operator=(const DeviceMemoryHog&) = delete;
  ~DeviceMemoryHog() {
    for (void* p : blocks_) cudaFree(p);
  }

 private:
  std::vector<void*> blocks_;
};

std::string outcome_text(const Outcome& o) { return o.threw ? o.message : std::string("no error"); }

}  // namespace

TEST_CASE("plan() and run() on a capturing stream raise ftp::Error with CUDA's error name and string (or are "
          "captured and replay correctly) and never crash" * ftp_test::needs_gpu()) {
  FaultLayer L;
  ftp::Pruner<bf16> pruner(kConfig, L.shape());
  cudaStream_t stream = nullptr;
  cuda_ok(cudaStreamCreate(&stream), "cudaStreamCreate");

  SUBCASE("plan") {
    begin_capture(stream);
    const Outcome o = attempt([&] { pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream); });
    cudaGraph_t graph = end_capture(stream);
    MESSAGE("plan() on a capturing stream: ", outcome_text(o));
    if (o.threw) {
      clear_reported_error(check_fault_message(o));
      if (graph != nullptr) cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
      pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream);  // the fault left the pruner plannable
    } else {
      REQUIRE(graph != nullptr);
      replay(graph, stream);  // the captured upload and kernels run now
    }
    pruner.run(kPrunedLayer, L.attention(), L.residual_view(), L.weights(), stream);
    cuda_ok(cudaStreamSynchronize(stream), "sync");
    L.expect_matches_host_reference(pruner, kPrunedLayer);
  }
  SUBCASE("run: a pruned layer and a dense one") {
    pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream);
    cuda_ok(cudaStreamSynchronize(stream), "sync");
    for (const int layer : {kPrunedLayer, kDenseLayer}) {
      CAPTURE(layer);
      L.reset_residual();
      begin_capture(stream);
      const Outcome o = attempt([&] { pruner.run(layer, L.attention(), L.residual_view(), L.weights(), stream); });
      cudaGraph_t graph = end_capture(stream);
      MESSAGE("run(layer ", layer, ") on a capturing stream: ", outcome_text(o));
      if (o.threw) {
        clear_reported_error(check_fault_message(o));
        if (graph != nullptr) cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");
        CHECK(L.residual_untouched());  // captured work never ran
      } else {
        REQUIRE(graph != nullptr);
        replay(graph, stream);
        L.expect_matches_host_reference(pruner, layer);
      }
    }
  }
  cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

TEST_CASE("after a stream fault the device stays usable: plan/run on a valid stream match the host reference and "
          "leave no CUDA error" * ftp_test::needs_gpu()) {
  FaultLayer L;
  ftp::Pruner<bf16> pruner(kConfig, L.shape());
  cudaStream_t stream = nullptr;
  cuda_ok(cudaStreamCreate(&stream), "cudaStreamCreate");

  begin_capture(stream);
  const Outcome planned = attempt([&] { pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream); });
  cudaGraph_t graph = end_capture(stream);
  if (planned.threw) clear_reported_error(check_fault_message(planned));
  if (graph != nullptr) cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");  // never replayed
  pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream);
  cuda_ok(cudaStreamSynchronize(stream), "sync");
  begin_capture(stream);
  const Outcome ran = attempt([&] { pruner.run(kPrunedLayer, L.attention(), L.residual_view(), L.weights(), stream); });
  graph = end_capture(stream);
  CHECK(ran.threw);  // a pruned layer waits for its kept count: never capturable
  if (ran.threw) clear_reported_error(check_fault_message(ran));
  if (graph != nullptr) cuda_ok(cudaGraphDestroy(graph), "cudaGraphDestroy");

  for (const int layer : {kPrunedLayer, kDenseLayer}) {
    CAPTURE(layer);
    L.reset_residual();
    pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, stream);
    pruner.run(layer, L.attention(), L.residual_view(), L.weights(), stream);
    CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
    CHECK(pruner.last_report().pruned == (layer == kPrunedLayer));
    L.expect_matches_host_reference(pruner, layer);
  }
  CHECK(cudaGetLastError() == cudaSuccess);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
  cuda_ok(cudaStreamDestroy(stream), "cudaStreamDestroy");
}

TEST_CASE("a failing cuBLAS call surfaces as ftp::Error carrying the cuBLAS status name and string" *
          ftp_test::needs_gpu()) {
  // A destroyed cuBLAS handle would be undefined behaviour, and cuBLAS 13.0 accepted a workspace
  // only 16-byte aligned (its docs ask for 256), so the failure used is cublasCreate's documented
  // CUBLAS_STATUS_ALLOC_FAILED, "the resources could not be allocated", on a full device. With the
  // caller's workspace allocated beforehand, the only device memory the Pruner constructor then
  // needs is the cuBLAS handle's own (its default workspace pool).
  FaultLayer L;
  const std::size_t needed = ftp::Pruner<bf16>::workspace_bytes(L.shape(), kConfig);
  DeviceArray<std::uint8_t> workspace(needed);
  Outcome o;
  {
    const DeviceMemoryHog hog;
    o = attempt([&] { ftp::Pruner<bf16> pruner(kConfig, L.shape(), {}, {}, {}, workspace.get(), needed); });
  }
  (void)cudaGetLastError();  // the hog's refused allocations
  MESSAGE("Pruner construction (cublasCreate) with the device full: ", outcome_text(o));
  if (o.threw) {
    CAPTURE(o.message);
    CHECK(o.argument.empty());
    const cublasStatus_t status = cublas_status_in(o.message);
    CHECK_MESSAGE(status != CUBLAS_STATUS_SUCCESS, "failed, but not in cuBLAS");
    if (status != CUBLAS_STATUS_SUCCESS) {
      const std::string expected =
          std::string("cuBLAS error ") + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")";
      CHECK(o.message.find(expected) != std::string::npos);
      CHECK(o.message.find("cublasCreate") != std::string::npos);
    } else {
      check_fault_message(o);
    }
  } else {
    // The case's claim went unobserved: it reports itself skipped (the recovery below still runs).
    ftp_test::skip_at_runtime("cublasCreate found memory even with the device full: no cuBLAS failure to observe here");
  }
  // The device is usable again once the memory is back: a pruner built now matches the reference.
  CHECK(cudaGetLastError() == cudaSuccess);
  ftp::Pruner<bf16> pruner(kConfig, L.shape(), {}, {}, {}, workspace.get(), needed);
  pruner.plan(L.layout.cu_seqlens.data(), L.B, L.T, nullptr);
  pruner.run(kPrunedLayer, L.attention(), L.residual_view(), L.weights(), nullptr);
  CHECK(cudaDeviceSynchronize() == cudaSuccess);
  L.expect_matches_host_reference(pruner, kPrunedLayer);
}
