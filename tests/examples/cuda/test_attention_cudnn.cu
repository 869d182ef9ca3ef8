// Device tests of the runner's cuDNN prefill attention (examples/llama3/cudnn_attention.hpp,
// AttentionKernel::Cudnn): its output against the naive fp32 GPU reference of attention_prefill.cuh,
// its row log-sum-exp against the FA2 kernel's (the layout and base FTP's scorer reuses), on one
// sequence in the runner's fused QKV layout, random bf16 inputs. Outputs and lse are poisoned
// (0xFF bytes, NaN) first and carry poisoned guard rows past T that must stay untouched.
//
// Where it runs: a build with FTP_WITH_CUDNN, libcudnn.so.9 loadable (LD_LIBRARY_PATH or
// FTP_CUDNN_LIBRARY) and a GPU. Otherwise each case reports itself skipped with the reason
// (ftp_test::skip_at_runtime). cuDNN loaded but without an engine for a shape FAILS the case.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "runtime_skip.hpp"
#include "attention_checks.hpp"
#include "gpu_guard.hpp"
#include "llama3/cudnn_attention.hpp"
#include "llama3/kernels/attention_prefill.cuh"
#include "llama3/kernels/host_oracle.hpp"
#include "test_util.cuh"

namespace {

namespace lk = llama3::kernels;
namespace oracle = llama3::host_oracle;
using bf16 = lk::bf16;
using ftp_test::cuda_ok;
using ftp_test::DeviceArray;

constexpr int kGuardRows = 3;

/// True when the cuDNN kernel can run here; else reports the case skipped and returns false.
bool cudnn_runs_here() {
#if defined(FTP_HAVE_CUDNN)
  if (!llama3::CudnnAttention::available()) {
    ftp_test::skip_at_runtime("cuDNN attention built but not loadable: " + llama3::CudnnAttention::unavailable_reason());
    return false;
  }
  return true;
#else
  ftp_test::skip_at_runtime("cuDNN attention not built (FTP_WITH_CUDNN found no cudnn.h or cudnn-frontend headers)");
  return false;
#endif
}

#if defined(FTP_HAVE_CUDNN)
/// One case: T tokens of a fused [T, (Hq + 2 Hkv) d] buffer; cuDNN against the fp32 reference
/// (out) and the FA2 kernel (lse).
template <int D>
void check_cudnn(llama3::CudnnAttention& attn, int T, int Hq, int Hkv, unsigned seed) {
  CAPTURE(T); CAPTURE(D); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(seed);
  std::mt19937 rng(seed);
  const std::int64_t QKV = static_cast<std::int64_t>(Hq + 2 * Hkv) * D;
  std::vector<std::uint16_t> h_qkv(static_cast<std::size_t>(T) * QKV);
  std::normal_distribution<float> dist(0.f, 1.f);
  for (auto& x : h_qkv) x = oracle::float_to_bf16(dist(rng));
  DeviceArray<std::uint16_t> d_qkv(h_qkv);
  const bf16* q = reinterpret_cast<const bf16*>(d_qkv.get());
  const bf16* k = q + static_cast<std::int64_t>(Hq) * D;
  const bf16* v = q + static_cast<std::int64_t>(Hq + Hkv) * D;
  DeviceArray<int> d_cu(std::vector<int>{0, T});

  const std::size_t n_out = static_cast<std::size_t>(T) * Hq * D;
  const std::size_t n_lse = static_cast<std::size_t>(T) * Hq;
  DeviceArray<std::uint16_t> d_out(n_out + static_cast<std::size_t>(kGuardRows) * Hq * D);
  DeviceArray<float> d_lse(n_lse + static_cast<std::size_t>(kGuardRows) * Hq);
  DeviceArray<std::uint16_t> d_fa2(n_out);
  DeviceArray<float> d_fa2_lse(n_lse);
  DeviceArray<float> d_ref(n_out);
  d_out.poison();
  d_lse.poison();
  d_fa2.poison();
  d_fa2_lse.poison();
  d_ref.poison();

  attn.run(q, QKV, k, v, QKV, reinterpret_cast<bf16*>(d_out.get()), d_lse.get(), T, Hq, Hkv, D, nullptr);
  lk::launch_attention_prefill<D>(q, QKV, k, QKV, v, QKV, reinterpret_cast<bf16*>(d_fa2.get()), d_cu.get(), 1, T, Hq,
                                  Hkv, nullptr, d_fa2_lse.get());
  lk::launch_attention_prefill_reference<D>(q, QKV, k, QKV, v, QKV, d_ref.get(), d_cu.get(), 1, T, Hq, Hkv, nullptr);
  cuda_ok(cudaDeviceSynchronize(), "sync");
  const bool lse_direct = attn.lse_direct();
  CAPTURE(lse_direct);

  const auto out_bits = d_out.download();
  const auto lse = d_lse.download();
  const auto ref = d_ref.download();
  const auto fa2_lse = d_fa2_lse.download();

  // ---- out: finite, close to the fp32 reference (the sm90 test's bounds) ----
  ftp_test::check_bf16_output(out_bits, ref, n_out);

  // ---- guard rows past T: never written ----
  ftp_test::check_guards_untouched(out_bits, n_out, lse, n_lse);

  // ---- lse: [T, Hq], natural log, as the FA2 kernel writes it ----
  std::size_t lse_nonfinite = 0, lse_bad = 0, lse_first_bad = n_lse;
  double lse_max_abs = 0;
  for (std::size_t i = 0; i < n_lse; ++i) {
    if (!std::isfinite(lse[i]) || !std::isfinite(fa2_lse[i])) {
      ++lse_nonfinite;
      continue;
    }
    const double e = std::abs(static_cast<double>(lse[i]) - fa2_lse[i]);
    lse_max_abs = std::max(lse_max_abs, e);
    if (e > 1e-3 * std::max(1.0, std::abs(static_cast<double>(fa2_lse[i])))) {  // a wrong row or base is off by O(1)
      if (lse_bad++ == 0) lse_first_bad = i;
    }
  }
  CAPTURE(lse_max_abs); CAPTURE(lse_first_bad);
  CHECK(lse_nonfinite == 0);
  CHECK(lse_bad == 0);
}
#endif

}  // namespace

TEST_CASE("cudnn prefill attention, T 1/7/300/4096, d 64 and 128, GQA 12/2 and 14/2: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!cudnn_runs_here()) return;
#if defined(FTP_HAVE_CUDNN)
  llama3::CudnnAttention attn;
  unsigned seed = 9400;
  for (int T : {1, 7, 300, ftp_test::scaled(4096)}) {
    for (const auto& heads : {std::pair<int, int>{12, 2}, std::pair<int, int>{14, 2}}) {
      check_cudnn<64>(attn, T, heads.first, heads.second, seed++);
      check_cudnn<128>(attn, T, heads.first, heads.second, seed++);
    }
  }
  CHECK(attn.cached_graphs() == 16);  // one graph per shape, built once
  // The same shape again reuses its graph.
  check_cudnn<128>(attn, 300, 12, 2, seed++);
  CHECK(attn.cached_graphs() == 16);
#endif
}

TEST_CASE("cudnn prefill attention: T = 0 does nothing, Hq not a multiple of Hkv is rejected" * ftp_test::needs_gpu()) {
  if (!cudnn_runs_here()) return;
#if defined(FTP_HAVE_CUDNN)
  llama3::CudnnAttention attn;
  attn.run(nullptr, 0, nullptr, nullptr, 0, nullptr, nullptr, 0, 12, 2, 128, nullptr);
  CHECK(attn.cached_graphs() == 0);
  CHECK_THROWS_AS(attn.prepare(16, 12, 5, 128, 1024, 1024), std::invalid_argument);
#endif
}
