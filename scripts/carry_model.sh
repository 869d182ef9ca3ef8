#!/usr/bin/env bash
# Carries a cached model to the GPU machine in parts: each device call copies at most 64 MiB from
# this checkout (the tracked tree plus the carried paths), and the GPU machine cannot reach PyPI.
#
# Usage (here):             scripts/carry_model.sh split NAME [FILE]   parts + manifest in .devcarry/
#                           scripts/carry_model.sh parts NAME          prints the part count only
#                           scripts/carry_model.sh stage NAME K        .devcarry/stage/ = part K only
# Usage (on the GPU side):  scripts/carry_model.sh join NAME [DEST]    after each call carrying
#                                                                      .devcarry/stage
# split    cuts the cached model (scripts/fetch_model.sh --verify NAME, or FILE) into parts of
#          60 MiB, .devcarry/NAME/part00, part01, ..., and writes .devcarry/NAME.manifest (file
#          name, total bytes, md5, part count, each part's bytes and md5).
# stage    empties .devcarry/stage/ and puts part K (0-based) and the manifest there, so a call with
#          carry [".devcarry/stage"] takes exactly one part.
# join     checks the staged part's md5 against the manifest and moves it to a folder outside the
#          repo that survives between calls on a warm machine (/tmp/ftp-carry/NAME); once all parts
#          are there it joins them into DEST (default .cache/models of the repo there), checks size
#          and md5, renames the result into place and drops the parts. A bad part is removed.
# Every step is idempotent: re-running a call with the same part is harmless.
#
# Environment: FTP_DEVCARRY_DIR (default .devcarry of this checkout), FTP_CARRY_DIR (default
# /tmp/ftp-carry), FTP_CARRY_PART_BYTES (default 62914560 = 60 MiB; tests use small parts).
# Exit status: 0 ok; 1 a failure (the message says what); 2 a usage error.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
devcarry=${FTP_DEVCARRY_DIR:-$root/.devcarry}
store_root=${FTP_CARRY_DIR:-/tmp/ftp-carry}
part_bytes=${FTP_CARRY_PART_BYTES:-$((60 * 1024 * 1024))}
limit_bytes=$((64 * 1024 * 1024)) # what one device call may carry, tree included

say() { echo "carry: $*"; }
die() { echo "carry: $*" >&2; exit 1; }
usage() { sed -n '5,10s/^# \{0,1\}//p' "$0" >&2; exit 2; }
show() { printf '%s' "${1#"$root"/}"; } # paths inside the checkout, shown relative to it
file_size() { stat -c %s "$1"; }
file_md5() { md5sum "$1" | cut -d' ' -f1; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }

# manifest_get MANIFEST KEY: the value of a "KEY value" line; part_get MANIFEST K FIELD (2 = bytes,
# 3 = md5) for the "part KK bytes md5" lines.
manifest_get() { awk -v k="$2" '$1 == k { print $2; exit }' "$1"; }
part_get() { awk -v k="$2" -v f="$3" '$1 == "part" && $2 == k { print $(f + 1); exit }' "$1"; }

check_name() {
  [[ "$1" =~ ^[A-Za-z0-9._-]+$ ]] || die "bad model name '$1' (letters, digits, '.', '_', '-')"
}

cmd_split() {
  local name=$1 file=${2:-}
  check_name "$name"
  [[ "$part_bytes" =~ ^[1-9][0-9]*$ ]] || die "FTP_CARRY_PART_BYTES=$part_bytes is not a positive number"
  if [ -z "$file" ]; then
    file=$("$root/scripts/fetch_model.sh" --verify "$name") || die "no cached model for $name"
  fi
  [ -f "$file" ] || die "$file not found"
  local total md5 count dir=$devcarry/$name manifest=$devcarry/$name.manifest
  total=$(file_size "$file")
  [ "$total" -gt 0 ] || die "$file is empty"
  count=$(((total + part_bytes - 1) / part_bytes))
  [ "$count" -le 100 ] || die "$count parts of $part_bytes bytes; at most 100 (two-digit names)"
  md5=$(file_md5 "$file")
  rm -rf "$dir" "$manifest"
  mkdir -p "$dir"
  split -b "$part_bytes" -d -a 2 "$file" "$dir/part"
  {
    echo "# scripts/carry_model.sh manifest"
    echo "name $name"
    echo "file $(basename "$file")"
    echo "bytes $total"
    echo "md5 $md5"
    echo "parts $count"
    local k p
    for ((k = 0; k < count; k++)); do
      p=$(printf '%02d' "$k")
      echo "part $p $(file_size "$dir/part$p") $(file_md5 "$dir/part$p")"
    done
  } > "$manifest.tmp"
  mv -f "$manifest.tmp" "$manifest"
  say "$name: $count parts of $(mib "$part_bytes") in $(show "$dir")/, manifest $(show "$manifest")"
}

cmd_parts() {
  local manifest=$devcarry/$1.manifest
  [ -r "$manifest" ] || die "no manifest $(show "$manifest"); run: $0 split $1"
  manifest_get "$manifest" parts
}

cmd_stage() {
  local name=$1 k=$2
  check_name "$name"
  local manifest=$devcarry/$name.manifest stage=$devcarry/stage count p part want got
  [ -r "$manifest" ] || die "no manifest $(show "$manifest"); run: $0 split $name"
  count=$(manifest_get "$manifest" parts)
  [[ "$k" =~ ^[0-9]+$ ]] && [ "$((10#$k))" -lt "$count" ] || die "part '$k' out of range 0..$((count - 1))"
  p=$(printf '%02d' "$((10#$k))")
  part=$devcarry/$name/part$p
  [ -f "$part" ] || die "$(show "$part") is missing; run: $0 split $name"
  # Checked here too: a part damaged on this side would otherwise cost a device call to notice.
  want=$(part_get "$manifest" "$p" 3)
  got=$(file_md5 "$part")
  [ "$got" = "$want" ] || die "$(show "$part") has md5 $got, expected $want; run: $0 split $name"
  rm -rf "$stage"
  mkdir -p "$stage"
  ln "$part" "$stage/$name.part$p" 2> /dev/null || cp "$part" "$stage/$name.part$p"
  cp "$manifest" "$stage/$name.manifest"
  # What travels is the tree (tracked and untracked-not-ignored files) plus the stage.
  local tree=0 staged
  if command -v git > /dev/null && git -C "$root" rev-parse --git-dir > /dev/null 2>&1; then
    tree=$(git -C "$root" ls-files -z -co --exclude-standard |
      (cd "$root" && du -cb --files0-from=- 2> /dev/null) | awk 'END { print $1 + 0 }')
  fi
  staged=$(du -sb "$stage" | cut -f1)
  say "staged $name part $p ($((10#$p + 1))/$count) in $(show "$stage")/; with the tree $(mib "$((tree + staged))") of 64 MiB"
  [ "$((tree + staged))" -le "$limit_bytes" ] ||
    echo "carry: warning: over 64 MiB together; split with a smaller FTP_CARRY_PART_BYTES" >&2
}

cmd_join() {
  local name=$1 dest=${2:-$root/.cache/models}
  check_name "$name"
  local stage=$devcarry/stage store=$store_root/$name
  local staged_manifest=$stage/$name.manifest manifest=$store/manifest
  mkdir -p "$store"
  # A manifest that differs from the held one means a new split: parts held from the old one
  # would not fit, so they go.
  if [ -f "$staged_manifest" ]; then
    if [ -f "$manifest" ] && ! cmp -s "$staged_manifest" "$manifest"; then
      rm -f "$store"/part*
      echo "carry: $name: new manifest, dropped the parts held from the old one" >&2
    fi
    cp "$staged_manifest" "$manifest.tmp"
    mv -f "$manifest.tmp" "$manifest"
  fi
  [ -f "$manifest" ] || die "$name: nothing staged in $(show "$stage") and nothing held in $store"

  local file total md5 count target
  file=$(manifest_get "$manifest" file)
  total=$(manifest_get "$manifest" bytes)
  md5=$(manifest_get "$manifest" md5)
  count=$(manifest_get "$manifest" parts)
  target=$dest/$file

  # The staged part(s) of this model: checked, then moved into the store (a temporary name and a
  # rename, so an interrupted copy never looks like a held part).
  local s p want got status=0 msg=""
  for s in "$stage/$name".part[0-9][0-9]; do
    [ -f "$s" ] || continue
    p=${s##*.part}
    want=$(part_get "$manifest" "$p" 3)
    got=$(file_md5 "$s")
    if [ -z "$want" ]; then
      rm -f "$s"
      echo "carry: $name part $p is not in the manifest: removed" >&2
      status=1
    elif [ "$got" != "$want" ]; then
      rm -f "$s"
      echo "carry: $name part $p md5 $got, expected $want: removed, stage it again" >&2
      status=1
    elif [ -f "$target" ] && [ "$(file_size "$target")" = "$total" ]; then
      rm -f "$s" # already joined: nothing to keep
    elif [ "$s" -ef "$store/part$p" ]; then
      rm -f "$s" # the held part itself (stage hard-links; stage and join on one machine)
      msg="part $p ok, "
    else
      mv -f "$s" "$store/.part$p.tmp"
      mv -f "$store/.part$p.tmp" "$store/part$p"
      msg="part $p ok, "
    fi
  done

  if [ -f "$target" ] && [ "$(file_size "$target")" = "$total" ]; then
    say "$name complete -> $(show "$target")"
    rm -rf "$store"
    return "$status"
  fi

  local k held=0 missing=()
  for ((k = 0; k < count; k++)); do
    p=$(printf '%02d' "$k")
    if [ -f "$store/part$p" ] && [ "$(file_size "$store/part$p")" = "$(part_get "$manifest" "$p" 2)" ]; then
      held=$((held + 1))
    else
      missing+=("$p")
    fi
  done
  if [ "$held" -lt "$count" ]; then
    say "$name ${msg}$held/$count held; missing: ${missing[*]}"
    return "$status"
  fi

  mkdir -p "$dest"
  local avail
  avail=$(df -P -B1 "$dest" | awk 'NR == 2 { print $4 }')
  [ "$avail" -ge "$total" ] || die "not enough space in $dest: need $total bytes, $avail available"
  local tmp
  tmp=$(mktemp "$dest/.$file.carry.XXXXXX")
  trap 'rm -f "$tmp"' EXIT
  for ((k = 0; k < count; k++)); do
    cat "$store/part$(printf '%02d' "$k")"
  done > "$tmp"
  got=$(file_size "$tmp")
  [ "$got" = "$total" ] || die "$name: joined $got bytes, expected $total"
  got=$(file_md5 "$tmp")
  if [ "$got" != "$md5" ]; then
    # Sizes were right, so some part's content is not: find it, drop it, name it.
    local bad=()
    for ((k = 0; k < count; k++)); do
      p=$(printf '%02d' "$k")
      if [ "$(file_md5 "$store/part$p")" != "$(part_get "$manifest" "$p" 3)" ]; then
        rm -f "$store/part$p"
        bad+=("$p")
      fi
    done
    die "$name: joined md5 $got, expected $md5; removed bad part(s) ${bad[*]:-none}: stage them again"
  fi
  chmod 0644 "$tmp"
  mv -f "$tmp" "$target"
  trap - EXIT
  rm -rf "$store"
  say "$name ${msg}complete, md5 ok -> $(show "$target")"
  return "$status"
}

[ $# -ge 1 ] || usage
cmd=$1
shift
case "$cmd" in
  split) [ $# -ge 1 ] && [ $# -le 2 ] || usage; cmd_split "$@" ;;
  parts) [ $# -eq 1 ] || usage; cmd_parts "$1" ;;
  stage) [ $# -eq 2 ] || usage; cmd_stage "$1" "$2" ;;
  join) [ $# -ge 1 ] && [ $# -le 2 ] || usage; cmd_join "$@" ;;
  -h | --help) usage ;;
  *) echo "carry: unknown command '$cmd'" >&2; usage ;;
esac
