# Shared settings for cross/build.sh and cross/test.sh (sourced, not executed).
# Everything is per target triple, so host builds, build scripts and proc-macros are unaffected.

# aarch64 musl: rust-lld links against the musl CRT objects and libc.a shipped with the rustup
# target, so no cross gcc is involved; blake3 uses its `pure` feature (no C/asm). musl targets
# link statically by default (not static-pie: `file` says "statically linked").
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=rust-lld
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_RUNNER=qemu-aarch64

# armv7 hard-float: no armv7 musl std on this rustup, so static glibc via the Debian cross gcc.
# Test binaries get the same flag so they are static too and qemu-arm needs no -L sysroot;
# doctests are cross-compiled by rustdoc (stable since Rust 1.89), which reads RUSTDOCFLAGS,
# not RUSTFLAGS, so they need the flag separately (otherwise: "qemu-arm: Could not open
# '/lib/ld-linux-armhf.so.3'").
# Our code and its dependencies are compiled to Thumb-2 (`+thumb-mode`; the prebuilt std
# stays ARM, EABI interworking joins them): Thumb-2 is part of every ARMv7-A core, needs no
# NEON (unlike the thumbv7neon target), and makes the binary about 14% smaller (measured:
# 1,584,508 -> 1,367,420 bytes), which keeps it under the 1.5 MiB budget with the FUSE
# mount in. rustc calls the feature unstable (a warning; "its behavior can change").
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_LINKER=arm-linux-gnueabihf-gcc
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTFLAGS="-C target-feature=+crt-static,+thumb-mode"
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUSTDOCFLAGS="-C target-feature=+crt-static,+thumb-mode"
export CARGO_TARGET_ARMV7_UNKNOWN_LINUX_GNUEABIHF_RUNNER=qemu-arm

# Optional big-endian target for cross/test.sh (test suites only; no device binary is built):
# static glibc via Debian's s390x cross gcc, run by qemu-s390x.
BE_TRIPLE=s390x-unknown-linux-gnu
BE_APT_PACKAGES=(gcc-s390x-linux-gnu libc6-dev-s390x-cross qemu-user)
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_LINKER=s390x-linux-gnu-gcc
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUSTDOCFLAGS="-C target-feature=+crt-static"
export CARGO_TARGET_S390X_UNKNOWN_LINUX_GNU_RUNNER=qemu-s390x

# arch name -> (rust triple, qemu binary)
declare -A CROSS_TRIPLE=([aarch64]=aarch64-unknown-linux-musl [armv7]=armv7-unknown-linux-gnueabihf)
declare -A CROSS_QEMU=([aarch64]=qemu-aarch64 [armv7]=qemu-arm)
CROSS_ARCHES=(aarch64 armv7)

# --locked when the workspace has a lock file.
CROSS_LOCKED=()
[[ -f Cargo.lock ]] && CROSS_LOCKED=(--locked)

# Print cargo's target directory (honours CARGO_TARGET_DIR and .cargo/config build.target-dir).
cross_target_dir() {
    local td
    td="$(cargo metadata --format-version 1 --no-deps "${CROSS_LOCKED[@]}" \
          | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
    [[ -n "$td" ]] || { echo "cross: could not read target_directory from cargo metadata" >&2; return 1; }
    printf '%s\n' "$td"
}

cross_warn_rustflags() {
    if [[ -n "${RUSTFLAGS:-}${CARGO_ENCODED_RUSTFLAGS:-}" ]]; then
        echo "WARNING: RUSTFLAGS/CARGO_ENCODED_RUSTFLAGS is set; it overrides the per-target" \
             "rustflags (+crt-static for armv7) and may break static linking." >&2
    fi
}
