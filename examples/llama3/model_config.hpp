// LlamaConfig: the shape and hyper-parameters of a Llama-architecture model (Llama 2/3/3.1,
// SmolLM2, Qwen2), read from GGUF metadata and validated.
//
// Shape letters used throughout examples/llama3: C hidden size, I FFN width, Hq query heads,
// Hkv key/value heads, d head size, V vocabulary, T tokens of a prompt.
// Metadata keys are "<arch>.<name>", where <arch> is `general.architecture` ("llama" or "qwen2").
#pragma once

#include <cmath>
#include <cstdint>
#include <string>

#include "llama3/gguf.hpp"

namespace llama3 {

/// How RoPE frequencies are stretched for long contexts.
enum class RopeScalingType {
  None,    ///< plain RoPE
  Linear,  ///< positions divided by `factor` (every frequency divided by it)
  Llama3,  ///< Llama 3.1: low frequencies divided by `factor`, high ones kept, smooth in between
};

/// RoPE scaling parameters. For Llama3 the GGUF usually carries the per-frequency divisors
/// precomputed as the tensor `rope_freqs.weight` (see HostWeights::rope_freqs); these numbers
/// are used only when that tensor is absent.
struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  int64_t original_context_length = 0;  ///< Llama3: context length the model was trained at
  double low_freq_factor = 1.0;         ///< Llama3 (Meta's defaults: 1 and 4)
  double high_freq_factor = 4.0;
};

/// How RoPE pairs the elements of a head vector.
enum class RopeStyle {
  /// llama.cpp's "normal" RoPE: rotates adjacent pairs (x[2i], x[2i+1]). Llama GGUFs need it
  /// because llama.cpp's converter permutes the rows of Q and K for exactly this pairing.
  Interleaved,
  /// NeoX / HF rotate_half: rotates (x[i], x[i + n_rot/2]). Qwen2 GGUFs are not permuted.
  NeoX,
};

/// Model hyper-parameters. Every field is validated by config_from_gguf.
struct LlamaConfig {
  std::string architecture;     ///< "llama" or "qwen2"
  int64_t context_length = 0;
  int64_t hidden = 0;           ///< C
  int64_t ffn = 0;              ///< I
  int64_t n_layers = 0;
  int64_t n_heads = 0;          ///< Hq
  int64_t n_kv_heads = 0;       ///< Hkv; Hq % Hkv == 0 (grouped-query attention)
  int64_t head_dim = 0;         ///< d = C / Hq unless the file says otherwise
  int64_t rope_dim = 0;         ///< leading elements of each head that RoPE rotates (even, <= d)
  int64_t vocab = 0;            ///< V
  double rope_theta = 10000.0;  ///< RoPE frequency base
  double rms_eps = 1e-5;
  RopeStyle rope_style = RopeStyle::Interleaved;
  RopeScaling rope_scaling;
  bool qkv_bias = false;        ///< Q/K/V projections carry biases (Qwen2)

  int64_t q_dim() const { return n_heads * head_dim; }    ///< Hq*d
  int64_t kv_dim() const { return n_kv_heads * head_dim; }  ///< Hkv*d
  int64_t group_size() const { return n_heads / n_kv_heads; }  ///< query heads per kv head
};

namespace detail {

inline LoadError config_error(const std::string& message) {
  return LoadError("model config: " + message);
}

/// Reads an integer key that must be present and positive.
inline int64_t positive_int(const GgufFile& f, const std::string& key) {
  if (!f.has(key)) throw config_error("missing metadata key '" + key + "' (expected a positive integer)");
  const int64_t v = f.get_int(key);
  if (v <= 0) throw config_error(cat("metadata key '", key, "' is ", v, ": expected a positive integer"));
  return v;
}

}  // namespace detail

/// Reads and validates the model configuration from `f`'s metadata (and the shape of
/// `token_embd.weight` for the vocabulary size, when that tensor is present).
/// Throws LoadError naming the key and the expected value on any problem.
inline LlamaConfig config_from_gguf(const GgufFile& f) {
  using detail::cat;
  using detail::config_error;
  LlamaConfig c;
  if (!f.has("general.architecture")) throw config_error("missing metadata key 'general.architecture'");
  c.architecture = f.get_string("general.architecture");
  if (c.architecture != "llama" && c.architecture != "qwen2") {
    throw config_error("general.architecture is '" + c.architecture + "': expected 'llama' or 'qwen2'");
  }
  const std::string p = c.architecture + ".";
  c.rope_style = c.architecture == "qwen2" ? RopeStyle::NeoX : RopeStyle::Interleaved;
  c.qkv_bias = c.architecture == "qwen2";

  c.context_length = detail::positive_int(f, p + "context_length");
  c.hidden = detail::positive_int(f, p + "embedding_length");
  c.n_layers = detail::positive_int(f, p + "block_count");
  c.ffn = detail::positive_int(f, p + "feed_forward_length");
  c.n_heads = detail::positive_int(f, p + "attention.head_count");
  c.n_kv_heads = f.has(p + "attention.head_count_kv") ? detail::positive_int(f, p + "attention.head_count_kv")
                                                        : c.n_heads;  // absent means plain MHA
  if (c.n_heads % c.n_kv_heads != 0) {
    throw config_error(cat(p, "attention.head_count (", c.n_heads, ") is not a multiple of ", p,
                           "attention.head_count_kv (", c.n_kv_heads, ")"));
  }
  // Guard the products used for buffer sizes later (C*I, V*C, ...) with a generous limit.
  constexpr int64_t kMaxDim = int64_t(1) << 24;
  for (auto [name, v] : {std::pair<const char*, int64_t>{"embedding_length", c.hidden},
                         {"feed_forward_length", c.ffn}, {"block_count", c.n_layers},
                         {"attention.head_count", c.n_heads}}) {
    if (v > kMaxDim) throw config_error(cat("metadata key '", p, name, "' is ", v, ": expected at most ", kMaxDim));
  }

  if (f.has(p + "attention.key_length")) {
    c.head_dim = detail::positive_int(f, p + "attention.key_length");
    if (f.has(p + "attention.value_length") && f.get_int(p + "attention.value_length") != c.head_dim) {
      throw config_error(cat(p, "attention.value_length (", f.get_int(p + "attention.value_length"),
                             ") differs from ", p, "attention.key_length (", c.head_dim, "): not supported"));
    }
  } else {
    if (c.hidden % c.n_heads != 0) {
      throw config_error(cat(p, "embedding_length (", c.hidden, ") is not a multiple of ", p,
                             "attention.head_count (", c.n_heads, ")"));
    }
    c.head_dim = c.hidden / c.n_heads;
  }
  if (c.head_dim > 4096) throw config_error(cat("head size ", c.head_dim, " is out of range: expected at most 4096"));

  c.rope_dim = c.head_dim;
  if (f.has(p + "rope.dimension_count")) {
    c.rope_dim = detail::positive_int(f, p + "rope.dimension_count");
    if (c.rope_dim > c.head_dim || c.rope_dim % 2 != 0) {
      throw config_error(cat(p, "rope.dimension_count is ", c.rope_dim, ": expected an even number <= head size ",
                             c.head_dim));
    }
  }
  if (f.has(p + "rope.freq_base")) c.rope_theta = f.get_float(p + "rope.freq_base");
  if (!(c.rope_theta > 1.0) || !std::isfinite(c.rope_theta)) {
    throw config_error(cat(p, "rope.freq_base is ", c.rope_theta, ": expected a finite number > 1"));
  }
  const std::string eps_key = p + "attention.layer_norm_rms_epsilon";
  if (!f.has(eps_key)) throw config_error("missing metadata key '" + eps_key + "'");
  c.rms_eps = f.get_float(eps_key);
  if (!(c.rms_eps > 0.0) || !(c.rms_eps < 1.0)) {
    throw config_error(cat("metadata key '", eps_key, "' is ", c.rms_eps, ": expected a number in (0, 1)"));
  }

  // --- rope scaling ---
  RopeScaling& s = c.rope_scaling;
  std::string type = "none";
  if (f.has(p + "rope.scaling.type")) type = f.get_string(p + "rope.scaling.type");
  if (f.has(p + "rope.scaling.factor")) s.factor = f.get_float(p + "rope.scaling.factor");
  if (f.has(p + "rope.scale_linear")) {  // older converters: a bare linear factor
    s.factor = f.get_float(p + "rope.scale_linear");
    if (type == "none" && s.factor != 1.0) type = "linear";
  }
  if (f.has(p + "rope.scaling.original_context_length")) {
    s.original_context_length = detail::positive_int(f, p + "rope.scaling.original_context_length");
  }
  if (f.has(p + "rope.scaling.low_freq_factor")) s.low_freq_factor = f.get_float(p + "rope.scaling.low_freq_factor");
  if (f.has(p + "rope.scaling.high_freq_factor")) s.high_freq_factor = f.get_float(p + "rope.scaling.high_freq_factor");
  if (type == "none" || type.empty()) {
    s.type = RopeScalingType::None;
  } else if (type == "linear") {
    s.type = RopeScalingType::Linear;
  } else if (type == "llama3") {
    s.type = RopeScalingType::Llama3;
    if (s.original_context_length == 0) s.original_context_length = 8192;  // Llama 3's training length
    if (!(s.high_freq_factor > s.low_freq_factor) || !(s.low_freq_factor > 0)) {
      throw config_error(cat("llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor, got ",
                             s.low_freq_factor, " and ", s.high_freq_factor));
    }
  } else {
    throw config_error("metadata key '" + p + "rope.scaling.type' is '" + type +
                       "': expected 'none', 'linear' or 'llama3'");
  }
  if (s.type != RopeScalingType::None && (!(s.factor > 0.0) || !std::isfinite(s.factor))) {
    throw config_error(cat(p, "rope.scaling.factor is ", s.factor, ": expected a finite number > 0"));
  }

  // --- vocabulary: rows of the embedding, else the tokenizer's token list, else <arch>.vocab_size ---
  int64_t n_tokens = 0;
  if (f.has("tokenizer.ggml.tokens")) n_tokens = static_cast<int64_t>(f.array_size("tokenizer.ggml.tokens"));
  if (const TensorInfo* e = f.find_tensor("token_embd.weight")) {
    if (e->n_dims != 2) {
      throw config_error(cat("tensor 'token_embd.weight' has ", e->n_dims, " dimensions: expected 2 ([C, V])"));
    }
    c.vocab = static_cast<int64_t>(e->ne[1]);
    if (n_tokens > c.vocab) {
      throw config_error(cat("tokenizer.ggml.tokens has ", n_tokens, " entries but 'token_embd.weight' only ",
                             c.vocab, " rows"));
    }
  } else if (n_tokens > 0) {
    c.vocab = n_tokens;
  } else if (f.has(p + "vocab_size")) {
    c.vocab = detail::positive_int(f, p + "vocab_size");
  } else {
    throw config_error("cannot tell the vocabulary size: no 'token_embd.weight', 'tokenizer.ggml.tokens' or '" + p +
                       "vocab_size'");
  }
  if (c.vocab <= 0 || c.vocab > (int64_t(1) << 31)) {
    throw config_error(cat("vocabulary size ", c.vocab, " is out of range: expected 1..2^31"));
  }
  return c;
}

}  // namespace llama3
