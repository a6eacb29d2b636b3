#!/usr/bin/env bash
# Device install benchmark on a native static x86_64 musl build of romlib-device (the
# `device` profile): QEMU's RSS says nothing about real hardware, native x86_64 does.
# For a 16 MiB and a 2 GiB game (half compressible, half random) it prints peak RSS and
# install throughput, and as references measured in the same run: decoding the same pack
# records with ruzstd alone (examples/decode_packs.rs, same build) and C `zstd -d` of the
# same game compressed at the same level. Then, on the installed game, `verify --installed`
# (bit rot check: throughput and peak RSS, against `cat` of the same file, the disk-read
# bound, and `b3sum` when installed) and `repair` of one zeroed 4 KiB sector.
# Usage: bash device-runtime/bench/install.sh [SIZE_MIB ...]  (default 16 2048; WORK=/tmp/romlib-devbench)
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=${WORK:-/tmp/romlib-devbench}
LEVEL=${LEVEL:-9}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(16 2048)
command -v zstd >/dev/null && command -v b3sum >/dev/null && [ -x /usr/bin/time ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd time b3sum; }
rustup target add x86_64-unknown-linux-musl >/dev/null
TGT=x86_64-unknown-linux-musl
cargo build -q --profile device -p romlib-device --target $TGT --bin romlib-device --example decode_packs
cargo build -q --release -p romlib-host -p romlib-tests --bins
TD=${CARGO_TARGET_DIR:-target}
DEV=$TD/$TGT/device/romlib-device
REF=$TD/$TGT/device/examples/decode_packs
HOST=$TD/release
file "$DEV" | grep -Eq "statically linked|static-pie linked" || { echo "romlib-device is not static" >&2; exit 1; }
mkdir -p "$WORK"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$HOST/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null 2>&1 || true
"$HOST/romlib" trust add "$WORK/k.pub" >/dev/null  # also when the key was there already
ROT=()
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }
echo "| game MiB | install s | install MiB/s | peak RSS MiB | ruzstd alone MiB/s | install/ruzstd | zstd -d MiB/s | install/zstd -d |"
echo "|---|---|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
  in="$WORK/in-$mib"; lib="$WORK/lib-$mib"
  [ -d "$in" ] || "$HOST/gen-corpus" --single "$mib" "$in" 2>/dev/null
  [ -d "$lib" ] || "$HOST/romlib" build -i "$in" -o "$lib" --signing-key "$WORK/k.sec" -c "$LEVEL" -q
  [ -f "$WORK/game-$mib.zst" ] || zstd -q -"$LEVEL" -T2 -f "$in/game/disc.iso" -o "$WORK/game-$mib.zst"
  rm -rf "$WORK/inst"
  sync
  /usr/bin/time -v "$DEV" install -g game -r "$lib" --install-dir "$WORK/inst" --trusted-key "$WORK/k.pub" \
    >/dev/null 2>"$WORK/install.time"
  cmp -s "$in/game/disc.iso" "$WORK/inst/game/disc.iso" || { echo "installed game differs" >&2; exit 1; }
  i_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/install.time")")
  i_rss=$(field 'Maximum resident set size' "$WORK/install.time")
  /usr/bin/time -v "$REF" "$lib"/packs/pack-*.pkg >/dev/null 2>"$WORK/ref.time"
  r_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/ref.time")")
  /usr/bin/time -v sh -c "zstd -q -d -c '$WORK/game-$mib.zst' >/dev/null" 2>"$WORK/zstd.time"
  z_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/zstd.time")")
  awk -v mib="$mib" -v iw="$i_wall" -v rss="$i_rss" -v rw="$r_wall" -v zw="$z_wall" 'BEGIN {
    iw = (iw > 0.005 ? iw : 0.005); rw = (rw > 0.005 ? rw : 0.005); zw = (zw > 0.005 ? zw : 0.005);
    printf "| %d | %.2f | %.1f | %.2f | %.1f | %.2fx | %.1f | %.2fx |\n",
      mib, iw, mib / iw, rss / 1024, mib / rw, rw / iw, mib / zw, zw / iw }'
  # Bit rot: check the installed copy, then repair one zeroed sector from the library.
  sync
  /usr/bin/time -v "$DEV" verify --installed -g game --install-dir "$WORK/inst" --trusted-key "$WORK/k.pub" \
    >/dev/null 2>"$WORK/verify.time"
  v_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/verify.time")")
  v_rss=$(field 'Maximum resident set size' "$WORK/verify.time")
  /usr/bin/time -v cat "$WORK/inst/game/disc.iso" >/dev/null 2>"$WORK/cat.time"
  c_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/cat.time")")
  b_wall=0
  if command -v b3sum >/dev/null; then
    /usr/bin/time -v b3sum --num-threads 1 "$WORK/inst/game/disc.iso" >/dev/null 2>"$WORK/b3.time"
    b_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/b3.time")")
  fi
  dd if=/dev/zero of="$WORK/inst/game/disc.iso" bs=4096 seek=$((mib * 64)) count=1 conv=notrunc status=none
  /usr/bin/time -v "$DEV" repair -g game -r "$lib" --install-dir "$WORK/inst" --trusted-key "$WORK/k.pub" \
    >/dev/null 2>"$WORK/repair.time"
  p_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/repair.time")")
  p_rss=$(field 'Maximum resident set size' "$WORK/repair.time")
  cmp -s "$in/game/disc.iso" "$WORK/inst/game/disc.iso" || { echo "repaired game differs" >&2; exit 1; }
  ROT+=("$(awk -v mib="$mib" -v vw="$v_wall" -v rss="$v_rss" -v cw="$c_wall" -v bw="$b_wall" -v pw="$p_wall" -v prss="$p_rss" 'BEGIN {
    vw = (vw > 0.005 ? vw : 0.005); cw = (cw > 0.005 ? cw : 0.005);
    b3 = (bw > 0 ? sprintf("%.1f", mib / bw) : "n/a");
    printf "| %d | %.2f | %.1f | %.2f | %.1f | %.2fx | %s | %.2f | %.2f |\n",
      mib, vw, mib / vw, rss / 1024, mib / cw, cw / vw, b3, pw, prss / 1024 }')")
  rm -rf "$WORK/inst"
done
echo
echo "| game MiB | verify --installed s | MiB/s | peak RSS MiB | cat MiB/s | verify/cat | b3sum 1 thread MiB/s | repair of a zeroed 4 KiB sector s | repair peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROT[@]}"
