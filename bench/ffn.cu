// FFN time versus kept fraction: ftp::CublasSwiGLU's dense path (rows = nullptr, all L rows) against
// its gathered path (rows = round(f * L) evenly spread ascending token indices) for the Llama3-8B
// FFN (C = 4096, I = 14336) and the Qwen2-7B FFN (C = 3584, I = 18944), bf16 random weights, at
// L in {4k, 8k, 16k, 32k} and f in {0.1, ..., 1.0}. ratio_to_ideal = f * dense_ms / gathered_ms
// (1.0: time exactly proportional to kept rows). Before timing, every gathered result is checked
// against the dense result on the kept rows (relative error of the FFN delta) and the pruned rows
// must stay bitwise unchanged. Then the stages of one gathered call (L = 32k, f = 0.4) are timed on
// their own: gather + RMSNorm, gate_up GEMM, SiLU*mul, down GEMM, scatter-add.
//
// FLOPs per call: 6 * M * C * I (gate and up: 2 * M * C * 2I; down: 2 * M * I * C).
//
// Usage: ftp_bench_ffn [--json ffn.json] [--max-tokens 32768] [--repeats 20] [--models llama,qwen]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "common.cuh"
#include "ftp/ftp.hpp"
#include "ftp/kernels/ffn.cuh"

namespace {

using bf16 = __nv_bfloat16;

struct ModelShape {
  const char* name;
  int C;
  int I;
};

/// acc[0] += sum over kept rows of (got - dense)^2, acc[1] += (dense - orig)^2 (the FFN delta);
/// counts[0] = elements of pruned rows where got != orig (bitwise), counts[1] = non-finite got.
__global__ void compare_kernel(const bf16* orig, const bf16* dense, const bf16* got, const unsigned char* kept, int L,
                               int C, double* acc, unsigned long long* counts) {
  double diff2 = 0.0, ref2 = 0.0;
  unsigned long long changed = 0, nonfinite = 0;
  const std::size_t n = static_cast<std::size_t>(L) * C;
  for (std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<std::size_t>(gridDim.x) * blockDim.x) {
    const float g = __bfloat162float(got[i]);
    if (!isfinite(g)) ++nonfinite;
    if (kept[i / C]) {
      const double d = static_cast<double>(g) - __bfloat162float(dense[i]);
      const double r = static_cast<double>(__bfloat162float(dense[i])) - __bfloat162float(orig[i]);
      diff2 += d * d;
      ref2 += r * r;
    } else {
      const unsigned short a = *reinterpret_cast<const unsigned short*>(&got[i]);
      const unsigned short b = *reinterpret_cast<const unsigned short*>(&orig[i]);
      if (a != b) ++changed;
    }
  }
  for (int offset = 16; offset > 0; offset /= 2) {
    diff2 += __shfl_xor_sync(0xffffffffu, diff2, offset);
    ref2 += __shfl_xor_sync(0xffffffffu, ref2, offset);
    changed += __shfl_xor_sync(0xffffffffu, changed, offset);
    nonfinite += __shfl_xor_sync(0xffffffffu, nonfinite, offset);
  }
  if (threadIdx.x % 32 == 0) {
    atomicAdd(&acc[0], diff2);
    atomicAdd(&acc[1], ref2);
    atomicAdd(&counts[0], changed);
    atomicAdd(&counts[1], nonfinite);
  }
}

struct Check {
  double rel_err = 0.0;
  unsigned long long pruned_changed = 0, nonfinite = 0;
  bool ok() const { return rel_err < 2e-2 && pruned_changed == 0 && nonfinite == 0 && std::isfinite(rel_err); }
};

class Comparer {
 public:
  explicit Comparer(int max_tokens) {
    bench::check(cudaMalloc(&acc_, 2 * sizeof(double)), "cudaMalloc");
    bench::check(cudaMalloc(&counts_, 2 * sizeof(unsigned long long)), "cudaMalloc");
    bench::check(cudaMalloc(&mask_, std::max(max_tokens, 1)), "cudaMalloc");
  }
  ~Comparer() {
    cudaFree(acc_);
    cudaFree(counts_);
    cudaFree(mask_);
  }
  Comparer(const Comparer&) = delete;
  Comparer& operator=(const Comparer&) = delete;

  Check run(const bf16* orig, const bf16* dense, const bf16* got, const std::vector<int>& rows, int L, int C,
            cudaStream_t stream) {
    std::vector<unsigned char> mask(L, 0);
    for (int r : rows) mask[r] = 1;
    bench::check(cudaMemcpyAsync(mask_, mask.data(), L, cudaMemcpyHostToDevice, stream), "mask upload");
    bench::check(cudaMemsetAsync(acc_, 0, 2 * sizeof(double), stream), "memset");
    bench::check(cudaMemsetAsync(counts_, 0, 2 * sizeof(unsigned long long), stream), "memset");
    compare_kernel<<<1024, 256, 0, stream>>>(orig, dense, got, mask_, L, C, acc_, counts_);
    bench::check(cudaGetLastError(), "compare_kernel");
    double acc[2];
    unsigned long long counts[2];
    bench::check(cudaMemcpyAsync(acc, acc_, sizeof acc, cudaMemcpyDeviceToHost, stream), "download");
    bench::check(cudaMemcpyAsync(counts, counts_, sizeof counts, cudaMemcpyDeviceToHost, stream), "download");
    bench::check(cudaStreamSynchronize(stream), "sync");
    Check c;
    c.rel_err = acc[1] > 0.0 ? std::sqrt(acc[0] / acc[1]) : (acc[0] > 0.0 ? INFINITY : 0.0);
    c.pruned_changed = counts[0];
    c.nonfinite = counts[1];
    return c;
  }

 private:
  double* acc_ = nullptr;
  unsigned long long* counts_ = nullptr;
  unsigned char* mask_ = nullptr;
};

/// M evenly spread ascending distinct indices in [0, L).
std::vector<int> spread_rows(int M, int L) {
  std::vector<int> rows(M);
  for (int m = 0; m < M; ++m) rows[m] = static_cast<int>(static_cast<std::int64_t>(m) * L / M);
  return rows;
}

double tflops(double flops, double ms) { return ms > 0.0 ? flops / (ms * 1e-3) / 1e12 : 0.0; }

struct Row {
  std::string model;
  int L = 0;
  double f = 0.0;
  double dense_ms = 0.0, gathered_ms = 0.0, ratio = 0.0;
};

/// Times the stages of one gathered call (the CublasSwiGLU sequence, fused gate_up weights) on
/// buffers of the executor's chunk size; each stage runs over all chunks, so the stages add up to
/// one call. Appends one JSON row per stage.
void time_stages(const ModelShape& ms, int L, double f, bf16* residual, const int* d_rows, const bf16* norm,
                 const bf16* gate_up_w, const bf16* down_w, int chunk, cublasHandle_t handle, cudaStream_t stream,
                 int repeats, double full_call_ms, std::vector<std::string>& json_rows) {
  const int C = ms.C, I = ms.I;
  const int M_total = static_cast<int>(std::lround(f * L));
  bf16 *normed = nullptr, *gate_up = nullptr, *act = nullptr;
  float* delta = nullptr;
  void* cublas_ws = nullptr;
  const std::size_t ch = static_cast<std::size_t>(chunk);
  bench::check(cudaMalloc(&normed, ch * C * sizeof(bf16)), "cudaMalloc");
  bench::check(cudaMalloc(&gate_up, ch * 2 * I * sizeof(bf16)), "cudaMalloc");
  bench::check(cudaMalloc(&act, ch * I * sizeof(bf16)), "cudaMalloc");
  bench::check(cudaMalloc(&delta, ch * C * sizeof(float)), "cudaMalloc");
  bench::check(cudaMalloc(&cublas_ws, ftp::kCublasWorkspaceBytes), "cudaMalloc");
  const ftp::ScopedCublasBinding binding(handle, stream, cublas_ws, ftp::kCublasWorkspaceBytes, ftp::CublasWorkspace{});

  auto for_chunks = [&](auto&& stage) {
    for (int first = 0; first < M_total; first += chunk) stage(first, std::min(chunk, M_total - first));
  };
  auto gather = [&](int first, int M) {
    ftp::kernels::gather_rmsnorm_kernel<bf16><<<M, ftp::kernels::kRowThreads, 0, stream>>>(
        residual, C, d_rows + first, first, C, norm, 1e-5f, normed);
  };
  auto gemm1 = [&](int, int M) { ftp::gemm_x_wt(handle, M, 2 * I, C, normed, C, gate_up_w, C, gate_up, 2 * I, 0.0f); };
  auto swiglu = [&](int, int M) {
    // the executor's vectorized path (I is a multiple of 8 for both models)
    ftp::kernels::swiglu_kernel<bf16, 8>
        <<<ftp::detail::elementwise_grid(static_cast<std::int64_t>(M) * I / 8), 256, 0, stream>>>(gate_up, M, I, act);
  };
  auto gemm2 = [&](int, int M) { ftp::gemm_x_wt(handle, M, C, I, act, I, down_w, I, delta, C, 0.0f); };
  auto scatter = [&](int first, int M) {
    ftp::kernels::scatter_add_kernel<bf16><<<M, ftp::kernels::kRowThreads, 0, stream>>>(
        residual, C, d_rows + first, first, C, delta, static_cast<const bf16*>(nullptr));
  };
  // one full pass first so that every buffer holds real (non-zero) data
  for_chunks([&](int first, int M) {
    gather(first, M);
    gemm1(first, M);
    swiglu(first, M);
    gemm2(first, M);
    scatter(first, M);
  });
  bench::check(cudaGetLastError(), "stage kernels");
  bench::check(cudaStreamSynchronize(stream), "sync");

  const double M = M_total;
  struct Stage {
    const char* name;
    std::function<void(int, int)> fn;
    double flops, bytes;
  };
  const std::vector<Stage> stages = {
      {"gather_rmsnorm", gather, 0.0, M * C * 2.0 * 2 + C * 2.0},
      {"gate_up_gemm", gemm1, 2.0 * M * C * 2.0 * I, M * C * 2.0 + 2.0 * I * C * 2 + M * 2.0 * I * 2},
      {"silu_mul", swiglu, 0.0, M * 2.0 * I * 2 + M * I * 2.0},
      {"down_gemm", gemm2, 2.0 * M * I * C, M * I * 2.0 + 1.0 * C * I * 2 + M * C * 4.0},
      {"scatter_add", scatter, 0.0, M * C * 4.0 + M * C * 2.0 * 2},
  };
  double sum = 0.0;
  std::printf("\nstages of one gathered call: %s L=%d f=%.1f (M=%d rows, chunks of %d)\n", ms.name, L, f, M_total, chunk);
  std::printf("%-16s %10s %10s %10s\n", "stage", "ms", "TFLOP/s", "GB/s");
  for (const Stage& s : stages) {
    const double t = bench::median_ms([&] { for_chunks(s.fn); }, stream, 3, repeats);
    bench::check(cudaGetLastError(), s.name);
    sum += t;
    const double tf = tflops(s.flops, t), gbps = s.bytes / (t * 1e-3) / 1e9;
    std::printf("%-16s %10.4f %10.1f %10.1f\n", s.name, t, tf, gbps);
    char row[512];
    std::snprintf(row, sizeof(row),
                  "{\"model\": \"%s\", \"C\": %d, \"I\": %d, \"L\": %d, \"kept_fraction\": %.2f, \"kept_rows\": %d, "
                  "\"stage\": \"%s\", \"ms\": %.5f, \"tflops\": %.2f, \"gbps\": %.1f}",
                  ms.name, C, I, L, f, M_total, s.name, t, tf, gbps);
    json_rows.push_back(row);
  }
  std::printf("%-16s %10.4f   (one executor call: %.4f ms)\n", "sum", sum, full_call_ms);
  char row[512];
  std::snprintf(row, sizeof(row),
                "{\"model\": \"%s\", \"C\": %d, \"I\": %d, \"L\": %d, \"kept_fraction\": %.2f, \"kept_rows\": %d, "
                "\"stage\": \"sum_of_stages\", \"ms\": %.5f, \"full_call_ms\": %.5f}",
                ms.name, C, I, L, f, M_total, sum, full_call_ms);
  json_rows.push_back(row);
  cudaFree(normed);
  cudaFree(gate_up);
  cudaFree(act);
  cudaFree(delta);
  cudaFree(cublas_ws);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string json = bench::arg_value(argc, argv, "--json");
  const int max_tokens = std::stoi(bench::arg_value(argc, argv, "--max-tokens", "32768"));
  const int repeats = std::max(3, std::stoi(bench::arg_value(argc, argv, "--repeats", "20")));
  const std::string which = bench::arg_value(argc, argv, "--models", "llama,qwen");
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "ftp_bench_ffn needs a CUDA GPU\n");
    return 2;
  }
  std::vector<ModelShape> models;
  if (which.find("llama") != std::string::npos) models.push_back({"llama3-8b", 4096, 14336});
  if (which.find("qwen") != std::string::npos) models.push_back({"qwen2-7b", 3584, 18944});
  std::vector<int> lengths;
  for (int L : {4096, 8192, 16384, 32768}) {
    if (L <= max_tokens) lengths.push_back(L);
  }
  const int stage_L = lengths.empty() ? 0 : lengths.back();
  const double stage_f = 0.4;

  cudaStream_t stream;
  bench::check(cudaStreamCreate(&stream), "stream");
  cublasHandle_t handle = nullptr;
  if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) {
    std::fprintf(stderr, "cublasCreate failed\n");
    return 1;
  }
  std::vector<std::string> json_rows;
  std::vector<Row> summary;
  int failures = 0;
  std::printf("%-10s %6s %5s %6s %10s %11s %9s %8s %9s %s\n", "model", "L", "f", "rows", "dense_ms", "gathered_ms",
              "TFLOP/s", "ratio", "rel_err", "check");
  for (std::size_t mi = 0; mi < models.size(); ++mi) {
    const ModelShape& ms = models[mi];
    const int C = ms.C, I = ms.I;
    const int Lmax = lengths.empty() ? 1 : lengths.back();
    const std::size_t n_res = static_cast<std::size_t>(Lmax) * C;
    const std::uint64_t seed = 100 * (mi + 1);
    // weights: gate/up ~ U(+-sqrt(3/C)) (unit-variance pre-activations), down ~ U(+-sqrt(3/I)), norm in [0.5, 1.5)
    const float a = std::sqrt(3.0f / C), b = std::sqrt(3.0f / I);
    bf16* norm = bench::random_bf16(C, seed + 1, 0.5f, 1.5f);
    bf16* gate_up_w = bench::random_bf16(static_cast<std::size_t>(2) * I * C, seed + 2, -a, a);
    bf16* down_w = bench::random_bf16(static_cast<std::size_t>(C) * I, seed + 3, -b, b);
    bf16* orig = bench::random_bf16(n_res, seed + 4, -1.0f, 1.0f);
    bf16 *work = nullptr, *dense_out = nullptr;
    int* d_rows = nullptr;
    bench::check(cudaMalloc(&work, n_res * sizeof(bf16)), "cudaMalloc");
    bench::check(cudaMalloc(&dense_out, n_res * sizeof(bf16)), "cudaMalloc");
    bench::check(cudaMalloc(&d_rows, static_cast<std::size_t>(Lmax) * sizeof(int)), "cudaMalloc");
    bench::check(cudaDeviceSynchronize(), "fill");

    ftp::CublasSwiGLU executor;
    const ftp::WorkspaceShape shape{Lmax, 1, C, I, 32, 8, 128};
    const std::size_t ws_bytes = executor.workspace_bytes<bf16>(shape);
    void* ws = nullptr;
    bench::check(cudaMalloc(&ws, ws_bytes), "cudaMalloc workspace");
    const ftp::CublasSwiGLU::Weights<bf16> weights{norm, gate_up_w, nullptr, nullptr, down_w, 1e-5f};
    Comparer comparer(Lmax);
    auto call = [&](bf16* residual, const int* rows, int num_rows) {
      executor.run(ftp::FfnContext<bf16>{{residual, C, C}, rows, num_rows, shape, ws, handle, stream}, weights);
    };
    auto reset = [&](bf16* dst, int L) {
      bench::check(cudaMemcpyAsync(dst, orig, static_cast<std::size_t>(L) * C * sizeof(bf16), cudaMemcpyDeviceToDevice,
                                   stream),
                   "reset");
      bench::check(cudaStreamSynchronize(stream), "sync");
    };

    for (int L : lengths) {
      try {
        // dense reference result, then dense timing
        reset(dense_out, L);
        call(dense_out, nullptr, L);
        bench::check(cudaStreamSynchronize(stream), "dense reference");
        reset(work, L);
        const double dense_ms = bench::median_ms([&] { call(work, nullptr, L); }, stream, 3, repeats);
        const double full_flops = 6.0 * L * C * static_cast<double>(I);
        char row[768];
        std::snprintf(row, sizeof(row),
                      "{\"model\": \"%s\", \"C\": %d, \"I\": %d, \"L\": %d, \"path\": \"dense\", \"dense_ms\": %.5f, "
                      "\"dense_tflops\": %.2f}",
                      ms.name, C, I, L, dense_ms, tflops(full_flops, dense_ms));
        json_rows.push_back(row);
        for (int fi = 1; fi <= 10; ++fi) {
          const double f = fi / 10.0;
          const int M = std::max(1, static_cast<int>(std::lround(f * L)));
          const std::vector<int> rows = spread_rows(M, L);
          bench::check(cudaMemcpyAsync(d_rows, rows.data(), sizeof(int) * M, cudaMemcpyHostToDevice, stream), "rows");
          // validate once on a fresh residual, before timing
          reset(work, L);
          call(work, d_rows, M);
          bench::check(cudaStreamSynchronize(stream), "gathered check");
          const Check c = comparer.run(orig, dense_out, work, rows, L, C, stream);
          if (!c.ok()) ++failures;
          reset(work, L);
          const double gathered_ms = bench::median_ms([&] { call(work, d_rows, M); }, stream, 3, repeats);
          const double kf = static_cast<double>(M) / L;
          const double flops = 6.0 * M * C * static_cast<double>(I);
          const double ratio = gathered_ms > 0.0 ? kf * dense_ms / gathered_ms : 0.0;
          std::printf("%-10s %6d %5.1f %6d %10.4f %11.4f %9.1f %8.3f %9.2e %s\n", ms.name, L, f, M, dense_ms, gathered_ms,
                      tflops(flops, gathered_ms), ratio, c.rel_err, c.ok() ? "ok" : "FAIL");
          std::snprintf(row, sizeof(row),
                        "{\"model\": \"%s\", \"C\": %d, \"I\": %d, \"L\": %d, \"kept_fraction_target\": %.2f, "
                        "\"kept_rows\": %d, \"kept_fraction\": %.5f, \"dense_ms\": %.5f, \"gathered_ms\": %.5f, "
                        "\"gathered_tflops\": %.2f, \"dense_tflops\": %.2f, \"ratio_to_ideal\": %.4f, \"rel_err\": %.3e, "
                        "\"pruned_rows_changed\": %llu, \"nonfinite\": %llu, \"valid\": %s}",
                        ms.name, C, I, L, f, M, kf, dense_ms, gathered_ms, tflops(flops, gathered_ms),
                        tflops(full_flops, dense_ms), ratio, c.rel_err, c.pruned_changed, c.nonfinite,
                        c.ok() ? "true" : "false");
          json_rows.push_back(row);
          summary.push_back({ms.name, L, f, dense_ms, gathered_ms, ratio});
        }
        if (L == stage_L) {
          const int M = static_cast<int>(std::lround(stage_f * L));
          const std::vector<int> rows = spread_rows(M, L);
          bench::check(cudaMemcpyAsync(d_rows, rows.data(), sizeof(int) * M, cudaMemcpyHostToDevice, stream), "rows");
          reset(work, L);
          const double full_ms = bench::median_ms([&] { call(work, d_rows, M); }, stream, 3, repeats);
          time_stages(ms, L, stage_f, work, d_rows, norm, gate_up_w, down_w, executor.chunk_rows, handle, stream, repeats,
                      full_ms, json_rows);
        }
      } catch (const std::exception& e) {
        ++failures;
        std::fprintf(stderr, "%s L=%d: %s\n", ms.name, L, e.what());
        char row[768];
        std::snprintf(row, sizeof(row), "{\"model\": \"%s\", \"L\": %d, \"error\": \"%.400s\"}", ms.name, L, e.what());
        for (char* p = row; *p; ++p) {
          if (*p == '\n' || *p == '\\') *p = ' ';
        }
        json_rows.push_back(row);
        cudaGetLastError();
      }
    }
    cudaFree(ws);
    cudaFree(norm);
    cudaFree(gate_up_w);
    cudaFree(down_w);
    cudaFree(orig);
    cudaFree(work);
    cudaFree(dense_out);
    cudaFree(d_rows);
  }
  cublasDestroy(handle);
  cudaStreamDestroy(stream);
  bench::write_json(json, "ffn", json_rows);

  // compact summary: ratio to ideal (f * dense / gathered) per model and L, one column per f
  std::printf("\nFFN gathered/dense ratio to ideal (1.0 = time proportional to kept rows); dense ms in 2nd column\n");
  std::printf("%-10s %6s %9s", "model", "L", "dense_ms");
  for (int fi = 1; fi <= 10; ++fi) std::printf(" %5.1f", fi / 10.0);
  std::printf("\n");
  for (std::size_t i = 0; i < summary.size(); i += 10) {
    std::printf("%-10s %6d %9.3f", summary[i].model.c_str(), summary[i].L, summary[i].dense_ms);
    for (std::size_t j = i; j < std::min(summary.size(), i + 10); ++j) std::printf(" %5.2f", summary[j].ratio);
    std::printf("\n");
  }
  if (failures > 0) std::printf("%d check(s) FAILED (see rel_err / pruned_rows_changed in the JSON)\n", failures);
  return failures > 0 ? 1 : 0;
}
