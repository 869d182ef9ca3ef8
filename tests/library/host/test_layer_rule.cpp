// reserve/layer_rule.hpp: which rule hook the pruner calls for a layer.
#include <doctest/doctest.h>

#include "ftp/reserve/layer_rule.hpp"

namespace {

struct SameEveryLayer {
  struct Rule {
    int count;
  };
  Rule rule(const ftp::Config&) const { return Rule{7}; }
};

struct CountPerLayer {
  struct Rule {
    int count;
  };
  Rule rule(const ftp::Config& config, int layer) const { return Rule{layer * 10 + config.full_layers()}; }
};

struct BothForms {
  struct Rule {
    int count;
  };
  Rule rule(const ftp::Config&) const { return Rule{-1}; }
  Rule rule(const ftp::Config&, int layer) const { return Rule{layer}; }
};

struct NoRule {};

}  // namespace

TEST_CASE("rule_for_layer calls rule(Config, layer) where a policy has it, else rule(Config)") {
  const ftp::Config config = ftp::Config::llama3();
  static_assert(!ftp::has_layer_rule<SameEveryLayer>::value && ftp::has_config_rule<SameEveryLayer>::value);
  static_assert(ftp::has_layer_rule<CountPerLayer>::value && !ftp::has_config_rule<CountPerLayer>::value);
  static_assert(ftp::has_rule_hook_v<BothForms> && !ftp::has_rule_hook_v<NoRule>);
  CHECK(ftp::rule_for_layer(SameEveryLayer{}, config, 12).count == 7);
  CHECK(ftp::rule_for_layer(CountPerLayer{}, config, 12).count == 120 + config.full_layers());
  CHECK(ftp::rule_for_layer(CountPerLayer{}, config, 31).count == 310 + config.full_layers());
  CHECK(ftp::rule_for_layer(BothForms{}, config, 13).count == 13);  // the layer form wins
}
