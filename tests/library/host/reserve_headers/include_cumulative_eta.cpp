// reserve/cumulative_eta.cuh compiles on its own as plain C++ (included first, nothing before it):
// FTP_HOST_DEVICE is empty without nvcc, and the header pulls in no kernels.
#include "ftp/reserve/cumulative_eta.cuh"

static_assert(ftp::CumulativeEta::Rule::kPrefixForm == ftp::PrefixForm::kMass);
