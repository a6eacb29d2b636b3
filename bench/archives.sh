#!/usr/bin/env bash
# Zipped arcade-style sets: what a parent/clone collection costs stored by romlib (members
# read out of the zips and deduplicated) against the same zips stored as they are (each zip
# one opaque file, as romlib did before archives were read, and as any file store would),
# and against igir/RomVault-style torrentzips (deterministic deflate -9 zips, members
# sorted) in the non-merged (every set complete) and split (a clone holds only its own
# roms) forms collectors keep; then the build's throughput on the zips beside unzip's.
#
#   bash bench/archives.sh            40 parents with 3 clones each (about 1 minute here)
#   bash bench/archives.sh --smoke    4 parents (CI runs it so the script cannot rot)
#
# The set is generated (python3, seeded): each parent has 6 roms of 64-512 KiB (random
# bytes with runs of padding, so deflate saves about a third, as on real ROM sets); each
# clone shares 4 of its parent's roms and has 2 of its own. The input's parents are
# deflated at level 6 and its clones at level 9, as a collection gathered from several
# sources is; zips that one tool made at one level hold byte-identical deflate streams
# for shared roms, which any chunk store finds (the second opaque row shows it).
#
# Environment: PARENTS, WORK (default /tmp/romlib-archives, removed first),
# ROMLIB_BENCH_HOST_PROFILE=dev (the dev build's binaries, for smoke runs). Needs
# python3 and unzip (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = --smoke ]; then PARENTS=${PARENTS:-4}; else PARENTS=${PARENTS:-40}; fi
WORK=${WORK:-/tmp/romlib-archives}
need=()
command -v python3 >/dev/null || need+=(python3)
command -v unzip >/dev/null || need+=(unzip)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host
TD=${CARGO_TARGET_DIR:-target}
ROMLIB=$(cd "$TD/$HOST_DIR" && pwd)/romlib
rm -rf "$WORK"
mkdir -p "$WORK"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$ROMLIB" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null

# The set, three ways: zips as a dumper made them (deflate -6, members in DAT order) in
# arcade/, non-merged and split torrentzips beside them.
python3 - "$WORK" "$PARENTS" <<'PY'
import os, random, sys, zipfile, zlib
work, parents = sys.argv[1], int(sys.argv[2])
rng = random.Random(30)
def rom():
    n = rng.randrange(64, 513) * 1024
    out = bytearray()
    while len(out) < n:
        if rng.random() < 0.35:
            out += bytes([rng.choice((0, 0xFF))]) * rng.randrange(512, 8192)
        else:
            out += rng.randbytes(rng.randrange(1024, 16384))
    return bytes(out[:n])
sets = {}
for p in range(parents):
    roms = {f"p{p:03d}.{i}": rom() for i in range(6)}
    sets[f"game{p:03d}"] = (None, roms)
    for c in range(3):
        shared = dict(list(roms.items())[:4])
        own = {f"c{p:03d}{c}.{i}": rom() for i in range(2)}
        sets[f"game{p:03d}c{c}"] = (f"game{p:03d}", {**shared, **own})
def write(path, members, level, torrent):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    names = sorted(members, key=str.lower) if torrent else list(members)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as z:
        for n in names:
            zi = zipfile.ZipInfo(n, date_time=(1996, 12, 24, 23, 32, 0))
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, members[n], compresslevel=level)
for name, (parent, members) in sets.items():
    write(f"{work}/in/arcade/{name}.zip", members, 6 if parent is None else 9, False)
    write(f"{work}/torrent-nonmerged/{name}.zip", members, 9, True)
    own = members if parent is None else {k: v for k, v in members.items() if k not in sets[parent][1]}
    write(f"{work}/torrent-split/{name}.zip", own, 9, True)
    # The same zips as opaque files of game folders; and zips all made at one level.
    write(f"{work}/opaque/{name}/{name}.zip", members, 6 if parent is None else 9, False)
    write(f"{work}/opaque-one-tool/{name}/{name}.zip", members, 6, False)
PY

bytes_of() { find "$@" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
lib_bytes() { bytes_of "$1/packs" "$1/games" "$1/index.db" "$1/runs"; }
secs() {  # COMMAND...: wall seconds
  local t0 t1
  t0=$(date +%s%N)
  "$@" >/dev/null
  t1=$(date +%s%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'
}
build=("$ROMLIB" build -q --signing-key "$WORK/k.sec")
t_romlib=$(secs "${build[@]}" -i "$WORK/in" -o "$WORK/lib")
"${build[@]}" -i "$WORK/opaque" -o "$WORK/lib-opaque"
"${build[@]}" -i "$WORK/opaque-one-tool" -o "$WORK/lib-opaque-one-tool"
unzip_all() { for z in "$WORK"/in/arcade/*.zip; do unzip -p "$z" >/dev/null; done; }
t_unzip=$(secs unzip_all)
members=$(python3 -c "import sys,zipfile,glob; print(sum(i.file_size for z in glob.glob(sys.argv[1]+'/*.zip') for i in zipfile.ZipFile(z).infolist()))" "$WORK/in/arcade")
zips=$(bytes_of "$WORK/in/arcade")
lib=$(lib_bytes "$WORK/lib")
opaque=$(lib_bytes "$WORK/lib-opaque")
opaque1=$(lib_bytes "$WORK/lib-opaque-one-tool")
tz_nm=$(bytes_of "$WORK/torrent-nonmerged")
tz_split=$(bytes_of "$WORK/torrent-split")
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

sets=$((PARENTS * 4))
printf 'romlib archives benchmark: %s zipped sets (%s parents, 3 clones each), %s MiB of members, %s build, %s, %s cores\n\n' \
  "$sets" "$PARENTS" "$(mib "$members")" "$HOST_DIR" "$(date -u +%F)" "$(nproc)"
printf '| stored as | MiB | romlib library / this |\n|---|---:|---:|\n'
printf '| romlib, members read out of the zips | %s | 1.00x |\n' "$(mib "$lib")"
printf '| romlib, the zips as opaque files | %s | %s |\n' "$(mib "$opaque")" "$(x "$lib" "$opaque")"
printf '| romlib, opaque zips all made by one tool at one level | %s | %s |\n' "$(mib "$opaque1")" "$(x "$lib" "$opaque1")"
printf '| the zips as they are | %s | %s |\n' "$(mib "$zips")" "$(x "$lib" "$zips")"
printf '| torrentzips, non-merged | %s | %s |\n' "$(mib "$tz_nm")" "$(x "$lib" "$tz_nm")"
printf '| torrentzips, split | %s | %s |\n' "$(mib "$tz_split")" "$(x "$lib" "$tz_split")"
echo
printf '| reading the zips | s | MiB of members/s |\n|---|---:|---:|\n'
printf '| romlib build (read, chunk, hash, compress, sign) | %s | %s |\n' "$t_romlib" \
  "$(awk -v b="$members" -v t="$t_romlib" 'BEGIN { printf "%.1f", b / 1048576 / t }')"
printf '| unzip -p > /dev/null | %s | %s |\n' "$t_unzip" \
  "$(awk -v b="$members" -v t="$t_unzip" 'BEGIN { printf "%.1f", b / 1048576 / t }')"
# The library holds every set: a DAT-free check that each game has its members.
n=$("$ROMLIB" list-games -r "$WORK/lib" | grep -c 'files' || true)
[ "$n" -ge "$sets" ] || { echo "archives.sh: the library lists $n games, expected $sets" >&2; exit 1; }
