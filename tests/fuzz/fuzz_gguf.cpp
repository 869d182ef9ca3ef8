// libFuzzer target: the GGUF parser and the model config/weights readers must turn any byte string
// into either a model or a llama3::LoadError; anything else (a crash, a sanitizer report, another
// exception type) is a finding.
#include <cstddef>
#include <cstdint>

#include "llama3/gguf.hpp"
#include "llama3/host_weights.hpp"
#include "llama3/model_config.hpp"
#include "llama3/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const llama3::GgufFile file = llama3::GgufFile::parse(data, size);
    for (const auto& tensor : file.tensors()) (void)file.tensor_data(tensor);
    try {
      const llama3::LlamaConfig config = llama3::config_from_gguf(file);
      (void)config;
    } catch (const llama3::LoadError&) {
    }
    try {
      const llama3::Tokenizer tokenizer = llama3::Tokenizer::from_gguf(file);
      (void)tokenizer.encode("fuzz <|im_start|> 123", false, true);
    } catch (const llama3::LoadError&) {
    }
  } catch (const llama3::LoadError&) {
  }
  return 0;
}
