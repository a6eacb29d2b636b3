#!/usr/bin/env bash
# "Play without installing" read benchmark (issue 8) on a native static x86_64 musl build of
# romlib-device (the `device` profile). One game holding one disc image (default 2 GiB, half
# compressible, half random, as in install.sh) is built with the host `romlib build` and
# installed once with `romlib-device install`; the installed copy is the reference every
# figure is compared with, measured in the same run. It prints Markdown tables of:
# - sequential reads of the whole image: `romlib-device cat` (the read API), `cat` of the
#   file inside `romlib-device mount` (FUSE), `cat` of the installed copy, and decoding the
#   game's packs with ruzstd alone (examples/decode_packs.rs: no hashing, no index, no
#   output; the floor of any verified read path); MiB/s and ratios,
#   cold (after `echo 3 > /proc/sys/vm/drop_caches`, when that works) and warm (library
#   and installed copy in the page cache; the mounted file's own page cache dropped first);
# - random reads the way an emulator reads sectors: N reads of 2 KiB and of 4 KiB at
#   pseudo-random aligned offsets (the same offsets on every path), each timed on its own
#   (examples/randread.rs): Game::read_at, pread in the mount, pread on the installed copy;
#   p50, p99 and mean latency in microseconds, warm and cold;
# - peak RSS (VmHWM) of the mount process once the image was read end to end through it,
#   and at the end; and of `romlib-device cat`. Budget (ARCHITECTURE.md): at most 8 MiB, target 4.
# Each figure is one run (no repeats); nothing is asserted about time. The bytes every path
# returns are compared (a checksum of all random reads), and a mismatch fails the run.
# Usage: bash device-runtime/bench/read.sh [SIZE_MIB]   (default 2048; N=20000 reads per
# run, WORK=/tmp/romlib-readbench, LEVEL=4, KEEP=1 keeps the generated data for a rerun)
set -euo pipefail
cd "$(dirname "$0")/../.."
export LC_ALL=C
WORK=${WORK:-/tmp/romlib-readbench}
MIB=${1:-2048}
N=${N:-20000}
LEVEL=${LEVEL:-4}
KEEP=${KEEP:-0}
TITLE=game
FILE=disc.iso
{ command -v fusermount3 || command -v fusermount; } >/dev/null && [ -x /usr/bin/time ] \
  && command -v dd >/dev/null && command -v mountpoint >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fuse3 time coreutils util-linux; }
[ -e /dev/fuse ] || { echo "read.sh: /dev/fuse is missing (no FUSE in this kernel or container)" >&2; exit 1; }
rustup target add x86_64-unknown-linux-musl >/dev/null
TGT=x86_64-unknown-linux-musl
cargo build -q --profile device -p romlib-device --target $TGT --bin romlib-device --example randread --example decode_packs
# shellcheck source=bench/host-bins.sh
source bench/host-bins.sh
host_bins -p romlib-host -p romlib-tests --bins
TD=${CARGO_TARGET_DIR:-target}
DEV=$TD/$TGT/device/romlib-device
RR=$TD/$TGT/device/examples/randread
REF=$TD/$TGT/device/examples/decode_packs
HOST=$TD/$HOST_DIR
file "$DEV" | grep -Eq "statically linked|static-pie linked" || { echo "romlib-device is not static" >&2; exit 1; }

mkdir -p "$WORK"
WORK=$(cd "$WORK" && pwd)
in="$WORK/in-$MIB"; lib="$WORK/lib-$MIB"; inst="$WORK/inst-$MIB"; MNT="$WORK/mnt"
KEY="$WORK/k.pub"
mpid=""
unmount() {
  if mountpoint -q "$MNT" 2>/dev/null; then
    fusermount3 -u "$MNT" 2>/dev/null || fusermount -u "$MNT" 2>/dev/null || umount -l "$MNT" || true
  fi
  if [ -n "$mpid" ]; then
    for _ in $(seq 50); do kill -0 "$mpid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$mpid" 2>/dev/null; then kill "$mpid" 2>/dev/null || true; fi
    wait "$mpid" 2>/dev/null || true
    mpid=""
  fi
}
cleanup() {
  unmount
  rmdir "$MNT" 2>/dev/null || true
  rm -rf "$WORK/t"
  if [ "$KEEP" != 1 ]; then rm -rf "$in" "$lib" "$inst" "$WORK/lib-$MIB.ok"; fi
}
trap cleanup EXIT

# --- data: one game, built and installed once --------------------------------------------
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$HOST/romlib" keygen --secret-key "$WORK/k.sec" --public-key "$KEY" >/dev/null 2>&1 || true
"$HOST/romlib" trust add "$KEY" >/dev/null  # also when the key was there already
if [ ! -f "$WORK/lib-$MIB.ok" ]; then
  rm -rf "$in" "$lib" "$inst"
  "$HOST/gen-corpus" --single "$MIB" "$in" 2>/dev/null
  "$HOST/romlib" build -i "$in" -o "$lib" --signing-key "$WORK/k.sec" -c "$LEVEL" -q
  "$DEV" install -g "$TITLE" -r "$lib" --install-dir "$inst" --trusted-key "$KEY" >/dev/null
  cmp -s "$in/$TITLE/$FILE" "$inst/$TITLE/$FILE" || { echo "installed copy differs" >&2; exit 1; }
  touch "$WORK/lib-$MIB.ok"
  [ "$KEEP" = 1 ] || rm -rf "$in"
fi
INSTALLED="$inst/$TITLE/$FILE"
bytes=$(stat -c %s "$INSTALLED")
mib=$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1048576 }')
lib_mib=$(du -sm "$lib" | cut -f1)
packs=$(ls "$lib"/packs | wc -l)

# --- helpers ------------------------------------------------------------------------------
mkdir -p "$WORK/t"
drop_ok=no
if sync && (echo 3 >/proc/sys/vm/drop_caches) 2>/dev/null; then drop_ok=yes; fi
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
# Library and installed copy into the page cache.
warm() { cat "$lib"/index.db "$lib"/games/* "$lib"/packs/* "$INSTALLED" >/dev/null; }
# Drops the mounted file's own page cache (the mount answers with FOPEN_KEEP_CACHE, so a
# second read would otherwise never reach romlib).
forget_mounted() { dd if="$MNT/$TITLE/$FILE" iflag=nocache count=0 status=none; }
field() { grep "$1" "$2" | awk -F': ' '{print $2}'; }
hwm() { awk '/^VmHWM/ { printf "%.2f", $2 / 1024 }' "/proc/$mpid/status"; }
# Seconds taken by "$@" (stdout to /dev/null).
secs() { local t0=$EPOCHREALTIME; "$@" >/dev/null; local t1=$EPOCHREALTIME; awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }'; }
rate_of() { awk -v m="$1" -v s="$2" 'BEGIN { printf "%.1f", m / 1048576 / (s > 0.0001 ? s : 0.0001) }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", (b > 0 ? a / b : 0) }'; }
kv() { tr ' ' '\n' <<<"$2" | awk -F= -v k="$1" '$1 == k { print $2 }'; }

# --- mount --------------------------------------------------------------------------------
mkdir -p "$MNT"
mountpoint -q "$MNT" && { echo "read.sh: $MNT is already mounted" >&2; exit 1; }
"$DEV" mount -r "$lib" "$MNT" --trusted-key "$KEY" 2>"$WORK/t/mount.log" &
mpid=$!
for _ in $(seq 300); do
  [ -e "$MNT/$TITLE/$FILE" ] && break
  kill -0 "$mpid" 2>/dev/null || { cat "$WORK/t/mount.log" >&2; echo "read.sh: mount failed" >&2; exit 1; }
  sleep 0.1
done
[ -e "$MNT/$TITLE/$FILE" ] || { echo "read.sh: the mount did not come up" >&2; exit 1; }
MOUNTED="$MNT/$TITLE/$FILE"
[ "$(stat -c %s "$MOUNTED")" = "$bytes" ] || { echo "read.sh: mounted file has the wrong size" >&2; exit 1; }

# --- sequential reads ---------------------------------------------------------------------
api_cat_timed() { /usr/bin/time -v "$DEV" cat -g "$TITLE" -r "$lib" --trusted-key "$KEY" "$FILE" 2>"$WORK/t/cat.time"; }
# Prints nothing: decode_packs' count of decoded bytes (the packs' unique chunks, which are
# the game's bytes unless it repeats itself) goes to a file.
ruzstd_alone() { "$REF" "$lib"/packs/pack-*.pkg >"$WORK/t/decoded"; }
declare -A seq
states=(warm)
[ "$drop_ok" = yes ] && states=(cold warm)
for state in "${states[@]}"; do
  if [ "$state" = cold ]; then cold; else warm; forget_mounted; fi
  seq[$state,installed]=$(secs cat "$INSTALLED")
  if [ "$state" = cold ]; then cold; fi
  seq[$state,api]=$(secs api_cat_timed)
  if [ "$state" = cold ]; then cold; fi
  seq[$state,mount]=$(secs cat "$MOUNTED")
  if [ "$state" = cold ]; then cold; fi
  seq[$state,ruzstd]=$(secs ruzstd_alone)
  [ -n "${hwm_seq:-}" ] || hwm_seq=$(hwm)
done
decoded=$(cat "$WORK/t/decoded")
cat_rss=$(awk -v k="$(field 'Maximum resident set size' "$WORK/t/cat.time")" 'BEGIN { printf "%.2f", k / 1024 }')

# --- random reads -------------------------------------------------------------------------
declare -A rnd
rstates=(warm)
[ "$drop_ok" = yes ] && rstates=(warm cold)
prep() { if [ "$1" = cold ]; then cold; else warm; forget_mounted; fi; }
for state in "${rstates[@]}"; do
  rnd[$state,done]=1
  for block in 2048 4096; do
    prep "$state"; rnd[$state,$block,installed]=$("$RR" "$N" "$block" file "$INSTALLED")
    prep "$state"; rnd[$state,$block,api]=$("$RR" "$N" "$block" api "$lib" "$KEY" "$TITLE" "$FILE")
    prep "$state"; rnd[$state,$block,mount]=$("$RR" "$N" "$block" file "$MOUNTED")
    for p in api mount; do
      [ "$(kv check "${rnd[$state,$block,$p]}")" = "$(kv check "${rnd[$state,$block,installed]}")" ] || {
        echo "read.sh: $p returned other bytes than the installed copy ($state, $block-byte reads)" >&2; exit 1; }
    done
  done
done
hwm_end=$(hwm)
unmount
if grep -q "read failed" "$WORK/t/mount.log"; then cat "$WORK/t/mount.log" >&2; exit 1; fi

# --- report -------------------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
echo "## romlib-device read paths: one ${mib} MiB disc image"
echo
echo "$(date -u +%Y-%m-%d), $cpu, $(nproc) cores, Linux $(uname -r); native static x86_64 musl,"
echo "\`device\` profile. Library ${lib_mib} MiB (zstd level $LEVEL, $packs pack file(s)). One run per figure."
echo "Cold = after \`echo 3 > /proc/sys/vm/drop_caches\`: $( [ "$drop_ok" = yes ] && echo "worked, so cold figures read from disk" || echo "not permitted here, so only warm figures (the installed copy and the library may be in the page cache)")."
echo "Warm = library and installed copy read once into the page cache first; the mounted file's"
echo "own page cache dropped (\`dd iflag=nocache count=0\`) so every read reaches romlib."
echo
echo "| sequential read of the whole file | cache | seconds | MiB/s | vs installed copy | vs ruzstd alone |"
echo "|---|---|---|---|---|---|"
for state in "${states[@]}"; do
  ref_rate=$(rate_of "$decoded" "${seq[$state,ruzstd]}")
  for p in installed ruzstd api mount; do
    n=$bytes
    case $p in
      installed) name="\`cat\` of the installed copy" ;;
      ruzstd) name="ruzstd alone on the packs (reference)"; n=$decoded ;;
      api) name="\`romlib-device cat\` (read API)" ;;
      mount) name="\`cat\` in \`romlib-device mount\`" ;;
    esac
    s=${seq[$state,$p]}; r=$(rate_of "$n" "$s")
    echo "| $name | $state | $s | $r | $(ratio "$r" "$(rate_of "$bytes" "${seq[$state,installed]}")") | $(ratio "$r" "$ref_rate") |"
  done
done
echo
echo "| random reads (N=$N) | cache | path | p50 µs | p99 µs | mean µs | p50 vs installed | p99 vs installed |"
echo "|---|---|---|---|---|---|---|---|"
for state in warm cold; do
  [ -n "${rnd[$state,done]:-}" ] || continue
  for block in 2048 4096; do
    for p in installed api mount; do
      case $p in
        installed) name="pread, installed copy" ;;
        api) name="\`Game::read_at\`" ;;
        mount) name="pread in the mount" ;;
      esac
      r=${rnd[$state,$block,$p]}; ref=${rnd[$state,$block,installed]}
      echo "| $((block / 1024)) KiB | $state | $name | $(kv p50_us "$r") | $(kv p99_us "$r") | $(kv mean_us "$r") |" \
        "$(ratio "$(kv p50_us "$r")" "$(kv p50_us "$ref")") | $(ratio "$(kv p99_us "$r")" "$(kv p99_us "$ref")") |"
    done
  done
done
echo
echo "\`Game::open\` (signature, chunk table streamed and hashed) took $(kv open_ms "${rnd[warm,2048,api]}") ms warm$(
  [ -n "${rnd[cold,done]:-}" ] && echo ", $(kv open_ms "${rnd[cold,2048,api]}") ms cold")."
echo
echo "| peak RSS (budget 8 MiB, target 4) | MiB |"
echo "|---|---|"
echo "| \`romlib-device mount\`, after the whole file was read through it | $hwm_seq |"
echo "| \`romlib-device mount\`, at the end (random reads too) | $hwm_end |"
echo "| \`romlib-device cat\` of the whole file | $cat_rss |"
