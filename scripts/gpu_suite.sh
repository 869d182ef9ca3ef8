#!/usr/bin/env bash
# Builds and runs the whole GPU test suite and the benchmarks on a CUDA machine, writing logs and
# JSON to $OUT (or ./gpu-out). Used on the lent H100/H200: bash scripts/gpu_suite.sh
set -uo pipefail
out=${OUT:-$PWD/gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt"
cmake -S . -B build-gpu -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 > "$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
targets=${FTP_GPU_TARGETS:-"ftp_cuda_tests ftp_host_tests ftp_llama3 ftp_bench_overhead ftp_bench_attention ftp_bench_e2e"}
cmake --build build-gpu -j"$(nproc)" --target $targets > "$out/build.log" 2>&1 || { grep -E "error" "$out/build.log" | head -30; exit 1; }
echo "== GPU tests"
FTP_REQUIRE_GPU=1 ./build-gpu/tests/ftp_cuda_tests ${FTP_TEST_ARGS:-} > "$out/cuda_tests.log" 2>&1
cuda_rc=$?
grep -E "ERROR|FAILED|relative error|whole step|kept rows" "$out/cuda_tests.log" | head -60
grep -E "test cases:|assertions:" "$out/cuda_tests.log"
echo "== host tests"
./build-gpu/tests/ftp_host_tests > "$out/host_tests.log" 2>&1
host_rc=$?
grep -E "test cases:" "$out/host_tests.log"
if [ "${FTP_SKIP_BENCH:-0}" != 1 ]; then
  echo "== bench: overhead"
  ./build-gpu/bench/ftp_bench_overhead --json "$out/overhead.json" 2>&1
  echo "== bench: attention kernel"
  ./build-gpu/bench/ftp_bench_attention --json "$out/attention.json" 2>&1 | tail -8
  echo "== bench: end to end (Llama3-8B shape, synthetic weights)"
  ./build-gpu/bench/ftp_bench_e2e --json "$out/e2e.json" 2>&1 | tail -8
fi
echo "cuda_tests rc=$cuda_rc host_tests rc=$host_rc"
[ $cuda_rc -eq 0 ] && [ $host_rc -eq 0 ]
