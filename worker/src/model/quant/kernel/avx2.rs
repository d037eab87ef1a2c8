//! AVX2 + FMA: signed weight bytes multiplied with `maddubs` through the sign trick
//! (`|w| · sign(x, w)`), 32 values per step, two activation rows per pass.

use std::arch::x86_64::*;

use super::{offsets, Block};
use crate::model::quant::act::{quantize_row, Activations};
use crate::model::quant::format::Format;
use crate::model::quant::tile::{Tile, TILE_ROWS};

/// [`Tile::fill`] compiled for AVX2.
// SAFETY: callers hold AVX2 and FMA (runtime detection).
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn fill(
    tile: &mut Tile,
    format: Format,
    data: &[u8],
    n: usize,
    cols: usize,
    padded: usize,
) {
    tile.fill(format, data, n, cols, padded, false);
}

/// [`quantize_row`] compiled for AVX2.
// SAFETY: callers hold AVX2 and FMA (runtime detection).
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn quantize(x: &[f32], block: usize, q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    quantize_row(x, block, q, d, s);
}

/// See [`super::Isa::micro`]; activation rows in pairs.
// SAFETY: callers hold AVX2 and FMA and have checked that the rows exist.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn micro(
    tile: &Tile,
    r0: usize,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut Block,
) {
    let mut c = 0;
    while c + 2 <= n {
        pass::<2>(tile, r0, acts, c0 + c, c, out);
        c += 2;
    }
    if c < n {
        pass::<1>(tile, r0, acts, c0 + c, c, out);
    }
}

// SAFETY: reached only from `micro`. Every pointer read stays inside a row slice: rows hold
// `padded` bytes (a multiple of 64), scales `padded / 16` and activations `padded / 32` values,
// and `j < padded / 32`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<const N: usize>(
    tile: &Tile,
    r0: usize,
    acts: &Activations,
    c0: usize,
    oc: usize,
    out: &mut Block,
) {
    let blocks = tile.padded / 32;
    let ones = _mm256_set1_epi16(1);
    let halves = _mm256_set_epi32(1, 1, 1, 1, 0, 0, 0, 0);
    let wq: [*const i8; TILE_ROWS] = std::array::from_fn(|r| tile.row_q(r0 + r).as_ptr());
    let wa: [*const f32; TILE_ROWS] = std::array::from_fn(|r| tile.row_a(r0 + r).as_ptr());
    let xq: [*const i8; N] = std::array::from_fn(|c| acts.row_q(c0 + c).as_ptr());
    let xd: [*const f32; N] = std::array::from_fn(|c| acts.row_d(c0 + c).as_ptr());
    let mut acc = [[_mm256_setzero_ps(); N]; TILE_ROWS];
    for j in 0..blocks {
        let x: [__m256i; N] = std::array::from_fn(|c| _mm256_loadu_si256(xq[c].add(32 * j).cast()));
        let d: [__m256; N] = std::array::from_fn(|c| _mm256_set1_ps(*xd[c].add(j)));
        for r in 0..TILE_ROWS {
            let w = _mm256_loadu_si256(wq[r].add(32 * j).cast());
            let wabs = _mm256_sign_epi8(w, w);
            // [a_lo ×4, a_hi ×4]: the two halves of the block have their own scale.
            let two = _mm_castpd_ps(_mm_load_sd(wa[r].add(2 * j).cast()));
            let a = _mm256_permutevar8x32_ps(_mm256_castps128_ps256(two), halves);
            for c in 0..N {
                // |w| ≤ 128 and |x| ≤ 127: a pair sums to at most 32,512, inside i16.
                let p = _mm256_maddubs_epi16(wabs, _mm256_sign_epi8(x[c], w));
                let i = _mm256_madd_epi16(p, ones);
                acc[r][c] =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), _mm256_mul_ps(a, d[c]), acc[r][c]);
            }
        }
    }
    for r in 0..TILE_ROWS {
        for c in 0..N {
            out[r][oc + c] = hsum(acc[r][c]) + offsets(tile.row_b(r0 + r), acts.row_s(c0 + c));
        }
    }
}

/// The sum of eight lanes (the attention and 16-bit AVX2 kernels use it too).
// SAFETY: register-only intrinsics, reached from AVX2 code.
#[allow(unsafe_code)]
#[inline(always)]
pub(crate) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
    _mm_cvtss_f32(s)
}
