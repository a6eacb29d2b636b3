#!/usr/bin/env bash
# Builds every shipped binary, writes them to <repo>/target/release-artefacts/ with a
# SHA256SUMS file and its signature SHA256SUMS.sig (romlib sign-file; README, "Release
# artefacts"):
#   romlib-<version>-x86_64-linux            host, x86_64 Linux (glibc)
#   romlib-<version>-x86_64-windows.exe      host, Windows x86_64 (mingw-w64)
#   romlib-device-<version>-x86_64-linux     device, static x86_64 (musl)
#   romlib-device-<version>-aarch64-linux    device, static aarch64 (musl; cross/build.sh)
#   romlib-device-<version>-armv7-linux      device, static armv7 hard-float (cross/build.sh)
# Installs what it needs (Debian, as root: mingw-w64, the ARM cross gcc, rustup targets).
set -euo pipefail
usage() {
    cat <<'USAGE'
Usage: bash release/build.sh [--key FILE]

Builds every shipped binary into target/release-artefacts/, writes SHA256SUMS and signs it.

  --key FILE   the release secret key (from `romlib keygen`) that signs SHA256SUMS. Without
               it a throw-away key is made and its public half written beside the
               artefacts as UNTRUSTED-throwaway.pub: good for trying the script, never for
               a release.
  --help       this text

Users check a release with the publisher's public key, obtained separately:
  romlib verify-file SHA256SUMS --trusted-key release.pub && sha256sum -c SHA256SUMS
USAGE
}
die_usage() { printf 'release/build.sh: %s (see --help)\n' "$*" >&2; exit 2; }
die() { printf 'release/build.sh: ERROR: %s\n' "$*" >&2; exit 1; }
step() { printf '\n==> %s\n' "$*"; }

KEY=""
while (($#)); do
    case "$1" in
        --help | -h) usage; exit 0 ;;
        --key)
            (($# >= 2)) || die_usage "--key needs a file"
            KEY="$2"; shift 2 ;;
        *) die_usage "unknown argument: $1" ;;
    esac
done
if [[ -n "$KEY" ]]; then
    [[ -f "$KEY" ]] || die_usage "--key $KEY: no such file"
    KEY="$(realpath -- "$KEY")"
fi
if [[ -n "${CARGO_TARGET_DIR:-}" ]]; then
    CARGO_TARGET_DIR="$(realpath -m -- "$CARGO_TARGET_DIR")"
    export CARGO_TARGET_DIR
fi
ROOT="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
start=$SECONDS
LOCKED=()
[[ -f Cargo.lock ]] && LOCKED=(--locked)
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)"
[[ -n "$VERSION" ]] || die "no workspace version in Cargo.toml"
TD="$(cargo metadata --format-version 1 --no-deps "${LOCKED[@]}" \
      | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
[[ -n "$TD" ]] || die "could not read target_directory from cargo metadata"

step "Setup"
if ! command -v x86_64-w64-mingw32-gcc >/dev/null; then
    [[ $(id -u) -eq 0 ]] || die "x86_64-w64-mingw32-gcc missing and not root"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-mingw-w64-x86-64 >/dev/null
fi
installed="$(rustup target list --installed)"
for t in x86_64-pc-windows-gnu x86_64-unknown-linux-musl; do
    grep -qx -- "$t" <<<"$installed" || rustup target add "$t"
done

OUT="$ROOT/target/release-artefacts"
rm -rf -- "$OUT.tmp"
mkdir -p -- "$OUT.tmp"

step "Host, x86_64 Linux"
cargo build "${LOCKED[@]}" --release -p romlib-host --bin romlib
cp -- "$TD/release/romlib" "$OUT.tmp/romlib-$VERSION-x86_64-linux"

step "Host, Windows x86_64"
cargo build "${LOCKED[@]}" --release -p romlib-host --bin romlib --target x86_64-pc-windows-gnu
cp -- "$TD/x86_64-pc-windows-gnu/release/romlib.exe" "$OUT.tmp/romlib-$VERSION-x86_64-windows.exe"

step "Device, static x86_64 (musl)"
cargo build "${LOCKED[@]}" --profile device -p romlib-device --bin romlib-device \
    --target x86_64-unknown-linux-musl
cp -- "$TD/x86_64-unknown-linux-musl/device/romlib-device" "$OUT.tmp/romlib-device-$VERSION-x86_64-linux"

step "Device, aarch64 and armv7 (cross/build.sh)"
bash cross/build.sh
cp -- target/cross/aarch64/romlib-device "$OUT.tmp/romlib-device-$VERSION-aarch64-linux"
cp -- target/cross/armv7/romlib-device "$OUT.tmp/romlib-device-$VERSION-armv7-linux"

step "Checksums and signature"
ROMLIB="$TD/release/romlib"
(cd "$OUT.tmp" && sha256sum -- romlib-* > SHA256SUMS)
if [[ -z "$KEY" ]]; then
    tmpkey="$(mktemp -d)"
    trap 'rm -rf -- "$tmpkey"' EXIT
    "$ROMLIB" keygen --secret-key "$tmpkey/throwaway.sec" --public-key "$OUT.tmp/UNTRUSTED-throwaway.pub" --no-trust
    KEY="$tmpkey/throwaway.sec"
    echo "WARNING: signed with a throw-away key (no --key): not a release" >&2
fi
"$ROMLIB" sign-file "$OUT.tmp/SHA256SUMS" --signing-key "$KEY"
# Check the signature with the public half: the throw-away one, or FILE.pub beside a
# --key FILE.sec when there is one.
for pub in "$OUT.tmp/UNTRUSTED-throwaway.pub" "${KEY%.sec}.pub"; do
    if [[ -f "$pub" && "$pub" != "$KEY" ]]; then
        "$ROMLIB" verify-file "$OUT.tmp/SHA256SUMS" --trusted-key "$pub"
        break
    fi
done
(cd "$OUT.tmp" && sha256sum -c --quiet SHA256SUMS)
rm -rf -- "$OUT"
mv -- "$OUT.tmp" "$OUT"
step "release/build.sh: done in $((SECONDS - start)) s"
ls -l -- "$OUT"
cat -- "$OUT/SHA256SUMS"
