//! What the attention kernels over BF16 pages share ([`PageFormat::Bf16Tiles`]: AMX tiles,
//! AVX-512 BF16's `vdpbf16ps`): the task's queries in BF16, each row's weights in BF16, and
//! a copy of the cache's last, partial 32 positions whose positions past the end are zero.
//!
//! [`PageFormat::Bf16Tiles`]: crate::model::kv_cache::pages::PageFormat

#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::cell::RefCell;

use crate::model::kv_cache::pages::{LANES, PAIRS};

use super::avx512::seen_lanes;
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
    // `e^(scale·(s − top))` as `2^(s·scale·log₂e − top·scale·log₂e)`: one multiply-add.
    let log2e = task.scale * std::f32::consts::LOG2_E;
    let scale = _mm512_set1_ps(log2e);
    let shift = _mm512_set1_ps(_mm512_reduce_max_ps(top) * log2e);
    let mut sum = _mm512_setzero_ps();
    for b in 0..blocks {
        let t = _mm512_fmsub_ps(_mm512_loadu_ps(s.add(b * LANES)), scale, shift);
        let e = exp2_le0(t, seen_lanes(seen, b));
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

/// `2ᵗ` for `t ≤ 0` in the lanes of `keep`, zero in the others, within 2·10⁻⁷ of it
/// relatively. The weights it gives are rounded to BF16 (8 bits), so it needs less than the
/// f32 kernel's `eˣ` (`super::avx512::exp_le0`, within 2 ulp): no two-step reduction, a
/// polynomial of degree 5 instead of 7; nine instructions a vector where that takes fourteen
/// (with the whole-page prefetch, a chat turn's attention 3–6% faster on a Zen 4 core). `t`
/// is clamped at −126 (below, `2ᵗ` leaves f32's normal range and weighs nothing beside a
/// row's largest weight, 1), split into the nearest integer `n` and `f` in [−½, ½] exactly;
/// `2ᶠ` is a minimax polynomial and `2ⁿ` is applied by `vscalefps`. NaN stays NaN.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn exp2_le0(t: __m512, keep: __mmask16) -> __m512 {
    let c = _mm512_set1_ps;
    // `max(c, t)` returns `t` when it is NaN.
    let t = _mm512_max_ps(c(-126.0), t);
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(t);
    let f = _mm512_sub_ps(t, n);
    // Fitted with the constant term 1, so that a row's largest weight is exactly 1.
    let mut p = c(1.325_931_2e-3);
    for k in [9.671_278e-3, 5.550_75e-2, 0.240_222_45, 0.693_146_94, 1.0] {
        p = _mm512_fmadd_ps(p, f, c(k));
    }
    _mm512_maskz_scalef_ps(keep, p, n)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp2_in_vectors_is_within_two_in_ten_million_and_masks_lanes() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        let ts: Vec<f32> = (0..=1_260_000)
            .map(|i| -126.0 * i as f32 / 1_260_000.0)
            .chain([-0.5, -0.499_999_97, -1e30, f32::NEG_INFINITY, -126.5])
            .collect();
        let mut worst = 0f64;
        // SAFETY: AVX-512 F detected above.
        let got = unsafe { super::super::avx512::in_lanes(&ts, |t| exp2_le0(t, !0)) };
        for (&t, &g) in ts.iter().zip(&got) {
            let want = (t.max(-126.0) as f64).exp2();
            worst = worst.max((g as f64 - want).abs() / want);
        }
        assert!(worst < 2e-7, "worst relative error {worst}");
        let mut lanes = [-1f32; 16];
        lanes[3] = f32::NAN;
        let mut got = [0f32; 16];
        // SAFETY: as above.
        unsafe {
            let v = exp2_le0(_mm512_loadu_ps(lanes.as_ptr()), 0x00FF);
            _mm512_storeu_ps(got.as_mut_ptr(), v);
        }
        assert!(got[3].is_nan(), "NaN kept: {}", got[3]);
        assert_eq!(got[0], 0.5);
        // SAFETY: as above.
        let one = unsafe { _mm512_cvtss_f32(exp2_le0(_mm512_setzero_ps(), !0)) };
        assert_eq!(one, 1.0, "a row's largest weight");
        assert!(got[8..].iter().all(|&g| g == 0.0), "{got:?}");
    }
}
