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
struct has_score_hook : std::false_type {};
template <class S, class T>
struct has_score_hook<S, T, std::void_t<decltype(std::declval<const S&>().score(std::declval<const ScoreContext<T>&>()))>>
    : std::true_type {};

template <class S, class = void>
struct has_scorer_plan_hook : std::false_type {};
template <class S>
struct has_scorer_plan_hook<S, std::void_t<decltype(std::declval<S&>().plan(std::declval<const ScorerPlanContext&>())),
                                           decltype(S::workspace_bytes(std::declval<const WorkspaceShape&>(),
                                                                       std::declval<const Config&>())),
                                           decltype(S::kNeedsAttention)>> : std::true_type {};

/// An ImportanceScorer for element type T: `score(const ScoreContext<T>&) const`, plus the
/// ScorerBase hooks (`plan`, static `workspace_bytes`, `kNeedsAttention`).
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
/// `keep(const RankInfo&) const -> bool`, and `static constexpr bool kNeedsMasses`.
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
