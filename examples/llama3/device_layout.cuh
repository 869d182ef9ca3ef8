// Where DeviceModel's tensors live: device weights, activations and KV cache, and the layouts that
// size them (no buffer) and carve them out of one allocation each. Apart: pure layout, no CUDA calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "ftp/workspace.hpp"
#include "llama3/kernels/attention_decode.cuh"
#include "llama3/kernels/common.cuh"
#include "llama3/model_config.hpp"

namespace llama3 {

using kernels::bf16;

namespace model_detail {

constexpr std::size_t kCublasWorkspaceBytes = std::size_t{32} << 20;  // cuBLAS docs: 32 MiB on Hopper
constexpr int kLogitRows = 64;  // rows per logits GEMM when every position's logits are wanted

  // Device pointers of one layer (all inside the weights allocation).
  struct LayerParams {
    bf16* attn_norm = nullptr;  // [C]
    bf16* wqkv = nullptr;       // [QKV, C]: Wq rows, then Wk, then Wv
    bf16* bqkv = nullptr;       // [QKV] or null
    bf16* wo = nullptr;         // [C, Hq d]
    bf16* ffn_norm = nullptr;   // [C]
    bf16* gate_up = nullptr;    // [2I, C]: gate rows, then up
    bf16* down = nullptr;       // [C, I]
  };
  struct Weights {
    bf16* token_embd = nullptr;   // [V, C]
    bf16* output_norm = nullptr;  // [C]
    bf16* output = nullptr;       // [V, C]; = token_embd when tied
    std::vector<LayerParams> layers;
  };
  struct Activations {
    int* tokens = nullptr;       // [S] prompt ids
    int* positions = nullptr;    // [S] 0, 1, ..., S-1
    int* cu_seqlens = nullptr;   // [2] {0, L}
    int* step = nullptr;         // [3] decode: token, position, length
    int* next_token = nullptr;   // [1] sampled id
    float* inv_freq = nullptr;   // [d/2] RoPE inverse wavelengths (0 past rope_dim: no rotation)
    bf16* hidden = nullptr;      // [S, C] residual stream
    bf16* normed = nullptr;      // [S, C]
    bf16* qkv = nullptr;         // [S, QKV]
    bf16* attn = nullptr;        // [S, Hq d]
    float* attn_lse = nullptr;   // [S, Hq] the attention's row log-sum-exp, reused by FTP's scorer
    bf16* kv_cache = nullptr;    // [layers][2][S, Hkv d]: keys, then values, of each layer
    float* logits = nullptr;     // [kLogitRows, V]
    void* decode_ws = nullptr;   // launch_attention_decode's split buffers
    std::size_t decode_ws_bytes = 0;
    void* cublas_ws = nullptr;   // kCublasWorkspaceBytes
  };
  struct Sizes {
    std::size_t weights = 0, activations = 0, kv_cache = 0, ftp_workspace = 0, dense_workspace = 0;
  };

  // ---- layouts: run once to size (no buffer), once to carve (ftp::WorkspaceCarver) ----
  inline void layout_weights(ftp::WorkspaceCarver& carver, const LlamaConfig& c, bool tied, bool biases, Weights& w) {
    const std::size_t C = c.hidden, I = c.ffn, QD = c.q_dim(), KVD = c.kv_dim(), V = c.vocab;
    const std::size_t QKV = QD + 2 * KVD;
    w.token_embd = carver.take<bf16>(V * C, "token_embd");
    w.output_norm = carver.take<bf16>(C, "output_norm");
    w.output = tied ? w.token_embd : carver.take<bf16>(V * C, "output");
    w.layers.assign(static_cast<std::size_t>(c.n_layers), LayerParams{});
    for (LayerParams& L : w.layers) {
      L.attn_norm = carver.take<bf16>(C, "attn_norm");
      L.wqkv = carver.take<bf16>(QKV * C, "wqkv");
      L.bqkv = biases ? carver.take<bf16>(QKV, "bqkv") : nullptr;
      L.wo = carver.take<bf16>(C * QD, "wo");
      L.ffn_norm = carver.take<bf16>(C, "ffn_norm");
      L.gate_up = carver.take<bf16>(2 * I * C, "gate_up");
      L.down = carver.take<bf16>(C * I, "down");
    }
  }

  inline void layout_activations(ftp::WorkspaceCarver& carver, const LlamaConfig& c, int max_tokens, Activations& a,
                                 std::size_t* kv_bytes = nullptr) {
    const std::size_t S = static_cast<std::size_t>(max_tokens), C = c.hidden, QD = c.q_dim(), KVD = c.kv_dim();
    const std::size_t QKV = QD + 2 * KVD, V = c.vocab;
    a.tokens = carver.take<int>(S, "tokens");
    a.positions = carver.take<int>(S, "positions");
    a.cu_seqlens = carver.take<int>(2, "cu_seqlens");
    a.step = carver.take<int>(3, "step");
    a.next_token = carver.take<int>(1, "next_token");
    a.inv_freq = carver.take<float>(static_cast<std::size_t>(c.head_dim / 2), "inv_freq");
    a.hidden = carver.take<bf16>(S * C, "hidden");
    a.normed = carver.take<bf16>(S * C, "normed");
    a.qkv = carver.take<bf16>(S * QKV, "qkv");
    a.attn = carver.take<bf16>(S * QD, "attn");
    a.attn_lse = carver.take<float>(S * c.n_heads, "attn_lse");
    const std::size_t before_kv = carver.used();
    a.kv_cache = carver.take<bf16>(static_cast<std::size_t>(c.n_layers) * 2 * S * KVD, "kv_cache");
    if (kv_bytes != nullptr) *kv_bytes = carver.used() - before_kv;
    a.logits = carver.take<float>(model_detail::kLogitRows * V, "logits");
    a.decode_ws_bytes = kernels::attention_decode_workspace_bytes(1, static_cast<int>(c.n_heads),
                                                                  static_cast<int>(c.head_dim), max_tokens);
    a.decode_ws = carver.take<std::uint8_t>(a.decode_ws_bytes, "decode_ws");
    a.cublas_ws = carver.take<std::uint8_t>(model_detail::kCublasWorkspaceBytes, "cublas_ws");
  }

}  // namespace model_detail

}  // namespace llama3
