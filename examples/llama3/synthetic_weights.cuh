// Synthetic random weights and configs of any shape (benchmarks without a GGUF file): the counter
// hash, bit for bit the same on host and device. Apart: the CPU reference and benchmarks use it alone.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "llama3/bf16.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model_config.hpp"

namespace llama3 {

// ---- synthetic weights -------------------------------------------------------------------------

/// Which tensor a synthetic value belongs to: part of the hash input, so every tensor differs.
enum class SyntheticTensor : std::uint32_t {
  TokenEmbd = 0, OutputNorm, Output,
  AttnNorm = 16, Wq, Wk, Wv, Wo, Bq, Bk, Bv, FfnNorm, Gate, Up, Down,
  kPerLayer = 16,  // ids of layer l: base + 16 l
};

/// Element i of a synthetic tensor: offset + scale * u with u uniform in [-1, 1) from a counter hash
/// of (seed, tensor, i). Host and device produce the same bits: an exact int -> float, then one
/// rounded multiply and one rounded add (no FMA contraction on either side).
__host__ __device__ inline float synthetic_value(std::uint64_t seed, std::uint32_t tensor, std::uint64_t i,
                                                 float offset, float scale) {
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + (static_cast<std::uint64_t>(tensor) << 40) + i;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;  // splitmix64 finalizer
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const int v = static_cast<int>(z >> 40) - (1 << 23);  // 24 random bits, centered: |v| <= 2^23
  const float step = scale / 8388608.0f;                // scale / 2^23: exact (power of two)
#ifdef __CUDA_ARCH__
  return __fadd_rn(offset, __fmul_rn(static_cast<float>(v), step));
#else
  volatile float product = static_cast<float>(v) * step;  // volatile: keeps the compiler from fusing
  return offset + product;
#endif
}

namespace model_detail {

/// (offset, scale) of each synthetic tensor: weights ~ U(-sqrt(3/fan_in), sqrt(3/fan_in)) (unit
/// variance through every projection), norm weights 1 +- 0.1, logits scaled x4 so that the top-1
/// margin of random logits stands well above bf16 noise.
struct SyntheticScale {
  float offset, scale;
};

inline SyntheticScale synthetic_scale(const LlamaConfig& c, SyntheticTensor t) {
  const auto fan_in = [](std::int64_t n) { return static_cast<float>(std::sqrt(3.0 / static_cast<double>(n))); };
  switch (t) {
    case SyntheticTensor::TokenEmbd: return {0.f, 1.f};
    case SyntheticTensor::OutputNorm:
    case SyntheticTensor::AttnNorm:
    case SyntheticTensor::FfnNorm: return {1.f, 0.1f};
    case SyntheticTensor::Output: return {0.f, 4.f * fan_in(c.hidden)};
    case SyntheticTensor::Wq:
    case SyntheticTensor::Wk:
    case SyntheticTensor::Wv:
    case SyntheticTensor::Gate:
    case SyntheticTensor::Up: return {0.f, fan_in(c.hidden)};
    case SyntheticTensor::Wo: return {0.f, fan_in(c.q_dim())};
    case SyntheticTensor::Down: return {0.f, fan_in(c.ffn)};
    case SyntheticTensor::Bq:
    case SyntheticTensor::Bk:
    case SyntheticTensor::Bv: return {0.f, 0.1f};
    default: return {0.f, 1.f};
  }
}

inline std::uint32_t tensor_id(SyntheticTensor t, std::int64_t layer = 0) {
  const std::uint32_t base = static_cast<std::uint32_t>(t);
  return base >= static_cast<std::uint32_t>(SyntheticTensor::AttnNorm)
             ? base + static_cast<std::uint32_t>(SyntheticTensor::kPerLayer) * static_cast<std::uint32_t>(layer)
             : base;
}

}  // namespace model_detail

/// The synthetic weights of DeviceModel(config, seed, ...) on the host, bit for bit (for the CPU
/// reference; use it for small shapes only: it holds the whole model in host memory).
inline HostWeights synthetic_host_weights(const LlamaConfig& c, std::uint64_t seed) {
  using model_detail::synthetic_scale;
  using model_detail::tensor_id;
  const auto make = [&](SyntheticTensor t, std::int64_t layer, std::int64_t n) {
    const model_detail::SyntheticScale s = synthetic_scale(c, t);
    std::vector<uint16_t> v(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) {
      v[static_cast<std::size_t>(i)] =
          bf16_from_float(synthetic_value(seed, tensor_id(t, layer), static_cast<std::uint64_t>(i), s.offset, s.scale));
    }
    return v;
  };
  const std::int64_t C = c.hidden, I = c.ffn, QD = c.q_dim(), KVD = c.kv_dim(), V = c.vocab;
  HostWeights w;
  w.token_embd = make(SyntheticTensor::TokenEmbd, 0, V * C);
  w.output_norm = make(SyntheticTensor::OutputNorm, 0, C);
  w.output = make(SyntheticTensor::Output, 0, V * C);
  w.tied_output = false;
  w.layers.resize(static_cast<std::size_t>(c.n_layers));
  for (std::int64_t l = 0; l < c.n_layers; ++l) {
    LayerWeights& L = w.layers[static_cast<std::size_t>(l)];
    L.attn_norm = make(SyntheticTensor::AttnNorm, l, C);
    L.wq = make(SyntheticTensor::Wq, l, QD * C);
    L.wk = make(SyntheticTensor::Wk, l, KVD * C);
    L.wv = make(SyntheticTensor::Wv, l, KVD * C);
    L.wo = make(SyntheticTensor::Wo, l, C * QD);
    if (c.qkv_bias) {
      L.bq = make(SyntheticTensor::Bq, l, QD);
      L.bk = make(SyntheticTensor::Bk, l, KVD);
      L.bv = make(SyntheticTensor::Bv, l, KVD);
    }
    L.ffn_norm = make(SyntheticTensor::FfnNorm, l, C);
    L.w_gate = make(SyntheticTensor::Gate, l, I * C);
    L.w_up = make(SyntheticTensor::Up, l, I * C);
    L.w_down = make(SyntheticTensor::Down, l, C * I);
  }
  return w;
}

/// A Llama-architecture config of any shape, for synthetic weights (no file): Llama 3 RoPE
/// (adjacent pairs, theta 500000, no scaling), RMSNorm eps 1e-5, no biases.
inline LlamaConfig synthetic_config(int layers, int C, int I, int Hq, int Hkv, int d, int V, int context) {
  LlamaConfig c;
  c.architecture = "llama";
  c.context_length = context;
  c.hidden = C;
  c.ffn = I;
  c.n_layers = layers;
  c.n_heads = Hq;
  c.n_kv_heads = Hkv;
  c.head_dim = d;
  c.rope_dim = d;
  c.vocab = V;
  c.rope_theta = 500000.0;
  c.rms_eps = 1e-5;
  c.rope_style = RopeStyle::Interleaved;
  return c;
}

/// Llama 3.1 8B's shape and RoPE (llama3 scaling, 128k context): the benchmarks' synthetic model.
inline LlamaConfig llama3_8b_shape() {
  LlamaConfig c = synthetic_config(32, 4096, 14336, 32, 8, 128, 128256, 131072);
  c.rope_scaling.type = RopeScalingType::Llama3;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.original_context_length = 8192;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  return c;
}

}  // namespace llama3
