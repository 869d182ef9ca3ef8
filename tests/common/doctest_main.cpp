// The one translation unit that holds doctest's main(); every other test file only includes doctest.
// Its default reporter, "ftp", is doctest's console reporter plus ftp_test::skip_at_runtime
// (runtime_skip.hpp): cases that called it are moved from "passed" to "skipped" in the summary line
// and listed with their reasons in a banner. `-r=console` (or any other reporter) still works.
//
// --skip-exit-code=N (for CTest's SKIP_RETURN_CODE): when no test case ran because every selected
// case was skipped (doctest::skip, e.g. no GPU, or ftp_test::skip_at_runtime, e.g. no model) and
// none failed, the program exits N instead of 0, so that a run which observed nothing is reported
// as skipped; when no case matched the filters at all it exits 1 (a filter that names nothing is a
// mistake, not a skip). Needs the "ftp" reporter.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <string>
#include <vector>

#include "runtime_skip.hpp"

namespace {

/// What the "ftp" reporter saw, for --skip-exit-code (-1: the reporter did not run).
struct RunOutcome {
  int cases_observed = -1;  // ran and not skipped at runtime
  int cases_matching = -1;  // passing the filters, doctest::skip ignored (a --count --no-skip run)
  int cases_failed = 0;
};
RunOutcome& run_outcome() {
  static RunOutcome outcome;
  return outcome;
}

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

  void report_query(const doctest::QueryData& in) override {
    if (in.run_stats != nullptr) run_outcome().cases_matching = static_cast<int>(in.run_stats->numTestCasesPassingFilters);
    doctest::ConsoleReporter::report_query(in);
  }
  void test_run_end(const doctest::TestRunStats& p) override {
    if (!skipped.empty()) {
      s << "[ftp tests] *** " << skipped.size()
        << " test case(s) SKIPPED AT RUNTIME (they observed nothing here; counted as skipped below) ***\n";
      for (const Skipped& k : skipped) s << "[ftp tests]   " << k.name << " (" << k.file << "): " << k.reason << "\n";
    }
    doctest::TestRunStats moved = p;
    moved.numTestCasesPassingFilters -= static_cast<unsigned>(skipped.size());
    run_outcome().cases_observed = static_cast<int>(moved.numTestCasesPassingFilters);
    run_outcome().cases_failed = static_cast<int>(p.numTestCasesFailed);
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
  int skip_exit_code = 0;
  std::vector<char*> args;  // argv without --skip-exit-code, which doctest does not know
  const char* skip_flag = "--skip-exit-code=";
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strncmp(argv[i], skip_flag, std::strlen(skip_flag)) == 0) {
      skip_exit_code = std::atoi(argv[i] + std::strlen(skip_flag));
      continue;
    }
    if (i > 0) reporter_given = reporter_given || names_a_reporter(argv[i]);
    args.push_back(argv[i]);
  }
  if (!reporter_given) context.setOption("reporters", "ftp");
  context.applyCommandLine(static_cast<int>(args.size()), args.data());
  const int status = context.run();
  const RunOutcome& outcome = run_outcome();
  if (skip_exit_code == 0 || status != 0 || context.shouldExit() || outcome.cases_observed != 0 ||
      outcome.cases_failed != 0) {
    return status;
  }
  // Nothing ran and nothing failed: were there cases to skip? Count the ones the filters select,
  // decorators ignored, in a second, silent run in doctest's count mode.
  doctest::Context count_context;
  count_context.setOption("reporters", "ftp");
  std::vector<char*> count_args = args;
  char count_flag[] = "--count", no_skip_flag[] = "--no-skip", out_flag[] = "--out=/dev/null";
  for (char* flag : {count_flag, no_skip_flag, out_flag}) count_args.push_back(flag);  // flags: no "=value" form
  count_context.applyCommandLine(static_cast<int>(count_args.size()), count_args.data());
  count_context.run();
  if (outcome.cases_matching <= 0) {
    std::fprintf(stderr, "[ftp tests] no test case matched the filters\n");
    return 1;
  }
  std::fprintf(stderr, "[ftp tests] every selected test case was skipped: exit %d (reported as skipped)\n",
               skip_exit_code);
  return skip_exit_code;
}
