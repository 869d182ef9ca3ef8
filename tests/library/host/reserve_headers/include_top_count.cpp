// reserve/top_count.cuh compiles on its own as plain C++ (included first, nothing before it):
// FTP_HOST_DEVICE is empty without nvcc, and the header pulls in no kernels.
#include "ftp/reserve/top_count.cuh"

static_assert(ftp::TopCount::Rule::kPrefixForm == ftp::PrefixForm::kCount);
