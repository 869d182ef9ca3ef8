#!/usr/bin/env bash
# compute-sanitizer over ftp's GPU code, on a CUDA machine:  bash scripts/sanitize.sh
#
# Builds ftp_cuda_tests and ftp_llama3 in build-gpu with scripts/gpu_suite.sh's build step (sm_90
# and sm_90a; an existing build-gpu is reused and only rebuilt where sources changed), then runs
# each tool
#   memcheck --leak-check full | racecheck | initcheck | synccheck
# over
#   suite    the whole GPU test suite: FTP_REQUIRE_GPU=1 FTP_SANITIZE=1 ./build-gpu/tests/ftp_cuda_tests
#            (FTP_SANITIZE=1 divides the largest test sizes by 8: ftp_test::scaled in tests/common/test_util.cuh);
#   prefill  one runner prefill on synthetic weights. ftp_llama3 has no weights-free mode (it needs a
#            GGUF for the tokenizer), so this is the GPU test case "llama3 model: FTP prunes tokens in
#            every pruned layer and decode stays finite", subcase "synthetic": DeviceModel with random
#            weights (3 layers, C=256, I=512, 8/2 heads, d=64), 300 tokens, dense then FTP prefill
#            and one decode step;
#   runner   ftp_llama3 itself on a short prompt, only when a GGUF model is present (FTP_MODEL_PATH
#            or .cache/models/SmolLM2-135M-Instruct.Q4_1.gguf).
# Every run is bounded by `timeout` and logs to $OUT/<run>.<tool>.log (OUT defaults to
# ./sanitize-out). Printed last: every run's exit status and ERROR / LEAK / RACECHECK SUMMARY and
# hazard lines, then the triage below. Exit status 0 only when nothing unexpected was found.
#
# Triage of what earlier runs reported (the summary separates these from real findings):
#   - API errors from tests that inject faults on purpose ("Program hit cudaErrorMemoryAllocation"
#     from the allocation-failure test; cudaErrorStreamCaptureUnsupported / ...Invalidated from the
#     capturing-stream tests in tests/library/cuda/test_faults.cu) are counted apart from every other error,
#     and so are the two device allocations (132 KiB) that cuBLAS keeps when the deliberate
#     cuBLAS-failure test makes cublasCreate fail (the handle never reaches the caller to free).
#   - racecheck: hazards are split into cuBLAS's own kernels (nvjet*, cutlass, *gemm*: not ours to
#     fix; likely racecheck not modelling the mbarrier synchronisation of cuBLAS's warp-specialized
#     Hopper GEMMs) and ftp's / the runner's kernels (a hazard there is a finding).
#   - initcheck: initcheck does not see the stores of cuBLAS's Hopper GEMMs (TMA bulk stores), so it
#     reports every read of a GEMM's output (ftp's swiglu / scatter_add / bias_gelu, the runner's
#     RoPE, attention, argmax and K/V-cache copies: millions of reports, most past --print-limit and
#     of unknown kind). The initcheck runs therefore set FTP_INITCHECK_GEMM_OUTPUTS=1: ftp's GEMM
#     helper, which the runner's GEMMs go through too, zeroes each GEMM's exact output rectangle first
#     (tests/common/initcheck_mode.cu reads the variable and sets ftp::default_gemm_output_init() to
#     ftp::GemmOutputInit::kZeroFirst, include/ftp/gemm.hpp; the library reads no environment variable),
#     and every report that remains is a finding. The one expected exception is the blind-spot probe,
#     tests/library/cuda/test_cublas_probe.cu's first case: a raw cublasGemmEx whose output its own
#     initcheck_probe_copy_kernel reads. Its reports are counted as evidence of the blind spot; its
#     second case, the same GEMM through ftp's helper, must give none.
#
# Environment: FTP_SANITIZE_TIMEOUT  seconds per run (default 1800)
#              FTP_SANITIZE_TOOLS    subset of "memcheck racecheck initcheck synccheck"
#              FTP_SANITIZE_TESTS    extra doctest arguments for the suite run, split at spaces and
#                                    not globbed, e.g. FTP_SANITIZE_TESTS='-tc=*fault*,CublasGeluMlp*'
#              FTP_SANITIZE_RUNS     subset of "suite prefill runner"
#              FTP_SANITIZE_JOBS     runs at a time (default 1). Above 1 the suite is split by test
#                                    source file (FTP_SANITIZE_SPLIT=1) and the parts run side by side;
#                                    the cuBLAS-failure test, which takes all free device memory, then
#                                    runs alone, first
#              FTP_SANITIZE_SPLIT_CASES  tools whose suite runs are split further, one run per test case
#                                    (doctest --first/--last within the file), e.g. "racecheck initcheck"
#              FTP_SANITIZE_ONLY_UNFINISHED=1  run only what an earlier call left timed out or not run
#                                    (same OUT), then triage everything in OUT
#              FTP_SANITIZE_SLOW_FIRST  runs whose name contains one of these words start first
#                                    (default: the cases that took longest on an H200)
#              FTP_SANITIZE_DEADLINE seconds after the start by which every run must have ended (runs
#                                    get shorter timeouts; those that cannot start are reported NOT RUN)
#              FTP_SANITIZE_ALONE_TIMEOUT  seconds for each run that must be alone (default: as others),
#                                    so that a slow one cannot use up a call's time before the others
#              FTP_SANITIZE_BUILD_DIR  where the programs are built and found (default build-gpu)
#              FTP_SANITIZE_NO_BUILD=1  use the programs already there (e.g. built on another machine)
#              FTP_SANITIZE_HEAVY    runs whose name contains one of these words run one after another
#                                    in a single slot (default: racecheck of model cases 3 and 5 and of
#                                    the runner, which need 91-159 GiB of host memory each)
#              FTP_SANITIZE_ONLY     only runs whose name contains one of these words are queued, e.g.
#                                    "llama3_model~3.racecheck llama3_model~5.racecheck runner."
#              FTP_SANITIZE_SKIP     runs whose name contains one of these words are not queued, e.g.
#                                    "llama3_model~4" in a call where the model is not on disk yet (a
#                                    later FTP_SANITIZE_ONLY_UNFINISHED=1 call then runs them)
# `bash scripts/sanitize.sh --triage-only` re-reads the logs already in $OUT (no build, no runs).
#
# Time on an H200 (2026-11-30, 16 jobs): building both targets from scratch about 140 s. Under
# memcheck and synccheck each test file takes 4-126 s. Under racecheck most test cases take 5-130 s;
# the longest are the first selection case (216-334 s), and the real model's dense logits (186 s).
# Racecheck of the real model's FTP prefills (model cases 3 and 5, the runner) needs 91-159 GiB of
# host memory each, so cases 3 and 5 need a host with more than 128 GiB (they took 89-112 s on one
# with 256 GiB). Under initcheck with FTP_INITCHECK_GEMM_OUTPUTS=1 every case but the real model's
# takes under 20 s; the real model's take 47-409 s. The whole sweep (150 runs, 20 at a time, on two
# H200s with 256 GiB of host memory) took 859 s of wall time in two calls, the second with
# FTP_SANITIZE_ONLY_UNFINISHED=1. Results: docs/reliability.md.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
out=${OUT:-$PWD/sanitize-out}
mkdir -p "$out"
timeout_s=${FTP_SANITIZE_TIMEOUT:-1800}
tools=${FTP_SANITIZE_TOOLS:-"memcheck racecheck initcheck synccheck"}
runs=${FTP_SANITIZE_RUNS:-"suite prefill runner"}
jobs_max=${FTP_SANITIZE_JOBS:-1}
split=${FTP_SANITIZE_SPLIT:-$([ "$jobs_max" -gt 1 ] && echo 1 || echo 0)}
deadline_s=${FTP_SANITIZE_DEADLINE:-0}
split_cases=${FTP_SANITIZE_SPLIT_CASES:-}
only_unfinished=${FTP_SANITIZE_ONLY_UNFINISHED:-0}
triage_only=0
[ "${1:-}" = --triage-only ] && triage_only=1
declare -A flagged

if [ "$triage_only" = 0 ]; then
# ---- tools ------------------------------------------------------------------------------------
if ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
sanitizer=$(command -v compute-sanitizer || true)
if [ -z "$sanitizer" ]; then
  for candidate in /usr/local/cuda/bin/compute-sanitizer /usr/local/cuda/compute-sanitizer/compute-sanitizer \
                   $(find /opt/nvidia /usr/local -maxdepth 5 -name compute-sanitizer -type f -perm -u+x 2> /dev/null); do
    if [ -x "$candidate" ]; then sanitizer=$candidate; break; fi
  done
fi
[ -n "$sanitizer" ] || { echo "compute-sanitizer not found (PATH, /usr/local/cuda/bin, /opt/nvidia)" >&2; exit 1; }
echo "compute-sanitizer: $sanitizer ($("$sanitizer" --version 2> /dev/null | grep -i version | head -1))"
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2> /dev/null | tee "$out/gpu.txt"

# ---- build ------------------------------------------------------------------------------------
bindir=${FTP_SANITIZE_BUILD_DIR:-build-gpu}
if [ "${FTP_SANITIZE_NO_BUILD:-0}" = 1 ]; then
  echo "== using the programs already in $bindir (FTP_SANITIZE_NO_BUILD=1)"
else
  echo "== building ftp_cuda_tests ftp_llama3 in $bindir (scripts/gpu_suite.sh build)"
  FTP_GPU_BUILD_DIR=$bindir FTP_GPU_TARGETS="ftp_cuda_tests ftp_llama3" bash scripts/gpu_suite.sh build \
    > "$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
fi
tests=./$bindir/tests/ftp_cuda_tests
runner=./$bindir/examples/ftp_llama3

# The sanitizer must be able to run at all (some container runtimes refuse the device).
if ! "$sanitizer" --tool memcheck "$tests" -tc="CumulativeEta with eta = 1 keeps everything and skips scoring" \
    > "$out/probe.log" 2>&1; then
  echo "compute-sanitizer cannot run here (see $out/probe.log):" >&2
  tail -5 "$out/probe.log" >&2
  exit 1
fi

# racecheck checks cuBLAS's kernels too: leaving them out (--kernel-name-exclude kns=nvjet) made
# compute-sanitizer 2025.3.1 itself fail at the first GEMM on an H200 ("Internal Sanitizer Error: The
# Sanitizer failed to handle a hardware exception"). The hazards it reports inside nvjet_sm90_*
# kernels, which order shared memory with mbarriers and TMA, are counted apart by the triage below.
model=${FTP_MODEL_PATH:-$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
tool_args() {
  case "$1" in
    memcheck) echo "--tool memcheck --leak-check full" ;;
    racecheck) echo "--tool racecheck" ;;
    initcheck) echo "--tool initcheck --show-backtrace no" ;;  # tens of thousands of reports: keep the log small
    synccheck) echo "--tool synccheck" ;;
  esac
}

# ---- runs -------------------------------------------------------------------------------------
# A run is "<what>.<tool>". With FTP_SANITIZE_SPLIT=1 the suite is split by test source file
# (suite-<file>: doctest -sf) so that the parts can run side by side. The deliberate cuBLAS-failure
# test holds every free byte of device memory while it runs, so it is then its own run
# (cublasfault), started alone after all the others.
cublas_fault_tc='a failing cuBLAS call surfaces as ftp::Error*'
set_cmd() {  # sets cmd for the run named $1
  read -r -a extra <<< "${FTP_SANITIZE_TESTS:-}"  # words, no globbing
  case "$1" in
    suite) cmd=("$tests" "${extra[@]}") ;;
    suite-*)  # suite-<file> or suite-<file>~<k>: the k-th test case of that file (doctest's order)
      local part=${1#suite-}
      cmd=("$tests" "-sf=*test_${part%\~*}.cu" "${extra[@]}")
      if [ "${part%\~*}" = faults ]; then cmd+=("-tce=$cublas_fault_tc"); fi
      if [ "$part" != "${part%\~*}" ]; then cmd+=("--first=${part#*\~}" "--last=${part#*\~}"); fi ;;
    cublasfault) cmd=("$tests" "-tc=$cublas_fault_tc") ;;
    prefill) cmd=("$tests" "-tc=llama3 model: FTP prunes tokens in every pruned layer and decode stays finite"
                  "-sc=synthetic") ;;
    # The chat-wrapped prompt is about 30 tokens: -P 4 -N 4 leaves a middle to prune; --compare runs
    # the dense prefill, then the FTP one, then decode.
    runner) cmd=("$runner" -m "$model" -p "Why is the sky blue? Answer in one sentence." -n 4 --no-warmup
                 --compare -P 4 -N 4) ;;
    *) echo "unknown run '$1'" >&2; return 1 ;;
  esac
}

started_at=$(date +%s)
# Runs one "<what>.<tool>" under its timeout (cut short by FTP_SANITIZE_DEADLINE, seconds after the
# start by which every run must have ended) and leaves "<exit status> <seconds>" in <key>.status.
run_one() {
  local key=$1 run=${1%%.*} tool=${1#*.} budget=${2:-$timeout_s} cmd=()
  if [ "$deadline_s" -gt 0 ]; then
    local left=$(( deadline_s - ($(date +%s) - started_at) - 15 ))
    [ "$left" -lt "$budget" ] && budget=$left
    if [ "$budget" -lt 30 ]; then
      echo "not-run 0" > "$out/$key.status"; echo "== $key: not started, the deadline is near"; return
    fi
  fi
  set_cmd "$run" || { echo "error 0" > "$out/$key.status"; return; }
  echo "== $key (timeout ${budget}s): ${cmd[*]}"
  local start
  start=$(date +%s)
  # shellcheck disable=SC2046  # tool_args is a list of words
  local mark=0; [ "$tool" = initcheck ] && mark=1  # see the triage notes at the top
  FTP_REQUIRE_GPU=1 FTP_SANITIZE=1 FTP_INITCHECK_GEMM_OUTPUTS=$mark \
    timeout --kill-after=20 "$budget" "$sanitizer" $(tool_args "$tool") \
    --print-limit 2000 "${cmd[@]}" > "$out/$key.log" 2>&1
  local rc=$?
  echo "$rc $(( $(date +%s) - start ))" > "$out/$key.status"
  echo "   $key: exit $rc after $(( $(date +%s) - start )) s"
}

queue=()
last=()
for tool in $tools; do
  for run in $runs; do
    case "$run" in
      suite)
        if [ "$split" = 1 ]; then
          for f in tests/library/cuda/test_*.cu tests/examples/cuda/test_*.cu; do
            name=$(basename "$f" .cu); name=${name#test_}
            if [[ " $split_cases " == *" $tool "* ]]; then
              # The binary's own count of the file's cases (the cuBLAS-failure case runs alone).
              filter=(); [ "$name" = faults ] && filter=("-tce=$cublas_fault_tc")
              n=$("$tests" --no-skip "-sf=*test_$name.cu" "${filter[@]}" --count 2> /dev/null |
                  grep -oE "passing the current filters: [0-9]+" | grep -oE "[0-9]+$")
              [ -n "$n" ] || { echo "cannot count the test cases of $f" >&2; exit 1; }
              for ((k = 1; k <= n; ++k)); do queue+=("suite-$name~$k.$tool"); done
            else
              queue+=("suite-$name.$tool")
            fi
          done
          last+=("cublasfault.$tool")
        else
          queue+=("suite.$tool")
        fi ;;
      runner)
        if [ -f "$model" ]; then queue+=("runner.$tool"); else echo "== runner.$tool: skipped (no model at $model)"; fi ;;
      *) queue+=("$run.$tool") ;;
    esac
  done
done
unfinished() {  # the run named $1 has not run yet, timed out, or was not started
  case "$(cut -d' ' -f1 "$out/$1.status" 2> /dev/null)" in "" | 124 | 137 | not-run | error) return 0 ;; esac
  return 1
}
mentions() {  # the run named $2 contains one of the words in $1
  local word; for word in $1; do [[ "$2" == *"$word"* ]] && return 0; done; return 1
}
mentions_none() { ! mentions "$@"; }
filter_runs() {  # keeps, in queue and last, the runs for which the command "$@" <run> succeeds
  local key kept=()
  for key in "${queue[@]}"; do "$@" "$key" && kept+=("$key"); done; queue=("${kept[@]}")
  kept=(); for key in "${last[@]}"; do "$@" "$key" && kept+=("$key"); done; last=("${kept[@]}")
}
[ "$only_unfinished" = 1 ] && filter_runs unfinished  # again only what an earlier call left undone
[ -n "${FTP_SANITIZE_ONLY:-}" ] && filter_runs mentions "$FTP_SANITIZE_ONLY"
[ -n "${FTP_SANITIZE_SKIP:-}" ] && filter_runs mentions_none "$FTP_SANITIZE_SKIP"
# The longest runs first, so that they do not start near the deadline.
slow_first=${FTP_SANITIZE_SLOW_FIRST:-"llama3_model~5 llama3_model~1 llama3_model~3 selection~1 llama3_kernels~16 llama3_kernels~17 selection~3 ffn_pruner prefill runner"}
ordered=()
for word in $slow_first; do
  for key in "${queue[@]}"; do [[ "$key" == *"$word"* ]] && [[ " ${ordered[*]} " != *" $key "* ]] && ordered+=("$key"); done
done
for key in "${queue[@]}"; do [[ " ${ordered[*]} " != *" $key "* ]] && ordered+=("$key"); done
queue=("${ordered[@]}")
# Runs that need most of the host's memory (racecheck of the real model's FTP prefills: 91-159 GiB
# each) go one after another in one slot, beside the others.
heavy_words=${FTP_SANITIZE_HEAVY:-"llama3_model~3.racecheck llama3_model~5.racecheck runner.racecheck"}
heavy=() light=()
for key in "${queue[@]}"; do
  if mentions "$heavy_words" "$key"; then heavy+=("$key"); else light+=("$key"); fi
done
queue=("${light[@]}")
echo "== ${#last[@]} runs alone, then ${#queue[@]} runs $jobs_max at a time, of them one slot for ${#heavy[@]} heavy runs in turn"
# The runs that must be alone (they take all free device memory) go first: they are short.
for key in "${last[@]}"; do run_one "$key" "${FTP_SANITIZE_ALONE_TIMEOUT:-$timeout_s}"; done
if [ ${#heavy[@]} -gt 0 ]; then
  (for key in "${heavy[@]}"; do run_one "$key"; done) &
fi
for key in "${queue[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
  run_one "$key" &
done
wait
fi

# Every run in OUT, this call's and earlier ones' (each leaves a .status, also when not started).
ran=()
for st in "$out"/*.*.status; do
  key=$(basename "$st" .status)
  case "$key" in suite*.* | cublasfault.* | prefill.* | runner.*) ran+=("$key") ;; esac
done

# ---- triage -----------------------------------------------------------------------------------
# Kernel names: cuBLAS's own (nvjet*, cutlass, xmma, gemm/gemv) vs everything else (ftp's, the
# runner's, the tests').
cublas_re='nvjet|cutlass|xmma|gemm|gemv|cublas|Kernel2'
expected_api_re='cudaErrorMemoryAllocation|cudaErrorStreamCaptureUnsupported|cudaErrorStreamCaptureInvalidated'
# The run that holds the blind-spot probe (tests/library/cuda/test_cublas_probe.cu, first case; or the whole
# file when initcheck runs it unsplit), and the probe's copy kernel.
probe_run_re='^suite-cublas_probe(~1)?$'
probe_kernel_re='initcheck_probe_copy_kernel'
count() { grep -cE "$1" "$2" 2> /dev/null || true; }

# One line per hazard report of a racecheck log: "<hazard count>\t<first line>".
hazard_blocks() {
  awk '/Race reported|hazard detected|Potential (RAW|WAR|WAW)/ {
         n = 1; if (match($0, /\[[0-9]+ hazards?\]/)) n = substr($0, RSTART + 1, RLENGTH - 2) + 0;
         line = $0; getline nxt; if (match(nxt, /\[[0-9]+ hazards?\]/)) n = substr(nxt, RSTART + 1, RLENGTH - 2) + 0;
         print n "\t" line " " nxt }' "$1"
}

unexpected=0
flag() { unexpected=1; flagged[$1]=1; }
summary="$out/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
say ""
say "==================== sanitizer summary ($(date -u +%Y-%m-%dT%H:%MZ)) ===================="
for key in "${ran[@]}"; do
  run=${key%%.*}
  tool=${key#*.}
  log="$out/$key.log"
  rc="?" secs="?"
  [ -f "$out/$key.status" ] && read -r rc secs < "$out/$key.status"
  if [ "$rc" = not-run ]; then say ""; say "--- $run / $tool: NOT RUN (deadline)"; flag "$key"; continue; fi
  say ""
  say "--- $run / $tool: exit $rc, $secs s, log $log"
  grep -E "ERROR SUMMARY|LEAK SUMMARY|RACECHECK SUMMARY|test cases:|Status:" "$log" | sed 's/^/    /' | tee -a "$summary"
  [ "$rc" = 124 ] || [ "$rc" = 137 ] && { say "    TIMED OUT after $secs s"; flag "$key"; }
  # compute-sanitizer exits 9 when the program it ran died of SIGKILL. On the H200 (128 GiB of host
  # memory) that was the kernel's OOM killer: racecheck of the real model's FTP prefills needs more
  # host memory than that (`dmesg` names the killed process).
  if [ "$rc" = 9 ] && grep -q "process didn't terminate successfully" "$log"; then
    say "    KILLED (SIGKILL) after $secs s: the host's OOM killer? (racecheck needed up to 159 GiB of host memory for the real model's FTP prefills)"
    flag "$key"
  fi
  # Passed: the doctest runs' "Status: SUCCESS"; the runner's exit status 0 and both generations.
  passed=0
  if [ "$run" = runner ]; then
    [ "$rc" = 0 ] && grep -q -- "--- ftp ---" "$log" && passed=1
  else
    grep -q "Status: SUCCESS" "$log" && passed=1
  fi
  if [ "$passed" = 0 ]; then
    say "    the tests did not pass under $tool"; flag "$key"
  fi
  if grep -q "Internal Sanitizer Error" "$log"; then say "    compute-sanitizer itself failed: $(grep -m1 "Internal Sanitizer Error" "$log")"; fi
  errors=$(grep -oE "ERROR SUMMARY: [0-9]+ errors?$" "$log" | tail -1 | grep -oE "[0-9]+")
  if [ -z "$errors" ] && [ "$tool" != racecheck ]; then
    say "    no ERROR SUMMARY: the run did not finish"; flag "$key"; errors=0
  fi
  errors=${errors:-0}
  api_expected=$(count "Program hit ($expected_api_re)" "$log")
  api_other=$(( $(count "Program hit cuda" "$log") - api_expected ))
  say "    API errors from deliberate faults: $api_expected"
  grep -oE "Program hit cuda[A-Za-z]+ \(error [0-9]+\)[^.]*on CUDA API call to [A-Za-z_]+" "$log" | sort | uniq -c |
    sed 's/^/      /' | tee -a "$summary"
  case "$tool" in
    memcheck)
      # Leak reports: "Leaked N bytes at ..." with the allocation's host backtrace. cuBLAS keeps what
      # a failed cublasCreate allocated (the handle never reaches the caller): expected from the
      # deliberate ALLOC_FAILED test; any other leak is a finding.
      leaks=$(awk '/Leaked [0-9,]+ bytes/ {n++; size[n] = $3; gsub(",", "", size[n])} \
                   /cublasCreate/ && n {cublas[n] = 1} \
                   END {for (i = 1; i <= n; i++) if (cublas[i]) {cn++; c += size[i]} else {on++; o += size[i]}
                        printf "%d %d %d %d\n", cn, c, on, o}' "$log")
      read -r leaks_cublas bytes_cublas leaks_other bytes_other <<< "$leaks"
      other=$(( errors - api_expected - leaks_cublas - leaks_other ))
      say "    leaks inside a failed cublasCreate (cuBLAS's own, from the deliberate cuBLAS-failure test): $leaks_cublas allocations, $bytes_cublas bytes"
      say "    other leaks: $leaks_other allocations, $bytes_other bytes; other errors: $other (API errors not from deliberate faults: $api_other)"
      [ "$other" -gt 0 ] || [ "$leaks_other" -gt 0 ] && flag "$key"
      grep -E "^========= (Invalid|Misaligned|Out-of-range|Address|Malloc|Cuda API|Program hit)" "$log" |
        grep -vE "$expected_api_re" | sort | uniq -c | sort -rn | head -20 | sed 's/^/      /' | tee -a "$summary"
      ;;
    racecheck)
      blocks=$(hazard_blocks "$log")
      in_cublas=$(printf '%s\n' "$blocks" | grep -E "$cublas_re" | awk -F'\t' '{s += $1} END {print s + 0}')
      in_ours=$(printf '%s\n' "$blocks" | grep . | grep -vE "$cublas_re" | awk -F'\t' '{s += $1} END {print s + 0}')
      say "    hazards in cuBLAS kernels ($cublas_re): $in_cublas"
      printf '%s\n' "$blocks" | grep -E "$cublas_re" | grep -oE "(nvjet|cutlass|xmma)[A-Za-z0-9_:]*" | sort | uniq -c |
        sort -rn | head -10 | sed 's/^/      /' | tee -a "$summary"
      say "    hazards in ftp / runner / test kernels: $in_ours"
      printf '%s\n' "$blocks" | grep . | grep -vE "$cublas_re" | cut -f2 | cut -c1-220 | sort | uniq -c | sort -rn | head -20 |
        sed 's/^/      /' | tee -a "$summary"
      [ "$in_ours" -gt 0 ] && flag "$key"
      ;;
    initcheck)
      # Kernel reads: "Uninitialized __global__ memory read ..." then "at <kernel>+0x..". API reads:
      # "Host API memory access error ..." then "Uninitialized access to .. on access by cudaMemcpy source".
      reads=$(grep -A1 -E "Uninitialized __global__ memory read" "$log" | grep -E "^=+ +at " |
              sed -E 's/^=+ +at //; s/\+0x[0-9a-f]+.*//')
      in_kernels=$(count "Uninitialized __global__ memory read" "$log")
      by_copies=$(count "Uninitialized access to .* on access by cudaMemcpy" "$log")
      in_probe=$(printf '%s\n' "$reads" | grep -cE "$probe_kernel_re" || true)
      elsewhere=$(( in_kernels - in_probe ))
      overflows=$(count "Error buffer overflow has been detected" "$log")
      shown=$(( in_kernels + $(count "Host API memory access error" "$log") + overflows ))
      unshown=$(( errors - api_expected - shown ))
      [ "$unshown" -lt 0 ] && unshown=0
      is_probe=0; [[ "$run" =~ $probe_run_re ]] && is_probe=1
      say "    uninitialized reads shown: $in_kernels in kernels ($in_probe in the blind-spot probe's copy kernel), $by_copies by cudaMemcpy sources"
      if [ "$overflows" -gt 0 ]; then
        say "    the device-side report buffer overflowed $overflows times: $(grep -oE "[0-9]+ errors were skipped" "$log" | tail -1)"
      fi
      printf '%s\n' "$reads" | grep . | cut -c1-160 | sort | uniq -c | sort -rn | head -12 | sed 's/^/      /' |
        tee -a "$summary"
      if [ "$is_probe" = 1 ]; then
        # Only the raw GEMM and the probe's copy kernel run here: what was dropped or not printed is
        # theirs too.
        say "    blind-spot probe (a raw cuBLAS GEMM's output, which the test checks was fully written, read by"
        say "    its copy kernel): $in_probe reports shown$([ "$overflows" -gt 0 ] || [ "$unshown" -gt 0 ] && echo ", more dropped or not printed")"
        [ "$in_probe" -gt 0 ] || say "      (none: initcheck now sees cuBLAS's stores; FTP_INITCHECK_GEMM_OUTPUTS is no longer needed)"
        if [ "$elsewhere" -gt 0 ] || [ "$by_copies" -gt 0 ]; then
          say "    FINDING: $elsewhere reads in other kernels, $by_copies by cudaMemcpy"; flag "$key"
        fi
      elif [ "$in_kernels" -gt 0 ] || [ "$by_copies" -gt 0 ] || [ "$overflows" -gt 0 ] || [ "$unshown" -gt 0 ]; then
        say "    FINDING: uninitialized reads with FTP_INITCHECK_GEMM_OUTPUTS=1 ($in_kernels in kernels, $by_copies by"
        say "    cudaMemcpy, $unshown more not printed)"
        flag "$key"
      fi
      ;;
    synccheck)
      other=$(( errors - api_expected ))
      say "    other errors: $other"
      [ "$other" -gt 0 ] && flag "$key"
      ;;
  esac
done
say ""
say "--- totals per tool (test cases summed over that tool's runs; errors as each ERROR SUMMARY counts them)"
for tool in $tools; do
  n=0 flagged_n=0 logs=()
  for key in "${ran[@]}"; do
    [ "${key#*.}" = "$tool" ] || continue
    n=$((n + 1)); [ -n "${flagged[$key]:-}" ] && flagged_n=$((flagged_n + 1))
    [ -f "$out/$key.log" ] && logs+=("$out/$key.log")
  done
  [ "$n" = 0 ] && continue
  # A per-case run (suite-<file>~<k>) ran one case: doctest counts the others of its file as passing
  # the filters, so only "Status:" tells that case's result.
  cases=$(for l in "${logs[@]}"; do
            if [[ "$(basename "$l")" == *"~"* ]]; then
              if grep -q "Status: SUCCESS" "$l"; then echo "1 1 0"; else echo "1 0 1"; fi
            else
              grep -E "^\[doctest\] test cases:" "$l" | awk '{print $4, $6, $9}'
            fi
          done | awk '{t += $1; p += $2; f += $3} END {printf "%d cases run: %d passed, %d failed", t, p, f}')
  errs=$(for l in "${logs[@]}"; do grep -oE "ERROR SUMMARY: [0-9]+" "$l" | tail -1 | grep -oE "[0-9]+"; done |
         awk '{e += $1} END {print e + 0}')
  say "    $tool: $n runs, $cases; ERROR SUMMARY total $errs; runs with something unexpected: $flagged_n"
done
say ""
if [ "$unexpected" = 0 ]; then
  say "sanitize: nothing unexpected (summary in $summary)"
else
  say "sanitize: FINDINGS above (logs in $out)"
fi
exit "$unexpected"
