#!/usr/bin/env bash
# Builder benchmark: for each corpus size (MiB, default 1024), builds a library from a
# generated corpus with realistic sharing and prints build throughput, its ratio to
# `zstd -T2 -LEVEL` on the same files in the same run, stored/input bytes and peak RSS.
# The build runs twice: with the per-file DAT hashes (CRC-32, MD5, SHA-1, SHA-256; the
# default) and with --no-dat-hashes, and the table gives the ratio of the two.
# Usage: bash host-builder/bench/build.sh [SIZE_MIB|DIR ...]   (env LEVEL=4, WORK=/tmp/romlib-bench)
# A DIR argument is used as the corpus as it is (e.g. the games folder that
# shared/corpus/make-corpus.sh assembles from real game data).
set -euo pipefail
cd "$(dirname "$0")/../.."
LEVEL=${LEVEL:-4}
WORK=${WORK:-/tmp/romlib-bench}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1024)
command -v zstd >/dev/null && [ -x /usr/bin/time ] || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zstd time; }
cargo build --release -q -p romlib-host -p romlib-tests --bins
T=${CARGO_TARGET_DIR:-target}/release
mkdir -p "$WORK"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$T/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$WORK/k.pub" >/dev/null 2>&1 || true
"$T/romlib" trust add "$WORK/k.pub" >/dev/null  # also when the key was there already
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
secs() { awk -F: '{ if (NF==3) print $1*3600+$2*60+$3; else print $1*60+$2 }' <<<"$1"; }
echo "| corpus | romlib s | romlib MiB/s | no DAT hashes MiB/s | hashes/no hashes | zstd -T2 -$LEVEL s | zstd MiB/s | romlib/zstd | stored/input | zstd out/input | romlib peak RSS MiB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
for mib in "${sizes[@]}"; do
  if [ -d "$mib" ]; then
    corpus=$mib
  else
    corpus="$WORK/corpus-$mib"
    [ -d "$corpus" ] || "$T/gen-corpus" "$mib" "$corpus"
  fi
  input=$(du -sb "$corpus" | cut -f1)
  rm -rf "$WORK/lib"
  sync
  /usr/bin/time -v "$T/romlib" build -i "$corpus" -o "$WORK/lib" --signing-key "$WORK/k.sec" \
    -c "$LEVEL" --threads 2 -q --no-dat-hashes 2>"$WORK/romlib.time"
  n_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/romlib.time")")
  rm -rf "$WORK/lib"
  sync
  /usr/bin/time -v "$T/romlib" build -i "$corpus" -o "$WORK/lib" --signing-key "$WORK/k.sec" \
    -c "$LEVEL" --threads 2 -q 2>"$WORK/romlib.time"
  r_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/romlib.time")")
  r_rss=$(field 'Maximum resident set size' "$WORK/romlib.time")
  stored=$(du -sb "$WORK/lib/packs" | cut -f1)
  mapfile -d '' files < <(find "$corpus" -type f -print0 | sort -z)
  /usr/bin/time -v sh -c 'zstd -q -T2 -'"$LEVEL"' -c "$@" | wc -c > '"$WORK/zstd.bytes" sh "${files[@]}" 2>"$WORK/zstd.time"
  z_wall=$(secs "$(field 'Elapsed (wall clock)' "$WORK/zstd.time")")
  z_bytes=$(cat "$WORK/zstd.bytes")
  awk -v mib="$mib" -v inb="$input" -v rw="$r_wall" -v nw="$n_wall" -v zw="$z_wall" -v st="$stored" -v zb="$z_bytes" -v rss="$r_rss" 'BEGIN {
    m = inb / 1048576;
    label = (mib ~ /^[0-9]+$/) ? sprintf("generated %d MiB", mib) : sprintf("%s (%.0f MiB)", mib, m);
    printf "| %s | %.2f | %.1f | %.1f | %.2fx | %.2f | %.1f | %.2fx | %.3f | %.3f | %.1f |\n",
      label, rw, m / rw, m / nw, nw / rw, zw, m / zw, zw / rw, st / inb, zb / inb, rss / 1024 }'
done
