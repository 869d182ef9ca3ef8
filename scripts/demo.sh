#!/usr/bin/env bash
# The demo of README.md: fetches SmolLM2-135M-Instruct if needed, builds the runner, and runs
# dense and FTP prefill on a long real text (Debian's GPL-2 license text) followed by a question,
# reporting TTFT for both, the speedup, kept fraction per layer, first-token KL and both greedy
# continuations. Needs a CUDA GPU: without one the runner says so and exits non-zero.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
model=$(scripts/fetch_model.sh)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
cmake --build build -j"$(nproc)" --target ftp_llama3
text=/usr/share/common-licenses/GPL-2
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
{ cat "$text"; printf '\n\nQuestion: according to the license above, what must you do when you distribute the Program in object code form? Answer in two sentences.'; } > "$prompt"
exec ./build/examples/ftp_llama3 -m "$model" -f "$prompt" --chat -n 48 --compare "$@"
