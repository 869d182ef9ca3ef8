// llama3::CudnnAttention (see cudnn_attention.hpp): the cuDNN SDPA forward graph, built per shape,
// run on the caller's stream. The only file that includes the cudnn-frontend headers; compiled
// with NV_CUDNN_FRONTEND_USE_DYNAMIC_LOADING, so every cuDNN call goes through the frontend's
// shim to the library this file dlopens (cudnn_frontend::cudnn_dlhandle).
#include "llama3/cudnn_attention.hpp"

#include <dlfcn.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>

#include <cudnn_frontend.h>

// The frontend's shim reads the library handle from this variable (declared extern there).
namespace cudnn_frontend {
void* cudnn_dlhandle = nullptr;
}  // namespace cudnn_frontend

namespace llama3 {

namespace fe = cudnn_frontend;

namespace {

// Tensor uids of the graph: execute() binds device pointers by them.
constexpr std::int64_t kUidQ = 1, kUidK = 2, kUidV = 3, kUidO = 4, kUidStats = 5;

struct LoadState {
  bool ok = false;
  std::string reason;
};

// The frontend dlopens a CUDA runtime of its own (libcudart.so.12 or .13, first found). Point it
// at the runtime this process already has, so both agree on one (CUDNN_FRONTEND_CUDART_LIB_NAME,
// left alone when the user set it).
void pin_frontend_cudart() {
  if (std::getenv("CUDNN_FRONTEND_CUDART_LIB_NAME") != nullptr) return;
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&cudaRuntimeGetVersion), &info) != 0 && info.dli_fname != nullptr &&
      std::string(info.dli_fname).find("libcudart") != std::string::npos) {
    setenv("CUDNN_FRONTEND_CUDART_LIB_NAME", info.dli_fname, 0);
  }
}

const LoadState& load_cudnn() {
  static const LoadState state = [] {
    LoadState s;
    const char* env = std::getenv("FTP_CUDNN_LIBRARY");
    const std::string name = env != nullptr && env[0] != '\0' ? env : "libcudnn.so.9";
    dlerror();
    void* handle = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      const char* err = dlerror();
      s.reason = "cannot load " + name + " (" + (err != nullptr ? err : "unknown dlopen error") +
                 "): put its directory on LD_LIBRARY_PATH (scripts/cudnn_libdir.sh prints one) or set "
                 "FTP_CUDNN_LIBRARY to its path";
      return s;
    }
    fe::cudnn_dlhandle = handle;
    pin_frontend_cudart();
    try {
      const std::size_t version = fe::detail::get_backend_version();
      if (version < 90000) {
        s.reason = name + " is cuDNN " + std::to_string(version) + "; the fused attention needs cuDNN 9 or newer";
        return s;
      }
    } catch (const std::exception& e) {
      s.reason = name + " loaded but is not usable: " + e.what();
      return s;
    }
    s.ok = true;
    return s;
  }();
  return state;
}

std::string shape_text(int T, int Hq, int Hkv, int D, std::int64_t qs, std::int64_t kvs) {
  return "T=" + std::to_string(T) + " Hq=" + std::to_string(Hq) + " Hkv=" + std::to_string(Hkv) +
         " d=" + std::to_string(D) + " row strides q " + std::to_string(qs) + " kv " + std::to_string(kvs);
}

}  // namespace

bool CudnnAttention::available() { return load_cudnn().ok; }
std::string CudnnAttention::unavailable_reason() { return load_cudnn().reason; }

struct CudnnAttention::Impl {
  using Key = std::tuple<int, int, int, int, std::int64_t, std::int64_t>;  // T, Hq, Hkv, D, q and kv row strides
  struct Entry {
    std::shared_ptr<fe::graph::Graph> graph;
    bool lse_direct = true;        // Stats written as [T, Hq]; else [Hq, T] into scratch, then transposed
    std::int64_t workspace = 0;    // bytes
  };

  cudnnHandle_t handle = nullptr;
  std::map<Key, Entry> graphs;
  void* workspace = nullptr;
  std::size_t workspace_bytes = 0;
  float* scratch = nullptr;        // [Hq, T] Stats of a graph with lse_direct false
  std::size_t scratch_floats = 0;
  // The pointers execute() binds, kept across calls: its five keys are inserted once, so a prefill
  // layer only overwrites values instead of allocating a new map.
  std::unordered_map<std::int64_t, void*> variant_pack;
  bool last_lse_direct = true;

  ~Impl() {
    if (workspace != nullptr) cudaFree(workspace);
    if (scratch != nullptr) cudaFree(scratch);
    if (handle != nullptr) fe::detail::destroy_handle(handle);
  }

  // The SDPA forward graph of one shape; Stats strided as [T, Hq] when lse_direct, else [Hq, T].
  static fe::error_t build(cudnnHandle_t h, const Key& key, bool lse_direct, std::shared_ptr<fe::graph::Graph>& out) {
    const auto [T, Hq, Hkv, D, qs, kvs] = key;
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    const std::int64_t t = T, hq = Hq, hkv = Hkv, d = D;
    // Logical [B = 1, H, S = T, d]; memory rows of `qs` / `kvs` elements per token, heads d apart.
    auto Q = g->tensor(fe::graph::Tensor_attributes().set_name("Q").set_uid(kUidQ).set_dim({1, hq, t, d}).set_stride(
        {t * qs, d, qs, 1}));
    auto K = g->tensor(fe::graph::Tensor_attributes().set_name("K").set_uid(kUidK).set_dim({1, hkv, t, d}).set_stride(
        {t * kvs, d, kvs, 1}));
    auto V = g->tensor(fe::graph::Tensor_attributes().set_name("V").set_uid(kUidV).set_dim({1, hkv, t, d}).set_stride(
        {t * kvs, d, kvs, 1}));
    auto options = fe::graph::SDPA_attributes()
                       .set_name("sdpa")
                       .set_generate_stats(true)
                       .set_attn_scale(1.0f / std::sqrt(static_cast<float>(D)))
                       .set_causal_mask(true);
    auto [O, Stats] = g->sdpa(Q, K, V, options);
    O->set_output(true).set_uid(kUidO).set_dim({1, hq, t, d}).set_stride({t * hq * d, d, hq * d, 1});
    Stats->set_output(true).set_uid(kUidStats).set_data_type(fe::DataType_t::FLOAT).set_dim({1, hq, t, 1});
    if (lse_direct) {
      Stats->set_stride({t * hq, 1, hq, 1});
    } else {
      Stats->set_stride({hq * t, t, 1, 1});
    }
    fe::error_t e;
    try {  // the frontend reports through error_t, but a few backend paths throw
      e = g->validate();
      if (e.is_good()) e = g->build_operation_graph(h);
      if (e.is_good()) e = g->create_execution_plans({fe::HeurMode_t::A});
      if (e.is_good()) e = g->check_support();
      if (e.is_good()) e = g->build_plans();
    } catch (const std::exception& ex) {
      e = fe::error_t(fe::error_code_t::GRAPH_NOT_SUPPORTED, ex.what());
    }
    if (e.is_good()) out = std::move(g);
    return e;
  }

  Entry& entry(const Key& key) {
    auto it = graphs.find(key);
    if (it != graphs.end()) return it->second;
    const auto [T, Hq, Hkv, D, qs, kvs] = key;
    Entry en;
    fe::error_t direct = build(handle, key, true, en.graph);
    if (direct.is_bad()) {
      en.lse_direct = false;
      fe::error_t head_major = build(handle, key, false, en.graph);
      if (head_major.is_bad()) {
        throw std::runtime_error("CudnnAttention: cuDNN has no fused attention for " +
                                 shape_text(T, Hq, Hkv, D, qs, kvs) + ": " + head_major.get_message() +
                                 " (with [T, Hq] Stats: " + direct.get_message() + ")");
      }
    }
    fe::error_t ws = en.graph->get_workspace_size(en.workspace);
    if (ws.is_bad()) {
      throw std::runtime_error("CudnnAttention: workspace size for " + shape_text(T, Hq, Hkv, D, qs, kvs) + ": " +
                               ws.get_message());
    }
    grow(workspace, workspace_bytes, static_cast<std::size_t>(en.workspace), "workspace");
    if (!en.lse_direct) {
      std::size_t floats = static_cast<std::size_t>(T) * static_cast<std::size_t>(Hq);
      void* p = scratch;
      std::size_t bytes = scratch_floats * sizeof(float);
      grow(p, bytes, floats * sizeof(float), "Stats scratch");
      scratch = static_cast<float*>(p);
      scratch_floats = bytes / sizeof(float);
    }
    return graphs.emplace(key, std::move(en)).first->second;
  }

  // Grows a device buffer to at least `bytes` (never shrinks; the old contents are not kept).
  static void grow(void*& p, std::size_t& have, std::size_t bytes, const char* what) {
    if (bytes <= have) return;
    if (p != nullptr) {
      cudaDeviceSynchronize();  // the buffer may be in use by enqueued work
      cudaFree(p);
      p = nullptr;
      have = 0;
    }
    const cudaError_t st = cudaMalloc(&p, bytes);
    if (st != cudaSuccess) {
      p = nullptr;
      throw std::runtime_error(std::string("CudnnAttention: cudaMalloc of ") + std::to_string(bytes) + " bytes for the " +
                               what + " failed: " + cudaGetErrorString(st));
    }
    have = bytes;
  }
};

namespace {
void check_heads(int Hq, int Hkv) {
  if (Hq <= 0 || Hkv <= 0 || Hq % Hkv != 0) {
    throw std::invalid_argument("CudnnAttention: Hq (" + std::to_string(Hq) + ") must be a positive multiple of Hkv (" +
                                std::to_string(Hkv) + ")");
  }
}
}  // namespace

CudnnAttention::CudnnAttention() {
  if (!available()) throw std::runtime_error("CudnnAttention: cuDNN unavailable: " + unavailable_reason());
  auto impl = std::make_unique<Impl>();
  const cudnnStatus_t st = fe::detail::create_handle(&impl->handle);
  if (st != CUDNN_STATUS_SUCCESS) {
    impl->handle = nullptr;
    throw std::runtime_error(std::string("CudnnAttention: cudnnCreate failed: ") + fe::detail::get_error_string(st));
  }
  impl_ = std::move(impl);
}

CudnnAttention::~CudnnAttention() = default;

void CudnnAttention::prepare(int T, int Hq, int Hkv, int D, std::int64_t q_row_stride, std::int64_t kv_row_stride) {
  if (T <= 0) return;
  check_heads(Hq, Hkv);
  impl_->entry({T, Hq, Hkv, D, q_row_stride, kv_row_stride});
}

void CudnnAttention::run(const __nv_bfloat16* q, std::int64_t q_row_stride, const __nv_bfloat16* k,
                         const __nv_bfloat16* v, std::int64_t kv_row_stride, __nv_bfloat16* out, float* lse, int T,
                         int Hq, int Hkv, int D, cudaStream_t stream) {
  if (T <= 0) return;
  check_heads(Hq, Hkv);
  Impl& im = *impl_;
  const Impl::Entry& en = im.entry({T, Hq, Hkv, D, q_row_stride, kv_row_stride});  // one lookup; built on first use
  const cudnnStatus_t st = fe::detail::set_stream(im.handle, stream);
  if (st != CUDNN_STATUS_SUCCESS) {
    throw std::runtime_error(std::string("CudnnAttention: cudnnSetStream failed: ") + fe::detail::get_error_string(st));
  }
  // Stats are always produced (the graph generates them); without a caller's lse they land in scratch.
  float* stats = en.lse_direct ? lse : im.scratch;
  if (stats == nullptr) {
    void* p = im.scratch;
    std::size_t bytes = im.scratch_floats * sizeof(float);
    Impl::grow(p, bytes, static_cast<std::size_t>(T) * Hq * sizeof(float), "Stats scratch");
    im.scratch = static_cast<float*>(p);
    im.scratch_floats = bytes / sizeof(float);
    stats = im.scratch;
  }
  std::unordered_map<std::int64_t, void*>& pack = im.variant_pack;
  pack[kUidQ] = const_cast<__nv_bfloat16*>(q);
  pack[kUidK] = const_cast<__nv_bfloat16*>(k);
  pack[kUidV] = const_cast<__nv_bfloat16*>(v);
  pack[kUidO] = out;
  pack[kUidStats] = stats;
  fe::error_t e = en.graph->execute(im.handle, pack, im.workspace);
  if (e.is_bad()) {
    throw std::runtime_error("CudnnAttention: execute failed for " +
                             shape_text(T, Hq, Hkv, D, q_row_stride, kv_row_stride) + ": " + e.get_message());
  }
  if (!en.lse_direct && lse != nullptr) {
    // [Hq, T] -> [T, Hq]: per head, T floats 4 bytes apart into a column Hq floats apart.
    for (int h = 0; h < Hq; ++h) {
      const cudaError_t ce = cudaMemcpy2DAsync(lse + h, static_cast<std::size_t>(Hq) * sizeof(float),
                                               im.scratch + static_cast<std::size_t>(h) * T, sizeof(float),
                                               sizeof(float), static_cast<std::size_t>(T), cudaMemcpyDeviceToDevice,
                                               stream);
      if (ce != cudaSuccess) {
        throw std::runtime_error(std::string("CudnnAttention: Stats transpose failed: ") + cudaGetErrorString(ce));
      }
    }
  }
  im.last_lse_direct = en.lse_direct;
}

std::size_t CudnnAttention::cached_graphs() const { return impl_->graphs.size(); }
bool CudnnAttention::lse_direct() const { return impl_->last_lse_direct; }

}  // namespace llama3
