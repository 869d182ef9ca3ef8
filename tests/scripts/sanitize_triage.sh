#!/usr/bin/env bash
# The triage of scripts/sanitize.sh (`--triage-only`) over hand-written compute-sanitizer logs in the
# format compute-sanitizer 2025.3 prints: what it must let pass (deliberate fault API errors, hazards
# inside cuBLAS's nvjet kernels, initcheck reads in the blind-spot probe's copy kernel) and what
# it must report (a hazard or an uninitialized read in ftp's own kernels, a leak, an invalid access,
# a timeout, a run killed by SIGKILL, a run that never started, a runner that did not finish). Runs
# without a GPU (ctest).
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0

passed_suite='[doctest] test cases:  2 |  2 passed | 0 failed | 56 skipped
[doctest] Status: SUCCESS!'
failed_suite='[doctest] test cases:  2 |  1 passed | 1 failed | 56 skipped
[doctest] Status: FAILURE!'

# log DIR KEY STATUS: the log's text on stdin, "<exit status> <seconds>" as STATUS.
log() {
  mkdir -p "$1"
  cat > "$1/$2.log"
  echo "$3" > "$1/$2.status"
}

# expect NAME DIR EXIT PATTERN...: the triage of DIR exits with EXIT and prints every PATTERN.
expect() {
  local name=$1 dir=$2 want=$3
  shift 3
  local output rc
  output=$(OUT="$dir" FTP_SANITIZE_TOOLS="memcheck racecheck initcheck synccheck" \
           bash "$root/scripts/sanitize.sh" --triage-only 2>&1)
  rc=$?
  local ok=1
  [ "$rc" = "$want" ] || { echo "FAIL $name: exit $rc, expected $want"; ok=0; }
  for pattern in "$@"; do
    grep -qE -- "$pattern" <<< "$output" || { echo "FAIL $name: no line matching '$pattern'"; ok=0; }
  done
  if [ "$ok" = 1 ]; then
    echo "ok   $name"
  else
    failures=$((failures + 1))
    sed 's/^/     | /' <<< "$output" | tail -40
  fi
}

# ---- a clean set of runs: everything the triage must let pass ----------------------------------
clean=$work/clean
log "$clean" suite-scorer.memcheck "0 13" << EOF
$passed_suite
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 0 errors
EOF
log "$clean" suite-faults.memcheck "0 5" << EOF
========= Program hit cudaErrorStreamCaptureUnsupported (error 900) due to "operation not permitted when stream is capturing" on CUDA API call to cudaStreamSynchronize.
=========     Saved host backtrace up to driver entry point at error
========= 
========= Program hit cudaErrorStreamCaptureInvalidated (error 901) due to "operation failed due to a previous error during capture" on CUDA API call to cudaStreamEndCapture.
========= 
$passed_suite
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 2 errors
EOF
log "$clean" suite-ffn_pruner~1.racecheck "0 40" << EOF
========= Error: Race reported between Read access at nvjet_sm90_tss_64x32_64x16_2x4_h_bz_TNT+0xb00
=========     and Write access at nvjet_sm90_tss_64x32_64x16_2x4_h_bz_TNT+0x2b40 [480 hazards]
========= 
$passed_suite
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
EOF
log "$clean" suite-cublas_probe~1.initcheck "0 22" << EOF
========= Uninitialized __global__ memory read of size 2 bytes
=========     at void <unnamed>::initcheck_probe_copy_kernel(const __nv_bfloat16 *, __nv_bfloat16 *, int)+0x90
=========     by thread (1,0,0) in block (0,0,0)
=========     Address 0x7fa38a06e110
========= 
========= Warning: Error buffer overflow has been detected. Some records have been dropped
$passed_suite
========= ERROR SUMMARY: 2 errors
EOF
log "$clean" suite-ffn_pruner~1.initcheck "0 22" << EOF
$passed_suite
========= ERROR SUMMARY: 0 errors
EOF
log "$clean" runner.synccheck "0 3" << 'EOF'
[ftp] TTFT 211.42 ms | decode 3 tokens in 441.5 ms, 6.8 tokens/s
--- dense ---
The sky is blue
--- ftp ---
The sky blue is
========= ERROR SUMMARY: 0 errors
EOF
expect "clean runs pass" "$clean" 0 \
  "sanitize: nothing unexpected" \
  "API errors from deliberate faults: 2" \
  "hazards in cuBLAS kernels .*: 480" \
  "hazards in ftp / runner / test kernels: 0" \
  "uninitialized reads shown: 1 in kernels \(1 in the blind-spot probe's copy kernel\), 0 by cudaMemcpy" \
  "its copy kernel\): 1 reports shown, more dropped or not printed" \
  "memcheck: 2 runs, 4 cases run: 4 passed, 0 failed"

# ---- each finding alone, next to the clean runs ---------------------------------------------------
with_clean() { rm -rf "$work/$1"; cp -r "$clean" "$work/$1"; echo "$work/$1"; }

dir=$(with_clean race)
log "$dir" suite-selection~1.racecheck "0 30" << EOF
========= Warning: Race reported between Read access at void ftp::kernels::prefix_select_kernel<ftp::CumulativeEta::Rule, (ftp::PrefixForm)0>(T1, const float *, ftp::DeviceBatch, int *, int *)+0x5380
=========     and Write access at void ftp::kernels::prefix_select_kernel<ftp::CumulativeEta::Rule, (ftp::PrefixForm)0>(T1, const float *, ftp::DeviceBatch, int *, int *)+0x58a0 [64 hazards]
========= 
$passed_suite
========= RACECHECK SUMMARY: 1 hazard displayed (0 errors, 1 warning)
EOF
expect "a hazard in an ftp kernel is a finding" "$dir" 1 "hazards in ftp / runner / test kernels: 64" "prefix_select_kernel" \
  "sanitize: FINDINGS"

dir=$(with_clean uninit)
log "$dir" suite-selection~1.initcheck "0 30" << EOF
========= Uninitialized __global__ memory read of size 4 bytes
=========     at void ftp::kernels::gather_rows_kernel<float>(const T1 *, long, const int *, int, int, T1 *)+0x1f0
=========     by thread (0,0,0) in block (3,0,0)
=========     Address 0x7f0000000000
========= 
$passed_suite
========= ERROR SUMMARY: 1 error
EOF
expect "an uninitialized read in an ftp kernel is a finding" "$dir" 1 "FINDING: uninitialized reads" "gather_rows_kernel"

dir=$(with_clean gemm_reader)
log "$dir" suite-ffn_pruner~2.initcheck "0 30" << EOF
========= Uninitialized __global__ memory read of size 16 bytes
=========     at void ftp::kernels::swiglu_kernel<__nv_bfloat16, (int)8>(const T1 *, int, int, T1 *)+0x4b0
=========     by thread (0,0,0) in block (8,0,0)
=========     Address 0x7fa38a06e100
========= 
$passed_suite
========= ERROR SUMMARY: 1 error
EOF
expect "with the GEMM outputs marked, a read in a GEMM's reader is a finding" "$dir" 1 \
  "FINDING: uninitialized reads with FTP_INITCHECK_GEMM_OUTPUTS=1 \(1 in kernels"

dir=$(with_clean unprinted)
log "$dir" runner.initcheck "0 90" << 'EOF'
--- dense ---
The sky is blue
--- ftp ---
The sky blue is
========= ERROR SUMMARY: 3000 errors
========= ERROR SUMMARY: 3000 errors were not printed. Use --print-limit option to adjust the number of printed errors
EOF
expect "initcheck errors past the print limit outside the probe are a finding" "$dir" 1 "3000 more not printed"

dir=$(with_clean probe_copy)
log "$dir" suite-cublas_probe~1.initcheck "0 22" << EOF
========= Uninitialized __global__ memory read of size 2 bytes
=========     at void <unnamed>::initcheck_probe_copy_kernel(const __nv_bfloat16 *, __nv_bfloat16 *, int)+0x90
=========     by thread (1,0,0) in block (0,0,0)
=========     Address 0x7fa38a06e110
========= 
========= Host API memory access error at host access to 0x7fa38a06e000 of size 1542144 bytes
=========     Uninitialized access to 0x7fa38a06e000 on access by cudaMemcpy source
========= 
$passed_suite
========= ERROR SUMMARY: 2 errors
EOF
expect "in the probe's run, a read other than its copy kernel's is a finding" "$dir" 1 "FINDING: 0 reads in other kernels, 1 by cudaMemcpy"

dir=$(with_clean leak)
log "$dir" suite-llama3_model.memcheck "0 20" << EOF
========= Leaked 4,096 bytes at 0x7f1234560000
=========     Saved host backtrace up to driver entry point at cudaMalloc time
=========         Host Frame: llama3::DeviceModel::DeviceModel [0x1234] in ftp_cuda_tests
========= 
$passed_suite
========= LEAK SUMMARY: 4096 bytes leaked in 1 allocations
========= ERROR SUMMARY: 1 error
EOF
expect "a leak outside a failed cublasCreate is a finding" "$dir" 1 "other leaks: 1 allocations, 4096 bytes"

dir=$(with_clean cublas_leak)
log "$dir" cublasfault.memcheck "0 2" << EOF
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
[doctest] test cases:  1 |  1 passed | 0 failed | 59 skipped
[doctest] Status: SUCCESS!
========= LEAK SUMMARY: 132096 bytes leaked in 2 allocations
========= ERROR SUMMARY: 2 errors
EOF
expect "the leaks inside a failed cublasCreate are expected" "$dir" 0 \
  "leaks inside a failed cublasCreate .*: 2 allocations, 132096 bytes" "other leaks: 0 allocations, 0 bytes"

dir=$(with_clean invalid)
log "$dir" prefill.memcheck "0 5" << EOF
========= Invalid __global__ read of size 4 bytes
=========     at void llama3::kernels::rmsnorm_kernel<float>(const float *, float *)+0x80
=========     by thread (0,0,0) in block (0,0,0)
=========     Address 0x7f0000000000 is out of bounds
========= 
$passed_suite
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 1 error
EOF
expect "an invalid access is a finding" "$dir" 1 "other errors: 1" "Invalid __global__ read"

dir=$(with_clean timeout)
log "$dir" suite-attention_sm90~3.racecheck "124 353" << EOF
$failed_suite
EOF
expect "a timed-out run is a finding" "$dir" 1 "TIMED OUT after 353 s" "the tests did not pass under racecheck"

dir=$(with_clean notrun)
echo "not-run 0" > "$dir/cublasfault.memcheck.status"
expect "a run the deadline kept from starting is reported" "$dir" 1 "cublasfault / memcheck: NOT RUN"

dir=$(with_clean runner_incomplete)
log "$dir" runner.memcheck "0 3" << 'EOF'
--- dense ---
The sky is blue
========= LEAK SUMMARY: 0 bytes leaked in 0 allocations
========= ERROR SUMMARY: 0 errors
EOF
expect "a runner run without the FTP generation did not pass" "$dir" 1 "the tests did not pass under memcheck"

dir=$(with_clean sanitizer_crash)
log "$dir" suite-ffn_pruner~5.racecheck "1 10" << EOF
========= Internal Sanitizer Error: The Sanitizer failed to handle a hardware exception.
$failed_suite
========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)
EOF
expect "compute-sanitizer's own failure is reported" "$dir" 1 "compute-sanitizer itself failed"

dir=$(with_clean killed)
log "$dir" suite-llama3_model~5.racecheck "9 43" << EOF
========= COMPUTE-SANITIZER
[ftp tests] GPU present: NVIDIA H200 (sm_90, 132 SMs): GPU test cases RUN
========= Error: process didn't terminate successfully
========= Target application returned an error
========= RACECHECK SUMMARY: 0 hazards displayed (0 errors, 0 warnings)
EOF
expect "a run killed by SIGKILL (the host's OOM killer) is reported" "$dir" 1 "KILLED \\(SIGKILL\\) after 43 s" \
  "the tests did not pass under racecheck"

if [ "$failures" -gt 0 ]; then
  echo "sanitize_triage: $failures case(s) failed"
  exit 1
fi
echo "sanitize_triage: all cases passed"
