#!/usr/bin/env bash
# What runs on the lent H100/H200: builds, the whole GPU test suite and the benchmarks, writing logs
# and JSON to $OUT (or ./gpu-out) and printing the summary lines last.
#
# Usage: bash scripts/gpu_suite.sh [STEP...]     (no step: all of them, in this order)
#   build        configure build-gpu (sm_90 + sm_90a) and build the programs below
#   tests        the GPU test suite (FTP_REQUIRE_GPU=1: a missing GPU fails) and the host tests
#   model-tests  only the runner's test cases (after the model was placed in .cache/models)
#   demo         the README demo's runner command (GPL-2 text + question, dense vs FTP)
#   overhead     bench/overhead.cu        attention  bench/attention_kernel.cu
#   e2e          bench/e2e.cu             torch      bench/torch_reference.py (same GPU session)
#   ncu          Nsight Compute over FTP's kernels of one pruned layer at 32k tokens
#   golden       HF transformers' golden logits of the Qwen model in .cache/models (needs the gguf
#                wheel carried in .devcarry/wheels), written to $FTP_GPU_WORK and collected
#   model-ttft   bench/model_ttft.cu and bench/hf_gguf_prefill.py on the Qwen model (same session)
#   demo-qwen    the demo's runner command on the Qwen model
#   summary      bench/summary.py over the JSON of this run, then bench/plot.py
#   collect      copies the JSON, the summary, two plots and a tarball of all logs into $OUT
# Logs and JSON go to $FTP_GPU_WORK (default /tmp/gpu-work), which a later call on the same warm
# machine shares, as it shares the build folder ($FTP_GPU_BUILD_DIR, default build-gpu).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${FTP_GPU_WORK:-/tmp/gpu-work}
mkdir -p "$out"
bin=${FTP_GPU_BUILD_DIR:-build-gpu}
model=.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
# The Qwen model these steps use: FTP_QWEN_MODEL, else the 1.5B if present, else the 0.5B.
qwen=${FTP_QWEN_MODEL:-}
if [ -z "$qwen" ]; then
  for q in .cache/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf .cache/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf; do
    [ -s "$q" ] && { qwen=$q; break; }
  done
fi
steps=("$@")
[ ${#steps[@]} -eq 0 ] && steps=(build tests overhead attention e2e torch demo summary collect)
status=0

step_build() {
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv,noheader | tee "$out/gpu.txt"
  local extra=()
  # Headers the tests need (doctest, nlohmann/json) when the machine lacks them: FTP_EXTRA_INCLUDE
  # names a folder that holds them (carried along).
  if [ -n "${FTP_EXTRA_INCLUDE:-}" ] && [ ! -f /usr/include/doctest/doctest.h ]; then
    extra=(-DDOCTEST_INCLUDE_DIR="$FTP_EXTRA_INCLUDE" -DCMAKE_CXX_FLAGS="-I$FTP_EXTRA_INCLUDE"
           -DCMAKE_CUDA_FLAGS="-I$FTP_EXTRA_INCLUDE")
  fi
  cmake -S . -B "$bin" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 "${extra[@]}" > "$out/configure.log" 2>&1 ||
    { tail -30 "$out/configure.log"; return 1; }
  # FTP_GPU_TARGETS narrows the build, e.g. to "ftp_cuda_tests ftp_llama3" for scripts/sanitize.sh.
  local targets=${FTP_GPU_TARGETS:-"ftp_cuda_tests ftp_host_tests ftp_llama3 ftp_bench_overhead ftp_bench_attention ftp_bench_e2e ftp_bench_model_ttft"}
  # shellcheck disable=SC2086
  cmake --build "$bin" -j"$(nproc)" --target $targets > "$out/build.log" 2>&1 ||
    { grep -E "error" "$out/build.log" | head -30; return 1; }
  echo "build: ok"
}

step_tests() {
  FTP_REQUIRE_GPU=1 ./$bin/tests/ftp_cuda_tests > "$out/cuda_tests.log" 2>&1
  local rc=$?
  grep -E "ERROR|FAILED|SKIPPED|relative error|worst|TFLOP" "$out/cuda_tests.log" | head -60
  grep -E "test cases:|assertions:" "$out/cuda_tests.log"
  ./$bin/tests/ftp_host_tests > "$out/host_tests.log" 2>&1 || rc=1
  grep -E "test cases:" "$out/host_tests.log"
  echo "tests rc=$rc"
  return $rc
}

step_model_tests() {
  [ -s "$model" ] || { echo "model-tests: no model at $model"; return 1; }
  FTP_REQUIRE_GPU=1 FTP_MODEL_PATH=$model ./$bin/tests/ftp_cuda_tests -tc="llama3 model:*" > "$out/model_tests.log" 2>&1
  local rc=$?
  grep -E "ERROR|FAILED|SKIPPED|SmolLM2|TTFT|relative logit" "$out/model_tests.log" | head -30
  grep -E "test cases:|assertions:" "$out/model_tests.log"
  echo "model-tests rc=$rc"
  return $rc
}

step_demo() {
  [ -s "$model" ] || { echo "demo: no model at $model"; return 1; }
  local text=/usr/share/common-licenses/GPL-2 prompt
  [ -r $text ] || text=README.md
  prompt=$(mktemp)
  { cat "$text"; printf '\n\nQuestion: according to the license above, what must you do when you distribute the Program in object code form? Answer in two sentences.'; } > "$prompt"
  ./$bin/examples/ftp_llama3 -m "$model" -f "$prompt" --chat -n 48 --compare > "$out/demo.log" 2>&1
  local rc=$?
  tail -25 "$out/demo.log"
  return $rc
}

step_overhead() { ./$bin/bench/ftp_bench_overhead --json "$out/overhead.json" 2>&1 | tee "$out/overhead.log" | tail -26; }
step_attention() { ./$bin/bench/ftp_bench_attention --json "$out/attention.json" 2>&1 | tee "$out/attention.log" | tail -24; }
step_e2e() { ./$bin/bench/ftp_bench_e2e --json "$out/e2e.json" 2>&1 | tee "$out/e2e.log" | tail -8; }
step_torch() {
  PYTHONUNBUFFERED=1 timeout --kill-after=10 "${FTP_TORCH_TIMEOUT:-260}" python3 bench/torch_reference.py \
    --json "$out/torch_reference.json" ${FTP_TORCH_ARGS:-} > "$out/torch.log" 2>&1
  local rc=$?
  rm -f "$out/torch_reference.json.tmp"
  sed -n '/^== torch_reference summary/,$p' "$out/torch.log" | cut -c1-400
  return $rc
}
step_ncu() {
  # Nsight Compute on the FTP kernels of one pruned layer at 32k tokens (clocks left as they are).
  local ncu
  ncu=$(command -v ncu || ls /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda/bin/ncu 2>/dev/null | head -1)
  [ -n "$ncu" ] || { echo "ncu: not found"; return 1; }
  timeout --kill-after=5 "${FTP_NCU_TIMEOUT:-120}" "$ncu" --clock-control none -c 16 \
    -k regex:"lqa_key_scores_mma|lqa_row_stats|lqa_gather|lqa_sum_heads|prefix_select|RadixSort|Scan|Select" \
    --section SpeedOfLight --section LaunchStats --section Occupancy \
    ./$bin/bench/ftp_bench_overhead --only-seq-len 32768 > "$out/ncu.txt" 2>&1
  local rc=$?
  grep -E "^  [A-Za-z_].*\(|Duration|Compute \(SM\) Throughput|Memory Throughput|Achieved Occupancy|Registers Per Thread|Grid Size" \
    "$out/ncu.txt" | head -120
  return $rc
}

step_golden() {
  [ -n "$qwen" ] || { echo "golden: no Qwen model in .cache/models"; return 1; }
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install -q --no-deps --no-index .devcarry/wheels/gguf-*.whl ||
    { echo "golden: cannot install the gguf wheel"; return 1; }
  local name
  name=golden_logits_$(basename "$qwen" .gguf).json
  PYTHONUNBUFFERED=1 python3 tools/make_golden_logits.py --model "$qwen" --device cuda --out "$out/$name" > "$out/golden.log" 2>&1
  local rc=$?
  tail -6 "$out/golden.log"
  return $rc
}

step_model_ttft() {
  [ -n "$qwen" ] || { echo "model-ttft: no Qwen model in .cache/models"; return 1; }
  ./$bin/bench/ftp_bench_model_ttft -m "$qwen" --json "$out/model_ttft.json" ${FTP_MODEL_TTFT_ARGS:-} 2>&1 |
    tee "$out/model_ttft.log" | tail -14
  python3 -c "import gguf" 2>/dev/null || python3 -m pip install -q --no-deps --no-index .devcarry/wheels/gguf-*.whl
  PYTHONUNBUFFERED=1 timeout --kill-after=10 "${FTP_HF_TIMEOUT:-300}" python3 bench/hf_gguf_prefill.py --model "$qwen" \
    --json "$out/hf_gguf_prefill.json" ${FTP_HF_ARGS:-} > "$out/hf_gguf_prefill.log" 2>&1
  local rc=$?
  tail -6 "$out/hf_gguf_prefill.log"
  return $rc
}

step_demo_qwen() {
  [ -n "$qwen" ] || { echo "demo-qwen: no Qwen model in .cache/models"; return 1; }
  bash scripts/demo.sh --prompt-only > "$out/demo_prompt.txt" || return 1
  ./$bin/examples/ftp_llama3 -m "$qwen" -f "$out/demo_prompt.txt" --chat -n 64 --compare --profile > "$out/demo_qwen.log" 2>&1
  local rc=$?
  tail -14 "$out/demo_qwen.log"
  return $rc
}

step_summary() {
  python3 bench/summary.py "$out" | tee "$out/summary.txt"
  python3 bench/plot.py "$out" > /dev/null 2>&1 || echo "plot failed"
}

step_collect() {
  local dest=${OUT:-$PWD/gpu-out}
  mkdir -p "$dest"
  for f in e2e.json torch_reference.json overhead.json attention.json summary.txt ttft.png overhead.png \
           model_ttft.json hf_gguf_prefill.json; do
    [ -f "$out/$f" ] && cp "$out/$f" "$dest/"
  done
  for f in "$out"/golden_logits_*.json; do [ -f "$f" ] && cp "$f" "$dest/"; done
  tar -czf "$dest/logs.tar.gz" -C "$out" --exclude='*.png' . && echo "collect: $(ls "$dest" | tr '\n' ' ')"
}

for s in "${steps[@]}"; do
  echo "== $s ($SECONDS s)"
  "step_${s//-/_}" || { status=1; echo "-- step $s failed"; [ "$s" = build ] && break; }
done
echo "gpu_suite: steps '${steps[*]}' done in $SECONDS s, status $status"
exit $status
