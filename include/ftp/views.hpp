// Views of the caller's device tensors. The library never owns these; it reads q/k and updates the
// residual rows of the tokens it keeps.
#pragma once

#include <cstdint>

#include "ftp/error.hpp"

namespace ftp {

/// Base of the logarithm in an engine's log-sum-exp output.
enum class LseBase {
  kNatural,  ///< ln(sum_j exp(x_j)) (FlashAttention's softmax_lse)
  kLog2,     ///< log2(sum_j 2^(x_j * log2 e)) = ln(...) * log2 e (FlashInfer's lse)
};

/// Post-RoPE queries and keys of one layer, packed token-major like the batch:
///   query of token t, head h:  q + t * q_row_stride + h * d   (d contiguous elements)
///   key   of token t, head g:  k + t * k_row_stride + g * d
/// Row strides are in elements and may exceed Hq*d / Hkv*d, so a fused qkv buffer or a KV cache
/// with extra columns can be passed as is. GQA: query head h reads key head h / (Hq / Hkv).
///
/// Optional `lse`: the per-row log-sum-exp that the engine's own attention kernel already wrote
/// for this layer, lse[t * lse_token_stride + h * lse_head_stride] = log of sum over the keys j
/// visible to token t of exp(q_{t,h} . k_{j,h/G} / sqrt(d)), in `lse_base`. With it the
/// LastQueriesAttention scorer skips its own first pass over the keys (half the scoring work);
/// only the rows of each sequence's last n = min(N, L) tokens are read. FlashAttention's varlen
/// output [Hq, T] is {lse, 1, T}; a [T, Hq] buffer is {lse, Hq, 1}. The scorer trusts these
/// values: a wrong lse gives wrong scores, not an error.
template <class T>
struct AttentionView {
  const T* q = nullptr;
  std::int64_t q_row_stride = 0;
  const T* k = nullptr;
  std::int64_t k_row_stride = 0;
  int num_q_heads = 0;   ///< Hq
  int num_kv_heads = 0;  ///< Hkv, divides Hq
  int head_dim = 0;      ///< d: 64, 128 or 256
  const float* lse = nullptr;          ///< optional engine log-sum-exp (see above); nullptr = none
  std::int64_t lse_token_stride = 0;   ///< elements between tokens in `lse`
  std::int64_t lse_head_stride = 0;    ///< elements between query heads in `lse`
  LseBase lse_base = LseBase::kNatural;
};

/// The residual stream [T, C] after self-attention (hidden + attention output); the FFN output is
/// added into the rows of kept tokens in place. Row stride in elements (>= C).
template <class T>
struct ResidualView {
  T* data = nullptr;
  std::int64_t row_stride = 0;
  int hidden = 0;  ///< C
};

/// Head sizes the scoring kernels are instantiated for.
inline bool is_supported_head_dim(int d) { return d == 64 || d == 128 || d == 256; }

namespace detail {

template <class T>
void validate_attention(const AttentionView<T>& a) {
  require_pointer(a.q, "attention.q");
  require_pointer(a.k, "attention.k");
  require(a.num_q_heads >= 1, "attention.num_q_heads", a.num_q_heads, "Hq >= 1");
  require(a.num_kv_heads >= 1, "attention.num_kv_heads", a.num_kv_heads, "Hkv >= 1");
  require(a.num_q_heads % a.num_kv_heads == 0, "attention.num_q_heads", a.num_q_heads,
          "a multiple of num_kv_heads (GQA)");
  require(is_supported_head_dim(a.head_dim), "attention.head_dim", a.head_dim, "64, 128 or 256");
  require(a.q_row_stride >= static_cast<std::int64_t>(a.num_q_heads) * a.head_dim, "attention.q_row_stride",
          a.q_row_stride, "q_row_stride >= Hq * d");
  require(a.k_row_stride >= static_cast<std::int64_t>(a.num_kv_heads) * a.head_dim, "attention.k_row_stride",
          a.k_row_stride, "k_row_stride >= Hkv * d");
  if (a.lse != nullptr) {
    require(a.lse_token_stride >= 1, "attention.lse_token_stride", a.lse_token_stride,
            "lse_token_stride >= 1 when lse is given");
    require(a.lse_head_stride >= 1 || a.num_q_heads == 1, "attention.lse_head_stride", a.lse_head_stride,
            "lse_head_stride >= 1 when lse is given");
    require(a.lse_base == LseBase::kNatural || a.lse_base == LseBase::kLog2, "attention.lse_base",
            static_cast<int>(a.lse_base), "LseBase::kNatural or LseBase::kLog2");
  }
}

template <class T>
void validate_residual(const ResidualView<T>& r, int expected_hidden) {
  require_pointer(r.data, "residual.data");
  require(r.hidden == expected_hidden, "residual.hidden", r.hidden, "the hidden size C the pruner was built for");
  require(r.row_stride >= r.hidden, "residual.row_stride", r.row_stride, "row_stride >= C");
}

}  // namespace detail
}  // namespace ftp
