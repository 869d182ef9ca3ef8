// Helpers of the GPU tests: device buffers, random inputs, poisoning, and relative errors.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "ftp/batch.hpp"
#include "ftp/types.cuh"

namespace ftp_test {

/// Under the sanitizers every size that scaled() is given is divided by this.
constexpr int kSanitizeDivisor = 8;

/// True when FTP_SANITIZE=1 is set: the suite runs under compute-sanitizer (scripts/sanitize.sh),
/// whose tools slow kernels 10-1000x, so the largest cases (32k-token scoring and selection, the
/// 100-run determinism check, the 8k prefill) shrink through scaled(). Says so once on stderr.
inline bool sanitizing() {
  static const bool on = [] {
    const char* env = std::getenv("FTP_SANITIZE");
    const bool set = env != nullptr && env[0] == '1';
    if (set) {
      std::fprintf(stderr,
                   "[ftp tests] FTP_SANITIZE=1: the largest test sizes are divided by %d (ftp_test::scaled) so the "
                   "suite finishes under compute-sanitizer\n",
                   kSanitizeDivisor);
    }
    return set;
  }();
  return on;
}

/// The one place reduced sizes are chosen: `n` normally, n / kSanitizeDivisor (at least 1) when
/// sanitizing(). Use it for token counts and repetition counts of the large cases only.
inline int scaled(int n) { return sanitizing() ? std::max(1, n / kSanitizeDivisor) : n; }

/// Evaluated during static initialisation, so the note prints once, before the first test case.
inline const bool kSanitizeNoteShown = sanitizing();

inline void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(status));
}

/// Owning device array.
template <class T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(std::size_t count) : count_(count) {
    cuda_ok(cudaMalloc(&data_, std::max<std::size_t>(count, 1) * sizeof(T)), "cudaMalloc");
  }
  explicit DeviceArray(const std::vector<T>& host) : DeviceArray(host.size()) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  DeviceArray(DeviceArray&& o) noexcept : data_(o.data_), count_(o.count_) { o.data_ = nullptr; }
  DeviceArray& operator=(DeviceArray&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
    return *this;
  }
  ~DeviceArray() { cudaFree(data_); }

  T* get() const { return data_; }
  std::size_t size() const { return count_; }
  void upload(const std::vector<T>& host) {
    cuda_ok(cudaMemcpy(data_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice), "upload");
  }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    cuda_ok(cudaDeviceSynchronize(), "sync before download");
    cuda_ok(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return host;
  }
  /// Fills every byte with 0xFF (NaN for float types, -1 for ints): unwritten outputs show.
  void poison() { cuda_ok(cudaMemset(data_, 0xFF, std::max<std::size_t>(count_, 1) * sizeof(T)), "poison"); }

 private:
  T* data_ = nullptr;
  std::size_t count_ = 0;
};

template <class T>
T to_element(float x) {
  return ftp::detail::from_float<T>(x);
}
template <class T>
float to_f(T x) {
  return ftp::detail::to_float(x);
}

/// Rounds a float through T (what the device stores).
template <class T>
float round_to(float x) {
  return to_f(to_element<T>(x));
}

/// Random values in [lo, hi) already rounded to T, as floats (the host reference's input) and
/// as T (the device's input): both sides see identical numbers.
template <class T>
struct RandomTensor {
  std::vector<float> host;
  std::vector<T> device_values;
  RandomTensor(std::size_t count, std::mt19937& rng, float lo, float hi) : host(count), device_values(count) {
    std::uniform_real_distribution<float> dist(lo, hi);
    for (std::size_t i = 0; i < count; ++i) {
      device_values[i] = to_element<T>(dist(rng));
      host[i] = to_f(device_values[i]);
    }
  }
};

/// ||a - b|| / ||b|| in double; NaN anywhere gives +inf (NaN never passes).
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0.0, den = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) return INFINITY;
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

template <class T>
std::vector<float> to_floats(const std::vector<T>& values) {
  std::vector<float> out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) out[i] = to_f(values[i]);
  return out;
}

inline ftp::BatchLayout layout_of(const std::vector<int>& lengths) {
  ftp::BatchLayout layout;
  layout.cu_seqlens = {0};
  for (int length : lengths) layout.cu_seqlens.push_back(layout.cu_seqlens.back() + length);
  return layout;
}

/// The tolerance the brief sets for an element type: fp32 1e-5, 16-bit 1e-2.
template <class T>
constexpr double tolerance() {
  return std::is_same_v<T, float> ? 1e-5 : 1e-2;
}

/// ln sum_{j < count} exp(q . k_j / sqrt(d)) in double: the exact log-sum-exp of one attention row
/// whose keys are k + j * k_stride (d elements each). The oracle of every test of an lse.
inline double exact_row_lse(const float* q, const float* k, std::int64_t k_stride, int count, int d) {
  std::vector<double> x(static_cast<std::size_t>(count));
  double mx = -INFINITY;
  for (int j = 0; j < count; ++j) {
    double dot = 0.0;
    for (int c = 0; c < d; ++c) dot += static_cast<double>(q[c]) * k[j * k_stride + c];
    x[j] = dot / std::sqrt(static_cast<double>(d));
    mx = std::max(mx, x[j]);
  }
  double sum = 0.0;
  for (double v : x) sum += std::exp(v - mx);
  return mx + std::log(sum);
}

/// Kept rows (and only they) compare with the host reference; pruned rows must be bitwise unchanged.
inline void compare_residual(const std::vector<float>& got, const std::vector<float>& want, const std::vector<float>& before,
                             const std::vector<std::uint8_t>& flags, std::int64_t stride, int C, double tolerance) {
  std::vector<float> got_kept, want_kept;
  int unchanged_mismatch = 0;
  for (std::size_t t = 0; t < flags.size(); ++t) {
    for (int c = 0; c < C; ++c) {
      const std::size_t i = t * stride + c;
      if (flags[t]) {
        got_kept.push_back(got[i]);
        want_kept.push_back(want[i]);
      } else if (std::memcmp(&got[i], &before[i], sizeof(float)) != 0) {
        ++unchanged_mismatch;
      }
    }
  }
  CHECK(unchanged_mismatch == 0);
  const double error = relative_error(got_kept, want_kept);
  CAPTURE(error);
  CHECK(error < tolerance);
  MESSAGE("kept rows ", got_kept.size() / std::max(C, 1), " relative error ", error);
}

}  // namespace ftp_test
