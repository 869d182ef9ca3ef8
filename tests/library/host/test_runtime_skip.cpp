// The self-test of ftp_test::skip_at_runtime and doctest_main.cpp's reporter. Skipped in a normal
// run (doctest::skip); tests/scripts/runtime_skip_reporter.sh runs it with --no-skip and checks that
// the summary line counts it as skipped, not passed, and that the banner names it with its reason.
#include <doctest/doctest.h>

#include "runtime_skip.hpp"

TEST_CASE("runtime skip self-test: a case that observed nothing is reported as skipped" * doctest::skip()) {
  CHECK(true);  // an assertion that passed does not make the case "passed"
  ftp_test::skip_at_runtime("self-test of the ftp reporter: nothing to observe on purpose");
}
