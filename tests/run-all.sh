#!/usr/bin/env bash
# Runs every test: the workspace suite on the host (installing fuse3 and nginx if missing),
# then the device runtime for aarch64 and
# 32-bit ARM under QEMU (cross/test.sh installs its toolchain and packages itself), then the
# Windows host's end-to-end suites under Wine and a macOS `cargo clippy` (windows/test.sh
# installs mingw-w64 and wine64 itself), then a
# smoke run of the peer benchmark on a small generated corpus (bench/run.sh --smoke, which
# installs the peer tools itself) and of the read and network benchmarks on small games, so
# the benchmarks cannot rot; then every fuzz target for a few seconds (fuzz/run.sh 5, which
# installs cargo-fuzz itself). Ends with the time each stage took (tests/stages.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=tests/stages.sh
source tests/stages.sh
# Stage times go to the caller's table (.ci/run) or to our own, printed on exit.
if [[ -z ${ROMLIB_STAGES:-} ]]; then
  ROMLIB_STAGES=$(mktemp "${TMPDIR:-/tmp}/romlib-stages.XXXXXX")
  export ROMLIB_STAGES
  trap 'stage_report; rm -f "$ROMLIB_STAGES"' EXIT
fi
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
install_packages() {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}
if [ ${#need[@]} -gt 0 ]; then
  stage "apt: host suite packages" install_packages "${need[@]}"
fi
# One build of the host suite, timed apart from its run; the QEMU and Wine suites below
# reuse these test binaries (same profile, same features), only their own targets build.
stage "host: build (cargo test --no-run)" cargo test --workspace --locked --no-run
stage "host: cargo test --workspace" cargo test --workspace --locked
stage "ARM under QEMU: cross/test.sh" bash cross/test.sh
stage "Windows under Wine, macOS: windows/test.sh" bash windows/test.sh
# The benchmark scripts on small data, with the host binaries of the dev build above (the
# device binary is measured in its shipped profile): they must run, their figures are not
# the point.
export ROMLIB_BENCH_HOST_PROFILE=dev
stage "bench smoke: bench/run.sh --smoke" bash bench/run.sh --smoke
# Play in place (2,000 random reads of a 64 MiB game) and installs over HTTP (32 MiB).
stage "bench smoke: device read.sh, net.sh" \
  bash -c 'N=2000 bash device-runtime/bench/read.sh 64 && bash device-runtime/bench/net.sh 32'
# How costs grow with the library: 3 steps of 8 MiB.
stage "bench smoke: bench/scale.sh --smoke" bash bench/scale.sh --smoke
stage "bench smoke: bench/games.sh --smoke" bash bench/games.sh --smoke
stage "bench smoke: bench/archives.sh --smoke" bash bench/archives.sh --smoke
stage "bench smoke: bench/placement.sh --smoke" bash bench/placement.sh --smoke
stage "bench smoke: bench/lifecycle.sh --smoke" bash bench/lifecycle.sh --smoke
# A few seconds per target: the harness replays every seed and kept crash in the host suite
# already; this proves each libFuzzer target builds and runs. The long campaigns are
# documented commands (fuzz/README.md).
stage "fuzz smoke: fuzz/run.sh ${ROMLIB_FUZZ_SECONDS:-5} (dev build)" \
  env ROMLIB_FUZZ_PROFILE=dev bash fuzz/run.sh "${ROMLIB_FUZZ_SECONDS:-5}"
