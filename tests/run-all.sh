#!/usr/bin/env bash
# Runs every test: the workspace suite on the host, then the device runtime for aarch64 and
# 32-bit ARM under QEMU (cross/test.sh installs its toolchain and packages itself).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== host: cargo test --workspace"
cargo test --workspace --locked
echo "== ARM: cross/test.sh"
bash cross/test.sh
