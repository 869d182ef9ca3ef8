#!/usr/bin/env bash
# scripts/sanitize.sh without a GPU. Usage: $0 [cmake] [ctest]   (ctest runs it with its own pair)
#  1. `sanitize.sh --triage DIR` over hand-written compute-sanitizer logs (compute-sanitizer 2025.3's
#     format) laid out as the script files them, DIR/<tool>/<entry>.{status,log,out}: what it must
#     let pass (deliberate fault API errors, the leaks of a failed cublasCreate, hazards inside
#     cuBLAS's nvjet kernels, initcheck reads in the blind-spot probe's copy kernel, a skipped entry,
#     which it must list as skipped and not as passed) and what it must report (an invalid access,
#     a hazard or an uninitialized read in ftp's own kernels, a leak, a failed, crashed, timed-out,
#     killed or not-started entry, compute-sanitizer's own failure, a runner that did not finish).
#  2. The whole script (FTP_BUILD_DIR) on a scratch CTest tree labelled like ftp's (gpu entries
#     without a TIMEOUT property, SKIP_RETURN_CODE 77, MEMORYCHECK_TYPE CudaSanitizer) with a fake
#     compute-sanitizer on PATH: ctest -T memcheck with the tool's options, the environment per tool,
#     -R, --timeout, --stop-time, the filing of MemoryChecker.<n>.log and the programs' output, the
#     runner, the exit status.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cmake_bin=${1:-$(command -v cmake)}
ctest_bin=${2:-$(command -v ctest)}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

passed_out='[ftp tests] GPU present: NVIDIA H200 (sm_90, 132 SMs): GPU test cases RUN
[doctest] test cases: 2 | 2 passed | 0 failed | 0 skipped
[doctest] Status: SUCCESS!'

# entry DIR TOOL ENTRY STATUS: the compute-sanitizer log on stdin; the program's output is $passed_out
# unless OUTPUT is set.
entry() {
  mkdir -p "$1/$2"
  cat > "$1/$2/$3.log"
  printf '%s\n' "${OUTPUT:-$passed_out}" > "$1/$2/$3.out"
  echo "$4" > "$1/$2/$3.status"
}

# uninit_read SIZE AT ADDRESS: one initcheck record of an uninitialized read at AT (kernel+offset).
uninit_read() {
  printf '%s\n' "========= Uninitialized __global__ memory read of size $1 bytes" "=========     at $2" \
    "=========     by thread (0,0,0) in block (0,0,0)" "=========     Address $3" "========="
}

# check NAME EXIT OUTPUT PATTERN...: EXIT is the expected exit status, every PATTERN (grep -E) must
# match a line of OUTPUT; a PATTERN starting with "!" must match none.
check() {
  local name=$1 rc=$2 want=$3 output=$4 ok=1 pattern
  shift 4
  [ "$rc" = "$want" ] || { echo "FAIL $name: exit $rc, expected $want"; ok=0; }
  for pattern in "$@"; do
    if [ "${pattern:0:1}" = "!" ]; then
      ! grep -qE -- "${pattern:1}" <<< "$output" || { echo "FAIL $name: a line matches '${pattern:1}'"; ok=0; }
    else
      grep -qE -- "$pattern" <<< "$output" || { echo "FAIL $name: no line matching '$pattern'"; ok=0; }
    fi
  done
  if [ "$ok" = 1 ]; then echo "ok   $name"; else failures=$((failures + 1)); tail -60 <<< "$output" | sed 's/^/     | /'; fi
}

# expect NAME DIR EXIT PATTERN...: the triage of DIR.
expect() {
  local name=$1 dir=$2 want=$3 output rc
  shift 3
  output=$(bash "$root/scripts/sanitize.sh" --triage "$dir" 2>&1)
  rc=$?
  check "$name" "$rc" "$want" "$output" "$@"
}

# ---- 1. the triage ------------------------------------------------------------------------------
clean=$work/clean
entry "$clean" memcheck gpu.library.scorer "passed 13 -" << EOF
========= COMPUTE-SANITIZER
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 0 errors
EOF
# gpu.library.faults: the deliberate API errors and the two allocations of a failed cublasCreate.
entry "$clean" memcheck gpu.library.faults "passed 5 -" << EOF
========= Program hit cudaErrorStreamCaptureUnsupported (error 900) due to "operation not permitted when stream is capturing" on CUDA API call to cudaStreamSynchronize.
=========     Saved host backtrace up to driver entry point at error
=========
========= Program hit cudaErrorStreamCaptureInvalidated (error 901) due to "operation failed due to a previous error during capture" on CUDA API call to cudaStreamEndCapture.
=========
========= Program hit cudaErrorMemoryAllocation (error 2) due to "out of memory" on CUDA API call to cudaMalloc.
=========
========= Leaked 1,024 bytes at 0x7f5718987400
=========     Saved host backtrace up to driver entry point at allocation time
=========         Host Frame: cuMemAlloc_v2 [0x32b91f] in libcuda.so.1
=========         Host Frame: cublasCreate_v2 [0x169f9c] in libcublas.so.13
=========         Host Frame: ftp::Pruner<__nv_bfloat16>::Pruner(ftp::Config const&) [0x77c92] in ftp_cuda_tests
=========
========= Leaked 131,072 bytes at 0x7f5718987800
=========     Saved host backtrace up to driver entry point at allocation time
=========         Host Frame: cuMemAlloc_v2 [0x32b91f] in libcuda.so.1
=========         Host Frame: cublasCreate_v2 [0x169f9c] in libcublas.so.13
=========
========= LEAK SUMMARY: 132096 bytes leaked in 2 allocations
========= ERROR SUMMARY: 5 errors
EOF
OUTPUT='[doctest] test cases: 0 | 0 passed | 0 failed | 5 skipped
1 test case(s) SKIPPED AT RUNTIME' entry "$clean" memcheck gpu.examples.llama3_model "skipped 2 -" << EOF
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 0 errors
EOF
entry "$clean" racecheck gpu.library.ffn_pruner "passed 40 -" << EOF
========= Error: Race reported between Read access at nvjet_sm90_tss_64x32_64x16_2x4_h_bz_TNT+0xb00
=========     and Write access at nvjet_sm90_tss_64x32_64x16_2x4_h_bz_TNT+0x2b40 [480 hazards]
=========
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
EOF
entry "$clean" initcheck gpu.library.cublas_probe "passed 22 -" << EOF
$(uninit_read 2 "void <unnamed>::initcheck_probe_copy_kernel(const __nv_bfloat16 *, __nv_bfloat16 *, int)+0x90" 0x7fa38a06e110)
========= Warning: Error buffer overflow has been detected. Some records have been dropped
========= ERROR SUMMARY: 2 errors
EOF
entry "$clean" initcheck gpu.library.ffn_pruner "passed 22 -" <<< "========= ERROR SUMMARY: 0 errors"
OUTPUT='[ftp] TTFT 211.42 ms | decode 3 tokens in 441.5 ms, 6.8 tokens/s
--- dense ---
The sky is blue
--- ftp ---
The sky blue is' entry "$clean" synccheck runner "passed 3 0" <<< "========= ERROR SUMMARY: 0 errors"
expect "clean logs pass" "$clean" 0 \
  "sanitize: nothing unexpected" \
  "gpu.library.faults / memcheck: passed" \
  "API errors from deliberate faults: 3" \
  "leaks inside a failed cublasCreate .*: 2 allocations, 132096 bytes" \
  "other leaks: 0 allocations, 0 bytes; other errors: 0" \
  "gpu.examples.llama3_model / memcheck: skipped" "SKIPPED: every case skipped, nothing observed" \
  "hazards in cuBLAS kernels .*: 480" "hazards in ftp / runner / test kernels: 0" \
  "uninitialized reads shown: 1 in kernels \(1 in the blind-spot probe's copy kernel\), 0 by cudaMemcpy" \
  "read by its copy kernel\): 1 reports shown, more dropped or not printed" \
  "memcheck: 3 entries: 2 passed, 1 skipped \(nothing observed\), 0 failed, timed out or not run; test cases: 4 run, 4 passed, 0 failed, 5 skipped" \
  "entries with something unexpected: 0" "!FINDING"

# Each finding alone, next to the clean logs.
with_clean() { rm -rf "${work:?}/$1"; cp -r "$clean" "$work/$1"; echo "$work/$1"; }

dir=$(with_clean invalid)
entry "$dir" memcheck gpu.library.selection "passed 30 -" << EOF
========= Invalid __global__ read of size 4 bytes
=========     at void ftp::kernels::gather_rows_kernel<float>(const T1 *, long, const int *, int, int, T1 *)+0x80
=========     by thread (0,0,0) in block (0,0,0)
=========     Address 0x7f0000000000 is out of bounds
=========
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 1 error
EOF
expect "an invalid access in an ftp kernel is a finding" "$dir" 1 "gpu.library.selection / memcheck" \
  "other errors: 1" "Invalid __global__ read" "memcheck: .*entries with something unexpected: 1" "sanitize: FINDINGS"

dir=$(with_clean race)
entry "$dir" racecheck gpu.library.selection "passed 30 -" << EOF
========= Warning: Race reported between Read access at void ftp::kernels::prefix_select_kernel<ftp::CumulativeEta::Rule, (ftp::PrefixForm)0>(T1, const float *, ftp::DeviceBatch, int *, int *)+0x5380
=========     and Write access at void ftp::kernels::prefix_select_kernel<ftp::CumulativeEta::Rule, (ftp::PrefixForm)0>(T1, const float *, ftp::DeviceBatch, int *, int *)+0x58a0 [64 hazards]
=========
========= RACECHECK SUMMARY: 1 hazard displayed (0 errors, 1 warning)
EOF
expect "a hazard in an ftp kernel is a finding" "$dir" 1 "hazards in ftp / runner / test kernels: 64" "prefix_select_kernel" \
  "sanitize: FINDINGS"

dir=$(with_clean uninit)
entry "$dir" initcheck gpu.library.selection "passed 30 -" << EOF
$(uninit_read 4 "void ftp::kernels::gather_rows_kernel<float>(const T1 *, long, const int *, int, int, T1 *)+0x1f0" 0x7f0000000000)
========= ERROR SUMMARY: 1 error
EOF
expect "an uninitialized read in an ftp kernel is a finding" "$dir" 1 "FINDING: uninitialized reads" "gather_rows_kernel"

dir=$(with_clean gemm_reader)
entry "$dir" initcheck gpu.library.ffn_pruner "passed 30 -" << EOF
$(uninit_read 16 "void ftp::kernels::swiglu_kernel<__nv_bfloat16, (int)8>(const T1 *, int, int, T1 *)+0x4b0" 0x7fa38a06e100)
========= ERROR SUMMARY: 1 error
EOF
expect "with the GEMM outputs marked, a read in a GEMM's reader is a finding" "$dir" 1 \
  "FINDING: uninitialized reads with FTP_INITCHECK_GEMM_OUTPUTS=1 \(1 in kernels"

dir=$(with_clean unprinted)
OUTPUT='--- dense ---
--- ftp ---' entry "$dir" initcheck runner "passed 90 0" << 'EOF'
========= ERROR SUMMARY: 3000 errors
========= ERROR SUMMARY: 3000 errors were not printed. Use --print-limit option to adjust the number of printed errors
EOF
expect "initcheck errors past the print limit outside the probe are a finding" "$dir" 1 "3000 more not printed"

dir=$(with_clean probe_helper)
entry "$dir" initcheck gpu.library.cublas_probe "passed 22 -" << EOF
$(uninit_read 2 "void <unnamed>::initcheck_probe_copy_kernel(const __nv_bfloat16 *, __nv_bfloat16 *, int)+0x90" 0x7fa38a06e110)
$(uninit_read 2 "void <unnamed>::gemm_output_copy_kernel(const __nv_bfloat16 *, __nv_bfloat16 *, int)+0x90" 0x7fa38a16e110)
========= ERROR SUMMARY: 2 errors
EOF
expect "in the probe's entry, a read after ftp's GEMM helper (its second case) is a finding" "$dir" 1 \
  "FINDING: 1 reads in other kernels, 0 by cudaMemcpy" "gemm_output_copy_kernel"

dir=$(with_clean probe_copy)
entry "$dir" initcheck gpu.library.cublas_probe "passed 22 -" << EOF
========= Host API memory access error at host access to 0x7fa38a06e000 of size 1542144 bytes
=========     Uninitialized access to 0x7fa38a06e000 on access by cudaMemcpy source
=========
========= ERROR SUMMARY: 1 error
EOF
expect "in the probe's entry, a cudaMemcpy of uninitialized memory is a finding" "$dir" 1 "FINDING: 0 reads in other kernels, 1 by cudaMemcpy"

dir=$(with_clean leak)
entry "$dir" memcheck gpu.examples.llama3_model "passed 20 -" << EOF
========= Leaked 4,096 bytes at 0x7f1234560000
=========     Saved host backtrace up to driver entry point at cudaMalloc time
=========         Host Frame: llama3::DeviceModel::DeviceModel [0x1234] in ftp_cuda_tests
=========
========= LEAK SUMMARY: 4096 bytes leaked in 1 allocations
========= ERROR SUMMARY: 1 error
EOF
expect "a leak outside a failed cublasCreate is a finding" "$dir" 1 "other leaks: 1 allocations, 4096 bytes"

dir=$(with_clean failed)
OUTPUT='[doctest] test cases: 2 | 1 passed | 1 failed | 0 skipped
[doctest] Status: FAILURE!' entry "$dir" synccheck gpu.library.scorer "failed 12 -" <<< "========= ERROR SUMMARY: 0 errors"
expect "an entry whose tests failed is a finding" "$dir" 1 "the tests did not pass under synccheck" \
  "synccheck: 2 entries: 1 passed, 0 skipped .*, 1 failed, timed out or not run; test cases: 2 run, 1 passed, 1 failed"

dir=$(with_clean crashed)
OUTPUT='' entry "$dir" memcheck gpu.library.scorer "crashed 3 -" <<< "========= Error: process didn't terminate successfully"
expect "a crashed entry is a finding" "$dir" 1 "gpu.library.scorer / memcheck: crashed" "the tests did not pass" \
  "no ERROR SUMMARY: compute-sanitizer did not finish"

dir=$(with_clean timeout)
OUTPUT='' entry "$dir" racecheck gpu.examples.attention_sm90 "timeout 1800 -" < /dev/null
expect "a timed-out entry is a finding, with the call that finishes it" "$dir" 1 "TIMED OUT after 1800 s" \
  "to finish them: FTP_SANITIZE_TOOLS=racecheck FTP_SANITIZE_REGEX='\^\(gpu\\\\.examples\\\\.attention_sm90\)\\$'" \
  "!no ERROR SUMMARY"

dir=$(with_clean notstarted)
echo "not-started 0 -" > "$dir/memcheck/gpu.library.selection.status"
expect "an entry the stop time kept from starting is reported" "$dir" 1 "gpu.library.selection / memcheck: not-started" \
  "NOT RUN: the stop time"

dir=$(with_clean runner_incomplete)
OUTPUT='--- dense ---
The sky is blue' entry "$dir" memcheck runner "passed 3 0" << 'EOF'
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 0 errors
EOF
expect "a runner without the FTP generation did not pass" "$dir" 1 "the runner did not get to the FTP generation under memcheck"

dir=$(with_clean sanitizer_crash)
OUTPUT='' entry "$dir" racecheck gpu.library.ffn_pruner "failed 10 -" << EOF
========= Internal Sanitizer Error: The Sanitizer failed to handle a hardware exception.
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
EOF
expect "compute-sanitizer's own failure is reported" "$dir" 1 "compute-sanitizer itself failed"

dir=$(with_clean killed)
OUTPUT='[ftp tests] GPU present: NVIDIA H200 (sm_90, 132 SMs): GPU test cases RUN' \
  entry "$dir" racecheck runner "failed 43 9" << EOF
========= COMPUTE-SANITIZER
========= Error: process didn't terminate successfully
========= Target application returned an error
========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
EOF
expect "a run killed by SIGKILL (the host's OOM killer) is reported" "$dir" 1 "KILLED \\(SIGKILL\\?\\) after 43 s" \
  "runner / racecheck: failed, 43 s, exit 9"

expect "a folder without logs is an error" "$work/nothing" 1 "no folder"

# ---- 2. the whole script on a scratch CTest tree with a fake compute-sanitizer --------------------
fake=$work/fake
mkdir -p "$fake/bin" "$fake/src" "$fake/model"
# The fake compute-sanitizer: writes to --log-file what the scenario (the program's first argument)
# and the environment call for, then runs the program and returns its exit status.
cat > "$fake/bin/compute-sanitizer" << 'EOF'
#!/usr/bin/env bash
[ "${1:-}" = --version ] && { echo "Version 0000.0 (fake)"; exit 0; }
log="" tool=memcheck
while [ $# -gt 0 ]; do
  case "$1" in
    --log-file) log=$2; shift 2 ;;
    --tool) tool=$2; shift 2 ;;
    --leak-check | --print-limit | --show-backtrace | --check-exit-code) shift 2 ;;
    --error-exitcode) echo "unexpected --error-exitcode" >&2; exit 3 ;;
    -*) echo "fake compute-sanitizer: unknown option $1" >&2; exit 3 ;;
    *) break ;;
  esac
done
echo "$tool $*" >> "$FAKE_CALLS"
[ -n "$log" ] || { log=$(mktemp); trap 'cat "$log"; rm -f "$log"' EXIT; }  # no --log-file: stdout
{
  echo "========= COMPUTE-SANITIZER"
  case "$tool:${2:-}" in
    memcheck:faults) echo '========= Program hit cudaErrorMemoryAllocation (error 2) due to "out of memory" on CUDA API call to cudaMalloc.' ;;
    memcheck:invalid) printf '%s\n' "========= Invalid __global__ write of size 4 bytes" \
                        "=========     at void ftp::kernels::scatter_add_kernel(float *)+0x80" ;;
    racecheck:*) printf '%s\n' "========= Error: Race reported between Read access at nvjet_sm90_tss_64x32+0xb00" \
                   "=========     and Write access at nvjet_sm90_tss_64x32+0x2b40 [12 hazards]" ;;
  esac
  # initcheck without FTP_INITCHECK_GEMM_OUTPUTS=1 sees the GEMM outputs as uninitialized.
  if [ "$tool" = initcheck ] && [ "${FTP_INITCHECK_GEMM_OUTPUTS:-}" != 1 ]; then
    printf '%s\n' "========= Uninitialized __global__ memory read of size 16 bytes" \
      "=========     at void ftp::kernels::swiglu_kernel(const float *)+0x4b0"
  fi
} >> "$log"
"$@"
rc=$?
n=$(grep -cE "Program hit|Invalid|Uninitialized" "$log" 2> /dev/null || true)
case "$tool" in
  racecheck) echo "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)" >> "$log" ;;
  memcheck) { echo "========= LEAK SUMMARY: 0 bytes leaked in 0 allocations"; echo "========= ERROR SUMMARY: $n errors"; } >> "$log" ;;
  *) echo "========= ERROR SUMMARY: $n errors" >> "$log" ;;
esac
exit $rc
EOF
# The fake test program: "<scenario>" prints doctest's summary; FTP_REQUIRE_GPU and FTP_SANITIZE
# must be 1. -ltc lists one case (the script's probe).
cat > "$fake/bin/ftp_cuda_tests" << 'EOF'
#!/usr/bin/env bash
case "${1:-}" in -ltc) echo "a fake case"; exit 0 ;; -tc=*) exit 0 ;; esac
[ "${FTP_REQUIRE_GPU:-}${FTP_SANITIZE:-}" = 11 ] || { echo "FTP_REQUIRE_GPU / FTP_SANITIZE not set"; exit 1; }
sleep "${FAKE_SLEEP:-0}"  # every entry
case "$1" in
  skipped) echo "[doctest] test cases: 0 | 0 passed | 0 failed | 3 skipped"; exit 77 ;;
  slow) sleep 3 ;;
esac
echo "[doctest] test cases: 2 | 2 passed | 0 failed | 0 skipped"
EOF
cat > "$fake/bin/ftp_llama3" << 'EOF'
#!/usr/bin/env bash
printf '%s\n' "--- dense ---" "The sky is blue" "--- ftp ---" "The sky blue is"
EOF
chmod +x "$fake/bin"/*
cat > "$fake/src/CMakeLists.txt" << EOF
cmake_minimum_required(VERSION 3.20)
project(fake NONE)
set(MEMORYCHECK_COMMAND compute-sanitizer CACHE FILEPATH "not found here" FORCE)  # as on a tree without one
set(MEMORYCHECK_TYPE CudaSanitizer)
set(MEMORYCHECK_COMMAND_OPTIONS "--tool memcheck --leak-check full --error-exitcode 1")
set(DART_TESTING_TIMEOUT 1800)
include(CTest)
foreach(entry library.clean library.faults library.invalid library.cublas_probe examples.skipped examples.slow)
  string(REGEX REPLACE "^[a-z]+\\\\." "" scenario \${entry})
  string(REGEX REPLACE "\\\\..*" "" scope \${entry})
  add_test(NAME gpu.\${entry} COMMAND $fake/bin/ftp_cuda_tests \${scenario})
  set_tests_properties(gpu.\${entry} PROPERTIES LABELS "gpu;\${scope}" SKIP_RETURN_CODE 77)
endforeach()
add_test(NAME host.library.other COMMAND false)
set_tests_properties(host.library.other PROPERTIES LABELS "host;library")
EOF
tree=$work/fake/build
mkdir -p "$tree/tests" "$tree/examples"
if ! "$cmake_bin" -S "$fake/src" -B "$tree" > "$work/configure.log" 2>&1; then
  echo "FAIL cannot configure the scratch tree:"; cat "$work/configure.log"; exit 1
fi
ln -s "$fake/bin/ftp_cuda_tests" "$tree/tests/ftp_cuda_tests"
ln -s "$fake/bin/ftp_llama3" "$tree/examples/ftp_llama3"
: > "$fake/model/model.gguf"

# run NAME EXIT PATTERN... with the environment given before it: the whole script on the scratch tree.
run() {
  local name=$1 want=$2 output rc
  shift 2
  : > "$work/calls"
  output=$(PATH="$fake/bin:$(dirname "$ctest_bin"):$PATH" FAKE_CALLS=$work/calls FTP_BUILD_DIR=$tree \
           FTP_MODEL_PATH=$fake/model/model.gguf bash "$root/scripts/sanitize.sh" 2>&1)
  rc=$?
  check "$name" "$rc" "$want" "$output
$(sed 's/^/calls: /' "$work/calls")" "$@"
}

OUT=$work/out1 FTP_SANITIZE_EXCLUDE_REGEX='invalid|slow' FTP_SANITIZE_JOBS=2 \
  run "ctest -T memcheck over the clean entries, all four tools" 0 \
  "== 4 entries: gpu.library.clean gpu.library.faults gpu.library.cublas_probe gpu.examples.skipped" \
  "ctest --test-dir .* -T memcheck -L gpu -E invalid[|]slow -j 2 .*MemoryCheckCommandOptions=--tool racecheck --print-limit 2000 --check-exit-code no" \
  "FTP_INITCHECK_GEMM_OUTPUTS=1 ctest .*--tool initcheck --show-backtrace no" \
  "FTP_INITCHECK_GEMM_OUTPUTS=0 ctest .*--tool memcheck --leak-check full" \
  "gpu.library.faults / memcheck: passed" "API errors from deliberate faults: 1" \
  "gpu.examples.skipped / (memcheck|racecheck|initcheck|synccheck): skipped" \
  "hazards in cuBLAS kernels .*: 12" \
  "memcheck: 4 entries: 3 passed, 1 skipped \(nothing observed\), 0 failed, timed out or not run; test cases: 6 run, 6 passed, 0 failed, 3 skipped" \
  "== runner: not run \(no GGUF at .*, or a filter is set" \
  "sanitize: nothing unexpected" "!host\.library" "!--- runner /"
# Each tool's own log and the program's output were filed.
if grep -q "cudaErrorMemoryAllocation" "$work/out1/memcheck/gpu.library.faults.log" 2> /dev/null &&
   grep -q "test cases: 2 | 2 passed" "$work/out1/memcheck/gpu.library.faults.out" 2> /dev/null &&
   grep -q "RACECHECK SUMMARY" "$work/out1/racecheck/gpu.library.faults.log" 2> /dev/null &&
   ! grep -q "cudaErrorMemoryAllocation" "$work/out1/racecheck/gpu.library.faults.log"; then
  echo "ok   the logs and outputs are filed per tool and entry"
else
  echo "FAIL the filed logs / output of gpu.library.faults"; failures=$((failures + 1))
fi

OUT=$work/out2 FTP_SANITIZE_TOOLS="memcheck initcheck" \
  run "a real error in an ftp kernel fails the sweep; the runner runs with no filter set" 1 \
  "gpu.library.invalid / memcheck: passed" "other errors: 1" "Invalid __global__ write" \
  "runner / memcheck: passed, [0-9]+ s, exit 0" "runner / initcheck: passed" \
  "memcheck: 7 entries: .*entries with something unexpected: 1" "initcheck: 7 entries: .*something unexpected: 0" \
  "sanitize: FINDINGS"

OUT=$work/out3 FTP_SANITIZE_TOOLS=synccheck FTP_SANITIZE_REGEX='slow|clean' FTP_SANITIZE_TIMEOUT=2 \
  run "FTP_SANITIZE_TIMEOUT reaches CTest (ctest --timeout)" 1 \
  "gpu.examples.slow / synccheck: timeout" "TIMED OUT" "gpu.library.clean / synccheck: passed" \
  "FTP_SANITIZE_REGEX='\^\(gpu\\\\.examples\\\\.slow\)\\$'"

# --stop-time: a 6 s deadline, 4 s per entry, one at a time: the second is cut short, the third
# never starts (the script lets the runner start only with 60 s left).
OUT=$work/out4 FTP_SANITIZE_TOOLS=memcheck FTP_SANITIZE_REGEX='faults|clean|cublas_probe' FTP_SANITIZE_DEADLINE=6 \
  FAKE_SLEEP=4 FTP_SANITIZE_RUNNER=1 \
  run "FTP_SANITIZE_DEADLINE reaches CTest (ctest --stop-time)" 1 \
  "--stop-time [0-9]{2}:[0-9]{2}:[0-9]{2}" "/ memcheck: passed" "/ memcheck: timeout" "/ memcheck: not-started" \
  "NOT RUN: the stop time" "runner / memcheck: not-started"

if [ "$failures" -gt 0 ]; then
  echo "sanitize_triage: $failures check(s) failed"
  exit 1
fi
echo "sanitize_triage: all checks passed"
