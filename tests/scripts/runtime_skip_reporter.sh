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

# --skip-exit-code=77 (CTest's SKIP_RETURN_CODE): 77 when every selected case skipped, at runtime or
# by a decorator; 1 when no case matched; the plain exit status when a case ran.
"$bin" --no-skip -tc="runtime skip self-test:*" --skip-exit-code=77 > /dev/null 2>&1
rc=$?; [ "$rc" = 77 ] || fail "a runtime skip with --skip-exit-code=77 exits $rc, not 77"
"$bin" -sf="*/test_runtime_skip.*" --skip-exit-code=77 > /dev/null 2>&1
rc=$?; [ "$rc" = 77 ] || fail "a decorator skip with --skip-exit-code=77 exits $rc, not 77"
"$bin" -tc="no test case has this name" --skip-exit-code=77 > /dev/null 2>&1
rc=$?; [ "$rc" = 1 ] || fail "a filter that matches nothing exits $rc, not 1"
one=$("$bin" -ltc -sf="*/test_config_and_inputs.*" 2>/dev/null | grep -vE "^\[doctest\]|^=+$" | grep -v "^$" | head -1)
[ -n "$one" ] || fail "cannot list a test case of test_config_and_inputs"
"$bin" -tc="$one" --skip-exit-code=77 > /dev/null 2>&1
rc=$?; [ "$rc" = 0 ] || fail "a case that ran ('$one') exits $rc, not 0"
echo "runtime_skip_reporter: ok"
