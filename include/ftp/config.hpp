// ftp::Config: the four numbers of FFN token pruning (paper, Section 3.2 and 4.1), validated on
// construction.
#pragma once

#include <cmath>

#include "ftp/error.hpp"

namespace ftp {

/// Shape legend used in every comment of the library:
///   B sequences in a batch, T packed tokens (sum of lengths), L one sequence's length,
///   C hidden size, I FFN width, Hq / Hkv query / key-value heads, d head size,
///   P initial tokens always kept, N last queries scored (and last tokens always kept),
///   F leading layers run in full, M rows the FFN runs on (kept tokens).
///
/// FTP settings. Defaults are the paper's Llama3 settings (P=100, N=50, F=10, eta=0.9).
///
/// Every constructor and `with_*` call validates and throws ftp::Error naming the argument:
/// P >= 0, N >= 1, F >= 0, 0 < eta <= 1 (NaN rejected).
class Config {
 public:
  /// @param initial_tokens P: tokens [0, P) of every sequence are always kept.
  /// @param last_queries   N: the last N queries score the tokens; tokens [L-N, L) are always kept.
  /// @param full_layers    F: layers with index < F run the whole FFN and are not scored.
  /// @param eta            cumulative share of importance the kept middle tokens must reach.
  explicit Config(int initial_tokens = 100, int last_queries = 50, int full_layers = 10, double eta = 0.9)
      : initial_tokens_(initial_tokens), last_queries_(last_queries), full_layers_(full_layers), eta_(eta) {
    detail::require(initial_tokens >= 0, "initial_tokens (P)", initial_tokens, "P >= 0");
    detail::require(last_queries >= 1, "last_queries (N)", last_queries, "N >= 1");
    detail::require(full_layers >= 0, "full_layers (F)", full_layers, "F >= 0");
    detail::require(std::isfinite(eta) && eta > 0.0 && eta <= 1.0, "eta", eta, "0 < eta <= 1");
  }

  /// The paper's Llama3-8B setting: P=100, N=50, F=10, eta=0.90.
  static Config llama3() { return Config(100, 50, 10, 0.90); }
  /// The paper's Qwen2-7B setting: P=100, N=50, F=10, eta=0.95.
  static Config qwen2() { return Config(100, 50, 10, 0.95); }

  int initial_tokens() const noexcept { return initial_tokens_; }
  int last_queries() const noexcept { return last_queries_; }
  int full_layers() const noexcept { return full_layers_; }
  double eta() const noexcept { return eta_; }

  Config with_initial_tokens(int p) const { return Config(p, last_queries_, full_layers_, eta_); }
  Config with_last_queries(int n) const { return Config(initial_tokens_, n, full_layers_, eta_); }
  Config with_full_layers(int f) const { return Config(initial_tokens_, last_queries_, f, eta_); }
  Config with_eta(double e) const { return Config(initial_tokens_, last_queries_, full_layers_, e); }

  /// True when layer `layer` is pruned (layer >= F).
  bool prunes_layer(int layer) const noexcept { return layer >= full_layers_; }

 private:
  int initial_tokens_;
  int last_queries_;
  int full_layers_;
  double eta_;
};

}  // namespace ftp
