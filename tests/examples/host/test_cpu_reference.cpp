// Tests of the CPU reference forward pass: each piece (rmsnorm, linear, RoPE, attention, SwiGLU)
// on tiny inputs checked by hand, properties of the whole pass on a tiny random model, and the
// real SmolLM2-135M against logits from HF transformers (tests/fixtures/golden_logits.json,
// written by tools/make_golden_logits.py).
#include <doctest/doctest.h>

#include "model_path.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "llama3/bf16.hpp"
#include "llama3/cpu_reference.hpp"
#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model_config.hpp"

using namespace llama3;

namespace {

std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out;
  for (float x : v) out.push_back(bf16_from_float(x));
  return out;
}

using ftp_test::model_path_or_skip;
using ftp_test::source_root;

/// A tiny random Llama held directly in HostWeights (no file): C=8, I=12, 2 layers, Hq=4,
/// Hkv=2, d=2... kept small so every test runs in microseconds.
struct TinyModel {
  LlamaConfig config;
  HostWeights weights;
};

TinyModel tiny_model(uint32_t seed, bool tied = true, bool biases = false) {
  TinyModel m;
  LlamaConfig& c = m.config;
  c.architecture = "llama";
  c.context_length = 64;
  c.hidden = 16;
  c.ffn = 24;
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 4;
  c.rope_dim = 4;
  c.vocab = 32;
  c.rope_theta = 10000;
  c.rms_eps = 1e-5;
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto random = [&](int64_t n, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = scale * normal(rng);
    return to_bf16(v);
  };
  auto norm_weight = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = 1.0f + 0.1f * normal(rng);
    return to_bf16(v);
  };
  HostWeights& w = m.weights;
  w.token_embd = random(c.vocab * c.hidden, 1.0f);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights L;
    L.attn_norm = norm_weight(c.hidden);
    L.wq = random(c.q_dim() * c.hidden, 0.5f);
    L.wk = random(c.kv_dim() * c.hidden, 0.5f);
    L.wv = random(c.kv_dim() * c.hidden, 0.5f);
    L.wo = random(c.hidden * c.q_dim(), 0.3f);
    if (biases) {
      L.bq = random(c.q_dim(), 0.5f);
      L.bk = random(c.kv_dim(), 0.5f);
      L.bv = random(c.kv_dim(), 0.5f);
    }
    L.ffn_norm = norm_weight(c.hidden);
    L.w_gate = random(c.ffn * c.hidden, 0.3f);
    L.w_up = random(c.ffn * c.hidden, 0.3f);
    L.w_down = random(c.hidden * c.ffn, 0.3f);
    w.layers.push_back(L);
  }
  w.output_norm = norm_weight(c.hidden);
  w.tied_output = tied;
  if (!tied) w.output = random(c.vocab * c.hidden, 0.5f);
  return m;
}

}  // namespace

// =============================================================================================
TEST_CASE("rmsnorm: divides by the root mean square and scales by the weight") {
  const std::vector<float> x = {3, 4, 0, -1, -1, -1};  // two rows of 3
  const std::vector<uint16_t> w = to_bf16({1, 2, 0.5f});
  std::vector<float> y(6);
  cpu::rmsnorm(x.data(), 2, 3, w.data(), 0.0, y.data());
  const double rms0 = std::sqrt(25.0 / 3.0);
  CHECK(y[0] == doctest::Approx(3 / rms0));
  CHECK(y[1] == doctest::Approx(2 * 4 / rms0));
  CHECK(y[2] == 0.0f);
  CHECK(y[3] == doctest::Approx(-1.0));
  CHECK(y[4] == doctest::Approx(-2.0));
  CHECK(y[5] == doctest::Approx(-0.5));
  // eps keeps an all-zero row finite; the output may alias the input.
  std::vector<float> z = {0, 0, 0};
  cpu::rmsnorm(z.data(), 1, 3, w.data(), 1e-5, z.data());
  CHECK(z[0] == 0.0f);
}

TEST_CASE("linear: y = x W^T + b with W row-major [out, in]") {
  const std::vector<float> x = {1, 2, 3, -1, 0, 1};           // [T=2, in=3]
  const std::vector<uint16_t> w = to_bf16({1, 0, 0, 0, 1, 1});  // [out=2, in=3]
  const std::vector<uint16_t> b = to_bf16({0.5f, -1});
  std::vector<float> y(4);
  cpu::linear(x.data(), 2, 3, w.data(), 2, b.data(), y.data());
  CHECK(y[0] == 1.5f);
  CHECK(y[1] == 4.0f);
  CHECK(y[2] == -0.5f);
  CHECK(y[3] == 0.0f);
  // A long row exercises the eight-way split and the tail; threads must not change the result.
  const int64_t in = 1003, out = 37, T = 3;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> xs(size_t(T * in)), wf(size_t(out * in));
  for (float& v : xs) v = u(rng);
  for (float& v : wf) v = float_from_bf16(bf16_from_float(u(rng)));
  const std::vector<uint16_t> wb = to_bf16(wf);
  std::vector<float> y1(size_t(T * out)), y4(size_t(T * out));
  cpu::linear(xs.data(), T, in, wb.data(), out, nullptr, y1.data(), 1);
  cpu::linear(xs.data(), T, in, wb.data(), out, nullptr, y4.data(), 4);
  CHECK(y1 == y4);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t o = 0; o < out; ++o) {
      double ref = 0;
      for (int64_t i = 0; i < in; ++i) ref += double(xs[size_t(t * in + i)]) * wf[size_t(o * in + i)];
      CHECK(y1[size_t(t * out + o)] == doctest::Approx(ref).epsilon(1e-4));
    }
  }
}

TEST_CASE("rope: interleaved rotates (x[2i], x[2i+1]), NeoX rotates (x[i], x[i+d/2])") {
  LlamaConfig c;
  c.rope_dim = 4;
  c.rope_theta = 10000;
  const std::vector<double> inv = cpu::rope_inv_freq(c);
  REQUIRE(inv.size() == 2);
  CHECK(inv[0] == 1.0);
  CHECK(inv[1] == doctest::Approx(0.01));  // 10000^(-2/4)

  SUBCASE("interleaved") {
    std::vector<float> x = {1, 0, 1, 0, /*pos 1:*/ 1, 0, 1, 0};  // [T=2, H=1, d=4]
    cpu::rope(x.data(), 2, 1, 4, 4, inv, RopeStyle::Interleaved);
    CHECK(x[0] == 1.0f);  // position 0 is unrotated
    CHECK(x[1] == 0.0f);
    CHECK(x[4] == doctest::Approx(std::cos(1.0)));
    CHECK(x[5] == doctest::Approx(std::sin(1.0)));
    CHECK(x[6] == doctest::Approx(std::cos(0.01)));
    CHECK(x[7] == doctest::Approx(std::sin(0.01)));
  }
  SUBCASE("neox") {
    std::vector<float> x = {0, 1, 2, 3, /*pos 1:*/ 1, 1, 0, 0};
    cpu::rope(x.data(), 2, 1, 4, 4, inv, RopeStyle::NeoX);
    CHECK(x[0] == 0.0f);
    CHECK(x[3] == 3.0f);
    CHECK(x[4] == doctest::Approx(std::cos(1.0)));   // (x0, x2) by angle 1
    CHECK(x[6] == doctest::Approx(std::sin(1.0)));
    CHECK(x[5] == doctest::Approx(std::cos(0.01)));  // (x1, x3) by angle 0.01
    CHECK(x[7] == doctest::Approx(std::sin(0.01)));
  }
  SUBCASE("first_pos offsets the angles, and a rotation keeps the norm") {
    std::vector<float> x = {0.3f, -0.7f, 1.1f, 0.2f};
    const double n0 = 0.09 + 0.49 + 1.21 + 0.04;
    cpu::rope(x.data(), 1, 1, 4, 4, inv, RopeStyle::Interleaved, /*first_pos=*/5);
    CHECK(x[0] == doctest::Approx(0.3 * std::cos(5.0) + 0.7 * std::sin(5.0)));
    CHECK(x[1] == doctest::Approx(0.3 * std::sin(5.0) - 0.7 * std::cos(5.0)));
    CHECK(double(x[0]) * x[0] + double(x[1]) * x[1] + double(x[2]) * x[2] + double(x[3]) * x[3] ==
          doctest::Approx(n0));
  }
  SUBCASE("partial rotary leaves the tail of the head alone") {
    LlamaConfig p;
    p.rope_dim = 2;
    p.rope_theta = 10000;
    std::vector<float> x = {1, 0, 5, 6};
    cpu::rope(x.data(), 1, 1, 4, 2, cpu::rope_inv_freq(p), RopeStyle::Interleaved, 1);
    CHECK(x[0] == doctest::Approx(std::cos(1.0)));
    CHECK(x[2] == 5.0f);
    CHECK(x[3] == 6.0f);
  }
}

TEST_CASE("rope: interleaved on llama.cpp-permuted rows equals NeoX on HF rows") {
  // llama.cpp's converter reorders each head's rows so that HF's pair (i, i + d/2) lands at
  // (2i, 2i + 1). Rotating the permuted vector with interleaved pairs must therefore equal
  // rotating the original with NeoX pairs, then permuting. This is why Llama GGUFs need the
  // interleaved style.
  const int64_t d = 8, half = d / 2;
  LlamaConfig c;
  c.rope_dim = d;
  c.rope_theta = 500000;
  const std::vector<double> inv = cpu::rope_inv_freq(c);
  std::vector<float> hf = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f, 0.6f, 0.7f, -0.8f};
  std::vector<float> gguf(static_cast<size_t>(d));
  for (int64_t i = 0; i < half; ++i) {
    gguf[size_t(2 * i)] = hf[size_t(i)];
    gguf[size_t(2 * i + 1)] = hf[size_t(i + half)];
  }
  cpu::rope(hf.data(), 1, 1, d, d, inv, RopeStyle::NeoX, 37);
  cpu::rope(gguf.data(), 1, 1, d, d, inv, RopeStyle::Interleaved, 37);
  for (int64_t i = 0; i < half; ++i) {
    CHECK(gguf[size_t(2 * i)] == doctest::Approx(hf[size_t(i)]));
    CHECK(gguf[size_t(2 * i + 1)] == doctest::Approx(hf[size_t(i + half)]));
  }
}

TEST_CASE("rope: scaling of the frequencies") {
  LlamaConfig c;
  c.rope_dim = 128;
  c.rope_theta = 500000;
  const std::vector<double> plain = cpu::rope_inv_freq(c);

  SUBCASE("linear divides every frequency") {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = 4;
    const std::vector<double> s = cpu::rope_inv_freq(c);
    for (size_t i = 0; i < s.size(); ++i) CHECK(s[i] == doctest::Approx(plain[i] / 4));
  }
  SUBCASE("llama3 keeps short wavelengths, divides long ones, interpolates between") {
    // Llama 3.1's published settings: factor 8, low 1, high 4, original context 8192.
    c.rope_scaling = {RopeScalingType::Llama3, 8.0, 8192, 1.0, 4.0};
    const std::vector<double> s = cpu::rope_inv_freq(c);
    const double kPi = 3.14159265358979323846;
    int kept = 0, divided = 0, between = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const double wavelen = 2 * kPi / plain[i];
      if (wavelen < 8192.0 / 4) {
        CHECK(s[i] == plain[i]);
        ++kept;
      } else if (wavelen > 8192.0 / 1) {
        CHECK(s[i] == doctest::Approx(plain[i] / 8));
        ++divided;
      } else {
        const double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
        CHECK(s[i] == doctest::Approx((1 - smooth) * plain[i] / 8 + smooth * plain[i]));
        CHECK(s[i] < plain[i]);
        CHECK(s[i] > plain[i] / 8);
        ++between;
      }
    }
    CHECK(kept > 0);
    CHECK(divided > 0);
    CHECK(between > 0);
  }
  SUBCASE("a rope_freqs tensor gives the divisors directly") {
    std::vector<float> factors(64, 1.0f);
    factors[63] = 8.0f;
    const std::vector<double> s = cpu::rope_inv_freq(c, factors);
    CHECK(s[0] == plain[0]);
    CHECK(s[63] == doctest::Approx(plain[63] / 8));
    CHECK_THROWS_AS(cpu::rope_inv_freq(c, std::vector<float>(3, 1.0f)), std::invalid_argument);
  }
}

TEST_CASE("attention: causal softmax over keys, query heads share kv heads in groups") {
  // T=2, Hq=2, Hkv=1, d=2. Keys: k0 = 0, k1 = (ln 3 * sqrt 2, 0), so with q = (1, 0) the scaled
  // scores at position 1 are (0, ln 3): weights 1/4, 3/4. Query head 1, q = (0, 1), scores 0 and
  // 0: weights 1/2, 1/2. Position 0 sees only v0.
  const double s = std::log(3.0) * std::sqrt(2.0);
  const std::vector<float> q = {1, 0, 0, 1, /*t=1*/ 1, 0, 0, 1};  // [T, Hq*d]
  const std::vector<float> k = {0, 0, /*t=1*/ float(s), 0};        // [T, Hkv*d]
  const std::vector<float> v = {4, 0, /*t=1*/ 0, 8};
  std::vector<float> out(8);
  cpu::attention(q.data(), k.data(), v.data(), 2, 2, 1, 2, out.data());
  CHECK(out[0] == 4.0f);  // t=0, head 0
  CHECK(out[1] == 0.0f);
  CHECK(out[2] == 4.0f);  // t=0, head 1
  CHECK(out[3] == 0.0f);
  CHECK(out[4] == doctest::Approx(1.0));  // 4 * 1/4
  CHECK(out[5] == doctest::Approx(6.0));  // 8 * 3/4
  CHECK(out[6] == doctest::Approx(2.0));
  CHECK(out[7] == doctest::Approx(4.0));
}

TEST_CASE("attention: heads map to kv heads by h / (Hq/Hkv)") {
  // Hq=4, Hkv=2, d=1, T=1: each query head's output is its kv head's only value.
  const std::vector<float> q = {1, 1, 1, 1}, k = {1, 1}, v = {10, 20};
  std::vector<float> out(4);
  cpu::attention(q.data(), k.data(), v.data(), 1, 4, 2, 1, out.data());
  CHECK(out == std::vector<float>{10, 10, 20, 20});
}

TEST_CASE("swiglu: silu(g) * u") {
  const std::vector<float> g = {0, 1, -2, 10}, u = {5, 2, 1, 0.5f};
  std::vector<float> h(4);
  cpu::swiglu(g.data(), u.data(), 4, h.data());
  CHECK(h[0] == 0.0f);
  CHECK(h[1] == doctest::Approx(2.0 / (1.0 + std::exp(-1.0))));
  CHECK(h[2] == doctest::Approx(-2.0 / (1.0 + std::exp(2.0))));
  CHECK(h[3] == doctest::Approx(0.5 * 10.0 / (1.0 + std::exp(-10.0))));
}

// =============================================================================================
TEST_CASE("forward: causal, last-position mode matches, thread count does not matter") {
  const TinyModel m = tiny_model(42);
  const std::vector<int32_t> tokens = {3, 17, 0, 31, 8, 8, 12};
  const int64_t V = m.config.vocab;
  const std::vector<float> all = cpu::forward_logits(m.weights, m.config, tokens, true, 1);
  REQUIRE(all.size() == tokens.size() * size_t(V));
  for (float x : all) REQUIRE(std::isfinite(x));

  const std::vector<float> last = cpu::forward_logits(m.weights, m.config, tokens, false, 1);
  REQUIRE(last.size() == size_t(V));
  CHECK(std::equal(last.begin(), last.end(), all.end() - V));

  const std::vector<float> threaded = cpu::forward_logits(m.weights, m.config, tokens, true, 3);
  CHECK(threaded == all);

  // Changing a later token must not change earlier positions.
  std::vector<int32_t> changed = tokens;
  changed[4] = 1;
  const std::vector<float> other = cpu::forward_logits(m.weights, m.config, changed, true, 1);
  CHECK(std::equal(all.begin(), all.begin() + 4 * V, other.begin()));
  CHECK_FALSE(std::equal(all.begin() + 4 * V, all.begin() + 5 * V, other.begin() + 4 * V));

  CHECK(cpu::forward_logits(m.weights, m.config, {}, true).empty());
  CHECK_THROWS_AS(cpu::forward_logits(m.weights, m.config, {0, 32}, true), std::invalid_argument);
}

TEST_CASE("forward: a one-token prompt is embedding -> blocks -> norm -> logits by hand") {
  // With T=1 attention returns v exactly, so one block is checkable with the pieces alone.
  TinyModel m = tiny_model(7, /*tied=*/false, /*biases=*/true);
  m.weights.layers.resize(1);
  m.config.n_layers = 1;
  const LlamaConfig& c = m.config;
  const LayerWeights& L = m.weights.layers[0];
  const int32_t token = 5;
  std::vector<float> x(size_t(c.hidden)), n(size_t(c.hidden)), vv(size_t(c.kv_dim())), a(size_t(c.q_dim()));
  for (int64_t i = 0; i < c.hidden; ++i) x[size_t(i)] = float_from_bf16(m.weights.token_embd[size_t(token * c.hidden + i)]);
  cpu::rmsnorm(x.data(), 1, c.hidden, L.attn_norm.data(), c.rms_eps, n.data());
  cpu::linear(n.data(), 1, c.hidden, L.wv.data(), c.kv_dim(), L.bv.data(), vv.data());
  for (int64_t h = 0; h < c.n_heads; ++h) {  // attention output of head h = v of its kv head
    for (int64_t i = 0; i < c.head_dim; ++i) {
      a[size_t(h * c.head_dim + i)] = vv[size_t((h / c.group_size()) * c.head_dim + i)];
    }
  }
  std::vector<float> o(size_t(c.hidden));
  cpu::linear(a.data(), 1, c.q_dim(), L.wo.data(), c.hidden, nullptr, o.data());
  for (int64_t i = 0; i < c.hidden; ++i) x[size_t(i)] += o[size_t(i)];
  cpu::rmsnorm(x.data(), 1, c.hidden, L.ffn_norm.data(), c.rms_eps, n.data());
  std::vector<float> g(size_t(c.ffn)), u(size_t(c.ffn)), f(size_t(c.hidden));
  cpu::linear(n.data(), 1, c.hidden, L.w_gate.data(), c.ffn, nullptr, g.data());
  cpu::linear(n.data(), 1, c.hidden, L.w_up.data(), c.ffn, nullptr, u.data());
  for (int64_t i = 0; i < c.ffn; ++i) g[size_t(i)] = g[size_t(i)] / (1 + std::exp(-g[size_t(i)])) * u[size_t(i)];
  cpu::linear(g.data(), 1, c.ffn, L.w_down.data(), c.hidden, nullptr, f.data());
  for (int64_t i = 0; i < c.hidden; ++i) x[size_t(i)] += f[size_t(i)];
  cpu::rmsnorm(x.data(), 1, c.hidden, m.weights.output_norm.data(), c.rms_eps, n.data());
  std::vector<float> expected(size_t(c.vocab));
  cpu::linear(n.data(), 1, c.hidden, m.weights.output.data(), c.vocab, nullptr, expected.data());

  const std::vector<float> got = cpu::forward_logits(m.weights, m.config, {token}, true);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(expected[i]).epsilon(1e-5));
}

// =============================================================================================
TEST_CASE("real model: CPU logits match HF transformers on the golden prompts") {
  const std::string path = model_path_or_skip();
  if (path.empty()) return;
  const std::string fixture = source_root() + "/tests/fixtures/golden_logits.json";
  std::ifstream in(fixture);
  REQUIRE_MESSAGE(in.good(), "cannot read ", fixture, " (run from the repository root or define FTP_SOURCE_DIR)");
  const nlohmann::json golden = nlohmann::json::parse(in);

  const GgufFile f = GgufFile::open(path);
  REQUIRE_MESSAGE(f.file_size() == golden.at("model_bytes").get<size_t>(),
                  "the fixture was made from a different file (", golden.at("model_file").get<std::string>(), ")");
  const LlamaConfig c = config_from_gguf(f);
  const HostWeights w = HostWeights::load(f, c);

  // Two references, both HF transformers computing in float32:
  //  * `top_logits`: HF's float32 dequantized weights. Ours are those values rounded to bf16
  //    (relative error <= 2^-9 per weight); through 30 layers that moves these logits
  //    (|logit| < ~30) by about 0.1: HF itself with bf16-rounded weights differs from HF with
  //    float weights by the same ~0.10 on these prompts. 0.25 leaves room for that and is still far
  //    below what a real bug does (a wrong RoPE pairing or kv-head mapping moves logits by whole
  //    units and changes the top-1).
  //  * `top_logits_bf16w`: HF with every weight rounded to bf16 exactly as our loader does. Only
  //    the float32 summation order (and our double softmax/norms) differ, so the bound is far
  //    tighter: measured 5e-5 (the fixture stores 5 decimals); 0.005 leaves a 100x margin for
  //    other compilers, flags and thread splits.
  const double kToleranceFloatWeights = 0.25;
  const double kToleranceBf16Weights = 0.005;
  double max_delta = 0, max_delta_bf16w = 0;
  size_t positions = 0;
  for (const auto& prompt : golden.at("prompts")) {
    const std::vector<int32_t> tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    const auto& expected = prompt.at("positions");
    REQUIRE(expected.size() == tokens.size());
    const std::vector<float> logits = cpu::forward_logits(w, c, tokens, /*all_positions=*/true);
    for (size_t t = 0; t < tokens.size(); ++t) {
      CAPTURE(t);
      INFO("prompt: ", prompt.at("text").get<std::string>());
      const float* row = logits.data() + t * size_t(c.vocab);
      const auto top_ids = expected[t].at("top_ids").get<std::vector<int64_t>>();
      const auto top_logits = expected[t].at("top_logits").get<std::vector<double>>();
      const auto top_logits_bf16w = expected[t].at("top_logits_bf16w").get<std::vector<double>>();
      const int64_t ours_top1 = std::max_element(row, row + c.vocab) - row;
      CHECK(ours_top1 == top_ids[0]);
      for (size_t k = 0; k < top_ids.size(); ++k) {
        const double delta = std::fabs(double(row[top_ids[k]]) - top_logits[k]);
        const double delta_bf16w = std::fabs(double(row[top_ids[k]]) - top_logits_bf16w[k]);
        max_delta = std::max(max_delta, delta);
        max_delta_bf16w = std::max(max_delta_bf16w, delta_bf16w);
        CHECK(delta < kToleranceFloatWeights);
        CHECK(delta_bf16w < kToleranceBf16Weights);
      }
      const double hi = *std::max_element(row, row + c.vocab), lo = *std::min_element(row, row + c.vocab);
      CHECK(std::fabs(hi - expected[t].at("max").get<double>()) < kToleranceFloatWeights);
      CHECK(std::fabs(lo - expected[t].at("min").get<double>()) < kToleranceFloatWeights);
      ++positions;
    }
  }
  MESSAGE("max |delta logit| over the stored top-5 of ", positions, " positions: ", max_delta,
          " vs HF transformers (float weights), ", max_delta_bf16w, " vs HF with bf16-rounded weights");
}
