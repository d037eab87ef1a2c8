//! The attention task on AVX-512 (see [`super::host`]).
//!
//! candle's matrix products ran the two products of a chat turn's 22 new rows over 1,910
//! cached positions (SmolLM2: 3 key/value heads of 64) at 66–80 GFlop/s on one Xeon core and
//! no faster on two. Here scores are multiply-adds of broadcast query values into vectors of
//! 16 keys (the cache keeps keys that way), each row's maximum taken as they are stored; the
//! weights are `exp` in vectors of 16 with their sum beside them; the values are weighted key
//! by key, and each row divided by its total once at the end.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::model::kv_cache::pages::{LANES, PAGE};

use super::host::{Task, GROUP, TASK_ROWS};
use super::lanes::{divide_rows, weigh};

/// Key blocks in a page.
const PAGE_BLOCKS: usize = PAGE / LANES;

/// Value vectors a group weighs per pass: six rows × four = 24 registers.
const W: usize = 4;

/// See [`super::host`]'s `Kernel::run`; the caller holds AVX-512 F and heads of whole vectors.
///
/// A page of keys (then of values) is read from L2 once and serves every group of six rows
/// of the task from L1; a group's weighted sums go back to `out` between pages, exactly, so
/// each row's sums run in the order they would alone.
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn run(task: &Task, scores: &mut [f32], out: &mut [f32]) {
    let (n, hd) = (task.rows(), task.kv.head_dim());
    let s = scores.as_mut_ptr();
    let groups = || (0..n).step_by(GROUP).map(move |g| (g, GROUP.min(n - g)));
    let most = task.most(0..n);
    let mut top = [_mm512_set1_ps(f32::NEG_INFINITY); TASK_ROWS];
    for p in 0..most.div_ceil(PAGE) {
        for (g, rows) in groups() {
            let blocks = task.most(g..g + rows).div_ceil(LANES);
            let (b0, b1) = (p * PAGE_BLOCKS, blocks.min((p + 1) * PAGE_BLOCKS));
            if b0 < b1 {
                let top = &mut top[g..g + rows];
                match rows {
                    1 => score::<1>(task, g, b0..b1, s, top),
                    2 => score::<2>(task, g, b0..b1, s, top),
                    3 => score::<3>(task, g, b0..b1, s, top),
                    4 => score::<4>(task, g, b0..b1, s, top),
                    5 => score::<5>(task, g, b0..b1, s, top),
                    _ => score::<6>(task, g, b0..b1, s, top),
                }
            }
        }
    }
    let top = top.map(|m| _mm512_reduce_max_ps(m));
    let mut inv = [0f32; TASK_ROWS];
    let scale = _mm512_set1_ps(task.scale);
    for (g, rows) in groups() {
        // Every row's weights up to its group's last key: zero past its own.
        let blocks = task.most(g..g + rows).div_ceil(LANES);
        for r in g..g + rows {
            let (seen, shift) = (task.seen(r), _mm512_set1_ps(top[r] * task.scale));
            let mut sum = _mm512_setzero_ps();
            for b in 0..blocks {
                let at = s.add(r * task.padded + b * LANES);
                let x = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(at), scale), shift);
                // Keys past a row's own weigh exactly zero, so its sums are what it gives alone.
                let e = _mm512_maskz_mov_ps(seen_lanes(seen, b), exp_le0(x));
                sum = _mm512_add_ps(sum, e);
                _mm512_storeu_ps(at, e);
            }
            inv[r] = 1.0 / _mm512_reduce_add_ps(sum);
        }
    }
    out.fill(0.0);
    for p in 0..most.div_ceil(PAGE) {
        for (g, rows) in groups() {
            let j1 = task.most(g..g + rows).min((p + 1) * PAGE);
            if p * PAGE < j1 {
                let keys = p * PAGE..j1;
                for c0 in (0..hd).step_by(W * LANES) {
                    let w = (hd - c0) / LANES;
                    let at = (g, c0);
                    match (rows, w >= W) {
                        (1, true) => weigh::<__m512, 1, W>(task, at, keys.clone(), s, out),
                        (2, true) => weigh::<__m512, 2, W>(task, at, keys.clone(), s, out),
                        (3, true) => weigh::<__m512, 3, W>(task, at, keys.clone(), s, out),
                        (4, true) => weigh::<__m512, 4, W>(task, at, keys.clone(), s, out),
                        (5, true) => weigh::<__m512, 5, W>(task, at, keys.clone(), s, out),
                        (_, true) => weigh::<__m512, 6, W>(task, at, keys.clone(), s, out),
                        // A head of 16·(4k + w) values: the last w vectors one at a time.
                        _ => {
                            for (r, c) in (g..g + rows)
                                .flat_map(|r| (c0..hd).step_by(LANES).map(move |c| (r, c)))
                            {
                                weigh::<__m512, 1, 1>(task, (r, c), keys.clone(), s, out);
                            }
                        }
                    }
                }
            }
        }
    }
    divide_rows::<__m512>(out, hd, &inv);
}

/// The lanes of key block `b` that a row seeing `seen` keys sees.
#[inline(always)]
pub(super) fn seen_lanes(seen: usize, b: usize) -> __mmask16 {
    let n = seen.saturating_sub(b * LANES);
    if n >= LANES {
        !0
    } else {
        (1u16 << n) - 1
    }
}

/// Scores of the `N` rows from `g` against key `blocks` (within one page) into `s` (rows
/// `task.padded` apart), each a multiply-add chain over the head in order; and the rows'
/// running maxima over the keys they see into `top`.
#[inline(always)]
unsafe fn score<const N: usize>(
    task: &Task,
    g: usize,
    blocks: std::ops::Range<usize>,
    s: *mut f32,
    top: &mut [__m512],
) {
    let seen: [usize; N] = std::array::from_fn(|r| task.seen(g + r));
    let mut max: [__m512; N] = std::array::from_fn(|r| top[r]);
    if blocks.len() == PAGE_BLOCKS {
        score_blocks::<N, PAGE_BLOCKS>(task, g, blocks.start, &seen, s, &mut max);
    } else {
        for b in blocks {
            score_blocks::<N, 1>(task, g, b, &seen, s, &mut max);
        }
    }
    top[..N].copy_from_slice(&max);
}

/// [`score`] of blocks `b0 .. b0 + KB`: `N·KB` independent sums (at least eight keep two
/// multiply-add units of four cycles' latency busy).
#[inline(always)]
unsafe fn score_blocks<const N: usize, const KB: usize>(
    task: &Task,
    g: usize,
    b0: usize,
    seen: &[usize; N],
    s: *mut f32,
    max: &mut [__m512; N],
) {
    let hd = task.kv.head_dim();
    let q: [*const f32; N] = std::array::from_fn(|r| task.q.as_ptr().add((g + r) * hd));
    let keys: [*const f32; KB] =
        std::array::from_fn(|i| task.kv.key_block(task.head, b0 + i).as_ptr());
    let mut acc = [[_mm512_setzero_ps(); KB]; N];
    for d in 0..hd {
        let key: [__m512; KB] = std::array::from_fn(|i| _mm512_loadu_ps(keys[i].add(d * LANES)));
        for (acc, q) in acc.iter_mut().zip(&q) {
            let x = _mm512_set1_ps(*q.add(d));
            for (a, k) in acc.iter_mut().zip(&key) {
                *a = _mm512_fmadd_ps(x, *k, *a);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (i, a) in acc.iter().enumerate() {
            let b = b0 + i;
            _mm512_storeu_ps(s.add((g + r) * task.padded + b * LANES), *a);
            max[r] = _mm512_mask_max_ps(max[r], seen_lanes(seen[r], b), max[r], *a);
        }
    }
}

/// `eˣ` for `x ≤ 0` in 16 lanes, within 2 ulp of libm's: `elementwise`'s scalar `exp_le0`
/// (Cephes' reduction and polynomial, clamped at −87.3, NaN kept) with the reduction in
/// fused multiply-adds and 2ⁿ applied by `vscalefps`: five fewer instructions a vector.
#[inline(always)]
pub(super) unsafe fn exp_le0(x: __m512) -> __m512 {
    let c = _mm512_set1_ps;
    // `max(c, x)` returns `x` when it is NaN.
    let x = _mm512_max_ps(c(-87.3), x);
    let n = _mm512_fmadd_ps(x, c(std::f32::consts::LOG2_E), c(0.5));
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC }>(n);
    let r = _mm512_fnmadd_ps(n, c(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, c(-2.121_944_4e-4), r);
    let mut p = c(1.987_569_1e-4);
    for k in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm512_fmadd_ps(p, r, c(k));
    }
    let y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), c(1.0));
    _mm512_scalef_ps(y, n)
}

/// `f` of `xs`, 16 lanes at a time (the last vector padded with zeros), for the tests of the
/// vector functions; the caller holds AVX-512 F.
#[cfg(test)]
pub(super) unsafe fn in_lanes(xs: &[f32], f: impl Fn(__m512) -> __m512) -> Vec<f32> {
    let mut out = Vec::with_capacity(xs.len().next_multiple_of(LANES));
    for chunk in xs.chunks(LANES) {
        let mut lanes = [0f32; LANES];
        lanes[..chunk.len()].copy_from_slice(chunk);
        let mut got = [0f32; LANES];
        _mm512_storeu_ps(got.as_mut_ptr(), f(_mm512_loadu_ps(lanes.as_ptr())));
        out.extend_from_slice(&got[..chunk.len()]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_in_vectors_is_within_two_ulp_of_libm() {
        if !is_x86_feature_detected!("avx512f") {
            return;
        }
        let xs: Vec<f32> = (0..=1_000_000)
            .map(|i| -87.0 * i as f32 / 1_000_000.0)
            .chain([-1e30, f32::NEG_INFINITY, f32::NAN, -87.3, -87.4])
            .collect();
        let mut worst = 0f32;
        // SAFETY: AVX-512 F detected above.
        let got = unsafe { in_lanes(&xs, |x| exp_le0(x)) };
        for (&x, g) in xs.iter().zip(got) {
            if x.is_nan() {
                assert!(g.is_nan());
            } else if x < -87.3 {
                // Clamped: e^-87.3, a normal number, not zero or a subnormal.
                assert!(g > 1.1e-38 && g < 1.3e-38, "{x}: {g}");
            } else {
                let want = x.exp();
                let ulp = f32::from_bits(want.to_bits() + 1) - want;
                worst = worst.max((g - want).abs() / ulp);
            }
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }
}
