// Helpers of the host tests that check error messages.
#pragma once

#include <string>
#include <utility>

namespace ftp_test {

/// The message of the exception of type E that `fn` throws, or "" when it returns. An exception of
/// another type escapes and fails the test case, so a check on the message also checks the type.
template <class E, class F>
std::string message_of(F&& fn) {
  try {
    std::forward<F>(fn)();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace ftp_test
