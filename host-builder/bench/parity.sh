#!/usr/bin/env bash
# Parity benchmark: builds a one-pack library from a generated corpus (default 256 MiB),
# then for P = 5 and 10 percent prints `romlib parity` throughput (MiB of packs and
# manifests protected per second), the size overhead (parity bytes / protected bytes),
# `romlib repair` throughput for a pack with a zeroed 64 KiB range (the whole check, the
# restore and the final BLAKE3 of the restored pack), the largest contiguous zeroed burst
# `romlib repair` restores in the pack (found by bisection, each try checked with cmp), and
# `par2 create` / `par2 repair` on the same pack at the same redundancy in the same run.
# Usage: bash host-builder/bench/parity.sh [SIZE_MIB]   (env WORK=/tmp/romlib-parity-bench)
set -euo pipefail
cd "$(dirname "$0")/../.."
SIZE=${1:-256}
WORK=${WORK:-/tmp/romlib-parity-bench}
command -v par2 >/dev/null && [ -x /usr/bin/time ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq par2 time; }
cargo build --release -q -p romlib-host -p romlib-tests --bins
T=$(realpath "${CARGO_TARGET_DIR:-target}")/release
mkdir -p "$WORK"
rm -rf "$WORK/lib" "$WORK/par2"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$T/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null 2>&1 || true
"$T/romlib" trust add "$WORK/k.pub" >/dev/null  # also when the key was there already
corpus="$WORK/corpus-$SIZE"
[ -d "$corpus" ] || "$T/gen-corpus" "$SIZE" "$corpus" >/dev/null
"$T/romlib" build -i "$corpus" -o "$WORK/lib" --signing-key "$WORK/k.sec" -q \
  --pack-size 4000000000
pack="$WORK/lib/packs/pack-0001.pkg"
cp "$pack" "$WORK/pristine.pkg"
pack_bytes=$(stat -c %s "$pack")
now() { date +%s.%N; }
mibs() { awk -v b="$1" -v s="$2" 'BEGIN { printf "%.1f", b / 1048576 / s }'; }
zero() { dd if=/dev/zero of="$1" bs=4096 seek="$2" count="$3" conv=notrunc status=none; }
restore() { cp "$WORK/pristine.pkg" "$pack"; }
# Whether a zeroed burst of $1 4 KiB sectors at a third of the pack is repaired exactly.
repairs() {
  restore
  zero "$pack" $((pack_bytes / 4096 / 3)) "$1"
  "$T/romlib" repair -r "$WORK/lib" >/dev/null 2>&1 && cmp -s "$pack" "$WORK/pristine.pkg"
}
echo "Pack: $pack_bytes bytes ($(mibs "$pack_bytes" 1) MiB) from a generated ${SIZE} MiB corpus; $(nproc) cores; $(par2 --version 2>/dev/null | head -1)."
echo
echo "| P | romlib parity MiB/s | parity bytes | overhead | romlib repair (64 KiB burst) MiB/s | largest burst repaired | burst / pack | par2 create MiB/s | par2 bytes | par2 repair (64 KiB burst) MiB/s | romlib/par2 create |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for P in 5 10; do
  restore
  rm -rf "$WORK/lib/parity"
  sync
  protected=$(du -cb "$WORK/lib/packs" "$WORK/lib/games"/*.manifest | tail -1 | cut -f1)
  t0=$(now)
  "$T/romlib" parity -r "$WORK/lib" --percent "$P" >/dev/null
  t1=$(now)
  par_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  par_bytes=$(du -sb "$WORK/lib/parity" | cut -f1)
  # Repair: a 64 KiB burst (16 sectors) in the middle of the pack.
  restore
  zero "$pack" $((pack_bytes / 4096 / 2)) 16
  t0=$(now)
  "$T/romlib" repair -r "$WORK/lib" >/dev/null
  t1=$(now)
  cmp -s "$pack" "$WORK/pristine.pkg" || { echo "repair did not restore the pack" >&2; exit 1; }
  rep_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  # Largest burst, in 4 KiB sectors, by bisection between a repaired and a failed length.
  lo=16
  hi=$((pack_bytes / 4096 / 2))
  repairs "$hi" && { echo "a burst of half the pack was repaired?" >&2; exit 1; }
  while [ $((hi - lo)) -gt 1 ]; do
    mid=$(((lo + hi) / 2))
    if repairs "$mid"; then lo=$mid; else hi=$mid; fi
  done
  restore
  # par2 on the same pack at the same redundancy.
  rm -rf "$WORK/par2"
  mkdir -p "$WORK/par2"
  cp "$WORK/pristine.pkg" "$WORK/par2/pack.pkg"
  sync
  t0=$(now)
  (cd "$WORK/par2" && par2 create -q -q -r"$P" pack.pkg.par2 pack.pkg >/dev/null)
  t1=$(now)
  p2_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  p2_bytes=$(du -cb "$WORK/par2"/*.par2 | tail -1 | cut -f1)
  zero "$WORK/par2/pack.pkg" $((pack_bytes / 4096 / 2)) 16
  t0=$(now)
  (cd "$WORK/par2" && par2 repair -q -q pack.pkg.par2 >/dev/null)
  t1=$(now)
  p2r_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  cmp -s "$WORK/par2/pack.pkg" "$WORK/pristine.pkg" || echo "par2 did not restore the pack" >&2
  awk -v p="$P" -v pb="$pack_bytes" -v prot="$protected" -v ps="$par_secs" -v pab="$par_bytes" \
    -v rs="$rep_secs" -v lo="$lo" -v p2s="$p2_secs" -v p2b="$p2_bytes" -v p2r="$p2r_secs" 'BEGIN {
    printf "| %d%% | %.1f | %d | %.2f%% | %.1f | %d KiB | %.2f%% | %.1f | %d | %.1f | %.1fx |\n",
      p, prot / 1048576 / ps, pab, 100 * pab / prot, pb / 1048576 / rs, lo * 4, 100 * lo * 4096 / pb,
      pb / 1048576 / p2s, p2b, pb / 1048576 / p2r, p2s / ps }'
done
