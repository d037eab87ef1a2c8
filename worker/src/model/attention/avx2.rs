//! The attention task on AVX2 and FMA (see [`super::host`]), over f32 pages, for heads of
//! whole vectors of eight.
//!
//! The plain loop compiled for AVX2 scored one query row at a time: per 16 keys two
//! multiply-add chains as long as the head, so the core waited on their latency (a chat turn's
//! 22 rows over 2,032 cached positions: 3.1 ms a layer on two Zen 3 cores, 1.1 here). Here six
//! rows share each key block (twelve chains), the weights are `exp` in vectors of eight, and
//! the same six rows weigh each value two vectors at a time, a page at a time from L1.
//!
//! Each row's sums run in the order they would alone: a row's accumulators are its own, its
//! score is a chain over the head in order, its weighted sum goes key by key through `out`
//! between pages, and keys past its own weigh exactly zero.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::model::kv_cache::pages::{LANES, PAGE};
use crate::model::quant::kernel::{hsum, prefetch_part};

use super::host::{Task, GROUP, TASK_ROWS};
use super::lanes::{divide_rows, weigh};

/// Lanes of one vector.
const V8: usize = 8;

/// Key blocks of 16 positions in a page.
const PAGE_BLOCKS: usize = PAGE / LANES;

/// Value vectors a group weighs per pass: six rows × two sums and two values in 16
/// registers.
const W: usize = 2;

/// See [`super::host`]'s `Kernel::run`; the caller holds AVX2 and FMA, f32 pages and heads
/// of whole vectors of eight.
///
/// A page of keys (then of values) is read once from memory and serves every group of the
/// task from L1; the next page is asked for while this one is worked.
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn run(task: &Task, scores: &mut [f32], out: &mut [f32]) {
    let (n, hd) = (task.rows(), task.kv.head_dim());
    assert!(hd.is_multiple_of(V8) && scores.len() >= n * task.padded && out.len() == n * hd);
    let s = scores.as_mut_ptr();
    let groups = || (0..n).step_by(GROUP).map(move |g| (g, GROUP.min(n - g)));
    let most = task.most(0..n);
    let pages = most.div_ceil(PAGE);
    let mut top = [_mm256_set1_ps(f32::NEG_INFINITY); TASK_ROWS];
    for p in 0..pages {
        if p + 1 < pages {
            prefetch_page_keys(task, p + 1);
        }
        for (g, rows) in groups() {
            let blocks = task.most(g..g + rows).div_ceil(LANES);
            let top = &mut top[g..g + rows];
            for b in p * PAGE_BLOCKS..blocks.min((p + 1) * PAGE_BLOCKS) {
                match rows {
                    1 => score::<1>(task, g, b, s, top),
                    2 => score::<2>(task, g, b, s, top),
                    3 => score::<3>(task, g, b, s, top),
                    4 => score::<4>(task, g, b, s, top),
                    5 => score::<5>(task, g, b, s, top),
                    _ => score::<6>(task, g, b, s, top),
                }
            }
        }
    }
    let mut inv = [0f32; TASK_ROWS];
    let scale = _mm256_set1_ps(task.scale);
    for (g, rows) in groups() {
        // Every row's weights up to its group's last key: zero past its own.
        let end = task.most(g..g + rows).next_multiple_of(LANES);
        for r in g..g + rows {
            let seen = task.seen(r);
            let shift = _mm256_set1_ps(horizontal_max(top[r]) * task.scale);
            let row = s.add(r * task.padded);
            let weight = |j: usize| {
                let x = _mm256_loadu_ps(row.add(j));
                exp_le0(_mm256_sub_ps(_mm256_mul_ps(x, scale), shift))
            };
            let mut sum = _mm256_setzero_ps();
            let whole = seen / V8 * V8;
            for j in (0..whole).step_by(V8) {
                let e = weight(j);
                sum = _mm256_add_ps(sum, e);
                _mm256_storeu_ps(row.add(j), e);
            }
            for j in (whole..end).step_by(V8) {
                let e = _mm256_and_ps(weight(j), seen_lanes(seen, j));
                sum = _mm256_add_ps(sum, e);
                _mm256_storeu_ps(row.add(j), e);
            }
            inv[r] = 1.0 / hsum(sum);
        }
    }
    out.fill(0.0);
    for p in 0..pages {
        if p + 1 < pages {
            prefetch_part(task.kv.value_page(task.head, p + 1), 0, 1);
        }
        for (g, rows) in groups() {
            let j1 = task.most(g..g + rows).min((p + 1) * PAGE);
            if p * PAGE >= j1 {
                continue;
            }
            let keys = p * PAGE..j1;
            for c0 in (0..hd).step_by(W * V8) {
                let at = (g, c0);
                match (rows, hd - c0 >= W * V8) {
                    (1, true) => weigh::<__m256, 1, W>(task, at, keys.clone(), s, out),
                    (2, true) => weigh::<__m256, 2, W>(task, at, keys.clone(), s, out),
                    (3, true) => weigh::<__m256, 3, W>(task, at, keys.clone(), s, out),
                    (4, true) => weigh::<__m256, 4, W>(task, at, keys.clone(), s, out),
                    (5, true) => weigh::<__m256, 5, W>(task, at, keys.clone(), s, out),
                    (_, true) => weigh::<__m256, 6, W>(task, at, keys.clone(), s, out),
                    // A head of 8·(2k + 1) values: the last vector a row at a time.
                    _ => {
                        for r in g..g + rows {
                            weigh::<__m256, 1, 1>(task, (r, c0), keys.clone(), s, out);
                        }
                    }
                }
            }
        }
    }
    divide_rows::<__m256>(out, hd, &inv);
}

/// Asks for page `p`'s keys of the task's head: the pages are separate allocations, where
/// the hardware's prefetchers do not follow.
fn prefetch_page_keys(task: &Task, p: usize) {
    for b in p * PAGE_BLOCKS..(p + 1) * PAGE_BLOCKS {
        prefetch_part(task.kv.key_block(task.head, b), 0, 1);
    }
}

/// All ones in the lanes of keys `j .. j + 8` that a row seeing `seen` keys sees, zero in
/// the others.
#[inline(always)]
unsafe fn seen_lanes(seen: usize, j: usize) -> __m256 {
    // At most 8, so the cast is exact.
    let n = seen.saturating_sub(j).min(V8) as i32;
    let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(n), lanes))
}

/// The largest of eight lanes.
#[inline(always)]
unsafe fn horizontal_max(x: __m256) -> f32 {
    let m = _mm_max_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps::<1>(x));
    let m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    _mm_cvtss_f32(_mm_max_ss(m, _mm_movehdup_ps(m)))
}

/// Scores of the `N` rows from `g` against key block `b` into `s` (rows `task.padded`
/// apart), each a multiply-add chain over the head in order (`2·N` independent chains); and
/// the rows' running maxima over the keys they see into `top`.
#[inline(always)]
unsafe fn score<const N: usize>(task: &Task, g: usize, b: usize, s: *mut f32, top: &mut [__m256]) {
    let hd = task.kv.head_dim();
    let q: [*const f32; N] = std::array::from_fn(|r| task.q.as_ptr().add((g + r) * hd));
    let key = task.kv.key_block(task.head, b).as_ptr();
    let mut acc = [[_mm256_setzero_ps(); 2]; N];
    for d in 0..hd {
        let k = [
            _mm256_loadu_ps(key.add(d * LANES)),
            _mm256_loadu_ps(key.add(d * LANES + V8)),
        ];
        for (acc, q) in acc.iter_mut().zip(&q) {
            let x = _mm256_broadcast_ss(&*q.add(d));
            for (a, k) in acc.iter_mut().zip(&k) {
                *a = _mm256_fmadd_ps(x, *k, *a);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        let seen = task.seen(g + r);
        for (h, a) in acc.iter().enumerate() {
            let j = b * LANES + h * V8;
            _mm256_storeu_ps(s.add((g + r) * task.padded + j), *a);
            // Lanes the row does not see count as −∞ (a stale one may hold anything).
            let seen = _mm256_blendv_ps(_mm256_set1_ps(f32::NEG_INFINITY), *a, seen_lanes(seen, j));
            top[r] = _mm256_max_ps(seen, top[r]);
        }
    }
}

/// `eˣ` for `x ≤ 0` in eight lanes, within 2 ulp of libm's: `elementwise`'s scalar `exp_le0`
/// (Cephes' reduction and polynomial, clamped at −87.3, NaN kept) with the reduction in
/// fused multiply-adds.
#[inline(always)]
unsafe fn exp_le0(x: __m256) -> __m256 {
    let c = _mm256_set1_ps;
    // `max(c, x)` returns `x` when it is NaN.
    let x = _mm256_max_ps(c(-87.3), x);
    let n = _mm256_floor_ps(_mm256_fmadd_ps(x, c(std::f32::consts::LOG2_E), c(0.5)));
    let r = _mm256_fnmadd_ps(n, c(0.693_359_4), x);
    let r = _mm256_fnmadd_ps(n, c(-2.121_944_4e-4), r);
    let mut p = c(1.987_569_1e-4);
    for k in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        p = _mm256_fmadd_ps(p, r, c(k));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), c(1.0));
    // 2ⁿ from its exponent bits: n + 127 is in 1..=127 after the clamp (a NaN's garbage
    // here is multiplied by `y`, the NaN).
    let e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32::<23>(e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_in_vectors_is_within_two_ulp_of_libm() {
        if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
            return;
        }
        let xs: Vec<f32> = (0..=1_000_000)
            .map(|i| -87.0 * i as f32 / 1_000_000.0)
            .chain([-1e30, f32::NEG_INFINITY, f32::NAN, -87.3, -87.4, 0.0])
            .collect();
        let mut worst = 0f32;
        for chunk in xs.chunks(V8) {
            let mut lanes = [0f32; V8];
            lanes[..chunk.len()].copy_from_slice(chunk);
            let mut got = [0f32; V8];
            // SAFETY: AVX2 and FMA detected above.
            unsafe { _mm256_storeu_ps(got.as_mut_ptr(), exp_le0(_mm256_loadu_ps(lanes.as_ptr()))) };
            for (&x, &g) in chunk.iter().zip(&got) {
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
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }

    #[test]
    fn seen_lanes_mark_the_keys_a_row_sees() {
        if !is_x86_feature_detected!("avx2") {
            return;
        }
        for (seen, j, want) in [
            (0, 0, 0),
            (3, 0, 3),
            (8, 0, 8),
            (20, 16, 4),
            (20, 24, 0),
            (99, 8, 8),
        ] {
            let mut lanes = [0f32; V8];
            // SAFETY: AVX2 detected above.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), seen_lanes(seen, j)) };
            let marked: Vec<bool> = lanes.iter().map(|x| x.to_bits() == u32::MAX).collect();
            let expect: Vec<bool> = (0..V8).map(|i| i < want).collect();
            assert_eq!(marked, expect, "seen {seen} from {j}");
        }
    }
}
