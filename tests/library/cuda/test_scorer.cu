// GPU scorers against the host reference on fresh random inputs.
#include <doctest/doctest.h>

#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ftp/ftp.hpp"
#include "ftp/host/last_queries_attention.hpp"
#include "ftp/host/random_scorer.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

// An FFN that adds nothing: the residual stays bitwise unchanged, so scorer tests see only scores.
struct ZeroFfn {
  template <class T>
  void operator()(const ftp::FfnRows<T>& rows, const void*, cudaStream_t stream) const {
    cuda_ok(cudaMemsetAsync(rows.output, 0, sizeof(float) * rows.num_rows * rows.hidden, stream), "zero ffn");
  }
};
using ZeroExecutor = ftp::CallableFfn<ZeroFfn>;

template <class T, class Scorer>
std::vector<float> device_scores(Scorer scorer, const ftp::BatchLayout& layout, const ftp::Config& config, int Hq,
                                 int Hkv, int d, const T* q, std::int64_t q_stride, const T* k, std::int64_t k_stride,
                                 int layer) {
  const int T_ = layout.num_tokens(), B = layout.num_seqs();
  const int C = 8;
  ftp::WorkspaceShape shape{T_, B, C, 8, Hq, Hkv, d};
  ftp::Pruner<T, Scorer, ftp::CumulativeEta, ZeroExecutor> pruner(config, shape, scorer, {}, ZeroExecutor(ZeroFfn{}));
  DeviceArray<T> residual(static_cast<std::size_t>(std::max(T_, 1)) * C);
  residual.poison();
  pruner.plan(layout.cu_seqlens.data(), B, T_, nullptr);
  cuda_ok(cudaMemset(const_cast<float*>(pruner.scores()), 0xFF, sizeof(float) * std::max(T_, 1)), "poison scores");
  pruner.run(layer, ftp::AttentionView<T>{q, q_stride, k, k_stride, Hq, Hkv, d}, ftp::ResidualView<T>{residual.get(), C, C},
             {}, nullptr);
  cuda_ok(cudaDeviceSynchronize(), "sync");
  std::vector<float> scores(T_);
  cuda_ok(cudaMemcpy(scores.data(), pruner.scores(), sizeof(float) * T_, cudaMemcpyDeviceToHost), "scores");
  return scores;
}

// Device LastQueriesAttention vs the double-precision host reference on random q, k.
template <class T>
void check_last_queries_attention(const std::vector<int>& lengths, int Hq, int Hkv, int d, int N, unsigned seed,
                                  int q_padding = 0) {
  CAPTURE(std::string(ftp::detail::ElementTraits<T>::name));
  CAPTURE(Hq);
  CAPTURE(Hkv);
  CAPTURE(d);
  CAPTURE(seed);
  const ftp::BatchLayout layout = layout_of(lengths);
  const int T_ = layout.num_tokens();
  const std::int64_t q_stride = static_cast<std::int64_t>(Hq) * d + q_padding, k_stride = static_cast<std::int64_t>(Hkv) * d;
  std::mt19937 rng(seed);
  RandomTensor<T> q(static_cast<std::size_t>(std::max(T_, 1)) * q_stride, rng, -2.0f, 2.0f);
  RandomTensor<T> k(static_cast<std::size_t>(std::max(T_, 1)) * k_stride, rng, -2.0f, 2.0f);
  DeviceArray<T> d_q(q.device_values), d_k(k.device_values);
  const ftp::Config config(100, N, 0, 0.9);
  const std::vector<float> got = device_scores<T>(ftp::LastQueriesAttention{}, layout, config, Hq, Hkv, d, d_q.get(),
                                                  q_stride, d_k.get(), k_stride, 0);
  const ftp::host::AttentionInputs inputs{q.host.data(), q_stride, k.host.data(), k_stride, Hq, Hkv, d};
  const std::vector<float> want = ftp::host::LastQueriesAttention{}.score(0, layout, inputs, config, 16);
  const double error = relative_error(got, want);
  CAPTURE(error);
  CHECK(error < 1e-5);  // scores are fp32 sums of the same products in every dtype
  for (int b = 0; b < layout.num_seqs(); ++b) {
    // each of the n queries of each head spreads exactly 1 over its keys
    const int n = std::min(N, layout.length(b));
    double sum = 0.0;
    for (int t = layout.cu_seqlens[b]; t < layout.cu_seqlens[b + 1]; ++t) sum += got[t];
    CHECK(sum == doctest::Approx(static_cast<double>(n) * Hq).epsilon(1e-4));
  }
  MESSAGE("LastQueriesAttention ", std::string(ftp::detail::ElementTraits<T>::name), " Hq=", Hq, " Hkv=", Hkv, " d=", d,
          " T=", T_, ": relative error ", error);
}

const std::vector<int> kRagged = {1000, 1, 0, 63, 64, 65, 3000, 37};

}  // namespace

TEST_CASE("LastQueriesAttention bf16 matches the host reference: GQA 32/8, d=128" * ftp_test::needs_gpu()) {
  check_last_queries_attention<__nv_bfloat16>({1}, 32, 8, 128, 50, 1);
  check_last_queries_attention<__nv_bfloat16>({37}, 32, 8, 128, 50, 2);
  check_last_queries_attention<__nv_bfloat16>(kRagged, 32, 8, 128, 50, 3);
  check_last_queries_attention<__nv_bfloat16>({scaled(32768)}, 32, 8, 128, 50, 4);
}

TEST_CASE("LastQueriesAttention fp16 matches the host reference: GQA 32/8, d=128" * ftp_test::needs_gpu()) {
  check_last_queries_attention<__half>({37}, 32, 8, 128, 50, 5);
  check_last_queries_attention<__half>(kRagged, 32, 8, 128, 50, 6);
}

TEST_CASE("LastQueriesAttention fp32 matches the host reference: GQA 32/8, d=128" * ftp_test::needs_gpu()) {
  check_last_queries_attention<float>({1}, 32, 8, 128, 50, 7);
  check_last_queries_attention<float>(kRagged, 32, 8, 128, 50, 8);
  check_last_queries_attention<float>({scaled(16384), 7, scaled(9000)}, 32, 8, 128, 50, 9);
}

TEST_CASE("LastQueriesAttention matches the host reference: SmolLM2 GQA 9/3, d=64, all dtypes" * ftp_test::needs_gpu()) {
  check_last_queries_attention<__nv_bfloat16>(kRagged, 9, 3, 64, 50, 10);
  check_last_queries_attention<__half>(kRagged, 9, 3, 64, 50, 11);
  check_last_queries_attention<float>(kRagged, 9, 3, 64, 50, 12);
  check_last_queries_attention<__nv_bfloat16>({8192, 8191}, 9, 3, 64, 50, 13);
}

TEST_CASE("LastQueriesAttention handles d=256, N > L, one query, and padded q rows" * ftp_test::needs_gpu()) {
  check_last_queries_attention<__nv_bfloat16>({300, 5}, 8, 2, 256, 50, 14);
  check_last_queries_attention<float>({300, 5}, 8, 2, 256, 50, 15);
  check_last_queries_attention<__nv_bfloat16>({200, 3}, 4, 4, 64, 1, 16);  // N = 1, MHA
  check_last_queries_attention<__nv_bfloat16>({500, 77}, 32, 8, 128, 64, 17, 2 * 8 * 128);  // fused qkv row stride
  check_last_queries_attention<__nv_bfloat16>({500, 77}, 32, 8, 128, 64, 18, 1);  // unaligned rows: scalar loads
}

TEST_CASE("RandomScorer on the device equals the host reference bit for bit" * ftp_test::needs_gpu()) {
  const ftp::BatchLayout layout = layout_of(kRagged);
  const ftp::Config config(100, 50, 0, 0.9);
  const std::vector<float> got = device_scores<__nv_bfloat16>(ftp::RandomScorer{1234}, layout, config, 4, 2, 64,
                                                              nullptr, 0, nullptr, 0, 7);
  const std::vector<float> want = ftp::host::RandomScorer{1234}.score(7, layout);
  CHECK(got == want);
}
