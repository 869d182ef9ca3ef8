#!/usr/bin/env bash
# Checks doctest_main.cpp's reporter: a case that called ftp_test::skip_at_runtime is counted as
# skipped in the summary line (not passed) and is listed with its reason. Usage: $0 <ftp_host_tests>
set -uo pipefail
bin=$1
out=$("$bin" --no-skip -tc="runtime skip self-test:*" 2>&1)
rc=$?
echo "$out"
fail() { echo "runtime_skip_reporter: FAIL: $*"; exit 1; }
[ "$rc" = 0 ] || fail "exit $rc"
grep -qE "test cases: +0 \| +0 passed \| +0 failed \| +[1-9][0-9]* skipped" <<< "$out" || fail "summary does not count the case as skipped"
grep -q "1 test case(s) SKIPPED AT RUNTIME" <<< "$out" || fail "no banner"
grep -q "runtime skip self-test: .*nothing to observe on purpose" <<< "$out" || fail "the banner lacks the case or its reason"
echo "runtime_skip_reporter: ok"
