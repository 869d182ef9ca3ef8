// The built-in reserve rules' keep() hook over hand-built ranked segments, and the prefix-rule
// bases (reserve/prefix_rule.hpp) that derive keep() from a rule's prefix form. Expected counts are
// worked by hand in the comments; masses and shares are chosen so every product is exact.
#include <doctest/doctest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "ftp/config.hpp"
#include "ftp/reserve/cumulative_eta.cuh"
#include "ftp/reserve/keep_all.cuh"
#include "ftp/reserve/prefix_rule.hpp"
#include "ftp/reserve/top_count.cuh"
#include "ftp/reserve/top_ratio.cuh"

namespace {

/// The RankInfo of every rank of one middle segment whose masses, in rank order (descending), are
/// `masses`. The score of a rank is its mass, so the segment's order and maximum agree with them.
std::vector<ftp::RankInfo> ranked_segment(const std::vector<std::uint64_t>& masses) {
  std::uint64_t total = 0;
  for (std::uint64_t m : masses) total += m;
  std::vector<ftp::RankInfo> ranks;
  std::uint64_t before = 0;
  for (std::size_t r = 0; r < masses.size(); ++r) {
    ftp::RankInfo info{};
    info.rank = static_cast<int>(r);
    info.count = static_cast<int>(masses.size());
    info.mass_before = before;
    info.total_mass = total;
    info.score = static_cast<float>(masses[r]);
    info.max_score = static_cast<float>(masses.front());
    ranks.push_back(info);
    before += masses[r];
  }
  return ranks;
}

/// Segment of n ranks of equal mass 1 (for the count rules, which read only rank and count).
std::vector<ftp::RankInfo> ranked_segment(int n) { return ranked_segment(std::vector<std::uint64_t>(n, 1)); }

/// How many ranks `rule` keeps; -1 if the kept ranks are not a prefix of the ranking.
template <class Rule>
int kept_prefix(const Rule& rule, const std::vector<ftp::RankInfo>& ranks) {
  int kept = 0;
  for (const ftp::RankInfo& r : ranks) {
    if (!rule.keep(r)) break;
    ++kept;
  }
  for (std::size_t r = kept; r < ranks.size(); ++r) {
    if (rule.keep(ranks[r])) return -1;
  }
  return kept;
}

/// A user rule with a mass cut: half of the segment's mass.
struct HalfTheMass : ftp::MassPrefixRule<HalfTheMass> {
  double mass_share() const { return 0.5; }
};

/// A user rule with a count cut: the top half of the segment, rounded down; a negative count keeps
/// nothing.
struct TopHalfRoundedDown : ftp::CountPrefixRule<TopHalfRoundedDown> {
  long long offset = 0;
  long long keep_count(int n) const { return n / 2 + offset; }
};

}  // namespace

TEST_CASE("cumulative eta's keep() keeps the fewest top ranks whose masses reach ceil(eta x total)") {
  static_assert(ftp::CumulativeEta::Rule::kPrefixForm == ftp::PrefixForm::kMass);
  // masses 5, 3, 1, 1: total 10, prefix sums before each rank 0, 5, 8, 9
  const std::vector<ftp::RankInfo> ranks = ranked_segment({5, 3, 1, 1});
  SUBCASE("eta 0.9: threshold ceil(9) = 9, reached by 5 + 3 + 1") {
    CHECK(kept_prefix(ftp::CumulativeEta::Rule{0.9}, ranks) == 3);
  }
  SUBCASE("eta 0.75: threshold ceil(7.5) = 8, reached by 5 + 3") {
    CHECK(kept_prefix(ftp::CumulativeEta::Rule{0.75}, ranks) == 2);
  }
  SUBCASE("eta 0.5: threshold 5, reached by the top rank alone") {
    CHECK(kept_prefix(ftp::CumulativeEta::Rule{0.5}, ranks) == 1);
  }
  SUBCASE("eta 0.95: threshold ceil(9.5) = 10, only all four reach it") {
    CHECK(kept_prefix(ftp::CumulativeEta::Rule{0.95}, ranks) == 4);
  }
  SUBCASE("an all-zero segment: threshold 0, the empty set reaches it") {
    CHECK(kept_prefix(ftp::CumulativeEta::Rule{0.9}, ranked_segment({0, 0, 0})) == 0);
  }
  SUBCASE("the policy's rule carries Config::eta") {
    const ftp::CumulativeEta::Rule rule = ftp::CumulativeEta{}.rule(ftp::Config().with_eta(0.75));
    CHECK(rule.mass_share() == 0.75);
    CHECK(kept_prefix(rule, ranks) == 2);
  }
}

TEST_CASE("top ratio's keep() keeps the top ceil(ratio x n) ranks") {
  static_assert(ftp::TopRatio::Rule::kPrefixForm == ftp::PrefixForm::kCount);
  CHECK(kept_prefix(ftp::TopRatio::Rule{0.5}, ranked_segment(5)) == 3);     // ceil(2.5)
  CHECK(kept_prefix(ftp::TopRatio::Rule{0.125}, ranked_segment(9)) == 2);   // ceil(1.125)
  CHECK(kept_prefix(ftp::TopRatio::Rule{0.25}, ranked_segment(8)) == 2);    // exactly 2
  CHECK(kept_prefix(ftp::TopRatio::Rule{1.0}, ranked_segment(7)) == 7);
  CHECK(kept_prefix(ftp::TopRatio(0.25).rule(ftp::Config()), ranked_segment(12)) == 3);
}

TEST_CASE("top count's keep() keeps the top count ranks, all of a shorter segment") {
  static_assert(ftp::TopCount::Rule::kPrefixForm == ftp::PrefixForm::kCount);
  CHECK(kept_prefix(ftp::TopCount::Rule{2}, ranked_segment(5)) == 2);
  CHECK(kept_prefix(ftp::TopCount::Rule{7}, ranked_segment(4)) == 4);
  CHECK(kept_prefix(ftp::TopCount::Rule{0}, ranked_segment(3)) == 0);
  CHECK(kept_prefix(ftp::TopCount(3).rule(ftp::Config()), ranked_segment(10)) == 3);
}

TEST_CASE("keep all's keep() keeps every rank") {
  CHECK(kept_prefix(ftp::KeepAll::Rule{}, ranked_segment({4, 0, 0})) == 3);
}

// Kernels take rules by value: the bases and constructors must leave them trivially copyable.
static_assert(std::is_trivially_copyable_v<ftp::CumulativeEta::Rule> &&
              std::is_trivially_copyable_v<ftp::TopRatio::Rule> && std::is_trivially_copyable_v<ftp::TopCount::Rule>);

TEST_CASE("a user rule deriving from a prefix-rule base gets keep() from its prefix form") {
  static_assert(HalfTheMass::kPrefixForm == ftp::PrefixForm::kMass);
  static_assert(TopHalfRoundedDown::kPrefixForm == ftp::PrefixForm::kCount);
  SUBCASE("mass: half of the total") {
    CHECK(kept_prefix(HalfTheMass{}, ranked_segment({5, 3, 1, 1})) == 1);     // threshold 5
    CHECK(kept_prefix(HalfTheMass{}, ranked_segment({2, 2, 2, 2})) == 2);     // threshold 4 = 2 + 2
    CHECK(kept_prefix(HalfTheMass{}, ranked_segment({3, 3, 2, 1, 1})) == 2);  // threshold 5 <= 3 + 3
  }
  SUBCASE("count: the top half, rounded down") {
    CHECK(kept_prefix(TopHalfRoundedDown{}, ranked_segment(5)) == 2);
    CHECK(kept_prefix(TopHalfRoundedDown{}, ranked_segment(4)) == 2);
    CHECK(kept_prefix(TopHalfRoundedDown{}, ranked_segment(1)) == 0);
  }
  SUBCASE("count: a count past n keeps all, a negative one keeps none") {
    TopHalfRoundedDown rule;
    rule.offset = 10;
    CHECK(kept_prefix(rule, ranked_segment(6)) == 6);
    rule.offset = -10;
    CHECK(kept_prefix(rule, ranked_segment(6)) == 0);
  }
}
