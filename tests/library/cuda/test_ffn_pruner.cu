// FFN executors and the whole per-layer step against the host reference; KeepAll against the
// dense path bit for bit; bad input leaves the caller's buffers untouched; CUDA failures surface.
#include <doctest/doctest.h>

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
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

struct ProvidedScores : ftp::ScorerBase {
  static constexpr bool kNeedsAttention = false;
  const float* d_scores = nullptr;
  template <class T>
  void score(const ftp::ScoreContext<T>& ctx) const {
    FTP_CUDA_CHECK(cudaMemcpyAsync(ctx.scores, d_scores, sizeof(float) * ctx.batch.num_tokens,
                                   cudaMemcpyDeviceToDevice, ctx.stream));
  }
};

/// Random SwiGLU weights of one layer, on host (rounded to T) and device.
template <class T>
struct SwiGluLayer {
  RandomTensor<T> norm, gate, up, down;
  DeviceArray<T> d_norm, d_gate_up, d_gate, d_up, d_down;
  SwiGluLayer(int C, int I, std::mt19937& rng)
      : norm(C, rng, 0.5f, 1.5f),
        gate(static_cast<std::size_t>(I) * C, rng, -0.08f, 0.08f),
        up(static_cast<std::size_t>(I) * C, rng, -0.08f, 0.08f),
        down(static_cast<std::size_t>(C) * I, rng, -0.05f, 0.05f),
        d_norm(norm.device_values),
        d_gate_up(static_cast<std::size_t>(2) * I * C),
        d_gate(gate.device_values),
        d_up(up.device_values),
        d_down(down.device_values) {
    std::vector<T> fused(gate.device_values);
    fused.insert(fused.end(), up.device_values.begin(), up.device_values.end());
    d_gate_up.upload(fused);
  }
  typename ftp::CublasSwiGLU::Weights<T> fused_weights() const {
    return {d_norm.get(), d_gate_up.get(), nullptr, nullptr, d_down.get(), 1e-5f};
  }
  typename ftp::CublasSwiGLU::Weights<T> split_weights() const {
    return {d_norm.get(), nullptr, d_gate.get(), d_up.get(), d_down.get(), 1e-5f};
  }
  ftp::host::SwiGluWeights host() const { return {norm.host.data(), gate.host.data(), up.host.data(), down.host.data(), 1e-5f}; }
};

// SwiGLU executor through the pruner with a known selection (TopRatio over given scores).
template <class T>
void check_swiglu(const std::vector<int>& lengths, int C, int I, bool fused, int chunk_rows, int row_padding,
                  double ratio, unsigned seed) {
  CAPTURE(std::string(ftp::detail::ElementTraits<T>::name));
  CAPTURE(fused);
  CAPTURE(chunk_rows);
  CAPTURE(ratio);
  std::mt19937 rng(seed);
  const ftp::BatchLayout layout = layout_of(lengths);
  const int T_ = layout.num_tokens(), B = layout.num_seqs();
  const std::int64_t stride = C + row_padding;
  SwiGluLayer<T> layer(C, I, rng);
  RandomTensor<T> residual(static_cast<std::size_t>(std::max(T_, 1)) * stride, rng, -1.0f, 1.0f);
  DeviceArray<T> d_residual(residual.device_values);
  RandomTensor<float> scores(std::max(T_, 1), rng, 0.0f, 1.0f);
  DeviceArray<float> d_scores(scores.device_values);
  ProvidedScores scorer;
  scorer.d_scores = d_scores.get();
  const ftp::Config config(10, 5, 1, 0.9);
  ftp::Pruner<T, ProvidedScores, ftp::TopRatio, ftp::CublasSwiGLU> pruner(config, {T_, B, C, I, 1, 1, 64}, scorer,
                                                                          ftp::TopRatio{ratio},
                                                                          ftp::CublasSwiGLU(chunk_rows));
  pruner.plan(layout.cu_seqlens.data(), B, T_, nullptr);
  pruner.run(1, {}, {d_residual.get(), stride, C}, fused ? layer.fused_weights() : layer.split_weights(), nullptr);
  const std::vector<float> got = to_floats(d_residual.download());

  std::vector<float> want = residual.host;
  scores.host.resize(T_);
  const auto flags = ftp::host::run_layer(1, config, layout, scores.host, ftp::host::TopRatio{ratio},
                                          ftp::host::CublasSwiGLU{}, want.data(), stride, C, I, layer.host(), round_to<T>);
  compare_residual(got, want, residual.host, flags, stride, C, ftp_test::tolerance<T>());
}

}  // namespace

TEST_CASE("CublasSwiGLU on gathered rows matches the host reference in bf16, fp16 and fp32" * ftp_test::needs_gpu()) {
  check_swiglu<__nv_bfloat16>({300, 1, 0, 457}, 576, 1536, true, 4096, 0, 0.4, 1);
  check_swiglu<__half>({300, 1, 0, 457}, 576, 1536, false, 4096, 0, 0.4, 2);
  check_swiglu<float>({300, 1, 0, 457}, 576, 1536, true, 4096, 0, 0.4, 3);
  check_swiglu<__nv_bfloat16>({1000, 33}, 256, 512, false, 100, 64, 0.7, 4);  // chunks of 100 rows, padded rows
  check_swiglu<float>({1000, 33}, 256, 512, true, 100, 64, 0.7, 5);
  check_swiglu<__nv_bfloat16>({1}, 576, 1536, true, 4096, 0, 0.4, 6);
  check_swiglu<__nv_bfloat16>({0}, 576, 1536, true, 4096, 0, 0.4, 7);
  check_swiglu<__nv_bfloat16>({90, 41}, 64, 100, false, 4096, 0, 0.5, 10);  // I % 8 != 0: scalar SiLU path
  check_swiglu<float>({90, 41}, 64, 102, true, 4096, 0, 0.5, 11);           // I % 4 != 0
}

TEST_CASE("CublasSwiGLU dense path (ratio 1) matches the host reference" * ftp_test::needs_gpu()) {
  check_swiglu<__nv_bfloat16>({700, 21}, 576, 1536, true, 256, 0, 1.0, 8);
  check_swiglu<float>({700, 21}, 576, 1536, false, 4096, 8, 1.0, 9);
}

TEST_CASE("CublasGeluMlp with biases matches the host reference" * ftp_test::needs_gpu()) {
  for (int dtype = 0; dtype < 2; ++dtype) {
    std::mt19937 rng(20 + dtype);
    const ftp::BatchLayout layout = layout_of({400, 123});
    const int T_ = layout.num_tokens(), C = 256, I = 1024;
    auto run = [&](auto tag) {
      using T = decltype(tag);
      RandomTensor<T> nw(C, rng, 0.5f, 1.5f), nb(C, rng, -0.1f, 0.1f), up(static_cast<std::size_t>(I) * C, rng, -0.1f, 0.1f),
          ub(I, rng, -0.1f, 0.1f), down(static_cast<std::size_t>(C) * I, rng, -0.05f, 0.05f), db(C, rng, -0.1f, 0.1f);
      DeviceArray<T> d_nw(nw.device_values), d_nb(nb.device_values), d_up(up.device_values), d_ub(ub.device_values),
          d_down(down.device_values), d_db(db.device_values);
      RandomTensor<T> residual(static_cast<std::size_t>(T_) * C, rng, -1.0f, 1.0f);
      DeviceArray<T> d_residual(residual.device_values);
      RandomTensor<float> scores(T_, rng, 0.0f, 1.0f);
      DeviceArray<float> d_scores(scores.device_values);
      ProvidedScores scorer;
      scorer.d_scores = d_scores.get();
      const ftp::Config config(10, 5, 0, 0.9);
      ftp::Pruner<T, ProvidedScores, ftp::TopRatio, ftp::CublasGeluMlp> pruner(config, {T_, 2, C, I, 1, 1, 64}, scorer,
                                                                               ftp::TopRatio{0.5});
      pruner.plan(layout.cu_seqlens.data(), 2, T_, nullptr);
      pruner.run(0, {}, {d_residual.get(), C, C},
                 {d_nw.get(), d_nb.get(), d_up.get(), d_ub.get(), d_down.get(), d_db.get(), 1e-5f}, nullptr);
      std::vector<float> want = residual.host;
      const ftp::host::GeluMlpWeights hw{nw.host.data(), nb.host.data(), up.host.data(), ub.host.data(),
                                         down.host.data(), db.host.data(), 1e-5f};
      const auto flags = ftp::host::run_layer(0, config, layout, scores.host, ftp::host::TopRatio{0.5},
                                              ftp::host::CublasGeluMlp{}, want.data(), C, C, I, hw, round_to<T>);
      compare_residual(to_floats(d_residual.download()), want, residual.host, flags, C, C, ftp_test::tolerance<T>());
    };
    if (dtype == 0) run(__nv_bfloat16{}); else run(float{});
  }
}

namespace {

// y = 2x, a stand-in for a user's own (quantized, MoE, ...) FFN.
template <class T>
__global__ void double_rows_kernel(const T* x, std::int64_t stride, float* y, int M, int C) {
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < M * C; i += gridDim.x * blockDim.x) {
    y[i] = 2.0f * ftp::detail::to_float(x[static_cast<std::int64_t>(i / C) * stride + i % C]);
  }
}
struct DoubleFfn {
  int* calls;
  template <class T>
  void operator()(const ftp::FfnRows<T>& rows, const void* user, cudaStream_t stream) const {
    ++*calls;
    CHECK(user == reinterpret_cast<const void*>(0x1234));
    double_rows_kernel<T><<<64, 256, 0, stream>>>(rows.input, rows.input_row_stride, rows.output, rows.num_rows, rows.hidden);
  }
};

}  // namespace

namespace {

/// Two sequences of random fp32 residual rows (C = 64) and random scores on the device, scored by
/// ProvidedScores: the common ground of the policy-hook cases below.
struct ProvidedScoresBatch {
  static constexpr int C = 64;
  ftp::BatchLayout layout;
  int num_tokens;
  RandomTensor<float> residual;
  DeviceArray<float> d_residual;
  RandomTensor<float> scores;
  DeviceArray<float> d_scores;
  ProvidedScores scorer;

  ProvidedScoresBatch(std::mt19937& rng, std::vector<int> lengths)
      : layout(layout_of(lengths)),
        num_tokens(layout.num_tokens()),
        residual(static_cast<std::size_t>(num_tokens) * C, rng, -1.0f, 1.0f),
        d_residual(residual.device_values),
        scores(num_tokens, rng, 0.0f, 1.0f),
        d_scores(scores.device_values) {
    scorer.d_scores = d_scores.get();
  }
};

}  // namespace

TEST_CASE("CallableFfn hands the kept rows to the user's function and adds its output" * ftp_test::needs_gpu()) {
  std::mt19937 rng(30);
  ProvidedScoresBatch batch(rng, {500, 200});
  const int T_ = batch.num_tokens, C = ProvidedScoresBatch::C;
  int calls = 0;
  const ftp::Config config(10, 5, 0, 0.9);
  using Exec = ftp::CallableFfn<DoubleFfn>;
  ftp::Pruner<float, ProvidedScores, ftp::TopCount, Exec> pruner(config, {T_, 2, C, 1, 1, 1, 64}, batch.scorer,
                                                                 ftp::TopCount{100}, Exec(DoubleFfn{&calls}, 64));
  pruner.plan(batch.layout.cu_seqlens.data(), 2, T_, nullptr);
  pruner.run(0, {}, {batch.d_residual.get(), C, C}, {reinterpret_cast<const void*>(0x1234)}, nullptr);
  const std::vector<float> got = batch.d_residual.download();
  const auto flags = ftp::host::TopCount{100}.select(batch.scores.host, batch.layout, config);
  int kept = 0;
  for (int t = 0; t < T_; ++t) {
    kept += flags[t];
    for (int c = 0; c < C; ++c) {
      const float x = batch.residual.host[t * C + c];
      CHECK(got[t * C + c] == (flags[t] ? x + 2.0f * x : x));
    }
  }
  CHECK(kept == 2 * (10 + 5 + 100));
  CHECK(calls == (kept + 63) / 64);  // chunks of 64 rows
}

namespace {

/// A per-layer reserve policy through the layer form of the rule hook (reserve/layer_rule.hpp):
/// keeps the 3 x layer top-scored middle tokens and records which layers asked for a rule.
struct ThreePerLayer {
  static constexpr bool kNeedsMasses = false;
  struct Rule {
    int count;
    FTP_HOST_DEVICE bool keep(const ftp::RankInfo& r) const { return r.rank < count; }
  };
  std::vector<int>* layers_asked = nullptr;
  bool keeps_everything(const ftp::Config&) const { return false; }
  Rule rule(const ftp::Config&, int layer) const {
    layers_asked->push_back(layer);
    return Rule{3 * layer};
  }
};

}  // namespace

TEST_CASE("a reserve policy's rule(Config, layer) gets the layer being pruned" * ftp_test::needs_gpu()) {
  std::mt19937 rng(31);
  ProvidedScoresBatch batch(rng, {500, 301});
  const int T_ = batch.num_tokens, C = ProvidedScoresBatch::C;
  const ftp::Config config(10, 5, 4, 0.9);  // P = 10, N = 5, layers >= 4 pruned
  std::vector<int> layers_asked;
  ThreePerLayer reserve;
  reserve.layers_asked = &layers_asked;
  ftp::Pruner<float, ProvidedScores, ThreePerLayer, ftp::NoFfn> pruner(config, {T_, 2, C, 1, 1, 1, 64}, batch.scorer, reserve);
  pruner.plan(batch.layout.cu_seqlens.data(), 2, T_, nullptr);
  for (int layer : {2, 4, 9, 31}) {
    CAPTURE(layer);
    pruner.run(layer, {}, {batch.d_residual.get(), C, C}, {}, nullptr);
    const ftp::LayerReport& report = pruner.last_report();
    const int expected = layer < 4 ? T_ : 2 * (10 + 5) + 2 * 3 * layer;  // both middles are longer than 93
    CHECK(report.kept_tokens == expected);
  }
  CHECK(layers_asked == std::vector<int>{4, 9, 31});  // layers below F never ask

  // Several observers: called in the order added; removing one leaves the others; set_observer
  // replaces them all; an empty one is rejected.
  std::vector<std::string> calls;
  const int first = pruner.add_observer([&](const ftp::LayerReport& r) { calls.push_back("a" + std::to_string(r.layer)); });
  const int second = pruner.add_observer([&](const ftp::LayerReport& r) { calls.push_back("b" + std::to_string(r.kept_tokens)); });
  CHECK(first != second);
  pruner.run(5, {}, {batch.d_residual.get(), C, C}, {}, nullptr);
  CHECK(calls == std::vector<std::string>{"a5", "b" + std::to_string(2 * 15 + 2 * 15)});
  CHECK(pruner.remove_observer(first));
  CHECK_FALSE(pruner.remove_observer(first));
  pruner.run(6, {}, {batch.d_residual.get(), C, C}, {}, nullptr);
  CHECK(calls.size() == 3);
  CHECK(calls.back() == "b" + std::to_string(2 * 15 + 2 * 18));
  pruner.set_observer([&](const ftp::LayerReport&) { calls.push_back("c"); });
  pruner.run(7, {}, {batch.d_residual.get(), C, C}, {}, nullptr);
  CHECK(calls.size() == 4);
  CHECK(calls.back() == "c");
  CHECK_FALSE(pruner.remove_observer(second));  // set_observer removed it
  try {
    pruner.add_observer({});
    FAIL("an empty observer was accepted");
  } catch (const ftp::Error& e) {
    CHECK(e.argument() == "observer");
  }
}

TEST_CASE("KeepAll and layers below F give bitwise the dense FFN's result" * ftp_test::needs_gpu()) {
  std::mt19937 rng(40);
  const int C = 576, I = 1536, Hq = 9, Hkv = 3, d = 64;
  const ftp::BatchLayout layout = layout_of({1500, 700});
  const int T_ = layout.num_tokens();
  SwiGluLayer<__nv_bfloat16> layer(C, I, rng);
  RandomTensor<__nv_bfloat16> residual(static_cast<std::size_t>(T_) * C, rng, -1.0f, 1.0f);
  RandomTensor<__nv_bfloat16> q(static_cast<std::size_t>(T_) * Hq * d, rng, -1.0f, 1.0f), k(static_cast<std::size_t>(T_) * Hkv * d, rng, -1.0f, 1.0f);
  DeviceArray<__nv_bfloat16> d_q(q.device_values), d_k(k.device_values);
  const ftp::WorkspaceShape shape{T_, 2, C, I, Hq, Hkv, d};
  const ftp::AttentionView<__nv_bfloat16> attention{d_q.get(), Hq * d, d_k.get(), Hkv * d, Hq, Hkv, d};

  // the plain dense FFN: the executor's dense entry, called directly with its own workspace
  DeviceArray<__nv_bfloat16> dense(residual.device_values);
  {
    ftp::CublasSwiGLU executor;
    DeviceArray<std::uint8_t> ws(executor.workspace_bytes<__nv_bfloat16>(shape));
    cublasHandle_t handle;
    REQUIRE(cublasCreate(&handle) == CUBLAS_STATUS_SUCCESS);
    executor.run(ftp::FfnContext<__nv_bfloat16>{{dense.get(), C, C}, nullptr, T_, shape, ws.get(), handle, nullptr},
                 layer.fused_weights());
    cudaDeviceSynchronize();
    cublasDestroy(handle);
  }
  DeviceArray<__nv_bfloat16> keep_all(residual.device_values), below_f(residual.device_values);
  ftp::Pruner<__nv_bfloat16, ftp::LastQueriesAttention, ftp::KeepAll> keep_all_pruner(ftp::Config(), shape);
  keep_all_pruner.plan(layout.cu_seqlens.data(), 2, T_, nullptr);
  keep_all_pruner.run(20, attention, {keep_all.get(), C, C}, layer.fused_weights(), nullptr);
  CHECK_FALSE(keep_all_pruner.last_report().pruned);
  ftp::Pruner<__nv_bfloat16> paper(ftp::Config::llama3(), shape);
  paper.plan(layout.cu_seqlens.data(), 2, T_, nullptr);
  paper.run(9, attention, {below_f.get(), C, C}, layer.fused_weights(), nullptr);
  CHECK_FALSE(paper.last_report().pruned);
  const auto want = dense.download(), got_keep_all = keep_all.download(), got_below_f = below_f.download();
  CHECK(std::memcmp(got_keep_all.data(), want.data(), want.size() * 2) == 0);
  CHECK(std::memcmp(got_below_f.data(), want.data(), want.size() * 2) == 0);
  CHECK(std::memcmp(want.data(), residual.device_values.data(), want.size() * 2) != 0);  // the FFN did run
}

namespace {

// The whole paper step (LastQueriesAttention + CumulativeEta + CublasSwiGLU) against the host.
template <class T>
void check_whole_step(const std::vector<int>& lengths, int Hq, int Hkv, int d, int C, int I, unsigned seed) {
  CAPTURE(std::string(ftp::detail::ElementTraits<T>::name));
  CAPTURE(seed);
  std::mt19937 rng(seed);
  const ftp::BatchLayout layout = layout_of(lengths);
  const int T_ = layout.num_tokens(), B = layout.num_seqs();
  SwiGluLayer<T> layer(C, I, rng);
  RandomTensor<T> residual(static_cast<std::size_t>(std::max(T_, 1)) * C, rng, -1.0f, 1.0f);
  RandomTensor<T> q(static_cast<std::size_t>(std::max(T_, 1)) * Hq * d, rng, -3.0f, 3.0f);
  RandomTensor<T> k(static_cast<std::size_t>(std::max(T_, 1)) * Hkv * d, rng, -3.0f, 3.0f);
  DeviceArray<T> d_residual(residual.device_values), d_q(q.device_values), d_k(k.device_values);
  const ftp::Config config(100, 50, 2, 0.9);
  ftp::Pruner<T> pruner(config, {T_, B, C, I, Hq, Hkv, d});
  pruner.plan(layout.cu_seqlens.data(), B, T_, nullptr);
  pruner.run(5, {d_q.get(), Hq * d, d_k.get(), Hkv * d, Hq, Hkv, d}, {d_residual.get(), C, C}, layer.fused_weights(),
             nullptr);
  const ftp::LayerReport report = pruner.last_report();
  std::vector<float> gpu_scores(T_);
  cuda_ok(cudaMemcpy(gpu_scores.data(), pruner.scores(), sizeof(float) * T_, cudaMemcpyDeviceToHost), "scores");
  std::vector<int> gpu_kept(report.kept_tokens);
  cuda_ok(cudaMemcpy(gpu_kept.data(), pruner.kept_token_indices(), sizeof(int) * gpu_kept.size(), cudaMemcpyDeviceToHost),
          "kept");

  // scores: against the double reference
  const ftp::host::AttentionInputs inputs{q.host.data(), Hq * d, k.host.data(), Hkv * d, Hq, Hkv, d};
  const std::vector<float> host_scores = ftp::host::LastQueriesAttention{}.score(5, layout, inputs, config, 16);
  CHECK(relative_error(gpu_scores, host_scores) < 1e-5);
  // selection: exactly the host's, fed the GPU's scores
  std::vector<float> want = residual.host;
  const auto flags = ftp::host::run_layer(5, config, layout, gpu_scores, ftp::host::CumulativeEta{},
                                          ftp::host::CublasSwiGLU{}, want.data(), C, C, I, layer.host(), round_to<T>);
  CHECK(gpu_kept == ftp::host::kept_tokens(flags));
  compare_residual(to_floats(d_residual.download()), want, residual.host, flags, C, C, ftp_test::tolerance<T>());
  MESSAGE("whole step ", std::string(ftp::detail::ElementTraits<T>::name), " T=", T_, ": kept ", report.kept_tokens, " of ", T_);
}

}  // namespace

TEST_CASE("the whole per-layer step matches the host reference (SmolLM2 shape)" * ftp_test::needs_gpu()) {
  check_whole_step<__nv_bfloat16>({0, 1, 150, 151, 1000}, 9, 3, 64, 576, 1536, 50);
  check_whole_step<float>({0, 1, 150, 151, 1000}, 9, 3, 64, 576, 1536, 51);
  check_whole_step<__half>({640, 333}, 9, 3, 64, 576, 1536, 52);
}

TEST_CASE("the whole per-layer step matches the host reference (Llama3 heads, long ragged batch)" * ftp_test::needs_gpu()) {
  check_whole_step<__nv_bfloat16>({4000, 2500, 1}, 32, 8, 128, 256, 512, 53);
}

TEST_CASE("the per-layer step is deterministic: identical kept sets and bitwise outputs" * ftp_test::needs_gpu()) {
  std::mt19937 rng(60);
  const int C = 256, I = 512, Hq = 32, Hkv = 8, d = 128;
  const ftp::BatchLayout layout = layout_of({3000, 1200});
  const int T_ = layout.num_tokens();
  SwiGluLayer<__nv_bfloat16> layer(C, I, rng);
  RandomTensor<__nv_bfloat16> residual(static_cast<std::size_t>(T_) * C, rng, -1.0f, 1.0f);
  RandomTensor<__nv_bfloat16> q(static_cast<std::size_t>(T_) * Hq * d, rng, -3.0f, 3.0f), k(static_cast<std::size_t>(T_) * Hkv * d, rng, -3.0f, 3.0f);
  DeviceArray<__nv_bfloat16> d_q(q.device_values), d_k(k.device_values), d_residual(residual.device_values);
  ftp::Pruner<__nv_bfloat16> pruner(ftp::Config(100, 50, 0, 0.9), {T_, 2, C, I, Hq, Hkv, d});
  pruner.plan(layout.cu_seqlens.data(), 2, T_, nullptr);
  std::vector<__nv_bfloat16> first_out;
  std::vector<float> first_scores(T_);
  for (int run = 0; run < scaled(100); ++run) {
    d_residual.upload(residual.device_values);
    pruner.run(3, {d_q.get(), Hq * d, d_k.get(), Hkv * d, Hq, Hkv, d}, {d_residual.get(), C, C}, layer.fused_weights(),
               nullptr);
    std::vector<float> scores(T_);
    cuda_ok(cudaMemcpy(scores.data(), pruner.scores(), sizeof(float) * T_, cudaMemcpyDeviceToHost), "scores");
    const auto out = d_residual.download();
    if (run == 0) {
      first_out = out;
      first_scores = scores;
    } else {
      CHECK(std::memcmp(out.data(), first_out.data(), out.size() * 2) == 0);
      CHECK(std::memcmp(scores.data(), first_scores.data(), scores.size() * 4) == 0);
    }
  }
}

namespace {

template <class F>
void expect_rejected(F f, const std::string& argument) {
  bool thrown = false;
  try {
    f();
  } catch (const ftp::Error& e) {
    thrown = true;
    CAPTURE(e.what());
    CHECK(e.argument() == argument);
  }
  CHECK_MESSAGE(thrown, "expected ftp::Error naming ", argument);
}

}  // namespace

TEST_CASE("bad input raises ftp::Error naming the argument and leaves the residual untouched" * ftp_test::needs_gpu()) {
  std::mt19937 rng(70);
  const int C = 64, I = 128, Hq = 4, Hkv = 2, d = 64, T_ = 300;
  SwiGluLayer<__nv_bfloat16> layer(C, I, rng);
  RandomTensor<__nv_bfloat16> residual(static_cast<std::size_t>(T_) * C, rng, -1.0f, 1.0f);
  RandomTensor<__nv_bfloat16> q(static_cast<std::size_t>(T_) * Hq * d, rng, -1.0f, 1.0f), k(static_cast<std::size_t>(T_) * Hkv * d, rng, -1.0f, 1.0f);
  DeviceArray<__nv_bfloat16> d_q(q.device_values), d_k(k.device_values), d_residual(residual.device_values);
  const ftp::WorkspaceShape shape{T_, 2, C, I, Hq, Hkv, d};
  const ftp::AttentionView<__nv_bfloat16> attention{d_q.get(), Hq * d, d_k.get(), Hkv * d, Hq, Hkv, d};
  const ftp::ResidualView<__nv_bfloat16> res{d_residual.get(), C, C};
  const int cu[] = {0, 100, 300};

  ftp::Pruner<__nv_bfloat16> pruner(ftp::Config(10, 5, 0, 0.9), shape);
  expect_rejected([&] { pruner.run(0, attention, res, layer.fused_weights(), nullptr); }, "plan");
  const int too_many[] = {0, 100, 301};
  expect_rejected([&] { pruner.plan(too_many, 2, 301, nullptr); }, "num_tokens");
  const int three[] = {0, 100, 200, 300};
  ftp::Pruner<__nv_bfloat16> one_seq(ftp::Config(10, 5, 0, 0.9), {T_, 1, C, I, Hq, Hkv, d});
  expect_rejected([&] { one_seq.plan(three, 3, 300, nullptr); }, "num_seqs");
  const int backwards[] = {0, 200, 100};
  expect_rejected([&] { pruner.plan(backwards, 2, 100, nullptr); }, "cu_seqlens");
  pruner.plan(cu, 2, T_, nullptr);

  auto weights = layer.fused_weights();
  expect_rejected([&] { pruner.run(-1, attention, res, weights, nullptr); }, "layer");
  expect_rejected([&] { pruner.run(0, attention, {nullptr, C, C}, weights, nullptr); }, "residual.data");
  expect_rejected([&] { pruner.run(0, attention, {d_residual.get(), C, C + 1}, weights, nullptr); }, "residual.hidden");
  auto no_down = weights;
  no_down.down = nullptr;
  expect_rejected([&] { pruner.run(0, attention, res, no_down, nullptr); }, "weights.down");
  auto no_gate = weights;
  no_gate.gate_up = nullptr;
  expect_rejected([&] { pruner.run(0, attention, res, no_gate, nullptr); }, "weights.gate (or weights.gate_up)");
  auto no_q = attention;
  no_q.q = nullptr;
  expect_rejected([&] { pruner.run(0, no_q, res, weights, nullptr); }, "attention.q");
  auto wrong_heads = attention;
  wrong_heads.num_q_heads = 6;
  wrong_heads.q_row_stride = 6 * d;
  expect_rejected([&] { pruner.run(0, wrong_heads, res, weights, nullptr); }, "attention.num_q_heads");
  auto wrong_d = attention;
  wrong_d.head_dim = 128;
  wrong_d.q_row_stride = Hq * 128;
  wrong_d.k_row_stride = Hkv * 128;
  expect_rejected([&] { pruner.run(0, wrong_d, res, weights, nullptr); }, "attention.head_dim");
  auto bad_gqa = attention;
  bad_gqa.num_kv_heads = 3;
  expect_rejected([&] { pruner.run(0, bad_gqa, res, weights, nullptr); }, "attention.num_q_heads");

  // a caller's workspace that is too small
  const std::size_t needed = ftp::Pruner<__nv_bfloat16>::workspace_bytes(shape, ftp::Config(10, 5, 0, 0.9));
  DeviceArray<std::uint8_t> small(needed - 1);
  expect_rejected([&] { ftp::Pruner<__nv_bfloat16>(ftp::Config(10, 5, 0, 0.9), shape, {}, {}, {}, small.get(), needed - 1); },
                  "workspace_bytes");
  // policy arguments
  expect_rejected([] { ftp::TopRatio{0.0}; }, "ratio");
  expect_rejected([] { ftp::TopCount{-1}; }, "count");
  expect_rejected([] { ftp::CublasSwiGLU{0}; }, "chunk_rows");
  expect_rejected([] { ftp::CublasGeluMlp{-3}; }, "chunk_rows");
  const auto no_op = [](const auto&, const void*, cudaStream_t) {};
  expect_rejected([&] { ftp::CallableFfn<decltype(no_op)>(no_op, 0); }, "chunk_rows");

  const auto after = d_residual.download();
  CHECK(std::memcmp(after.data(), residual.device_values.data(), after.size() * 2) == 0);

  // and the same pruner still works afterwards
  pruner.run(0, attention, res, weights, nullptr);
  CHECK(pruner.last_report().pruned);
}

TEST_CASE("a failing CUDA allocation surfaces as ftp::Error with the CUDA error string" * ftp_test::needs_gpu()) {
  // Chunks of 2^30 rows of a Llama3-8B FFN need tens of terabytes.
  bool thrown = false;
  try {
    ftp::Pruner<__nv_bfloat16> huge(ftp::Config(), {1 << 30, 1, 4096, 14336, 32, 8, 128}, {}, {},
                                    ftp::CublasSwiGLU(1 << 30));
  } catch (const ftp::Error& e) {
    thrown = true;
    CHECK(std::string(e.what()).find("cudaErrorMemoryAllocation") != std::string::npos);
    CHECK(e.argument().empty());
  }
  CHECK(thrown);
  (void)cudaGetLastError();  // clear the (non-sticky) allocation error; the device stays usable
  void* p = nullptr;
  CHECK(cudaMalloc(&p, 1024) == cudaSuccess);
  cudaFree(p);
}
