// CPU reference forward pass of a Llama-architecture model: plain loops in float (softmax and
// norms accumulate in double), written to be obviously right rather than quick. The GPU path and
// its tests use these functions as oracles.
//
// Activations are float, row-major, one row per token. Weights stay bf16 (HostWeights) and are
// widened on the fly. Shape letters as in model_config.hpp: T tokens, C hidden, I FFN width,
// Hq/Hkv heads, d head size, V vocab. A row of q is Hq heads of d values, head h at [h*d, h*d+d).
//
// One block, as in the model's diagram:
//   x += o_proj(attention(rope(q_proj(n)), rope(k_proj(n)), v_proj(n)))   with n = rmsnorm(x)
//   x += down(silu(gate(n)) * up(n))                                       with n = rmsnorm(x)
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "llama3/bf16.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model_config.hpp"

namespace llama3 {
namespace cpu {

namespace detail {

/// Runs fn(begin, end) over [0, n) split into contiguous chunks on up to `n_threads` threads
/// (0 = all hardware threads). Chunks are disjoint, so results do not depend on the split.
template <class Fn>
void parallel_for(int64_t n, int n_threads, Fn fn) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(n_threads, n));
  if (workers == 1) {
    fn(int64_t(0), n);
    return;
  }
  std::vector<std::thread> pool;
  pool.reserve(size_t(workers - 1));
  const int64_t chunk = (n + workers - 1) / workers;
  for (int64_t w = 1; w < workers; ++w) {
    const int64_t b = std::min(n, w * chunk), e = std::min(n, (w + 1) * chunk);
    pool.emplace_back([=, &fn] { fn(b, e); });
  }
  fn(int64_t(0), std::min(n, chunk));
  for (std::thread& t : pool) t.join();
}

}  // namespace detail

/// y[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * w      x, y: [T, n]; w: [n] bf16.
/// y may alias x.
inline void rmsnorm(const float* x, int64_t T, int64_t n, const uint16_t* w, double eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xr = x + t * n;
    double sum_sq = 0;
    for (int64_t i = 0; i < n; ++i) sum_sq += double(xr[i]) * xr[i];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / double(n) + eps);
    float* yr = y + t * n;
    for (int64_t i = 0; i < n; ++i) yr[i] = float(double(xr[i]) * inv_rms) * float_from_bf16(w[i]);
  }
}

/// y[t, o] = sum_i x[t, i] * w[o, i] (+ b[o])      x: [T, in]; w: [out, in] bf16; b: [out] bf16
/// or null; y: [T, out] (must not alias x). Rows of w are split over threads.
inline void linear(const float* x, int64_t T, int64_t in, const uint16_t* w, int64_t out, const uint16_t* b,
                   float* y, int n_threads = 0) {
  detail::parallel_for(out, n_threads, [&](int64_t o_begin, int64_t o_end) {
    std::vector<float> row(static_cast<size_t>(in));
    for (int64_t o = o_begin; o < o_end; ++o) {
      const uint16_t* wr = w + o * in;
      for (int64_t i = 0; i < in; ++i) row[size_t(i)] = float_from_bf16(wr[i]);  // widen once per row
      const float bias = b ? float_from_bf16(b[o]) : 0.0f;
      for (int64_t t = 0; t < T; ++t) {
        const float* xr = x + t * in;
        // Eight partial sums: the same dot product, in an order the compiler can keep in registers.
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t i = 0;
        for (; i + 8 <= in; i += 8) {
          for (int k = 0; k < 8; ++k) acc[k] += row[size_t(i + k)] * xr[i + k];
        }
        for (; i < in; ++i) acc[0] += row[size_t(i)] * xr[i];
        y[t * out + o] = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])) + bias;
      }
    }
  });
}

/// Per-frequency inverse wavelengths [rope_dim/2]: theta^(-2i/rope_dim), divided by the RoPE
/// scaling divisor of frequency i. `freq_factors` (HostWeights::rope_freqs, may be empty) gives
/// the divisors directly, as llama.cpp does for Llama 3.1; otherwise they follow
/// config.rope_scaling (Linear: factor for all; Llama3: factor for long wavelengths, 1 for short
/// ones, interpolated smoothly in between, as in Meta's reference).
inline std::vector<double> rope_inv_freq(const LlamaConfig& config, const std::vector<float>& freq_factors = {}) {
  const int64_t half = config.rope_dim / 2;
  if (!freq_factors.empty() && int64_t(freq_factors.size()) != half) {
    throw std::invalid_argument("rope_inv_freq: " + std::to_string(freq_factors.size()) +
                                " frequency factors given, expected rope_dim/2 = " + std::to_string(half));
  }
  const RopeScaling& s = config.rope_scaling;
  std::vector<double> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const double f = std::pow(config.rope_theta, -2.0 * double(i) / double(config.rope_dim));
    double divisor = 1.0;
    if (!freq_factors.empty()) {
      divisor = freq_factors[size_t(i)];
    } else if (s.type == RopeScalingType::Linear) {
      divisor = s.factor;
    } else if (s.type == RopeScalingType::Llama3) {
      const double kPi = 3.14159265358979323846;
      const double wavelen = 2.0 * kPi / f;
      const double orig = double(s.original_context_length);
      const double low_freq_wavelen = orig / s.low_freq_factor;    // longer than this: fully scaled
      const double high_freq_wavelen = orig / s.high_freq_factor;  // shorter than this: unscaled
      if (wavelen < high_freq_wavelen) {
        divisor = 1.0;
      } else if (wavelen > low_freq_wavelen) {
        divisor = s.factor;
      } else {
        const double smooth = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        divisor = 1.0 / ((1.0 - smooth) / s.factor + smooth);
      }
    }
    inv[size_t(i)] = f / divisor;
  }
  return inv;
}

/// Rotates the first rope_dim elements of every head of x in place, at positions
/// first_pos, first_pos+1, ... for rows 0, 1, ...      x: [T, H*d]; inv_freq: [rope_dim/2].
/// Interleaved pairs (x[2i], x[2i+1]); NeoX pairs (x[i], x[i + rope_dim/2]); both by angle
/// pos * inv_freq[i]: (a, b) -> (a cos - b sin, a sin + b cos).
inline void rope(float* x, int64_t T, int64_t H, int64_t d, int64_t rope_dim, const std::vector<double>& inv_freq,
                 RopeStyle style, int64_t first_pos = 0) {
  const int64_t half = rope_dim / 2;
  for (int64_t t = 0; t < T; ++t) {
    const double pos = double(first_pos + t);
    for (int64_t h = 0; h < H; ++h) {
      float* head = x + t * H * d + h * d;
      for (int64_t i = 0; i < half; ++i) {
        const double angle = pos * inv_freq[size_t(i)];
        const double c = std::cos(angle), s = std::sin(angle);
        float& a = style == RopeStyle::Interleaved ? head[2 * i] : head[i];
        float& b = style == RopeStyle::Interleaved ? head[2 * i + 1] : head[i + half];
        const double a0 = a, b0 = b;
        a = float(a0 * c - b0 * s);
        b = float(a0 * s + b0 * c);
      }
    }
  }
}

/// Causal grouped-query attention: query head h attends with kv head h / (Hq/Hkv) to keys
/// 0..t of its own sequence, softmax(q.k / sqrt(d)) computed in double.
/// q: [T, Hq*d]; k, v: [T, Hkv*d]; out: [T, Hq*d].
inline void attention(const float* q, const float* k, const float* v, int64_t T, int64_t Hq, int64_t Hkv, int64_t d,
                      float* out, int n_threads = 0) {
  const int64_t group = Hq / Hkv;
  const double scale = 1.0 / std::sqrt(double(d));
  detail::parallel_for(Hq, n_threads, [&](int64_t h_begin, int64_t h_end) {
    std::vector<double> p(static_cast<size_t>(T));
    std::vector<double> acc(static_cast<size_t>(d));
    for (int64_t h = h_begin; h < h_end; ++h) {
      const int64_t kvh = h / group;
      for (int64_t t = 0; t < T; ++t) {
        const float* qr = q + t * Hq * d + h * d;
        double max_logit = -INFINITY;
        for (int64_t s = 0; s <= t; ++s) {
          const float* kr = k + s * Hkv * d + kvh * d;
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += double(qr[i]) * kr[i];
          p[size_t(s)] = dot * scale;
          max_logit = std::max(max_logit, p[size_t(s)]);
        }
        double denom = 0;
        for (int64_t s = 0; s <= t; ++s) {
          p[size_t(s)] = std::exp(p[size_t(s)] - max_logit);
          denom += p[size_t(s)];
        }
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t s = 0; s <= t; ++s) {
          const float* vr = v + s * Hkv * d + kvh * d;
          for (int64_t i = 0; i < d; ++i) acc[size_t(i)] += p[size_t(s)] * vr[i];
        }
        float* orow = out + t * Hq * d + h * d;
        for (int64_t i = 0; i < d; ++i) orow[i] = float(acc[size_t(i)] / denom);
      }
    }
  });
}

/// silu(g) * u = g / (1 + exp(-g)) * u, element-wise over n values; h may alias g or u.
inline void swiglu(const float* g, const float* u, int64_t n, float* h) {
  for (int64_t i = 0; i < n; ++i) {
    const double gi = g[i];
    h[i] = float(gi / (1.0 + std::exp(-gi)) * u[i]);
  }
}

/// The SwiGLU FFN: out = w_down (silu(w_gate x) * w_up x).      x, out: [T, C].
inline void ffn(const float* x, int64_t T, const LayerWeights& w, const LlamaConfig& c, float* out,
                int n_threads = 0) {
  std::vector<float> g(size_t(T * c.ffn)), u(size_t(T * c.ffn));
  linear(x, T, c.hidden, w.w_gate.data(), c.ffn, nullptr, g.data(), n_threads);
  linear(x, T, c.hidden, w.w_up.data(), c.ffn, nullptr, u.data(), n_threads);
  swiglu(g.data(), u.data(), T * c.ffn, g.data());
  linear(g.data(), T, c.ffn, w.w_down.data(), c.hidden, nullptr, out, n_threads);
}

/// The attention half of a block without its residual: o_proj(attention(rope(q), rope(k), v)) of
/// the already-normalized rows xn.      xn, out: [T, C]; positions start at 0.
inline void attention_block(const float* xn, int64_t T, const LayerWeights& w, const LlamaConfig& c,
                            const std::vector<double>& inv_freq, float* out, int n_threads = 0) {
  const int64_t QD = c.q_dim(), KVD = c.kv_dim();
  std::vector<float> q(size_t(T * QD)), k(size_t(T * KVD)), v(size_t(T * KVD)), a(size_t(T * QD));
  auto bias = [](const std::vector<uint16_t>& b) { return b.empty() ? nullptr : b.data(); };
  linear(xn, T, c.hidden, w.wq.data(), QD, bias(w.bq), q.data(), n_threads);
  linear(xn, T, c.hidden, w.wk.data(), KVD, bias(w.bk), k.data(), n_threads);
  linear(xn, T, c.hidden, w.wv.data(), KVD, bias(w.bv), v.data(), n_threads);
  rope(q.data(), T, c.n_heads, c.head_dim, c.rope_dim, inv_freq, c.rope_style);
  rope(k.data(), T, c.n_kv_heads, c.head_dim, c.rope_dim, inv_freq, c.rope_style);
  attention(q.data(), k.data(), v.data(), T, c.n_heads, c.n_kv_heads, c.head_dim, a.data(), n_threads);
  linear(a.data(), T, QD, w.wo.data(), c.hidden, nullptr, out, n_threads);
}

/// One transformer block applied in place to the residual stream x: [T, C].
inline void layer_forward(float* x, int64_t T, const LayerWeights& w, const LlamaConfig& c,
                          const std::vector<double>& inv_freq, int n_threads = 0) {
  const size_t n = size_t(T * c.hidden);
  std::vector<float> xn(n), delta(n);
  rmsnorm(x, T, c.hidden, w.attn_norm.data(), c.rms_eps, xn.data());
  attention_block(xn.data(), T, w, c, inv_freq, delta.data(), n_threads);
  for (size_t i = 0; i < n; ++i) x[i] += delta[i];
  rmsnorm(x, T, c.hidden, w.ffn_norm.data(), c.rms_eps, xn.data());
  ffn(xn.data(), T, w, c, delta.data(), n_threads);
  for (size_t i = 0; i < n; ++i) x[i] += delta[i];
}

/// Embedding rows of `tokens`: [T, C]. Throws std::invalid_argument for an id outside [0, V).
inline std::vector<float> embed(const HostWeights& w, const LlamaConfig& c, const std::vector<int32_t>& tokens) {
  std::vector<float> x(tokens.size() * size_t(c.hidden));
  for (size_t t = 0; t < tokens.size(); ++t) {
    const int32_t id = tokens[t];
    if (id < 0 || id >= c.vocab) {
      throw std::invalid_argument("embed: token " + std::to_string(t) + " has id " + std::to_string(id) +
                                  ", expected 0.." + std::to_string(c.vocab - 1));
    }
    const uint16_t* row = w.token_embd.data() + size_t(id) * size_t(c.hidden);
    for (int64_t i = 0; i < c.hidden; ++i) x[t * size_t(c.hidden) + size_t(i)] = float_from_bf16(row[i]);
  }
  return x;
}

/// The final hidden states (after output_norm), [T, C], of one prompt starting at position 0.
inline std::vector<float> forward_hidden(const HostWeights& w, const LlamaConfig& c, const std::vector<int32_t>& tokens,
                                         int n_threads = 0) {
  const int64_t T = int64_t(tokens.size());
  std::vector<float> x = embed(w, c, tokens);
  const std::vector<double> inv_freq = rope_inv_freq(c, w.rope_freqs);
  for (const LayerWeights& layer : w.layers) layer_forward(x.data(), T, layer, c, inv_freq, n_threads);
  rmsnorm(x.data(), T, c.hidden, w.output_norm.data(), c.rms_eps, x.data());
  return x;
}

/// Logits of one prompt starting at position 0: [T, V] when `all_positions`, else [V] for the
/// last token only. An empty prompt gives an empty result.
inline std::vector<float> forward_logits(const HostWeights& w, const LlamaConfig& c, const std::vector<int32_t>& tokens,
                                         bool all_positions, int n_threads = 0) {
  if (tokens.empty()) return {};
  const std::vector<float> h = forward_hidden(w, c, tokens, n_threads);
  const int64_t T = int64_t(tokens.size());
  const int64_t first = all_positions ? 0 : T - 1;
  std::vector<float> logits(size_t((T - first) * c.vocab));
  linear(h.data() + first * c.hidden, T - first, c.hidden, w.output_weight().data(), c.vocab, nullptr,
         logits.data(), n_threads);
  return logits;
}

}  // namespace cpu
}  // namespace llama3
