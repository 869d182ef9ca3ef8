// FTP_HOST_DEVICE: marks the few functions that must compute bit-identical results on the host
// (reference, tests) and on the device (kernels).
#pragma once

#if defined(__CUDACC__)
#define FTP_HOST_DEVICE __host__ __device__
#else
#define FTP_HOST_DEVICE
#endif
