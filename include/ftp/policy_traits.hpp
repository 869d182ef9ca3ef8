// Detection traits for the three policy families, so the pruner can say exactly which hook a
// user's policy lacks (static_assert messages) instead of failing deep inside a template.
#pragma once

#include <cstddef>
#include <type_traits>
#include <utility>

#include "ftp/config.hpp"
#include "ftp/ffn/context.hpp"
#include "ftp/reserve/layer_rule.hpp"
#include "ftp/scorer/context.hpp"

namespace ftp {

template <class S, class T, class = void>
struct has_plain_score_hook : std::false_type {};
template <class S, class T>
struct has_plain_score_hook<
    S, T, std::void_t<decltype(std::declval<const S&>().score(std::declval<const ScoreContext<T>&>()))>>
    : std::true_type {};

/// True when the scorer takes its batch plan: `score(const ScoreContext<T>&, const Plan&) const`.
template <class S, class T, class = void>
struct has_planned_score_hook : std::false_type {};
template <class S, class T>
struct has_planned_score_hook<S, T,
                              std::void_t<decltype(std::declval<const S&>().score(
                                  std::declval<const ScoreContext<T>&>(), std::declval<const typename S::Plan&>()))>>
    : std::true_type {};

template <class S, class T>
struct has_score_hook : std::bool_constant<has_plain_score_hook<S, T>::value || has_planned_score_hook<S, T>::value> {};

/// Runs `scorer` on one layer with its batch plan, whichever score hook it has: what the pruner
/// calls, and what a scorer that wraps another (to time it, to capture its scores) forwards to.
template <class S, class T>
void invoke_score(const S& scorer, const ScoreContext<T>& ctx, const typename S::Plan& plan) {
  if constexpr (has_planned_score_hook<S, T>::value) {
    scorer.score(ctx, plan);
  } else {
    (void)plan;
    scorer.score(ctx);
  }
}

template <class S, class = void>
struct has_scorer_plan_hook : std::false_type {};
template <class S>
struct has_scorer_plan_hook<
    S, std::void_t<typename S::Plan,
                   decltype(std::declval<const S&>().plan(std::declval<const ScorerPlanContext&>())),
                   decltype(S::workspace_bytes(std::declval<const WorkspaceShape&>(), std::declval<const Config&>())),
                   decltype(S::kNeedsAttention)>>
    : std::is_convertible<decltype(std::declval<const S&>().plan(std::declval<const ScorerPlanContext&>())),
                          typename S::Plan> {};

/// An ImportanceScorer for element type T: `score(const ScoreContext<T>&) const` or
/// `score(const ScoreContext<T>&, const Plan&) const`, plus the ScorerBase hooks (`Plan`,
/// `Plan plan(const ScorerPlanContext&) const`, static `workspace_bytes`, `kNeedsAttention`).
template <class S, class T>
inline constexpr bool is_importance_scorer_v = has_score_hook<S, T>::value && has_scorer_plan_hook<S>::value;

template <class R, class = void>
struct is_reserve_policy : std::false_type {};
template <class R>
struct is_reserve_policy<R, std::void_t<decltype(std::declval<const R&>().keeps_everything(std::declval<const Config&>())),
                                        decltype(R::kNeedsMasses)>>
    : std::bool_constant<has_rule_hook_v<R>> {};

/// A ReservePolicy: `keeps_everything(Config) const -> bool`, `rule(Config, int layer) const` or
/// `rule(Config) const` (reserve/layer_rule.hpp) returning a device-callable
/// `keep(const RankInfo&) const -> bool` (RankInfo: reserve/rank_info.hpp), and
/// `static constexpr bool kNeedsMasses`. A rule whose kept ranks are a prefix cut by mass or count
/// derives keep() from that cut with MassPrefixRule or CountPrefixRule (reserve/prefix_rule.hpp),
/// which also gives it the radix selects' `kPrefixForm`.
template <class R>
inline constexpr bool is_reserve_policy_v = is_reserve_policy<R>::value;

template <class F, class T, class = void>
struct is_ffn_executor : std::false_type {};
template <class F, class T>
struct is_ffn_executor<
    F, T,
    std::void_t<typename F::template Weights<T>,
                decltype(std::declval<const F&>().template workspace_bytes<T>(std::declval<const WorkspaceShape&>())),
                decltype(std::declval<const F&>().validate(std::declval<const typename F::template Weights<T>&>())),
                decltype(std::declval<const F&>().run(std::declval<const FfnContext<T>&>(),
                                                      std::declval<const typename F::template Weights<T>&>()))>>
    : std::true_type {};

/// An FFNExecutor for T: `Weights<T>`, `workspace_bytes<T>(shape) const`, `validate(Weights<T>) const`,
/// `run(const FfnContext<T>&, const Weights<T>&) const`.
template <class F, class T>
inline constexpr bool is_ffn_executor_v = is_ffn_executor<F, T>::value;

}  // namespace ftp
