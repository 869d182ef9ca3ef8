// The runner's prefill attention writes each row's log-sum-exp, and FTP's scorer fed that lse
// gives the scores it computes on its own.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ftp/ftp.hpp"
#include "gpu_guard.hpp"
#include "llama3/kernels/attention_prefill.cuh"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

using bf16 = __nv_bfloat16;

/// q, k, v as column slices of one fused [T, (Hq + 2 Hkv) d] buffer, as the runner keeps them.
struct FusedQkv {
  int Hq, Hkv, d;
  std::int64_t stride;
  RandomTensor<bf16> values;
  DeviceArray<bf16> device;
  FusedQkv(int T, int Hq_, int Hkv_, int d_, std::mt19937& rng)
      : Hq(Hq_), Hkv(Hkv_), d(d_), stride(static_cast<std::int64_t>(Hq_ + 2 * Hkv_) * d_),
        values(static_cast<std::size_t>(std::max(T, 1)) * stride, rng, -2.0f, 2.0f), device(values.device_values) {}
  const bf16* q() const { return device.get(); }
  const bf16* k() const { return device.get() + static_cast<std::int64_t>(Hq) * d; }
  const bf16* v() const { return device.get() + static_cast<std::int64_t>(Hq + Hkv) * d; }
  /// ln sum_{j <= pos} exp(q_{t,h} . k_j / sqrt(d)) in double.
  double lse(const ftp::BatchLayout& layout, int b, int pos, int h) const {
    const float* rows = values.host.data() + static_cast<std::int64_t>(layout.cu_seqlens[b]) * stride;
    return exact_row_lse(rows + pos * stride + h * d, rows + (Hq + h / (Hq / Hkv)) * d, stride, pos + 1, d);
  }
};

template <int D>
void launch(const FusedQkv& qkv, bf16* out, float* lse, const int* d_cu, int B, int T) {
  llama3::kernels::launch_attention_prefill<D>(qkv.q(), qkv.stride, qkv.k(), qkv.stride, qkv.v(), qkv.stride, out, d_cu,
                                               B, T, qkv.Hq, qkv.Hkv, nullptr, lse);
}

template <int D>
void check_attention_lse(const std::vector<int>& lengths, int Hq, int Hkv, unsigned seed) {
  CAPTURE(D);
  CAPTURE(Hq);
  CAPTURE(seed);
  const ftp::BatchLayout layout = layout_of(lengths);
  const int T = layout.num_tokens(), B = layout.num_seqs();
  std::mt19937 rng(seed);
  const FusedQkv qkv(T, Hq, Hkv, D, rng);
  DeviceArray<int> d_cu(layout.cu_seqlens);
  DeviceArray<bf16> out(static_cast<std::size_t>(std::max(T, 1)) * Hq * D);
  DeviceArray<float> lse(static_cast<std::size_t>(std::max(T, 1)) * Hq);
  lse.poison();
  launch<D>(qkv, out.get(), lse.get(), d_cu.get(), B, T);
  const std::vector<float> got = lse.download();
  // Every row of every sequence; long sequences sampled every 7th row plus their last 60.
  double worst = 0.0;
  int checked = 0;
  for (int b = 0; b < B; ++b) {
    const int L = layout.length(b);
    for (int pos = 0; pos < L; ++pos) {
      if (L > 300 && pos % 7 != 0 && pos < L - 60) continue;
      for (int h = 0; h < Hq; ++h) {
        const double want = qkv.lse(layout, b, pos, h);
        const float value = got[static_cast<std::size_t>(layout.cu_seqlens[b] + pos) * Hq + h];
        REQUIRE(std::isfinite(value));
        worst = std::max(worst, std::abs(value - want) / std::max(1.0, std::abs(want)));
        ++checked;
      }
    }
  }
  CAPTURE(worst);
  CHECK(worst < 1e-5);
  MESSAGE("prefill attention lse d=", D, " Hq=", Hq, " T=", T, ": ", checked, " rows, worst error ", worst);
}

}  // namespace

TEST_CASE("prefill attention writes each row's log-sum-exp (fp32, natural log)" * ftp_test::needs_gpu()) {
  check_attention_lse<64>({1, 7, 129, 300, 0, 64}, 9, 3, 31);
  check_attention_lse<128>({1, 65, 1000, 128}, 32, 8, 32);
}

TEST_CASE("FTP scores from the attention kernel's lse equal the scorer's own two-pass scores" * ftp_test::needs_gpu()) {
  for (const int d : {64, 128}) {
    CAPTURE(d);
    const std::vector<int> lengths = {2000, 77, 1, 513};
    const ftp::BatchLayout layout = layout_of(lengths);
    const int T = layout.num_tokens(), B = layout.num_seqs();
    const int Hq = d == 64 ? 9 : 32, Hkv = d == 64 ? 3 : 8;
    std::mt19937 rng(40 + d);
    const FusedQkv qkv(T, Hq, Hkv, d, rng);
    DeviceArray<int> d_cu(layout.cu_seqlens);
    DeviceArray<bf16> out(static_cast<std::size_t>(T) * Hq * d);
    DeviceArray<float> lse(static_cast<std::size_t>(T) * Hq);
    if (d == 64) launch<64>(qkv, out.get(), lse.get(), d_cu.get(), B, T); else launch<128>(qkv, out.get(), lse.get(), d_cu.get(), B, T);

    const ftp::Config config(100, 50, 0, 0.9);
    ftp::Pruner<bf16, ftp::LastQueriesAttention, ftp::CumulativeEta, ftp::NoFfn> pruner(config, {T, B, 8, 8, Hq, Hkv, d});
    DeviceArray<bf16> residual(static_cast<std::size_t>(T) * 8);
    pruner.plan(layout.cu_seqlens.data(), B, T, nullptr);
    auto scores = [&](bool with_lse) {
      cuda_ok(cudaMemset(const_cast<float*>(pruner.scores()), 0xFF, sizeof(float) * T), "poison scores");
      ftp::AttentionView<bf16> view{qkv.q(), qkv.stride, qkv.k(), qkv.stride, Hq, Hkv, d};
      if (with_lse) {
        view.lse = lse.get();
        view.lse_token_stride = Hq;
        view.lse_head_stride = 1;
      }
      pruner.run(0, view, {residual.get(), 8, 8}, {}, nullptr);
      cuda_ok(cudaDeviceSynchronize(), "sync");
      std::vector<float> s(T);
      cuda_ok(cudaMemcpy(s.data(), pruner.scores(), sizeof(float) * T, cudaMemcpyDeviceToHost), "scores");
      return s;
    };
    const std::vector<float> two_pass = scores(false);
    const std::vector<float> one_pass = scores(true);
    const double error = relative_error(one_pass, two_pass);
    CAPTURE(error);
    CHECK(error < 1e-5);
    MESSAGE("scores with the attention kernel's lse vs two passes, d=", d, ": relative error ", error);
  }
}
