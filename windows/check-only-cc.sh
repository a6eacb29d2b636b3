#!/bin/sh
# A stand-in C compiler for type-checking Rust crates for a target whose C toolchain this
# machine lacks (aarch64-apple-darwin: Debian has no Apple SDK). zstd-sys and md5-asm
# compile C in their build scripts; `cargo check` and `cargo clippy` never link, so an
# empty object file per compile is enough for them to finish. Nothing built with this is
# runnable: windows/test.sh uses it for `cargo clippy --target aarch64-apple-darwin` only.
#
# The cc crate first asks what compiler this is: `-?` must fail (not MSVC-style) and `-E`
# preprocesses its probe file, which Debian's gcc does (the probe needs no headers).
out='' prev='' pre=0 last=''
for a in "$@"; do
    [ "$a" = "-?" ] && exit 1
    [ "$prev" = "-o" ] && out=$a
    [ "$a" = "-E" ] && pre=1
    prev=$a
    last=$a
done
if [ "$pre" = 1 ]; then
    exec gcc -E "$last"
fi
if [ -n "$out" ]; then
    : >"$out"
fi
