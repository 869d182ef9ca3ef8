// reserve/keep_all.cuh compiles on its own as plain C++ (included first, nothing before it):
// FTP_HOST_DEVICE is empty without nvcc, and the header pulls in no kernels.
#include "ftp/reserve/keep_all.cuh"

static_assert(!ftp::KeepAll::kNeedsMasses);
