#!/usr/bin/env bash
# Build the device binary `romlib-device` as fully static ARM executables (docs/platforms.md, "ARM builds"):
#   aarch64: aarch64-unknown-linux-musl, linked by rust-lld (no C toolchain involved)
#   armv7:   armv7-unknown-linux-gnueabihf, arm-linux-gnueabihf-gcc, +crt-static (static glibc)
# with the workspace's `device` profile (opt-level z, fat LTO, 1 CGU, panic=abort, strip).
# Results: <repo>/target/cross/{aarch64,armv7}/romlib-device (whatever CARGO_TARGET_DIR is).
#
# Idempotent; run as root on Debian (installs missing apt packages and rustup targets).
# Works from any directory. Env knobs: CARGO_TARGET_DIR (honoured), CROSS_MAX_BYTES (default
# 2359296 = 2.25 MiB: raised from 1.5 MiB for HTTPS, which adds about 570 KiB of rustls and
# RustCrypto code to either binary (docs/platforms.md, "ARM builds"); the http-only build is ~1.3 MiB), CROSS_SKIP_SETUP=1 (skip the apt/rustup step), CROSS_FEATURES (extra
# cargo flags: "--no-default-features" builds the http-only binary without TLS).
set -euo pipefail

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'cross/build.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# Resolve a relative CARGO_TARGET_DIR against the caller's cwd (as cargo would) before we cd.
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=cross/env.sh
source cross/env.sh

MAX_BYTES="${CROSS_MAX_BYTES:-2359296}"
APT_PACKAGES=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-armhf-cross
              libc6-dev-arm64-cross qemu-user file)
RUST_TARGETS=(aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf)

# ---------------------------------------------------------------------------------------------
if [[ "${CROSS_SKIP_SETUP:-0}" != 1 ]]; then
    step "Checking apt packages: ${APT_PACKAGES[*]}"
    missing=()
    for p in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]})); then
        [[ $(id -u) -eq 0 ]] || die "missing packages (${missing[*]}) and not root"
        step "Installing missing apt packages: ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update
        apt-get install -y --no-install-recommends "${missing[@]}"
    else
        echo "all present"
    fi

    step "Checking rustup targets: ${RUST_TARGETS[*]}"
    installed="$(rustup target list --installed)"
    for t in "${RUST_TARGETS[@]}"; do
        if grep -qx -- "$t" <<<"$installed"; then
            echo "$t: present"
        else
            echo "$t: adding"
            rustup target add "$t"
        fi
    done
fi

# ---------------------------------------------------------------------------------------------
step "Locating cargo's target directory"
TD="$(cross_target_dir)"
echo "$TD"
cross_warn_rustflags
ARCHES=("${CROSS_ARCHES[@]}")

for a in "${ARCHES[@]}"; do
    t="${CROSS_TRIPLE[$a]}"
    step "Building romlib-device for $a ($t, profile device)"
    start=$SECONDS
    # shellcheck disable=SC2086
    cargo build "${CROSS_LOCKED[@]}" ${CROSS_FEATURES:-} --profile device -p romlib-device \
        --bin romlib-device --target "$t"
    echo "build time $a: $((SECONDS - start)) s"
    mkdir -p "target/cross/$a"
    cp -f -- "$TD/$t/device/romlib-device" "target/cross/$a/romlib-device.tmp"
    mv -f -- "target/cross/$a/romlib-device.tmp" "target/cross/$a/romlib-device"
done

# ---------------------------------------------------------------------------------------------
step "Checking that the binaries are static"
for a in "${ARCHES[@]}"; do
    bin="target/cross/$a/romlib-device"
    desc="$(file -b -- "$bin")"
    echo "$a: $desc"
    # `file` says "statically linked" (or "static-pie linked" for a static PIE); either way
    # there must be no program interpreter and no needed shared library.
    case "$desc" in
        *"statically linked"* | *"static-pie linked"*) ;;
        *) die "$bin is not statically linked" ;;
    esac
    readelf=""
    for r in readelf aarch64-linux-gnu-readelf arm-linux-gnueabihf-readelf; do
        command -v "$r" >/dev/null && { readelf="$r"; break; }
    done
    if [[ -n "$readelf" ]]; then
        if "$readelf" -lW -- "$bin" | grep -q 'INTERP'; then die "$bin has a PT_INTERP"; fi
        if "$readelf" -dW -- "$bin" | grep -q '(NEEDED)'; then die "$bin needs shared libraries"; fi
    fi
done

step "Size report (limit $MAX_BYTES bytes)"
fail=0
for a in "${ARCHES[@]}"; do
    bin="target/cross/$a/romlib-device"
    bytes="$(stat -c %s -- "$bin")"
    mib="$(awk -v b="$bytes" 'BEGIN { printf "%.3f", b / 1048576 }')"
    if ((bytes > MAX_BYTES)); then
        printf '%-8s %10s bytes  %s MiB  TOO BIG  %s\n' "$a" "$bytes" "$mib" "$bin"
        fail=1
    else
        printf '%-8s %10s bytes  %s MiB  ok       %s\n' "$a" "$bytes" "$mib" "$bin"
    fi
done
((fail == 0)) || die "a binary exceeds $MAX_BYTES bytes"
step "cross/build.sh: done"
