// Where tests find the source tree and the real models, shared by the host and GPU suites.
//
// A model's file: its environment variable if set (the file must then exist, or the calling test
// fails), else the git-ignored cache under the source tree (what `scripts/fetch_model.sh NAME`
// writes). Tests that need a model are decorated `* ftp_test::needs_model(ftp_test::kQwen05)`:
// when the file is absent they are reported as skipped in doctest's summary, after a visible line
// naming the file and the command that fetches it.
#pragma once

#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "runtime_skip.hpp"

namespace ftp_test {

inline std::string source_root() {
#ifdef FTP_SOURCE_DIR
  return FTP_SOURCE_DIR;
#else
  return ".";  // run from the repository root
#endif
}

inline std::string source_path(const std::string& relative) { return source_root() + "/" + relative; }

/// A model the tests may use: its fetch name (scripts/fetch_model.sh NAME), its file in the cache
/// and the environment variable that overrides the path.
struct ModelFile {
  const char* name;
  const char* file;
  const char* env;
};

inline constexpr ModelFile kSmolLM2{"smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf", "FTP_MODEL_PATH"};
inline constexpr ModelFile kQwen05{"qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
                                   "FTP_QWEN05_MODEL_PATH"};
inline constexpr ModelFile kQwen15{"qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
                                   "FTP_QWEN15_MODEL_PATH"};

inline bool file_exists(const std::string& p) { return std::ifstream(p).good(); }

inline std::string cache_path(const ModelFile& m) { return source_path(std::string(".cache/models/") + m.file); }

inline std::string default_model_path() { return cache_path(kSmolLM2); }

/// The path a test should open: the environment override when set, else the cache path.
inline std::string model_path(const ModelFile& m) {
  if (const char* env = std::getenv(m.env); env != nullptr && *env != '\0') return env;
  return cache_path(m);
}

/// True when the test can run: the file exists, or an override names a file (which the test then
/// opens, failing loudly if it is missing: an explicit path is never skipped).
inline bool model_available(const ModelFile& m) {
  const char* env = std::getenv(m.env);
  return (env != nullptr && *env != '\0') || file_exists(cache_path(m));
}

/// Decorator: skipped, with one visible line per model and process, when the model is absent.
inline doctest::skip needs_model(const ModelFile& m) {
  const bool have = model_available(m);
  if (!have) {
    std::fprintf(stderr, "[ftp tests] model %s not found at %s: its test cases are SKIPPED (run "
                 "scripts/fetch_model.sh %s or set %s)\n", m.name, cache_path(m).c_str(), m.name, m.env);
  }
  return doctest::skip(!have);
}

/// The SmolLM2 model's path, or "" when the test cannot run: after skip_at_runtime (the case then
/// counts as skipped) or, for a missing FTP_MODEL_PATH file, a failed CHECK. (Older form, kept for the SmolLM2 tests that skip from inside the case.)
inline std::string model_path_or_skip() {
  if (const char* env = std::getenv(kSmolLM2.env); env != nullptr && *env != '\0') {
    CHECK_MESSAGE(file_exists(env), kSmolLM2.env, "=", std::string(env), " does not exist");
    return file_exists(env) ? env : "";
  }
  const std::string path = default_model_path();
  if (!file_exists(path)) {
    ftp_test::skip_at_runtime("model not found at " + path + "; run scripts/fetch_model.sh or set FTP_MODEL_PATH");
    return "";
  }
  return path;
}

}  // namespace ftp_test
