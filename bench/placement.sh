#!/usr/bin/env bash
# Installs under a handheld layout: what placing a game flat in its system folder, or an
# arcade set as a deterministic zip, costs against the same install into a folder of its
# own, beside the peers a user has (cp of the file, casync extract of the same input); and
# what `romlib-device adopt` costs against hashing the same card with sha1sum and sha256sum.
#
#   bash bench/placement.sh            a 64 MiB one-file game, a 32 MiB set of 8 roms
#   bash bench/placement.sh --smoke    4 MiB and 2 MiB (the script cannot rot)
#
# The data is generated (python3, seeded, random bytes: nothing to compress). Timings are
# hyperfine's (warm page cache, best of its runs); the release build of romlib-device is
# measured (ROMLIB_BENCH_HOST_PROFILE=dev: the dev build's, for smoke runs).
# Environment: WORK (default /tmp/romlib-placement, removed first), RUNS (default 7).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then GAME_MIB=4 SET_MIB=2 RUNS=${RUNS:-2}; else GAME_MIB=64 SET_MIB=32; fi
RUNS=${RUNS:-7}
WORK=${WORK:-/tmp/romlib-placement}
need=()
command -v python3 >/dev/null || need+=(python3)
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v casync >/dev/null || need+=(casync)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host -p romlib-device
TD=${CARGO_TARGET_DIR:-target}
BIN=$(cd "$TD/$HOST_DIR" && pwd)
rm -rf "$WORK"
mkdir -p "$WORK"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
cd "$WORK"
python3 - "$GAME_MIB" "$SET_MIB" <<'PY'
import os, random, sys, zipfile
game_mib, set_mib = int(sys.argv[1]), int(sys.argv[2])
random.seed(7)
os.makedirs("in/gb", exist_ok=True)
os.makedirs("in/mame", exist_ok=True)
with open("in/gb/Big (World).gb", "wb") as f:
    f.write(random.randbytes(game_mib << 20))
with zipfile.ZipFile("in/mame/set.zip", "w", zipfile.ZIP_STORED) as z:
    for i in range(8):
        z.writestr(f"rom{i}.bin", random.randbytes((set_mib << 20) // 8))
PY
"$BIN/romlib" keygen --secret-key k.sec --public-key k.pub >/dev/null
"$BIN/romlib" build -q -i in -o lib --signing-key k.sec
casync make --store=store idx.caidx in >/dev/null
DEV="$BIN/romlib-device"
K=(--trusted-key "$WORK/k.pub")
q() { printf '%q ' "$@"; }
echo "== installs (${GAME_MIB} MiB game, ${SET_MIB} MiB set of 8 roms), $RUNS runs each"
hyperfine -N --runs "$RUNS" --warmup 1 --style basic --export-markdown install.md \
  --prepare "rm -rf $WORK/d" \
  -n "romlib-device: game into a folder" "$(q "$DEV" install -g "Big (World)" -r lib --install-dir "$WORK/d" "${K[@]}")" \
  -n "romlib-device: game flat (--layout muos)" "$(q "$DEV" install -g "Big (World)" -r lib --install-dir "$WORK/d" --layout muos "${K[@]}")" \
  -n "romlib-device: set into a folder" "$(q "$DEV" install -g set -r lib --install-dir "$WORK/d" "${K[@]}")" \
  -n "romlib-device: set as set.zip (--layout knulli)" "$(q "$DEV" install -g set -r lib --install-dir "$WORK/d" --layout knulli "${K[@]}")" \
  -n "casync extract (game and set)" "$(q casync extract --store=store idx.caidx "$WORK/d")" \
  -n "cp of the game file" "$(q cp "in/gb/Big (World).gb" "$WORK/d")" >/dev/null
cat install.md
# A card filled by hand with what the library holds: the game, and the set as romlib
# installs it (a zip adopt accepts only byte for byte).
mkdir -p card/gb card/mame
cp "in/gb/Big (World).gb" card/gb/
"$DEV" install -g set -r lib --install-dir "$WORK/z" --layout knulli "${K[@]}" >/dev/null
cp z/mame/set.zip card/mame/
echo
echo "== adopt of that card against hashing it"
hyperfine -N --runs "$RUNS" --warmup 1 --style basic --export-markdown adopt.md \
  --prepare "rm -rf $WORK/card/gb/.romlib-games $WORK/card/mame/.romlib-games" \
  -n "romlib-device adopt (2 games)" "$(q "$DEV" adopt -r lib --install-dir "$WORK/card" --layout knulli "${K[@]}")" \
  -n "sha1sum of the same files" "$(q sh -c "sha1sum '$WORK/card/gb/Big (World).gb' $WORK/card/mame/set.zip")" \
  -n "sha256sum of the same files" "$(q sh -c "sha256sum '$WORK/card/gb/Big (World).gb' $WORK/card/mame/set.zip")" >/dev/null
cat adopt.md
