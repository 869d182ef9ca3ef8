// How the pruner asks a ReservePolicy for the rule of one decoder layer. A policy may write
//   Rule rule(const Config&, int layer) const   a rule per layer (e.g. a count per layer), or
//   Rule rule(const Config&) const              the same rule for every layer (the built-in ones);
// the layer form wins where both exist. The scorer gets the layer as ScoreContext::layer, so both
// hooks that shape one layer's selection see which layer it is, and a per-layer policy needs no
// state shared with its scorer. Plain C++ (host tests include it).
#pragma once

#include <type_traits>
#include <utility>

#include "ftp/config.hpp"

namespace ftp {

template <class R, class = void>
struct has_layer_rule : std::false_type {};
template <class R>
struct has_layer_rule<R, std::void_t<decltype(std::declval<const R&>().rule(std::declval<const Config&>(),
                                                                             std::declval<int>()))>> : std::true_type {};

template <class R, class = void>
struct has_config_rule : std::false_type {};
template <class R>
struct has_config_rule<R, std::void_t<decltype(std::declval<const R&>().rule(std::declval<const Config&>()))>>
    : std::true_type {};

/// True when R has either rule hook.
template <class R>
inline constexpr bool has_rule_hook_v = has_layer_rule<R>::value || has_config_rule<R>::value;

/// The rule `reserve` applies in decoder layer `layer` under `config`.
template <class R>
auto rule_for_layer(const R& reserve, const Config& config, int layer) {
  if constexpr (has_layer_rule<R>::value) {
    return reserve.rule(config, layer);
  } else {
    static_assert(has_config_rule<R>::value,
                  "ftp::rule_for_layer: the ReservePolicy has neither rule(const Config&, int) nor rule(const Config&)");
    (void)layer;
    return reserve.rule(config);
  }
}

}  // namespace ftp
