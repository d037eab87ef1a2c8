//! Keeps the compute pool's other threads awake through a forward pass.
//!
//! A step multiplies about seven matrices per layer, each split over the pool, with a little
//! serial work between them (norms, attention, rotary embedding). Left alone, rayon's idle
//! threads may fall asleep between two products, and the next one then waits for the kernel
//! to wake them (a futex and, in a VM, an inter-processor interrupt): decoding 128 tokens of
//! a 1.1B model on a 2-core Zen 4 VM took 57,000 context switches. Here the other threads spin
//! for the length of one step, as llama.cpp's do between operations, taking the products'
//! tasks as soon as they are queued (9,000 switches, decode 2% faster in six alternating
//! pairs), and sleep again when it ends.

use std::sync::atomic::{AtomicBool, Ordering};

/// Busy-wait rounds between looks for work: short enough to answer in well under a
/// microsecond, long enough not to hammer the queues the step's own thread pushes to.
const SPIN_ROUNDS: usize = 16;

/// Runs `f` on this thread while the rest of its rayon pool spins, looking for work, until
/// `f` returns (or panics). Outside a pool, or in a pool of one thread, it just runs `f`.
pub fn with_hot_threads<R>(f: impl FnOnce() -> R) -> R {
    let Some(me) = rayon::current_thread_index() else {
        return f();
    };
    if rayon::current_num_threads() < 2 {
        return f();
    }
    let stop = AtomicBool::new(false);
    rayon::in_place_scope(|scope| {
        scope.spawn_broadcast(|_, ctx| {
            if ctx.index() == me {
                return;
            }
            while !stop.load(Ordering::Acquire) {
                if rayon::yield_now() != Some(rayon::Yield::Executed) {
                    for _ in 0..SPIN_ROUNDS {
                        std::hint::spin_loop();
                    }
                }
            }
        });
        // Set on the way out even if `f` panics, or the scope would wait for the spinners
        // forever.
        let _stop = StopOnDrop(&stop);
        f()
    })
}

/// Sets its flag when dropped.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rayon::prelude::*;

    fn pool(n: usize) -> rayon::ThreadPool {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .unwrap()
    }

    #[test]
    fn parallel_work_inside_is_done_and_the_spinners_stop() {
        for n in [1, 2, 3] {
            let sum = pool(n).install(|| {
                with_hot_threads(|| (0..10_000u64).into_par_iter().map(|i| i * i).sum::<u64>())
            });
            assert_eq!(sum, (0..10_000u64).map(|i| i * i).sum::<u64>());
        }
        // Outside any pool it runs the closure as it is.
        assert_eq!(with_hot_threads(|| 7), 7);
    }

    #[test]
    fn a_panic_inside_reaches_the_caller_and_releases_the_spinners() {
        let p = pool(2);
        let caught = p.install(|| {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                with_hot_threads(|| panic!("inside the step"))
            }))
        });
        assert!(caught.is_err());
        // The pool still works afterwards: no thread was left spinning.
        assert_eq!(
            p.install(|| with_hot_threads(|| (0..100).into_par_iter().sum::<i32>())),
            4950
        );
    }
}
