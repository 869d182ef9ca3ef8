// GPU selection (the fused radix select of prefix rules, and CUB sort + exact scan + rank rules)
// against the host reference, fed the same scores through a user-written scorer, so kept sets
// must match exactly.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "ftp/ftp.hpp"
#include "ftp/host/reserve.hpp"
#include "gpu_guard.hpp"
#include "test_util.cuh"

using namespace ftp_test;

namespace {

/// A scorer written the way a user writes one (derive from ScorerBase, add score()): it hands the
/// pruner precomputed scores from a device array.
struct ProvidedScores : ftp::ScorerBase {
  static constexpr bool kNeedsAttention = false;
  const float* d_scores = nullptr;

  template <class T>
  void score(const ftp::ScoreContext<T>& ctx) const {
    FTP_CUDA_CHECK(cudaMemcpyAsync(ctx.scores, d_scores, sizeof(float) * ctx.batch.num_tokens,
                                   cudaMemcpyDeviceToDevice, ctx.stream));
  }
};

struct ZeroFfn {
  template <class T>
  void operator()(const ftp::FfnRows<T>& rows, const void*, cudaStream_t stream) const {
    cuda_ok(cudaMemsetAsync(rows.output, 0, sizeof(float) * rows.num_rows * rows.hidden, stream), "zero ffn");
  }
};
using ZeroExecutor = ftp::CallableFfn<ZeroFfn>;

enum class Scores { Exponential, PowerLaw, Ties, AllZero, WithInvalid, Extremes };

std::vector<float> make_scores(Scores kind, const ftp::BatchLayout& layout, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<float> s(layout.num_tokens());
  std::exponential_distribution<float> expo(1.0f);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  for (float& x : s) {
    switch (kind) {
      case Scores::Exponential: x = expo(rng); break;
      case Scores::PowerLaw: x = std::pow(uni(rng), 8.0f) * 50.0f; break;  // concentrated, like attention
      case Scores::Ties: x = 0.25f * static_cast<float>(rng() % 4); break;
      case Scores::AllZero: x = (rng() % 2) ? 0.0f : -0.0f; break;
      case Scores::WithInvalid: x = expo(rng); break;
      case Scores::Extremes: {
        const float pool[] = {1e-40f, 3e38f, 1.0f, 0.0f, 1e-30f, 2.5e38f};
        x = pool[rng() % 6];
        break;
      }
    }
  }
  if (kind == Scores::WithInvalid) {
    const float bad[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -1.0f};
    for (int b = 0; b < layout.num_seqs(); b += 2) {  // every other sequence gets one bad middle score
      const int mid = layout.cu_seqlens[b] + layout.length(b) / 2;
      if (layout.length(b) > 0) s[mid] = bad[(b / 2) % 3];
    }
  }
  return s;
}

template <class Reserve, class HostReserve>
void check_selection(const Reserve& reserve, const HostReserve& host_reserve, const ftp::Config& config,
                     const std::vector<int>& lengths, Scores kind, unsigned seed) {
  CAPTURE(static_cast<int>(kind));
  CAPTURE(config.eta());
  CAPTURE(seed);
  CAPTURE(lengths.size());
  const ftp::BatchLayout layout = layout_of(lengths);
  const int T_ = layout.num_tokens(), B = layout.num_seqs();
  const std::vector<float> scores = make_scores(kind, layout, seed);
  DeviceArray<float> d_scores(scores);
  ProvidedScores scorer;
  scorer.d_scores = d_scores.get();
  const int C = 8;
  ftp::Pruner<float, ProvidedScores, Reserve, ZeroExecutor> pruner(config, {T_, B, C, 8, 1, 1, 64}, scorer, reserve,
                                                                   ZeroExecutor(ZeroFfn{}));
  // Zeros: the executor gathers and scatters these rows (initcheck reads them as the FFN's input).
  DeviceArray<float> residual(std::vector<float>(static_cast<std::size_t>(std::max(T_, 1)) * C, 0.0f));
  pruner.plan(layout.cu_seqlens.data(), B, T_, nullptr);
  const std::vector<std::uint8_t> flags = host_reserve.select(scores, layout, config);
  const std::vector<int> want = ftp::host::kept_tokens(flags);
  // Every selection path: the one-CTA, the cluster and the multi-CTA radix selects (rules with a
  // prefix form), the sort, and the automatic choice between them.
  for (const ftp::SelectionPath path : {ftp::SelectionPath::kFused, ftp::SelectionPath::kSorted,
                                        ftp::SelectionPath::kMultiCta, ftp::SelectionPath::kCluster,
                                        ftp::SelectionPath::kAuto}) {
    CAPTURE(static_cast<int>(path));
    pruner.set_selection_path(path);
    cuda_ok(cudaMemset(const_cast<int*>(pruner.kept_token_indices()), 0xFF, sizeof(int) * std::max(T_, 1)),
            "poison kept");
    pruner.run(config.full_layers(), {}, {residual.get(), C, C}, {}, nullptr);
    const ftp::LayerReport& report = pruner.last_report();
    REQUIRE(report.kept_tokens == static_cast<int>(want.size()));
    if (report.pruned) {
      std::vector<int> got(report.kept_tokens);
      cuda_ok(cudaMemcpy(got.data(), pruner.kept_token_indices(), sizeof(int) * got.size(), cudaMemcpyDeviceToHost),
              "kept");
      CHECK(got == want);
    }
    for (int b = 0; b < B; ++b) {
      CAPTURE(b);
      const ftp::MiddleSegment mid = ftp::middle_segment(layout, b, config);
      int kept_b = 0;
      bool invalid_b = false;
      for (int t = layout.cu_seqlens[b]; t < layout.cu_seqlens[b + 1]; ++t) {
        kept_b += flags[t];
        if (t >= mid.begin && t < mid.end && !ftp::detail::is_valid_score(scores[t])) invalid_b = true;
      }
      CHECK(report.kept_per_seq[b] == kept_b);
      if (report.pruned) CHECK((report.invalid_scores[b] != 0) == invalid_b);
    }
  }
}

std::vector<int> random_lengths(int count, int max_length, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<int> lengths(count);
  for (int& l : lengths) l = static_cast<int>(rng() % (max_length + 1));
  return lengths;
}

const std::vector<int> kBoundaries = {0, 1, 150, 151, 3000};  // 0, 1, P+N, P+N+1, long (P=100, N=50)
const std::vector<int> kLongMix = {5000, 0, 1, 151, 3000, 9000, 4246};  // longest middle > 4096: one-sort path

}  // namespace

TEST_CASE("CumulativeEta on the GPU selects exactly the host reference's tokens" * ftp_test::needs_gpu()) {
  const Scores kinds[] = {Scores::Exponential, Scores::PowerLaw, Scores::Ties, Scores::AllZero, Scores::WithInvalid,
                          Scores::Extremes};
  unsigned seed = 100;
  for (double eta : {0.5, 0.9, 0.95, 0.999}) {
    const ftp::Config config(100, 50, 0, eta);
    for (Scores kind : kinds) {
      check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, kBoundaries, kind, ++seed);
      check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, {0}, kind, ++seed);
      check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, {1}, kind, ++seed);
      check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, random_lengths(64, 700, seed), kind,
                      ++seed);
      // a long sequence switches to the one-sort path (64-bit keys over the whole batch)
      check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, kLongMix, kind, ++seed);
    }
    check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, {scaled(32768)}, Scores::PowerLaw, ++seed);
    check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, config, {scaled(20000), scaled(9000), scaled(3768)}, Scores::Ties, ++seed);
  }
  // Many tiles per sequence for the multi-CTA select (2048 tokens a tile), beside short sequences.
  const ftp::Config paper(100, 50, 0, 0.95);
  for (Scores kind : {Scores::PowerLaw, Scores::Ties, Scores::WithInvalid, Scores::AllZero}) {
    check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, paper, {scaled(131072)}, kind, ++seed);
    check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, paper, {scaled(70001), 0, 151, scaled(40960), 1},
                    kind, ++seed);
  }
}

TEST_CASE("CumulativeEta with eta = 1 keeps everything and skips scoring" * ftp_test::needs_gpu()) {
  check_selection(ftp::CumulativeEta{}, ftp::host::CumulativeEta{}, ftp::Config(100, 50, 0, 1.0), kBoundaries,
                  Scores::PowerLaw, 1);
}

TEST_CASE("TopRatio, TopCount and KeepAll on the GPU select exactly the host reference's tokens" *
          ftp_test::needs_gpu()) {
  const ftp::Config config(100, 50, 0, 0.9);
  for (Scores kind : {Scores::Exponential, Scores::Ties, Scores::WithInvalid}) {
    check_selection(ftp::TopRatio{0.4}, ftp::host::TopRatio{0.4}, config, kBoundaries, kind, 7);
    check_selection(ftp::TopRatio{0.05}, ftp::host::TopRatio{0.05}, config, random_lengths(33, 2000, 8), kind, 9);
    check_selection(ftp::TopCount{17}, ftp::host::TopCount{17}, config, kBoundaries, kind, 10);
    check_selection(ftp::TopCount{700}, ftp::host::TopCount{700}, config, kLongMix, kind, 15);
    check_selection(ftp::TopCount{0}, ftp::host::TopCount{0}, config, random_lengths(16, 400, 11), kind, 12);
    check_selection(ftp::KeepAll{}, ftp::host::KeepAll{}, config, kBoundaries, kind, 13);
  }
  check_selection(ftp::TopRatio{0.4}, ftp::host::TopRatio{0.4}, config, {scaled(32768)}, Scores::Exponential, 14);
}

TEST_CASE("the layer report flags sequences with invalid scores and counts kept tokens" * ftp_test::needs_gpu()) {
  const ftp::BatchLayout layout = layout_of({400, 400, 400});
  std::vector<float> scores = make_scores(Scores::PowerLaw, layout, 3);
  scores[400 + 200] = std::numeric_limits<float>::quiet_NaN();  // middle of sequence 1
  DeviceArray<float> d_scores(scores);
  ProvidedScores scorer;
  scorer.d_scores = d_scores.get();
  ftp::Pruner<float, ProvidedScores, ftp::CumulativeEta, ZeroExecutor> pruner(
      ftp::Config(100, 50, 0, 0.9), {1200, 3, 8, 8, 1, 1, 64}, scorer, {}, ZeroExecutor(ZeroFfn{}));
  DeviceArray<float> residual(std::vector<float>(1200 * 8, 0.0f));
  std::vector<ftp::LayerReport> seen;
  pruner.set_observer([&](const ftp::LayerReport& r) { seen.push_back(r); });
  pruner.plan(layout.cu_seqlens.data(), 3, 1200, nullptr);
  pruner.run(4, {}, {residual.get(), 8, 8}, {}, nullptr);
  REQUIRE(seen.size() == 1);
  CHECK(seen[0].layer == 4);
  CHECK(seen[0].pruned);
  CHECK(seen[0].invalid_scores == std::vector<int>{0, 1, 0});
  CHECK(seen[0].kept_per_seq[1] == 400);
  CHECK(seen[0].kept_per_seq[0] < 400);
  CHECK(seen[0].kept_tokens == seen[0].kept_per_seq[0] + seen[0].kept_per_seq[1] + seen[0].kept_per_seq[2]);
}
