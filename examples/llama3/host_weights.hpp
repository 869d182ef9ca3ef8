// HostWeights: every weight of a Llama-architecture model dequantized to bf16 in host memory,
// loaded from a GgufFile and checked tensor by tensor against a LlamaConfig.
//
// Matrices are row-major [out, in] (a GGUF linear weight has ne = [in, out], ne[0] fastest, so
// its bytes already are [out, in]); vectors are [n]. bf16 values are stored as uint16_t bits.
// Shape letters as in model_config.hpp: C hidden, I FFN width, Hq/Hkv heads, d head size, V vocab.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "llama3/dequant.hpp"
#include "llama3/gguf.hpp"
#include "llama3/model_config.hpp"

namespace llama3 {

/// One transformer block's weights.
struct LayerWeights {
  std::vector<uint16_t> attn_norm;  ///< [C]
  std::vector<uint16_t> wq;         ///< [Hq*d, C]
  std::vector<uint16_t> wk;         ///< [Hkv*d, C]
  std::vector<uint16_t> wv;         ///< [Hkv*d, C]
  std::vector<uint16_t> wo;         ///< [C, Hq*d]
  std::vector<uint16_t> bq;         ///< [Hq*d], empty when the model has no Q bias
  std::vector<uint16_t> bk;         ///< [Hkv*d], empty when absent
  std::vector<uint16_t> bv;         ///< [Hkv*d], empty when absent
  std::vector<uint16_t> ffn_norm;   ///< [C]
  std::vector<uint16_t> w_gate;     ///< [I, C]
  std::vector<uint16_t> w_up;       ///< [I, C]
  std::vector<uint16_t> w_down;     ///< [C, I]
};

/// The whole model's weights in bf16.
struct HostWeights {
  std::vector<uint16_t> token_embd;   ///< [V, C]
  std::vector<LayerWeights> layers;   ///< n_layers entries
  std::vector<uint16_t> output_norm;  ///< [C]
  /// [V, C]; empty when the model ties its output projection to the embedding (no
  /// `output.weight` in the file): use output_weight(), which shares token_embd then.
  std::vector<uint16_t> output;
  bool tied_output = false;
  /// Per-frequency RoPE divisors [rope_dim/2] from `rope_freqs.weight` (Llama 3.1 scaling);
  /// empty when the file has none. Kept in float: they scale angles, not activations.
  std::vector<float> rope_freqs;

  /// The output projection [V, C]: `output`, or `token_embd` when tied.
  const std::vector<uint16_t>& output_weight() const { return tied_output ? token_embd : output; }

  /// Loads and checks every tensor of `file` that `config` calls for.
  static HostWeights load(const GgufFile& file, const LlamaConfig& config);
};

namespace detail {

inline std::string shape_text(const std::vector<uint64_t>& ne) {
  std::string s = "[";
  for (size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

/// The tensor `name`, checked to have exactly the dimensions `ne` (GGUF order, innermost first)
/// and a type that can be dequantized; nullptr if absent and `optional`.
inline const TensorInfo* checked_tensor(const GgufFile& file, const std::string& name,
                                        const std::vector<uint64_t>& ne, bool optional = false) {
  const TensorInfo* t = file.find_tensor(name);
  if (!t) {
    if (optional) return nullptr;
    throw LoadError("weights: missing tensor '" + name + "' (expected ne " + shape_text(ne) + ")");
  }
  bool same = t->n_dims == ne.size();
  for (size_t i = 0; same && i < ne.size(); ++i) same = t->ne[i] == ne[i];
  if (!same) {
    throw LoadError("weights: tensor '" + name + "' has ne " + t->shape_string() + ": expected " + shape_text(ne));
  }
  if (!can_dequantize(t->type)) {
    throw LoadError("weights: tensor '" + name + "' has type " + ggml_type_name(t->type) +
                    ": expected " + kDequantizableTypes);
  }
  return t;
}

inline std::vector<uint16_t> load_bf16(const GgufFile& file, const std::string& name,
                                       const std::vector<uint64_t>& ne) {
  return tensor_to_bf16(file, *checked_tensor(file, name, ne));
}

}  // namespace detail

inline HostWeights HostWeights::load(const GgufFile& file, const LlamaConfig& c) {
  using detail::load_bf16;
  const uint64_t C = uint64_t(c.hidden), I = uint64_t(c.ffn), V = uint64_t(c.vocab);
  const uint64_t QD = uint64_t(c.q_dim()), KVD = uint64_t(c.kv_dim());
  HostWeights w;
  w.token_embd = load_bf16(file, "token_embd.weight", {C, V});
  // Layers are appended as they load, not sized up front: block_count may be up to 2^24, and a
  // file that claims that many blocks but holds two must fail at blk.2, not after allocating
  // 2^24 empty LayerWeights (4.7 GB).
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    LayerWeights& L = w.layers.emplace_back();
    L.attn_norm = load_bf16(file, b + "attn_norm.weight", {C});
    L.wq = load_bf16(file, b + "attn_q.weight", {C, QD});
    L.wk = load_bf16(file, b + "attn_k.weight", {C, KVD});
    L.wv = load_bf16(file, b + "attn_v.weight", {C, KVD});
    L.wo = load_bf16(file, b + "attn_output.weight", {QD, C});
    // Biases: required for Qwen2, taken when present otherwise.
    const bool need_bias = c.qkv_bias;
    if (const TensorInfo* t = detail::checked_tensor(file, b + "attn_q.bias", {QD}, !need_bias)) L.bq = tensor_to_bf16(file, *t);
    if (const TensorInfo* t = detail::checked_tensor(file, b + "attn_k.bias", {KVD}, !need_bias)) L.bk = tensor_to_bf16(file, *t);
    if (const TensorInfo* t = detail::checked_tensor(file, b + "attn_v.bias", {KVD}, !need_bias)) L.bv = tensor_to_bf16(file, *t);
    L.ffn_norm = load_bf16(file, b + "ffn_norm.weight", {C});
    L.w_gate = load_bf16(file, b + "ffn_gate.weight", {C, I});
    L.w_up = load_bf16(file, b + "ffn_up.weight", {C, I});
    L.w_down = load_bf16(file, b + "ffn_down.weight", {I, C});
  }
  w.output_norm = load_bf16(file, "output_norm.weight", {C});
  if (const TensorInfo* t = detail::checked_tensor(file, "output.weight", {C, V}, /*optional=*/true)) {
    w.output = tensor_to_bf16(file, *t);
  } else {
    w.tied_output = true;
  }
  if (const TensorInfo* t = detail::checked_tensor(file, "rope_freqs.weight", {uint64_t(c.rope_dim / 2)}, true)) {
    w.rope_freqs = tensor_to_float(file, *t);
    for (size_t i = 0; i < w.rope_freqs.size(); ++i) {
      if (!(w.rope_freqs[i] > 0.0f) || !std::isfinite(w.rope_freqs[i])) {
        throw LoadError(detail::cat("weights: tensor 'rope_freqs.weight' element ", i, " is ", w.rope_freqs[i],
                                    ": expected a finite divisor > 0"));
      }
    }
  }
  return w;
}

}  // namespace llama3
