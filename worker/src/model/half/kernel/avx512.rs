//! AVX-512 F/BW/VL: sixteen 16-bit values a step, widened to f32 (`vcvtph2ps` for F16, a
//! shift for BF16) and multiplied in f32; tails through masked loads, no scalar loop.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use super::{by_tiles, Wide, TILE_W};

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

/// One activation row times the weight rows, four at a time (four streams from memory in
/// flight: the 7B-shaped F16 file decoded 25% faster so on an Intel Xeon than one row at a
/// time) or, with `one_stream`, one at a time (the matrix read as one stream, which an AMD
/// Zen 4 core's prefetchers follow: that file decoded 30% faster so there, with the weights
/// in huge pages). Each row's sum is stepped through in the same order either way.
// SAFETY: callers hold AVX-512 F/BW/VL and pass `w` of `n · cols` values (twice as many
// bytes) and `x` and `out` of `cols` and `n` values: one activation row.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn dot<const BF: bool>(
    w: &[u8],
    cols: usize,
    x: &[f32],
    out: &mut [f32],
    one_stream: bool,
) {
    if !one_stream {
        return Widen::<BF>::tiles::<1>(w, cols, x, 1, out);
    }
    for (r, o) in out.iter_mut().enumerate() {
        *o = tile::<BF, 1, 1>([w.as_ptr().add(2 * r * cols)], [x.as_ptr()], cols)[0][0];
    }
}

// SAFETY: callers hold AVX-512 F/BW/VL and pass `w` of `n · cols` values (twice as many
// bytes), `x` of `m · cols` and `out` of `n · m` values.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub unsafe fn gemm<const BF: bool>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
    super::wide_gemm::<Widen<BF>>(w, cols, x, m, out)
}

/// Values of a row per column block of [`Wide::blocks`]: a tile's four weight rows of one
/// block (4 KiB) stay in L1 while every group of activation rows meets them. On an Intel Xeon
/// (one thread) 8 sequences of the 7B-shaped F16 file decoded at 41.0–41.3 tok/s in blocks of
/// 256, 39.8–41.5 in blocks of 512, 38.0–39.9 in blocks of 1024.
const BLOCK_COLS: usize = 512;

/// The GEMM loops on 16-bit weights widened to f32 (`BF`: BF16, else F16).
struct Widen<const BF: bool>;

impl<const BF: bool> Wide for Widen<BF> {
    type X = f32;

    /// Tiles of [`TILE_W`] weight rows × `C` activation rows.
    #[inline(always)]
    unsafe fn tiles<const C: usize>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
        by_tiles::<f32, C>(w, x, m, cols, out, |ws, xs| {
            tile::<BF, TILE_W, C>(ws, xs, cols)
        })
    }

    /// A batch of several groups of `C` activation rows (four fours or three sixes hold the
    /// 15 rows of the largest), in column blocks ([`super::by_blocks`]), the next tile's
    /// lines asked for on the first group's pass.
    #[inline(always)]
    unsafe fn blocks<const C: usize>(w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
        let full = cols / 16 * 16;
        super::by_blocks::<f32, __m512, TILE_W, C, 4>(
            w,
            x,
            m,
            cols,
            out,
            (BLOCK_COLS, full, _mm512_setzero_ps()),
            |ws, xs, ks, first, acc| {
                for k in ks.step_by(16) {
                    if first {
                        super::prefetch_next_tile(ws, k, cols);
                    }
                    step::<BF, TILE_W, C>(ws, xs, k, !0, acc);
                }
            },
            |acc, ws, xs| {
                if full < cols {
                    let mask: __mmask16 = (1 << (cols - full)) - 1;
                    step::<BF, TILE_W, C>(ws, xs, full, mask, acc);
                }
                sums(acc)
            },
        )
    }
}

/// One step of the sixteen values at `k` (those `mask` selects, zeros past them) for every
/// sum of an `R` × `C` tile.
#[inline(always)]
unsafe fn step<const BF: bool, const R: usize, const C: usize>(
    w: &[*const u8; R],
    x: &[*const f32; C],
    k: usize,
    mask: __mmask16,
    acc: &mut [[__m512; C]; R],
) {
    let xv: [__m512; C] = std::array::from_fn(|c| {
        if mask == !0 {
            _mm512_loadu_ps(x[c].add(k))
        } else {
            _mm512_maskz_loadu_ps(mask, x[c].add(k))
        }
    });
    for (acc, w) in acc.iter_mut().zip(w) {
        let wv = load16::<BF>(w.add(2 * k), mask);
        for (a, &xv) in acc.iter_mut().zip(&xv) {
            *a = _mm512_fmadd_ps(wv, xv, *a);
        }
    }
}

/// `R` weight rows (16-bit values at the given byte pointers) times `C` activation rows (f32),
/// each `cols` long: R · C sums, each in one accumulator, so that every row count (decode,
/// batches, prompts) adds a row's products in the same order.
#[inline(always)]
unsafe fn tile<const BF: bool, const R: usize, const C: usize>(
    w: [*const u8; R],
    x: [*const f32; C],
    cols: usize,
) -> [[f32; C]; R] {
    let mut acc = [[_mm512_setzero_ps(); C]; R];
    let full = cols / 16 * 16;
    for k in (0..full).step_by(16) {
        if C <= 4 {
            super::prefetch_next_tile(&w, k, cols);
        }
        step::<BF, R, C>(&w, &x, k, !0, &mut acc);
    }
    if full < cols {
        let mask: __mmask16 = (1 << (cols - full)) - 1;
        step::<BF, R, C>(&w, &x, full, mask, &mut acc);
    }
    sums(&acc)
}

/// The `R · C` sums of a tile's accumulators.
#[inline(always)]
pub(super) unsafe fn sums<const R: usize, const C: usize>(acc: &[[__m512; C]; R]) -> [[f32; C]; R] {
    std::array::from_fn(|r| std::array::from_fn(|c| _mm512_reduce_add_ps(acc[r][c])))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_and_four_give_the_same_bits() {
        if !(is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512bw")
            && is_x86_feature_detected!("avx512vl"))
        {
            eprintln!("skipped: no AVX-512 F/BW/VL here");
            return;
        }
        // Row counts around the four-row tile, lengths with and without a masked tail.
        for (rows, cols) in [(1, 16), (5, 100), (7, 4100), (8, 64)] {
            let w: Vec<u8> = (0..2 * rows * cols)
                .map(|i| match i % 2 {
                    // High bytes kept small: finite F16 and BF16 values near one.
                    1 => 0x3C - (i % 7) as u8,
                    _ => (i * 7919 % 251) as u8,
                })
                .collect();
            let x: Vec<f32> = (0..cols).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
            for bf in [false, true] {
                let run = |one: bool| {
                    let mut out = vec![0f32; rows];
                    // SAFETY: AVX-512 F/BW/VL detected above; `w`, `x` and `out` hold
                    // `rows · cols`, `cols` and `rows` values.
                    unsafe {
                        if bf {
                            dot::<true>(&w, cols, &x, &mut out, one);
                        } else {
                            dot::<false>(&w, cols, &x, &mut out, one);
                        }
                    }
                    out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                let (one, four) = (run(true), run(false));
                assert_eq!(one, four, "bf16 {bf}: {rows}x{cols}");
                assert!(one.iter().all(|&b| f32::from_bits(b).is_finite() && b != 0));
            }
            if is_x86_feature_detected!("avx512bf16") {
                // The `vdpbf16ps` kernel over the same BF16 weights, activations rounded.
                let mut xb = vec![0u16; cols];
                // SAFETY: AVX-512 F/BW/VL and BF16 detected; `x` and `xb` hold `cols` values.
                unsafe { super::super::bf16dp::round(&x, &mut xb) };
                let run = |one: bool| {
                    let mut out = vec![0f32; rows];
                    // SAFETY: as above; `w`, `xb` and `out` as for `dot`.
                    unsafe { super::super::bf16dp::dot(&w, cols, &xb, &mut out, one) };
                    out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
                };
                let (one, four) = (run(true), run(false));
                assert_eq!(one, four, "vdpbf16ps: {rows}x{cols}");
                assert!(one.iter().all(|&b| f32::from_bits(b).is_finite() && b != 0));
            }
        }
    }
}
