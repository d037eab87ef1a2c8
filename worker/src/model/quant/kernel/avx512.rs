//! AVX-512 with VNNI: unsigned weight bytes (`q + 128`) times signed activations with
//! `vpdpbusd`, 64 values (two blocks) per step, a 4×4 register tile.

use std::arch::x86_64::*;

use super::{Block, COLS};
use crate::model::quant::act::Activations;
use crate::model::quant::format::Format;
use crate::model::quant::panel::Panel;
use crate::model::quant::tile::{Tile, TILE_ROWS};

/// [`Tile::fill`] compiled for AVX-512, with bytes offset to unsigned.
// SAFETY: callers hold AVX-512 F/BW/VNNI (runtime detection).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn fill(
    tile: &mut Tile,
    format: Format,
    data: &[u8],
    n: usize,
    cols: usize,
    padded: usize,
) {
    tile.fill(format, data, n, cols, padded, true);
}

/// [`Panel::fill`] compiled for AVX-512.
// SAFETY: callers hold AVX-512 F/BW/VNNI (runtime detection).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn fill_panel(
    panel: &mut Panel,
    format: Format,
    data: &[u8],
    n: usize,
    cols: usize,
    padded: usize,
) {
    // SAFETY: this function's callers hold AVX-512 F, which `transpose16` needs.
    let t = |src: &[u32], stride: usize, at: usize, dst: &mut [u32]| unsafe {
        transpose16(src, stride, at, dst)
    };
    panel.fill(format, data, n, cols, padded, t);
}

/// [`crate::model::quant::panel::transpose`] in 64 shuffles: 32-bit and 64-bit unpacks
/// transpose 4×4 words inside each 128-bit lane, two rounds of lane shuffles the lanes.
// SAFETY: callers hold AVX-512 F. The assertions keep every load and store in bounds.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn transpose16(src: &[u32], stride: usize, at: usize, dst: &mut [u32]) {
    assert!(at + 16 + 15 * stride <= src.len() && dst.len() >= 256);
    let r: [__m512i; 16] =
        std::array::from_fn(|i| _mm512_loadu_si512(src.as_ptr().add(i * stride + at).cast()));
    // t[4k..4k+4]: rows 4k..4k+4 paired by 32-bit words; u[4k + j]: column j of each lane.
    let t: [__m512i; 16] = std::array::from_fn(|i| {
        let (a, b) = (r[i & !1], r[i | 1]);
        if i % 2 == 0 {
            _mm512_unpacklo_epi32(a, b)
        } else {
            _mm512_unpackhi_epi32(a, b)
        }
    });
    let u: [__m512i; 16] = std::array::from_fn(|i| {
        let (k, j) = (i / 4, i % 4);
        let (a, b) = (t[4 * k + j / 2], t[4 * k + 2 + j / 2]);
        if j % 2 == 0 {
            _mm512_unpacklo_epi64(a, b)
        } else {
            _mm512_unpackhi_epi64(a, b)
        }
    });
    for j in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x88>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_i32x4::<0xDD>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + j], u[12 + j]);
        let v3 = _mm512_shuffle_i32x4::<0xDD>(u[8 + j], u[12 + j]);
        // Output column 4L + j holds lane L of u[j], u[4 + j], u[8 + j] and u[12 + j].
        let out = [
            _mm512_shuffle_i32x4::<0x88>(v0, v2),
            _mm512_shuffle_i32x4::<0x88>(v1, v3),
            _mm512_shuffle_i32x4::<0xDD>(v0, v2),
            _mm512_shuffle_i32x4::<0xDD>(v1, v3),
        ];
        for (l, o) in out.into_iter().enumerate() {
            _mm512_storeu_si512(dst.as_mut_ptr().add(16 * (4 * l + j)).cast(), o);
        }
    }
}

/// [`crate::model::quant::act::quantize_row`] with AVX-512: a block of 32 is two vectors, each one half's sum.
// SAFETY: callers hold AVX-512 F/BW/VNNI (runtime detection). The assertion keeps every
// block's loads inside `x` and its stores inside `q`, `d` and `s`.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn quantize(x: &[f32], q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    let blocks = x.len() / 32;
    assert!(
        x.len().is_multiple_of(32)
            && q.len() >= x.len()
            && d.len() >= blocks
            && s.len() >= 2 * blocks
    );
    for i in 0..blocks {
        let v = [
            _mm512_loadu_ps(x.as_ptr().add(32 * i)),
            _mm512_loadu_ps(x.as_ptr().add(32 * i + 16)),
        ];
        let amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
        let di = amax / 127.0;
        let id = if di > 0.0 { 1.0 / di } else { 0.0 };
        d[i] = di;
        for (h, v) in v.into_iter().enumerate() {
            // Round to nearest even (the default mode), as `quantize_row` does; |v·id| ≤ 127.
            let n = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(id)));
            _mm_storeu_si128(
                q.as_mut_ptr().add(32 * i + 16 * h).cast(),
                _mm512_cvtsepi32_epi8(n),
            );
            s[2 * i + h] = di * _mm512_reduce_add_epi32(n) as f32;
        }
    }
    let used = x.len();
    q[used..].fill(0);
    d[used / 32..].fill(0.0);
    s[used / 16..].fill(0.0);
}

/// See [`super::Isa::micro`].
// SAFETY: callers hold AVX-512 F/BW/VNNI and have checked that the rows exist.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn micro(
    tile: &Tile,
    r0: usize,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut Block,
) {
    match n {
        1 => pass::<1>(tile, r0, acts, c0, out),
        2 => pass::<2>(tile, r0, acts, c0, out),
        3 => pass::<3>(tile, r0, acts, c0, out),
        _ => pass::<COLS>(tile, r0, acts, c0, out),
    }
}

// SAFETY: reached only from `micro`. Rows hold `padded` bytes (a multiple of 64), scales and
// sums `padded / 16` values and activation scales `padded / 32`, so with `p < padded / 64`
// every full-width load is inside its row; the offsets loop masks its last, partial load.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<const N: usize>(
    tile: &Tile,
    r0: usize,
    acts: &Activations,
    c0: usize,
    out: &mut Block,
) {
    let pairs = tile.padded / 64;
    let zero = _mm512_setzero_si512();
    // Lanes 4k..4k+3 of a dpbusd result sum bytes 16k..16k+15: one half-block each.
    let by_half = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
    let by_block = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    let wq: [*const i8; TILE_ROWS] = std::array::from_fn(|r| tile.row_q(r0 + r).as_ptr());
    let wa: [*const f32; TILE_ROWS] = std::array::from_fn(|r| tile.row_a(r0 + r).as_ptr());
    let xq: [*const i8; N] = std::array::from_fn(|c| acts.row_q(c0 + c).as_ptr());
    let xd: [*const f32; N] = std::array::from_fn(|c| acts.row_d(c0 + c).as_ptr());
    let mut acc = [[_mm512_setzero_ps(); N]; TILE_ROWS];
    for p in 0..pairs {
        let x: [__m512i; N] = std::array::from_fn(|c| _mm512_loadu_si512(xq[c].add(64 * p).cast()));
        let d: [__m512; N] = std::array::from_fn(|c| {
            let two = _mm_castpd_ps(_mm_load_sd(xd[c].add(2 * p).cast()));
            _mm512_permutexvar_ps(by_block, _mm512_castps128_ps512(two))
        });
        for r in 0..TILE_ROWS {
            let w = _mm512_loadu_si512(wq[r].add(64 * p).cast());
            let four = _mm_loadu_ps(wa[r].add(4 * p));
            let a = _mm512_permutexvar_ps(by_half, _mm512_castps128_ps512(four));
            for c in 0..N {
                let i = _mm512_dpbusd_epi32(zero, w, x[c]);
                acc[r][c] =
                    _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(a, d[c]), acc[r][c]);
            }
        }
    }
    let halves = tile.padded / 16;
    let wb: [*const f32; TILE_ROWS] = std::array::from_fn(|r| tile.row_b(r0 + r).as_ptr());
    let xs: [*const f32; N] = std::array::from_fn(|c| acts.row_s(c0 + c).as_ptr());
    let mut h = 0;
    while h < halves {
        let left = (halves - h).min(16);
        let mask: __mmask16 = if left == 16 {
            0xFFFF
        } else {
            (1u16 << left) - 1
        };
        let s: [__m512; N] = std::array::from_fn(|c| _mm512_maskz_loadu_ps(mask, xs[c].add(h)));
        for r in 0..TILE_ROWS {
            let b = _mm512_maskz_loadu_ps(mask, wb[r].add(h));
            for c in 0..N {
                acc[r][c] = _mm512_fmadd_ps(b, s[c], acc[r][c]);
            }
        }
        h += 16;
    }
    for r in 0..TILE_ROWS {
        for c in 0..N {
            out[r][c] = _mm512_reduce_add_ps(acc[r][c]);
        }
    }
}
