//! Attention over a layer's host pages: a step's query rows split into tasks of up to
//! [`TASK_ROWS`] rows of one head, each run by the best kernel the CPU has.
//!
//! Every kernel sums each row over the same keys in the same order whichever rows share its
//! task (keys a row does not see weigh exactly zero), so a row computed in a prompt equals the
//! same row computed alone: what a prefix cache's greedy equality stands on.

use std::cell::RefCell;

use candle_core::{DType, Result, Tensor};
use rayon::prelude::*;

use crate::model::kv_cache::pages::{HostLayer, PageFormat, LANES};

use super::portable;
#[cfg(target_arch = "x86_64")]
use super::{amx, avx2, avx512, avx512_bf16};

/// Query rows the AVX-512 kernel weighs together: six rows' sums of 64 values take 24
/// registers.
pub(super) const GROUP: usize = 6;

/// Most query rows per task. A task reads its head's keys and values once per page for all
/// its rows, so more rows per task read the cache fewer times; but the tasks of a step must
/// still keep every thread busy.
pub(super) const TASK_ROWS: usize = 48;

thread_local! {
    // Reused: a fresh buffer per task cost more in page faults than its products.
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// What one task reads: consecutive query rows of one head (`q`, rows `first ..` of the
/// head's `[queries_per_kv_head][t]` rows, positions `offset .. offset + t`), the layer's
/// pages, the head, the softmax scale and the stride of a row's scores.
pub(super) struct Task<'a> {
    pub q: &'a [f32],
    pub first: usize,
    pub t: usize,
    pub offset: usize,
    pub kv: &'a HostLayer,
    pub head: usize,
    pub scale: f32,
    pub padded: usize,
}

impl Task<'_> {
    /// Query rows in the task.
    pub fn rows(&self) -> usize {
        self.q.len() / self.kv.head_dim()
    }

    /// Keys row `i` sees: those up to its own position.
    pub fn seen(&self, i: usize) -> usize {
        self.offset + (self.first + i) % self.t + 1
    }

    /// Keys the row of `rows` that sees most sees.
    pub fn most(&self, rows: std::ops::Range<usize>) -> usize {
        rows.map(|i| self.seen(i)).max().unwrap_or(0)
    }
}

/// The kernels; each CPU runs the best it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kernel {
    /// Plain Rust, as the build targets.
    Plain,
    /// AVX2 and FMA intrinsics (heads of whole vectors of eight).
    #[cfg(target_arch = "x86_64")]
    Avx2,
    /// AVX-512 F intrinsics (head sizes that are whole vectors of 16).
    #[cfg(target_arch = "x86_64")]
    Avx512,
    /// AVX-512 BF16's `vdpbf16ps`, over BF16 pages (CPUs without AMX).
    #[cfg(target_arch = "x86_64")]
    Avx512Bf16,
    /// AMX tiles, over BF16 pages.
    #[cfg(target_arch = "x86_64")]
    Amx,
}

impl Kernel {
    /// Every kernel, plainest first.
    const ALL: &[Kernel] = &[
        Kernel::Plain,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx512Bf16,
        #[cfg(target_arch = "x86_64")]
        Kernel::Amx,
    ];

    /// Whether this CPU runs the kernel over `layer`'s pages; the int8 kernels' level
    /// decides, so `ARENA_KERNELS` turns these down with them (and the pages' format with
    /// them).
    fn runs(self, layer: &HostLayer) -> bool {
        let f32_pages = layer.format() == PageFormat::F32;
        #[cfg(target_arch = "x86_64")]
        let isa = crate::model::quant::Isa::best();
        match self {
            Kernel::Plain => f32_pages,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => f32_pages && isa.has_avx2() && layer.head_dim().is_multiple_of(8),
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                f32_pages && isa.has_avx512() && layer.head_dim().is_multiple_of(LANES)
            }
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512Bf16 => !f32_pages && isa.has_avx512_bf16(),
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => !f32_pages && isa.has_amx(),
        }
    }

    /// Every kernel this CPU runs over `layer`'s pages, best last.
    #[cfg(test)]
    pub fn available(layer: &HostLayer) -> Vec<Kernel> {
        Self::ALL
            .iter()
            .copied()
            .filter(|k| k.runs(layer))
            .collect()
    }

    /// The best kernel this CPU runs over `layer`'s pages (none for BF16 pages without
    /// AVX-512 BF16).
    pub fn best(layer: &HostLayer) -> Option<Kernel> {
        Self::ALL.iter().rev().copied().find(|k| k.runs(layer))
    }

    /// Query rows of a task this kernel takes whole: AMX tiles hold 16.
    fn rows_step(self) -> usize {
        match self {
            #[cfg(target_arch = "x86_64")]
            Kernel::Amx => LANES,
            _ => GROUP,
        }
    }

    /// Runs `task`: scores, then weights, in `scores` (a row of `task.padded` per query
    /// row, rounded up to whole tiles of 16 rows), weighted values into `out`.
    fn run(self, task: &Task, scores: &mut [f32], out: &mut [f32]) {
        let (n, hd) = (task.rows(), task.kv.head_dim());
        assert!(n <= TASK_ROWS && task.q.len() == n * hd && out.len() == n * hd);
        let rows = n.next_multiple_of(LANES);
        assert!(scores.len() == rows * task.padded && task.padded.is_multiple_of(LANES));
        let most = task.most(0..n);
        assert!(most <= task.padded && most <= task.kv.capacity());
        match self {
            Kernel::Plain => portable::run(task, scores, out),
            // SAFETY: `available` offers this kernel only where AVX2 and FMA were detected;
            // the assertions above bound every read and write; heads of whole vectors
            // asserted.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Kernel::Avx2 => {
                assert!(hd.is_multiple_of(8) && task.kv.format() == PageFormat::F32);
                unsafe { avx2::run(task, scores, out) }
            }
            // SAFETY: as above, with AVX-512 F detected; heads of whole vectors asserted.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Kernel::Avx512 => {
                assert!(hd.is_multiple_of(LANES) && task.kv.format() == PageFormat::F32);
                unsafe { avx512::run(task, scores, out) }
            }
            // SAFETY: `available` offers this kernel only where AVX-512 F/BW/VL and BF16
            // were detected, and for BF16 pages; the assertions above bound every access.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Kernel::Avx512Bf16 => {
                assert!(task.kv.format() == PageFormat::Bf16Tiles);
                unsafe { avx512_bf16::run(task, scores, out) }
            }
            // SAFETY: `available` offers this kernel only at the `amx` level (tile state
            // granted) and for BF16 pages, whose heads fit the tiles.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Kernel::Amx => {
                assert!(task.kv.format() == PageFormat::Bf16Tiles);
                unsafe { amx::run(task, scores, out) }
            }
        }
    }
}

/// `softmax(q·kᵀ/√d + causal mask)·v` for query rows `q` (`[kv_heads, queries_per_kv_head,
/// t, head_dim]`, positions `offset .. offset + t`) over the first `len` positions of `kv`,
/// with `kernel`.
pub(super) fn causal(
    kernel: Kernel,
    q: &Tensor,
    kv: &HostLayer,
    len: usize,
    offset: usize,
) -> Result<Tensor> {
    let (kvh, n_rep, t, hd) = q.dims4()?;
    if (kvh, hd) != (kv.kv_heads(), kv.head_dim()) || offset + t > len || len > kv.capacity() {
        candle_core::bail!(
            "attention of {kvh} heads of {hd} at {offset}..{} over a cache of {} heads of {} \
             holding {len}",
            offset + t,
            kv.kv_heads(),
            kv.head_dim()
        )
    }
    let rows = n_rep * t;
    if rows == 0 {
        return Tensor::zeros((kvh, n_rep, t, hd), q.dtype(), q.device());
    }
    let qs: Vec<f32> = q.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let padded = len.next_multiple_of(LANES);
    let scale = 1.0 / (hd as f32).sqrt();
    // Tasks per head: enough for two per thread over all heads, fewer rows than TASK_ROWS;
    // past one group of the AVX-512 kernel, whole groups.
    let threads = rayon::current_num_threads();
    let per_head = rows
        .div_ceil(TASK_ROWS)
        .max((2 * threads).div_ceil(kvh))
        .min(rows);
    let mut task_rows = rows.div_ceil(per_head);
    let step = kernel.rows_step();
    if task_rows > step {
        task_rows = task_rows.next_multiple_of(step).min(TASK_ROWS);
    }
    let mut out = vec![0f32; kvh * rows * hd];
    out.par_chunks_mut(rows * hd)
        .enumerate()
        .for_each(|(head, out)| {
            out.par_chunks_mut(task_rows * hd)
                .enumerate()
                .for_each(|(b, out)| {
                    let (first, n) = (b * task_rows, out.len() / hd);
                    let task = Task {
                        q: &qs[(head * rows + first) * hd..][..n * hd],
                        first,
                        t,
                        offset,
                        kv,
                        head,
                        scale,
                        padded,
                    };
                    SCORES.with_borrow_mut(|scores| {
                        let size = n.next_multiple_of(LANES) * padded;
                        scores.resize(size, 0.0);
                        kernel.run(&task, &mut scores[..size], out);
                    });
                });
        });
    Tensor::from_vec(out, (kvh, n_rep, t, hd), q.device())?.to_dtype(q.dtype())
}
