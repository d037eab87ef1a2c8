//! AVX-512 BF16 on BF16 weights: activations rounded to BF16 once per product, then
//! `vdpbf16ps` (32 weights a step, two multiply-adds per f32 lane) straight on the file's
//! bytes, for one activation row (four weight rows at a time, or one on AMD CPUs) and more
//! (tiles of 4 weight rows × 6 activation rows, both read along the shared dimension, so no
//! panel is packed).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{by_tiles, Wide, TILE_W};

/// `x` rounded to the nearest BF16 (ties to even) into `out`.
// SAFETY: callers hold AVX-512 F/BW/VL and BF16, and pass slices of one length.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn round(x: &[f32], out: &mut [u16]) {
    assert_eq!(x.len(), out.len());
    let full = x.len() / 16 * 16;
    for k in (0..full).step_by(16) {
        let v = _mm512_cvtneps_pbh(_mm512_loadu_ps(x.as_ptr().add(k)));
        let v: __m256i = std::mem::transmute(v);
        _mm256_storeu_si256(out.as_mut_ptr().add(k) as *mut __m256i, v);
    }
    for (o, &v) in out.iter_mut().zip(x).skip(full) {
        *o = half::bf16::from_f32(v).to_bits();
    }
}

/// One activation row times the weight rows, four at a time with the next four rows' lines
/// asked into L2 (the 1.1B-shaped BF16 file decoded 9.5 tok/s one row at a time on an Intel
/// Xeon, its F16 twin 14.2 through four) or, with `one_stream`, one at a time (AMD CPUs, as
/// `avx512::dot`). Each row's sum is stepped through in the same order either way.
// SAFETY: callers hold AVX-512 F/BW/VL and BF16 and pass `w` of `n · cols` values (twice as
// many bytes) and `x` and `out` of `cols` and `n` values: one activation row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn dot(w: &[u8], cols: usize, x: &[u16], out: &mut [f32], one_stream: bool) {
    if !one_stream {
        return Dot::tiles::<1>(w, cols, x, 1, out);
    }
    for (row, out) in w.chunks_exact(2 * cols).zip(out) {
        *out = tile::<1, 1>([row.as_ptr()], [x.as_ptr()], cols)[0][0];
    }
}

// SAFETY: callers hold AVX-512 F/BW/VL and BF16 and pass `w` of `n · cols` values (twice as
// many bytes), `x` of `m · cols` and `out` of `n · m` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn gemm(w: &[u8], cols: usize, x: &[u16], m: usize, out: &mut [f32]) {
    super::wide_gemm::<Dot>(w, cols, x, m, out)
}

/// Values of a row per column block of [`Wide::blocks`], as `avx512::BLOCK_COLS`.
const BLOCK_COLS: usize = 512;

/// The GEMM loops on `vdpbf16ps`.
struct Dot;

impl Wide for Dot {
    type X = u16;

    /// Tiles of [`TILE_W`] weight rows × `C` activation rows.
    #[inline(always)]
    unsafe fn tiles<const C: usize>(w: &[u8], cols: usize, x: &[u16], m: usize, out: &mut [f32]) {
        by_tiles::<u16, C>(w, x, m, cols, out, |ws, xs| tile::<TILE_W, C>(ws, xs, cols))
    }

    /// A batch of several groups of `C` activation rows (at most four), in column blocks
    /// ([`super::by_blocks`]), the next tile's lines asked for on the first group's pass.
    #[inline(always)]
    unsafe fn blocks<const C: usize>(w: &[u8], cols: usize, x: &[u16], m: usize, out: &mut [f32]) {
        let full = cols / 32 * 32;
        super::by_blocks::<u16, __m512, TILE_W, C, 4>(
            w,
            x,
            m,
            cols,
            out,
            (BLOCK_COLS, full, _mm512_setzero_ps()),
            |ws, xs, ks, first, acc| {
                for k in ks.step_by(32) {
                    if first {
                        super::prefetch_next_tile(ws, k, cols);
                    }
                    step::<TILE_W, C>(ws, xs, k, !0, acc);
                }
            },
            |acc, ws, xs| {
                if full < cols {
                    step::<TILE_W, C>(ws, xs, full, (1 << (cols - full)) - 1, acc);
                }
                super::avx512::sums(acc)
            },
        )
    }
}

/// Sixteen BF16 pairs as the dot product's operand type.
#[inline(always)]
fn bh(v: __m512i) -> __m512bh {
    // SAFETY: both are 64 plain bytes; every bit pattern is a valid value of either.
    unsafe { std::mem::transmute(v) }
}

/// The values at `p` that `mask` selects, zeros elsewhere.
#[inline(always)]
unsafe fn load(p: *const u16, mask: __mmask32) -> __m512bh {
    if mask == !0 {
        bh(_mm512_loadu_si512(p as *const _))
    } else {
        bh(_mm512_maskz_loadu_epi16(mask, p as *const i16))
    }
}

/// One step of the 32 values at `k` (those `mask` selects, zeros past them) for every sum of
/// an `R` × `C` tile.
#[inline(always)]
unsafe fn step<const R: usize, const C: usize>(
    w: &[*const u8; R],
    x: &[*const u16; C],
    k: usize,
    mask: __mmask32,
    acc: &mut [[__m512; C]; R],
) {
    let xv: [__m512bh; C] = std::array::from_fn(|c| load(x[c].add(k), mask));
    for (acc, w) in acc.iter_mut().zip(w) {
        let wv = load(w.add(2 * k).cast(), mask);
        for (a, &xv) in acc.iter_mut().zip(&xv) {
            *a = _mm512_dpbf16_ps(*a, wv, xv);
        }
    }
}

/// `R` weight rows times `C` activation rows, each `cols` BF16 values at the given
/// pointers (the weights' as bytes): R · C sums, each in one accumulator, so that every row
/// count (decode, batches, prompts) adds a row's products in the same order.
#[inline(always)]
unsafe fn tile<const R: usize, const C: usize>(
    w: [*const u8; R],
    x: [*const u16; C],
    cols: usize,
) -> [[f32; C]; R] {
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let full = cols / 32 * 32;
    for k in (0..full).step_by(32) {
        if C <= 4 && R > 1 {
            // One stream (AMD) gained nothing from it on a Zen 4.
            super::prefetch_next_tile(&w, k, cols);
        }
        step::<R, C>(&w, &x, k, !0, &mut acc);
    }
    if full < cols {
        step::<R, C>(&w, &x, full, (1 << (cols - full)) - 1, &mut acc);
    }
    super::avx512::sums(&acc)
}
