// Device tests of the Llama runner's kernels (examples/llama3/kernels/): each kernel on seeded
// random data against the plain CPU loops of host_oracle.hpp. Outputs are poisoned with 0xFF bytes
// (NaN for float/bf16) before every launch, so an element the kernel failed to write shows up.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gpu_guard.hpp"
#include "test_util.cuh"
#include "llama3/kernels/attention_decode.cuh"
#include "llama3/kernels/attention_prefill.cuh"
#include "llama3/kernels/embedding.cuh"
#include "llama3/kernels/host_oracle.hpp"
#include "llama3/kernels/rmsnorm.cuh"
#include "llama3/kernels/rope.cuh"
#include "llama3/kernels/sampling.cuh"

namespace {

namespace lk = llama3::kernels;
namespace oracle = llama3::host_oracle;
using bf16 = lk::bf16;

// ---- small host/device helpers -------------------------------------------------------------------

/// Owning device buffer of n elements (n may be 0: then no allocation, data() is null).
template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(std::size_t n = 0) : n_(n) {
    if (n_ > 0) LLAMA3_CUDA_CHECK(cudaMalloc(&ptr_, n_ * sizeof(T)));
  }
  explicit DeviceBuffer(const std::vector<T>& h) : DeviceBuffer(h.size()) { upload(h); }
  ~DeviceBuffer() { if (ptr_) cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* data() const { return ptr_; }
  std::size_t size() const { return n_; }
  void upload(const std::vector<T>& h) {
    REQUIRE(h.size() == n_);
    if (n_ > 0) LLAMA3_CUDA_CHECK(cudaMemcpy(ptr_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    if (n_ > 0) LLAMA3_CUDA_CHECK(cudaMemcpy(h.data(), ptr_, n_ * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }
  /// All bytes 0xFF: NaN for fp32 and bf16, -1 for int.
  void poison() {
    if (n_ > 0) LLAMA3_CUDA_CHECK(cudaMemset(ptr_, 0xFF, n_ * sizeof(T)));
  }

 private:
  T* ptr_ = nullptr;
  std::size_t n_ = 0;
};

// bf16 moves between host and device as its bit pattern.
inline bf16* bf(const DeviceBuffer<std::uint16_t>& b) { return reinterpret_cast<bf16*>(b.data()); }

std::vector<std::uint16_t> random_bf16(std::size_t n, std::mt19937& rng, float stddev = 1.f) {
  std::normal_distribution<float> dist(0.f, stddev);
  std::vector<std::uint16_t> v(n);
  for (auto& x : v) x = oracle::float_to_bf16(dist(rng));
  return v;
}

std::vector<float> to_float(const std::vector<std::uint16_t>& v) {
  std::vector<float> f(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) f[i] = oracle::bf16_to_float(v[i]);
  return f;
}

/// ||a - b|| / ||b|| (or ||a - b|| when b is all zeros).
template <class A, class B>
double rel_error(const std::vector<A>& a, const std::vector<B>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    const double d = static_cast<double>(a[i]) - static_cast<double>(b[i]);
    num += d * d;
    den += static_cast<double>(b[i]) * b[i];
  }
  return den > 0 ? std::sqrt(num / den) : std::sqrt(num);
}

template <class T>
std::size_t count_nonfinite(const std::vector<T>& v) {
  std::size_t n = 0;
  for (const T& x : v) n += std::isfinite(static_cast<double>(x)) ? 0 : 1;
  return n;
}

/// Runs f(i) for i in [0, n) on all host cores (the CPU oracle of long attention rows is slow).
template <class F>
void parallel_for(int n, F f) {
  const int workers = std::max(1, std::min<int>(n, static_cast<int>(std::thread::hardware_concurrency())));
  std::vector<std::thread> pool;
  for (int w = 0; w < workers; ++w)
    pool.emplace_back([&, w] {
      for (int i = w; i < n; i += workers) f(i);
    });
  for (auto& th : pool) th.join();
}

void sync() { LLAMA3_CUDA_CHECK(cudaDeviceSynchronize()); }

// ---- embedding -----------------------------------------------------------------------------------

template <class TOut>
void check_embedding(int T, int C, int V, unsigned seed) {
  CAPTURE(T); CAPTURE(C); CAPTURE(V); CAPTURE(seed);
  std::mt19937 rng(seed);
  const auto table = random_bf16(static_cast<std::size_t>(V) * C, rng);
  std::uniform_int_distribution<int> pick(0, V - 1);
  std::vector<int> ids(T);
  for (int& id : ids) id = pick(rng);
  if (T > 2) { ids[1] = -3; ids[T - 1] = V; }  // out of range: zero rows, counted
  const int bad_expected = T > 2 ? 2 : 0;
  DeviceBuffer<std::uint16_t> d_table(table);
  DeviceBuffer<int> d_ids(ids), d_bad(std::vector<int>{0});
  DeviceBuffer<TOut> d_out(static_cast<std::size_t>(T) * C);
  d_out.poison();
  lk::launch_embedding<TOut>(bf(d_table), d_ids.data(), d_out.data(), T, C, V, d_bad.data(), nullptr);
  sync();
  const auto ref = oracle::embedding(table, ids, C, V);
  const auto out = d_out.download();
  std::vector<float> got(out.size());
  for (std::size_t i = 0; i < out.size(); ++i) {
    if constexpr (std::is_same_v<TOut, float>) got[i] = out[i];
    else got[i] = __bfloat162float(out[i]);
  }
  CHECK(count_nonfinite(got) == 0);
  CHECK(got == ref);  // a gather is exact
  CHECK(d_bad.download()[0] == bad_expected);
}

TEST_CASE("embedding gathers bf16 rows exactly into fp32 and bf16 residual streams" * ftp_test::needs_gpu()) {
  unsigned seed = 1;
  for (int T : {0, 1, 37, 129, 4096}) {
    for (int C : {8, 576, 4096}) {
      check_embedding<float>(T, C, 1000, seed++);
      check_embedding<bf16>(T, C, 1000, seed++);
    }
  }
  CHECK_THROWS_AS(lk::launch_embedding<float>(nullptr, nullptr, static_cast<float*>(nullptr), 1, 12, 10, nullptr, nullptr),
                  std::invalid_argument);
}

// ---- rmsnorm -------------------------------------------------------------------------------------

template <class TIn, class TW>
void check_rmsnorm(int T, int C, unsigned seed) {
  CAPTURE(T); CAPTURE(C); CAPTURE(seed);
  std::mt19937 rng(seed);
  const float eps = 1e-5f;
  // Inputs drawn as bf16 values so both input types see the same numbers; a per-row scale spreads
  // magnitudes over 1e-2 .. 1e2 (the residual stream's range grows with depth).
  std::vector<float> x(static_cast<std::size_t>(T) * C), w(C);
  std::uniform_real_distribution<float> row_scale(-2.f, 2.f);
  std::normal_distribution<float> nd(0.f, 1.f);
  for (int t = 0; t < T; ++t) {
    const float s = std::pow(10.f, row_scale(rng));
    for (int c = 0; c < C; ++c) x[static_cast<std::size_t>(t) * C + c] = oracle::bf16_to_float(oracle::float_to_bf16(nd(rng) * s));
  }
  for (auto& v : w) v = oracle::bf16_to_float(oracle::float_to_bf16(1.f + 0.1f * nd(rng)));
  auto pack = [](const std::vector<float>& v, auto tag) {
    using T = decltype(tag);
    std::vector<T> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<T, float>) out[i] = v[i];
      else out[i] = __float2bfloat16_rn(v[i]);
    }
    return out;
  };
  DeviceBuffer<TIn> d_x(pack(x, TIn{}));
  DeviceBuffer<TW> d_w(pack(w, TW{}));
  DeviceBuffer<std::uint16_t> d_y(static_cast<std::size_t>(T) * C);
  d_y.poison();
  lk::launch_rmsnorm<TIn, TW>(d_x.data(), d_w.data(), bf(d_y), T, C, eps, nullptr);
  sync();
  const auto y = to_float(d_y.download());
  const auto ref = oracle::rmsnorm(x, w, T, C, eps);
  CHECK(count_nonfinite(y) == 0);
  CHECK(rel_error(y, ref) < 1e-2);
  // Elementwise: one bf16 rounding of an fp32 value, at most one bf16 ulp (2^-7 relative) away.
  std::size_t bad = 0;
  for (std::size_t i = 0; i < y.size(); ++i) bad += std::abs(y[i] - ref[i]) > std::ldexp(std::abs(ref[i]), -7) + 1e-30;
  CHECK(bad == 0);
}

TEST_CASE("rmsnorm matches the CPU loop for fp32 and bf16 inputs and weights" * ftp_test::needs_gpu()) {
  unsigned seed = 100;
  for (int T : {0, 1, 37, 129}) {
    for (int C : {37, 576, 4096}) {  // 37: scalar path; the others: 16-byte vector path
      check_rmsnorm<float, float>(T, C, seed++);
      check_rmsnorm<bf16, float>(T, C, seed++);
      check_rmsnorm<bf16, bf16>(T, C, seed++);
      check_rmsnorm<float, bf16>(T, C, seed++);
    }
  }
}

// ---- rope ----------------------------------------------------------------------------------------

TEST_CASE("rope_inv_freq follows theta^(-2i/d) and llama3 scaling" * ftp_test::needs_gpu()) {
  const auto plain = lk::rope_inv_freq(128, 500000.0);
  REQUIRE(plain.size() == 64);
  CHECK(plain[0] == 1.f);
  CHECK(plain[1] == doctest::Approx(std::pow(500000.0, -2.0 / 128)).epsilon(1e-6));
  const auto scaled = lk::rope_inv_freq(128, 500000.0, lk::Llama3RopeScaling{});
  const double kPi = 3.14159265358979323846;
  for (int i = 0; i < 64; ++i) {
    CAPTURE(i);
    const double wavelen = 2 * kPi / plain[i];
    if (wavelen < 8192.0 / 4) CHECK(scaled[i] == plain[i]);                                       // high freq: kept
    else if (wavelen > 8192.0) CHECK(scaled[i] == doctest::Approx(plain[i] / 8.0).epsilon(1e-6));  // low: / factor
    else CHECK((scaled[i] <= plain[i] && scaled[i] >= plain[i] / 8.0f * 0.999999f));               // smooth band
  }
}

template <lk::RopeStyle kStyle>
void check_rope(int T, int Hq, int Hkv, int d, bool llama3_scaling, unsigned seed) {
  CAPTURE(T); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(d); CAPTURE(llama3_scaling); CAPTURE(seed);
  std::mt19937 rng(seed);
  // q, k and v live in one fused buffer [T, Hq + 2 Hkv, d]: the strides are exercised and the v
  // part must come back untouched.
  const std::int64_t stride = static_cast<std::int64_t>(Hq + 2 * Hkv) * d;
  const auto qkv = random_bf16(static_cast<std::size_t>(T) * stride, rng);
  std::vector<int> pos(T);
  std::uniform_int_distribution<int> pick(0, 131071);
  for (int t = 0; t < T; ++t) pos[t] = t < 8 ? t : pick(rng);  // small and large positions
  const auto inv = llama3_scaling ? lk::rope_inv_freq(d, 500000.0, lk::Llama3RopeScaling{}) : lk::rope_inv_freq(d, 10000.0);
  DeviceBuffer<std::uint16_t> d_qkv(qkv);
  DeviceBuffer<int> d_pos(pos);
  DeviceBuffer<float> d_inv(inv);
  lk::launch_rope<kStyle>(bf(d_qkv), stride, Hq, bf(d_qkv) + static_cast<std::int64_t>(Hq) * d, stride, Hkv,
                          d_pos.data(), d_inv.data(), T, d, nullptr);
  sync();
  const auto got = d_qkv.download();
  std::vector<float> out, ref;
  bool v_untouched = true;
  std::vector<double> head(d);
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < Hq + 2 * Hkv; ++h) {
      const std::size_t off = static_cast<std::size_t>(t) * stride + static_cast<std::size_t>(h) * d;
      if (h >= Hq + Hkv) {
        v_untouched = v_untouched && std::equal(got.begin() + off, got.begin() + off + d, qkv.begin() + off);
        continue;
      }
      for (int e = 0; e < d; ++e) head[e] = oracle::bf16_to_float(qkv[off + e]);
      oracle::rope_head(head.data(), d, pos[t], inv, kStyle == lk::RopeStyle::Adjacent);
      for (int e = 0; e < d; ++e) {
        out.push_back(oracle::bf16_to_float(got[off + e]));
        ref.push_back(static_cast<float>(head[e]));
      }
    }
  }
  CHECK(v_untouched);
  CHECK(count_nonfinite(out) == 0);
  CHECK(rel_error(out, ref) < 1e-2);
}

TEST_CASE("rope rotates adjacent and half-split pairs of q and k in a fused qkv buffer" * ftp_test::needs_gpu()) {
  unsigned seed = 200;
  for (int T : {0, 1, 37, 129}) {
    for (bool scaling : {false, true}) {
      check_rope<lk::RopeStyle::Adjacent>(T, 32, 8, 128, scaling, seed++);
      check_rope<lk::RopeStyle::HalfSplit>(T, 32, 8, 128, scaling, seed++);
      check_rope<lk::RopeStyle::Adjacent>(T, 9, 3, 64, scaling, seed++);
      check_rope<lk::RopeStyle::HalfSplit>(T, 9, 3, 64, scaling, seed++);
    }
  }
}

TEST_CASE("rope at position 0 is the identity and styles differ elsewhere" * ftp_test::needs_gpu()) {
  std::mt19937 rng(7);
  const int d = 64, T = 2;
  const auto x = random_bf16(static_cast<std::size_t>(T) * d, rng);
  const auto inv = lk::rope_inv_freq(d, 10000.0);
  DeviceBuffer<float> d_inv(inv);
  DeviceBuffer<int> d_pos(std::vector<int>{0, 5});
  DeviceBuffer<std::uint16_t> a(x), b(x);
  lk::launch_rope<lk::RopeStyle::Adjacent>(bf(a), d, 1, nullptr, 0, 0, d_pos.data(), d_inv.data(), T, d, nullptr);
  lk::launch_rope<lk::RopeStyle::HalfSplit>(bf(b), d, 1, nullptr, 0, 0, d_pos.data(), d_inv.data(), T, d, nullptr);
  sync();
  const auto ga = a.download(), gb = b.download();
  CHECK(std::equal(ga.begin(), ga.begin() + d, x.begin()));
  CHECK(std::equal(gb.begin(), gb.begin() + d, x.begin()));
  CHECK(!std::equal(ga.begin() + d, ga.end(), gb.begin() + d));
}

// ---- prefill attention ---------------------------------------------------------------------------

struct PrefillCase {
  std::vector<int> lens;
  int Hq, Hkv;
  bool fused_qkv;  // q, k, v as views into one [T, Hq + 2 Hkv, d] buffer
};

template <int D>
void check_prefill(const PrefillCase& pc, unsigned seed) {
  const int B = static_cast<int>(pc.lens.size());
  const int Hq = pc.Hq, Hkv = pc.Hkv;
  std::vector<int> cu(B + 1, 0);
  for (int b = 0; b < B; ++b) cu[b + 1] = cu[b] + pc.lens[b];
  const int T = cu[B];
  std::string lens_str;
  for (int L : pc.lens) lens_str += std::to_string(L) + " ";
  CAPTURE(lens_str); CAPTURE(D); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(pc.fused_qkv); CAPTURE(seed);
  std::mt19937 rng(seed);

  const std::int64_t qs = pc.fused_qkv ? static_cast<std::int64_t>(Hq + 2 * Hkv) * D : static_cast<std::int64_t>(Hq) * D;
  const std::int64_t ks = pc.fused_qkv ? qs : static_cast<std::int64_t>(Hkv) * D;
  // Separate tensors, or q, k, v as column slices of one fused buffer (k_off / v_off elements in).
  const std::int64_t k_off = pc.fused_qkv ? static_cast<std::int64_t>(Hq) * D : 0;
  const std::int64_t v_off = pc.fused_qkv ? static_cast<std::int64_t>(Hq + Hkv) * D : 0;
  const auto hq = random_bf16(static_cast<std::size_t>(T) * qs, rng);
  const auto hk = pc.fused_qkv ? std::vector<std::uint16_t>() : random_bf16(static_cast<std::size_t>(T) * ks, rng);
  const auto hv = pc.fused_qkv ? std::vector<std::uint16_t>() : random_bf16(static_cast<std::size_t>(T) * ks, rng);
  DeviceBuffer<std::uint16_t> d_q(hq), d_k(hk), d_v(hv);
  const bf16* q = bf(d_q);
  const bf16* k = pc.fused_qkv ? q + k_off : bf(d_k);
  const bf16* v = pc.fused_qkv ? q + v_off : bf(d_v);
  const auto fq = to_float(hq);
  const auto fk_sep = to_float(hk), fv_sep = to_float(hv);
  const float* fk = pc.fused_qkv ? fq.data() + k_off : fk_sep.data();
  const float* fv = pc.fused_qkv ? fq.data() + v_off : fv_sep.data();

  DeviceBuffer<int> d_cu(cu);
  DeviceBuffer<std::uint16_t> d_out(static_cast<std::size_t>(T) * Hq * D);
  DeviceBuffer<float> d_ref(static_cast<std::size_t>(T) * Hq * D);
  d_out.poison();
  d_ref.poison();
  lk::launch_attention_prefill<D>(q, qs, k, ks, v, ks, bf(d_out), d_cu.data(), B, T, Hq, Hkv, nullptr);
  lk::launch_attention_prefill_reference<D>(q, qs, k, ks, v, ks, d_ref.data(), d_cu.data(), B, T, Hq, Hkv, nullptr);
  sync();
  const auto out = to_float(d_out.download());
  const auto ref = d_ref.download();
  CHECK(count_nonfinite(out) == 0);  // every element written (poison is NaN)
  CHECK(count_nonfinite(ref) == 0);
  CHECK(rel_error(out, ref) < 1e-2);

  // Per-row check too: a wrong row cannot hide in a global norm.
  int worst_row = -1;
  double worst = 0;
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < Hq; ++h) {
      const std::size_t off = (static_cast<std::size_t>(t) * Hq + h) * D;
      std::vector<float> a(out.begin() + off, out.begin() + off + D), r(ref.begin() + off, ref.begin() + off + D);
      const double e = rel_error(a, r);
      if (e > worst) { worst = e; worst_row = t; }
    }
  }
  CAPTURE(worst_row);
  CHECK(worst < 3e-2);

  // The GPU reference itself against double-precision CPU loops on sampled rows: all rows of short
  // sequences, every 13th row plus the last three of long ones.
  std::vector<std::pair<int, int>> rows;  // (token, seq_start)
  for (int b = 0; b < B; ++b)
    for (int i = 0; i < pc.lens[b]; ++i)
      if (pc.lens[b] <= 129 || i % 13 == 0 || i >= pc.lens[b] - 3) rows.push_back({cu[b] + i, cu[b]});
  std::vector<double> row_err(rows.size() * Hq, 0.0);
  parallel_for(static_cast<int>(rows.size()) * Hq, [&](int idx) {
    const auto [t, start] = rows[idx / Hq];
    const int h = idx % Hq;
    const auto r = oracle::attention_row(fq.data(), qs, fk, ks, fv, ks, D, Hq / Hkv, start, t, h);
    double num2 = 0, den2 = 0;
    for (int e = 0; e < D; ++e) {
      const double g = ref[(static_cast<std::size_t>(t) * Hq + h) * D + e];
      num2 += (g - r[e]) * (g - r[e]);
      den2 += r[e] * r[e];
    }
    row_err[idx] = std::sqrt(num2 / std::max(den2, 1e-300));
  });
  const double worst_ref = row_err.empty() ? 0.0 : *std::max_element(row_err.begin(), row_err.end());
  CHECK(worst_ref < 1e-4);  // fp32 reference vs double: only summation-order differences
}

TEST_CASE("prefill attention, GQA 32/8 d=128: single sequences of length 1, 37, 129, 2048" * ftp_test::needs_gpu()) {
  unsigned seed = 300;
  for (int L : {1, 37, 129, ftp_test::scaled(2048)}) check_prefill<128>({{L}, 32, 8, false}, seed++);
}

TEST_CASE("prefill attention, GQA 9/3 d=64: single sequences of length 1, 37, 129, 2048" * ftp_test::needs_gpu()) {
  unsigned seed = 400;
  for (int L : {1, 37, 129, ftp_test::scaled(2048)}) check_prefill<64>({{L}, 9, 3, false}, seed++);
}

TEST_CASE("prefill attention, ragged batch {0,1,63,64,65,1000,3000}, GQA 32/8 d=128" * ftp_test::needs_gpu()) {
  check_prefill<128>({{0, 1, 63, 64, 65, ftp_test::scaled(1000), ftp_test::scaled(3000)}, 32, 8, false}, 500);
}

TEST_CASE("prefill attention, ragged batch {0,1,63,64,65,1000,3000}, GQA 9/3 d=64, fused qkv strides" *
          ftp_test::needs_gpu()) {
  check_prefill<64>({{0, 1, 63, 64, 65, ftp_test::scaled(1000), ftp_test::scaled(3000)}, 9, 3, true}, 600);
}

TEST_CASE("prefill attention: fused qkv strides at d=128 and many short sequences" * ftp_test::needs_gpu()) {
  check_prefill<128>({{129, 0, 200}, 32, 8, true}, 700);
  std::vector<int> many(64);
  std::mt19937 rng(701);
  std::uniform_int_distribution<int> len(0, 300);
  for (int& L : many) L = len(rng);
  check_prefill<64>({many, 9, 3, false}, 702);
  check_prefill<128>({many, 4, 1, false}, 703);  // MHA-like group of 4 with one KV head
}

TEST_CASE("prefill attention with no tokens launches nothing and succeeds" * ftp_test::needs_gpu()) {
  DeviceBuffer<int> cu(std::vector<int>{0, 0, 0});
  CHECK_NOTHROW(lk::launch_attention_prefill<128>(nullptr, 4096, nullptr, 1024, nullptr, 1024, nullptr, cu.data(), 2, 0,
                                                  32, 8, nullptr));
  CHECK_NOTHROW(lk::launch_attention_prefill<64>(nullptr, 576, nullptr, 192, nullptr, 192, nullptr, nullptr, 0, 0, 9, 3,
                                                 nullptr));
  CHECK_THROWS_AS(lk::launch_attention_prefill<128>(nullptr, 4096, nullptr, 1024, nullptr, 1024, nullptr, cu.data(), 2,
                                                    0, 32, 7, nullptr),
                  std::invalid_argument);
  sync();
}

// ---- decode attention ----------------------------------------------------------------------------

template <int D>
void check_decode(const std::vector<int>& lens, int Hq, int Hkv, unsigned seed) {
  const int B = static_cast<int>(lens.size());
  const int max_len = *std::max_element(lens.begin(), lens.end());
  const int S = max_len + 3;  // cache capacity; padding rows are poisoned (must never be read)
  std::string lens_str;
  for (int L : lens) lens_str += std::to_string(L) + " ";
  CAPTURE(lens_str); CAPTURE(D); CAPTURE(Hq); CAPTURE(Hkv); CAPTURE(seed);
  std::mt19937 rng(seed);
  const std::int64_t row = static_cast<std::int64_t>(Hkv) * D, batch = S * row;
  auto kc = random_bf16(static_cast<std::size_t>(B) * batch, rng);
  auto vc = random_bf16(static_cast<std::size_t>(B) * batch, rng);
  for (int b = 0; b < B; ++b)
    for (std::int64_t i = lens[b] * row; i < batch; ++i) kc[b * batch + i] = vc[b * batch + i] = 0xFFFF;  // NaN
  const auto q = random_bf16(static_cast<std::size_t>(B) * Hq * D, rng);
  DeviceBuffer<std::uint16_t> d_q(q), d_k(kc), d_v(vc), d_out(static_cast<std::size_t>(B) * Hq * D);
  DeviceBuffer<int> d_lens(lens);
  const std::size_t ws = lk::attention_decode_workspace_bytes(B, Hq, D, max_len);
  DeviceBuffer<unsigned char> d_ws(ws);
  d_out.poison();
  d_ws.poison();
  lk::launch_attention_decode<D>(bf(d_q), bf(d_k), bf(d_v), batch, row, d_lens.data(), max_len, bf(d_out), B, Hq, Hkv,
                                 d_ws.data(), ws, nullptr);
  sync();
  const auto out = to_float(d_out.download());
  CHECK(count_nonfinite(out) == 0);
  const auto fq = to_float(q), fk = to_float(kc), fv = to_float(vc);
  std::vector<double> ref(out.size(), 0.0);
  for (int b = 0; b < B; ++b) {
    if (lens[b] == 0) continue;  // documented: zero row
    // The oracle's query token is position len-1 of sequence b; q_stride 0 makes every token index
    // read sequence b's single query row.
    const float* qb = fq.data() + static_cast<std::size_t>(b) * Hq * D;
    const std::vector<float> kb(fk.begin() + b * batch, fk.begin() + (b + 1) * batch);
    const std::vector<float> vb(fv.begin() + b * batch, fv.begin() + (b + 1) * batch);
    for (int h = 0; h < Hq; ++h) {
      const auto o = oracle::attention_row(qb, 0, kb.data(), row, vb.data(), row,
                                           D, Hq / Hkv, 0, lens[b] - 1, h);
      std::copy(o.begin(), o.end(), ref.begin() + (static_cast<std::size_t>(b) * Hq + h) * D);
    }
  }
  CHECK(rel_error(out, ref) < 1e-2);
  for (int b = 0; b < B; ++b)
    if (lens[b] == 0)
      CHECK(std::all_of(out.begin() + static_cast<std::size_t>(b) * Hq * D,
                        out.begin() + static_cast<std::size_t>(b + 1) * Hq * D, [](float x) { return x == 0.f; }));
}

TEST_CASE("decode attention matches the CPU loop across split boundaries, GQA 32/8 d=128" * ftp_test::needs_gpu()) {
  unsigned seed = 800;
  for (int L : {1, 37, 255, 256, 257, 1000, 4099}) check_decode<128>({L}, 32, 8, seed++);
  check_decode<128>({0, 1, 300, 4099}, 32, 8, seed++);
}

TEST_CASE("decode attention matches the CPU loop, GQA 9/3 d=64, batched with an empty sequence" * ftp_test::needs_gpu()) {
  unsigned seed = 900;
  for (int L : {1, 37, 256, 2049}) check_decode<64>({L}, 9, 3, seed++);
  check_decode<64>({0, 513, 7, 129}, 9, 3, seed++);
  check_decode<64>({0}, 9, 3, seed++);
}

TEST_CASE("decode attention rejects a workspace that is too small" * ftp_test::needs_gpu()) {
  DeviceBuffer<unsigned char> ws(16);
  DeviceBuffer<std::uint16_t> buf(1024);
  DeviceBuffer<int> lens(std::vector<int>{4});
  CHECK_THROWS_AS(lk::launch_attention_decode<64>(bf(buf), bf(buf), bf(buf), 0, 64, lens.data(), 4, bf(buf), 1, 1, 1,
                                                  ws.data(), ws.size(), nullptr),
                  std::invalid_argument);
}

// ---- sampling ------------------------------------------------------------------------------------

TEST_CASE("greedy argmax returns the lowest index of the maximum, exactly" * ftp_test::needs_gpu()) {
  unsigned seed = 1000;
  DeviceBuffer<int> d_id(1);
  for (int V : {1, 2, 37, 1025, 49152, 128256}) {
    for (int variant = 0; variant < 4; ++variant) {
      CAPTURE(V); CAPTURE(variant);
      std::mt19937 rng(seed++);
      std::normal_distribution<float> nd(0.f, 3.f);
      std::vector<float> x(V);
      for (auto& v : x) v = nd(rng);
      std::uniform_int_distribution<int> pick(0, V - 1);
      if (variant == 1) {  // planted tie: two (or more) equal maxima
        const int a = pick(rng), b = pick(rng);
        x[a] = x[b] = 100.f;
      } else if (variant == 2) {  // NaNs are ignored
        for (int i = 0; i < V; i += 3) x[i] = std::numeric_limits<float>::quiet_NaN();
      } else if (variant == 3) {  // all equal: id 0
        std::fill(x.begin(), x.end(), -1.5f);
      }
      DeviceBuffer<float> d_x(x);
      d_id.poison();
      lk::launch_sample_argmax(d_x.data(), V, d_id.data(), nullptr);
      sync();
      CHECK(d_id.download()[0] == oracle::argmax(x));
    }
  }
}

TEST_CASE("temperature sampling is the inverse CDF of softmax(x/T) at u, and deterministic" * ftp_test::needs_gpu()) {
  unsigned seed = 1100;
  DeviceBuffer<int> d_id(1);
  for (int V : {1, 37, 1025, 49152, 128256}) {
    for (float temp : {0.7f, 1.0f, 1.5f}) {
      std::mt19937 rng(seed++);
      std::normal_distribution<float> nd(0.f, 2.f);
      std::vector<float> x(V);
      for (auto& v : x) v = nd(rng);
      if (V > 10) x[V / 2] = 12.f;  // one likely token, as in real logits
      const auto cdf = oracle::softmax_cdf(x, temp);
      DeviceBuffer<float> d_x(x);
      std::uniform_real_distribution<float> uni(0.f, 1.f);
      std::vector<float> us = {0.f, 0.5f, 0.999999f};
      for (int i = 0; i < 20; ++i) us.push_back(std::min(uni(rng), 0.99999994f));
      for (float u : us) {
        CAPTURE(V); CAPTURE(temp); CAPTURE(u);
        d_id.poison();
        lk::launch_sample_temperature(d_x.data(), V, temp, u, d_id.data(), nullptr);
        sync();
        const int id = d_id.download()[0];
        REQUIRE(id >= 0);
        REQUIRE(id < V);
        // id is right when u falls into [cdf[id-1], cdf[id]] up to fp32 summation error.
        const double lo = id == 0 ? 0.0 : cdf[id - 1];
        const double tol = 1e-5;
        CHECK(lo <= u + tol);
        CHECK(cdf[id] >= u - tol);
        CHECK(cdf[id] > lo);  // a token of zero probability is never drawn
        // Deterministic: the same inputs give the same id.
        lk::launch_sample_temperature(d_x.data(), V, temp, u, d_id.data(), nullptr);
        sync();
        CHECK(d_id.download()[0] == id);
      }
    }
  }
}

TEST_CASE("temperature sampling: evenly spaced u reproduce the distribution of a small vocabulary" *
          ftp_test::needs_gpu()) {
  const int V = 37, N = ftp_test::scaled(4000);  // one launch per draw: 500 under the sanitizers
  std::mt19937 rng(1200);
  std::normal_distribution<float> nd(0.f, 1.5f);
  std::vector<float> x(V);
  for (auto& v : x) v = nd(rng);
  x[5] = -std::numeric_limits<float>::infinity();  // probability 0: must never be drawn
  const auto cdf = oracle::softmax_cdf(x, 0.8);
  DeviceBuffer<float> d_x(x);
  DeviceBuffer<int> d_id(1);
  std::vector<int> hist(V, 0);
  for (int i = 0; i < N; ++i) {
    lk::launch_sample_temperature(d_x.data(), V, 0.8f, (i + 0.5f) / N, d_id.data(), nullptr);
    sync();
    ++hist[d_id.download()[0]];
  }
  CHECK(hist[5] == 0);
  for (int i = 0; i < V; ++i) {
    CAPTURE(i);
    const double p = cdf[i] - (i ? cdf[i - 1] : 0.0);
    CHECK(std::abs(hist[i] - p * N) <= 1.0 + 1e-3 * N);  // evenly spaced u: off by at most one
  }
}

}  // namespace
