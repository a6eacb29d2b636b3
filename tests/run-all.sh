#!/usr/bin/env bash
# Runs every test: the workspace suite on the host (installing fuse3 and nginx if missing),
# then the device runtime for aarch64 and
# 32-bit ARM under QEMU (cross/test.sh installs its toolchain and packages itself), then the
# Windows host's end-to-end suites under Wine and a macOS `cargo clippy` (windows/test.sh
# installs mingw-w64 and wine64 itself), then a
# smoke run of the peer benchmark on a small generated corpus (bench/run.sh --smoke, which
# installs the peer tools itself) and of the read and network benchmarks on small games, so
# the benchmarks cannot rot; then every fuzz target for a minute (fuzz/run.sh 60, which
# installs cargo-fuzz itself).
set -euo pipefail
cd "$(dirname "$0")/.."
# The host suite drives real peers: FUSE's fusermount3 (mount tests), nginx (installs
# over HTTP from a static server, and over HTTPS), openssl (the HTTPS tests' private
# authority and certificates) and strace (the fsync order of builds and installs).
# Install them where missing (Debian, as root). The S3 test installs moto's server mode
# with pip itself when missing (tests/tests/https.rs).
need=()
command -v fusermount3 >/dev/null 2>&1 || need+=(fuse3)
[ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || need+=(nginx)
command -v strace >/dev/null 2>&1 || need+=(strace)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Card images for the file-system checks of installs (tests/tests/cards.rs).
command -v mkfs.vfat >/dev/null 2>&1 || need+=(dosfstools)
command -v mkfs.exfat >/dev/null 2>&1 || need+=(exfatprogs)
command -v fusefat >/dev/null 2>&1 || need+=(fusefat)
command -v mount.exfat-fuse >/dev/null 2>&1 || need+=(exfat-fuse)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "== host: cargo test --workspace"
cargo test --workspace --locked
echo "== ARM: cross/test.sh"
bash cross/test.sh
echo "== Windows host under Wine, macOS check: windows/test.sh"
bash windows/test.sh
echo "== benchmark smoke: bench/run.sh --smoke"
bash bench/run.sh --smoke
echo "== benchmark smoke: device-runtime/bench/read.sh 64 (play in place) and net.sh 32 (HTTP)"
N=2000 bash device-runtime/bench/read.sh 64
bash device-runtime/bench/net.sh 32
echo "== fuzz smoke: fuzz/run.sh ${ROMLIB_FUZZ_SECONDS:-60} (every target; longer campaigns: fuzz/README.md)"
bash fuzz/run.sh "${ROMLIB_FUZZ_SECONDS:-60}"
