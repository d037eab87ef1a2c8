//! Allocator settings for inference: reuse freed activation buffers instead of faulting in
//! fresh pages every layer, and weights in huge pages.
//!
//! glibc serves allocations above its mmap threshold (128 KiB, growing with use) with fresh
//! mappings and unmaps them on free, so every prefill layer's activations (megabytes each)
//! cost page faults and the kernel's page clearing: 10–15% of a 512-token prefill in `perf`.
//! Raising the thresholds keeps such buffers in the heap for the next layer.

/// Largest allocation kept in the heap: glibc's ceiling for the mmap threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free heap kept before glibc returns it to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 256 << 20;

/// Applies the settings once per process; a no-op off glibc.
pub fn keep_freed_buffers() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            // SAFETY: mallopt only changes glibc's tuning parameters, which it may do at any
            // time; a refused value (returned as 0) leaves the defaults.
            #[allow(unsafe_code)]
            let ok = unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
                    && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
            };
            if !ok {
                tracing::debug!("mallopt refused the allocator settings; keeping defaults");
            }
        }
    });
}

/// Asks the kernel to back `buf`, not yet touched, with transparent huge pages where it can
/// (every whole 2 MiB inside it), before a model's weights are read into it; a no-op off
/// Linux, and where the system turned them off.
///
/// Decode reads every weight once a token, as a stream too long for any cache, and with 4 KiB
/// pages one core's reads stall on the page walks the stream needs every 4 KiB: the
/// 7B-shaped Q6_K file decoded at 22–26 tok/s on one Zen 4 core (AMD EPYC) without, at 24–26
/// with (docs/BENCHMARKS.md, "Weights in huge pages"). Most distributions leave transparent
/// huge pages to such requests (`madvise` in /sys/kernel/mm/transparent_hugepage/enabled).
pub fn advise_huge_pages(buf: &mut [u8]) {
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
    #[cfg(target_os = "linux")]
    {
        // Base and huge page sizes on x86-64.
        const PAGE: usize = 4096;
        const HUGE_PAGE: usize = 2 << 20;
        let at = buf.as_mut_ptr() as usize;
        let (start, end) = (at.next_multiple_of(PAGE), (at + buf.len()) / PAGE * PAGE);
        if end.saturating_sub(start) < HUGE_PAGE {
            return;
        }
        // SAFETY: the range lies inside `buf`, which this call borrows mutably; the advice
        // changes how its pages are backed, never their contents.
        #[allow(unsafe_code)]
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        if rc != 0 {
            tracing::debug!(
                "madvise(MADV_HUGEPAGE) refused: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// The `AnonHugePages` kB of the mapping holding `addr`, from /proc/self/smaps.
    fn huge_kb_at(addr: usize) -> Option<usize> {
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut inside = false;
        for line in smaps.lines() {
            if let Some((range, _)) = line.split_once(' ') {
                if let Some((lo, hi)) = range.split_once('-') {
                    if let (Ok(lo), Ok(hi)) =
                        (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
                    {
                        inside = (lo..hi).contains(&addr);
                        continue;
                    }
                }
            }
            if inside {
                if let Some(kb) = line.strip_prefix("AnonHugePages:") {
                    return kb.trim().trim_end_matches(" kB").trim().parse().ok();
                }
            }
        }
        None
    }

    #[test]
    fn advised_weights_land_in_huge_pages() {
        let mode = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        if !mode.is_ok_and(|m| m.contains("[madvise]") || m.contains("[always]")) {
            eprintln!("skipped: transparent huge pages are off on this system");
            return;
        }
        // Above the heap's mmap ceiling ([`MMAP_THRESHOLD`]), so fresh pages whichever
        // allocator settings this test process has.
        let mut buf = vec![0u8; 40 << 20];
        advise_huge_pages(&mut buf);
        // First touch after the advice, as a weight file's read does.
        for (i, b) in buf.iter_mut().enumerate() {
            *b = i as u8;
        }
        let huge = huge_kb_at(buf.as_ptr() as usize + (20 << 20)).expect("mapping in smaps");
        assert!(
            huge >= 2048,
            "no huge page in 40 MiB of advised weights: {huge} kB"
        );
        assert!(buf.iter().enumerate().all(|(i, &b)| b == i as u8));
        // Too small for a huge page, or empty: left alone.
        advise_huge_pages(&mut [0u8; 100]);
        advise_huge_pages(&mut []);
    }
}
