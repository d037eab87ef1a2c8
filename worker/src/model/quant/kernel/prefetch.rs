//! Software prefetches into L2: the decode kernels' next weights, the GEMM's next panel,
//! an attention kernel's next page.

/// Asks for the cache line at `p` in L2 (`prefetcht1`), where the decode kernels' software
/// prefetches go: into L1 they wait on its few miss buffers and gain nothing from distance
/// (see `packed::prefetch_next`).
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(crate) fn prefetch_l2(p: *const u8) {
    // SAFETY: a prefetch never faults, whatever the address.
    #[allow(unsafe_code)]
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(p.cast())
    };
}

/// Asks for part `part` of `parts` equal parts of `next`, a line at a time, in L2: the next
/// panel's weights, spread over the kernel calls that meet this panel's rows with the
/// activations, so that they arrive while the panel computes and its fill reads them from
/// cache, not memory; or an attention kernel's next page.
#[inline]
pub(crate) fn prefetch_part<T>(next: &[T], part: usize, parts: usize) {
    #[cfg(target_arch = "x86_64")]
    for line in part_lines(std::mem::size_of_val(next), part, parts) {
        prefetch_l2(next.as_ptr().cast::<u8>().wrapping_add(64 * line));
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (next, part, parts);
}

/// The 64-byte lines of `len` bytes in part `part` of `parts`: the parts, in order, cover
/// every line once.
fn part_lines(len: usize, part: usize, parts: usize) -> std::ops::Range<usize> {
    let lines = len.div_ceil(64);
    let per = lines.div_ceil(parts.max(1));
    (part * per).min(lines)..((part + 1) * per).min(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefetch_parts_cover_every_line_once() {
        for (len, parts) in [
            (0, 4),
            (1, 1),
            (64, 3),
            (65, 2),
            (4096, 32),
            (100_000, 7),
            (640, 128),
        ] {
            let lines: Vec<usize> = (0..parts).flat_map(|p| part_lines(len, p, parts)).collect();
            assert_eq!(
                lines,
                (0..len.div_ceil(64)).collect::<Vec<_>>(),
                "{len} bytes, {parts}"
            );
        }
        assert_eq!(part_lines(640, 0, 0), 0..10, "no calls: one part");
    }
}
