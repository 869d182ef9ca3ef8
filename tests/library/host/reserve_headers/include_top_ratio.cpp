// reserve/top_ratio.cuh compiles on its own as plain C++ (included first, nothing before it):
// FTP_HOST_DEVICE is empty without nvcc, and the header pulls in no kernels.
#include "ftp/reserve/top_ratio.cuh"

static_assert(ftp::TopRatio::Rule::kPrefixForm == ftp::PrefixForm::kCount);
