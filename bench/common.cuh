// Shared pieces of the benchmark programs: CUDA-event timing (warm-up, median), random device
// tensors, a tiny JSON writer.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace bench {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

/// Median milliseconds of `body` over `repeats` runs after `warmup` runs, timed with CUDA events
/// on `stream` (body may synchronize; the events still bracket all of its device work).
/// `before` (optional) is enqueued ahead of every run, warm-ups included, outside the timed span:
/// e.g. busy work that the timed body queues behind, as a layer queues behind attention.
inline double median_ms(const std::function<void()>& body, cudaStream_t stream, int warmup = 5, int repeats = 30,
                        const std::function<void()>& before = {}) {
  for (int i = 0; i < warmup; ++i) {
    if (before) before();
    body();
  }
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  std::vector<float> times;
  for (int i = 0; i < repeats; ++i) {
    if (before) before();
    check(cudaEventRecord(start, stream), "record");
    body();
    check(cudaEventRecord(stop, stream), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0.0f;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    times.push_back(ms);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

/// Uniform random bf16 in [lo, hi) generated on the device (hash of the index and seed).
__global__ void fill_uniform_kernel(__nv_bfloat16* x, std::size_t n, std::uint64_t seed, float lo, float hi) {
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    std::uint64_t h = (i + 1) * 0x9E3779B97F4A7C15ull ^ seed;
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 29;
    const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);
    x[i] = __float2bfloat16_rn(lo + (hi - lo) * u);
  }
}

inline __nv_bfloat16* random_bf16(std::size_t n, std::uint64_t seed, float lo, float hi) {
  __nv_bfloat16* p = nullptr;
  check(cudaMalloc(&p, std::max<std::size_t>(n, 1) * sizeof(__nv_bfloat16)), "cudaMalloc");
  fill_uniform_kernel<<<1024, 256>>>(p, n, seed, lo, hi);
  check(cudaGetLastError(), "fill");
  return p;
}

/// Writes `rows` (each a JSON object text) as {"bench": name, "device": ..., "rows": [...]}.
inline void write_json(const std::string& path, const std::string& name, const std::vector<std::string>& rows) {
  if (path.empty()) return;
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  std::fprintf(f, "{\"bench\": \"%s\", \"device\": \"%s\", \"rows\": [\n", name.c_str(), prop.name);
  for (std::size_t i = 0; i < rows.size(); ++i) std::fprintf(f, "  %s%s\n", rows[i].c_str(), i + 1 < rows.size() ? "," : "");
  std::fprintf(f, "]}\n");
  std::fclose(f);
}

inline std::string arg_value(int argc, char** argv, const std::string& flag, const std::string& fallback = "") {
  for (int i = 1; i + 1 < argc; ++i) {
    if (argv[i] == flag) return argv[i + 1];
  }
  return fallback;
}

}  // namespace bench
