#!/usr/bin/env bash
# The Windows host: builds `romlib.exe` for x86_64-pc-windows-gnu (mingw-w64; zstd-sys's C
# is compiled by x86_64-w64-mingw32-gcc, which is also rustc's default linker for that
# target) and runs the host's end-to-end suites against it under Wine, plus `cargo clippy`
# for aarch64-apple-darwin of every shipped crate (docs/platforms.md, "Platforms").
#
# Under Wine: tests/tests/builder.rs (keygen, build, incremental rebuild, list-games,
# install, uninstall, train-dict), collector.rs (verify, verify --dat, show, DAT names),
# portable.rs (export, import, cat, show and verify of portable files, device installs from
# them), serve.rs (the HTTP server, stopped by Ctrl-C) and platforms.rs (Windows device
# names, drive letters, backslashes and paths over 260 characters, a rename over a file held
# open without FILE_SHARE_DELETE, the same library from the Linux and the Windows build)
# and release.rs (sign-file and verify-file, which sign a release's SHA256SUMS).
# network.rs is not run: it needs nginx and romlib-device beside the served library; the
# serve tests in portable.rs and platforms.rs already have a Linux romlib-device install
# from a Windows `romlib serve`.
#
# Installs what it needs (Debian, as root): gcc-mingw-w64-x86-64, wine64, the rustup targets.
# The Wine prefix is a temp dir, removed at the end. Env knobs: CARGO_TARGET_DIR (honoured),
# WINDOWS_SKIP_SETUP=1 (no apt/rustup), WINDOWS_TESTS="builder collector ..." (the suites
# to run), WINDOWS_SKIP_MACOS=1.
set -euo pipefail
step() { printf '\n==> %s\n' "$*"; }
die() { printf 'windows/test.sh: ERROR: %s\n' "$*" >&2; exit 1; }
start=$SECONDS
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
LOCKED=()
[[ -f Cargo.lock ]] && LOCKED=(--locked)
WIN=x86_64-pc-windows-gnu
MAC=aarch64-apple-darwin

if [[ "${WINDOWS_SKIP_SETUP:-0}" != 1 ]]; then
    step "Checking apt packages and rustup targets"
    missing=()
    command -v x86_64-w64-mingw32-gcc >/dev/null || missing+=(gcc-mingw-w64-x86-64)
    [[ -x /usr/lib/wine/wine64 ]] || command -v wine64 >/dev/null || missing+=(wine64)
    if ((${#missing[@]})); then
        [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}) and not root"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
    installed="$(rustup target list --installed)"
    for t in "$WIN" "$MAC"; do
        grep -qx -- "$t" <<<"$installed" || rustup target add "$t"
    done
    echo "setup: $((SECONDS - start)) s"
fi
WINE="$(command -v wine64 || echo /usr/lib/wine/wine64)"
[[ -x "$WINE" ]] || die "no wine64"
WINESERVER="$(command -v wineserver || echo /usr/lib/wine/wineserver64)"
[[ -x "$WINESERVER" ]] || die "no wineserver"
export WINESERVER

TD="$(cargo metadata --format-version 1 --no-deps "${LOCKED[@]}" \
      | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[[ -n "$TD" ]] || die "could not read target_directory from cargo metadata"

if [[ "${WINDOWS_SKIP_MACOS:-0}" != 1 ]]; then
    # The shipped crates, their unit tests included, linted as macOS builds them: every
    # Linux-only line must sit behind cfg. zstd-sys and md5-asm compile C in their build
    # scripts and Debian has no Apple SDK, so windows/check-only-cc.sh stands in for the C
    # compiler (empty objects; clippy never links). The tests crate is left out: its FUSE
    # fault file system is Linux only.
    step "cargo clippy for $MAC (format-spec, proto, device-runtime, host-builder)"
    t0=$SECONDS
    CC_aarch64_apple_darwin="$ROOT/windows/check-only-cc.sh" \
        cargo clippy "${LOCKED[@]}" --target "$MAC" --all-targets \
        -p romlib-format -p romlib-proto -p romlib-device -p romlib-host -- -D warnings
    echo "macOS check: $((SECONDS - t0)) s"
fi

step "Building romlib.exe ($WIN)"
t0=$SECONDS
cargo build "${LOCKED[@]}" -p romlib-host --bin romlib --target "$WIN"
EXE="$TD/$WIN/debug/romlib.exe"
[[ -f "$EXE" ]] || die "$EXE missing"
echo "build: $((SECONDS - t0)) s"

WINEPREFIX="$(mktemp -d /tmp/romlib-wine.XXXXXX)"
export WINEPREFIX WINEDEBUG=-all WINEARCH=win64
trap '"$WINESERVER" -k >/dev/null 2>&1 || true; rm -rf -- "$WINEPREFIX"' EXIT
step "Wine prefix $WINEPREFIX"
t0=$SECONDS
# One wineserver for the whole run, started before anything else uses the prefix: by
# default it exits a few seconds after its last client, and a test process starting in
# that window fails with "wine client error: recvmsg: Connection reset by peer".
"$WINESERVER" -p
# wineboot creates the prefix (and fails to start 32-bit helpers a wine64-only install
# lacks; harmless).
"$WINE" wineboot --init >/dev/null 2>&1 || true
SYS32="$WINEPREFIX/drive_c/windows/system32"
[[ -d "$SYS32" ]] || die "Wine did not create $SYS32"
# Wine 8 lacks bcryptprimitives.dll (ProcessPrng), which Rust's std imports; windows/
# bcryptprimitives.c supplies it in this prefix only (see that file).
x86_64-w64-mingw32-gcc -O2 -shared -o "$SYS32/bcryptprimitives.dll" \
    windows/bcryptprimitives.c -lbcrypt
HOLD="$WINEPREFIX/hold.exe"
x86_64-w64-mingw32-gcc -O2 -municode -o "$HOLD" windows/hold.c
"$WINE" "$EXE" --version
echo "prefix: $((SECONDS - t0)) s"

step "Host end-to-end suites against romlib.exe under Wine"
t0=$SECONDS
tests=()
for t in ${WINDOWS_TESTS:-builder collector portable serve platforms release}; do tests+=(--test "$t"); done
ROMLIB_HOST_BIN="$EXE" ROMLIB_HOST_RUNNER="$WINE" ROMLIB_HOLD_EXE="$HOLD" \
    cargo test "${LOCKED[@]}" -p romlib-tests "${tests[@]}"
echo "suites: $((SECONDS - t0)) s"
step "windows/test.sh: done in $((SECONDS - start)) s"
