#!/usr/bin/env bash
# scripts/carry_model.sh with small parts in temp dirs: split (manifest and parts), parts, stage,
# join part by part in shuffled order until the file is whole, a part corrupted in transit, a held
# part corrupted in the store, re-runs, a new split replacing the old manifest, and the errors
# (range, names, usage). FILE is always given to split (without it, split calls fetch_model.sh).
# Needs only bash and coreutils (the random files come from /dev/urandom).
# Prints one line per check and a summary; exits 1 when any failed.
set -uo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
carry=$root/scripts/carry_model.sh
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
passed=0
failed=0

export FTP_DEVCARRY_DIR=$t/devcarry FTP_CARRY_DIR=$t/store FTP_CARRY_PART_BYTES=1000
dev=$FTP_DEVCARRY_DIR
stage=$dev/stage
dest=$t/dest

ok() { echo "ok - $1"; passed=$((passed + 1)); }
fail() { echo "FAIL - $1"; failed=$((failed + 1)); }
if [ -x "$carry" ]; then ok "scripts/carry_model.sh is executable"; else fail "scripts/carry_model.sh is executable (chmod +x)"; fi
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
# run ARGS...: runs carry_model.sh; exit status in $rc, output in $t/out and $t/err.
run() {
  rc=0
  "$carry" "$@" > "$t/out" 2> "$t/err" || rc=$?
}
out_has() { grep -qF -- "$1" "$t/out"; }
err_has() { grep -qF -- "$1" "$t/err"; }
md5_of() { md5sum "$1" | cut -d' ' -f1; }
# corrupt FILE: one byte changed, same size, written as a new file (the staged part and the store's
# part may be hard links to the split's part; a transfer error never touches the source).
corrupt() {
  cp "$1" "$1.new" && printf 'corrupted' | dd of="$1.new" bs=1 seek=17 conv=notrunc status=none &&
    mv -f "$1.new" "$1"
}
held() { find "$t/store/$1" -maxdepth 1 -name 'part*' 2> /dev/null | sort | sed 's/.*part//' | tr '\n' ' '; }
stage_list() { (cd "$stage" 2> /dev/null && ls -A | tr '\n' ' '); }

# A 10,500-byte model: 10 parts of 1,000 bytes and a last one of 500.
mkdir -p "$t/src"
a=$t/src/model-a.gguf
head -c 10500 /dev/urandom > "$a"
md5a=$(md5_of "$a")

# split: manifest and parts.
run split m "$a"
check "split: exit 0, says 11 parts" eval '[ "$rc" = 0 ] && out_has "m: 11 parts"'
m=$dev/m.manifest
check "split: manifest header (name, file, bytes, md5, parts)" \
  eval '[ "$(grep -v "^part " "$m")" = "# scripts/carry_model.sh manifest
name m
file model-a.gguf
bytes 10500
md5 $md5a
parts 11" ]'
check "split: part00..part10, 1000 bytes each but the last of 500" \
  eval '[ "$(cd "$dev/m" && for f in *; do echo "$f $(stat -c %s "$f")"; done)" = "$(
    for k in $(seq 0 9); do printf "part%02d 1000\n" "$k"; done; echo "part10 500")" ]'
check "split: manifest part lines match the parts" \
  eval '[ "$(grep "^part " "$m")" = "$(cd "$dev/m" && for f in part*; do
    echo "part ${f#part} $(stat -c %s "$f") $(md5_of "$f")"; done)" ]'
check "split: the parts concatenated are the file" cmp -s <(cat "$dev/m"/part*) "$a"

# parts: the count only.
run parts m
check "parts: prints exactly 11" eval '[ "$rc" = 0 ] && [ "$(cat "$t/out")" = 11 ]'

# stage K, join: into the store, held/missing reported.
run stage m 3
check "stage 3: exit 0, reports part 03 (4/11)" eval '[ "$rc" = 0 ] && out_has "staged m part 03 (4/11)"'
check "stage 3: the stage holds exactly the part and the manifest" \
  eval '[ "$(stage_list)" = "m.manifest m.part03 " ] && cmp -s "$stage/m.part03" "$dev/m/part03" &&
        cmp -s "$stage/m.manifest" "$m"'
check "stage 3: reports the size carried with the tree" out_has "of 64 MiB"
run join m "$dest"
check "join 03: exit 0, 1/11 held, the others missing" \
  eval '[ "$rc" = 0 ] && out_has "m part 03 ok, 1/11 held; missing: 00 01 02 04 05 06 07 08 09 10"'
check "join 03: part moved into the store, gone from the stage" \
  eval '[ "$(held m)" = "03 " ] && [ ! -e "$stage/m.part03" ] && cmp -s "$t/store/m/part03" "$dev/m/part03"'
check "join 03: no model in DEST yet" [ ! -e "$dest/model-a.gguf" ]
run join m "$dest"
check "join again with nothing new staged: harmless, still 1/11" \
  eval '[ "$rc" = 0 ] && out_has "1/11 held" && [ "$(held m)" = "03 " ]'
run stage m 03 && run join m "$dest"
check "stage 03 (two digits) and join again: still 1/11, no temp file in the store" \
  eval '[ "$rc" = 0 ] && out_has "1/11 held" && [ "$(held m)" = "03 " ] && [ -z "$(find "$t/store" -name "*.tmp")" ]'

# A part corrupted in transit: rejected, removed, not held, the join does not complete.
run stage m 5
corrupt "$stage/m.part05"
run join m "$dest"
check "corrupted staged part: exit 1, md5 named, removed" \
  eval '[ "$rc" = 1 ] && err_has "m part 05 md5" && err_has "expected $(awk "\$2 == \"05\" { print \$4 }" "$m")" &&
        err_has "removed, stage it again" && [ ! -e "$stage/m.part05" ]'
check "corrupted staged part: not held, 1/11, the split's part intact" \
  eval '[ "$(held m)" = "03 " ] && out_has "1/11 held" && [ "$(md5_of "$dev/m/part05")" = "$(awk "\$2 == \"05\" { print \$4 }" "$m")" ]'

# stage errors.
run stage m 11
check "stage 11 (out of range 0..10): exit 1" eval '[ "$rc" = 1 ] && err_has "out of range 0..10"'
run stage m -1
check "stage -1: exit 1" [ "$rc" = 1 ]
run stage m x
check "stage x: exit 1" [ "$rc" = 1 ]
run stage nosuch 0
check "stage of a model never split: exit 1, says to split" eval '[ "$rc" = 1 ] && err_has "run: "'
corrupt "$dev/m/part07"
run stage m 7
check "stage of a part damaged on this side: exit 1, stage untouched" \
  eval '[ "$rc" = 1 ] && err_has "part07 has md5" && [ ! -e "$stage/m.part07" ]'

# Re-split (same file) repairs part07; the manifest is the same, so held parts stay.
run split m "$a"
run stage m 0 && run join m "$dest"
check "re-split of the same file: held parts kept, 2/11" \
  eval '[ "$rc" = 0 ] && [ "$(held m)" = "00 03 " ] && ! err_has "new manifest"'

# All the other parts in shuffled order; before the last one a held part is damaged in the store.
order=$(seq 0 10 | grep -vx -e 0 -e 3 | shuf | tr '\n' ' ')
read -r -a order <<< "$order"
last=${order[${#order[@]} - 1]}
joins_ok=1
for k in "${order[@]}"; do
  [ "$k" = "$last" ] && break
  run stage m "$k" && run join m "$dest"
  [ "$rc" = 0 ] && out_has "$(printf 'part %02d ok' "$k")" || joins_ok=0
done
check "shuffled parts (${order[*]}): each staged and joined, 10/11 held" \
  eval '[ "$joins_ok" = 1 ] && out_has "10/11 held; missing: $(printf "%02d" "$last")" && [ ! -e "$dest/model-a.gguf" ]'
corrupt "$t/store/m/part03"
run stage m "$last" && run join m "$dest"
check "held part damaged in the store: exit 1, joined md5 wrong, part 03 named and dropped" \
  eval '[ "$rc" = 1 ] && err_has "joined md5" && err_has "removed bad part(s) 03" &&
        [ ! -e "$t/store/m/part03" ] && [ -e "$t/store/m/part$(printf %02d "$last")" ]'
check "held part damaged in the store: no model, no temp file in DEST" \
  eval '[ -z "$(ls -A "$dest")" ]'
run stage m 3 && run join m "$dest"
check "last part joined: exit 0, complete, md5 ok" eval '[ "$rc" = 0 ] && out_has "m part 03 ok, complete, md5 ok"'
check "last part joined: the file equals the original" cmp -s "$dest/model-a.gguf" "$a"
check "last part joined: parts dropped, nothing else in DEST, stage has no part" \
  eval '[ ! -e "$t/store/m" ] && [ "$(ls -A "$dest")" = model-a.gguf ] && [ "$(stage_list)" = "m.manifest " ]'
check "last part joined: file mode 0644" [ "$(stat -c %a "$dest/model-a.gguf")" = 644 ]

# Re-running join with the model already joined: harmless.
run join m "$dest"
check "join after completion: exit 0, complete, file unchanged" \
  eval '[ "$rc" = 0 ] && out_has "m complete" && cmp -s "$dest/model-a.gguf" "$a" && [ ! -e "$t/store/m" ]'
run stage m 4 && run join m "$dest"
check "a part staged again after completion: exit 0, dropped, file unchanged, nothing held" \
  eval '[ "$rc" = 0 ] && [ "$(stage_list)" = "m.manifest " ] && cmp -s "$dest/model-a.gguf" "$a" && [ ! -e "$t/store/m" ]'

# A new split (a different file) under the same name drops the parts held from the old manifest.
b=$t/src/model-b.gguf
head -c 3500 /dev/urandom > "$b"
rm -rf "$t/store" "$dest"
run stage m 1 && run join m "$dest"
run stage m 2 && run join m "$dest"
check "model a again: 2/11 held" eval '[ "$(held m)" = "01 02 " ]'
run split m "$b"
check "split of model b: 4 parts" eval '[ "$rc" = 0 ] && out_has "m: 4 parts" && [ "$(cat "$dev/m.manifest" | grep -c "^part ")" = 4 ]'
run stage m 2 && run join m "$dest"
check "new manifest: old parts dropped, says so, only b's part 02 held" \
  eval '[ "$rc" = 0 ] && err_has "new manifest, dropped the parts held from the old one" &&
        [ "$(held m)" = "02 " ] && cmp -s "$t/store/m/part02" "$dev/m/part02" && out_has "1/4 held; missing: 00 01 03"'
for k in 3 0 1; do run stage m "$k" && run join m "$dest"; done
check "model b: complete after parts 3 0 1, equal to b" \
  eval '[ "$rc" = 0 ] && out_has "complete, md5 ok" && cmp -s "$dest/model-b.gguf" "$b" && [ ! -e "$dest/model-a.gguf" ]'

# Errors and usage.
rm -rf "$stage" "$t/store"
run join m "$dest"
check "join with nothing staged and nothing held: exit 1" \
  eval '[ "$rc" = 1 ] && err_has "nothing staged"'
run parts nosuch
check "parts of a model never split: exit 1" [ "$rc" = 1 ]
run split 'bad/name' "$a"
check "split with a bad name: exit 1" eval '[ "$rc" = 1 ] && err_has "bad model name"'
run split m "$t/src/missing.gguf"
check "split of a missing file: exit 1" eval '[ "$rc" = 1 ] && err_has "not found"'
: > "$t/src/empty.gguf"
run split e "$t/src/empty.gguf"
check "split of an empty file: exit 1" eval '[ "$rc" = 1 ] && err_has "is empty"'
FTP_CARRY_PART_BYTES=0 run split m "$a"
check "FTP_CARRY_PART_BYTES=0: exit 1" eval '[ "$rc" = 1 ] && err_has "not a positive number"'
FTP_CARRY_PART_BYTES=10 run split m "$a"
check "more than 100 parts: exit 1, the old split kept" \
  eval '[ "$rc" = 1 ] && err_has "at most 100" && [ -f "$dev/m.manifest" ]'
run frobnicate m
check "unknown command: exit 2" eval '[ "$rc" = 2 ] && err_has "unknown command" && err_has "Usage"'
run
check "no command: exit 2" [ "$rc" = 2 ]
run stage m
check "stage without K: exit 2" [ "$rc" = 2 ]
run parts
check "parts without NAME: exit 2" [ "$rc" = 2 ]
run split m "$a" extra
check "split with three arguments: exit 2" [ "$rc" = 2 ]

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
