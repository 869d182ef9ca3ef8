// The host reference (the oracle of the GPU tests) against hand-worked cases.
#include <doctest/doctest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "ftp/detail/importance_mass.hpp"
#include "ftp/detail/random_score.hpp"
#include "ftp/host/ffn.hpp"
#include "ftp/host/last_queries_attention.hpp"
#include "ftp/host/pruner.hpp"
#include "ftp/host/random_scorer.hpp"
#include "ftp/host/reserve.hpp"

using Flags = std::vector<std::uint8_t>;

namespace {

ftp::BatchLayout layout_of(std::vector<int> lengths) {
  ftp::BatchLayout layout;
  layout.cu_seqlens = {0};
  for (int length : lengths) layout.cu_seqlens.push_back(layout.cu_seqlens.back() + length);
  return layout;
}

std::vector<int> kept(const Flags& flags) { return ftp::host::kept_tokens(flags); }

}  // namespace

TEST_CASE("cumulative eta keeps the fewest top tokens that reach eta of the middle total") {
  // P = 1, N = 1, L = 7: middle tokens 1..5 with dyadic scores (sums are exact).
  const ftp::BatchLayout layout = layout_of({7});
  const std::vector<float> scores = {9.0f, 0.125f, 0.5f, 0.0625f, 0.25f, 0.0625f, 9.0f};
  const ftp::host::CumulativeEta rule;
  // ranks: t2 (0.5), t4 (0.25), t1 (0.125), t3 (0.0625), t5 (0.0625: tie, later index last)
  CHECK(kept(rule.select(scores, layout, ftp::Config(1, 1, 0, 0.5))) == std::vector<int>{0, 2, 6});
  CHECK(kept(rule.select(scores, layout, ftp::Config(1, 1, 0, 0.75))) == std::vector<int>{0, 2, 4, 6});
  CHECK(kept(rule.select(scores, layout, ftp::Config(1, 1, 0, 0.76))) == std::vector<int>{0, 1, 2, 4, 6});
  CHECK(kept(rule.select(scores, layout, ftp::Config(1, 1, 0, 0.9375))) == std::vector<int>{0, 1, 2, 3, 4, 6});
  CHECK(kept(rule.select(scores, layout, ftp::Config(1, 1, 0, 0.95))) == std::vector<int>{0, 1, 2, 3, 4, 5, 6});
}

TEST_CASE("ties rank the earlier token first") {
  const ftp::BatchLayout layout = layout_of({6});
  const std::vector<float> scores = {0, 0.25f, 0.25f, 0.25f, 0.25f, 0};
  CHECK(kept(ftp::host::CumulativeEta{}.select(scores, layout, ftp::Config(1, 1, 0, 0.5))) ==
        std::vector<int>{0, 1, 2, 5});
  CHECK(kept(ftp::host::TopCount{3}.select(scores, layout, ftp::Config(1, 1, 0, 0.5))) ==
        std::vector<int>{0, 1, 2, 3, 5});
}

TEST_CASE("eta = 1 keeps every token, zero scores included") {
  const ftp::BatchLayout layout = layout_of({8});
  const std::vector<float> scores = {1, 0, 0, 0.5f, 0, 0, 0, 1};
  const Flags flags = ftp::host::CumulativeEta{}.select(scores, layout, ftp::Config(1, 1, 0, 1.0));
  CHECK(kept(flags).size() == 8);
}

TEST_CASE("all-zero middle scores keep only the reserved tokens") {
  const ftp::BatchLayout layout = layout_of({8});
  const std::vector<float> scores(8, 0.0f);
  CHECK(kept(ftp::host::CumulativeEta{}.select(scores, layout, ftp::Config(2, 1, 0, 0.9))) ==
        std::vector<int>{0, 1, 7});
}

TEST_CASE("a NaN, Inf or negative middle score makes that sequence keep everything, others unaffected") {
  const ftp::BatchLayout layout = layout_of({6, 6});
  const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                              -std::numeric_limits<float>::infinity(), -1e-3f};
  for (float bad : bad_values) {
    CAPTURE(bad);
    std::vector<float> scores = {0, 0.5f, bad, 0.1f, 0.1f, 0, /* second */ 0, 0.7f, 0.1f, 0.1f, 0.1f, 0};
    const Flags flags = ftp::host::CumulativeEta{}.select(scores, layout, ftp::Config(1, 1, 0, 0.6));
    CHECK(kept(flags) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 11});
  }
  // -0 is a valid zero
  std::vector<float> scores = {0, 0.5f, -0.0f, 0.25f, 0.25f, 0};
  CHECK(kept(ftp::host::CumulativeEta{}.select(scores, layout_of({6}), ftp::Config(1, 1, 0, 0.5))) ==
        std::vector<int>{0, 1, 5});
}

TEST_CASE("short sequences, single tokens and the empty batch keep everything they have") {
  const ftp::Config config;  // P = 100, N = 50
  CHECK(ftp::host::CumulativeEta{}.select({}, layout_of({}), config).empty());
  CHECK(kept(ftp::host::CumulativeEta{}.select({0.3f}, layout_of({1}), config)) == std::vector<int>{0});
  std::vector<float> scores(150, 1.0f);
  CHECK(kept(ftp::host::CumulativeEta{}.select(scores, layout_of({150}), config)).size() == 150);
}

TEST_CASE("a ragged batch of lengths 0, 1, P+N, P+N+1 and 3000 matches an independent check") {
  const ftp::Config config(100, 50, 0, 0.9);
  const ftp::BatchLayout layout = layout_of({0, 1, 150, 151, 3000});
  std::mt19937 rng(7);
  std::exponential_distribution<float> dist(1.0f);
  std::vector<float> scores(layout.num_tokens());
  for (float& s : scores) s = dist(rng);
  const Flags flags = ftp::host::CumulativeEta{}.select(scores, layout, config);
  // lengths 0, 1, 150 keep all; 151 keeps the reserved 150 plus its single middle token (any
  // positive score reaches 90% of itself)
  for (int t = 0; t < 1 + 150 + 151; ++t) CHECK(flags[t] == 1);
  // 3000: middle [100, 2950); the kept set is a top-k prefix whose double-precision sum reaches
  // eta of the total while the top k-1 do not (up to the fixed-point resolution)
  const int start = 302;
  std::vector<int> middle(2850);
  std::iota(middle.begin(), middle.end(), start + 100);
  std::stable_sort(middle.begin(), middle.end(), [&](int a, int b) { return scores[a] > scores[b]; });
  double total = 0.0;
  for (int t : middle) total += scores[t];
  int k = 0;
  while (k < 2850 && flags[middle[k]]) ++k;
  for (int r = k; r < 2850; ++r) CHECK(flags[middle[r]] == 0);  // kept = a prefix of the ranking
  double top = 0.0;
  for (int r = 0; r < k; ++r) top += scores[middle[r]];
  CHECK(top >= 0.9 * total * (1 - 1e-9));
  CHECK(top - scores[middle[k - 1]] < 0.9 * total * (1 + 1e-9));
  for (int t = start; t < start + 100; ++t) CHECK(flags[t] == 1);
  for (int t = start + 2950; t < start + 3000; ++t) CHECK(flags[t] == 1);
  CHECK(k > 1000);  // exponential scores are not concentrated: most tokens are needed
}

TEST_CASE("top ratio and top count keep ceil(ratio x count) and min(count, middle) tokens") {
  const ftp::BatchLayout layout = layout_of({7});
  const std::vector<float> scores = {0, 0.1f, 0.5f, 0.2f, 0.4f, 0.3f, 0};
  const ftp::Config config(1, 1, 0, 0.9);
  CHECK(kept(ftp::host::TopRatio{0.5}.select(scores, layout, config)) == std::vector<int>{0, 2, 4, 5, 6});
  CHECK(kept(ftp::host::TopRatio{0.2}.select(scores, layout, config)) == std::vector<int>{0, 2, 6});
  CHECK(kept(ftp::host::TopCount{2}.select(scores, layout, config)) == std::vector<int>{0, 2, 4, 6});
  CHECK(kept(ftp::host::TopCount{0}.select(scores, layout, config)) == std::vector<int>{0, 6});
  CHECK(kept(ftp::host::TopCount{99}.select(scores, layout, config)).size() == 7);
  CHECK(kept(ftp::host::KeepAll{}.select(scores, layout, config)).size() == 7);
}

TEST_CASE("fixed-point masses are exact, bounded below 2^53 in total, and thresholds never exceed the total") {
  CHECK(ftp::detail::ceil_log2(1) == 0);
  CHECK(ftp::detail::ceil_log2(2) == 1);
  CHECK(ftp::detail::ceil_log2(3) == 2);
  CHECK(ftp::detail::ceil_log2(1024) == 10);
  CHECK(ftp::detail::ceil_log2(1025) == 11);
  // 0.5 = 0.5 * 2^0 with n = 4: exponent 53 - 2 - 0 = 51, so 0.5 -> 2^50 exactly
  const int e = ftp::detail::mass_exponent(0.5f, 4);
  CHECK(e == 51);
  CHECK(ftp::detail::quantize_mass(0.5f, e) == (std::uint64_t{1} << 50));
  CHECK(ftp::detail::quantize_mass(0.125f, e) == (std::uint64_t{1} << 48));
  // the largest scores cannot overflow: n copies of FLT_MAX sum below 2^53
  for (int n : {1, 3, 1000, 131072}) {
    const int ex = ftp::detail::mass_exponent(FLT_MAX, n);
    const std::uint64_t q = ftp::detail::quantize_mass(FLT_MAX, ex);
    CHECK(static_cast<long double>(q) * n < 9007199254740992.0L);
  }
  std::mt19937_64 rng(3);
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t total = rng() >> 11;  // < 2^53
    const double eta = std::uniform_real_distribution<double>(1e-6, 1.0)(rng);
    CHECK(ftp::detail::eta_threshold(total, eta) <= total);
  }
  CHECK(ftp::detail::eta_threshold(1000, 1.0) == 1000);
  CHECK(ftp::detail::eta_threshold(0, 0.9) == 0);
}

TEST_CASE("last-queries attention reference: uniform attention gives 1/(pos+1) per query and head") {
  // q = 0: every logit is 0, so each query spreads 1 evenly over its pos + 1 visible keys.
  const int L = 4, H = 2, d = 64;
  std::vector<float> q(L * H * d, 0.0f), k(L * 1 * d, 1.0f);
  const ftp::host::AttentionInputs a{q.data(), H * d, k.data(), d, H, 1, d};
  const std::vector<float> s = ftp::host::LastQueriesAttention{}.score(0, layout_of({L}), a, ftp::Config(0, 2, 0, 0.9));
  // queries at positions 2 and 3
  CHECK(s[0] == doctest::Approx(2 * (1.0 / 3 + 1.0 / 4)));
  CHECK(s[2] == doctest::Approx(2 * (1.0 / 3 + 1.0 / 4)));
  CHECK(s[3] == doctest::Approx(2 * (1.0 / 4)));
  CHECK(std::accumulate(s.begin(), s.end(), 0.0) == doctest::Approx(H * 2));  // each row sums to 1
}

TEST_CASE("last-queries attention reference: a key aligned with every query takes the mass, per GQA group") {
  const int L = 5, Hq = 4, Hkv = 2, d = 64;
  std::vector<float> q(L * Hq * d, 0.0f), k(L * Hkv * d, 0.0f);
  for (int t = 0; t < L; ++t) {
    for (int h = 0; h < Hq; ++h) q[(t * Hq + h) * d + 0] = 400.0f;  // logit 400/sqrt(64) = 50 for aligned keys
  }
  k[(1 * Hkv + 0) * d + 0] = 1.0f;  // token 1 in KV head 0 (query heads 0, 1)
  k[(3 * Hkv + 1) * d + 0] = 1.0f;  // token 3 in KV head 1 (query heads 2, 3)
  const ftp::host::AttentionInputs a{q.data(), Hq * d, k.data(), Hkv * d, Hq, Hkv, d};
  const std::vector<float> s = ftp::host::LastQueriesAttention{}.score(0, layout_of({L}), a, ftp::Config(0, 1, 0, 0.9));
  // one query (position 4); heads 0,1 put ~1 on token 1, heads 2,3 ~1 on token 3
  CHECK(s[1] == doctest::Approx(2.0).epsilon(1e-3));
  CHECK(s[3] == doctest::Approx(2.0).epsilon(1e-3));
  CHECK(s[0] < 1e-3);
}

TEST_CASE("random scorer reference is deterministic, in [0, 1), and independent of batch position") {
  const ftp::host::RandomScorer scorer{42};
  const std::vector<float> alone = scorer.score(3, layout_of({5}));
  const std::vector<float> again = scorer.score(3, layout_of({5}));
  CHECK(alone == again);
  for (float s : alone) CHECK((s >= 0.0f && s < 1.0f));
  CHECK(scorer.score(4, layout_of({5})) != alone);
  CHECK(ftp::host::RandomScorer{43}.score(3, layout_of({5})) != alone);
  CHECK(ftp::detail::random_score(42, 3, 0, 2) == alone[2]);
}

TEST_CASE("SwiGLU reference on a hand-computed row; pruned rows pass unchanged") {
  const float norm_weight[2] = {1.0f, 1.0f}, gate[2] = {1.0f, 0.0f}, up[2] = {0.0f, 1.0f}, down[2] = {2.0f, -1.0f};
  std::vector<float> residual = {3.0f, 4.0f, 7.0f, 8.0f};
  const ftp::host::SwiGluWeights w{norm_weight, gate, up, down, 1e-6f};
  ftp::host::CublasSwiGLU{}.run(residual.data(), 2, 2, 1, {0}, w);
  const double inv_rms = 1.0 / std::sqrt(12.5 + 1e-6);
  const double g = 3 * inv_rms, u = 4 * inv_rms;
  const double act = g / (1 + std::exp(-g)) * u;
  CHECK(residual[0] == doctest::Approx(3 + 2 * act));
  CHECK(residual[1] == doctest::Approx(4 - act));
  CHECK(residual[2] == 7.0f);  // row 1 not in the kept set
  CHECK(residual[3] == 8.0f);
}

TEST_CASE("GELU MLP reference on a hand-computed row with biases") {
  const float nw[2] = {1, 1}, nb[2] = {0.5f, -0.5f}, up[2] = {1, 1}, ub[1] = {0.25f}, down[2] = {1, -2},
              db[2] = {0.1f, 0.2f};
  std::vector<float> residual = {1.0f, 3.0f};
  ftp::host::CublasGeluMlp{}.run(residual.data(), 2, 2, 1, {0}, {nw, nb, up, ub, down, db, 1e-6f});
  // LayerNorm of (1, 3): mean 2, std 1 -> (-1, 1) + bias -> (-0.5, 0.5); up: 0 + 0.25
  const double v = 0.25;
  const double gelu = 0.5 * v * (1 + std::tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
  CHECK(residual[0] == doctest::Approx(1 + gelu + 0.1).epsilon(1e-5));
  CHECK(residual[1] == doctest::Approx(3 - 2 * gelu + 0.2).epsilon(1e-5));
}

TEST_CASE("the reference layer runs the full FFN below F and only kept rows from F on") {
  const ftp::BatchLayout layout = layout_of({4});
  const float nw[1] = {1}, gate[1] = {1}, up[1] = {1}, down[1] = {1};
  const ftp::host::SwiGluWeights w{nw, gate, up, down, 1e-6f};
  const std::vector<float> scores = {0, 1.0f, 0.0f, 0};
  const ftp::Config config(1, 1, 2, 0.5);
  std::vector<float> dense = {1, 2, 3, 4}, pruned = {1, 2, 3, 4};
  const Flags all = ftp::host::run_layer(1, config, layout, scores, ftp::host::CumulativeEta{},
                                         ftp::host::CublasSwiGLU{}, dense.data(), 1, 1, 1, w);
  const Flags some = ftp::host::run_layer(2, config, layout, scores, ftp::host::CumulativeEta{},
                                          ftp::host::CublasSwiGLU{}, pruned.data(), 1, 1, 1, w);
  CHECK(kept(all) == std::vector<int>{0, 1, 2, 3});
  CHECK(kept(some) == std::vector<int>{0, 1, 3});
  CHECK(pruned[2] == 3.0f);  // pruned token unchanged
  CHECK(dense[2] != 3.0f);
  CHECK(pruned[1] == dense[1]);
}
