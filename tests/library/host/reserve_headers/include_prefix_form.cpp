// reserve/prefix_form.hpp compiles on its own as plain C++ (included first, nothing before it).
#include "ftp/reserve/prefix_form.hpp"

static_assert(ftp::PrefixForm::kMass != ftp::PrefixForm::kCount);
