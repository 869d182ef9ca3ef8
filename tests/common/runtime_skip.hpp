// ftp_test::skip_at_runtime(why): for a test case that finds, while running, that it can observe
// nothing here (doctest's skip decorators are decided at registration). The case calls it and
// returns; the reporter of doctest_main.cpp then counts the case as skipped, not passed, in the
// summary line, and prints it with its reason in a banner at the end of the run. A case whose
// assertions failed stays failed. Prefer a decorator wherever the condition is known at registration.
#pragma once

#include <cstdio>
#include <string>

namespace ftp_test {

/// The reason given by the running test case, empty when it did not call skip_at_runtime.
inline std::string& runtime_skip_reason() {
  static std::string reason;
  return reason;
}

inline void skip_at_runtime(const std::string& why) {
  runtime_skip_reason() = why.empty() ? std::string("(no reason given)") : why;
  std::fprintf(stderr, "[ftp tests] SKIPPED AT RUNTIME: %s\n", runtime_skip_reason().c_str());
}

}  // namespace ftp_test
