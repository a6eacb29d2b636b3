#!/usr/bin/env bash
# A library of many small games (a full cartridge-era set is about 100,000): the seconds
# and peak RSS of the first build, a no-op rebuild, adding one game, `romlib list-games`,
# `romlib-device list-games` (a folder and over HTTP from `romlib serve`), and
# `romlib verify`, with the size of games/ (two small files per game).
#
#   bash bench/games.sh            100,000 games of 264 bytes (about 3 minutes here)
#   bash bench/games.sh --smoke    500 games (CI runs it so the script cannot rot)
#
# Environment: GAMES, LAYOUT (game-folders, the default: a folder per game; or
# system-folders: every game one file in gb/, as collections keep cartridge sets),
# GAMES_LAYOUT (flat, the default, or sharded: the layout of the library's games/), WORK
# (default /tmp/romlib-games, removed first),
# ROMLIB_BENCH_HOST_PROFILE=dev (the dev build's binaries, for smoke runs). Needs
# /usr/bin/time (Debian's `time`) and python3 (both installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then GAMES=${GAMES:-500}; else GAMES=${GAMES:-100000}; fi
WORK=${WORK:-/tmp/romlib-games}
LAYOUT=${LAYOUT:-game-folders}
GAMES_LAYOUT=${GAMES_LAYOUT:-flat}
need=()
[ -x /usr/bin/time ] || need+=(time)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host -p romlib-device
TD=${CARGO_TARGET_DIR:-target}
BIN=$(cd "$TD/$HOST_DIR" && pwd)
ROMLIB=$BIN/romlib DEVICE=$BIN/romlib-device
rm -rf "$WORK"
mkdir -p "$WORK"
IN=$WORK/in LIB=$WORK/lib
# Game i: one 264-byte file, distinct per game (deterministic).
python3 - "$IN" "$GAMES" "$LAYOUT" <<'PY'
import os, sys, hashlib
root, n, layout = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if layout == "system-folders":
    os.makedirs(os.path.join(root, "gb"))
for i in range(n):
    data = hashlib.sha256(b"%d" % i).digest() * 8 + i.to_bytes(8, "little")
    if layout == "system-folders":
        path = os.path.join(root, "gb", "g%06d.gb" % i)
    else:
        d = os.path.join(root, "g%06d" % i)
        os.makedirs(d)
        path = os.path.join(d, "rom.bin")
    with open(path, "wb") as f:
        f.write(data)
PY
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null

row() {  # WHAT COMMAND...: one table row of wall seconds and peak RSS
  local what=$1 t0 t1
  shift
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$WORK/time" "$@" >"$WORK/out" 2>"$WORK/err" \
    || { cat "$WORK/err" >&2; echo "games.sh: $what failed" >&2; exit 1; }
  t1=$(date +%s%N)
  printf '| %s | %s | %.0f |\n' "$what" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')" \
    "$(awk -v k="$(tail -1 "$WORK/time")" 'BEGIN { print k / 1024 }')"
}
listed() {  # the number of games a list-games printed, which must be $1
  local n
  n=$(grep -c . "$WORK/out")
  [ "$n" -ge "$1" ] || { echo "games.sh: listed $n games, expected $1" >&2; exit 1; }
}

build=("$ROMLIB" build -q -i "$IN" -o "$LIB" --signing-key "$WORK/k.sec" --games-layout "$GAMES_LAYOUT")
printf 'romlib many-games benchmark: %s games (%s, games/ %s), %s build, %s, %s cores\n\n' "$GAMES" "$LAYOUT" "$GAMES_LAYOUT" "$HOST_DIR" "$(date -u +%F)" "$(nproc)"
printf '| command | s | peak RSS MiB |\n|---|---:|---:|\n'
row "build, $GAMES new games" "${build[@]}"
row "build, nothing new" "${build[@]}"
if [ "$LAYOUT" = system-folders ]; then
  printf 'one more game\n' >"$IN/gb/zz-new.gb"
else
  mkdir -p "$IN/zz-new" && printf 'one more game\n' >"$IN/zz-new/readme.txt"
fi
row "build, one new game" "${build[@]}"
row "romlib list-games" "$ROMLIB" list-games -r "$LIB"
listed $((GAMES + 1))
row "romlib-device list-games (folder)" "$DEVICE" list-games -r "$LIB" --trusted-key "$WORK/k.pub"
listed $((GAMES + 1))
"$ROMLIB" serve -r "$LIB" --listen 127.0.0.1:0 >"$WORK/serve.out" 2>&1 &
serve=$!
trap 'kill $serve 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q 'http://' "$WORK/serve.out" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*' "$WORK/serve.out" | head -1)
row "romlib-device list-games (HTTP)" "$DEVICE" list-games --from "$url" --trusted-key "$WORK/k.pub"
listed $((GAMES + 1))
row "romlib verify" "$ROMLIB" verify -q -r "$LIB" --trusted-key "$WORK/k.pub"
echo
printf -- '- games/: %s files, %s on disk\n' "$(find "$LIB/games" -type f | wc -l)" "$(du -sh "$LIB/games" | cut -f1)"
