#!/usr/bin/env bash
# Builds and runs the benchmarks on a CUDA machine (one H100 call, about 6 minutes): the FFN
# kept-fraction sweep (bench/ffn.cu), the FTP overhead per layer (bench/overhead.cu), the attention
# kernel (bench/attention_kernel.cu), the PyTorch / HF transformers reference
# (bench/torch_reference.py), then the plots (bench/plot.py). Every step is guarded and bounded in
# time, so one failure does not stop the rest. Writes to ${OUT:-$PWD/bench-out} at most 8 files:
# ffn.json overhead.json attention.json torch_reference.json bench.log and up to 3 PNGs; prints
# the summary tables last.
#
# Usage: bash scripts/bench_suite.sh     (env: OUT, FTP_BENCH_SKIP_TORCH=1, FTP_BENCH_TORCH_ARGS)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${OUT:-$PWD/bench-out}
mkdir -p "$out"
log="$out/bench.log"
: > "$log"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
declare -A status

# run NAME TIMEOUT_S CMD...: output to $tmp/NAME.out and the log; records the exit status
run() {
  local name=$1 limit=$2
  shift 2
  echo "== $name ($(( SECONDS - start )) s): $*" | tee -a "$log"
  timeout --kill-after=10 "$limit" "$@" > "$tmp/$name.out" 2>&1
  local rc=$?
  cat "$tmp/$name.out" >> "$log"
  status[$name]=$rc
  echo "-- $name rc=$rc after $(( SECONDS - start )) s" | tee -a "$log"
  return 0
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,temperature.gpu --format=csv,noheader \
  >> "$log" 2>&1 || echo "nvidia-smi failed" >> "$log"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1

# --- build (each target on its own if the joint build fails)
targets="ftp_bench_ffn ftp_bench_overhead ftp_bench_attention"
bdir=build-gpu
run configure 180 cmake -S . -B $bdir -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90
if [ "${status[configure]}" != 0 ]; then
  # a broken tests/ or examples/ CMakeLists must not stop the benchmarks: a build dir of its own without them
  bdir=build-bench
  run configure_bench 180 cmake -S . -B $bdir -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DFTP_BUILD_TESTS=OFF -DFTP_BUILD_EXAMPLES=OFF
fi
# shellcheck disable=SC2086
run build 300 cmake --build $bdir -j"$(nproc)" --target $targets
if [ "${status[build]}" != 0 ]; then
  for t in $targets; do run "build_$t" 200 cmake --build $bdir -j"$(nproc)" --target "$t"; done
fi

# --- C++/CUDA benchmarks
bin=$bdir/bench
if [ -x $bin/ftp_bench_ffn ]; then run ffn 150 $bin/ftp_bench_ffn --json "$out/ffn.json"; else status[ffn]=missing; fi
if [ -x $bin/ftp_bench_overhead ]; then run overhead 150 $bin/ftp_bench_overhead --json "$out/overhead.json"; else status[overhead]=missing; fi
if [ -x $bin/ftp_bench_attention ]; then run attention 90 $bin/ftp_bench_attention --json "$out/attention.json"; else status[attention]=missing; fi

# --- PyTorch reference (HF transformers + Algorithm 1 in PyTorch)
if [ "${FTP_BENCH_SKIP_TORCH:-0}" != 1 ]; then
  export PYTHONUNBUFFERED=1
  # shellcheck disable=SC2086
  run torch_reference 270 python3 bench/torch_reference.py --json "$out/torch_reference.json" \
    ${FTP_BENCH_TORCH_ARGS:-}
  rm -f "$out/torch_reference.json.tmp"
else
  status[torch_reference]=skipped
fi

# --- plots
run plot 90 python3 bench/plot.py "$out"

# --- summary tables, last
echo
echo "================ SUMMARY ($(( SECONDS - start )) s) ================"
if [ -s "$tmp/ffn.out" ]; then
  echo "--- FFN (bench/ffn.cu): ratio to ideal per kept fraction, and the stages at L=32k f=0.4"
  sed -n '/^FFN gathered\/dense ratio/,$p' "$tmp/ffn.out"
  grep -A8 '^stages of one gathered call' "$tmp/ffn.out"
  grep -E 'FAIL|error' "$tmp/ffn.out" | head -5
  if ! grep -q '^FFN gathered/dense ratio' "$tmp/ffn.out"; then tail -5 "$tmp/ffn.out"; fi
fi
if [ -s "$tmp/overhead.out" ]; then
  echo "--- FTP overhead per layer (bench/overhead.cu)"
  tail -25 "$tmp/overhead.out"
fi
if [ -s "$tmp/attention.out" ]; then
  echo "--- attention kernel (bench/attention_kernel.cu)"
  tail -8 "$tmp/attention.out"
fi
if [ -s "$tmp/torch_reference.out" ]; then
  echo "--- PyTorch reference (bench/torch_reference.py)"
  sed -n '/^== torch_reference summary/,$p' "$tmp/torch_reference.out" | cut -c1-400
  if ! grep -q '^== torch_reference summary' "$tmp/torch_reference.out"; then tail -15 "$tmp/torch_reference.out"; fi
fi
tail -1 "$tmp/plot.out" 2>/dev/null
echo "--- step status"
for k in configure build ffn overhead attention torch_reference plot; do printf '%s=%s ' "$k" "${status[$k]:-n/a}"; done
echo
echo "files in $out:"; ls -1 "$out"
