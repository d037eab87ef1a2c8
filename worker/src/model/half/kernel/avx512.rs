//! AVX-512 F/BW/VL: sixteen 16-bit values a step, widened to f32 (`vcvtph2ps` for F16, a
//! shift for BF16) and multiplied in f32; tails through masked loads, no scalar loop.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::ACT_ROWS;

/// Weight rows per GEMM tile.
const TILE_W: usize = 4;

/// Activation rows per GEMM tile.
const TILE_X: usize = 6;

/// Up to sixteen values at `p` (the first `mask`'s set bits) as f32, zeros elsewhere.
#[inline(always)]
unsafe fn load16<const BF: bool>(p: *const u8, mask: __mmask16) -> __m512 {
    let h = _mm256_maskz_loadu_epi16(mask, p as *const i16);
    if BF {
        _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16))
    } else {
        _mm512_cvtph_ps(h)
    }
}

// SAFETY: callers hold AVX-512 F/BW/VL and pass `w` of `n · cols` values (twice as many
// bytes), `x` of `m · cols` and `out` of `n · m` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn dot<const BF: bool>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
    for (row, out) in w.chunks_exact(2 * cols).zip(out.chunks_exact_mut(m)) {
        for (i, out) in (0..m).step_by(ACT_ROWS).zip(out.chunks_mut(ACT_ROWS)) {
            let xs = &x[i * cols..(i + out.len()) * cols];
            match out.len() {
                1 => out.copy_from_slice(&row_times::<BF, 1, 4>(row, xs, cols)),
                2 => out.copy_from_slice(&row_times::<BF, 2, 2>(row, xs, cols)),
                3 => out.copy_from_slice(&row_times::<BF, 3, 2>(row, xs, cols)),
                _ => out.copy_from_slice(&row_times::<BF, 4, 1>(row, xs, cols)),
            }
        }
    }
}

// SAFETY: as for `dot`.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn gemm<const BF: bool>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
    let n = w.len() / (2 * cols);
    // Each group of activation rows meets every weight row of the task, which stays in L2.
    for c0 in (0..m).step_by(TILE_X) {
        let nc = (m - c0).min(TILE_X);
        // Past the last row a tile re-reads it; those sums are dropped.
        let xs = std::array::from_fn(|c| x.as_ptr().add((c0 + c.min(nc - 1)) * cols));
        for r0 in (0..n).step_by(TILE_W) {
            let nr = (n - r0).min(TILE_W);
            let ws = std::array::from_fn(|r| w.as_ptr().add(2 * (r0 + r.min(nr - 1)) * cols));
            let sums = tile::<BF, TILE_W, TILE_X>(ws, xs, cols);
            for (r, sums) in sums.iter().enumerate().take(nr) {
                out[(r0 + r) * m + c0..][..nc].copy_from_slice(&sums[..nc]);
            }
        }
    }
}

/// `R` weight rows (16-bit values at the given byte pointers) times `C` activation rows (f32),
/// each `cols` long: R · C sums.
#[inline(always)]
unsafe fn tile<const BF: bool, const R: usize, const C: usize>(
    w: [*const u8; R],
    x: [*const f32; C],
    cols: usize,
) -> [[f32; C]; R] {
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let full = cols / 16 * 16;
    for k in (0..full).step_by(16) {
        let xv: [__m512; C] = std::array::from_fn(|c| _mm512_loadu_ps(x[c].add(k)));
        for (acc, w) in acc.iter_mut().zip(&w) {
            let wv = load16::<BF>(w.add(2 * k), !0);
            for (a, &xv) in acc.iter_mut().zip(&xv) {
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
    }
    if full < cols {
        let mask: __mmask16 = (1 << (cols - full)) - 1;
        let xv: [__m512; C] = std::array::from_fn(|c| _mm512_maskz_loadu_ps(mask, x[c].add(full)));
        for (acc, w) in acc.iter_mut().zip(&w) {
            let wv = load16::<BF>(w.add(2 * full), mask);
            for (a, &xv) in acc.iter_mut().zip(&xv) {
                *a = _mm512_fmadd_ps(wv, xv, *a);
            }
        }
    }
    std::array::from_fn(|r| std::array::from_fn(|c| _mm512_reduce_add_ps(acc[r][c])))
}

/// One weight row times `NC` activation rows (`xs`, `NC · cols` values), `U` steps of
/// sixteen in flight so that at least four sums are independent.
#[inline(always)]
unsafe fn row_times<const BF: bool, const NC: usize, const U: usize>(
    row: &[u8],
    xs: &[f32],
    cols: usize,
) -> [f32; NC] {
    let mut acc = [[_mm512_setzero_ps(); NC]; U];
    let step = 16 * U;
    let full = cols / step * step;
    let (w, x) = (row.as_ptr(), xs.as_ptr());
    for k in (0..full).step_by(step) {
        for (u, acc) in acc.iter_mut().enumerate() {
            let wv = load16::<BF>(w.add(2 * (k + 16 * u)), !0);
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm512_fmadd_ps(wv, _mm512_loadu_ps(x.add(c * cols + k + 16 * u)), *a);
            }
        }
    }
    for k in (full..cols).step_by(16) {
        let mask: __mmask16 = if cols - k >= 16 {
            !0
        } else {
            (1 << (cols - k)) - 1
        };
        let wv = load16::<BF>(w.add(2 * k), mask);
        for (c, a) in acc[0].iter_mut().enumerate() {
            let xv = _mm512_maskz_loadu_ps(mask, x.add(c * cols + k));
            *a = _mm512_fmadd_ps(wv, xv, *a);
        }
    }
    std::array::from_fn(|c| {
        let v = acc
            .iter()
            .fold(_mm512_setzero_ps(), |s, a| _mm512_add_ps(s, a[c]));
        _mm512_reduce_add_ps(v)
    })
}
