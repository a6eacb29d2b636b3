#!/usr/bin/env bash
# A library of many games on an exFAT card, with games/ flat and sharded (SPEC section 1):
# the seconds to copy the library onto the card (what a user does to fill a handheld's
# card), then `romlib-device list-games` and the install of one game from the card, and
# the conversion of the library from one layout to the other. exFAT has no folder index:
# every file created in a folder is checked against every name already there.
#
#   bash bench/games-dir.sh            20,000 games (about 5 minutes here)
#   GAMES=2000 bash bench/games-dir.sh
#
# Not run by CI: it needs root (a loop device) and FUSE. The card is a 4 GiB exFAT image
# mounted with exfat-fuse (the kernel's exfat driver, where present, scans folders the same
# way). Environment: GAMES, WORK (default /tmp/romlib-games-dir, removed first). Installs
# exfatprogs, exfat-fuse, python3 and Debian's `time` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
GAMES=${GAMES:-20000}
WORK=${WORK:-/tmp/romlib-games-dir}
[ "$(id -u)" = 0 ] || { echo "games-dir.sh: needs root (a loop device)" >&2; exit 1; }
need=()
command -v mkfs.exfat >/dev/null || need+=(exfatprogs)
command -v mount.exfat-fuse >/dev/null || need+=(exfat-fuse)
command -v python3 >/dev/null || need+=(python3)
[ -x /usr/bin/time ] || need+=(time)
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
mkdir -p "$WORK/card"
loop=""
cleanup() {
  mountpoint -q "$WORK/card" && umount "$WORK/card"
  [ -n "$loop" ] && losetup -d "$loop"
  rm -f "$WORK/card.img"
}
trap cleanup EXIT
IN=$WORK/in
# Game i: one small file, distinct per game, titled as a DAT names games.
python3 - "$IN" "$GAMES" <<'PY'
import os, sys, hashlib
root, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    d = os.path.join(root, "Game Title %06d (USA, Europe) (Rev 1)" % i)
    os.makedirs(d)
    with open(os.path.join(d, "rom.bin"), "wb") as f:
        f.write(hashlib.sha256(b"%d" % i).digest() * 8)
PY
export ROMLIB_CONFIG_DIR="$WORK/config"
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null
secs() {  # COMMAND...: wall seconds, the command's output to $WORK/out
  local t0 t1
  t0=$(date +%s%N)
  "$@" >"$WORK/out" 2>"$WORK/err" || { cat "$WORK/err" >&2; echo "games-dir.sh: $* failed" >&2; exit 1; }
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
build() { "$ROMLIB" build -q -i "$IN" -o "$1" --signing-key "$WORK/k.sec" "${@:2}"; }
build "$WORK/flat"
cp -a "$WORK/flat" "$WORK/sharded"
to_sharded=$(secs build "$WORK/sharded" --games-layout sharded)
cp -a "$WORK/sharded" "$WORK/back"
to_flat=$(secs build "$WORK/back" --games-layout flat)
rm -rf "$WORK/back"
last=$(printf 'Game Title %06d (USA, Europe) (Rev 1)' $((GAMES - 1)))

printf 'romlib games/ layouts on an exFAT card: %s games, %s build, %s, %s cores\n\n' \
  "$GAMES" "$HOST_DIR" "$(date -u +%F)" "$(nproc)"
printf '| games/ | entries in its largest folder | copy onto the card (s) | list-games from the card (s) | install one game from the card (s, best of 3) |\n|---|---:|---:|---:|---:|\n'
for layout in flat sharded; do
  truncate -s 4G "$WORK/card.img"
  mkfs.exfat -q "$WORK/card.img" >/dev/null 2>&1 || mkfs.exfat "$WORK/card.img" >/dev/null
  loop=$(losetup -f --show "$WORK/card.img")
  mount.exfat-fuse -o big_writes "$loop" "$WORK/card" 2>/dev/null || mount.exfat-fuse "$loop" "$WORK/card"
  largest=$(find "$WORK/$layout/games" -type d -exec sh -c 'ls -A "$1" | wc -l' _ {} \; | sort -n | tail -1)
  copy=$(secs sh -c 'cp -r "$1" "$2" && sync' _ "$WORK/$layout" "$WORK/card/lib")
  list=$(secs "$DEVICE" list-games -r "$WORK/card/lib" --trusted-key "$WORK/k.pub")
  n=$(grep -c . "$WORK/out")
  [ "$n" -ge "$GAMES" ] || { echo "games-dir.sh: listed $n games" >&2; exit 1; }
  inst=
  for _ in 1 2 3; do  # the best of 3 (the first after a copy waits for the FUSE driver)
    rm -rf "$WORK/card/roms"
    t=$(secs "$DEVICE" install -r "$WORK/card/lib" -g "$last" --install-dir "$WORK/card/roms" --trusted-key "$WORK/k.pub")
    inst=$(awk -v a="$inst" -v b="$t" 'BEGIN { print (a == "" || b < a) ? b : a }')
  done
  printf '| %s | %s | %s | %s | %s |\n' "$layout" "$largest" "$copy" "$list" "$inst"
  umount "$WORK/card"
  losetup -d "$loop"
  loop=""
  rm -f "$WORK/card.img"
done
echo
printf -- '- conversion on the host (ext4): flat to sharded %s s, back to flat %s s\n' "$to_sharded" "$to_flat"
printf -- '- FAT32 holds at most 65,536 entries in a folder; a long name such as these (48 characters) takes 5, so a flat games/ of %s games (%s files) needs about %s\n' \
  "$GAMES" $((GAMES * 2)) $((GAMES * 2 * 5))
