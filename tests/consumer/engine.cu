// Consumer check: the README's usage compiles in an engine's own project (see README "Use").
#include <ftp/ftp.hpp>

#include <cstdio>

std::size_t llama_layer_workspace();

int main() {
  // Only checks that the program links and runs up to the first device call.
  std::printf("ftp %s, workspace for one 32k-token Llama3-8B sequence needs a GPU to size: %s\n", ftp::kVersion,
              llama_layer_workspace() > 0 ? "ok" : "no GPU");
  return 0;
}
