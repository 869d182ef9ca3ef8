#include <ftp/ftp.hpp>

std::size_t llama_layer_workspace() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) return 0;
  const ftp::WorkspaceShape shape{32768, 1, 4096, 14336, 32, 8, 128};
  return ftp::Pruner<__nv_bfloat16>::workspace_bytes(shape, ftp::Config::llama3());
}
