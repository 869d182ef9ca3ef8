// The one translation unit that holds doctest's main(); every other test file only includes doctest.
// Its default reporter, "ftp", is doctest's console reporter plus ftp_test::skip_at_runtime
// (runtime_skip.hpp): cases that called it are moved from "passed" to "skipped" in the summary line
// and listed with their reasons in a banner. `-r=console` (or any other reporter) still works.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "runtime_skip.hpp"

namespace {

struct SkipAwareConsoleReporter : doctest::ConsoleReporter {
  struct Skipped {
    std::string name, file, reason;
  };
  std::vector<Skipped> skipped;
  const doctest::TestCaseData* current = nullptr;

  explicit SkipAwareConsoleReporter(const doctest::ContextOptions& co) : doctest::ConsoleReporter(co) {}

  void test_case_start(const doctest::TestCaseData& in) override {
    ftp_test::runtime_skip_reason().clear();
    current = &in;
    doctest::ConsoleReporter::test_case_start(in);
  }

  void test_case_end(const doctest::CurrentTestCaseStats& st) override {
    doctest::ConsoleReporter::test_case_end(st);
    const std::string& reason = ftp_test::runtime_skip_reason();
    if (current != nullptr && !reason.empty() && st.testCaseSuccess && st.failure_flags == 0) {
      skipped.push_back({current->m_name, current->m_file.c_str(), reason});
    }
    ftp_test::runtime_skip_reason().clear();
  }

  void test_run_end(const doctest::TestRunStats& p) override {
    if (!skipped.empty()) {
      s << "[ftp tests] *** " << skipped.size()
        << " test case(s) SKIPPED AT RUNTIME (they observed nothing here; counted as skipped below) ***\n";
      for (const Skipped& k : skipped) s << "[ftp tests]   " << k.name << " (" << k.file << "): " << k.reason << "\n";
    }
    doctest::TestRunStats moved = p;
    moved.numTestCasesPassingFilters -= static_cast<unsigned>(skipped.size());
    doctest::ConsoleReporter::test_run_end(moved);
  }
};

bool names_a_reporter(const char* arg) {
  for (const char* prefix : {"-r=", "--r=", "-reporters=", "--reporters=", "-dt-r=", "--dt-r=", "-dt-reporters=",
                             "--dt-reporters="}) {
    if (std::strncmp(arg, prefix, std::strlen(prefix)) == 0) return true;
  }
  return false;
}

}  // namespace

DOCTEST_REGISTER_REPORTER("ftp", 0, SkipAwareConsoleReporter);

int main(int argc, char** argv) {
  doctest::Context context;
  bool reporter_given = false;
  for (int i = 1; i < argc; ++i) reporter_given = reporter_given || names_a_reporter(argv[i]);
  if (!reporter_given) context.setOption("reporters", "ftp");
  context.applyCommandLine(argc, argv);
  return context.run();
}
