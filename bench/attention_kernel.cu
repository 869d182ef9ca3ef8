// Prefill attention kernel benchmark: the FA2 kernel (llama3::kernels::launch_attention_prefill,
// mma.sync) and the Hopper kernel (launch_attention_prefill_sm90, wgmma, sm_90a) side by side.
// Validates the FA2 kernel (and the sm90 one) against the naive fp32 GPU reference at L = 1024 of
// the Llama3-8B shape, then for each shape -- Llama3-8B attention (Hq = 32, Hkv = 8, d = 128) and
// SmolLM2 (Hq = 9, Hkv = 3, d = 64) -- and each L = 1k .. 32k (one sequence): checks the sm90 output
// against the FA2 output (relative error printed), then times both kernels with CUDA events
// (warm-up, median) and reports TFLOP/s with the causal FLOP count 4 * L^2 * d * Hq / 2. The sm90
// columns are skipped (null in the JSON) where attention_prefill_sm90_available() is false. With a
// build that has cuDNN (FTP_WITH_CUDNN) and libcudnn.so.9 loadable, cuDNN's fused flash attention
// (llama3::CudnnAttention, the runner's AttentionKernel::Cudnn; graph built outside the timing) is a
// third row per L: "cudnn_*" fields in the JSON, null where it does not run.
//
// Build: part of the CMake build (ftp_bench_attention; cmake/ftp_sm90a.cmake adds the sm_90a code), or
//        nvcc -std=c++17 -O3 -gencode arch=compute_90a,code=sm_90a -I examples bench/attention_kernel.cu -o attention_kernel
// Run:   ftp_bench_attention [--json out.json] [--iters 20]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "common.cuh"
#include "llama3/kernels/attention_prefill.cuh"
#include "llama3/cudnn_attention.hpp"
#include "llama3/kernels/attention_prefill_sm90.cuh"

namespace {

namespace lk = llama3::kernels;
using lk::bf16;

struct Shape {
  const char* name;
  int Hq, Hkv, D;
};
constexpr Shape kLlama{"llama3-8b", 32, 8, 128};
constexpr Shape kSmol{"smollm2", 9, 3, 64};
constexpr Shape kQwen{"qwen2.5-1.5b", 12, 2, 128};
constexpr int kLengths[] = {1024, 2048, 4096, 8192, 16384, 32768};

/// The FA2 launcher in the argument order of the sm90 one (lse after out).
template <int D>
void launch_fa2(const bf16* q, std::int64_t qs, const bf16* k, std::int64_t ks, const bf16* v, std::int64_t vs,
                bf16* out, float* lse, const int* cu, int B, int T, int Hq, int Hkv) {
  lk::launch_attention_prefill<D>(q, qs, k, ks, v, vs, out, cu, B, T, Hq, Hkv, nullptr, lse);
}

/// One sequence of length L of a shape: q, k, v, an output per kernel, lse.
struct Buffers {
  Shape s;
  int L;
  bf16 *q = nullptr, *k = nullptr, *v = nullptr, *out = nullptr, *out_sm90 = nullptr;
  float* lse = nullptr;
  int* cu = nullptr;
  Buffers(Shape shape, int length) : s(shape), L(length) {
    const std::int64_t nq = static_cast<std::int64_t>(L) * s.Hq * s.D, nk = static_cast<std::int64_t>(L) * s.Hkv * s.D;
    LLAMA3_CUDA_CHECK(cudaMalloc(&q, nq * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&k, nk * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&v, nk * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&out, nq * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&out_sm90, nq * sizeof(bf16)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&lse, static_cast<std::size_t>(L) * s.Hq * sizeof(float)));
    LLAMA3_CUDA_CHECK(cudaMalloc(&cu, 2 * sizeof(int)));
    bench::fill_uniform_kernel<<<1024, 256>>>(q, nq, 1u, -2.0f, 2.0f);
    bench::fill_uniform_kernel<<<1024, 256>>>(k, nk, 2u, -2.0f, 2.0f);
    bench::fill_uniform_kernel<<<1024, 256>>>(v, nk, 3u, -2.0f, 2.0f);
    LLAMA3_CUDA_CHECK_LAUNCH();
    const int h_cu[2] = {0, L};
    LLAMA3_CUDA_CHECK(cudaMemcpy(cu, h_cu, sizeof h_cu, cudaMemcpyHostToDevice));
    LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  }
  ~Buffers() { cudaFree(q); cudaFree(k); cudaFree(v); cudaFree(out); cudaFree(out_sm90); cudaFree(lse); cudaFree(cu); }
  Buffers(const Buffers&) = delete;
  Buffers& operator=(const Buffers&) = delete;
  std::size_t out_elems() const { return static_cast<std::size_t>(L) * s.Hq * s.D; }

  void run_fa2() {
    if (s.D == 128) launch_fa2<128>(q, s.Hq * 128, k, s.Hkv * 128, v, s.Hkv * 128, out, nullptr, cu, 1, L, s.Hq, s.Hkv);
    else launch_fa2<64>(q, s.Hq * 64, k, s.Hkv * 64, v, s.Hkv * 64, out, nullptr, cu, 1, L, s.Hq, s.Hkv);
  }
  void run_sm90() {
    if (s.D == 128)
      lk::launch_attention_prefill_sm90<128>(q, s.Hq * 128, k, s.Hkv * 128, v, s.Hkv * 128, out_sm90, lse, cu, 1, L,
                                             s.Hq, s.Hkv, nullptr);
    else
      lk::launch_attention_prefill_sm90<64>(q, s.Hq * 64, k, s.Hkv * 64, v, s.Hkv * 64, out_sm90, lse, cu, 1, L, s.Hq,
                                            s.Hkv, nullptr);
  }
};

std::vector<float> download_bf16(const bf16* d, std::size_t n) {
  std::vector<bf16> h(n);
  LLAMA3_CUDA_CHECK(cudaMemcpy(h.data(), d, n * sizeof(bf16), cudaMemcpyDeviceToHost));
  std::vector<float> f(n);
  for (std::size_t i = 0; i < n; ++i) f[i] = __bfloat162float(h[i]);
  return f;
}

/// ||a - b|| / ||b||; counts elements where either side is not finite (they are left out).
double rel_error(const std::vector<float>& a, const std::vector<float>& b, std::size_t* nonfinite) {
  double num = 0, den = 0;
  *nonfinite = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!std::isfinite(a[i]) || !std::isfinite(b[i])) { ++*nonfinite; continue; }
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / den);
}

/// The FA2 (and, when available, sm90) output against the fp32 reference at length L of the
/// Llama3 shape; outputs are NaN-poisoned first so unwritten elements show up as non-finite.
struct Validation {
  double fa2_err = 0, sm90_err = -1;
  std::size_t fa2_nonfinite = 0, sm90_nonfinite = 0;
};
Validation validate(int L, bool sm90) {
  Buffers b(kLlama, L);
  const std::size_t n = b.out_elems();
  float* ref = nullptr;
  LLAMA3_CUDA_CHECK(cudaMalloc(&ref, n * sizeof(float)));
  LLAMA3_CUDA_CHECK(cudaMemset(b.out, 0xFF, n * sizeof(bf16)));
  LLAMA3_CUDA_CHECK(cudaMemset(b.out_sm90, 0xFF, n * sizeof(bf16)));
  b.run_fa2();
  if (sm90) b.run_sm90();
  lk::launch_attention_prefill_reference<128>(b.q, kLlama.Hq * 128, b.k, kLlama.Hkv * 128, b.v, kLlama.Hkv * 128, ref,
                                              b.cu, 1, L, kLlama.Hq, kLlama.Hkv, nullptr);
  LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  std::vector<float> h_ref(n);
  LLAMA3_CUDA_CHECK(cudaMemcpy(h_ref.data(), ref, n * sizeof(float), cudaMemcpyDeviceToHost));
  cudaFree(ref);
  Validation v;
  v.fa2_err = rel_error(download_bf16(b.out, n), h_ref, &v.fa2_nonfinite);
  if (sm90) v.sm90_err = rel_error(download_bf16(b.out_sm90, n), h_ref, &v.sm90_nonfinite);
  return v;
}

struct Result {
  int L;
  double fa2_ms, fa2_tflops;
  bool sm90;                 // sm90 columns valid
  double sm90_ms, sm90_tflops;
  double sm90_vs_fa2;        // ||sm90 - fa2|| / ||fa2||
  std::size_t sm90_nonfinite;
  bool cudnn;                // cudnn columns valid
  double cudnn_ms, cudnn_tflops, cudnn_vs_fa2;
  std::size_t cudnn_nonfinite;
};

#if defined(FTP_HAVE_CUDNN)
std::unique_ptr<llama3::CudnnAttention>& cudnn_attention() {
  static std::unique_ptr<llama3::CudnnAttention> attn;
  return attn;
}
#endif

/// cuDNN's output (into out_sm90) and its timing, when this build and process have it.
void measure_cudnn(Buffers& b, Result& r, double flops, int iters) {
#if defined(FTP_HAVE_CUDNN)
  auto& attn = cudnn_attention();
  if (!attn) return;
  const Shape s = b.s;
  const auto run = [&] { attn->run(b.q, s.Hq * s.D, b.k, b.v, s.Hkv * s.D, b.out_sm90, b.lse, b.L, s.Hq, s.Hkv, s.D, nullptr); };
  LLAMA3_CUDA_CHECK(cudaMemset(b.out_sm90, 0xFF, b.out_elems() * sizeof(bf16)));
  b.run_fa2();
  run();  // builds the graph of this shape (outside the timing)
  LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
  r.cudnn_vs_fa2 = rel_error(download_bf16(b.out_sm90, b.out_elems()), download_bf16(b.out, b.out_elems()),
                             &r.cudnn_nonfinite);
  r.cudnn_ms = bench::median_ms(run, nullptr, 3, iters);
  r.cudnn_tflops = flops / (r.cudnn_ms * 1e-3) / 1e12;
  r.cudnn = true;
#else
  (void)b; (void)r; (void)flops; (void)iters;
#endif
}

Result measure(Shape s, int L, int iters, bool sm90) {
  Buffers b(s, L);
  const double flops = 4.0 * L * static_cast<double>(L) * s.D * s.Hq / 2.0;
  Result r{};
  r.L = L;
  r.sm90 = sm90;
  if (sm90) {  // validate before timing: both outputs of the same inputs
    LLAMA3_CUDA_CHECK(cudaMemset(b.out_sm90, 0xFF, b.out_elems() * sizeof(bf16)));
    b.run_fa2();
    b.run_sm90();
    LLAMA3_CUDA_CHECK(cudaDeviceSynchronize());
    r.sm90_vs_fa2 = rel_error(download_bf16(b.out_sm90, b.out_elems()), download_bf16(b.out, b.out_elems()),
                              &r.sm90_nonfinite);
  }
  r.fa2_ms = bench::median_ms([&] { b.run_fa2(); }, nullptr, 3, iters);  // warm-ups set the smem attribute
  r.fa2_tflops = flops / (r.fa2_ms * 1e-3) / 1e12;
  if (sm90) {
    r.sm90_ms = bench::median_ms([&] { b.run_sm90(); }, nullptr, 3, iters);
    r.sm90_tflops = flops / (r.sm90_ms * 1e-3) / 1e12;
  }
  measure_cudnn(b, r, flops, iters);
  return r;
}

void json_result(FILE* f, const Result& r, bool last) {
  if (r.cudnn) {
    std::fprintf(f, "{\"cudnn_median_ms\": %.6f, \"cudnn_tflops\": %.3f, \"cudnn_rel_error_vs_fa2\": %.6e, "
                 "\"cudnn_nonfinite\": %zu, ", r.cudnn_ms, r.cudnn_tflops, r.cudnn_vs_fa2, r.cudnn_nonfinite);
  } else {
    std::fprintf(f, "{\"cudnn_median_ms\": null, \"cudnn_tflops\": null, \"cudnn_rel_error_vs_fa2\": null, "
                 "\"cudnn_nonfinite\": null, ");
  }
  if (r.sm90) {
    std::fprintf(f,
                 "\"L\": %d, \"median_ms\": %.6f, \"tflops\": %.3f, \"sm90_median_ms\": %.6f, \"sm90_tflops\": %.3f, "
                 "\"sm90_rel_error_vs_fa2\": %.6e, \"sm90_nonfinite\": %zu}%s\n",
                 r.L, r.fa2_ms, r.fa2_tflops, r.sm90_ms, r.sm90_tflops, r.sm90_vs_fa2, r.sm90_nonfinite, last ? "" : ",");
  } else {
    std::fprintf(f,
                 "\"L\": %d, \"median_ms\": %.6f, \"tflops\": %.3f, \"sm90_median_ms\": null, \"sm90_tflops\": null, "
                 "\"sm90_rel_error_vs_fa2\": null, \"sm90_nonfinite\": null}%s\n",
                 r.L, r.fa2_ms, r.fa2_tflops, last ? "" : ",");
  }
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
    std::printf("device: %s (%d SMs, sm_%d%d)\n", prop.name, prop.multiProcessorCount, prop.major, prop.minor);
    const bool sm90 = lk::attention_prefill_sm90_available();
    std::printf("wgmma (sm90) kernel: %s\n", sm90 ? "available" : "NOT available (needs an sm_90a build on a cc 9.0 GPU)");
#if defined(FTP_HAVE_CUDNN)
    if (llama3::CudnnAttention::available()) {
      cudnn_attention() = std::make_unique<llama3::CudnnAttention>();
      std::printf("cuDNN fused attention: available\n");
    } else {
      std::printf("cuDNN fused attention: NOT available (%s)\n", llama3::CudnnAttention::unavailable_reason().c_str());
    }
#else
    std::printf("cuDNN fused attention: not built (FTP_WITH_CUDNN)\n");
#endif

    constexpr int kValidateL = 1024;
    const Validation val = validate(kValidateL, sm90);
    const bool fa2_ok = val.fa2_err < 1e-2 && val.fa2_nonfinite == 0;
    const bool sm90_ok = !sm90 || (val.sm90_err < 1e-2 && val.sm90_nonfinite == 0);
    std::printf("validation L=%d Hq=%d Hkv=%d d=%d: FA2 rel error %.3e, non-finite %zu -> %s\n", kValidateL, kLlama.Hq,
                kLlama.Hkv, kLlama.D, val.fa2_err, val.fa2_nonfinite, fa2_ok ? "OK" : "FAILED");
    if (sm90)
      std::printf("validation L=%d Hq=%d Hkv=%d d=%d: sm90 rel error %.3e, non-finite %zu -> %s\n", kValidateL,
                  kLlama.Hq, kLlama.Hkv, kLlama.D, val.sm90_err, val.sm90_nonfinite, sm90_ok ? "OK" : "FAILED");
    if (!fa2_ok || !sm90_ok) return 1;

    const Shape shapes[] = {kLlama, kSmol, kQwen};
    std::vector<std::vector<Result>> results;
    bool all_ok = true;
    for (const Shape& s : shapes) {
      std::printf("\n%s: Hq=%d Hkv=%d d=%d\n%8s %10s %9s %10s %9s %9s %12s\n", s.name, s.Hq, s.Hkv, s.D, "L", "FA2 ms",
                  "FA2 TF/s", "sm90 ms", "sm90 TF/s", "speedup", "sm90 vs FA2");
      results.emplace_back();
      for (int L : kLengths) {
        const Result r = measure(s, L, iters, sm90);
        results.back().push_back(r);
        if (r.sm90) {
          const bool ok = r.sm90_vs_fa2 < 1e-2 && r.sm90_nonfinite == 0;
          all_ok = all_ok && ok;
          std::printf("%8d %10.3f %9.1f %10.3f %9.1f %9.2f %12.3e%s\n", L, r.fa2_ms, r.fa2_tflops, r.sm90_ms,
                      r.sm90_tflops, r.fa2_ms / r.sm90_ms, r.sm90_vs_fa2, ok ? "" : " FAILED");
        } else {
          std::printf("%8d %10.3f %9.1f %10s %9s %9s %12s\n", L, r.fa2_ms, r.fa2_tflops, "-", "-", "-", "-");
        }
        if (r.cudnn) {
          const bool ok = r.cudnn_vs_fa2 < 1e-2 && r.cudnn_nonfinite == 0;
          all_ok = all_ok && ok;
          std::printf("%8s %10s %9s %10.3f %9.1f %9.2f %12.3e%s  (cudnn)\n", "", "", "", r.cudnn_ms, r.cudnn_tflops,
                      r.fa2_ms / r.cudnn_ms, r.cudnn_vs_fa2, ok ? "" : " FAILED");
        }
      }
    }

    if (!json_path.empty()) {
      FILE* f = std::fopen(json_path.c_str(), "w");
      if (!f) {
        std::fprintf(stderr, "cannot write %s\n", json_path.c_str());
        return 1;
      }
      // Top-level fields describe the Llama3-8B shape (as before); "shapes" holds both shapes.
      std::fprintf(f,
                   "{\n  \"benchmark\": \"attention_prefill_kernel\",\n  \"device\": \"%s\",\n  \"B\": 1, \"Hq\": %d, "
                   "\"Hkv\": %d, \"d\": %d, \"iters\": %d,\n  \"flops\": \"4*L^2*d*Hq/2\",\n"
                   "  \"kernels\": {\"fa2\": \"launch_attention_prefill (mma.sync)\", "
                   "\"sm90\": \"launch_attention_prefill_sm90 (wgmma)\"},\n  \"sm90_available\": %s,\n"
                   "  \"validation\": {\"L\": %d, \"rel_error\": %.6e},\n",
                   prop.name, kLlama.Hq, kLlama.Hkv, kLlama.D, iters, sm90 ? "true" : "false", kValidateL,
                   val.fa2_err);
      if (sm90) std::fprintf(f, "  \"sm90_validation\": {\"L\": %d, \"rel_error\": %.6e},\n", kValidateL, val.sm90_err);
      else std::fprintf(f, "  \"sm90_validation\": null,\n");
      std::fprintf(f, "  \"results\": [\n");
      for (std::size_t i = 0; i < results[0].size(); ++i) {
        std::fprintf(f, "    ");
        json_result(f, results[0][i], i + 1 == results[0].size());
      }
      std::fprintf(f, "  ],\n  \"shapes\": [\n");
      for (std::size_t si = 0; si < results.size(); ++si) {
        const Shape& s = shapes[si];
        std::fprintf(f, "    {\"name\": \"%s\", \"Hq\": %d, \"Hkv\": %d, \"d\": %d, \"results\": [\n", s.name, s.Hq,
                     s.Hkv, s.D);
        for (std::size_t i = 0; i < results[si].size(); ++i) {
          std::fprintf(f, "      ");
          json_result(f, results[si][i], i + 1 == results[si].size());
        }
        std::fprintf(f, "    ]}%s\n", si + 1 < results.size() ? "," : "");
      }
      std::fprintf(f, "  ]\n}\n");
      std::fclose(f);
      std::printf("\nwrote %s\n", json_path.c_str());
    }
    if (!all_ok) {
      std::fprintf(stderr, "sm90 output differs from FA2 at some shape (see FAILED above)\n");
      return 1;
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
