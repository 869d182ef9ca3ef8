// Workspace carving: named, 256-byte aligned slices of one caller-owned buffer.
//
// The same layout function runs twice: once with no buffer to add up the bytes (the size query),
// once on the real buffer to hand out pointers. Sizing and carving therefore cannot disagree.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ftp/error.hpp"

namespace ftp {

class WorkspaceCarver {
 public:
  static constexpr std::size_t kAlignment = 256;  // cudaMalloc's own alignment; enough for vector loads

  /// Sizing mode: no buffer, only counts bytes.
  WorkspaceCarver() = default;
  /// Carving mode over [base, base + bytes).
  WorkspaceCarver(void* base, std::size_t bytes) : base_(static_cast<std::uint8_t*>(base)), capacity_(bytes) {}

  /// Reserves `count` elements of T; returns nullptr in sizing mode.
  template <class T>
  T* take(std::size_t count, const char* name) {
    const std::size_t offset = used_;
    used_ += round_up(count * sizeof(T));
    if (base_ == nullptr) return nullptr;
    if (used_ > capacity_) {
      throw Error("workspace", detail::concat("workspace too small: slice '", name, "' needs bytes [", offset, ", ",
                                              used_, ") of a ", capacity_, "-byte buffer; query workspace_bytes()"));
    }
    return reinterpret_cast<T*>(base_ + offset);
  }

  /// Bytes reserved so far (the size query's answer once the layout has run).
  std::size_t used() const noexcept { return used_; }
  bool sizing() const noexcept { return base_ == nullptr; }

  static std::size_t round_up(std::size_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

 private:
  std::uint8_t* base_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t used_ = 0;
};

/// The sizes a pruner's workspace is planned for. Every per-layer call must stay within them.
struct WorkspaceShape {
  int max_tokens = 0;    ///< largest T of any batch
  int max_seqs = 0;      ///< largest B of any batch
  int hidden = 0;        ///< C
  int ffn = 0;           ///< I
  int num_q_heads = 0;   ///< Hq
  int num_kv_heads = 0;  ///< Hkv
  int head_dim = 0;      ///< d
};

namespace detail {

/// Throws ftp::Error naming num_seqs / num_tokens when a batch exceeds what the workspace was sized for.
inline void require_batch_fits(int num_seqs, int num_tokens, const WorkspaceShape& shape) {
  require(num_seqs <= shape.max_seqs, "num_seqs", num_seqs,
          concat("B <= max_seqs = ", shape.max_seqs, " (the workspace shape)").c_str());
  require(num_tokens <= shape.max_tokens, "num_tokens", num_tokens,
          concat("T <= max_tokens = ", shape.max_tokens, " (the workspace shape)").c_str());
}

/// Throws ftp::Error naming workspace_bytes when a caller's buffer is smaller than needed.
inline void require_workspace_size(std::size_t given, std::size_t needed) {
  if (given < needed) {
    throw Error("workspace_bytes", concat("argument 'workspace_bytes' = ", given, " is too small: expected at least ",
                                          needed, " (Pruner::workspace_bytes for this shape)"));
  }
}

}  // namespace detail
}  // namespace ftp
