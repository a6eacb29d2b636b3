#!/usr/bin/env bash
# A library that changes, beside borg: build a corpus, remove a third of its games, prune;
# then the same at the scale bench's size (about a million chunks). For each it prints:
#
#   - the library's bytes before the removal, after the prune, and for a library built
#     from scratch from the games left (the goal: the pruned one within 5% of it)
#   - the prune's seconds, peak RSS and throughput on the bytes it copied, beside the
#     build's throughput on its input (the goal: prune at least as fast per byte)
#   - borg on the same games: one archive per game, `borg delete` of the same third,
#     then `borg compact`: repository bytes and seconds
#
#   bash bench/lifecycle.sh           the real-data corpus (shared/corpus/make-corpus.sh,
#                                     built if absent) and 8 games of 128 MiB at 1 KiB
#                                     chunks (about 1.1 million chunks)
#   bash bench/lifecycle.sh --smoke   a small generated corpus and 3 games of 2 MiB (CI runs
#                                     it so the script cannot rot)
#
# Environment: WORK (default /tmp/romlib-lifecycle, removed first), CORPUS (a folder
# holding games/), CORPUS_SCRIPT, SCALE_GAMES, SCALE_MIB, ROMLIB_BENCH_HOST_PROFILE=dev.
# Needs /usr/bin/time, openssl and borg (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SMOKE=0
[ "${1:-}" = --smoke ] && SMOKE=1
if [ $SMOKE = 1 ]; then SCALE_GAMES=${SCALE_GAMES:-3}; SCALE_MIB=${SCALE_MIB:-2}
else SCALE_GAMES=${SCALE_GAMES:-8}; SCALE_MIB=${SCALE_MIB:-128}; fi
WORK=${WORK:-/tmp/romlib-lifecycle}
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v openssl >/dev/null || need+=(openssl)
command -v borg >/dev/null || need+=(borgbackup)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host -p romlib-tests --bins
TD=${CARGO_TARGET_DIR:-target}
ROMLIB=$(cd "$TD/$HOST_DIR" && pwd)/romlib
GEN_CORPUS=$(cd "$TD/$HOST_DIR" && pwd)/gen-corpus
rm -rf "$WORK"
mkdir -p "$WORK"
export ROMLIB_CONFIG_DIR="$WORK/config"
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null
export BORG_BASE_DIR=$WORK/borg-base BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes BORG_RELOCATED_REPO_ACCESS_IS_OK=yes

if [ $SMOKE = 1 ]; then
  CORPUS=${CORPUS:-$WORK/corpus}
  [ -d "$CORPUS/games" ] || "$GEN_CORPUS" 12 "$CORPUS/games" >/dev/null 2>&1
else
  CORPUS=${CORPUS:-/tmp/romlib-corpus}
  CORPUS_SCRIPT=${CORPUS_SCRIPT:-$ROOT/../shared/corpus/make-corpus.sh}
  if [ ! -d "$CORPUS/games" ]; then
    [ -f "$CORPUS_SCRIPT" ] || { echo "lifecycle.sh: $CORPUS_SCRIPT not found: set CORPUS" >&2; exit 1; }
    bash "$CORPUS_SCRIPT" "$CORPUS" >&2
  fi
fi

# Wall seconds (3 decimals) and peak RSS (MiB) of a command into $SECS and $RSS; its
# standard output into $WORK/out.
measure() {
  local t0 t1
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" \
    || { cat "$WORK/err" >&2; exit 1; }
  t1=$(date +%s%N)
  SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  RSS=$(awk '{ printf "%.0f", $1 / 1024 }' "$WORK/time")
}
bytes_of() { { find "$@" -type f -printf '%s\n' 2>/dev/null || true; } | awk '{ s += $1 } END { print s + 0 }'; }
# A library's bytes: everything but the builder's input cache and lock.
lib_bytes() { bytes_of "$1/packs" "$1/games" "$1/runs" "$1/dicts" "$1/keys" "$1/index.db" "$1/catalog.txt" "$1/snapshot.txt"; }
json_field() { grep -o "\"$1\":[0-9.]*" "$2" | head -1 | cut -d: -f2; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
rate() { awk -v b="$1" -v s="$2" 'BEGIN { s = (s > 0.001 ? s : 0.001); printf "%.0f", b / 1048576 / s }'; }

# Runs the whole cycle on input folder $1 (one folder per game) at average chunk $2 and
# prints one table row labelled $3.
cycle() {
  local in=$1 avg=$2 label=$3 w=$WORK/run-$3
  mkdir -p "$w"
  local games=() g i=0
  while IFS= read -r g; do games+=("$g"); done < <(ls "$in")
  local gone=() left=()
  for g in "${games[@]}"; do
    if [ $((i % 3)) = 0 ]; then gone+=("$g"); else left+=("$g"); fi
    i=$((i + 1))
  done
  local input; input=$(bytes_of "$in")
  local build=("$ROMLIB" build -q --json -i "$in" -o "$w/lib" --signing-key "$WORK/k.sec" --avg-chunk "$avg")
  measure "${build[@]}"
  local build_s=$SECS build_rss=$RSS
  local before; before=$(lib_bytes "$w/lib")
  local rm=("$ROMLIB" remove -q -r "$w/lib" --signing-key "$WORK/k.sec")
  for g in "${gone[@]}"; do rm+=(-g "$g"); done
  "${rm[@]}"
  "$ROMLIB" prune -r "$w/lib" --dry-run --json >"$w/dry.json"
  measure "$ROMLIB" prune -r "$w/lib" --signing-key "$WORK/k.sec" --json
  cp "$WORK/out" "$w/prune.json"
  local prune_s=$SECS prune_rss=$RSS copied; copied=$(json_field bytes_copied "$w/prune.json")
  local after; after=$(lib_bytes "$w/lib")
  "$ROMLIB" verify -q -r "$w/lib" >/dev/null || { echo "lifecycle.sh: the pruned library does not verify" >&2; exit 1; }
  mkdir -p "$w/rest"
  for g in "${left[@]}"; do ln -s "$in/$g" "$w/rest/$g"; done
  "$ROMLIB" build -q -i "$w/rest" -o "$w/scratch" --signing-key "$WORK/k.sec" --avg-chunk "$avg" --follow-symlinks
  local scratch; scratch=$(lib_bytes "$w/scratch")
  # borg: an archive per game, the same third deleted, then compacted.
  local bits; bits=$(awk -v a="$avg" 'BEGIN { printf "%d", log(a) / log(2) + 0.5 }')
  borg init -e none "$w/borg"
  for g in "${games[@]}"; do
    (cd "$in" && borg create --compression zstd,3 --chunker-params "buzhash,$((bits - 2)),$((bits + 4)),$bits,4095" "$w/borg::$g" "$g")
  done
  local borg_before; borg_before=$(bytes_of "$w/borg")
  local t0; t0=$(date +%s%N)
  for g in "${gone[@]}"; do borg delete "$w/borg::$g"; done
  borg compact "$w/borg"
  local borg_s; borg_s=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  local borg_after; borg_after=$(bytes_of "$w/borg")
  printf '| %s | %d of %d | %s | %s | %s | %s (%+.1f%%) | %s s, %s MiB | %s MiB/s | %s MiB/s | %s -> %s, %s s |\n' \
    "$label" "${#gone[@]}" "${#games[@]}" "$(mib "$input")" "$(mib "$before")" "$(mib "$after")" "$(mib "$scratch")" \
    "$(awk -v a="$after" -v s="$scratch" 'BEGIN { print (a - s) * 100 / s }')" \
    "$prune_s" "$prune_rss" "$(rate "$copied" "$prune_s")" "$(rate "$input" "$build_s")" \
    "$(mib "$borg_before")" "$(mib "$borg_after")" "$borg_s"
  echo "$label: build ${build_s} s (${build_rss} MiB); dry run said $(json_field reclaimed_bytes "$w/dry.json") bytes, the prune gave back $((before - after)) (library bytes; $(json_field reclaimed_bytes "$w/prune.json") of packs), copying $copied" >&2
}

echo "| data | games removed | input MiB | library MiB | after prune MiB | from scratch MiB (pruned vs scratch) | prune | prune copies at | build reads at | borg repo MiB, delete + compact |"
echo "|---|---|---:|---:|---:|---:|---|---:|---:|---|"
cycle "$CORPUS/games" 32768 corpus

# The scale bench's games: AES-CTR keystreams (incompressible, no chunk shared), 1 KiB
# chunks.
mkdir -p "$WORK/scale-in"
for i in $(seq 1 "$SCALE_GAMES"); do
  d=$WORK/scale-in/game-$(printf '%03d' "$i")
  mkdir -p "$d"
  head -c $((SCALE_MIB << 20)) /dev/zero \
    | openssl enc -aes-128-ctr -nosalt -K "$(printf '%032x' "$i")" -iv "$(printf '%032x' 0)" >"$d/data.bin"
done
cycle "$WORK/scale-in" 1024 scale
