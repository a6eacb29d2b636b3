#!/usr/bin/env bash
# DAT benchmark: generates a MAME-sized Logiqx DAT (default 300 MiB) and a MAME -listxml of
# the real size (default 250 MiB, tens of thousands of <machine>s) and checks a small
# library against each with `romlib verify --dat`, which streams the DAT one game at a time.
# Prints time, parse throughput and the peak RSS of the whole check (the target: under
# 100 MiB whatever the DAT's size).
# Usage: bash host-builder/bench/dat.sh [SIZE_MIB [LISTXML_MIB]]   (env WORK=/tmp/romlib-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
MIB=${1:-300}
LISTXML_MIB=${2:-250}
WORK=${WORK:-/tmp/romlib-bench}
[ -x /usr/bin/time ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time; }
cargo build --release -q -p romlib-host -p romlib-tests --bins
T=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$WORK"
dat="$WORK/mame-$MIB.dat"
[ -f "$dat" ] || "$T/gen-dat" "$MIB" "$dat"
listxml="$WORK/mame-listxml-$LISTXML_MIB.xml"
[ -f "$listxml" ] || "$T/gen-dat" --listxml "$LISTXML_MIB" "$listxml"
rm -rf "$WORK/dat-in" "$WORK/dat-lib"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$T/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null 2>&1 || true
"$T/romlib" trust add "$WORK/k.pub" >/dev/null  # also when the key was there already
"$T/gen-corpus" 16 "$WORK/dat-in" >/dev/null
"$T/romlib" build -q -i "$WORK/dat-in" -o "$WORK/dat-lib" --signing-key "$WORK/k.sec"
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }
run() { # label file flags...
  local label=$1 file=$2; shift 2
  # Exit 1 is expected: the generated DAT's games are not in the library.
  /usr/bin/time -v "$T/romlib" verify -r "$WORK/dat-lib" --dat "$file" "$@" \
    >"$WORK/dat-report" 2>"$WORK/dat.time" || true
  local wall rss size games
  wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/dat.time")")
  rss=$(field 'Maximum resident set size' "$WORK/dat.time")
  size=$(stat -c %s "$file")
  games=$(grep -c '<machine ' "$file" || true)
  awk -v m="$label" -v sz="$size" -v w="$wall" -v rss="$rss" -v g="$games" 'BEGIN {
    printf "| verify --dat (%s) | %.0f MiB, %d machines | %.2f s | %.1f MiB/s | peak RSS %.1f MiB |\n",
      m, sz / 1048576, g, w, sz / 1048576 / w, rss / 1024 }'
}
run "Logiqx, text report" "$dat"
run "Logiqx, JSON report" "$dat" --json
run "MAME -listxml, text report" "$listxml"
run "MAME -listxml, fixdat written" "$listxml" --fixdat "$WORK/fixdat.xml"
