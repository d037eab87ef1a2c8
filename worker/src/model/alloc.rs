//! Allocator settings for inference: reuse freed activation buffers instead of faulting in
//! fresh pages every layer, and weights in huge pages.
//!
//! glibc serves allocations above its mmap threshold (128 KiB, growing with use) with fresh
//! mappings and unmaps them on free, so every prefill layer's activations (megabytes each)
//! cost page faults and the kernel's page clearing: 10–15% of a 512-token prefill in `perf`.
//! Raising the thresholds keeps such buffers in the heap for the next layer. That alone helps
//! only the main thread's heap: the model runs on other threads, and glibc gives each its own
//! arena of 64 MiB heaps, which it unmaps as soon as one is empty, however high the trim
//! threshold; a 7B-shaped layer's activations (22 MiB each for a 512-token prompt) outgrow
//! one such heap, and a 512-token prefill still took 100,000 page faults, 4% of its time.
//! So every thread shares the main heap ([`keep_freed_buffers`]).

/// Largest allocation kept in the heap: glibc's ceiling for the mmap threshold.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 32 << 20;

/// Free heap kept before glibc returns it to the system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 256 << 20;

/// Applies the settings once per process; a no-op off glibc. Call it before the process
/// starts threads: glibc keeps an arena per thread for threads that have allocated already,
/// and may fix its arena count at their first allocation, so only threads that allocate
/// first after the call are sure to share the main heap.
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
                    && libc::mallopt(libc::M_ARENA_MAX, 1) == 1
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

    /// Minor page faults of the calling thread so far.
    #[cfg(target_env = "gnu")]
    fn thread_page_faults() -> i64 {
        // SAFETY: getrusage writes one `rusage`, which lives on this stack.
        #[allow(unsafe_code)]
        unsafe {
            let mut usage: libc::rusage = std::mem::zeroed();
            assert_eq!(libc::getrusage(libc::RUSAGE_THREAD, &mut usage), 0);
            usage.ru_minflt
        }
    }

    /// A model thread's activations, freed and allocated again layer after layer, come back
    /// from the heap, not as fresh pages. Run in a process of its own (this test binary again,
    /// this test alone), as a server runs it: whether a thread shares the main heap depends on
    /// what the process's other threads allocated before the settings.
    #[cfg(target_env = "gnu")]
    #[test]
    fn freed_buffers_come_back_without_page_faults() {
        const CHILD: &str = "ARENA_TEST_ALLOC_CHILD";
        let name = "model::alloc::tests::freed_buffers_come_back_without_page_faults";
        if std::env::var_os(CHILD).is_some() {
            keep_freed_buffers();
            let faults = std::thread::spawn(|| {
                // Three 24 MiB buffers at once: more than one of glibc's 64 MiB thread heaps.
                let layer = || {
                    let bufs: Vec<Vec<u8>> = (0..3).map(|i| vec![i as u8 + 1; 24 << 20]).collect();
                    std::hint::black_box(&bufs);
                };
                layer();
                let before = thread_page_faults();
                layer();
                layer();
                thread_page_faults() - before
            })
            .join()
            .expect("allocating thread");
            println!("page faults: {faults}");
            return;
        }
        let exe = std::env::current_exe().expect("this test binary");
        let out = std::process::Command::new(exe)
            .args(["--exact", name, "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .output()
            .expect("running this test in a child process");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {text}");
        let faults: i64 = text
            .lines()
            .find_map(|l| l.split_once("page faults: "))
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no count in the child's output: {text}"));
        // 72 MiB touched twice: 36,864 faults if each buffer came as fresh pages.
        assert!(
            faults < 1000,
            "{faults} page faults for buffers freed and allocated again"
        );
    }

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
