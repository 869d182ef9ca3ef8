// Opting kernels into more than 48 KiB of dynamic shared memory once, not on every launch.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <vector>

#include "ftp/cuda_check.hpp"

namespace ftp::detail {

/// Remembers how much dynamic shared memory each kernel has been allowed on one device, so that a
/// policy launching the same kernels for every layer makes the driver call (cudaFuncSetAttribute)
/// only the first time a kernel needs a larger size. The attribute is per device: use_device()
/// forgets the opt-ins when the device changes.
class SmemOptIn {
 public:
  template <class Kernel>
  void ensure(Kernel* kernel, std::size_t bytes) {
    const void* key = reinterpret_cast<const void*>(kernel);
    Entry* entry = nullptr;
    for (Entry& e : entries_) {
      if (e.kernel == key) entry = &e;
    }
    if (entry != nullptr && entry->bytes >= bytes) return;
    FTP_CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)));
    if (entry != nullptr) {
      entry->bytes = bytes;
    } else {
      entries_.push_back(Entry{key, bytes});
    }
  }

  void forget() { entries_.clear(); }

  /// Starts over when `device` is not the device of the opt-ins made so far.
  void use_device(int device) {
    if (device != device_) {
      forget();
      device_ = device;
    }
  }

 private:
  struct Entry {
    const void* kernel;
    std::size_t bytes;
  };
  std::vector<Entry> entries_;
  int device_ = -1;
};

}  // namespace ftp::detail
