// reserve/rank_info.hpp compiles on its own as plain C++ (included first, nothing before it).
#include "ftp/reserve/rank_info.hpp"

static_assert(sizeof(ftp::RankInfo::mass_before) == 8, "RankInfo's masses are the 64-bit fixed-point sums");
