// llama3::CudnnAttention: cuDNN's fused flash attention (the SDPA forward of the cudnn-frontend
// graph API) as a prefill attention kernel of the runner: AttentionKernel::Cudnn. Built only with
// FTP_WITH_CUDNN (cmake/ftp_cudnn.cmake defines FTP_HAVE_CUDNN for the targets that link it); the
// frontend and cuDNN stay out of this header, so including it costs nothing.
//
// The function is the one of kernels/attention_prefill.cuh for one sequence (batch 1): T tokens,
// causal, GQA (query head h reads KV head h / (Hq / Hkv)), softmax scale 1/sqrt(d), bf16 in and out,
// fp32 inside.
//   q [T, Hq, d], k and v [T, Hkv, d]: rows of q_row_stride / kv_row_stride elements (a fused QKV
//                                       buffer passes QKV for both, k and v as offsets into it)
//   out [T, Hq d] contiguous
//   lse [T, Hq] fp32 contiguous, natural log: lse[t, h] = ln sum_{j <= t} exp(q_t . k_j / sqrt(d)),
//       cuDNN's softmax Stats in the layout and base the other kernels write (or nullptr)
//
// cuDNN itself is loaded at run time (dlopen of libcudnn.so.9, or of FTP_CUDNN_LIBRARY when set):
// nothing links against it, and a process without it runs on, with available() false and
// unavailable_reason() saying why. One cuDNN graph is built per shape (T, heads, d, strides) on
// first use and cached (building costs milliseconds, running microseconds); the workspace is one
// device buffer that only grows.
//
//   llama3::CudnnAttention attn;                 // throws std::runtime_error when cuDNN is unusable
//   attn.run(q, QKV, q + Hq * d, v, QKV, out, lse, T, Hq, Hkv, d, stream);
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace llama3 {

/// Whether this build has the cuDNN kernel at all (FTP_WITH_CUDNN found cuDNN and the frontend).
/// Without it CudnnAttention is declared but not defined: callers test this first.
#if defined(FTP_HAVE_CUDNN)
inline constexpr bool kCudnnAttentionBuilt = true;
#else
inline constexpr bool kCudnnAttentionBuilt = false;
#endif

class CudnnAttention {
 public:
  /// Loads libcudnn.so.9 once per process; true when it loaded and reports cuDNN 9 or newer.
  static bool available();
  /// Why available() is false ("" when it is true).
  static std::string unavailable_reason();

  /// Creates the cuDNN handle. Throws std::runtime_error (with unavailable_reason()) when cuDNN is
  /// not available.
  CudnnAttention();
  ~CudnnAttention();
  CudnnAttention(const CudnnAttention&) = delete;
  CudnnAttention& operator=(const CudnnAttention&) = delete;

  /// Builds (or finds) the graph of this shape and grows the workspace for it; run() does this
  /// itself on a new shape. Throws std::runtime_error naming the shape when cuDNN has no engine
  /// for it (support check failed) or the build fails.
  void prepare(int T, int Hq, int Hkv, int D, std::int64_t q_row_stride, std::int64_t kv_row_stride);

  /// Enqueues the attention on `stream` (see the file comment for the layouts). T = 0 does nothing.
  void run(const __nv_bfloat16* q, std::int64_t q_row_stride, const __nv_bfloat16* k, const __nv_bfloat16* v,
           std::int64_t kv_row_stride, __nv_bfloat16* out, float* lse, int T, int Hq, int Hkv, int D,
           cudaStream_t stream);

  /// The graphs built so far (one per shape); for tests and logs.
  std::size_t cached_graphs() const;
  /// Whether the graph of the last run wrote the Stats straight into [T, Hq] (true) or into a
  /// head-major scratch buffer that is then transposed (false: cuDNN refused the strided Stats).
  bool lse_direct() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llama3
