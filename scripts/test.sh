#!/usr/bin/env bash
# The test command of README.md ("Run the tests"); .ci/run calls exactly this.
# On a fresh Debian machine with the CUDA Toolkit it installs what is missing (apt packages, the
# model), builds everything (tests, examples, benchmarks, docs) and runs the whole suite. Without a
# GPU the GPU test cases are reported as skipped, with a banner; with a GPU they run.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# 1. System packages (Debian names); installed only when missing.
packages=(cmake g++ make doctest-dev doxygen unzip python3-pip nlohmann-json3-dev clang libclang-rt-14-dev)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" > /dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" > /dev/null
fi
if ! command -v nvcc > /dev/null && [ -x /usr/local/cuda/bin/nvcc ]; then export PATH=/usr/local/cuda/bin:$PATH; fi
command -v nvcc > /dev/null || { echo "the CUDA Toolkit (nvcc) is required to build ftp" >&2; exit 1; }

# 2. The models the host tests need, into the git-ignored cache: SmolLM2-135M-Instruct (Q4_1) and
#    Qwen2.5-Coder-0.5B-Instruct (Q4_K_M; its tokenizer golden set and the dequantization of its real
#    tensors). The GPU suite also uses the 0.5B; the 1.5B (the evaluation model) is fetched by
#    demo.sh, or by hand with scripts/fetch_model.sh qwen2.5-coder-1.5b.
FTP_MODEL_PATH=$(scripts/fetch_model.sh smollm2-135m)
FTP_QWEN05_MODEL_PATH=$(scripts/fetch_model.sh qwen2.5-coder-0.5b)
export FTP_MODEL_PATH FTP_QWEN05_MODEL_PATH

# 3. Build everything: tests, examples and benchmarks build everywhere, even where they cannot run.
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
cmake --build build -j"$(nproc)"

# 4. The GPU suite alone first, so its banner (GPU present / all GPU cases skipped) is visible.
./build/tests/ftp_cuda_tests

# 5. A short fuzz run of the GGUF parser and the tokenizer (libFuzzer, ASan + UBSan), 30 s each.
bash scripts/fuzz.sh 30

# 6. Everything through ctest: host tests, one entry per GPU test file (label gpu; each skips
#    visibly without a GPU), consumers (add_subdirectory, find_package), the README snippet, the
#    API docs (warnings are errors), sanitize.sh's triage on sample logs.
ctest --test-dir build --output-on-failure
