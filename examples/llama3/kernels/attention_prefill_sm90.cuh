// Causal GQA attention over a packed ragged batch (prefill) for Hopper: the function of
// attention_prefill.cuh (FlashAttention-2, mma.sync), computed with warpgroup MMA (wgmma, sm_90a),
// plus the optional log-sum-exp of every (token, query head).
//
// Layout (same as launch_attention_prefill): q [T, Hq, d], k and v [T, Hkv, d], out [T, Hq, d], all
// bf16; a token's rows are `*_row_stride` elements apart (>= heads * d, a multiple of 8), a head's d
// elements are contiguous; out is contiguous. Sequence b owns tokens cu_seqlens[b] ..
// cu_seqlens[b+1]-1; token i of a sequence attends to tokens 0..i of the same sequence; query head h
// reads KV head h / (Hq / Hkv); softmax scale 1/sqrt(d). lse (optional) is fp32 [T, Hq]:
// lse[t, h] = ln sum_{j visible} exp(q_t . k_j / sqrt(d)).
//
// Design (FA3-lite). One CTA = one (query head, 128-row query tile of one sequence), 2 warpgroups of
// 4 warps (256 threads); warpgroup w owns query rows 64w .. 64w+63 of the tile (wgmma's M = 64).
// Keys go in tiles of kBlockN = 128. Per key tile each warpgroup runs
//   S[64 x 128] = Q K^T    wgmma m64n128k16, A = Q and B = K from shared memory (both K-major),
//   online softmax in fp32 on the accumulator registers (log2 domain, as the FA2 kernel),
//   O[64 x d] += P V        wgmma m64n{d}k16, A = P from registers (bf16), B = V from shared memory
//                           stored [keys][d], i.e. N-major for this product (imm-trans-b = 1).
// All 256 threads fill Q, K and V with 16-byte cp.async into the 128-byte-swizzle layout the wgmma
// descriptors describe; K and V are double-buffered (tile j+1 loads while tile j is used). Each
// wgmma batch is waited for (wgmma.wait_group 0) before its accumulators are read, so a warpgroup
// never has more than one batch in flight; the two warpgroups, in step, overlap each other instead.
// On an H200 this reaches about 410 TFLOP/s at d=128 and 290 at d=64 for 32k tokens (FA2 kernel:
// 240). Measured there and dropped: a ping-pong schedule (one warpgroup's MMAs during the other's
// softmax) ran at 240, since one warpgroup's dependent MMA chain alone does not fill the tensor
// cores; leaving P V in flight across the next barrier gained nothing at d=128 (+7% at d=64).
//
// Only sm_90a has wgmma. The kernel body exists only in the sm_90a device pass
// (__CUDA_ARCH_FEAT_SM90_ALL, which nvcc defines for -gencode arch=compute_90a,code=sm_90a); every
// other pass (sm_90, sm_80, compute_90 PTX, ...) compiles an empty kernel.
// attention_prefill_sm90_available() tells at run time which of the two images the driver loaded for
// the current device (see there), and the launcher throws when it is the empty one.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "ftp/kernels/mma_sm80.cuh"
#include "llama3/kernels/attention_prefill_common.cuh"
#include "llama3/kernels/common.cuh"

namespace llama3::kernels {

namespace attn_sm90 {

constexpr int kWarpgroups = 2;
constexpr int kThreads = 128 * kWarpgroups;            // 256
constexpr int kRowsPerWarpgroup = 64;                  // wgmma M
constexpr int kBlockM = kRowsPerWarpgroup * kWarpgroups;  // query rows per CTA
constexpr int kBlockN = 128;                           // keys per K/V tile (= wgmma N of S = Q K^T)
constexpr int kSwizzleBytes = 128;                     // one row of the 128-byte swizzle: 64 bf16
constexpr int kPanelCols = kSwizzleBytes / 2;          // bf16 columns per panel
constexpr int kAtomBytes = 8 * kSwizzleBytes;          // 8 rows: the period of the 128-byte swizzle
using attn::Params;

/// Shared-memory plan of one CTA. Every tile [R rows, D columns] is stored as D/64 panels of
/// [R rows][128 bytes] (panel p holds columns 64p .. 64p+63), each panel R * 128 bytes; inside a
/// panel, 16-byte chunk c of row r sits at chunk position c ^ (r % 8) (the 128-byte swizzle).
template <int D>
struct Smem {
  static constexpr int kPanels = D / kPanelCols;
  static constexpr int kQPanel = kBlockM * kSwizzleBytes;   // bytes of one panel of the Q tile
  static constexpr int kKVPanel = kBlockN * kSwizzleBytes;  // bytes of one panel of a K or V tile
  static constexpr int kQBytes = kPanels * kQPanel;
  static constexpr int kKVBytes = kPanels * kKVPanel;
  static constexpr int kQ = 0;                         // Q tile
  static constexpr int kK = kQ + kQBytes;              // K tiles [2]
  static constexpr int kV = kK + 2 * kKVBytes;         // V tiles [2]
  static constexpr int kBytes = kV + 2 * kKVBytes;     // d=128: 160 KB, d=64: 80 KB
  static constexpr int kDynamic = kBytes + kAtomBytes; // + slack to round the base up to 1024 bytes
  static_assert(kQPanel % kAtomBytes == 0 && kKVPanel % kAtomBytes == 0, "panels must keep 1024-byte alignment");
};

/// Static shared memory of the real (sm_90a) kernel: its (sequence, tile) slot. The empty kernel of
/// the other passes has none, which is how attention_prefill_sm90_available() tells them apart.
constexpr int kStaticSmemBytes = 2 * static_cast<int>(sizeof(int));

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// ---- PTX wrappers (sm_90a) ----------------------------------------------------------------------

// cp.async (to a shared-memory address) and the address conversion are ftp's sm_80 wrappers.
using ftp::kernels::sm80::cp_async16;
using ftp::kernels::sm80::cp_async_commit;
using ftp::kernels::sm80::cp_async_wait;
using ftp::kernels::sm80::shared_address;

/// Orders this thread's completed generic-proxy writes to shared memory (cp.async, st.shared)
/// before later async-proxy reads of it (wgmma operands). PTX ISA "Memory Consistency Model /
/// Proxies" and the wgmma.mma_async note that shared-memory operands written by the generic proxy
/// need fence.proxy.async. Used as: writes complete -> fence -> barrier -> wgmma in other threads.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

/// wgmma.fence: orders this warpgroup's earlier register writes (accumulators, A fragments)
/// before the wgmma.mma_async that read them; required before the first wgmma of a batch.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
/// Closes the batch of wgmma.mma_async issued since the last commit into one wgmma-group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
/// Waits until at most N wgmma-groups of this warpgroup are pending; only then may their
/// accumulators be read and their shared-memory operands be overwritten.
template <int N>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

/// Register "fences" for the compiler only (no instruction): each array element counts as read and
/// written here, so ordinary code touching it cannot be moved across the wgmma.fence /
/// wgmma.wait_group that bracket the asynchronous MMAs (which the compiler sees as plain asm).
template <int N>
__device__ __forceinline__ void pin(float (&x)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) asm volatile("" : "+f"(x[i])::"memory");
}
template <int N>
__device__ __forceinline__ void pin(std::uint32_t (&x)[N][4]) {
#pragma unroll
  for (int i = 0; i < N; ++i)
#pragma unroll
    for (int j = 0; j < 4; ++j) asm volatile("" : "+r"(x[i][j])::"memory");
}

/// wgmma shared-memory matrix descriptor (PTX ISA "Matrix Descriptor Format" of the
/// asynchronous warpgroup-level matrix multiply-accumulate section), 128-byte swizzle:
///   bits  0-13  matrix start address        (addr & 0x3FFFF) >> 4
///   bits 16-29  leading dimension byte offset >> 4
///   bits 32-45  stride dimension byte offset  >> 4
///   bits 49-51  matrix base offset = 0: every tile and every 8-row group starts on a 1024-byte
///               boundary (the swizzle period), and the only non-aligned starts are +32/64/96 bytes
///               inside the first 128-byte row, which leave address bits 7-9 (what the base
///               offset would correct) at 0
///   bits 62-63  swizzle mode, 1 = 128-byte swizzle
/// The swizzle is applied by the hardware to the absolute shared address (bits 4-6 ^= bits 7-9),
/// hence the 1024-byte alignment of every tile.
__device__ __forceinline__ std::uint64_t make_smem_desc(std::uint32_t start, std::uint32_t lbo_bytes,
                                                        std::uint32_t sbo_bytes) {
  return static_cast<std::uint64_t>((start & 0x3FFFFu) >> 4) |
         (static_cast<std::uint64_t>((lbo_bytes & 0x3FFFFu) >> 4) << 16) |
         (static_cast<std::uint64_t>((sbo_bytes & 0x3FFFFu) >> 4) << 32) | (std::uint64_t{1} << 62);
}

// wgmma.mma_async (PTX ISA "wgmma.mma_async"): D[64 x N] (+)= A[64 x 16] * B[16 x N], bf16 inputs,
// fp32 accumulators; issued by all 128 threads of a warpgroup; asynchronous until wgmma.wait_group.
// scale_d = 0 ignores the incoming D (D = A*B), 1 accumulates. imm-scale-a = imm-scale-b = 1.
// Accumulator layout (PTX ISA "Matrix Fragments for wgmma.mma_async.m64nNk16", Figure "register
// fragment layout for accumulator D"): warp w of the warpgroup holds rows 16w .. 16w+15; with
// g = lane / 4, t = lane % 4, register i holds row 16w + g + 8 * ((i / 2) % 2), column
// 8 * (i / 4) + 2t + i % 2 (the mma.m16n8 accumulator layout, repeated for each 8 columns).
// A from registers ("register fragment layout for matrix A"): four 32-bit registers of two bf16,
// a0..a7 = rows (g, g, g+8, g+8, g, g, g+8, g+8) + 16w, columns 2t + (0, 1, 0, 1, 8, 9, 8, 9), i.e.
// exactly the accumulator layout of a 64 x 16 block: accumulator registers 8k..8k+7 of S, packed
// in pairs, are the A fragment of k-step k of P V.

/// S = Q K^T step: A (64 x 16) and B (16 x 128) both from shared memory, both K-major
/// (imm-trans-a = imm-trans-b = 0).
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], std::uint64_t desc_a, std::uint64_t desc_b,
                                                    int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %66, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(desc_a), "l"(desc_b), "r"(scale_d)
      : "memory");
}

/// O += P V step: A (64 x 16) from registers, B (16 x N) from shared memory, N-major
/// (imm-trans-b = 1; the transpose is allowed for 16-bit types). N = 128 (d=128) or 64 (d=64),
/// picked by the accumulator array's size.
__device__ __forceinline__ void wgmma_m64k16_rs(float (&d)[64], const std::uint32_t (&a)[4], std::uint64_t desc_b,
                                                int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, "
      "%40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, "
      "%56, %57, %58, %59, %60, %61, %62, %63"
      "}, {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d)
      : "memory");
}

__device__ __forceinline__ void wgmma_m64k16_rs(float (&d)[32], const std::uint32_t (&a)[4], std::uint64_t desc_b,
                                                int scale_d) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %37, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, "
      "%8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, "
      "%24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, p, 1, 1, 1;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(scale_d)
      : "memory");
}

/// Byte offset of 16-byte chunk `chunk` (0 .. D/8-1) of row `row` inside a tile of R rows stored
/// in 128-byte-swizzle panels (see Smem).
template <int R>
__device__ __forceinline__ std::uint32_t swizzled_offset(int row, int chunk) {
  return static_cast<std::uint32_t>((chunk >> 3) * (R * kSwizzleBytes) + row * kSwizzleBytes +
                                    (((chunk & 7) ^ (row & 7)) << 4));
}

/// Copies rows [row0, row0 + R) of one head of a sequence into the swizzled tile at shared address
/// `tile`; rows >= L are zero-filled. Consecutive threads take consecutive 16-byte chunks of a row
/// (coalesced reads); the 8 chunks of a panel row land in 8 different bank groups.
template <int D, int R>
__device__ __forceinline__ void load_tile(std::uint32_t tile, const bf16* base, std::int64_t row_stride, int row0,
                                          int L) {
  constexpr int kChunksPerRow = D / 8;
  constexpr int kChunks = R * kChunksPerRow;
  static_assert(kChunks % kThreads == 0, "tile must split evenly over the CTA");
#pragma unroll
  for (int i = 0; i < kChunks / kThreads; ++i) {
    const int idx = static_cast<int>(threadIdx.x) + i * kThreads;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow;
    const bool ok = row0 + r < L;
    const bf16* src = base + (ok ? static_cast<std::int64_t>(row0 + r) * row_stride : 0) + c * 8;
    cp_async16(tile + swizzled_offset<R>(r, c), src, ok ? 16 : 0);
  }
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// prefill_kernel: out[t, h, :] = softmax_j( q[t,h,:] . k[j,h/G,:] / sqrt(d) ) v[j,h/G,:] over the
// tokens j <= t of t's sequence, lse[t, h] = its log-sum-exp. Grid (Hq, tile_slots); block
// (kThreads); dynamic shared memory Smem<D>::kDynamic. See the top of the file for the design.
// Registers: 64 fp32 O (d/2 at d=64) + 64 fp32 S/P + 32 packed P per thread; ptxas reports 251
// (d=128) and 184 (d=64), no spills; one CTA per SM (shared memory too: 161 KB at d=128).
template <int D>
__global__ void __launch_bounds__(kThreads, 1) prefill_kernel(const Params p) {
  static_assert(D == 64 || D == 128, "head size must be 64 or 128");
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  using Plan = Smem<D>;
  extern __shared__ __align__(16) unsigned char sm90_smem[];
  __shared__ int sched[kStaticSmemBytes / sizeof(int)];

  // Round the dynamic base up to 1024 bytes (the 128-byte swizzle's period; see make_smem_desc).
  const std::uint32_t raw = shared_address(sm90_smem);
  const std::uint32_t base_u32 = (raw + (kAtomBytes - 1)) & ~static_cast<std::uint32_t>(kAtomBytes - 1);
  unsigned char* const base_ptr = sm90_smem + (base_u32 - raw);
  const std::uint32_t q_s = base_u32 + Plan::kQ;
  const std::uint32_t k_s = base_u32 + Plan::kK;
  const std::uint32_t v_s = base_u32 + Plan::kV;

  const int warp = static_cast<int>(threadIdx.x) / 32;
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int wg = warp / 4;          // warpgroup: rows 64 wg .. 64 wg + 63 of the query tile
  const int warp_in_wg = warp % 4;  // rows 16 warp_in_wg .. +15 of the warpgroup's 64

  if (warp == 0) attn::schedule_tile<kBlockM>(p, sched);
  __syncthreads();
  if (sched[0] < 0) return;  // slot past the last tile: the whole CTA leaves together
  const int head = static_cast<int>(blockIdx.x);
  const attn::QueryTile<D, kBlockM, kBlockN> qt(p, sched[0], sched[1], head);
  const int seq_start = qt.seq_start;
  const int L = qt.length;
  const int q0 = qt.q0;

  // Prologue: cp.async group 0 = Q + K_0, group 1 = V_0.
  load_tile<D, kBlockM>(q_s, qt.q, p.q_row_stride, q0, L);
  load_tile<D, kBlockN>(k_s, qt.k, p.k_row_stride, 0, L);
  cp_async_commit();
  load_tile<D, kBlockN>(v_s, qt.v, p.v_row_stride, 0, L);
  cp_async_commit();

  const int g = lane / 4;   // accumulator row within the warp's 8-row half
  const int t4 = lane % 4;  // accumulator column pair
  const int wg_row0 = q0 + wg * kRowsPerWarpgroup;    // first query row of the warpgroup
  const int row_lo = wg_row0 + warp_in_wg * 16 + g;   // this thread's rows: row_lo and row_lo + 8
  const bool wg_has_rows = wg_row0 < L;
  // The warpgroup's 64 rows inside each Q panel: 64 * 128 bytes = 8 KB in, a multiple of 1024.
  const std::uint32_t q_wg = q_s + wg * kRowsPerWarpgroup * kSwizzleBytes;

  float o[D / 2];        // O accumulators, wgmma m64n{D} layout
  float s[kBlockN / 2];  // S accumulators (m64n128 layout), then P in fp32
  // Register 4 nb + e of a wgmma accumulator is element e of 8-column block nb (the m16n8 layout).
  const auto o_acc = [&o](int nb, int e) -> float& { return o[4 * nb + e]; };
  const auto s_acc = [&s](int nb, int e) -> float& { return s[4 * nb + e]; };
#pragma unroll
  for (int i = 0; i < D / 2; ++i) o[i] = 0.f;
#pragma unroll
  for (int i = 0; i < kBlockN / 2; ++i) s[i] = 0.f;  // defined inputs; the first k-step ignores them
  float m[2] = {-INFINITY, -INFINITY};  // running max of score * scale_log2, rows row_lo and row_lo + 8
  float l[2] = {0.f, 0.f};              // this thread's part of the running row sums

  for (int j = 0; j < qt.num_kv_tiles; ++j) {
    const int kv0 = j * kBlockN;
    const int buf = j & 1;
    const std::uint32_t k_tile = k_s + buf * Plan::kKVBytes;
    const std::uint32_t v_tile = v_s + buf * Plan::kKVBytes;

    // K_j has landed (only V_j may still be in flight) and is made visible to the async proxy; the
    // barrier also tells every thread that the other K buffer (K_{j-1}, whose S wgmma every
    // warpgroup waited for) is free for K_{j+1}.
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    if (j + 1 < qt.num_kv_tiles)
      load_tile<D, kBlockN>(k_s + (buf ^ 1) * Plan::kKVBytes, qt.k, p.k_row_stride, kv0 + kBlockN, L);
    cp_async_commit();  // possibly empty: keeps the group count uniform

    // Warpgroup-uniform: skip tiles fully above the diagonal for all 64 rows, and warpgroups whose
    // rows all lie past L.
    const bool active = wg_has_rows && kv0 <= wg_row0 + kRowsPerWarpgroup - 1;
    if (active) {
      // ---- S = Q K^T (64 x 128 per warpgroup): D/16 k-steps of 16 columns (32 bytes) ----
      // K-major 128B-swizzle operand: rows 128 bytes apart inside a panel, 8-row groups at the
      // stride byte offset 1024; the leading byte offset is unused for swizzled K-major layouts
      // (set to 16, i.e. encoded 1). k-step ks reads panel ks/4 at byte 32 (ks%4) of each row.
      pin(s);
      wgmma_fence();
#pragma unroll
      for (int ks = 0; ks < D / 16; ++ks) {
        const std::uint32_t koff = (ks % 4) * 32;
        const std::uint64_t desc_q = make_smem_desc(q_wg + (ks / 4) * Plan::kQPanel + koff, 16, kAtomBytes);
        const std::uint64_t desc_k = make_smem_desc(k_tile + (ks / 4) * Plan::kKVPanel + koff, 16, kAtomBytes);
        wgmma_m64n128k16_ss(s, desc_q, desc_k, ks > 0 ? 1 : 0);
      }
      wgmma_commit();
      wgmma_wait<0>();
      pin(s);

      // ---- causal / length mask, only on tiles that reach the diagonal or the end ----
      if (kv0 + kBlockN - 1 > wg_row0 || kv0 + kBlockN > L) attn::mask_scores<kBlockN>(s_acc, row_lo, kv0, t4, L);
      attn::online_softmax_step<kBlockN, D>(s_acc, o_acc, m, l, p.scale_log2);
    }

    // V_j has landed and is visible to the async proxy; the barrier also frees the other V buffer
    // (V_{j-1}, whose P V wgmma every warpgroup waited for) for V_{j+1}.
    cp_async_wait<1>();
    fence_proxy_async();
    __syncthreads();
    if (j + 1 < qt.num_kv_tiles)
      load_tile<D, kBlockN>(v_s + (buf ^ 1) * Plan::kKVBytes, qt.v, p.v_row_stride, kv0 + kBlockN, L);
    cp_async_commit();

    if (active) {
      // ---- O += P V: the S accumulators, rounded to bf16, are the A fragments ----
      std::uint32_t pa[kBlockN / 16][4];
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk)
#pragma unroll
        for (int e = 0; e < 4; ++e) pa[kk][e] = pack_bf16x2(s[8 * kk + 2 * e], s[8 * kk + 2 * e + 1]);
      // N-major 128B-swizzle operand V[keys][d]: keys (the K dimension) are rows 128 bytes apart,
      // 8-key groups at the stride byte offset 1024; d (the N dimension) runs along the row, 64
      // columns per panel, panels at the leading byte offset (used when N = 128 spans 2 panels).
      // k-step kk starts 16 keys = 2048 bytes further.
      pin(o);
      pin(pa);
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBlockN / 16; ++kk) {
        const std::uint64_t desc_v = make_smem_desc(v_tile + kk * 16 * kSwizzleBytes, Plan::kKVPanel, kAtomBytes);
        wgmma_m64k16_rs(o, pa[kk], desc_v, 1);
      }
      wgmma_commit();
      wgmma_wait<0>();
      pin(o);
    }
  }
  cp_async_wait<0>();  // no copy may still target shared memory when the CTA exits

  if (!wg_has_rows) return;  // no barrier follows: warps finish independently
  // ---- normalize; lse; stage the warp's 16 x D block in its own 16 Q rows (their last reader, the
  //      warpgroup's final S wgmma, has been waited for), then write rows < L with 16-byte stores ----
  float inv_l[2];
  attn::finish_rows(l, m, p, row_lo, L, seq_start, head, t4, inv_l);
  const int stage_row0 = wg * kRowsPerWarpgroup + warp_in_wg * 16;  // the warp's first row in the Q tile
  __syncwarp();
#pragma unroll
  for (int nb = 0; nb < D / 8; ++nb) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      const int row = stage_row0 + g + 8 * r;
      *reinterpret_cast<std::uint32_t*>(base_ptr + Plan::kQ + swizzled_offset<kBlockM>(row, nb) + 4 * t4) =
          pack_bf16x2(o[4 * nb + 2 * r] * inv_l[r], o[4 * nb + 2 * r + 1] * inv_l[r]);
    }
  }
  __syncwarp();
  constexpr int kChunksPerRow = D / 8;
  const int warp_row0 = wg_row0 + warp_in_wg * 16;  // the warp's first row in the sequence
#pragma unroll
  for (int i = 0; i < 16 * kChunksPerRow / 32; ++i) {
    const int idx = lane + i * 32;
    const int r = idx / kChunksPerRow;
    const int c = idx % kChunksPerRow;
    if (warp_row0 + r < L) {
      bf16* dst = p.out + static_cast<std::int64_t>(seq_start + warp_row0 + r) * p.out_row_stride + head * D + c * 8;
      *reinterpret_cast<uint4*>(dst) =
          *reinterpret_cast<const uint4*>(base_ptr + Plan::kQ + swizzled_offset<kBlockM>(stage_row0 + r, c));
    }
  }
#endif  // __CUDA_ARCH_FEAT_SM90_ALL
}

}  // namespace attn_sm90

/// True iff launch_attention_prefill_sm90 can run on the current device: the device is compute
/// capability 9.0 (H100 / H200) AND the kernel image the CUDA driver picked for it is the sm_90a one.
/// The second part cannot be known at compile time (a fatbinary may hold sm_90 SASS, sm_90a SASS
/// and PTX; the driver chooses at load time), so it asks the loaded image: cudaFuncGetAttributes
/// reports the static shared memory of the kernel as loaded for this device, kStaticSmemBytes for
/// the real kernel and 0 for the empty one that every non-sm_90a pass compiles. Build the including
/// target with -gencode arch=compute_90a,code=sm_90a (cmake/ftp_sm90a.cmake does this) for true.
/// Cheap (attribute queries, no launch, no synchronization); never throws; clears the CUDA error it
/// may cause.
inline bool attention_prefill_sm90_available() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (major != 9 || minor != 0) return false;
  cudaFuncAttributes a64{}, a128{};
  if (cudaFuncGetAttributes(&a64, attn_sm90::prefill_kernel<64>) != cudaSuccess ||
      cudaFuncGetAttributes(&a128, attn_sm90::prefill_kernel<128>) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return a64.sharedSizeBytes >= static_cast<std::size_t>(attn_sm90::kStaticSmemBytes) &&
         a128.sharedSizeBytes >= static_cast<std::size_t>(attn_sm90::kStaticSmemBytes);
}

/// Causal GQA prefill attention on Hopper with wgmma (see the top of this file for shapes): the
/// same function and arguments as launch_attention_prefill, plus `lse` (fp32 [T, Hq], contiguous,
/// or nullptr = not written): lse[t * Hq + h] = natural log of sum over the keys j visible to token
/// t of exp(q_t . k_j / sqrt(d)). D = head size (64 or 128). `T` must equal cu_seqlens[B]. Pointers
/// q, k, v, out 16-byte aligned; out must not overlap q, k or v. Uses Smem<D>::kDynamic bytes of
/// dynamic shared memory (161 KB at d=128, 81 KB at d=64); no workspace, no allocation.
/// Throws std::invalid_argument on bad arguments and std::runtime_error when
/// attention_prefill_sm90_available() is false (checked only when there is work: T > 0, B > 0).
template <int D>
void launch_attention_prefill_sm90(const bf16* q, std::int64_t q_row_stride, const bf16* k, std::int64_t k_row_stride,
                                   const bf16* v, std::int64_t v_row_stride, bf16* out, float* lse,
                                   const int* cu_seqlens, int B, int T, int Hq, int Hkv, cudaStream_t stream) {
  static_assert(D == 64 || D == 128, "head size must be 64 or 128");
  using namespace attn_sm90;
  constexpr const char* where = "launch_attention_prefill_sm90";
  Params p = attn::make_params<D>(q, q_row_stride, k, k_row_stride, v, v_row_stride, out, cu_seqlens, B, T, Hq, Hkv,
                                  where);
  p.lse = lse;
  if (T == 0 || B == 0) return;
  const int slots = attn::require_launchable<kBlockM>(p, T, where);
  if (!attention_prefill_sm90_available()) {
    throw std::runtime_error(std::string(where) +
                             ": no sm_90a kernel image for the current device (needs a compute capability 9.0 GPU "
                             "and code built with -gencode arch=compute_90a,code=sm_90a, see cmake/ftp_sm90a.cmake)");
  }

  constexpr int smem = Smem<D>::kDynamic;
  // Per function and cheap; setting it on every call keeps the launcher free of global state.
  LLAMA3_CUDA_CHECK(cudaFuncSetAttribute(prefill_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  prefill_kernel<D><<<dim3(Hq, slots), kThreads, smem, stream>>>(p);
  LLAMA3_CUDA_CHECK_LAUNCH();
}

}  // namespace llama3::kernels
