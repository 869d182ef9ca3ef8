#!/usr/bin/env bash
# Long-context task evaluation of FTP (examples/eval/ftp_longeval.cu): builds ftp_longeval in
# build-gpu, checks every prompt with --dry-run, then runs the passkey grid, multi-key needles,
# variable tracking and code completion dense vs FTP (eta 0.95, 0.9) and random selection at eta
# 0.95's kept counts. Needs a CUDA GPU (the dry run does not). Output in ${OUT:-$PWD/longeval-out}:
#   longeval.json  tables.txt  plan.txt
# Environment: FTP_MODEL_PATH (default: the cached Qwen2.5-Coder-1.5B-Instruct Q4_K_M),
# FTP_LONGEVAL_ARGS (extra arguments, e.g. "--tasks passkey --lengths 4k,16k"),
# FTP_LONGEVAL_BUDGET (seconds for the tasks after loading, default 300: the default grid is
# planned for ~3-4 minutes of GPU time on an H100), FTP_LONGEVAL_TIMEOUT (seconds, default 420:
# a safety net over the budget, loading and the tables).
# Usage: bash scripts/longeval_suite.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-$PWD/longeval-out}
mkdir -p "$out"
model=${FTP_MODEL_PATH:-$root/.cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
if [ ! -s "$model" ]; then
  echo "longeval_suite: model '$model' not found (scripts/fetch_model.sh qwen2.5-coder-1.5b fetches it)" >&2
  exit 1
fi
build="build-gpu"
mkdir -p "$build"
echo "== build ftp_longeval" >&2
if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$build/longeval-configure.log" 2>&1; then
  # The full configure needs the tests' dependencies (doctest); the evaluation needs only the examples.
  echo "longeval_suite: configure of $build failed (tail below); retrying in build-eval without tests and benchmarks" >&2
  tail -5 "$build/longeval-configure.log" >&2
  build="build-eval"
  mkdir -p "$build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DFTP_BUILD_TESTS=OFF \
    -DFTP_BUILD_BENCH=OFF > "$build/longeval-configure.log" 2>&1 || { tail -30 "$build/longeval-configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j"$(nproc)" --target ftp_longeval > "$build/longeval-build.log" 2>&1 ||
  { grep -E "error" "$build/longeval-build.log" | head -30 >&2; exit 1; }
bin="./$build/examples/eval/ftp_longeval"
echo "== plan (dry run: every prompt built and checked)" >&2
# shellcheck disable=SC2086  # FTP_LONGEVAL_ARGS is a list of words
"$bin" -m "$model" --dry-run ${FTP_LONGEVAL_ARGS:-} > "$out/plan.txt" 2>&1 || { cat "$out/plan.txt" >&2; exit 1; }
grep -E "^(task|passkey|multikey|variable_tracking|code_completion|estimated|note|dry run)" "$out/plan.txt" >&2 || true
echo "== run ftp_longeval (progress below, tables at the end)" >&2
rc=0
# shellcheck disable=SC2086
timeout "${FTP_LONGEVAL_TIMEOUT:-420}" "$bin" -m "$model" --json "$out/longeval.json" \
  --budget-s "${FTP_LONGEVAL_BUDGET:-300}" ${FTP_LONGEVAL_ARGS:-} > "$out/tables.txt" || rc=$?
echo
echo "== tables ($out/tables.txt)"
cat "$out/tables.txt"
echo "ftp_longeval rc=$rc; files in $out:"
ls "$out"
exit "$rc"
