// Token embedding gather: the first step of the forward pass.
#pragma once

#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

// embedding_kernel: out[t, c] = table[ids[t], c] for t < T, c < C.
//   table [V, C] bf16, ids [T] int32, out [T, C] (fp32 or bf16 residual stream).
// One thread per 8 consecutive elements (16-byte loads; C % 8 == 0 is checked by the launcher).
// An id outside [0, V) writes a zero row and, if bad_ids != nullptr, increments *bad_ids, so a
// tokenizer bug shows up as a count instead of an out-of-bounds read.
template <class TOut>
__global__ void embedding_kernel(const bf16* __restrict__ table, const int* __restrict__ ids,
                                 TOut* __restrict__ out, int T, int C, int V, int* bad_ids) {
  const int vecs_per_row = C / 8;
  const std::int64_t total = static_cast<std::int64_t>(T) * vecs_per_row;
  for (std::int64_t i = blockIdx.x * static_cast<std::int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const int t = static_cast<int>(i / vecs_per_row);
    const int c = static_cast<int>(i % vecs_per_row) * 8;
    const int id = ids[t];
    float v[8];
    if (id >= 0 && id < V) {
      load8(table + static_cast<std::int64_t>(id) * C + c, v);
    } else {
#pragma unroll
      for (int e = 0; e < 8; ++e) v[e] = 0.f;
      if (c == 0 && bad_ids != nullptr) atomicAdd(bad_ids, 1);
    }
    store8(out + static_cast<std::int64_t>(t) * C + c, v);
  }
}

/// Gathers the embedding rows of T token ids into the residual stream out [T, C].
/// `bad_ids` (device int, may be null) counts ids outside [0, V); their rows become zeros.
template <class TOut>
void launch_embedding(const bf16* table, const int* ids, TOut* out, int T, int C, int V, int* bad_ids,
                      cudaStream_t stream) {
  constexpr const char* where = "launch_embedding";
  detail::require(T >= 0 && C >= 0 && V >= 0, where, "T, C and V must be >= 0");
  detail::require(C % 8 == 0, where, "C must be a multiple of 8 (16-byte row accesses), got " + std::to_string(C));
  if (T == 0 || C == 0) return;
  detail::require(table != nullptr && ids != nullptr && out != nullptr, where, "null pointer");
  detail::require(detail::aligned16(table) && detail::aligned16(out), where, "table and out must be 16-byte aligned");
  const int threads = 256;
  const std::int64_t work = static_cast<std::int64_t>(T) * (C / 8);
  const int blocks = static_cast<int>(std::min<std::int64_t>(ceil_div<std::int64_t>(work, threads), 65535LL * 8));
  embedding_kernel<TOut><<<blocks, threads, 0, stream>>>(table, ids, out, T, C, V, bad_ids);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
