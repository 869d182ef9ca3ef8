#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for SECONDS (default 30),
# seeded with the real model's header and hand-made malformed files. Part of the test command.
# Usage: scripts/fuzz.sh [seconds]   (FTP_MODEL_PATH must point at the GGUF model)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-30}
out=$root/build/fuzz
mkdir -p "$out/corpus_gguf" "$out/corpus_tokenizer"
: "${FTP_MODEL_PATH:?set FTP_MODEL_PATH (scripts/fetch_model.sh prints it)}"
flags=(-std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I "$root/examples" -I "$root/include")
for target in fuzz_gguf fuzz_tokenizer; do
  if [ ! -x "$out/$target" ] || [ "$root/tests/fuzz/$target.cpp" -nt "$out/$target" ]; then
    clang++ "${flags[@]}" "$root/tests/fuzz/$target.cpp" -o "$out/$target"
  fi
done
# Seeds: the real header (metadata + tensor infos, tensor data cut off) and malformed variants.
head -c 2000000 "$FTP_MODEL_PATH" > "$out/corpus_gguf/real_header.gguf"
head -c 64 "$FTP_MODEL_PATH" > "$out/corpus_gguf/truncated_64.gguf"
printf 'GGUF\x03\x00\x00\x00' > "$out/corpus_gguf/only_magic.gguf"
printf 'GGUF\x09\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\xff' > "$out/corpus_gguf/bad_version.gguf"
printf 'hello, world! 123 <|im_start|>user\n\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80 \xff\xfe' > "$out/corpus_tokenizer/mixed.txt"
cp "$root/tests/fixtures/tokenizer_golden.json" "$out/corpus_tokenizer/" 2>/dev/null || true
ASAN_OPTIONS=detect_leaks=1 "$out/fuzz_gguf" -max_total_time="$seconds" -max_len=2100000 -rss_limit_mb=4096 \
  "$out/corpus_gguf" 2>&1 | tail -3
ASAN_OPTIONS=detect_leaks=1 "$out/fuzz_tokenizer" -max_total_time="$seconds" -max_len=4096 "$out/corpus_tokenizer" 2>&1 | tail -3
echo "fuzz: both targets ran ${seconds}s each with no finding"
