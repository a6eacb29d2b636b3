#!/usr/bin/env bash
# Similar-chunk deltas, measured: called by bench/run.sh (which builds the binaries and
# installs the peers) with its environment, and writes a Markdown section to $DELTAS_OUT.
#
#   1. The variant set (tests/src/bin/gen-variants.rs: a 2 MiB ROM-like base and 16
#      variants, each ~40 scattered 1-16 byte edits and one 1 KiB insert): stored bytes of
#      romlib with and without deltas, xdelta3 (zstd -19 base + xdelta3 -9 per variant) and
#      one solid tar | zstd -19 --long=27, against the base alone.
#   2. Upgrades over HTTP (`romlib serve` on loopback): bytes `romlib-device install --from`
#      downloads for revision B with revision A installed, with deltas and without (whole
#      chunks only), beside xdelta3's patch from A to B.
#   3. A delta-heavy game (a disc image and a revision with an edit every 64 KiB): install
#      MiB/s and peak RSS from a library with deltas and one without; random 4 KiB reads
#      through the read API (as `cat` does) p50/p99, with and without deltas.
#   3b. The same game after `romlib prune --newest-whole` (the revision added a build later,
#      then turned around): stored bytes, install of each revision, and the upgrade's
#      download over HTTP, beside the library as built and one without deltas.
#   4. A package of many files (the variant set as one game): install from a library with
#      deltas and one without, beside casync extract of the same folder.
#
# Needs: ROMLIB DEVICE RANDREAD GEN_VARIANTS WORK G PAIRS SMOKE REPS DELTAS_OUT, and the
# functions measure, mibs, mib of bench/run.sh (it sources this file).

DW=$WORK/deltas
rm -rf "$DW"; mkdir -p "$DW"
K=(--trusted-key "$WORK/k.pub")
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f%%", 100 * a / b }'; }
x() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }
tree_bytes() { find "$1" -type f -printf '%s\n' | awk '{s+=$1} END {print s+0}'; }
lib_bytes() { size_of "$1/packs" "$1/index.db" "$1/runs" "$1/games" "$1"/dicts; }

# ------------------------------------------------------------------ 1. the variant set
log "deltas: variant set"
"$GEN_VARIANTS" "$DW/set"
"$GEN_VARIANTS" --only-base "$DW/base-only"
build() { "$ROMLIB" build -q -i "$1" -o "$2" --signing-key "$WORK/k.sec" --threads 2 "${@:3}"; }
build "$DW/set" "$DW/lib-set"
build "$DW/set" "$DW/lib-set-whole" --no-deltas
build "$DW/base-only" "$DW/lib-base"
set_raw=$(tree_bytes "$DW/set")
set_d=$(lib_bytes "$DW/lib-set"); set_w=$(lib_bytes "$DW/lib-set-whole"); base_d=$(lib_bytes "$DW/lib-base")
zstd -q -19 -f "$DW/set/base/rom.bin" -o "$DW/base.zst"
xd=$(stat -c %s "$DW/base.zst")
for v in "$DW"/set/variant-*; do
  xdelta3 -9 -e -f -s "$DW/set/base/rom.bin" "$v/rom.bin" "$DW/p.vcdiff"
  xd=$((xd + $(stat -c %s "$DW/p.vcdiff")))
done
tar -C "$DW/set" -cf - . | zstd -q -19 --long=27 -T2 -o "$DW/set.tar.zst"
set_tar=$(stat -c %s "$DW/set.tar.zst")

# ------------------------------------------------------------------ 2. upgrades over HTTP
log "deltas: upgrades"
serve() {  # LIB: starts romlib serve, sets URL and SERVE_PID
  "$ROMLIB" serve -r "$1" --listen 127.0.0.1:0 >"$DW/serve.out" 2>/dev/null &
  SERVE_PID=$!
  for _ in $(seq 100); do grep -q 'http://' "$DW/serve.out" 2>/dev/null && break; sleep 0.05; done
  URL=$(grep -o 'http://127.0.0.1:[0-9]*/' "$DW/serve.out" | head -1)
}
downloaded() {  # LIB A B: bytes downloaded installing B over HTTP with A installed
  local d=$DW/dev
  rm -rf "$d"
  serve "$1"
  "$DEVICE" install --from "$URL" -g "$2" --install-dir "$d" "${K[@]}" >/dev/null
  "$DEVICE" install --from "$URL" -g "$3" --install-dir "$d" "${K[@]}" >"$DW/up.out"
  kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
  grep -o 'downloaded [0-9]*' "$DW/up.out" | awk '{print $2}'
}
patch_bytes() {  # DIR_A DIR_B: xdelta3 -9 patch from game A to game B, file by file
  local a=$1 b=$2 t=0 f src n
  n=$(find "$a" -type f | wc -l)
  while IFS= read -r f; do
    src=$a/$f
    [ -f "$src" ] || { [ "$n" = 1 ] && src=$(find "$a" -type f); }
    if [ -f "$src" ]; then xdelta3 -9 -e -f -s "$src" "$b/$f" "$DW/p.vcdiff"
    else xdelta3 -9 -e -f "$b/$f" "$DW/p.vcdiff"; fi
    t=$((t + $(stat -c %s "$DW/p.vcdiff")))
  done < <(cd "$b" && find . -type f | sed 's|^\./||')
  echo "$t"
}
UPS=$DW/upgrades.tsv
: > "$UPS"
upgrade_row() {  # LABEL LIB LIB_WHOLE GAMES_DIR A B
  local size d w p
  size=$(tree_bytes "$4/$6")
  d=$(downloaded "$2" "$5" "$6"); w=$(downloaded "$3" "$5" "$6"); p=$(patch_bytes "$4/$5" "$4/$6")
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$size" "$d" "$w" "$p" >> "$UPS"
}
VARIANTS=(variant-01 variant-02 variant-03)
[ "$SMOKE" = 1 ] || VARIANTS=(variant-01 variant-05 variant-09 variant-13 variant-16)
for v in "${VARIANTS[@]}"; do
  upgrade_row "variant set: base -> $v" "$DW/lib-set" "$DW/lib-set-whole" "$DW/set" base "$v"
done
upgrade_row "variant set: variant-01 -> variant-02 (siblings)" "$DW/lib-set" "$DW/lib-set-whole" "$DW/set" variant-01 variant-02
for pair in $PAIRS; do
  upgrade_row "corpus: ${pair%%:*} -> ${pair#*:}" "$WORK/romlib-default" "$WORK/romlib-nodeltas" "$G" "${pair%%:*}" "${pair#*:}"
done

# ------------------------------------------------------------------ 3. a delta-heavy game
log "deltas: delta-heavy game"
BIG_MIB=256; [ "$SMOKE" = 1 ] && BIG_MIB=32
"$GEN_VARIANTS" --big "$BIG_MIB" "$DW/big"
build "$DW/big" "$DW/lib-big"
build "$DW/big" "$DW/lib-big-whole" --no-deltas
big_bytes=$(tree_bytes "$DW/big/big-rev")
share=$("$ROMLIB" show -g big-rev -r "$DW/lib-big" | awk '/^deltas/ {print $2 " distinct chunks, " $7 " of their bytes,"}' | tr -d '(')
inst() {  # LIB: sets I_S and I_RSS
  measure "rm -rf '$DW/inst'" "$DEVICE" install -g big-rev -r "$1" --install-dir "$DW/inst" "${K[@]}"
  cmp -s "$DW/inst/big-rev/disc.bin" "$DW/big/big-rev/disc.bin" || { echo "bench: delta install wrong" >&2; exit 1; }
  I_S=$WALL I_RSS=$RSS
}
inst "$DW/lib-big"; d_s=$I_S d_rss=$I_RSS
inst "$DW/lib-big-whole"; w_s=$I_S w_rss=$I_RSS
N=${N:-20000}; [ "$SMOKE" = 1 ] && N=2000
rr() { "$RANDREAD" "$N" 4096 api "$1" "$WORK/k.pub" big-rev disc.bin; }
rr_d=$(rr "$DW/lib-big"); rr_w=$(rr "$DW/lib-big-whole")
field() { echo "$1" | tr ' ' '\n' | awk -F= -v k="$2" '$1==k {print $2}'; }
[ "$(field "$rr_d" check)" = "$(field "$rr_w" check)" ] || { echo "bench: random reads differ with deltas" >&2; exit 1; }

# ------------------------------------------------------------------ 3b. the newest revision whole
# The revision arrives a build (and a second) after the base, as a publisher's would; then
# a prune turns the deltas around.
log "deltas: newest revision whole"
mkdir -p "$DW/big-a"; cp -r "$DW/big/big-base" "$DW/big-a/"
build "$DW/big-a" "$DW/lib-turn"
sleep 1.1
build "$DW/big" "$DW/lib-turn"
turn_before=$(lib_bytes "$DW/lib-turn")
t0=$(date +%s%N)
"$ROMLIB" prune -r "$DW/lib-turn" --signing-key "$WORK/k.sec" --newest-whole --json > "$DW/prune.json"
turn_prune_s=$(awk -v a="$t0" -v b="$(date +%s%N)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }')
turned=$(grep -o '"deltas_turned":[0-9]*' "$DW/prune.json" | cut -d: -f2)
[ "${turned:-0}" -gt 0 ] || { echo "bench: prune --newest-whole turned nothing around" >&2; exit 1; }
turn_after=$(lib_bytes "$DW/lib-turn")
inst_g() {  # LIB GAME: sets I_S
  measure "rm -rf '$DW/inst'" "$DEVICE" install -g "$2" -r "$1" --install-dir "$DW/inst" "${K[@]}"
  cmp -s "$DW/inst/$2/disc.bin" "$DW/big/$2/disc.bin" || { echo "bench: $2 install wrong" >&2; exit 1; }
  I_S=$WALL
}
base_bytes=$(tree_bytes "$DW/big/big-base")
inst_g "$DW/lib-big" big-base; bd_s=$I_S
inst_g "$DW/lib-big-whole" big-base; bw_s=$I_S
inst_g "$DW/lib-turn" big-rev; t_s=$I_S
inst_g "$DW/lib-turn" big-base; tb_s=$I_S
up_d=$(downloaded "$DW/lib-big" big-base big-rev)
up_t=$(downloaded "$DW/lib-turn" big-base big-rev)
up_w=$(downloaded "$DW/lib-big-whole" big-base big-rev)
big_d_lib=$(lib_bytes "$DW/lib-big"); big_w_lib=$(lib_bytes "$DW/lib-big-whole")

# ------------------------------------------------------------------ 4. a package of many files
# The variant set as one game of 17 files (most of its chunks deltas on shared bases),
# installed from a library with deltas and from one without, beside casync extract of the
# same folder; five installs in a row per figure (each is well under a tenth of a second).
log "deltas: many-file package"
mkdir -p "$DW/pkg-in/pkg"
for v in "$DW"/set/*/; do cp "$v/rom.bin" "$DW/pkg-in/pkg/$(basename "$v").bin"; done
pkg_bytes=$(tree_bytes "$DW/pkg-in/pkg")
pkg_files=$(find "$DW/pkg-in/pkg" -type f | wc -l)
build "$DW/pkg-in" "$DW/lib-pkg"
build "$DW/pkg-in" "$DW/lib-pkg-whole" --no-deltas
pkg_share=$("$ROMLIB" show -g pkg -r "$DW/lib-pkg" | awk '/^deltas/ {print $2 " distinct chunks, " $7 " of their bytes,"}' | tr -d '(')
casync make --store="$DW/pkg-store" "$DW/pkg.caidx" "$DW/pkg-in/pkg" >/dev/null
FIVE='d=$1; shift; for i in 1 2 3 4 5; do rm -rf "$d"; "$@" >/dev/null || exit 1; done'
measure "rm -rf '$DW/inst'" sh -c "$FIVE" sh "$DW/inst" "$DEVICE" install -g pkg -r "$DW/lib-pkg" --install-dir "$DW/inst" "${K[@]}"
diff -r -x .romlib-installed "$DW/pkg-in/pkg" "$DW/inst/pkg" >/dev/null || { echo "bench: package install wrong" >&2; exit 1; }
pkg_d=$WALL pkg_d_rss=$RSS
measure "rm -rf '$DW/inst'" sh -c "$FIVE" sh "$DW/inst" "$DEVICE" install -g pkg -r "$DW/lib-pkg-whole" --install-dir "$DW/inst" "${K[@]}"
pkg_w=$WALL
measure "rm -rf '$DW/out'" sh -c "$FIVE" sh "$DW/out" casync extract --store="$DW/pkg-store" "$DW/pkg.caidx" "$DW/out"
diff -r "$DW/pkg-in/pkg" "$DW/out" >/dev/null || { echo "bench: casync extracted the package wrong" >&2; exit 1; }
pkg_c=$WALL

# ------------------------------------------------------------------ report
{
  echo "## Similar-chunk deltas"
  echo
  echo "Produced by \`bench/deltas.sh\` (called by \`bench/run.sh\`) in the same run as the table above."
  echo
  echo "### The variant set"
  echo
  echo "A 2 MiB ROM-like base and 16 variants ($set_raw bytes in all; \`tests/src/bin/gen-variants.rs\`), stored:"
  echo
  echo "| store | bytes | vs the base alone in romlib |"
  echo "|---|---|---|"
  echo "| romlib, base alone | $base_d | 1.00x |"
  echo "| romlib, base + 16 variants (defaults: deltas) | $set_d | $(x "$set_d" "$base_d") |"
  echo "| romlib, base + 16 variants, \`--no-deltas\` | $set_w | $(x "$set_w" "$base_d") |"
  echo "| zstd -19 base + 16 xdelta3 -9 patches | $xd | $(x "$xd" "$base_d") |"
  echo "| one solid tar \| zstd -19 --long=27 | $set_tar | $(x "$set_tar" "$base_d") |"
  echo
  echo "### Upgrades over HTTP"
  echo
  echo "Bytes \`romlib-device install --from\` downloads for revision B while revision A is installed (the install takes every chunk and base it can from A's files), from \`romlib serve\` on loopback; xdelta3's patch is \`xdelta3 -9 -e -s A B\` file by file."
  echo
  echo "| upgrade | size of B | with deltas | share of B | whole chunks only (\`--no-deltas\`) | share of B | xdelta3 patch | deltas vs xdelta3 |"
  echo "|---|---|---|---|---|---|---|---|"
  while IFS=$'\t' read -r label size d w p; do
    echo "| $label | $size | $d | $(pct "$d" "$size") | $w | $(pct "$w" "$size") | $p | $(x "$d" "$p") |"
  done < "$UPS"
  echo
  echo "### A delta-heavy game"
  echo
  echo "A $BIG_MIB MiB disc image and a revision with 4 changed bytes every 64 KiB (\`gen-variants --big\`); the revision's chunks: $share stored as deltas. Install is \`romlib-device install\` (static x86_64 musl, device profile) from the library folder; random reads are $N reads of 4 KiB at random aligned offsets through the read API, as \`cat\` and the mount read."
  echo
  echo "| library | install MiB/s | install peak RSS MiB | random 4 KiB p50 us | p99 us |"
  echo "|---|---|---|---|---|"
  echo "| with deltas | $(mibs "$big_bytes" "$d_s") | $(mib "$d_rss") | $(field "$rr_d" p50_us) | $(field "$rr_d" p99_us) |"
  echo "| whole chunks only | $(mibs "$big_bytes" "$w_s") | $(mib "$w_rss") | $(field "$rr_w" p50_us) | $(field "$rr_w" p99_us) |"
  echo
  echo "### The newest revision whole"
  echo
  echo "The same two revisions, the revision added a build after the base, then \`romlib prune --newest-whole\` ($turned delta chunks turned around in $turn_prune_s s): each revision's install from the library folder, and the bytes an upgrade from the base to the revision downloads over HTTP (\`romlib serve\` on loopback)."
  echo
  echo "| library | stored bytes | install big-rev MiB/s | install big-base MiB/s | upgrade big-base -> big-rev downloaded |"
  echo "|---|---|---|---|---|"
  echo "| with deltas, as built | $big_d_lib | $(mibs "$big_bytes" "$d_s") | $(mibs "$base_bytes" "$bd_s") | $up_d |"
  echo "| after \`prune --newest-whole\` | $turn_after (before: $turn_before) | $(mibs "$big_bytes" "$t_s") | $(mibs "$base_bytes" "$tb_s") | $up_t |"
  echo "| whole chunks only | $big_w_lib | $(mibs "$big_bytes" "$w_s") | $(mibs "$base_bytes" "$bw_s") | $up_w |"
  echo
  echo "### A package of many files"
  echo
  echo "The variant set as one game of $pkg_files files ($pkg_bytes bytes; its chunks: $pkg_share stored as deltas), five installs in a row from the library folder; casync extract of the same folder (default chunks) beside it."
  echo
  echo "| install of the package, 5 times | seconds | MiB/s | peak RSS MiB |"
  echo "|---|---|---|---|"
  echo "| romlib-device, with deltas | $pkg_d | $(mibs $((5 * pkg_bytes)) "$pkg_d") | $(mib "$pkg_d_rss") |"
  echo "| romlib-device, whole chunks only | $pkg_w | $(mibs $((5 * pkg_bytes)) "$pkg_w") | - |"
  echo "| casync extract | $pkg_c | $(mibs $((5 * pkg_bytes)) "$pkg_c") | - |"
  echo
  echo "Delta targets:"
  echo
  check "variant set stored in at most 1.5x the base alone" "$(awk -v a="$set_d" -v b="$base_d" 'BEGIN {printf "%.2f", a/b}')" 1.5 le
  while IFS=$'\t' read -r label size d w p; do
    case $label in
      variant*) check "upgrade $label: at most 2% of B downloaded" "$(awk -v a="$d" -v b="$size" 'BEGIN {printf "%.4f", 100*a/b}')" 2 le ;;
      *) check "upgrade $label: at most 1.5x xdelta3's patch" "$d" "$p" le 1.5 ;;
    esac
  done < "$UPS"
  check "delta-heavy install within 10% of the speed without deltas (MiB/s)" "$(mibs "$big_bytes" "$d_s")" "$(mibs "$big_bytes" "$w_s")" ge 0.9
  check "delta-heavy install at least 0.8x the speed without deltas (MiB/s)" "$(mibs "$big_bytes" "$d_s")" "$(mibs "$big_bytes" "$w_s")" ge 0.8
  check "delta-heavy revision after prune --newest-whole: install at least 0.8x the speed without deltas (MiB/s)" "$(mibs "$big_bytes" "$t_s")" "$(mibs "$big_bytes" "$w_s")" ge 0.8
  check "delta-heavy install peak RSS at most 8 MiB" "$(mib "$d_rss")" 8 le
  check "many-file package with deltas: install at least 0.8x casync extract (MiB/s)" "$(mibs $((5 * pkg_bytes)) "$pkg_d")" "$(mibs $((5 * pkg_bytes)) "$pkg_c")" ge 0.8
  check "random 4 KiB read p99 at most 2x without deltas (us)" "$(field "$rr_d" p99_us)" "$(field "$rr_w" p99_us)" le 2
} > "$DELTAS_OUT"
