#!/usr/bin/env bash
# The demo of README.md: fetches the model if needed (Qwen2.5-Coder-1.5B-Instruct by default, the
# paper's Qwen2 family), builds the runner, and runs dense and FTP prefill on a long real document
# (five of Debian's license texts, about 25k tokens) followed by a question whose answer sits in
# the middle of it (GPL-3, section 8). Prints both answers, TTFT of both, the speedup, the kept
# fraction per layer, the first-token KL and the time per stage. Needs a CUDA GPU: without one the
# runner says so and exits 2.
#
# Usage: bash scripts/demo.sh [--model NAME] [--prompt-only] [ftp_llama3 options...]
#   --model NAME    qwen2.5-coder-1.5b (default), qwen2.5-coder-0.5b or smollm2-135m
#   --prompt-only   print the prompt text and exit (no model, no build, no GPU)
# The small SmolLM2-135M has a context of 8k tokens: its prompt is GPL-2 and a question on it.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

name=qwen2.5-coder-1.5b
prompt_only=0
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --model) [ $# -ge 2 ] || { echo "demo: --model needs a name" >&2; exit 1; }; name=$2; shift 2 ;;
    --prompt-only) prompt_only=1; shift ;;
    *) extra+=("$1"); shift ;;
  esac
done

licenses=/usr/share/common-licenses
write_prompt() {
  if [ "$name" = smollm2-135m ]; then
    cat "$licenses/GPL-2"
    printf '\n\nQuestion: according to the license above, what must you do when you distribute the Program in object code form? Answer in two sentences.'
  else
    for f in Apache-2.0 GPL-2 GPL-3 LGPL-2.1 MPL-2.0; do
      [ -r "$licenses/$f" ] || { echo "demo: $licenses/$f is missing (Debian's base-files provides it)" >&2; return 1; }
      printf '=== %s ===\n\n' "$f"
      cat "$licenses/$f"
      printf '\n\n'
    done
    printf 'Question: according to section 8 (Termination) of the GNU General Public License version 3 above, how many days after receiving a first notice of a violation do you have to cure it, and how many days after you cease a violation does the copyright holder have to notify you? Answer with both numbers of days.'
  fi
}

if [ "$prompt_only" = 1 ]; then
  write_prompt
  exit 0
fi

model=$(scripts/fetch_model.sh "$name")
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > build-configure.log 2>&1 || { cat build-configure.log; exit 1; }
cmake --build build -j"$(nproc)" --target ftp_llama3
prompt=$(mktemp)
trap 'rm -f "$prompt"' EXIT
write_prompt > "$prompt"
# exec would skip the trap; run the runner and pass its exit code on.
rc=0
./build/examples/ftp_llama3 -m "$model" -f "$prompt" --chat -n 64 --compare --profile "${extra[@]}" || rc=$?
exit $rc
