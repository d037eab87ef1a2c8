//! What the attention kernels over BF16 pages share ([`PageFormat::Bf16Tiles`]: AMX tiles,
//! AVX-512 BF16's `vdpbf16ps`): the task's queries in BF16, each row's weights in BF16, and
//! a copy of the cache's last, partial 32 positions whose positions past the end are zero.
//!
//! [`PageFormat::Bf16Tiles`]: crate::model::kv_cache::pages::PageFormat

#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::cell::RefCell;

use crate::model::kv_cache::pages::{LANES, PAIRS};

use super::avx512::{exp_le0, seen_lanes};
use super::host::Task;

/// BF16 values in 64 bytes: one value tile row, one vector of pairs.
const ROW: usize = 32;

/// Position pairs in one value tile of 32 positions.
const PAIR_ROWS: usize = PAIRS / 2;

thread_local! {
    /// The task's queries and weights in BF16, and the masked copy of its last values.
    pub(super) static BUFS: RefCell<(Vec<u16>, Vec<u16>, Vec<u16>)> =
        const { RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

/// The task's query rows `q` (heads of `hd`, a multiple of 32) in BF16 into `out`, sized
/// for `rows` rows (at least the task's); rows past the task's zero.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn pack_queries(q: &[f32], hd: usize, rows: usize, out: &mut Vec<u16>) {
    out.clear();
    out.resize(rows * hd, 0);
    for (src, dst) in q.chunks_exact(ROW).zip(out.chunks_exact_mut(ROW)) {
        let lo = _mm512_loadu_ps(src.as_ptr());
        let hi = _mm512_loadu_ps(src.as_ptr().add(LANES));
        let bf: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
        _mm512_storeu_si512(dst.as_mut_ptr().cast(), bf);
    }
}

/// Row `r`'s weights: `exp` of its scaled scores at `s` less their maximum over the keys it
/// sees, zero past them up to `width`, stored in BF16 at `p`; returns 1 / their sum.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn weights(
    task: &Task,
    r: usize,
    s: *const f32,
    p: *mut u16,
    width: usize,
) -> f32 {
    let seen = task.seen(r);
    let blocks = seen.div_ceil(LANES);
    let mut top = _mm512_set1_ps(f32::NEG_INFINITY);
    for b in 0..blocks {
        top = _mm512_mask_max_ps(
            top,
            seen_lanes(seen, b),
            top,
            _mm512_loadu_ps(s.add(b * LANES)),
        );
    }
    let scale = _mm512_set1_ps(task.scale);
    let shift = _mm512_set1_ps(_mm512_reduce_max_ps(top) * task.scale);
    let mut sum = _mm512_setzero_ps();
    for b in 0..blocks {
        let x = _mm512_sub_ps(
            _mm512_mul_ps(_mm512_loadu_ps(s.add(b * LANES)), scale),
            shift,
        );
        let e = _mm512_maskz_mov_ps(seen_lanes(seen, b), exp_le0(x));
        sum = _mm512_add_ps(sum, e);
        let bf: __m256i = std::mem::transmute(_mm512_cvtneps_pbh(e));
        _mm256_storeu_si256(p.add(b * LANES).cast(), bf);
    }
    // Rows are read as far as the longest row beside them; the buffer holds an earlier task's.
    for b in blocks..width / LANES {
        _mm256_storeu_si256(p.add(b * LANES).cast(), _mm256_setzero_si256());
    }
    1.0 / _mm512_reduce_add_ps(sum)
}

/// Copies the value tiles of the last, partial 32 positions of the `most` a task reads into
/// `last`, zero past position `most` (stale values there, times a zero weight, could be NaN);
/// returns the index of those 32 positions (none is partial when `most` is a multiple of 32,
/// and the index is then past the last one read).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn last_values(task: &Task, most: usize, last: &mut Vec<u16>) -> usize {
    let (full, rem) = (most / PAIRS, most % PAIRS);
    last.resize(PAIRS * task.kv.head_dim(), 0);
    if rem > 0 {
        let src = task.kv.value_tiles(task.head, full);
        let rows = src.chunks_exact(ROW).zip(last.chunks_exact_mut(ROW));
        for (k, (src, dst)) in rows.enumerate() {
            // Row k of each tile holds positions 2k and 2k + 1 (even and odd lanes).
            let pair = k % PAIR_ROWS;
            let mask = match (2 * pair + 1 < rem, 2 * pair < rem) {
                (true, _) => !0u32,
                (false, true) => 0x5555_5555,
                _ => 0,
            };
            let v = _mm512_maskz_loadu_epi16(mask, src.as_ptr().cast());
            _mm512_storeu_si512(dst.as_mut_ptr().cast(), v);
        }
    }
    full
}
