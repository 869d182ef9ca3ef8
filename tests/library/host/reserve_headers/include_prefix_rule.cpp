// reserve/prefix_rule.hpp compiles on its own as plain C++ (included first, nothing before it).
#include "ftp/reserve/prefix_rule.hpp"

namespace {
struct HalfTheMass : ftp::MassPrefixRule<HalfTheMass> {
  double mass_share() const { return 0.5; }
};
}  // namespace

static_assert(HalfTheMass::kPrefixForm == ftp::PrefixForm::kMass);
