// Device tests of the Hopper (wgmma) prefill attention kernel, examples/llama3/kernels/
// attention_prefill_sm90.cuh: its output against the naive fp32 GPU reference of
// attention_prefill.cuh and against the FA2 kernel, its log-sum-exp against a double-precision GPU
// recomputation, on fresh random inputs per case. Outputs are poisoned with 0xFF bytes (NaN) before
// every launch and carry poisoned guard rows past T that must stay untouched.
//
// Where the kernel runs: on a compute capability 9.0 GPU attention_prefill_sm90_available() must be
// true (the build adds sm_90a code, cmake/ftp_sm90a.cmake), else every case FAILS; on other GPUs
// the cases print a MESSAGE and check only that the launcher refuses; without a GPU they are skipped.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "runtime_skip.hpp"
#include "attention_checks.hpp"
#include "gpu_guard.hpp"
#include "llama3/kernels/attention_prefill.cuh"
#include "llama3/kernels/attention_prefill_sm90.cuh"
#include "llama3/kernels/host_oracle.hpp"
#include "test_util.cuh"

namespace {

namespace lk = llama3::kernels;
namespace oracle = llama3::host_oracle;
using bf16 = lk::bf16;
using ftp_test::cuda_ok;
using ftp_test::DeviceArray;

constexpr int kGuardRows = 3;  // poisoned tokens past T in out and lse: must stay poison

/// True when the wgmma kernel must run on this GPU (compute capability 9.0), and then FAILS the case
/// if it is not available. On other GPUs it checks only that the kernel refuses, reports the case
/// skipped (ftp_test::skip_at_runtime: the kernel's results were not observed) and returns false.
bool sm90_kernel_runs_here() {
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  const bool available = lk::attention_prefill_sm90_available();
  if (prop.major == 9 && prop.minor == 0) {
    REQUIRE_MESSAGE(available, "compute capability 9.0 GPU but no sm_90a image of the wgmma attention kernel: "
                               "the target must be built with -gencode arch=compute_90a,code=sm_90a "
                               "(cmake/ftp_sm90a.cmake)");
    return true;
  }
  CHECK_FALSE(available);
  ftp_test::skip_at_runtime(std::string("GPU ") + prop.name + " is sm_" + std::to_string(prop.major) +
                            std::to_string(prop.minor) +
                            ", not sm_90: the wgmma attention kernel is not run here (only its refusal is checked)");
  return false;
}

/// The FA2 launcher in the argument order of the sm90 one (lse after out).
template <int D>
void launch_fa2(const bf16* q, std::int64_t qs, const bf16* k, std::int64_t ks, const bf16* v, std::int64_t vs,
                bf16* out, float* lse, const int* cu, int B, int T, int Hq, int Hkv) {
  lk::launch_attention_prefill<D>(q, qs, k, ks, v, vs, out, cu, B, T, Hq, Hkv, nullptr, lse);
}

// lse_reference_kernel: lse[t, h] = ln sum_{j <= t in t's sequence} exp(q_t . k_j / sqrt(d)) in
// double precision, one thread per (token, query head), online over the keys. lse [T, Hq].
__global__ void lse_reference_kernel(const bf16* q, std::int64_t qs, const bf16* k, std::int64_t ks,
                                     const int* cu_seqlens, int B, int T, int Hq, int group, int D, double* lse) {
  const std::int64_t idx = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x;
  if (idx >= static_cast<std::int64_t>(T) * Hq) return;
  const int t = static_cast<int>(idx / Hq);
  const int h = static_cast<int>(idx % Hq);
  int b = 0;
  while (b + 1 < B && cu_seqlens[b + 1] <= t) ++b;
  const int start = cu_seqlens[b];
  const double scale = 1.0 / sqrt(static_cast<double>(D));
  double m = -INFINITY, l = 0.0;
  for (int j = start; j <= t; ++j) {
    double s = 0.0;
    for (int e = 0; e < D; ++e)
      s += static_cast<double>(__bfloat162float(q[t * qs + h * D + e])) *
           static_cast<double>(__bfloat162float(k[j * ks + (h / group) * D + e]));
    s *= scale;
    const double m_new = fmax(m, s);
    l = l * exp(m - m_new) + exp(s - m_new);
    m = m_new;
  }
  lse[idx] = m + log(l);
}

/// q, k, v of one case in device memory: separate [T, H, d] tensors whose rows carry padding, or
/// views into one fused [T, Hq + 2 Hkv, d] buffer (also padded), as an engine's QKV projection gives.
struct Inputs {
  std::int64_t qs = 0, ks = 0, vs = 0;
  DeviceArray<std::uint16_t> q_buf, k_buf, v_buf;
  const bf16* q = nullptr;
  const bf16* k = nullptr;
  const bf16* v = nullptr;

  Inputs(int T, int Hq, int Hkv, int D, bool fused, std::mt19937& rng) {
    constexpr int kPad = 8;  // extra elements per row: strides are not heads * d
    auto random_bits = [&](std::size_t n) {
      std::normal_distribution<float> dist(0.f, 1.f);
      std::vector<std::uint16_t> h(n);
      for (auto& x : h) x = oracle::float_to_bf16(dist(rng));
      return h;
    };
    if (fused) {
      qs = ks = vs = static_cast<std::int64_t>(Hq + 2 * Hkv) * D + kPad;
      q_buf = DeviceArray<std::uint16_t>(random_bits(static_cast<std::size_t>(T) * qs));
      q = reinterpret_cast<const bf16*>(q_buf.get());
      k = q + static_cast<std::int64_t>(Hq) * D;
      v = q + static_cast<std::int64_t>(Hq + Hkv) * D;
    } else {
      qs = static_cast<std::int64_t>(Hq) * D + kPad;
      ks = static_cast<std::int64_t>(Hkv) * D + 2 * kPad;
      vs = static_cast<std::int64_t>(Hkv) * D + 3 * kPad;
      q_buf = DeviceArray<std::uint16_t>(random_bits(static_cast<std::size_t>(T) * qs));
      k_buf = DeviceArray<std::uint16_t>(random_bits(static_cast<std::size_t>(T) * ks));
      v_buf = DeviceArray<std::uint16_t>(random_bits(static_cast<std::size_t>(T) * vs));
      q = reinterpret_cast<const bf16*>(q_buf.get());
      k = reinterpret_cast<const bf16*>(k_buf.get());
      v = reinterpret_cast<const bf16*>(v_buf.get());
    }
  }
};

std::vector<float> bf16_to_floats(const std::vector<std::uint16_t>& bits, std::size_t n) {
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = oracle::bf16_to_float(bits[i]);
  return f;
}

struct Case {
  std::vector<int> lens;
  int Hq, Hkv;
  bool fused;
};

/// Runs the wgmma kernel on one case and checks out against the fp32 reference, lse against the
/// double recomputation, the guard rows, and that lse = nullptr leaves out bit-identical.
template <int D>
void check_against_reference(const Case& c, unsigned seed) {
  const int B = static_cast<int>(c.lens.size());
  std::vector<int> cu(B + 1, 0);
  for (int b = 0; b < B; ++b) cu[b + 1] = cu[b] + c.lens[b];
  const int T = cu[B], Hq = c.Hq, Hkv = c.Hkv;
  std::string lens;
  for (int L : c.lens) lens += std::to_string(L) + " ";
  CAPTURE(lens); CAPTURE(D); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(c.fused); CAPTURE(seed);

  std::mt19937 rng(seed);
  const Inputs in(T, Hq, Hkv, D, c.fused, rng);
  DeviceArray<int> d_cu(cu);
  const std::size_t n_out = static_cast<std::size_t>(T) * Hq * D;
  const std::size_t n_lse = static_cast<std::size_t>(T) * Hq;
  DeviceArray<std::uint16_t> d_out(n_out + static_cast<std::size_t>(kGuardRows) * Hq * D);
  DeviceArray<std::uint16_t> d_out_nolse(d_out.size());
  DeviceArray<float> d_lse(n_lse + static_cast<std::size_t>(kGuardRows) * Hq);
  DeviceArray<float> d_ref(n_out);
  DeviceArray<double> d_lse_ref(n_lse);
  d_out.poison();
  d_out_nolse.poison();
  d_lse.poison();
  d_ref.poison();
  auto* out = reinterpret_cast<bf16*>(d_out.get());

  lk::launch_attention_prefill_sm90<D>(in.q, in.qs, in.k, in.ks, in.v, in.vs, out, d_lse.get(), d_cu.get(), B, T, Hq,
                                       Hkv, nullptr);
  lk::launch_attention_prefill_sm90<D>(in.q, in.qs, in.k, in.ks, in.v, in.vs,
                                       reinterpret_cast<bf16*>(d_out_nolse.get()), nullptr, d_cu.get(), B, T, Hq, Hkv,
                                       nullptr);
  lk::launch_attention_prefill_reference<D>(in.q, in.qs, in.k, in.ks, in.v, in.vs, d_ref.get(), d_cu.get(), B, T, Hq,
                                            Hkv, nullptr);
  const int threads = 128;
  lse_reference_kernel<<<static_cast<unsigned>((n_lse + threads - 1) / threads), threads>>>(
      in.q, in.qs, in.k, in.ks, d_cu.get(), B, T, Hq, Hq / Hkv, D, d_lse_ref.get());
  cuda_ok(cudaGetLastError(), "lse_reference_kernel launch");
  cuda_ok(cudaDeviceSynchronize(), "sync");

  const auto out_bits = d_out.download();
  const auto nolse_bits = d_out_nolse.download();
  const auto ref = d_ref.download();
  const auto lse = d_lse.download();
  const auto lse_ref = d_lse_ref.download();

  // ---- out: every element written and finite, close to the fp32 reference ----
  ftp_test::check_bf16_output(out_bits, ref, n_out);

  // ---- guard rows past T: never written ----
  ftp_test::check_guards_untouched(out_bits, n_out, lse, n_lse);

  // ---- lse = nullptr: out bit-identical ----
  CHECK(std::memcmp(out_bits.data(), nolse_bits.data(), out_bits.size() * sizeof(std::uint16_t)) == 0);

  // ---- lse against the double recomputation ----
  std::size_t lse_nonfinite = 0, lse_bad = 0, lse_first_bad = n_lse;
  double lnum = 0, lden = 0, lse_max_abs = 0;
  for (std::size_t i = 0; i < n_lse; ++i) {
    if (!std::isfinite(lse[i])) {
      ++lse_nonfinite;
      continue;
    }
    const double e = std::abs(static_cast<double>(lse[i]) - lse_ref[i]);
    lnum += e * e;
    lden += lse_ref[i] * lse_ref[i];
    lse_max_abs = std::max(lse_max_abs, e);
    if (e > 1e-4 * std::max(1.0, std::abs(lse_ref[i]))) {  // a wrong row is off by O(1)
      if (lse_bad++ == 0) lse_first_bad = i;
    }
  }
  const double lse_rel = lden > 0 ? std::sqrt(lnum / lden) : std::sqrt(lnum);
  CAPTURE(lse_rel); CAPTURE(lse_max_abs); CAPTURE(lse_first_bad);
  CHECK(lse_nonfinite == 0);
  CHECK(lse_rel < 1e-5);
  CHECK(lse_bad == 0);
}

/// The wgmma kernel against the FA2 kernel on the same inputs: equal within bf16 tolerance.
template <int D>
void check_against_fa2(const Case& c, unsigned seed) {
  const int B = static_cast<int>(c.lens.size());
  std::vector<int> cu(B + 1, 0);
  for (int b = 0; b < B; ++b) cu[b + 1] = cu[b] + c.lens[b];
  const int T = cu[B], Hq = c.Hq, Hkv = c.Hkv;
  std::string lens;
  for (int L : c.lens) lens += std::to_string(L) + " ";
  CAPTURE(lens); CAPTURE(D); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(c.fused); CAPTURE(seed);

  std::mt19937 rng(seed);
  const Inputs in(T, Hq, Hkv, D, c.fused, rng);
  DeviceArray<int> d_cu(cu);
  const std::size_t n_out = static_cast<std::size_t>(T) * Hq * D;
  DeviceArray<std::uint16_t> d_sm90(n_out), d_fa2(n_out);
  d_sm90.poison();
  d_fa2.poison();
  lk::launch_attention_prefill_sm90<D>(in.q, in.qs, in.k, in.ks, in.v, in.vs, reinterpret_cast<bf16*>(d_sm90.get()),
                                       nullptr, d_cu.get(), B, T, Hq, Hkv, nullptr);
  launch_fa2<D>(in.q, in.qs, in.k, in.ks, in.v, in.vs, reinterpret_cast<bf16*>(d_fa2.get()), nullptr, d_cu.get(), B, T,
                Hq, Hkv);
  const auto a = bf16_to_floats(d_sm90.download(), n_out);
  const auto b = bf16_to_floats(d_fa2.download(), n_out);
  std::size_t nonfinite = 0, bad = 0;
  double num = 0, den = 0, max_abs = 0;
  for (std::size_t i = 0; i < n_out; ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) {
      ++nonfinite;
      continue;
    }
    const double e = std::abs(static_cast<double>(a[i]) - b[i]);
    num += e * e;
    den += static_cast<double>(b[i]) * b[i];
    max_abs = std::max(max_abs, e);
    bad += e > 1.5e-2 * std::abs(b[i]) + 1.5e-2;  // both carry bf16 output and bf16 P rounding
  }
  const double rel = den > 0 ? std::sqrt(num / den) : std::sqrt(num);
  CAPTURE(rel); CAPTURE(max_abs);
  CHECK(nonfinite == 0);
  CHECK(rel < 1e-2);
  CHECK(bad == 0);
}

// Under the sanitizers (FTP_SANITIZE=1) the two longest shrink to 125 and 512: still several tiles.
const std::vector<int> kRaggedLens = {1, 7, 63, 64, 65, 127, 128, 129, 300, ftp_test::scaled(1000), ftp_test::scaled(4096)};

}  // namespace

TEST_CASE("sm90 prefill attention, d=128 GQA 32/8, ragged batch 1..4096, padded strides: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  check_against_reference<128>({kRaggedLens, 32, 8, false}, 9000);
}

TEST_CASE("sm90 prefill attention, d=128 GQA 9/3, ragged batch 1..4096, fused qkv: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  check_against_reference<128>({kRaggedLens, 9, 3, true}, 9001);
}

TEST_CASE("sm90 prefill attention, d=64 GQA 9/3, ragged batch 1..4096, fused qkv: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  check_against_reference<64>({kRaggedLens, 9, 3, true}, 9002);
}

TEST_CASE("sm90 prefill attention, d=64 GQA 32/8, ragged batch 1..4096, padded strides: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  check_against_reference<64>({kRaggedLens, 32, 8, false}, 9003);
}

TEST_CASE("sm90 prefill attention, single sequences of 1, 129, 2048 and an empty one: out and lse match references" *
          ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  unsigned seed = 9010;
  for (int L : {1, 129, ftp_test::scaled(2048)}) {
    check_against_reference<128>({{L}, 32, 8, false}, seed++);
    check_against_reference<64>({{L}, 9, 3, false}, seed++);
  }
  check_against_reference<128>({{0, 200, 0, 5}, 4, 1, true}, seed++);  // empty sequences, group of 4, one KV head
}

TEST_CASE("sm90 prefill attention equals the FA2 kernel within bf16 tolerance" * ftp_test::needs_gpu()) {
  if (!sm90_kernel_runs_here()) return;
  check_against_fa2<128>({{ftp_test::scaled(3000), 0, 129, 1, 64, ftp_test::scaled(1000)}, 32, 8, false}, 9100);
  check_against_fa2<128>({{ftp_test::scaled(3000), 0, 129, 1, 64, ftp_test::scaled(1000)}, 9, 3, true}, 9101);
  check_against_fa2<64>({{ftp_test::scaled(3000), 0, 129, 1, 64, ftp_test::scaled(1000)}, 9, 3, true}, 9102);
  check_against_fa2<64>({{ftp_test::scaled(3000), 0, 129, 1, 64, ftp_test::scaled(1000)}, 32, 8, false}, 9103);
}

TEST_CASE("sm90 prefill attention refuses to run where its sm_90a image is not available" * ftp_test::needs_gpu()) {
  if (lk::attention_prefill_sm90_available()) {
    MESSAGE("the wgmma attention kernel is available on this GPU (nothing to refuse)");
    return;
  }
  cudaDeviceProp prop{};
  cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  CHECK_FALSE((prop.major == 9 && prop.minor == 0));  // a cc 9.0 GPU must have it
  DeviceArray<int> cu(std::vector<int>{0, 4});
  DeviceArray<std::uint16_t> qkv(4 * 3 * 64), out(4 * 64);
  auto* x = reinterpret_cast<bf16*>(qkv.get());
  CHECK_THROWS_AS(lk::launch_attention_prefill_sm90<64>(x, 192, x + 64, 192, x + 128, 192,
                                                        reinterpret_cast<bf16*>(out.get()), nullptr, cu.get(), 1, 4, 1,
                                                        1, nullptr),
                  std::runtime_error);
}

TEST_CASE("sm90 prefill attention validates its arguments before touching the device") {
  // Runs without a GPU: validation and the empty-batch return come before any CUDA call.
  CHECK_NOTHROW(lk::launch_attention_prefill_sm90<128>(nullptr, 4096, nullptr, 1024, nullptr, 1024, nullptr, nullptr,
                                                       nullptr, 0, 0, 32, 8, nullptr));
  CHECK_THROWS_AS(lk::launch_attention_prefill_sm90<128>(nullptr, 4096, nullptr, 1024, nullptr, 1024, nullptr, nullptr,
                                                         nullptr, 2, 0, 32, 7, nullptr),
                  std::invalid_argument);
  CHECK_THROWS_AS(lk::launch_attention_prefill_sm90<64>(nullptr, 577, nullptr, 192, nullptr, 192, nullptr, nullptr,
                                                        nullptr, 1, 0, 9, 3, nullptr),
                  std::invalid_argument);  // stride not a multiple of 8
  CHECK_THROWS_AS(lk::launch_attention_prefill_sm90<64>(nullptr, 576, nullptr, 192, nullptr, 192, nullptr, nullptr,
                                                        nullptr, 1, 5, 9, 3, nullptr),
                  std::invalid_argument);  // null pointers with work to do
}
