// The sm_80+ PTX that ftp's tensor-core kernels (and the example runner's FlashAttention-2 kernel)
// are built from: cp.async, ldmatrix, mma.sync m16n8k16, and the XOR swizzle of their tiles.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace ftp::kernels::sm80 {

/// The 32-bit shared-memory address PTX instructions take.
__device__ __forceinline__ std::uint32_t shared_address(const void* p) {
  return static_cast<std::uint32_t>(__cvta_generic_to_shared(p));
}

/// 16-byte global->shared copy to a shared-memory address; src_bytes = 0 writes 16 zero bytes without
/// reading (rows past the end), so padding is 0 and never NaN garbage that 0 * NaN would spread.
__device__ __forceinline__ void cp_async16(std::uint32_t smem, const void* gmem, int src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem), "l"(gmem), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, int src_bytes) {
  cp_async16(shared_address(smem), gmem, src_bytes);
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
/// Waits until at most N committed groups of this thread are still in flight.
template <int N>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

/// Four 8x8 16-bit matrices from shared memory; lanes 8i..8i+7 address the rows of matrix i; lane l
/// receives row l/4, columns 2(l%4) and 2(l%4)+1 of each matrix (of its transpose with .trans).
__device__ __forceinline__ void ldmatrix_x4(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(std::uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(p)));
}

/// acc[16x8] += A[16x16] B[16x8], 16-bit inputs (T = __nv_bfloat16 or __half), fp32 accumulators.
/// Fragments, with g = lane/4 and t = lane%4:
///   A: a0 (g, 2t..2t+1), a1 (g+8, 2t..), a2 (g, 2t+8..), a3 (g+8, 2t+8..);
///   B: b0 (k 2t..2t+1, n g), b1 (k 2t+8.., n g);
///   acc: (g, 2t) (g, 2t+1) (g+8, 2t) (g+8, 2t+1).
template <class T>
__device__ __forceinline__ void mma_16816(float (&acc)[4], const std::uint32_t (&a)[4], std::uint32_t b0,
                                          std::uint32_t b1) {
  static_assert(std::is_same_v<T, __nv_bfloat16> || std::is_same_v<T, __half>, "mma_16816: bf16 or fp16 inputs");
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

/// Element offset of 16-byte chunk `chunk` of row `row` in a [rows, D] 16-bit tile. The chunk index
/// is XOR-ed with row % 8 so that the 8 row addresses of one ldmatrix phase (same logical chunk, 8
/// consecutive rows) fall in 8 different bank groups; D/8 >= 8 chunks keeps the XOR inside the row.
template <int D>
__device__ __forceinline__ int swizzle(int row, int chunk) {
  static_assert(D >= 64 && D % 64 == 0, "swizzle: rows of at least 8 16-byte chunks");
  return row * D + ((chunk ^ (row & 7)) << 3);
}

}  // namespace ftp::kernels::sm80
