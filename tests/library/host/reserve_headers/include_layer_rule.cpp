// reserve/layer_rule.hpp compiles on its own as plain C++ (included first, nothing before it).
#include "ftp/reserve/layer_rule.hpp"

static_assert(!ftp::has_rule_hook_v<int>);
