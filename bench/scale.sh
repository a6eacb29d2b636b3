#!/usr/bin/env bash
# How romlib's costs grow with the library: a library grows by one game of STEP_MIB
# incompressible MiB per step (cut at AVG_CHUNK bytes, 1 KiB by default, to reach large
# chunk counts with little data), built each time from an input folder that holds every
# game so far (as a collector's folder does). Per step it prints:
#
#   - add s:         `romlib build` of the input with one new game
#   - builder RSS:   that build's peak resident memory
#   - no-op s:       the same build again, with nothing new
#   - cat ms:        `romlib cat` of one small file of the first game
#   - index B/chunk: index.db bytes over the chunks stored
#
# then how adding at the last step compares with adding at step 2, and a projection of
# the index to a 10 TB library at the default 32 KiB chunks.
#
#   bash bench/scale.sh            10 steps of 128 MiB at 1 KiB chunks: about 1.1 million
#                                  chunks (about 10 minutes here)
#   bash bench/scale.sh --smoke    3 steps of 8 MiB (CI runs it so the script cannot rot)
#
# Environment: STEPS, STEP_MIB, AVG_CHUNK, WORK (default /tmp/romlib-scale, removed first),
# ROMLIB_BENCH_HOST_PROFILE=dev (the dev build's romlib, for smoke runs). Needs
# /usr/bin/time (Debian's `time`) and openssl (the generated data: AES-CTR keystreams).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then
  STEPS=${STEPS:-3}; STEP_MIB=${STEP_MIB:-8}
else
  STEPS=${STEPS:-10}; STEP_MIB=${STEP_MIB:-128}
fi
AVG_CHUNK=${AVG_CHUNK:-1024}
WORK=${WORK:-/tmp/romlib-scale}
[ "$STEPS" -ge 2 ] || { echo "scale.sh: STEPS must be at least 2" >&2; exit 2; }
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host
TD=${CARGO_TARGET_DIR:-target}
ROMLIB=$(cd "$TD/$HOST_DIR" && pwd)/romlib
rm -rf "$WORK"
mkdir -p "$WORK/in"
IN=$WORK/in LIB=$WORK/lib
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null

# One game: STEP_MIB of AES-CTR keystream keyed by the step (deterministic, incompressible,
# no chunk shared with another game) and a small text file.
make_game() {
  local dir=$IN/game-$(printf '%03d' "$1")
  mkdir -p "$dir"
  head -c $((STEP_MIB << 20)) /dev/zero \
    | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$1")" -iv "$(printf '%032x' 0)" >"$dir/data.bin"
  printf 'game %s of the scale benchmark\n' "$1" >"$dir/readme.txt"
}

# Wall seconds (3 decimals) and peak RSS (KiB) of a command, into $SECS and $RSS_KIB.
measure() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" \
    || { cat "$WORK/err" >&2; echo "scale.sh: $* failed" >&2; exit 1; }
  t1=$(date +%s%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RSS_KIB=$(tail -1 "$WORK/time")
}

json_field() {  # FIELD FILE: an integer field of a one-line JSON object
  sed -n "s/.*\"$1\": *\([0-9]*\).*/\1/p" "$2"
}

build=("$ROMLIB" build -q --json -i "$IN" -o "$LIB" --signing-key "$WORK/k.sec" --avg-chunk "$AVG_CHUNK")
chunks=0
declare -a ADD
printf 'romlib scale benchmark: %s steps of %s MiB at --avg-chunk %s, %s build, %s, %s cores\n\n' \
  "$STEPS" "$STEP_MIB" "$AVG_CHUNK" "$HOST_DIR" "$(date -u +%F)" "$(nproc)"
printf '| step | games | chunks | add s | builder RSS MiB | no-op s | cat ms | index.db MiB | index B/chunk |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for step in $(seq 1 "$STEPS"); do
  make_game "$step"
  measure "${build[@]}"
  add=$SECS add_rss=$RSS_KIB
  ADD[step]=$add
  new=$(json_field new_chunks "$WORK/out")
  chunks=$((chunks + new))
  measure "${build[@]}"
  noop=$SECS
  [ "$(json_field new_chunks "$WORK/out")" = 0 ] || { echo "scale.sh: the no-op rebuild stored chunks" >&2; exit 1; }
  measure "$ROMLIB" cat -g game-001 -r "$LIB" readme.txt
  cat_ms=$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 1000 }')
  grep -q 'game 1 of the scale benchmark' "$WORK/out" || { echo "scale.sh: cat returned the wrong bytes" >&2; exit 1; }
  index=$(stat -c %s "$LIB/index.db")
  printf '| %d | %d | %d | %s | %.0f | %s | %s | %.1f | %.0f |\n' "$step" "$step" "$chunks" "$add" \
    "$(awk -v k="$add_rss" 'BEGIN { print k / 1024 }')" "$noop" "$cat_ms" \
    "$(awk -v b="$index" 'BEGIN { print b / 1048576 }')" "$(awk -v b="$index" -v c="$chunks" 'BEGIN { print b / c }')"
done
echo
awk -v a="${ADD[2]}" -v b="${ADD[$STEPS]}" -v n="$STEPS" -v m="$STEP_MIB" 'BEGIN {
  printf "- adding %s MiB at step %d costs %.2fx what it costs at step 2 (target: at most 1.3x)\n", m, n, (a > 0 ? b / a : 0) }'
# 10 TB at the default 32 KiB average chunk: the index at the measured bytes per chunk.
awk -v b="$index" -v c="$chunks" 'BEGIN {
  per = b / c; n = 10e12 / 32768
  printf "- projection: 10 TB at 32 KiB chunks is %.0f million chunks; at %.0f index bytes per chunk, an index of %.1f GB\n", n / 1e6, per, n * per / 1e9 }'
