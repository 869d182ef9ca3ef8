// Plain CPU loops computing what each kernel in this folder computes, written to be obviously
// right (double accumulation), for the device tests. bf16 values are carried as their 16-bit
// patterns (std::uint16_t), identical in memory to __nv_bfloat16, so this header needs no CUDA.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

namespace llama3::host_oracle {

inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = static_cast<std::uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Round to nearest even, NaN stays NaN (same as __float2bfloat16_rn).
inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if (std::isnan(f)) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

/// out[t, c] = table[ids[t], c] (zero row for ids outside [0, V)).
inline std::vector<float> embedding(const std::vector<std::uint16_t>& table, const std::vector<int>& ids, int C, int V) {
  std::vector<float> out(ids.size() * static_cast<std::size_t>(C), 0.f);
  for (std::size_t t = 0; t < ids.size(); ++t)
    if (ids[t] >= 0 && ids[t] < V)
      for (int c = 0; c < C; ++c) out[t * C + c] = bf16_to_float(table[static_cast<std::size_t>(ids[t]) * C + c]);
  return out;
}

/// y[t, c] = x[t, c] / sqrt(mean_c x[t, :]^2 + eps) * w[c]; x and w already as floats.
inline std::vector<double> rmsnorm(const std::vector<float>& x, const std::vector<float>& w, int T, int C, double eps) {
  std::vector<double> y(static_cast<std::size_t>(T) * C);
  for (int t = 0; t < T; ++t) {
    double ss = 0;
    for (int c = 0; c < C; ++c) ss += static_cast<double>(x[static_cast<std::size_t>(t) * C + c]) * x[static_cast<std::size_t>(t) * C + c];
    const double inv = 1.0 / std::sqrt(ss / C + eps);
    for (int c = 0; c < C; ++c)
      y[static_cast<std::size_t>(t) * C + c] = x[static_cast<std::size_t>(t) * C + c] * inv * w[c];
  }
  return y;
}

/// Rotates one head of d values (as floats) in place; adjacent = pairs (2i, 2i+1), else (i, i+d/2).
/// The angle is the fp32 product float(pos) * inv_freq[i], as the kernel documents; sin/cos in double.
inline void rope_head(double* x, int d, int pos, const std::vector<float>& inv_freq, bool adjacent) {
  for (int i = 0; i < d / 2; ++i) {
    const float angle = static_cast<float>(pos) * inv_freq[i];
    const double c = std::cos(static_cast<double>(angle)), s = std::sin(static_cast<double>(angle));
    const int a = adjacent ? 2 * i : i, b = adjacent ? 2 * i + 1 : i + d / 2;
    const double xa = x[a], xb = x[b];
    x[a] = xa * c - xb * s;
    x[b] = xa * s + xb * c;
  }
}

/// Causal attention output of query token t (absolute packed index), head h (KV head h / group),
/// over keys seq_start..t: element e of head h of token t is q[t * q_stride + h * d + e], same for
/// k and v with their strides. Returns d values.
inline std::vector<double> attention_row(const float* q, std::int64_t q_stride, const float* k, std::int64_t k_stride,
                                         const float* v, std::int64_t v_stride, int d, int group, int seq_start, int t,
                                         int h) {
  const int kvh = h / group;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  std::vector<double> s(static_cast<std::size_t>(t - seq_start + 1));
  double mx = -std::numeric_limits<double>::infinity();
  for (int j = seq_start; j <= t; ++j) {
    double acc = 0;
    for (int e = 0; e < d; ++e) acc += static_cast<double>(q[t * q_stride + h * d + e]) * k[j * k_stride + kvh * d + e];
    s[j - seq_start] = acc * scale;
    mx = std::max(mx, s[j - seq_start]);
  }
  double den = 0;
  std::vector<double> o(d, 0.0);
  for (int j = seq_start; j <= t; ++j) {
    const double p = std::exp(s[j - seq_start] - mx);
    den += p;
    for (int e = 0; e < d; ++e) o[e] += p * v[j * v_stride + kvh * d + e];
  }
  for (int e = 0; e < d; ++e) o[e] /= den;
  return o;
}

/// Lowest index of the maximum, NaN ignored; 0 if all NaN.
inline int argmax(const std::vector<float>& x) {
  int best = -1;
  for (int i = 0; i < static_cast<int>(x.size()); ++i)
    if (!std::isnan(x[i]) && (best < 0 || x[i] > x[best])) best = i;
  return best < 0 ? 0 : best;
}

/// Normalized CDF (double) of softmax(x / temperature): cdf[i] = sum_{j <= i} p_j.
inline std::vector<double> softmax_cdf(const std::vector<float>& x, double temperature) {
  double mx = -std::numeric_limits<double>::infinity();
  for (float v : x)
    if (!std::isnan(v)) mx = std::max(mx, static_cast<double>(v));
  std::vector<double> cdf(x.size());
  double run = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    run += std::isnan(x[i]) ? 0.0 : std::exp((x[i] - mx) / temperature);
    cdf[i] = run;
  }
  for (double& c : cdf) c /= run;
  return cdf;
}

}  // namespace llama3::host_oracle
