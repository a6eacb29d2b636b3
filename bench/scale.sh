#!/usr/bin/env bash
# How romlib's costs grow with the library, side by side with borg: a library grows by one
# game of STEP_MIB incompressible MiB per step (cut at AVG_CHUNK bytes, 1 KiB by default,
# to reach large chunk counts with little data), built each time from an input folder that
# holds every game so far (as a collector's folder does). Per step it prints:
#
#   - add s:         `romlib build` of the input with one new game
#   - borg s:        `borg create` of the same input folder into a repository that holds
#                    an archive per earlier step (zstd,3, buzhash at the same average chunk
#                    size; borg's files cache skips the unchanged games, as romlib's input
#                    cache does)
#   - builder RSS:   the romlib build's peak resident memory (and borg's)
#   - no-op s:       the same build again, with nothing new
#   - small add s:   `romlib build` after adding a SMALL_MIB game (default 4 MiB): what an
#                    incremental build of a little new data costs as the library grows
#   - cat ms:        `romlib cat` of one small file of the first game
#   - index B/chunk: the index's bytes on disk (allocated blocks of index.db and of the
#                    sorted runs and their Bloom filters in runs/) over the chunks stored
#
# then how adding at the last step compares with adding at step 2 (the large and the small
# game, and borg's), and a projection of the index to a 10 TB library at the default
# 32 KiB chunks.
#
#   bash bench/scale.sh            10 steps of 128 MiB at 1 KiB chunks: about 1.1 million
#                                  chunks (about 20 minutes here)
#   bash bench/scale.sh --smoke    3 steps of 8 MiB (CI runs it so the script cannot rot)
#
# Environment: STEPS, STEP_MIB, SMALL_MIB, AVG_CHUNK, WORK (default /tmp/romlib-scale,
# removed first), ROMLIB_BENCH_HOST_PROFILE=dev (the dev build's romlib, for smoke runs).
# Needs /usr/bin/time (Debian's `time`), openssl (the generated data: AES-CTR keystreams)
# and borg (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then
  STEPS=${STEPS:-3}; STEP_MIB=${STEP_MIB:-8}; SMALL_MIB=${SMALL_MIB:-1}
else
  STEPS=${STEPS:-10}; STEP_MIB=${STEP_MIB:-128}; SMALL_MIB=${SMALL_MIB:-4}
fi
AVG_CHUNK=${AVG_CHUNK:-1024}
WORK=${WORK:-/tmp/romlib-scale}
[ "$STEPS" -ge 2 ] || { echo "scale.sh: STEPS must be at least 2" >&2; exit 2; }
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
command -v borg >/dev/null || need+=(borgbackup)
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
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null

# One game: MIB (default STEP_MIB) of AES-CTR keystream keyed by KEY (deterministic,
# incompressible, no chunk shared with another game) and a small text file.
make_game() {  # NAME KEY [MIB]
  local dir=$IN/$1
  mkdir -p "$dir"
  head -c $((${3:-$STEP_MIB} << 20)) /dev/zero \
    | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$2")" -iv "$(printf '%032x' 0)" >"$dir/data.bin"
  printf 'game %s of the scale benchmark\n' "$2" >"$dir/readme.txt"
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
# borg at the same average chunk size: 2^bits bytes.
bits=$(awk -v a="$AVG_CHUNK" 'BEGIN { printf "%d", log(a) / log(2) + 0.5 }')
export BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes
BORG_REPO=$WORK/borg
borg init -e none "$BORG_REPO" >/dev/null 2>&1
borg_create=(borg create --compression zstd,3 --chunker-params "buzhash,$((bits > 6 ? bits - 2 : 6)),$((bits + 6)),$bits,4095")
chunks=0
declare -a ADD SMALL BORG
printf 'romlib scale benchmark: %s steps of %s MiB at --avg-chunk %s, %s build, %s, %s cores; %s\n\n' \
  "$STEPS" "$STEP_MIB" "$AVG_CHUNK" "$HOST_DIR" "$(date -u +%F)" "$(nproc)" "$(borg --version)"
printf '| step | chunks | add s | borg s | RSS MiB | borg RSS MiB | no-op s | small add s | cat ms | index MiB | index B/chunk |\n'
printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for step in $(seq 1 "$STEPS"); do
  make_game "game-$(printf '%03d' "$step")" "$step"
  measure "${build[@]}"
  add=$SECS add_rss=$RSS_KIB
  ADD[step]=$add
  new=$(json_field new_chunks "$WORK/out")
  chunks=$((chunks + new))
  measure "${borg_create[@]}" "$BORG_REPO::step-$step" "$IN"
  BORG[step]=$SECS
  borg_s=$SECS borg_rss=$RSS_KIB
  measure "${build[@]}"
  noop=$SECS
  [ "$(json_field new_chunks "$WORK/out")" = 0 ] || { echo "scale.sh: the no-op rebuild stored chunks" >&2; exit 1; }
  make_game "small-$(printf '%03d' "$step")" $((1000 + step)) "$SMALL_MIB"
  measure "${build[@]}"
  small=$SECS
  SMALL[step]=$small
  chunks=$((chunks + $(json_field new_chunks "$WORK/out")))
  measure "$ROMLIB" cat -g game-001 -r "$LIB" readme.txt
  cat_ms=$(awk -v s="$SECS" 'BEGIN { printf "%d", s * 1000 }')
  grep -q 'game 1 of the scale benchmark' "$WORK/out" || { echo "scale.sh: cat returned the wrong bytes" >&2; exit 1; }
  # On disk: redb grows its file in large steps, and a file system holds it sparse.
  # Runs and their Bloom filters (runs held in memory have none on disk).
  index=$(find "$LIB/index.db" "$LIB/runs" -maxdepth 1 -type f \( -name index.db -o -name '*.run' -o -name '*.bloom' \) \
    -exec stat -c '%b %B' {} + | awk '{ s += $1 * $2 } END { print s }')
  printf '| %d | %d | %s | %s | %.0f | %.0f | %s | %s | %s | %.1f | %.0f |\n' "$step" "$chunks" "$add" "$borg_s" \
    "$(awk -v k="$add_rss" 'BEGIN { print k / 1024 }')" "$(awk -v k="$borg_rss" 'BEGIN { print k / 1024 }')" \
    "$noop" "$small" "$cat_ms" \
    "$(awk -v b="$index" 'BEGIN { print b / 1048576 }')" "$(awk -v b="$index" -v c="$chunks" 'BEGIN { print b / c }')"
done
echo
ratio() {  # WHAT FIRST LAST
  awk -v w="$1" -v a="$2" -v b="$3" -v n="$STEPS" 'BEGIN {
    printf "- %s at step %d costs %.2fx what it costs at step 2\n", w, n, (a > 0 ? b / a : 0) }'
}
ratio "romlib: adding $STEP_MIB MiB (target: at most 1.3x)" "${ADD[2]}" "${ADD[$STEPS]}"
ratio "borg: adding $STEP_MIB MiB" "${BORG[2]}" "${BORG[$STEPS]}"
ratio "romlib: adding $SMALL_MIB MiB" "${SMALL[2]}" "${SMALL[$STEPS]}"
# 10 TB at the default 32 KiB average chunk: the index at the measured bytes per chunk.
awk -v b="$index" -v c="$chunks" 'BEGIN {
  per = b / c; n = 10e12 / 32768
  printf "- projection: 10 TB at 32 KiB chunks is %.0f million chunks; at %.0f index bytes per chunk, an index of %.1f GB\n", n / 1e6, per, n * per / 1e9 }'
