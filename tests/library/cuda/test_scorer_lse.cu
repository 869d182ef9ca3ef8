// LastQueriesAttention with the engine's row log-sum-exp (AttentionView::lse): one pass over the
// keys instead of two, same scores. Also the S-tile fallback of pass 2 for 16-bit inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ftp/ftp.hpp"
#include "ftp/host/last_queries_attention.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

/// Exact row lse (double) of every scored query row, written into a [T, Hq] (or [Hq, T]) buffer whose
/// other entries are NaN, so reading a row the scorer must not read spoils the result.
std::vector<float> exact_lse(const ftp::BatchLayout& layout, const std::vector<float>& q, std::int64_t q_stride,
                             const std::vector<float>& k, std::int64_t k_stride, int Hq, int Hkv, int d, int N,
                             std::int64_t token_stride, std::int64_t head_stride, ftp::LseBase base, double shift) {
  const int T_ = layout.num_tokens();
  std::vector<float> lse(static_cast<std::size_t>(std::max(T_, 1)) * Hq, std::numeric_limits<float>::quiet_NaN());
  for (int b = 0; b < layout.num_seqs(); ++b) {
    const int start = layout.cu_seqlens[b], L = layout.length(b), n = std::min(N, L);
    for (int h = 0; h < Hq; ++h) {
      for (int i = 0; i < n; ++i) {
        const int pos = L - n + i;
        double value = exact_row_lse(&q[(start + pos) * q_stride + h * d], &k[start * k_stride + (h / (Hq / Hkv)) * d],
                                     k_stride, pos + 1, d) + shift;
        if (base == ftp::LseBase::kLog2) value /= std::log(2.0);
        lse[(start + pos) * token_stride + h * head_stride] = static_cast<float>(value);
      }
    }
  }
  return lse;
}

struct LseCase {
  std::vector<int> lengths;
  int Hq, Hkv, d, N;
  bool token_major;  // [T, Hq] (FlashInfer-like) or [Hq, T] (FlashAttention varlen)
  ftp::LseBase base;
  double shift;      // added to every lse: scores scale by exp(-shift)
  bool give_lse = true;  // false: the scorer computes the lse itself (pass 1)
};

template <class T>
void check_engine_lse(const LseCase& c, unsigned seed) {
  CAPTURE(std::string(ftp::detail::ElementTraits<T>::name));
  CAPTURE(c.Hq);
  CAPTURE(c.d);
  CAPTURE(c.token_major);
  CAPTURE(c.shift);
  CAPTURE(seed);
  const ftp::BatchLayout layout = layout_of(c.lengths);
  const int T_ = layout.num_tokens(), B = layout.num_seqs();
  const std::int64_t q_stride = static_cast<std::int64_t>(c.Hq) * c.d, k_stride = static_cast<std::int64_t>(c.Hkv) * c.d;
  std::mt19937 rng(seed);
  RandomTensor<T> q(static_cast<std::size_t>(std::max(T_, 1)) * q_stride, rng, -2.0f, 2.0f);
  RandomTensor<T> k(static_cast<std::size_t>(std::max(T_, 1)) * k_stride, rng, -2.0f, 2.0f);
  const std::int64_t token_stride = c.token_major ? c.Hq : 1;
  const std::int64_t head_stride = c.token_major ? 1 : std::max(T_, 1);
  const std::vector<float> lse = exact_lse(layout, q.host, q_stride, k.host, k_stride, c.Hq, c.Hkv, c.d, c.N,
                                           token_stride, head_stride, c.base, c.shift);
  DeviceArray<T> d_q(q.device_values), d_k(k.device_values);
  DeviceArray<float> d_lse(lse);

  const ftp::Config config(100, c.N, 0, 0.9);
  ftp::Pruner<T, ftp::LastQueriesAttention, ftp::CumulativeEta, ftp::NoFfn> pruner(config, {T_, B, 8, 8, c.Hq, c.Hkv, c.d});
  DeviceArray<T> residual(static_cast<std::size_t>(std::max(T_, 1)) * 8);
  pruner.plan(layout.cu_seqlens.data(), B, T_, nullptr);
  cuda_ok(cudaMemset(const_cast<float*>(pruner.scores()), 0xFF, sizeof(float) * std::max(T_, 1)), "poison scores");
  ftp::AttentionView<T> view{d_q.get(), q_stride, d_k.get(), k_stride, c.Hq, c.Hkv, c.d};
  if (c.give_lse) {
    view.lse = d_lse.get();
    view.lse_token_stride = token_stride;
    view.lse_head_stride = head_stride;
    view.lse_base = c.base;
  }
  pruner.run(0, view, {residual.get(), 8, 8}, {}, nullptr);
  cuda_ok(cudaDeviceSynchronize(), "sync");
  std::vector<float> got(T_);
  cuda_ok(cudaMemcpy(got.data(), pruner.scores(), sizeof(float) * T_, cudaMemcpyDeviceToHost), "scores");

  // The host reference with the same lse, and (for shift 0) without any: all three agree.
  ftp::host::AttentionInputs inputs{q.host.data(), q_stride, k.host.data(), k_stride, c.Hq, c.Hkv, c.d};
  const std::vector<float> own = ftp::host::LastQueriesAttention{}.score(0, layout, inputs, config, 16);
  inputs.lse = lse.data();
  inputs.lse_token_stride = token_stride;
  inputs.lse_head_stride = head_stride;
  inputs.lse_base = c.base;
  const std::vector<float> want = ftp::host::LastQueriesAttention{}.score(0, layout, inputs, config, 16);
  const double error = relative_error(got, want);
  CAPTURE(error);
  CHECK(error < 1e-5);
  std::vector<float> own_scaled(own);
  for (float& v : own_scaled) v = static_cast<float>(v * std::exp(-c.shift));
  CHECK(relative_error(want, own_scaled) < 2e-6);  // the engine lse really replaces the normalizer
  MESSAGE("LastQueriesAttention with engine lse ", std::string(ftp::detail::ElementTraits<T>::name), " Hq=", c.Hq,
          " Hkv=", c.Hkv, " d=", c.d, " T=", T_, (c.token_major ? " [T,Hq]" : " [Hq,T]"),
          (c.base == ftp::LseBase::kLog2 ? " log2" : " ln"), " shift=", c.shift, ": relative error ", error);
}

}  // namespace

TEST_CASE("LastQueriesAttention with the engine's lse equals the host reference (one pass over the keys)" *
          ftp_test::needs_gpu()) {
  const std::vector<int> ragged = {1000, 1, 0, 63, 64, 65, 129, 37};
  check_engine_lse<__nv_bfloat16>({ragged, 32, 8, 128, 50, true, ftp::LseBase::kNatural, 0.0}, 21);
  check_engine_lse<__nv_bfloat16>({ragged, 32, 8, 128, 50, false, ftp::LseBase::kLog2, 0.0}, 22);
  check_engine_lse<__half>({ragged, 9, 3, 64, 50, true, ftp::LseBase::kNatural, 0.0}, 23);
  check_engine_lse<float>({ragged, 8, 2, 256, 50, false, ftp::LseBase::kNatural, 0.0}, 24);
  check_engine_lse<__nv_bfloat16>({{4097}, 32, 8, 128, 50, true, ftp::LseBase::kNatural, 0.0}, 25);
}

TEST_CASE("LastQueriesAttention uses the engine's lse as given: lse + ln 2 halves every score" * ftp_test::needs_gpu()) {
  check_engine_lse<__nv_bfloat16>({{700, 33}, 32, 8, 128, 50, true, ftp::LseBase::kNatural, std::log(2.0)}, 26);
  check_engine_lse<float>({{700, 33}, 9, 3, 64, 50, false, ftp::LseBase::kLog2, std::log(2.0)}, 27);
}

TEST_CASE("LastQueriesAttention 16-bit falls back to the S-tile pass 2 when a group's rows exceed shared memory" *
          ftp_test::needs_gpu()) {
  // G * N = 8 * 64 = 512 rows of d = 256: 256 KiB of queries, more than one CTA may hold.
  check_engine_lse<__nv_bfloat16>({{900, 70}, 8, 1, 256, 64, true, ftp::LseBase::kNatural, 0.0}, 28);
  check_engine_lse<__half>({{900, 70}, 8, 1, 256, 64, true, ftp::LseBase::kNatural, 0.0, false}, 29);
}
