//! AVX2 + FMA + F16C: eight 16-bit values a step, widened to f32 (F16 through F16C, BF16 by
//! a shift into the top half) and multiplied in f32.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::ACT_ROWS;

/// Eight values at `p` (16 little-endian bytes) as f32.
#[inline(always)]
unsafe fn load8<const BF: bool>(p: *const u8) -> __m256 {
    let h = _mm_loadu_si128(p as *const __m128i);
    if BF {
        _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16))
    } else {
        _mm256_cvtph_ps(h)
    }
}

#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
}

/// Value `i` of `bytes`, one at a time (tails past the last 8).
fn scalar<const BF: bool>(bytes: &[u8], i: usize) -> f32 {
    let bits = u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]);
    if BF {
        half::bf16::from_bits(bits).to_f32()
    } else {
        half::f16::from_bits(bits).to_f32()
    }
}

// SAFETY: callers hold AVX2, FMA and F16C; every access is within `src` and `dst`.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn convert<const BF: bool>(src: &[u8], dst: &mut [f32]) {
    let full = dst.len() / 8 * 8;
    for k in (0..full).step_by(8) {
        _mm256_storeu_ps(
            dst.as_mut_ptr().add(k),
            load8::<BF>(src.as_ptr().add(2 * k)),
        );
    }
    for (k, d) in dst.iter_mut().enumerate().skip(full) {
        *d = scalar::<BF>(src, k);
    }
}

// SAFETY: callers hold AVX2, FMA and F16C and pass `w` of `n · cols` values (twice as
// many bytes), `x` of `m · cols` and `out` of `n · m` values.
#[target_feature(enable = "avx2,fma,f16c")]
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

/// One weight row times `NC` activation rows (`xs`, `NC · cols` values), `U` steps of eight
/// in flight so that at least four sums are independent.
#[inline(always)]
unsafe fn row_times<const BF: bool, const NC: usize, const U: usize>(
    row: &[u8],
    xs: &[f32],
    cols: usize,
) -> [f32; NC] {
    let mut acc = [[_mm256_setzero_ps(); NC]; U];
    let (step, eights) = (8 * U, cols / 8 * 8);
    let full = cols / step * step;
    let (w, x) = (row.as_ptr(), xs.as_ptr());
    for k in (0..full).step_by(step) {
        for (u, acc) in acc.iter_mut().enumerate() {
            let wv = load8::<BF>(w.add(2 * (k + 8 * u)));
            for (c, a) in acc.iter_mut().enumerate() {
                *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.add(c * cols + k + 8 * u)), *a);
            }
        }
    }
    for k in (full..eights).step_by(8) {
        let wv = load8::<BF>(w.add(2 * k));
        for (c, a) in acc[0].iter_mut().enumerate() {
            *a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x.add(c * cols + k)), *a);
        }
    }
    std::array::from_fn(|c| {
        let tail: f32 = (eights..cols)
            .map(|k| scalar::<BF>(row, k) * xs[c * cols + k])
            .sum();
        let v = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, a| _mm256_add_ps(s, a[c]));
        hsum(v) + tail
    })
}
