// ftp::Error: the one exception type the library throws, and the helpers that build its messages.
//
// The library never prints and never exits. Bad arguments are rejected before any device work is
// launched, so a throw leaves the caller's buffers untouched.
#pragma once

#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace ftp {

/// Raised for invalid arguments and for failed CUDA / cuBLAS calls.
/// `argument()` names the offending argument ("" for runtime failures).
class Error : public std::runtime_error {
 public:
  Error(std::string argument, const std::string& message)
      : std::runtime_error("ftp: " + message), argument_(std::move(argument)) {}

  /// The argument that was wrong, e.g. "eta" or "cu_seqlens"; empty for CUDA/cuBLAS failures.
  const std::string& argument() const noexcept { return argument_; }

 private:
  std::string argument_;
};

namespace detail {

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream out;
  out.precision(17);
  (out << ... << parts);
  return out.str();
}

/// Throws Error("argument '<name>' = <value> is invalid: expected <expected>") unless `ok`.
template <class Value>
void require(bool ok, const char* name, const Value& value, const char* expected) {
  if (!ok) {
    throw Error(name, concat("argument '", name, "' = ", value, " is invalid: expected ", expected));
  }
}

/// Same, for pointers (prints null / non-null rather than an address).
inline void require_pointer(const void* pointer, const char* name) {
  if (pointer == nullptr) {
    throw Error(name, concat("argument '", name, "' is a null pointer: expected a device pointer"));
  }
}

}  // namespace detail
}  // namespace ftp
