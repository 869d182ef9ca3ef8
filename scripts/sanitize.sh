#!/usr/bin/env bash
# compute-sanitizer over ftp's GPU tests, through CTest, on a CUDA machine:
#   FTP_BUILD_DIR=build-gpu bash scripts/sanitize.sh  a configured and built tree, used as it is
#   bash scripts/sanitize.sh                          builds build-gpu first (scripts/gpu_suite.sh build)
#   bash scripts/sanitize.sh --triage [DIR]           only the triage of DIR (default $OUT), no GPU
# Each tool of FTP_SANITIZE_TOOLS (memcheck --leak-check full, racecheck, initcheck, synccheck) is one
#   ctest --test-dir BUILD -T memcheck -L gpu [-R|-E|-LE ..] -j N [--timeout S] [--stop-time T]
#     --overwrite MemoryCheckCommandOptions="--tool <tool> ... --print-limit 2000 --check-exit-code no"
# with FTP_REQUIRE_GPU=1 (a missing GPU fails) and FTP_SANITIZE=1 (the largest test sizes / 8,
# tests/common/test_util.cuh), and FTP_INITCHECK_GEMM_OUTPUTS=1 for initcheck only (0 otherwise;
# see the triage notes). No --error-exitcode: an entry passes by its own exit status and the triage
# judges the reports. CTest does the queue, the split (one entry per test file, e.g.
# gpu.library.selection), -j, timeouts, the stop time, RUN_SERIAL (gpu.library.faults, whose
# cuBLAS-failure case takes all free device memory), longest first, and "Skipped" for an entry whose
# cases all skipped. The runner's synthetic prefill (DeviceModel on random weights, dense then FTP
# prefill and a decode step) is a subcase of gpu.examples.llama3_model, so it runs with the suite.
# The script adds what CTest cannot:
#   - the build (FTP_BUILD_DIR unset), and a probe that compute-sanitizer runs here at all (some
#     container runtimes refuse it the device): one GPU test case under memcheck;
#   - ftp_llama3 on a GGUF under each tool, --compare -P 4 -N 4 (dense, FTP prefill, decode): it is
#     no CTest entry, it needs the model;
#   - after each tool, the filing of every selected entry's compute-sanitizer log
#     (BUILD/Testing/Temporary/MemoryChecker.<test number>.log), program output (LastDynamicAnalysis_*.log)
#     and CTest result as $OUT/<tool>/<entry>.{log,out,status} (status: "<result> <seconds> <exit|->";
#     "not-started" for an entry the stop time kept out, which CTest does not list);
#   - the triage (notes below), printed last and kept in $OUT/summary.txt. Exit status 0 only when
#     nothing unexpected was found.
# OUT accumulates: a call replaces the files of the entries it ran, the triage reads all of them, so a
# second call with FTP_SANITIZE_REGEX set to what timed out (the summary prints it) completes a sweep.
#
# Environment: OUT                   logs and summary (default ./sanitize-out)
#   FTP_BUILD_DIR                    a built tree configured by ftp's CMakeLists (include(CTest)): no build
#   FTP_SANITIZE_TOOLS               subset of "memcheck racecheck initcheck synccheck" (default all)
#   FTP_SANITIZE_REGEX, _EXCLUDE_REGEX, _EXCLUDE_LABEL  ctest -R, -E, -LE
#   FTP_SANITIZE_JOBS                ctest -j (default 1)
#   FTP_SANITIZE_TIMEOUT             ctest --timeout, seconds per entry (default: the tree's
#                                    FTP_GPU_TEST_TIMEOUT, 1800), and the runner's (default 1800)
#   FTP_SANITIZE_DEADLINE            seconds after the start by which all must have ended: ctest
#                                    --stop-time; the runner starts only with 60 s left
#   FTP_SANITIZE_RUNNER              auto (default: when the GGUF is there and no filter is set), 1, 0
#   FTP_MODEL_PATH                   the GGUF (default .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf)
#
# Triage of what earlier runs reported (the summary separates these from real findings):
#   - API errors from tests that inject faults on purpose ("Program hit cudaErrorMemoryAllocation"
#     from the allocation-failure test; cudaErrorStreamCaptureUnsupported / ...Invalidated from the
#     capturing-stream tests in tests/library/cuda/test_faults.cu) are counted apart from every other
#     error, and so are the two device allocations (132 KiB) that cuBLAS keeps when the deliberate
#     cuBLAS-failure test makes cublasCreate fail (the handle never reaches the caller to free).
#   - racecheck: hazards are split into cuBLAS's own kernels (nvjet*, cutlass, *gemm*: not ours to
#     fix; likely racecheck not modelling the mbarrier synchronisation of cuBLAS's warp-specialized
#     Hopper GEMMs) and ftp's / the runner's kernels (a hazard there is a finding). Leaving cuBLAS's
#     kernels out (--kernel-name-exclude kns=nvjet) made compute-sanitizer 2025.3.1 itself fail at the
#     first GEMM on an H200 ("Internal Sanitizer Error").
#   - initcheck: initcheck does not see the stores of cuBLAS's Hopper GEMMs (TMA bulk stores), so it
#     reports every read of a GEMM's output (ftp's swiglu / scatter_add / bias_gelu, the runner's
#     RoPE, attention, argmax and K/V-cache copies: millions of reports, most past --print-limit and
#     of unknown kind). The initcheck runs therefore set FTP_INITCHECK_GEMM_OUTPUTS=1: ftp's GEMM
#     helper, which the runner's GEMMs go through too, zeroes each GEMM's exact output rectangle first
#     (tests/common/initcheck_mode.cu reads the variable and sets ftp::default_gemm_output_init() to
#     ftp::GemmOutputInit::kZeroFirst, include/ftp/gemm.hpp; the library reads no environment
#     variable), and every report that remains is a finding. The one expected exception is the
#     blind-spot probe, gpu.library.cublas_probe's first case: a raw cublasGemmEx whose output its
#     initcheck_probe_copy_kernel reads. Its reports (those past the print limit too) are counted as
#     evidence of the blind spot; one in another kernel of that entry (its second case: the same GEMM
#     through ftp's helper, read by gemm_output_copy_kernel) is a finding.
#   - An entry that failed, crashed, timed out, was not started or was killed is a finding (SIGKILL,
#     exit 9: on the 128 GiB H200 the host's OOM killer); a skipped one is listed apart, not passed.
#
# Time on an H200 (2026-11-30): building both targets about 140 s; memcheck and synccheck 4-126 s per
# test file; racecheck's longest cases the first selection case (216-334 s) and the real model's dense
# logits (186 s); initcheck under 20 s a case but the real model's (47-409 s). Racecheck of the real
# model's FTP prefills (gpu.examples.llama3_model with the GGUF, and the runner) needs 91-159 GiB of
# host memory: a host with more than 128 GiB, and room beside the other entries when -j > 1 (else
# FTP_SANITIZE_EXCLUDE_REGEX=llama3_model). Results: docs/reliability.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
out=${OUT:-$PWD/sanitize-out}
all_tools="memcheck racecheck initcheck synccheck"
model=${FTP_MODEL_PATH:-$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}

tool_options() {  # compute-sanitizer's options for tool $1
  local common="--print-limit 2000 --check-exit-code no"
  case "$1" in
    memcheck) echo "--tool memcheck --leak-check full $common" ;;
    racecheck) echo "--tool racecheck $common" ;;
    initcheck) echo "--tool initcheck --show-backtrace no $common" ;;  # tens of thousands of reports: keep the log small
    synccheck) echo "--tool synccheck $common" ;;
  esac
}

# ---- triage -----------------------------------------------------------------------------------
# Kernel names: cuBLAS's own (nvjet*, cutlass, xmma, gemm/gemv) vs everything else (ftp's, the
# runner's, the tests').
cublas_re='nvjet|cutlass|xmma|gemm|gemv|cublas|Kernel2'
expected_api_re='cudaErrorMemoryAllocation|cudaErrorStreamCaptureUnsupported|cudaErrorStreamCaptureInvalidated'
probe_entry_re='(^|\.)cublas_probe$'  # the entry that holds the blind-spot probe
probe_kernel_re='initcheck_probe_copy_kernel'
count() { grep -cE "$1" "$2" 2> /dev/null || true; }

# One line per hazard report of a racecheck log: "<hazard count>\t<first line> <second line>".
hazard_blocks() {
  [ -f "$1" ] || return 0
  awk '/Race reported|hazard detected|Potential (RAW|WAR|WAW)/ {
         n = 1; if (match($0, /\[[0-9]+ hazards?\]/)) n = substr($0, RSTART + 1, RLENGTH - 2) + 0;
         line = $0; getline nxt; if (match(nxt, /\[[0-9]+ hazards?\]/)) n = substr(nxt, RSTART + 1, RLENGTH - 2) + 0;
         print n "\t" line " " nxt }' "$1"
}

# "<run> <passed> <failed> <skipped>" summed over doctest's "test cases:" lines of the files given.
case_counts() {
  cat "$@" 2> /dev/null | awk '/test cases:/ {
      for (i = 2; i <= NF; i++) {
        if ($(i - 1) == "cases:") t += $i
        if ($i ~ /^passed/) p += $(i - 1); if ($i ~ /^failed/) f += $(i - 1); if ($i ~ /^skipped/) s += $(i - 1)
      } } END { printf "%d %d %d %d\n", t, p, f, s }'
}

# Triage of DIR/<tool>/<entry>.{status,log,out}; exit status 0 when nothing unexpected was found.
triage() {
  local dir=$1 unexpected=0 summary="$1/summary.txt" tool st entry key status secs rc log outf
  [ -d "$dir" ] || { echo "triage: no folder $dir" >&2; return 1; }
  : > "$summary" 2> /dev/null || summary=/dev/null  # a read-only DIR: print only
  declare -A flagged=()
  say() { echo "$*" | tee -a "$summary"; }
  show() { sed 's/^/    /' | tee -a "$summary"; }
  flag() { unexpected=1; flagged[$1]=1; }
  say ""
  say "==================== sanitizer summary of $dir ($(date -u +%Y-%m-%dT%H:%MZ)) ===================="
  local tools_seen=()
  for tool in $all_tools; do
    compgen -G "$dir/$tool/*.status" > /dev/null || continue
    tools_seen+=("$tool")
    for st in "$dir/$tool"/*.status; do
      entry=$(basename "$st" .status)
      key=$tool/$entry
      log=$dir/$tool/$entry.log
      outf=$dir/$tool/$entry.out
      status="?" secs="?" rc=-
      read -r status secs rc < "$st"
      say ""
      say "--- $entry / $tool: $status, $secs s$([ "${rc:--}" != - ] && echo ", exit $rc")"
      case "$status" in
        not-started) say "    NOT RUN: the stop time (FTP_SANITIZE_DEADLINE) came first"; flag "$key"; continue ;;
        not-run) say "    NOT RUN: CTest could not start it (is the program built?)"; flag "$key"; continue ;;
        timeout) say "    TIMED OUT after $secs s"; flag "$key" ;;
        skipped) say "    SKIPPED: every case skipped, nothing observed (not counted as passed)" ;;
        passed)
          # The runner passed only if both generations came out.
          if [ "$entry" = runner ] && ! grep -q -- "--- ftp ---" "$outf" 2> /dev/null; then
            say "    the runner did not get to the FTP generation under $tool"; flag "$key"
          fi ;;
        *) say "    the tests did not pass under $tool"; flag "$key" ;;
      esac
      { grep -hE "test cases:|SKIPPED AT RUNTIME" "$outf"; grep -hE "ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY" "$log"; } 2> /dev/null | show
      # compute-sanitizer exits 9 when the program it ran died of SIGKILL. On the H200 (128 GiB of
      # host memory) that was the kernel's OOM killer: racecheck of the real model's FTP prefills
      # needs more host memory than that (`dmesg` names the killed process).
      if [ "$status" != passed ] && [ "$status" != skipped ] &&
         { [ "$rc" = 9 ] || grep -q "process didn't terminate successfully" "$log" 2> /dev/null; }; then
        say "    KILLED (SIGKILL?) after $secs s: the host's OOM killer? (racecheck needed up to 159 GiB of host memory for the real model's FTP prefills)"
        flag "$key"
      fi
      if grep -q "Internal Sanitizer Error" "$log" 2> /dev/null; then
        say "    compute-sanitizer itself failed: $(grep -m1 "Internal Sanitizer Error" "$log")"; flag "$key"
      fi
      local errors api_expected api_other other
      errors=$(grep -oE "ERROR SUMMARY: [0-9]+ errors?$" "$log" 2> /dev/null | tail -1 | grep -oE "[0-9]+")
      if [ -z "$errors" ] && [ "$tool" != racecheck ] && [ "$status" != timeout ]; then
        say "    no ERROR SUMMARY: compute-sanitizer did not finish"; flag "$key"
      fi
      errors=${errors:-0}
      api_expected=$(count "Program hit ($expected_api_re)" "$log")
      api_other=$(( $(count "Program hit cuda" "$log") - api_expected ))
      say "    API errors from deliberate faults: $api_expected"
      grep -ohE "Program hit cuda[A-Za-z]+ \(error [0-9]+\)[^.]*on CUDA API call to [A-Za-z_]+" "$log" 2> /dev/null |
        sort | uniq -c | show
      case "$tool" in
        memcheck)
          # Leak reports: "Leaked N bytes at ..." with the allocation's host backtrace. cuBLAS keeps
          # what a failed cublasCreate allocated (the handle never reaches the caller): expected from
          # the deliberate ALLOC_FAILED test; any other leak is a finding.
          local leaks leaks_cublas bytes_cublas leaks_other bytes_other
          leaks=$(awk '/Leaked [0-9,]+ bytes/ {n++; size[n] = $3; gsub(",", "", size[n])}
                       /cublasCreate/ && n {cublas[n] = 1}
                       END {for (i = 1; i <= n; i++) if (cublas[i]) {cn++; c += size[i]} else {on++; o += size[i]}
                            printf "%d %d %d %d\n", cn, c, on, o}' "$log" 2> /dev/null || echo "0 0 0 0")
          read -r leaks_cublas bytes_cublas leaks_other bytes_other <<< "$leaks"
          other=$(( errors - api_expected - leaks_cublas - leaks_other ))
          say "    leaks inside a failed cublasCreate (cuBLAS's own, from the deliberate cuBLAS-failure test): $leaks_cublas allocations, $bytes_cublas bytes"
          say "    other leaks: $leaks_other allocations, $bytes_other bytes; other errors: $other (API errors not from deliberate faults: $api_other)"
          if [ "$other" -gt 0 ] || [ "$leaks_other" -gt 0 ]; then flag "$key"; fi
          grep -hE "^========= (Invalid|Misaligned|Out-of-range|Address|Malloc|Cuda API|Program hit)" "$log" 2> /dev/null |
            grep -vE "$expected_api_re" | sort | uniq -c | sort -rn | head -20 | sed 's/^/  /' | show
          ;;
        racecheck)
          local blocks in_cublas in_ours
          blocks=$(hazard_blocks "$log")
          in_cublas=$(printf '%s\n' "$blocks" | grep -E "$cublas_re" | awk -F'\t' '{s += $1} END {print s + 0}')
          in_ours=$(printf '%s\n' "$blocks" | grep . | grep -vE "$cublas_re" | awk -F'\t' '{s += $1} END {print s + 0}')
          say "    hazards in cuBLAS kernels ($cublas_re): $in_cublas"
          printf '%s\n' "$blocks" | grep -E "$cublas_re" | grep -oE "(nvjet|cutlass|xmma)[A-Za-z0-9_:]*" | sort | uniq -c |
            sort -rn | head -10 | sed 's/^/  /' | show
          say "    hazards in ftp / runner / test kernels: $in_ours"
          printf '%s\n' "$blocks" | grep . | grep -vE "$cublas_re" | cut -f2 | cut -c1-220 | sort | uniq -c | sort -rn |
            head -20 | sed 's/^/  /' | show
          if [ "$in_ours" -gt 0 ]; then flag "$key"; fi
          ;;
        initcheck)
          # Kernel reads: "Uninitialized __global__ memory read ..." then "at <kernel>+0x..". API
          # reads: "Host API memory access error ..." then "Uninitialized access to .. on access by
          # cudaMemcpy source".
          local reads in_kernels by_copies in_probe elsewhere overflows shown unshown
          reads=$(grep -A1 -E "Uninitialized __global__ memory read" "$log" 2> /dev/null | grep -E "^=+ +at " |
                  sed -E 's/^=+ +at //; s/\+0x[0-9a-f]+.*//')
          in_kernels=$(count "Uninitialized __global__ memory read" "$log")
          by_copies=$(count "Uninitialized access to .* on access by cudaMemcpy" "$log")
          in_probe=$(printf '%s\n' "$reads" | grep -cE "$probe_kernel_re" || true)
          elsewhere=$(( in_kernels - in_probe ))
          overflows=$(count "Error buffer overflow has been detected" "$log")
          shown=$(( in_kernels + $(count "Host API memory access error" "$log") + overflows ))
          unshown=$(( errors - api_expected - shown ))
          [ "$unshown" -lt 0 ] && unshown=0
          say "    uninitialized reads shown: $in_kernels in kernels ($in_probe in the blind-spot probe's copy kernel), $by_copies by cudaMemcpy sources"
          if [ "$overflows" -gt 0 ]; then
            say "    the device-side report buffer overflowed $overflows times: $(grep -oE "[0-9]+ errors were skipped" "$log" | tail -1)"
          fi
          printf '%s\n' "$reads" | grep . | cut -c1-160 | sort | uniq -c | sort -rn | head -12 | sed 's/^/  /' | show
          if [[ "$entry" =~ $probe_entry_re ]]; then
            # The raw GEMM's output read by the probe's copy kernel: what was dropped or not printed
            # is counted as the probe's too.
            local more=""
            if [ "$overflows" -gt 0 ] || [ "$unshown" -gt 0 ]; then more=", more dropped or not printed"; fi
            say "    blind-spot probe (a raw cuBLAS GEMM's output, fully written, read by its copy kernel): $in_probe reports shown$more"
            [ "$in_probe" -gt 0 ] || say "      (none: initcheck now sees cuBLAS's stores; FTP_INITCHECK_GEMM_OUTPUTS is no longer needed)"
            if [ "$elsewhere" -gt 0 ] || [ "$by_copies" -gt 0 ]; then
              say "    FINDING: $elsewhere reads in other kernels, $by_copies by cudaMemcpy"; flag "$key"
            fi
          elif [ "$in_kernels" -gt 0 ] || [ "$by_copies" -gt 0 ] || [ "$overflows" -gt 0 ] || [ "$unshown" -gt 0 ]; then
            say "    FINDING: uninitialized reads with FTP_INITCHECK_GEMM_OUTPUTS=1 ($in_kernels in kernels, $by_copies by cudaMemcpy, $unshown more not printed)"
            flag "$key"
          fi
          ;;
        synccheck)
          other=$(( errors - api_expected ))
          say "    other errors: $other"
          if [ "$other" -gt 0 ]; then flag "$key"; fi
          ;;
      esac
    done
  done
  [ ${#tools_seen[@]} -gt 0 ] || { say "no <tool>/<entry>.status files in $dir"; return 1; }
  say ""
  say "--- totals per tool (test cases summed over doctest's summary lines; errors as each ERROR SUMMARY counts them)"
  local n e errs redo flagged_n c_run c_pass c_fail c_skip
  local -A by
  for tool in "${tools_seen[@]}"; do
    by=() n=0 errs=0 redo=() flagged_n=0
    for st in "$dir/$tool"/*.status; do
      entry=$(basename "$st" .status)
      read -r status _ < "$st"
      n=$((n + 1)); by[$status]=$(( ${by[$status]:-0} + 1 ))
      [ -n "${flagged[$tool/$entry]:-}" ] && flagged_n=$((flagged_n + 1))
      e=$(grep -oE "ERROR SUMMARY: [0-9]+" "$dir/$tool/$entry.log" 2> /dev/null | tail -1 | grep -oE "[0-9]+")
      errs=$((errs + ${e:-0}))
      case "$status" in timeout | not-started | not-run) [ "$entry" != runner ] && redo+=("${entry//./\\.}") ;; esac
    done
    read -r c_run c_pass c_fail c_skip <<< "$(case_counts "$dir/$tool"/*.out)"
    say "    $tool: $n entries: ${by[passed]:-0} passed, ${by[skipped]:-0} skipped (nothing observed), $((n - ${by[passed]:-0} - ${by[skipped]:-0})) failed, timed out or not run; test cases: $c_run run, $c_pass passed, $c_fail failed, $c_skip skipped; ERROR SUMMARY total $errs; entries with something unexpected: $flagged_n"
    if [ ${#redo[@]} -gt 0 ]; then
      say "      to finish them: FTP_SANITIZE_TOOLS=$tool FTP_SANITIZE_REGEX='^($(IFS='|'; echo "${redo[*]}"))\$' (same OUT)"
    fi
  done
  say ""
  if [ "$unexpected" = 0 ]; then say "sanitize: nothing unexpected (summary in $summary)"; else say "sanitize: FINDINGS above (logs in $dir)"; fi
  return "$unexpected"
}

case "${1:-}" in
  --triage) triage "${2:-$out}"; exit ;;
  "") ;;
  *) echo "usage: [FTP_BUILD_DIR=DIR] bash scripts/sanitize.sh | bash scripts/sanitize.sh --triage [DIR]" >&2; exit 2 ;;
esac

# ---- checks -----------------------------------------------------------------------------------
tools=${FTP_SANITIZE_TOOLS:-$all_tools}
for tool in $tools; do [[ " $all_tools " == *" $tool "* ]] || { echo "unknown tool '$tool' (FTP_SANITIZE_TOOLS)" >&2; exit 2; }; done
jobs=${FTP_SANITIZE_JOBS:-1}
timeout_s=${FTP_SANITIZE_TIMEOUT:-}
started_at=$(date +%s)
stop_time=()
if [ -n "${FTP_SANITIZE_DEADLINE:-}" ]; then
  # CTest reads a bare local time of day (one already past means tomorrow); "+0000"-style zones are
  # not understood the same way by CTest 3.25.
  stop_time=(--stop-time "$(date -d "@$((started_at + FTP_SANITIZE_DEADLINE))" +%H:%M:%S)")
fi
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2> /dev/null | tee "$out/gpu.txt"

# ---- build ------------------------------------------------------------------------------------
if [ -n "${FTP_BUILD_DIR:-}" ]; then
  build=$FTP_BUILD_DIR
  echo "== using the tree in $build as it is (FTP_BUILD_DIR)"
else
  build="build-gpu"
  echo "== building ftp_cuda_tests ftp_llama3 in $build (scripts/gpu_suite.sh build, logs in $out/build)"
  FTP_GPU_WORK=$out/build FTP_GPU_BUILD_DIR=$build FTP_GPU_TARGETS="ftp_cuda_tests ftp_llama3" \
    bash scripts/gpu_suite.sh build || exit 1
fi
[ -f "$build/DartConfiguration.tcl" ] ||
  { echo "$build has no DartConfiguration.tcl: configure it with ftp's CMakeLists.txt (include(CTest))" >&2; exit 1; }
# compute-sanitizer: the one CMake found for the tree (MEMORYCHECK_COMMAND), else the one on PATH.
sanitizer=$(sed -n 's/^MemoryCheckCommand: //p' "$build/DartConfiguration.tcl")
[ -x "$sanitizer" ] || sanitizer=$(PATH=$PATH:/usr/local/cuda/bin command -v compute-sanitizer)
[ -n "$sanitizer" ] || { echo "compute-sanitizer not found (the tree's MEMORYCHECK_COMMAND, PATH)" >&2; exit 1; }
echo "compute-sanitizer: $sanitizer ($("$sanitizer" --version 2> /dev/null | grep -i version | head -1))"
tests=$build/tests/ftp_cuda_tests
runner=$build/examples/ftp_llama3
[ -x "$tests" ] || { echo "no $tests: build ftp_cuda_tests in $build" >&2; exit 1; }

# ---- which entries ----------------------------------------------------------------------------
filters=(-L gpu)
[ -n "${FTP_SANITIZE_REGEX:-}" ] && filters+=(-R "$FTP_SANITIZE_REGEX")
[ -n "${FTP_SANITIZE_EXCLUDE_REGEX:-}" ] && filters+=(-E "$FTP_SANITIZE_EXCLUDE_REGEX")
[ -n "${FTP_SANITIZE_EXCLUDE_LABEL:-}" ] && filters+=(-LE "$FTP_SANITIZE_EXCLUDE_LABEL")
# "<test number> <name>" of each selected entry: the number names its MemoryChecker.<n>.log.
selected=$(ctest --test-dir "$build" -N "${filters[@]}" | sed -nE 's/^ *Test +#([0-9]+): (.+)$/\1 \2/p')
[ -n "$selected" ] || { echo "no CTest entry in $build matches ${filters[*]}" >&2; exit 1; }
echo "== $(wc -l <<< "$selected") entries: $(cut -d' ' -f2 <<< "$selected" | tr '\n' ' ')"
runner_mode=${FTP_SANITIZE_RUNNER:-auto}
if [ "$runner_mode" = auto ]; then
  runner_mode=0
  [ -f "$model" ] && [ -z "${FTP_SANITIZE_REGEX:-}${FTP_SANITIZE_EXCLUDE_REGEX:-}${FTP_SANITIZE_EXCLUDE_LABEL:-}" ] && runner_mode=1
  [ "$runner_mode" = 1 ] || echo "== runner: not run (no GGUF at $model, or a filter is set; FTP_SANITIZE_RUNNER=1 runs it)"
fi

# The sanitizer must be able to run at all (some container runtimes refuse the device): the first
# test case of test_cublas_handle.cu (else of the whole suite) under memcheck, with this script's options.
probe_case=$("$tests" -ltc -sf='*/test_cublas_handle.*' 2> /dev/null | grep -vE '^\[doctest\]|^=+$|^$' | head -1)
[ -n "$probe_case" ] || probe_case=$("$tests" -ltc 2> /dev/null | grep -vE '^\[doctest\]|^=+$|^$' | head -1)
# shellcheck disable=SC2046  # tool_options is a list of words
if ! FTP_REQUIRE_GPU=1 "$sanitizer" $(tool_options memcheck) "$tests" -tc="$probe_case" > "$out/probe.log" 2>&1; then
  echo "compute-sanitizer cannot run '$probe_case' here (see $out/probe.log):" >&2
  tail -5 "$out/probe.log" >&2
  exit 1
fi

# ---- runs -------------------------------------------------------------------------------------
# Files the result of the ctest run just made (its output in $out/<tool>/ctest.log) for each
# selected entry as $out/<tool>/<entry>.{status,log,out}.
collect() {
  local tool=$1 dir=$out/$1 tmp=$build/Testing/Temporary analysis="" f n name line rest status secs
  for f in "$tmp"/LastDynamicAnalysis_*.log; do [ -f "$f" ] && analysis=$f; done  # run_tool left one
  while read -r n name; do
    rm -f "$dir/$name".{status,log,out}
    # "3/12 MemCheck #7: gpu.library.selection ......   Passed  412.08 sec" ("***Failed", "***Timeout",
    # "***Skipped", "***Exception: ...", "***Not Run"). An entry that the stop time kept from
    # starting has no such line.
    line=$(grep -E "MemCheck +#$n: " "$dir/ctest.log" | tail -1)
    if [ -z "$line" ]; then echo "not-started 0 -" > "$dir/$name.status"; continue; fi
    rest=$(sed -E 's/^[ .]*//; s/^\*\*\*//' <<< "${line#*": $name "}")
    secs=$(grep -oE "[0-9.]+ sec$" <<< "$rest" | cut -d' ' -f1)
    case "$rest" in
      Passed*) status=passed ;; Skipped*) status=skipped ;; Timeout*) status=timeout ;;
      Exception*) status=crashed ;; "Not Run"*) status=not-run ;; *) status=failed ;;
    esac
    echo "$status ${secs:-?} -" > "$dir/$name.status"
    if [ -f "$tmp/MemoryChecker.$n.log" ]; then cp "$tmp/MemoryChecker.$n.log" "$dir/$name.log"; fi
    [ -n "$analysis" ] && awk -v name="$name" '
        !inside && $0 ~ /^[0-9]+\/[0-9]+ Test: / && substr($0, index($0, "Test: ") + 6) == name { found = 1; next }
        found && !inside && $0 == "Output:" { getline; inside = 1; next }
        inside && $0 == "<end of output>" { exit }
        inside { print }' "$analysis" > "$dir/$name.out"
  done <<< "$selected"
}

run_tool() {
  local tool=$1 dir=$out/$1 mark=0 args
  mkdir -p "$dir"
  [ "$tool" = initcheck ] && mark=1  # see the triage notes at the top
  # ctest leaves earlier logs in place: remove them, so that each one filed is this run's.
  rm -f "$build"/Testing/Temporary/MemoryChecker.*.log "$build"/Testing/Temporary/LastDynamicAnalysis_*.log
  args=(--test-dir "$build" -T memcheck "${filters[@]}" -j "$jobs" "${stop_time[@]}"
        --overwrite "MemoryCheckCommand=$sanitizer" --overwrite MemoryCheckType=CudaSanitizer
        --overwrite "MemoryCheckCommandOptions=$(tool_options "$tool")")
  [ -n "$timeout_s" ] && args+=(--timeout "$timeout_s")
  echo "== $tool: FTP_REQUIRE_GPU=1 FTP_SANITIZE=1 FTP_INITCHECK_GEMM_OUTPUTS=$mark ctest ${args[*]}"
  FTP_REQUIRE_GPU=1 FTP_SANITIZE=1 FTP_INITCHECK_GEMM_OUTPUTS=$mark ctest "${args[@]}" > "$dir/ctest.log" 2>&1
  echo "   ctest exit $?: $(grep -E "tests passed|No tests were found" "$dir/ctest.log" | tail -1)"
  collect "$tool"
}

# ftp_llama3 on the GGUF: the chat-wrapped prompt is about 30 tokens, so -P 4 -N 4 leaves a middle to
# prune; --compare runs the dense prefill, then the FTP one, then decode.
run_runner() {
  local tool=$1 dir=$out/$1 mark=0 budget=${timeout_s:-1800} start rc status
  [ "$tool" = initcheck ] && mark=1
  rm -f "$dir"/runner.{status,log,out}
  if [ ! -f "$model" ] || [ ! -x "$runner" ]; then
    echo "not-run 0 -" > "$dir/runner.status"; echo "== runner.$tool: no GGUF at $model or no $runner"; return
  fi
  local left=$(( ${FTP_SANITIZE_DEADLINE:-999999} - ($(date +%s) - started_at) - 15 ))  # before the deadline
  [ "$left" -lt "$budget" ] && budget=$left
  if [ "$budget" -lt 60 ]; then echo "not-started 0 -" > "$dir/runner.status"; return; fi
  echo "== runner.$tool (timeout ${budget}s)"
  start=$(date +%s)
  # shellcheck disable=SC2046  # tool_options is a list of words
  FTP_REQUIRE_GPU=1 FTP_SANITIZE=1 FTP_INITCHECK_GEMM_OUTPUTS=$mark \
    timeout --kill-after=20 "$budget" "$sanitizer" $(tool_options "$tool") --log-file "$dir/runner.log" \
    "$runner" -m "$model" -p "Why is the sky blue? Answer in one sentence." -n 4 --no-warmup --compare -P 4 -N 4 \
    > "$dir/runner.out" 2>&1
  rc=$?
  case "$rc" in 0) status=passed ;; 124 | 137) status=timeout ;; *) status=failed ;; esac
  echo "$status $(( $(date +%s) - start )) $rc" > "$dir/runner.status"
  echo "   runner.$tool: $status (exit $rc)"
}

for tool in $tools; do
  run_tool "$tool"
  [ "$runner_mode" = 1 ] && run_runner "$tool"
done
triage "$out"
