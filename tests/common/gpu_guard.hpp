// Decides once per process whether GPU test cases run, and says so loudly either way.
//
// Use: TEST_CASE("..." * ftp_test::needs_gpu()) { ... }
// With no CUDA device the case is reported as skipped in doctest's summary line and a banner is
// printed once. With FTP_REQUIRE_GPU=1 in the environment (set on GPU machines) a missing or
// broken device aborts the run instead, so GPU tests can never be skipped silently there.
#pragma once

#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>

namespace ftp_test {

inline bool gpu_available() {
  static const bool available = [] {
    int count = 0;
    const cudaError_t status = cudaGetDeviceCount(&count);
    const char* require = std::getenv("FTP_REQUIRE_GPU");
    const bool required = require != nullptr && require[0] == '1';
    if (status == cudaSuccess && count > 0) {
      cudaDeviceProp prop{};
      cudaGetDeviceProperties(&prop, 0);
      std::fprintf(stderr, "[ftp tests] GPU present: %s (sm_%d%d, %d SMs): GPU test cases RUN\n", prop.name,
                   prop.major, prop.minor, prop.multiProcessorCount);
      return true;
    }
    std::fprintf(stderr,
                 "[ftp tests] *** NO CUDA GPU (%s): every GPU test case is SKIPPED (see 'skipped' in the "
                 "summary) ***\n",
                 status == cudaSuccess ? "device count 0" : cudaGetErrorString(status));
    if (required) {
      std::fprintf(stderr, "[ftp tests] FTP_REQUIRE_GPU=1 but no usable GPU: failing the run\n");
      std::exit(2);
    }
    return false;
  }();
  return available;
}

/// Decorator for GPU test cases: skipped (visibly) when no device is present.

inline doctest::skip needs_gpu() { return doctest::skip(!gpu_available()); }

}  // namespace ftp_test
