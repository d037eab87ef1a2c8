//! AVX2 + FMA + F16C: eight 16-bit values a step, widened to f32 (F16 through F16C, BF16 by
//! a shift into the top half) and multiplied in f32.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{by_tiles, TILE_W};
use crate::model::quant::kernel::hsum;

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
// many bytes), and `x` and `out` of `cols` and `n` values: one activation row.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn dot<const BF: bool>(w: &[u8], cols: usize, x: &[f32], out: &mut [f32]) {
    // TILE_W rows at a time, one activation row: four streams from memory in flight.
    tiles::<BF, 1>(w, cols, x, 1, out)
}

// SAFETY: callers hold AVX2, FMA and F16C and pass `w` of `n · cols` values (twice as many
// bytes), `x` of `m · cols` and `out` of `n · m` values.
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn gemm<const BF: bool>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
    // Batches (under 16 rows) in column blocks where there are several groups: of 8 and 12
    // rows in fours over three weight rows (each weight widened once per four activation
    // rows, not per two: 8 sequences of the 7B-shaped F16 file at 27.1–29.9 tok/s against
    // 25.7–27.9 on an Intel Xeon's AVX2 level, one thread), else in pairs where threes would
    // pad more (4 rows as 3 + 1 would compute 6).
    let pairs = m % 2 < m.div_ceil(3) * 3 - m;
    match (m < 16, pairs) {
        (true, _) if m > 4 && m.is_multiple_of(4) => by_blocks::<BF, 3, 4>(w, cols, x, m, out),
        (true, true) if m > 2 => by_blocks::<BF, TILE_W, 2>(w, cols, x, m, out),
        (true, true) => tiles::<BF, 2>(w, cols, x, m, out),
        (true, false) if m > 3 => by_blocks::<BF, TILE_W, 3>(w, cols, x, m, out),
        _ => tiles::<BF, 3>(w, cols, x, m, out),
    }
}

/// [`gemm`] in tiles of [`TILE_W`] weight rows × `C` activation rows over whole rows.
#[inline(always)]
unsafe fn tiles<const BF: bool, const C: usize>(
    w: &[u8],
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    by_tiles::<f32, C>(w, x, m, cols, out, |ws, xs| {
        tile::<BF, TILE_W, C>(ws, xs, cols)
    })
}

/// Values of a row per column block of [`by_blocks`]: a tile's weight rows of one block (up
/// to 2 KiB) stay in L1 while every group of activation rows meets them.
const BLOCK_COLS: usize = 256;

/// [`gemm`] for a batch of several groups of `C` activation rows (seven pairs or five threes
/// make 15 rows) over tiles of `R` weight rows, in column blocks ([`super::by_blocks`]).
// SAFETY: as `gemm`'s, with `m` at most `7 · C`.
#[inline(always)]
unsafe fn by_blocks<const BF: bool, const R: usize, const C: usize>(
    w: &[u8],
    cols: usize,
    x: &[f32],
    m: usize,
    out: &mut [f32],
) {
    let eights = cols / 8 * 8;
    super::by_blocks::<f32, __m256, R, C, 7>(
        w,
        x,
        m,
        cols,
        out,
        (BLOCK_COLS, eights, _mm256_setzero_ps()),
        |ws, xs, ks, _, acc| {
            for k in ks.step_by(8) {
                step::<BF, R, C>(ws, xs, k, acc);
            }
        },
        |acc, ws, xs| {
            std::array::from_fn(|r| {
                std::array::from_fn(|c| finish::<BF>(acc[r][c], ws[r], xs[c], eights, cols))
            })
        },
    )
}

/// One step of eight values at `k` for every sum of an `R` × `C` tile.
#[inline(always)]
unsafe fn step<const BF: bool, const R: usize, const C: usize>(
    w: &[*const u8; R],
    x: &[*const f32; C],
    k: usize,
    acc: &mut [[__m256; C]; R],
) {
    if C > R {
        // More activation rows than weight rows (3 × 4): the three widened weights held,
        // each activation vector read as it is used (twelve sums, three weights and one
        // activation fill the sixteen registers).
        let wv: [__m256; R] = std::array::from_fn(|r| load8::<BF>(w[r].add(2 * k)));
        for (c, x) in x.iter().enumerate() {
            let xv = _mm256_loadu_ps(x.add(k));
            for (acc, &wv) in acc.iter_mut().zip(&wv) {
                acc[c] = _mm256_fmadd_ps(wv, xv, acc[c]);
            }
        }
        return;
    }
    let xv: [__m256; C] = std::array::from_fn(|c| _mm256_loadu_ps(x[c].add(k)));
    for (acc, w) in acc.iter_mut().zip(w) {
        let wv = load8::<BF>(w.add(2 * k));
        for (a, &xv) in acc.iter_mut().zip(&xv) {
            *a = _mm256_fmadd_ps(wv, xv, *a);
        }
    }
}

/// A sum's eight lanes added, and the products past the last eight (`eights..cols`) of
/// weight row `w` and activation row `x` after them, one by one.
#[inline(always)]
unsafe fn finish<const BF: bool>(
    v: __m256,
    w: *const u8,
    x: *const f32,
    eights: usize,
    cols: usize,
) -> f32 {
    let row = std::slice::from_raw_parts(w, 2 * cols);
    let tail: f32 = (eights..cols)
        .map(|k| scalar::<BF>(row, k) * *x.add(k))
        .sum();
    hsum(v) + tail
}

/// `R` weight rows (16-bit values at the given byte pointers) times `C` activation rows,
/// each `cols` long, over whole rows; with one activation row (decode) the next tile's lines
/// are asked for on the way.
#[inline(always)]
unsafe fn tile<const BF: bool, const R: usize, const C: usize>(
    w: [*const u8; R],
    x: [*const f32; C],
    cols: usize,
) -> [[f32; C]; R] {
    let mut acc = [[_mm256_setzero_ps(); C]; R];
    let eights = cols / 8 * 8;
    for k in (0..eights).step_by(8) {
        if C == 1 {
            super::prefetch_next_tile(&w, k, cols);
        }
        step::<BF, R, C>(&w, &x, k, &mut acc);
    }
    std::array::from_fn(|r| {
        std::array::from_fn(|c| finish::<BF>(acc[r][c], w[r], x[c], eights, cols))
    })
}
