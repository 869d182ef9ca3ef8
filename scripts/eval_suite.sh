#!/usr/bin/env bash
# Accuracy-side evaluation of FTP on a real model (examples/eval/ftp_eval.cu): builds ftp_eval,
# runs it on the license texts of /usr/share/common-licenses, plots, and prints the summary tables
# last. Needs a CUDA GPU. Output (at most 5 files) in ${OUT:-$PWD/eval-out}:
#   eval.json  tables.txt  needle.png  cumulative.png  kept.png
# Environment: FTP_MODEL_PATH (default: the cached SmolLM2-135M-Instruct), FTP_EVAL_ARGS (extra
# arguments, e.g. --quick), FTP_EVAL_TIMEOUT (seconds, default 280; the program's own budget
# for its sections is 200 s, so this is only a safety net).
# Usage: bash scripts/eval_suite.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
out=${OUT:-$PWD/eval-out}
mkdir -p "$out"
model=${FTP_MODEL_PATH:-$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf}
if [ ! -s "$model" ]; then
  echo "eval_suite: model '$model' not found (scripts/fetch_model.sh fetches the default one)" >&2
  exit 1
fi
build="build-gpu"
mkdir -p "$build"
echo "== build ftp_eval" >&2
if ! cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$build/eval-configure.log" 2>&1; then
  # The full configure needs the tests' dependencies (doctest); the eval needs only the examples.
  echo "eval_suite: configure of $build failed (tail below); retrying in build-eval without tests and benchmarks" >&2
  tail -5 "$build/eval-configure.log" >&2
  build="build-eval"
  mkdir -p "$build"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 -DFTP_BUILD_TESTS=OFF \
    -DFTP_BUILD_BENCH=OFF > "$build/eval-configure.log" 2>&1 || { tail -30 "$build/eval-configure.log" >&2; exit 1; }
fi
cmake --build "$build" -j"$(nproc)" --target ftp_eval > "$build/eval-build.log" 2>&1 ||
  { grep -E "error" "$build/eval-build.log" | head -30 >&2; exit 1; }
echo "== run ftp_eval (progress below, tables at the end)" >&2
rc=0
# shellcheck disable=SC2086  # FTP_EVAL_ARGS is a list of words
timeout "${FTP_EVAL_TIMEOUT:-280}" "./$build/examples/eval/ftp_eval" -m "$model" --json "$out/eval.json" \
  ${FTP_EVAL_ARGS:-} > "$out/tables.txt" || rc=$?
if [ -s "$out/eval.json" ]; then
  python3 bench/plot_eval.py "$out/eval.json" "$out" || echo "eval_suite: plotting failed" >&2
fi
echo
echo "== summary tables ($out/tables.txt)"
cat "$out/tables.txt"
echo "ftp_eval rc=$rc; files in $out:"
ls "$out"
exit "$rc"
