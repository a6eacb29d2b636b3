#!/usr/bin/env bash
# Build (cross/build.sh) and test the device runtime for ARM under QEMU user-mode emulation:
#   1. `cargo test -p romlib-device` for aarch64-unknown-linux-musl and
#      armv7-unknown-linux-gnueabihf (static test binaries, runner qemu-aarch64 / qemu-arm;
#      binfmt_misc is not available here, so the runner is set per target in cross/env.sh);
#   2. end to end: the host `romlib` builds a signed sample library; each static ARM
#      `romlib-device` (target/cross/<arch>/romlib-device) lists, verifies, installs (compared
#      byte for byte with the input; also with --layout for muOS, Knulli, MinUI, Onion and ArkOS:
#      folder games, and flat ROMs, cue/bin discs and arcade zips identical to the host's,
#      a save beside a flat ROM kept, adopt),
#      uninstalls, and refuses a tampered manifest, a corrupted
#      pack, an untrusted key and bad usage with the documented exit status; then the same
#      installs from a portable file (`romlib export`) and over HTTP from `romlib serve` on
#      loopback by host name (`http://localhost:PORT/`: libc-free name resolution).
#   3. the host's damage, full-disk, read-error, kill -9, bad-server and front-end test
#      suites (tests/tests/damage.rs, full_disk.rs, faults.rs, crash_loops.rs, network.rs,
#      frontend.rs: --json, --progress json and examples/frontend.py; https.rs: nginx over
#      HTTPS with a private CA and bad certificates, redirects, python3 -m http.server, an
#      S3 server after `romlib publish`; bitrot.rs, cards.rs, hostile_card.rs; input_layouts.rs
#      and archives.rs: flat placement, discs, arcade zips, adopt; rollback.rs and
#      snapshot.rs: revisions that only go up, the signed snapshot's expiry and checks) with
#      each ARM romlib-device under QEMU, both architectures at once;
#   4. optional big-endian check: `cargo test -p romlib-format -p romlib-device` for
#      s390x-unknown-linux-gnu (static glibc, s390x-linux-gnu-gcc, runner qemu-s390x). Skipped,
#      not failed, when its rustup target or Debian cross linker cannot be installed.
# Env knobs: CROSS_TEST_PROFILE=dev|release (default release, see below), CROSS_SKIP_BUILD=1
# (reuse the binaries in target/cross), CROSS_BIG_ENDIAN=auto|0 (default auto: run if it can
# be set up), CROSS_KEEP_TMP=1 (keep the scratch directory).
# Idempotent; works from any directory; honours CARGO_TARGET_DIR. Prints
# "cross: N passed, M failed" and exits non-zero on any failure.
set -euo pipefail

T0=$SECONDS
step() { printf '\n==> %s\n' "$*"; }
die() { printf 'cross/test.sh: ERROR: %s\n' "$*" >&2; exit 1; }

if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=cross/env.sh
source cross/env.sh

# Test profile: release. Measured on this 2-core machine (shared with another build), cold
# target dir, `cargo test -p romlib-device --target aarch64-unknown-linux-musl --no-run`:
#   dev:     5m03s wall, 9m23s user    release: 1m09s wall, 2m05s user
# The workspace sets `[profile.dev.package."*"] opt-level = 3` and dev keeps full debuginfo,
# so a dev test build compiles every dependency (host proc-macros and build scripts too) at
# -O3 with debuginfo; release has debug = false, leaves build scripts at -O0 and shares them
# with the ARM test builds of the other target. Release test binaries also run
# faster under QEMU. Override with CROSS_TEST_PROFILE=dev.
TEST_PROFILE="${CROSS_TEST_PROFILE:-release}"
case "$TEST_PROFILE" in
    dev) PROFILE_ARGS=() ;;
    release) PROFILE_ARGS=(--release) ;;
    *) die "CROSS_TEST_PROFILE must be dev or release" ;;
esac

PASS=0
FAIL=0
FAILED=()
declare -A TIMES=()
ok() { PASS=$((PASS + 1)); echo "  PASS: $*"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$*"); echo "  FAIL: $*"; }

# ---------------------------------------------------------------------------------------------
if [[ "${CROSS_SKIP_BUILD:-0}" != 1 ]]; then
    step "cross/build.sh"
    t=$SECONDS
    "$ROOT/cross/build.sh"
    TIMES[build.sh]=$((SECONDS - t))
fi
for a in "${CROSS_ARCHES[@]}"; do
    [[ -x "target/cross/$a/romlib-device" ]] || die "target/cross/$a/romlib-device missing"
done
if ! command -v python3 >/dev/null; then
    step "Installing python3 (sample data and byte flips)"
    apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3
fi
TD="$(cross_target_dir)"
cross_warn_rustflags

# ---------------------------------------------------------------------------------------------
for a in "${CROSS_ARCHES[@]}"; do
    triple="${CROSS_TRIPLE[$a]}"
    step "cargo test -p romlib-format -p romlib-device --target $triple ($TEST_PROFILE, runner ${CROSS_QEMU[$a]})"
    t=$SECONDS
    if cargo test "${CROSS_LOCKED[@]}" "${PROFILE_ARGS[@]}" -p romlib-format -p romlib-device --target "$triple"; then
        ok "device test suite on $a"
    else
        bad "device test suite on $a"
    fi
    TIMES[test-$a]=$((SECONDS - t))
done

# ---------------------------------------------------------------------------------------------
# The host romlib that builds the test libraries: the dev build, which the host suite (and
# the fault suites below, which drive it too) already made when run from tests/run-all.sh.
step "Building the host romlib (cargo build -p romlib-host)"
t=$SECONDS
cargo build "${CROSS_LOCKED[@]}" -p romlib-host --bin romlib
TIMES[host-build]=$((SECONDS - t))
ROMLIB="$TD/debug/romlib"
[[ -x "$ROMLIB" ]] || die "$ROMLIB missing"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/romlib-cross.XXXXXX")"
if [[ "${CROSS_KEEP_TMP:-0}" == 1 ]]; then
    trap 'echo "kept $WORK"' EXIT
else
    trap 'rm -rf -- "$WORK"' EXIT
fi

step "Generating the deterministic sample input in $WORK/in"
GAMES=("Alpha Quest (USA)" "Alpha Quest (USA) (Rev 1)" "beta-racer")
python3 - "$WORK/in" <<'PY'
import os, random, sys
root = sys.argv[1]
random.seed(20240601)
def put(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
a = os.path.join(root, "Alpha Quest (USA)")
b = os.path.join(root, "beta-racer")
shared = random.randbytes(150_000)                # in both games: deduplicated
game = random.randbytes(300_000)
put(os.path.join(a, "game.bin"), game)
# A revision: scattered small edits and one insertion, so most of its chunks are stored as
# deltas against the first version's (format version 2).
rev = bytearray(game)
for _ in range(20):
    rev[random.randrange(len(rev))] ^= 0x5A
rev[150_000:150_000] = random.randbytes(1024)
put(os.path.join(root, "Alpha Quest (USA) (Rev 1)", "game.bin"), bytes(rev))
put(os.path.join(a, "data", "shared.dat"), shared)
put(os.path.join(a, "data", "levels", "level1.map"), random.randbytes(4_321))
put(os.path.join(a, "readme.txt"),                # compressible
    "".join(f"line {i}: {random.choice(['fire','ice','wind'])}\n" for i in range(5000)).encode())
put(os.path.join(b, "racer.rom"), random.randbytes(200_000))
put(os.path.join(b, "assets", "shared.dat"), shared)
put(os.path.join(b, "assets", "tiny.cfg"), b"speed=3\n")
PY
(cd "$WORK/in" && find . -type f -printf '%s\t%p\n' | sort -k2)

# A collection in system folders, for flat placement under each layout: a game of one
# file, a cue/bin disc and a zipped arcade set (deflated, as sets are found).
python3 - "$WORK/sys" <<'PY'
import os, random, sys, zipfile
root = sys.argv[1]
random.seed(20261206)
def put(rel, data):
    p = os.path.join(root, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)
put("gb/Pocket (World).gb", random.randbytes(40_000))
put("psx/Disc (Track 1).bin", random.randbytes(120_000))
put("psx/Disc (Track 2).bin", random.randbytes(30_000))
put("psx/Disc.cue", b'FILE "Disc (Track 1).bin" BINARY\n  TRACK 01 MODE2/2352\n'
    b'FILE "Disc (Track 2).bin" BINARY\n  TRACK 02 AUDIO\n')
os.makedirs(os.path.join(root, "mame"), exist_ok=True)
with zipfile.ZipFile(os.path.join(root, "mame", "pacman.zip"), "w", zipfile.ZIP_DEFLATED) as z:
    for name in ["pacman.6e", "pacman.5e", "82s123.7f"]:
        z.writestr(name, random.randbytes(8_000))
PY

step "Host: romlib keygen + romlib build"
export ROMLIB_CONFIG_DIR="$WORK/config"  # keygen trusts its key here, not in your own store
"$ROMLIB" keygen --secret-key "$WORK/K.sec" --public-key "$WORK/K.pub"
"$ROMLIB" keygen --secret-key "$WORK/other.sec" --public-key "$WORK/other.pub" --no-trust
"$ROMLIB" build -i "$WORK/in" -o "$WORK/lib" --signing-key "$WORK/K.sec"
# The same games with a system recorded (--system), for installs with --layout.
"$ROMLIB" build -q -i "$WORK/in" -o "$WORK/lib-layout" --signing-key "$WORK/K.sec" --system nes
"$ROMLIB" build -q -i "$WORK/sys" -o "$WORK/lib-sys" --signing-key "$WORK/K.sec"
# The host's install of the arcade set: every device's archive must be these bytes.
"$ROMLIB" install -g pacman -r "$WORK/lib-sys" --install-dir "$WORK/host-zip" --layout knulli
find "$WORK/lib" -type f -printf '%s\t%P\n' | sort -k2

# Tampered libraries (copies): one byte flipped in the middle of a file.
flip_middle() {
    python3 - "$1" <<'PY'
import os, sys
p = sys.argv[1]
n = os.path.getsize(p)
with open(p, "r+b") as f:
    f.seek(n // 2)
    b = f.read(1)[0]
    f.seek(n // 2)
    f.write(bytes([b ^ 0xFF]))
print(f"flipped byte {n // 2} of {p} ({n} bytes)")
PY
}
TITLE="${GAMES[0]}"
cp -a "$WORK/lib" "$WORK/lib-badmanifest"
flip_middle "$WORK/lib-badmanifest/games/$TITLE.manifest"
cp -a "$WORK/lib" "$WORK/lib-badpack"
flip_middle "$WORK/lib-badpack/packs/pack-0001.pkg"
# A library whose delta chunks' base is damaged: every base record a delta names gets one
# payload byte flipped (the records are found by walking the pack as SPEC section 2 lays
# it out).
cp -a "$WORK/lib" "$WORK/lib-badbase"
python3 - "$WORK/lib-badbase/packs/pack-0001.pkg" <<'PY'
import struct, sys
p = sys.argv[1]
data = bytearray(open(p, "rb").read())
pos, records = 32, {}
while pos < len(data) - 64:
    h = bytes(data[pos:pos + 32])
    ulen, clen, method = struct.unpack_from("<IIB", data, pos + 32)
    records[h] = (pos, clen, method)
    pos += 42 + clen
bases = {bytes(data[o + 42:o + 74]) for (o, c, m) in records.values() if m == 3}
assert bases, "no delta chunks in the sample library"
for b in bases:
    o, c, m = records[b]
    data[o + 42 + c // 2] ^= 0xFF
open(p, "wb").write(data)
print(f"damaged {len(bases)} base record(s) of {p}")
PY
# A portable file of every game (romlib export), and a damaged copy.
"$ROMLIB" export -r "$WORK/lib" --all -o "$WORK/all.romlib" --trusted-key "$WORK/K.pub"
cp "$WORK/all.romlib" "$WORK/bad.romlib"
flip_middle "$WORK/bad.romlib"
# The library over HTTP on loopback (romlib serve), for installs by host name under QEMU.
"$ROMLIB" serve -r "$WORK/lib" --listen 127.0.0.1:0 >"$WORK/serve.log" 2>&1 &
SERVE_PID=$!
if [[ "${CROSS_KEEP_TMP:-0}" == 1 ]]; then
    trap 'kill "$SERVE_PID" 2>/dev/null || true; echo "kept $WORK"' EXIT
else
    trap 'kill "$SERVE_PID" 2>/dev/null || true; rm -rf -- "$WORK"' EXIT
fi
for _ in $(seq 100); do grep -q 'http://' "$WORK/serve.log" && break; sleep 0.1; done
PORT="$(grep -o '127.0.0.1:[0-9]*' "$WORK/serve.log" | head -1 | cut -d: -f2)"
[[ -n "$PORT" ]] || die "romlib serve did not start: $(cat "$WORK/serve.log")"

# Run a command, expect an exact exit status; output goes to the log with a prefix.
expect_status() {
    local want="$1" what="$2"
    shift 2
    local got=0
    "$@" >"$WORK/out" 2>&1 || got=$?
    sed 's/^/    | /' "$WORK/out"
    if [[ "$got" == "$want" ]]; then ok "$what (exit $got)"; else bad "$what (exit $got, want $want)"; fi
}

# ---------------------------------------------------------------------------------------------
for a in "${CROSS_ARCHES[@]}"; do
    t=$SECONDS
    Q="${CROSS_QEMU[$a]}"
    DEV=("$Q" "$ROOT/target/cross/$a/romlib-device")
    DIR="$WORK/install-$a"
    KEY=(--trusted-key "$WORK/K.pub")
    step "End to end on $a: $Q target/cross/$a/romlib-device"

    expect_status 0 "$a list-games" "${DEV[@]}" list-games -r "$WORK/lib" "${KEY[@]}"
    for g in "${GAMES[@]}"; do
        if grep -qF -- "$g" "$WORK/out" && ! grep -q UNTRUSTED "$WORK/out"; then
            ok "$a list-games shows '$g' as trusted"
        else
            bad "$a list-games shows '$g' as trusted"
        fi
    done

    for g in "${GAMES[@]}"; do
        expect_status 0 "$a verify '$g'" "${DEV[@]}" verify -g "$g" -r "$WORK/lib" "${KEY[@]}"
        expect_status 0 "$a install '$g'" "${DEV[@]}" install -g "$g" -r "$WORK/lib" \
            --install-dir "$DIR" "${KEY[@]}"
        if diff -r -x .romlib-installed -- "$WORK/in/$g" "$DIR/$g"; then
            ok "$a installed '$g' is byte-identical to the input"
        else
            bad "$a installed '$g' is byte-identical to the input"
        fi
    done
    # Installing again over an installed game must also work (replace path).
    expect_status 0 "$a reinstall '$TITLE'" "${DEV[@]}" install -g "$TITLE" -r "$WORK/lib" \
        --install-dir "$DIR" "${KEY[@]}"
    diff -r -x .romlib-installed -- "$WORK/in/$TITLE" "$DIR/$TITLE" \
        && ok "$a reinstalled '$TITLE' is byte-identical" \
        || bad "$a reinstalled '$TITLE' is byte-identical"

    for g in "${GAMES[@]}"; do
        expect_status 0 "$a uninstall '$g'" "${DEV[@]}" uninstall -t "$g" --install-dir "$DIR"
        [[ ! -e "$DIR/$g" ]] && ok "$a '$g' is gone after uninstall" \
            || bad "$a '$g' is gone after uninstall"
    done

    # Layouts: the game lands in the folder each handheld OS expects for its system, and
    # uninstall --layout finds it there.
    for spec in "muos:nes" "knulli:nes" "minui:Nintendo Entertainment System (FC)" "onion:FC" \
        "arkos:nes"; do
        layout=${spec%%:*} folder=${spec#*:}
        LDIR="$WORK/layout-$a-$layout"
        expect_status 0 "$a install --layout $layout" "${DEV[@]}" install -g beta-racer \
            -r "$WORK/lib-layout" --install-dir "$LDIR" --layout "$layout" "${KEY[@]}"
        diff -r -x .romlib-installed -- "$WORK/in/beta-racer" "$LDIR/$folder/beta-racer" \
            && ok "$a --layout $layout put beta-racer byte-identical in '$folder/'" \
            || bad "$a --layout $layout put beta-racer byte-identical in '$folder/'"
        expect_status 0 "$a uninstall --layout $layout" "${DEV[@]}" uninstall -t beta-racer \
            --install-dir "$LDIR" --layout "$layout"
        [[ ! -e "$LDIR/$folder/beta-racer" ]] && ok "$a '$folder/beta-racer' gone after uninstall" \
            || bad "$a '$folder/beta-racer' gone after uninstall"
    done
    # Flat placement: a game of one file and a cue/bin disc lie in the system folder (MinUI
    # keeps a disc in a folder), an arcade set is the host's archive byte for byte, a save
    # beside a flat ROM outlives a reinstall and an uninstall, and adopt takes a copy.
    for spec in "muos:gb:psx:arcade" "knulli:gb:psx:mame" \
        "minui:Game Boy (GB):Sony PlayStation (PS)/Disc:Arcade (FBN)" "onion:GB:PS:ARCADE" \
        "arkos:gb:psx:arcade"; do
        IFS=: read -r layout gb psx arcade <<<"$spec"
        LDIR="$WORK/flat-$a-$layout"
        for g in "Pocket (World)" Disc pacman; do
            expect_status 0 "$a install --layout $layout '$g'" "${DEV[@]}" install -g "$g" \
                -r "$WORK/lib-sys" --install-dir "$LDIR" --layout "$layout" "${KEY[@]}"
        done
        cmp -s "$WORK/sys/gb/Pocket (World).gb" "$LDIR/$gb/Pocket (World).gb" \
            && cmp -s "$WORK/sys/psx/Disc (Track 2).bin" "$LDIR/$psx/Disc (Track 2).bin" \
            && cmp -s "$WORK/sys/psx/Disc.cue" "$LDIR/$psx/Disc.cue" \
            && cmp -s "$WORK/host-zip/mame/pacman.zip" "$LDIR/$arcade/pacman.zip" \
            && ok "$a --layout $layout placed the ROM, the disc and the host's very archive" \
            || bad "$a --layout $layout placed the ROM, the disc and the host's very archive"
        echo save >"$LDIR/$gb/Pocket (World).sav"
        expect_status 0 "$a reinstall --layout $layout" "${DEV[@]}" install -g "Pocket (World)" \
            -r "$WORK/lib-sys" --install-dir "$LDIR" --layout "$layout" "${KEY[@]}"
        expect_status 0 "$a verify --installed --all --layout $layout" "${DEV[@]}" verify \
            --installed --all --install-dir "$LDIR" --layout "$layout" "${KEY[@]}"
        expect_status 0 "$a uninstall --layout $layout" "${DEV[@]}" uninstall \
            -g "Pocket (World)" --install-dir "$LDIR" --layout "$layout"
        [[ ! -e "$LDIR/$gb/Pocket (World).gb" && "$(cat "$LDIR/$gb/Pocket (World).sav")" == save ]] \
            && ok "$a --layout $layout: ROM gone, save kept" \
            || bad "$a --layout $layout: ROM gone, save kept"
        cp "$WORK/sys/gb/Pocket (World).gb" "$LDIR/$gb/"
        expect_status 0 "$a adopt --layout $layout" "${DEV[@]}" adopt -r "$WORK/lib-sys" \
            --install-dir "$LDIR" --layout "$layout" "${KEY[@]}"
        [[ -f "$LDIR/$gb/.romlib-games/Pocket (World)" ]] && ok "$a adopted the copied ROM" \
            || bad "$a adopted the copied ROM"
    done
    expect_status 2 "$a unknown layout" "${DEV[@]}" install -g beta-racer \
        -r "$WORK/lib-layout" --install-dir "$WORK/layout-$a-bad" --layout garlic "${KEY[@]}"

    # Refusals: exit status exactly 1 and nothing visible in the install directory.
    not_visible() {
        [[ ! -e "$DIR/$1" ]] && ok "$a '$1' not visible after refusal" \
            || bad "$a '$1' not visible after refusal"
    }
    expect_status 1 "$a verify refuses a tampered manifest" \
        "${DEV[@]}" verify -g "$TITLE" -r "$WORK/lib-badmanifest" "${KEY[@]}"
    expect_status 1 "$a install refuses a tampered manifest" \
        "${DEV[@]}" install -g "$TITLE" -r "$WORK/lib-badmanifest" --install-dir "$DIR" "${KEY[@]}"
    not_visible "$TITLE"
    expect_status 1 "$a install refuses a manifest signed by an untrusted key" \
        "${DEV[@]}" install -g "$TITLE" -r "$WORK/lib" --install-dir "$DIR" \
        --trusted-key "$WORK/other.pub"
    not_visible "$TITLE"

    # Corrupted pack: the flipped byte lies in the chunks of at least one game (which one
    # depends on pack order, so try every game). An install must either be refused (exit 1,
    # nothing visible) or succeed with exactly the right bytes (the chunk was not its own).
    refused=0
    for g in "${GAMES[@]}"; do
        got=0
        "${DEV[@]}" install -g "$g" -r "$WORK/lib-badpack" --install-dir "$DIR" "${KEY[@]}" \
            >"$WORK/out" 2>&1 || got=$?
        sed 's/^/    | /' "$WORK/out"
        case "$got" in
            1) refused=$((refused + 1))
               ok "$a install '$g' from a corrupted pack refused (exit 1)"
               not_visible "$g" ;;
            0) if diff -r -x .romlib-installed -q -- "$WORK/in/$g" "$DIR/$g"; then
                   ok "$a install '$g' from a corrupted pack (untouched chunks) is byte-identical"
               else
                   bad "$a install '$g' from a corrupted pack succeeded WITH WRONG DATA"
               fi
               "${DEV[@]}" uninstall -t "$g" --install-dir "$DIR" >/dev/null ;;
            *) bad "$a install '$g' from a corrupted pack: exit $got, want 1 (or 0)" ;;
        esac
    done
    ((refused >= 1)) && ok "$a corrupted pack refused for $refused game(s)" \
        || bad "$a corrupted pack refused for at least one game"
    # A delta whose base is damaged: refused (exit 1, naming the base), nothing visible.
    got=0
    "${DEV[@]}" install -g "${GAMES[1]}" -r "$WORK/lib-badbase" --install-dir "$WORK/badbase-$a" \
        "${KEY[@]}" >"$WORK/out" 2>&1 || got=$?
    if [[ "$got" == 1 ]] && grep -q "base chunk" "$WORK/out" && [[ ! -e "$WORK/badbase-$a/${GAMES[1]}" ]]; then
        ok "$a install of a delta game with a damaged base refused, naming the base"
    else
        bad "$a install of a delta game with a damaged base: exit $got: $(cat "$WORK/out")"
    fi
    expect_status 2 "$a usage error" "${DEV[@]}" install -r "$WORK/lib"
    # The same from a portable file: list, install byte-identical, refuse a damaged copy.
    expect_status 0 "$a list-games of a portable file" \
        "${DEV[@]}" list-games -r "$WORK/all.romlib" "${KEY[@]}"
    PDIR="$WORK/install-portable-$a"
    for g in "${GAMES[@]}"; do
        expect_status 0 "$a install '$g' from a portable file" \
            "${DEV[@]}" install -g "$g" -r "$WORK/all.romlib" --install-dir "$PDIR" "${KEY[@]}"
        diff -r -x .romlib-installed -- "$WORK/in/$g" "$PDIR/$g" \
            && ok "$a '$g' from a portable file is byte-identical to the input" \
            || bad "$a '$g' from a portable file is byte-identical to the input"
    done
    refused=0
    for g in "${GAMES[@]}"; do
        got=0
        "${DEV[@]}" install -g "$g" -r "$WORK/bad.romlib" --install-dir "$WORK/bad-$a" "${KEY[@]}" \
            >"$WORK/out" 2>&1 || got=$?
        if [[ "$got" == 1 ]]; then
            refused=$((refused + 1))
            [[ ! -e "$WORK/bad-$a/$g" ]] || bad "$a '$g' visible after a refused install"
        elif [[ "$got" == 0 ]]; then
            diff -r -x .romlib-installed -q -- "$WORK/in/$g" "$WORK/bad-$a/$g" >/dev/null \
                || bad "$a install '$g' from a damaged portable file succeeded WITH WRONG DATA"
        else
            bad "$a install '$g' from a damaged portable file: exit $got"
        fi
    done
    ((refused >= 1)) && ok "$a damaged portable file refused for $refused game(s)" \
        || bad "$a damaged portable file refused for at least one game"
    # Over HTTP, by host name (not only an IP): list, install byte-identical.
    expect_status 0 "$a list-games --from http://localhost:$PORT/" \
        "${DEV[@]}" list-games --from "http://localhost:$PORT/" "${KEY[@]}"
    NDIR="$WORK/install-http-$a"
    for g in "${GAMES[@]}"; do
        expect_status 0 "$a install '$g' --from http://localhost:$PORT/" \
            "${DEV[@]}" install --from "http://localhost:$PORT/" -g "$g" --install-dir "$NDIR" "${KEY[@]}"
        diff -r -x .romlib-installed -- "$WORK/in/$g" "$NDIR/$g" \
            && ok "$a '$g' over HTTP is byte-identical to the input" \
            || bad "$a '$g' over HTTP is byte-identical to the input"
    done
    expect_status 1 "$a install of a game the server lacks" \
        "${DEV[@]}" install --from "http://localhost:$PORT/" -g no-such-game --install-dir "$NDIR" "${KEY[@]}"
    TIMES[e2e-$a]=$((SECONDS - t))
done

# ---------------------------------------------------------------------------------------------
# Optional big-endian run (all ARM targets are little-endian): s390x is the big-endian target
# this rustup can fetch. Set-up problems skip the step; test failures count as failures.
if [[ "${CROSS_BIG_ENDIAN:-auto}" != 0 ]]; then
    step "Big-endian: cargo test -p romlib-format -p romlib-device --target $BE_TRIPLE (qemu-s390x)"
    t=$SECONDS
    be_ready=1
    be_missing=()
    for p in "${BE_APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' \
            || be_missing+=("$p")
    done
    if ((${#be_missing[@]})); then
        echo "installing ${be_missing[*]}"
        { apt-get update && DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${be_missing[@]}"; } || be_ready=0
    fi
    if ((be_ready)) && ! rustup target list --installed | grep -qx "$BE_TRIPLE"; then
        timeout 300 rustup target add "$BE_TRIPLE" || be_ready=0
    fi
    if ((be_ready)); then
        if cargo test "${CROSS_LOCKED[@]}" "${PROFILE_ARGS[@]}" -p romlib-format -p romlib-device \
            --target "$BE_TRIPLE"; then
            ok "format + device test suites on big-endian $BE_TRIPLE"
        else
            bad "format + device test suites on big-endian $BE_TRIPLE"
        fi
    else
        echo "  SKIP: could not set up $BE_TRIPLE (rustup target or Debian cross linker)"
    fi
    TIMES[big-endian]=$((SECONDS - t))
fi

# ---------------------------------------------------------------------------------------------
# 3. The host's damage, full-disk, read-error (faultfs) and kill -9 suites with each ARM
#    romlib-device under QEMU
#    (tests/src/lib.rs runs ROMLIB_DEVICE_BIN through ROMLIB_DEVICE_RUNNER). The kill loops
#    run CROSS_CRASH_ITERS times each here (default 10; 50 on the host suite).
#    The two architectures run at once (each suite leaves a core partly idle: QEMU, kill
#    loops and servers wait), from test binaries built once; each one's output is printed
#    when both are done.
SUITES=(damage full_disk crash_loops faults network frontend bitrot cards https hostile_card
    input_layouts archives rollback snapshot prune games_layout)
step "Building the host suites: ${SUITES[*]}"
t=$SECONDS
suite_args=()
for s in "${SUITES[@]}"; do suite_args+=(--test "$s"); done
mapfile -t SUITE_BINS < <(cargo test "${CROSS_LOCKED[@]}" -p romlib-tests "${suite_args[@]}" \
    --no-run --message-format=json | python3 -c '
import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["profile"]["test"]:
        print(m["executable"])')
((${#SUITE_BINS[@]} == ${#SUITES[@]})) || die "expected ${#SUITES[@]} suite binaries, got ${#SUITE_BINS[@]}"
TIMES[suites-build]=$((SECONDS - t))

# Runs every suite binary with the ARM binary of $1 under QEMU, from the test crate's folder
# as cargo would; exits non-zero if any fails.
run_suites() {
    local a=$1 bin status=0
    for bin in "${SUITE_BINS[@]}"; do
        echo "---- $(basename "$bin") with the $a romlib-device"
        (cd "$ROOT/tests" && ROMLIB_DEVICE_BIN="$ROOT/target/cross/$a/romlib-device" \
            ROMLIB_DEVICE_RUNNER="${CROSS_QEMU[$a]}" \
            ROMLIB_CRASH_ITERS="${CROSS_CRASH_ITERS:-10}" \
            ROMLIB_HOSTILE_ITERS="${CROSS_HOSTILE_ITERS:-50}" \
            "$bin") || status=1
    done
    return $status
}

step "Damage, full disks, read errors, bad servers, kill -9, front ends, bit rot, cards, hostile cards, prune and HTTPS on ${CROSS_ARCHES[*]} at once"
t=$SECONDS
declare -A SUITE_PID=()
for a in "${CROSS_ARCHES[@]}"; do
    ( t0=$SECONDS; s=0; run_suites "$a" || s=$?; echo "$((SECONDS - t0))" >"$WORK/suites-$a.secs"; exit $s ) \
        >"$WORK/suites-$a.log" 2>&1 &
    SUITE_PID[$a]=$!
done
for a in "${CROSS_ARCHES[@]}"; do
    status=0
    wait "${SUITE_PID[$a]}" || status=$?
    step "Suites with the $a romlib-device"
    sed 's/^/    | /' "$WORK/suites-$a.log"
    TIMES[faults-$a]=$(cat "$WORK/suites-$a.secs" 2>/dev/null || echo "?")
    if ((status == 0)); then
        ok "damage, full-disk, read-error, bad-server, kill -9, front-end, bit-rot, card, hostile-card and https suites with the $a romlib-device"
    else
        bad "damage, full-disk, read-error, bad-server, kill -9, front-end, bit-rot, card, hostile-card and https suites with the $a romlib-device"
    fi
done
TIMES[faults-both]=$((SECONDS - t))

# ---------------------------------------------------------------------------------------------
step "Timings (s)"
for k in build.sh test-aarch64 test-armv7 host-build e2e-aarch64 e2e-armv7 big-endian suites-build faults-aarch64 faults-armv7 faults-both; do
    [[ -n "${TIMES[$k]:-}" ]] && printf '  %-14s %5s\n' "$k" "${TIMES[$k]}"
done
printf '  %-14s %5s\n' total "$((SECONDS - T0))"
if ((FAIL)); then
    printf 'failed checks:\n'
    printf '  %s\n' "${FAILED[@]}"
fi
echo "cross: $PASS passed, $FAIL failed"
((FAIL == 0))
