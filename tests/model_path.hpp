// Where tests find the source tree and the real model, shared by the host and GPU suites.
//
// The model: FTP_MODEL_PATH if set (the file must then exist, or the calling test fails), else the
// git-ignored cache under the source tree. When neither exists the test says SKIPPED and returns.
#pragma once

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace ftp_test {

inline std::string source_root() {
#ifdef FTP_SOURCE_DIR
  return FTP_SOURCE_DIR;
#else
  return ".";  // run from the repository root
#endif
}

inline std::string source_path(const std::string& relative) { return source_root() + "/" + relative; }

inline std::string default_model_path() { return source_path(".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"); }

/// The model's path, or "" after a visible MESSAGE (or a failed CHECK) when the test cannot run.
inline std::string model_path_or_skip() {
  auto exists = [](const std::string& p) { return std::ifstream(p).good(); };
  if (const char* env = std::getenv("FTP_MODEL_PATH"); env != nullptr && *env != '\0') {
    CHECK_MESSAGE(exists(env), "FTP_MODEL_PATH=", std::string(env), " does not exist");
    return exists(env) ? env : "";
  }
  const std::string path = default_model_path();
  if (!exists(path)) {
    MESSAGE("SKIPPED (model not found at ", path, "; run scripts/fetch_model.sh or set FTP_MODEL_PATH)");
    return "";
  }
  return path;
}

}  // namespace ftp_test
