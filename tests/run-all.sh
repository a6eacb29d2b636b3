#!/usr/bin/env bash
# Runs every test: the workspace suite on the host, then the device runtime for aarch64 and
# 32-bit ARM under QEMU (cross/test.sh installs its toolchain and packages itself), then a
# smoke run of the peer benchmark on a small generated corpus (bench/run.sh --smoke, which
# installs the peer tools itself) so the benchmark cannot rot.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== host: cargo test --workspace"
cargo test --workspace --locked
echo "== ARM: cross/test.sh"
bash cross/test.sh
echo "== benchmark smoke: bench/run.sh --smoke"
bash bench/run.sh --smoke
