// Small helpers shared by the evaluation programs (ftp_eval, ftp_longeval): a program clock and
// progress lines on stderr, JSON writing, statistics. Host only.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <numeric>
#include <string>
#include <type_traits>
#include <vector>

#include "llama3/report.hpp"

namespace evalcommon {

// ---- progress, time budget -----------------------------------------------------------------------

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count(); }

 private:
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
};

inline const Stopwatch& program_clock() {
  static const Stopwatch clock;
  return clock;
}

inline void progress(const char* format, ...) {
  std::fprintf(stderr, "[%6.1f s] ", program_clock().seconds());
  va_list args;
  va_start(args, format);
  std::vfprintf(stderr, format, args);
  va_end(args);
  std::fputc('\n', stderr);
}

// ---- JSON writing --------------------------------------------------------------------------------

// JSON text and logit metrics: llama3/report.hpp, shared with the runner CLI.
using llama3::report::all_finite;
using llama3::report::argmax;
using llama3::report::kl_divergence;
inline std::string jstr(const std::string& raw) { return llama3::report::json_string(raw); }
inline std::string jnum(double x) { return llama3::report::json_number(x); }

template <class V>
std::string jarr(const std::vector<V>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ", ";
    if constexpr (std::is_integral_v<V>) s += std::to_string(v[i]);
    else s += jnum(static_cast<double>(v[i]));
  }
  return s + "]";
}

inline std::string jlist(const std::vector<std::string>& items) {
  std::string s = "[";
  for (std::size_t i = 0; i < items.size(); ++i) s += (i ? ",\n    " : "\n    ") + items[i];
  return s + (items.empty() ? "]" : "\n  ]");
}

/// One JSON object built field by field.
class Obj {
 public:
  Obj& raw(const std::string& key, const std::string& json) {
    s_ += (s_.empty() ? "" : ", ") + jstr(key) + ": " + json;
    return *this;
  }
  Obj& num(const std::string& key, double x) { return raw(key, jnum(x)); }
  Obj& integer(const std::string& key, long long x) { return raw(key, std::to_string(x)); }
  Obj& boolean(const std::string& key, bool b) { return raw(key, b ? "true" : "false"); }
  Obj& str(const std::string& key, const std::string& s) { return raw(key, jstr(s)); }
  std::string done() const { return "{" + s_ + "}"; }

 private:
  std::string s_;
};

// ---- statistics ----------------------------------------------------------------------------------

inline double mean(const std::vector<double>& v) {
  return v.empty() ? NAN : std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
}
inline double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}
inline double max_of(const std::vector<double>& v) { return v.empty() ? NAN : *std::max_element(v.begin(), v.end()); }
inline double rate(const std::vector<bool>& v) {
  if (v.empty()) return NAN;
  return static_cast<double>(std::count(v.begin(), v.end(), true)) / static_cast<double>(v.size());
}

}  // namespace evalcommon
