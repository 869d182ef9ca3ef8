// Prefill attention kernel benchmark: validates llama3::kernels::launch_attention_prefill against
// the naive fp32 GPU reference at L = 1024, then times it at L = 4k, 8k, 16k, 32k for one sequence
// of the Llama3-8B attention shape (Hq = 32, Hkv = 8, d = 128) and reports TFLOP/s with the causal
// FLOP count 4 * L^2 * d * Hq / 2.
//
// Build: nvcc -std=c++17 -O3 -arch=sm_90 -I examples bench/attention_kernel.cu -o build/attention_kernel
// Run:   build/attention_kernel [--json out.json] [--iters 20]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "llama3/kernels/attention_prefill.cuh"

namespace {

namespace lk = llama3::kernels;
using lk::bf16;

constexpr int kHq = 32, kHkv = 8, kD = 128;

// Deterministic pseudo-random bf16 in about [-2, 2) from a hash of the index (fast for 1e8 values).
__global__ void fill_kernel(bf16* x, std::int64_t n, std::uint32_t seed) {
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    std::uint32_t h = static_cast<std::uint32_t>(i) * 2654435761u ^ seed ^ static_cast<std::uint32_t>(i >> 32);
    h ^= h >> 16; h *= 0x7feb352du; h ^= h >> 15; h *= 0x846ca68bu; h ^= h >> 16;
    x[i] = __float2bfloat16_rn((h >> 8) * (4.0f / 16777216.0f) - 2.0f);
  }
}

struct Buffers {
  bf16 *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr;
  int* cu = nullptr;
  explicit Buffers(int L) {
    const std::int64_t nq = static_cast<std::int64_t>(L) * kHq * kD, nk = static_cast<std::int64_t>(L) * kHkv * kD;
    LLAMA3_CUDA_CHECK(cudaMalloc(&q, nq * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&k, nk * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&v, nk * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&out, nq * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&cu, 2 * sizeof(int)));
    fill_kernel<<<1024, 256>>>(q, nq, 1u);
    fill_kernel<<<1024, 256>>>(k, nk, 2u);
    fill_kernel<<<1024, 256>>>(v, nk, 3u);
    LLAMA3_CUDA_CHECK_LAUNCH();
    const int h_cu[2] = {0, L};
    LLAMA3_CUDA_CHECK(cudaMemcpy(cu, h_cu, sizeof h_cu, cudaMemcpyHostToDevice));
    LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~Buffers() { cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(out); cudaFree(cu); }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  void run(int L) {
    lk::launch_attention_prefill<kD>(q, kHq * kD, k, kHkv * kD, v, kHkv * kD, out, cu, 1, L, kHq, kHkv, nullptr);
  }
};

/// ||out - ref|| / ||ref|| at length L; also counts non-finite outputs.
double validate(int L, std::size_t* nonfinite) {
  Buffers b(L);
  const std::size_t n = static_cast<std::size_t>(L) * kHq * kD;
  float* ref = nullptr;
  LLAMA3_CUDA_CHECK(cudaMalloc(&ref, n * sizeof(float)));
  LLAMA3_CUDA_CHECK(cudaMemset(b.out, 0xFF, n * sizeof(bf16)));  // NaN poison: unwritten shows up
  b.run(L);
  lk::launch_attention_prefill_reference<kD>(b.q, kHq * kD, b.k, kHkv * kD, b.v, kHkv * kD, ref, b.cu, 1, L, kHq, kHkv,
                                             nullptr);
  LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<bf16> h_out(n);
  std::vector<float> h_ref(n);
  LLAMA3_CUDA_CHECK(cudaMemcpy(h_out.data(), b.out, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  LLAMA3_CUDA_CHECK(cudaMemcpy(h_ref.data(), ref, n * sizeof(float), cudaMemcpyDeviceToHost));
  cudaFree(ref);
  double num = 0, den = 0;
  *nonfinite = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double o = __bfloat162float(h_out[i]);
    if (!std::isfinite(o)) { ++*nonfinite; continue; }
    num += (o - h_ref[i]) * (o - h_ref[i]);
    den += static_cast<double>(h_ref[i]) * h_ref[i];
  }
  return std::sqrt(num / den);
}

struct Result {
  int L;
  double ms, tflops;
};

Result time_length(int L, int iters) {
  Buffers b(L);
  for (int i = 0; i < 3; ++i) b.run(L);  // warm-up (also sets the smem attribute)
  LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  LLAMA3_CUDA_CHECK(cudaEventCreate(&start));
  LLAMA3_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms(iters);
  for (int i = 0; i < iters; ++i) {
    LLAMA3_CUDA_CHECK(cudaEventRecord(start));
    b.run(L);
    LLAMA3_CUDA_CHECK(cudaEventRecord(stop));
    LLAMA3_CUDA_CHECK(cudaEventSynchronize(stop));
    LLAMA3_CUDA_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  const double med = iters % 2 ? ms[iters / 2] : 0.5 * (ms[iters / 2 - 1] + ms[iters / 2]);
  const double flops = 4.0 * L * static_cast<double>(L) * kD * kHq / 2.0;
  return {L, med, flops / (med * 1e-3) / 1e12};
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path;
  int iters = 20;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--iters") && i + 1 < argc) iters = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr, "usage: %s [--json PATH] [--iters N]\n", argv[0]);
      return 2;
    }
  }
  try {
    cudaDeviceProp prop{};
    LLAMA3_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    std::printf("device: %s (%d SMs)\n", prop.name, prop.multiProcessorCount);

    constexpr int kValidateL = 1024;
    std::size_t nonfinite = 0;
    const double err = validate(kValidateL, &nonfinite);
    const bool ok = err < 1e-2 && nonfinite == 0;
    std::printf("validation L=%d Hq=%d Hkv=%d d=%d: rel error %.3e, non-finite %zu -> %s\n", kValidateL, kHq, kHkv, kD,
                err, nonfinite, ok ? "OK" : "FAILED");
    if (!ok) return 1;

    std::vector<Result> results;
    std::printf("\n%8s %12s %10s\n", "L", "median ms", "TFLOP/s");
    for (int L : {4096, 8192, 16384, 32768}) {
      results.push_back(time_length(L, iters));
      std::printf("%8d %12.3f %10.1f\n", results.back().L, results.back().ms, results.back().tflops);
    }

    if (!json_path.empty()) {
      FILE* f = std::fopen(json_path.c_str(), "w");
      if (!f) {
        std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
        return 1;
      }
      std::fprintf(f,
                   "{\n  \"benchmark\": \"attention_prefill_kernel\",\n  \"device\": \"%s\",\n  \"B\": 1, \"Hq\": %d, "
                   "\"Hkv\": %d, \"d\": %d, \"iters\": %d,\n  \"flops\": \"4*L^2*d*Hq/2\",\n"
                   "  \"validation\": {\"L\": %d, \"rel_error\": %.6e},\n  \"results\": [\n",
                   prop.name, kHq, kHkv, kD, iters, kValidateL, err);
      for (std::size_t i = 0; i < results.size(); ++i)
        std::fprintf(f, "    {\"L\": %d, \"median_ms\": %.6f, \"tflops\": %.3f}%s\n", results[i].L, results[i].ms,
                     results[i].tflops, i + 1 < results.size() ? "," : "");
      std::fprintf(f, "  ]\n}\n");
      std::fclose(f);
      std::printf("\nwrote %s\n", json_path.c_str());
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
