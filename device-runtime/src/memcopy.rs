//! `memcpy` and `memmove` for the static x86_64 musl build: the one module with unsafe code.
//!
//! Why: zstd decoding copies in short pieces (each literal run, each match), and Rust turns
//! ruzstd's copy loops into `memcpy` calls. musl's x86_64 `memcpy` copies unaligned heads
//! and tails one `movsb` at a time around a `rep movsq`, which costs tens of cycles for a
//! copy of a few bytes: measured, 26% of an install's CPU went to it, against 5% with
//! glibc's `memcpy` on the same code (docs/benchmarks.md). aarch64 musl already has a fast
//! `memcpy`, and the 32-bit ARM build links glibc, so only this target gets these.
//!
//! How: up to 128 bytes, every byte is loaded into registers (16-byte loads that may overlap)
//! before any is stored, which is also right for overlapping `memmove`; beyond that,
//! `rep movsb`, which current x86_64 cores run at full speed ("fast strings"), backwards
//! (direction flag set, then cleared) when a `memmove` target overlaps the source from above.
//! There are no loops, so the compiler cannot turn this code back into a call to itself.
//!
//! The copy functions are compiled on every x86_64 target so that the tests exercise them
//! everywhere; only the musl build exports them under the C names, where they take the place
//! of musl's (a static link takes the first definition and never pulls musl's object file:
//! `memmove` is defined too because musl's calls into musl's `memcpy` file).
#![allow(unsafe_code)]

use core::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_storeu_si128};

/// Copies `n` bytes from `src` to `dst`, which may overlap, for `n <= 128`.
///
/// SAFETY: the caller guarantees `src` is readable and `dst` writable for `n` bytes.
/// Every load happens before the first store, so overlap in either direction is fine.
#[inline(always)]
unsafe fn copy_small(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY (all the loads and stores below): each lies within `src[..n]` or `dst[..n]`,
    // by the bounds of its branch; unaligned loads and stores are allowed for every type
    // used (`read_unaligned`, `write_unaligned`, `loadu`, `storeu`).
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let a = src.cast::<u64>().read_unaligned();
                let b = src.add(n - 8).cast::<u64>().read_unaligned();
                dst.cast::<u64>().write_unaligned(a);
                dst.add(n - 8).cast::<u64>().write_unaligned(b);
            } else if n >= 4 {
                let a = src.cast::<u32>().read_unaligned();
                let b = src.add(n - 4).cast::<u32>().read_unaligned();
                dst.cast::<u32>().write_unaligned(a);
                dst.add(n - 4).cast::<u32>().write_unaligned(b);
            } else if n >= 2 {
                let a = src.cast::<u16>().read_unaligned();
                let b = src.add(n - 2).cast::<u16>().read_unaligned();
                dst.cast::<u16>().write_unaligned(a);
                dst.add(n - 2).cast::<u16>().write_unaligned(b);
            } else if n == 1 {
                *dst = *src;
            }
            return;
        }
        let s = src.cast::<__m128i>();
        let e = src.add(n - 16).cast::<__m128i>();
        let d = dst.cast::<__m128i>();
        let de = dst.add(n - 16).cast::<__m128i>();
        if n <= 32 {
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(e);
            _mm_storeu_si128(d, a);
            _mm_storeu_si128(de, b);
        } else if n <= 64 {
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(s.add(1));
            let y = _mm_loadu_si128(e.sub(1));
            let z = _mm_loadu_si128(e);
            _mm_storeu_si128(d, a);
            _mm_storeu_si128(d.add(1), b);
            _mm_storeu_si128(de.sub(1), y);
            _mm_storeu_si128(de, z);
        } else {
            let a = _mm_loadu_si128(s);
            let b = _mm_loadu_si128(s.add(1));
            let c = _mm_loadu_si128(s.add(2));
            let f = _mm_loadu_si128(s.add(3));
            let w = _mm_loadu_si128(e.sub(3));
            let x = _mm_loadu_si128(e.sub(2));
            let y = _mm_loadu_si128(e.sub(1));
            let z = _mm_loadu_si128(e);
            _mm_storeu_si128(d, a);
            _mm_storeu_si128(d.add(1), b);
            _mm_storeu_si128(d.add(2), c);
            _mm_storeu_si128(d.add(3), f);
            _mm_storeu_si128(de.sub(3), w);
            _mm_storeu_si128(de.sub(2), x);
            _mm_storeu_si128(de.sub(1), y);
            _mm_storeu_si128(de, z);
        }
    }
}

/// Largest copy done with loads and stores; larger ones use `rep movsb`.
const SMALL: usize = 128;

/// `memcpy`: copies `n` bytes from `src` to `dst`, which do not overlap; returns `dst`.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes, and they must not overlap.
pub unsafe extern "C" fn copy_forward(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if n <= SMALL {
        // SAFETY: the caller's guarantee.
        unsafe { copy_small(dst, src, n) };
    } else {
        // SAFETY: `rep movsb` copies `rcx` bytes from `rsi` to `rdi`, upwards (the ABI
        // keeps the direction flag clear between calls); the caller's guarantee covers them.
        unsafe {
            core::arch::asm!(
                "rep movsb",
                inout("rcx") n => _,
                inout("rdi") dst => _,
                inout("rsi") src => _,
                options(nostack, preserves_flags)
            );
        }
    }
    dst
}

/// `memmove`: copies `n` bytes from `src` to `dst`, which may overlap; returns `dst`.
///
/// # Safety
/// `src` must be readable and `dst` writable for `n` bytes.
pub unsafe extern "C" fn copy_any(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // Copying upwards is right unless the target starts inside the source.
    let overlaps_above = (dst as usize).wrapping_sub(src as usize) < n;
    if n <= SMALL || !overlaps_above {
        // SAFETY: the caller's guarantee; the small copy loads everything before storing,
        // and an upward `rep movsb` reads each byte before any store reaches it when the
        // target starts below the source (or they do not overlap).
        return unsafe { copy_forward(dst, src, n) };
    }
    // SAFETY: with the direction flag set, `rep movsb` copies downwards from the last byte
    // (`rsi`, `rdi` point at it), so each source byte is read before the target, which
    // lies above it, is written; the flag is cleared again before the block ends, as the
    // ABI requires.
    unsafe {
        core::arch::asm!(
            "std",
            "rep movsb",
            "cld",
            inout("rcx") n => _,
            inout("rdi") dst.add(n - 1) => _,
            inout("rsi") src.add(n - 1) => _,
            options(nostack)
        );
    }
    dst
}

/// The C library's `memcpy`, in the static musl build.
///
/// # Safety
/// As for C's `memcpy` ([`copy_forward`]).
#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's guarantee.
    unsafe { copy_forward(dst, src, n) }
}

/// The C library's `memmove`, in the static musl build.
///
/// # Safety
/// As for C's `memmove` ([`copy_any`]).
#[cfg(target_env = "musl")]
#[no_mangle]
pub unsafe extern "C" fn memmove(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller's guarantee.
    unsafe { copy_any(dst, src, n) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pattern no two nearby bytes of which are equal, so a misplaced byte shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn copies_every_length_and_alignment_exactly() {
        for n in (0..=300).chain([511, 512, 4095, 4096, 65_537]) {
            for (so, doff) in [(0, 0), (1, 3), (7, 0), (0, 15), (13, 9)] {
                let src = pattern(n + so + 32);
                let mut dst = vec![0xeeu8; n + doff + 32];
                let want = {
                    let mut w = dst.clone();
                    w[doff..doff + n].copy_from_slice(&src[so..so + n]);
                    w
                };
                // SAFETY: both ranges lie inside their vectors.
                let r =
                    unsafe { copy_forward(dst.as_mut_ptr().add(doff), src.as_ptr().add(so), n) };
                assert_eq!(r, dst[doff..].as_mut_ptr(), "n {n}");
                assert!(dst == want, "memcpy of {n} bytes ({so}, {doff})");
            }
        }
    }

    #[test]
    fn moves_overlapping_ranges_both_ways() {
        for n in (0..=300).chain([1000, 4096, 65_537]) {
            for shift in [1usize, 2, 5, 8, 15, 16, 17, 33, 64, 100, 129] {
                for up in [true, false] {
                    let mut buf = pattern(n + shift + 8);
                    let (from, to) = if up { (0, shift) } else { (shift, 0) };
                    let mut want = buf.clone();
                    want.copy_within(from..from + n, to);
                    let p = buf.as_mut_ptr();
                    // SAFETY: both ranges lie inside `buf`.
                    unsafe { copy_any(p.add(to), p.add(from), n) };
                    assert!(buf == want, "memmove of {n} bytes by {shift} (up {up})");
                }
            }
        }
    }

    #[test]
    fn no_other_source_file_allows_unsafe_code() {
        // The workspace lint is "deny" rather than "forbid" for this module alone.
        fn walk(dir: &std::path::Path, found: &mut Vec<std::path::PathBuf>) {
            for e in std::fs::read_dir(dir).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if p.is_dir() && !name.starts_with('.') && name != "target" {
                    walk(&p, found);
                } else if name.ends_with(".rs") {
                    let text = std::fs::read_to_string(&p).unwrap();
                    if text.contains(concat!("allow(", "unsafe_code)")) {
                        found.push(p);
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut found = Vec::new();
        walk(&root, &mut found);
        let found: Vec<_> = found
            .iter()
            .map(|p| {
                p.strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(found, ["device-runtime/src/memcopy.rs"]);
    }
}
