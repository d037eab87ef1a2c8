//! Allocator settings for inference: reuse freed activation buffers instead of faulting in
//! fresh pages every layer.
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
