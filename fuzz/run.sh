#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each: `fuzz/run.sh 5` in CI (a smoke run;
# fuzz/README.md has the longer campaigns).
#
#   fuzz/run.sh SECONDS [TARGET...]
#
# Builds all targets once, then fuzzes each from a scratch copy of its seeds and kept
# crashes (the repository is not modified by a clean run). A crash, an allocation beyond the
# limits or a hang is copied to fuzz/regressions/<target>/ to be committed with its fix;
# the script then exits 1. Prints executions, corpus size and the result per target.
#
# Environment:
#   ROMLIB_FUZZ_TOOLCHAIN=stable  use the stable toolchain (RUSTC_BOOTSTRAP=1) even when a
#                                 nightly one is installed (the default when it is not)
#   ROMLIB_FUZZ_SANITIZER=address build with AddressSanitizer (slower, see below)
#   ROMLIB_FUZZ_JOBS=N            fuzz N targets at a time (default: one per core)
#   ROMLIB_FUZZ_KEEP=DIR          keep the working corpora in DIR (for long campaigns)
#   ROMLIB_FUZZ_PROFILE=dev       build unoptimised, for a smoke run: half the build time,
#                                 a fraction of the executions (default release; CI sets dev)
set -euo pipefail

usage() {
    echo "usage: fuzz/run.sh SECONDS [TARGET...]" >&2
    exit 2
}
[[ $# -ge 1 && $1 =~ ^[0-9]+$ && $1 -gt 0 ]] || usage
seconds=$1
shift

fuzz_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$fuzz_dir"

all_targets=()
for f in fuzz_targets/*.rs; do
    all_targets+=("$(basename "$f" .rs)")
done
targets=("${@:-${all_targets[@]}}")
for t in "${targets[@]}"; do
    [[ -f fuzz_targets/$t.rs ]] || { echo "fuzz/run.sh: no target $t (fuzz/fuzz_targets/$t.rs)" >&2; exit 2; }
done

# libFuzzer needs a compiler that accepts -Z flags: nightly when it is installed; otherwise
# the stable compiler with RUSTC_BOOTSTRAP=1 (a CI machine cannot download a toolchain).
if [[ ${ROMLIB_FUZZ_TOOLCHAIN:-} != stable ]] && rustup run nightly rustc --version >/dev/null 2>&1; then
    cargo=(cargo +nightly)
    channel=""
    toolchain="nightly ($(rustup run nightly rustc --version))"
else
    export RUSTC_BOOTSTRAP=1
    cargo=(cargo)
    channel="-stable"
    toolchain="stable with RUSTC_BOOTSTRAP=1 ($(rustc --version))"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz/run.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

# No sanitizer by default: the code is safe Rust, and AddressSanitizer costs 8 to 10 times
# the executions per second here (measured: manifest_body 260k/s without, 34k/s with). What
# ASan would add that matters, libFuzzer's -malloc_limit_mb (it needs a sanitizer's
# allocator hooks), the targets get from fuzz/src/lib.rs instead: one allocation above 256
# MiB aborts, so a hostile length that sizes a buffer is a crash even if the buffer is never
# touched. The release build keeps debug assertions and overflow checks (fuzz/Cargo.toml),
# so an arithmetic overflow is a crash too. ROMLIB_FUZZ_SANITIZER=address adds ASan itself.
sanitizer=${ROMLIB_FUZZ_SANITIZER:-none}
# One target directory per sanitizer and toolchain: switching must not rebuild everything.
target_dir=$fuzz_dir/target/$sanitizer$channel
build=(fuzz build --sanitizer "$sanitizer" --debug-assertions --target-dir "$target_dir")
profile=${ROMLIB_FUZZ_PROFILE:-release}
case $profile in
    release) profile_dir=release ;;
    dev) build+=(--dev); profile_dir=debug ;;
    *) echo "fuzz/run.sh: ROMLIB_FUZZ_PROFILE must be dev or release" >&2; exit 2 ;;
esac
work=$(mktemp -d "${TMPDIR:-/tmp}/romlib-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "fuzz/run.sh: building the fuzz targets with $toolchain, sanitizer $sanitizer, profile $profile"
build_start=$SECONDS
if ! "${cargo[@]}" "${build[@]}" >"$work/build.log" 2>&1; then
    tail -30 "$work/build.log"
    echo "fuzz/run.sh: FAILED: the fuzz targets do not build"
    exit 1
fi
echo "fuzz/run.sh: built in $((SECONDS - build_start)) s"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir=$target_dir/$triple/$profile_dir
keep=${ROMLIB_FUZZ_KEEP:-}

# Fuzzes target $1 for $seconds; writes its report line to $work/$1.result.
fuzz_one() {
    local t=$1 corpus artifacts log status execs size found
    if [[ -n $keep ]]; then corpus=$keep/$t; else corpus=$work/corpus/$t; fi
    artifacts=$work/artifacts/$t
    log=$work/$t.log
    mkdir -p "$corpus" "$artifacts"
    for d in seeds/"$t" regressions/"$t"; do
        if [[ -d $d ]]; then cp -n "$d"/* "$corpus"/ 2>/dev/null || true; fi
    done
    # -rss_limit_mb and -malloc_limit_mb (with a sanitizer; fuzz/src/lib.rs without):
    # unbounded memory is a failure (the device budget is 8 MiB; 256 MiB in one allocation
    # is never right). -timeout: one input running longer than 10 s is a hang. -max_len
    # covers the largest seed (a portable file).
    status=0
    "$bin_dir/$t" "$corpus" -max_total_time="$seconds" -rss_limit_mb=1024 \
        -malloc_limit_mb=256 -timeout=10 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$artifacts/" >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    size=$(find "$corpus" -type f | wc -l)
    found=$(find "$artifacts" -type f | head -1)
    if [[ $status -eq 0 && -z $found ]]; then
        printf '%-16s %10s execs %6s corpus  ok\n' "$t" "${execs:-?}" "$size" >"$work/$t.result"
        return
    fi
    mkdir -p regressions/"$t"
    local kept=""
    for a in "$artifacts"/*; do
        [[ -f $a ]] || continue
        cp "$a" regressions/"$t"/
        kept="$kept fuzz/regressions/$t/$(basename "$a")"
    done
    {
        printf '%-16s %10s execs %6s corpus  FAILED (exit %s)\n' "$t" "${execs:-?}" "$size" "$status"
        grep -m3 -E 'panicked at|ERROR: libFuzzer|SUMMARY' "$log" | sed 's/^/    /' || true
        if [[ -n $kept ]]; then
            echo "    kept:$kept"
            echo "    fix the bug, then commit the input: cargo test -p romlib-fuzz-harness replays it"
        else
            echo "    no input was kept; the log follows"
            tail -20 "$log" | sed 's/^/    /'
        fi
    } >"$work/$t.result"
}

jobs=${ROMLIB_FUZZ_JOBS:-$(nproc)}
run_start=$SECONDS
if [[ $jobs -le 1 ]]; then
    for t in "${targets[@]}"; do
        fuzz_one "$t"
        cat "$work/$t.result"
    done
else
    running=0
    for t in "${targets[@]}"; do
        fuzz_one "$t" &
        running=$((running + 1))
        if [[ $running -ge $jobs ]]; then
            wait -n || true
            running=$((running - 1))
        fi
    done
    wait
    for t in "${targets[@]}"; do cat "$work/$t.result"; done
fi

failed=0
total_execs=0
for t in "${targets[@]}"; do
    if grep -q FAILED "$work/$t.result"; then failed=$((failed + 1)); fi
    n=$(awk '{print $2}' "$work/$t.result" | head -1)
    [[ $n =~ ^[0-9]+$ ]] && total_execs=$((total_execs + n))
done
summary="${#targets[@]} targets x ${seconds} s: $total_execs execs, $failed failed, fuzzed in $((SECONDS - run_start)) s, built in $((run_start - build_start)) s"
if [[ $failed -gt 0 ]]; then
    echo "fuzz/run.sh: FAILED: $summary"
    exit 1
fi
echo "fuzz/run.sh: ok: $summary"
