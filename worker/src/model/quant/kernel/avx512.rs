//! AVX-512 helpers of the panel GEMM (`super::gemm`): interleaving weight rows into a panel,
//! and quantizing activations. Steps of up to four rows take the fused kernel instead.

use std::arch::x86_64::*;

use crate::model::quant::format::Format;
use crate::model::quant::panel::Panel;

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

/// [`crate::model::quant::panel::transpose`] with [`transpose_words`].
// SAFETY: callers hold AVX-512 F. The assertions keep every load and store in bounds.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn transpose16(src: &[u32], stride: usize, at: usize, dst: &mut [u32]) {
    assert!(at + 16 + 15 * stride <= src.len() && dst.len() >= 256);
    let r: [__m512i; 16] =
        std::array::from_fn(|i| _mm512_loadu_si512(src.as_ptr().add(i * stride + at).cast()));
    for (j, v) in transpose_words(r).into_iter().enumerate() {
        _mm512_storeu_si512(dst.as_mut_ptr().add(16 * j).cast(), v);
    }
}

/// The 16 × 16 matrix of 32-bit words in `r` (one row a register), transposed, in 64
/// shuffles: 32-bit and 64-bit unpacks transpose 4×4 words inside each 128-bit lane, two
/// rounds of lane shuffles the lanes.
///
/// # Safety
/// The CPU has AVX-512 F.
#[allow(unsafe_code)]
#[inline(always)]
pub unsafe fn transpose_words(r: [__m512i; 16]) -> [__m512i; 16] {
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
    let mut out = [_mm512_setzero_si512(); 16];
    for j in 0..4 {
        let v0 = _mm512_shuffle_i32x4::<0x88>(u[j], u[4 + j]);
        let v1 = _mm512_shuffle_i32x4::<0xDD>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_i32x4::<0x88>(u[8 + j], u[12 + j]);
        let v3 = _mm512_shuffle_i32x4::<0xDD>(u[8 + j], u[12 + j]);
        // Output column 4L + j holds lane L of u[j], u[4 + j], u[8 + j] and u[12 + j].
        out[j] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
        out[4 + j] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
        out[8 + j] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
        out[12 + j] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
    }
    out
}

/// [`crate::model::quant::act::quantize_row`] with AVX-512: a block of 32 is two vectors, each one half's sum.
// SAFETY: callers hold AVX-512 F/BW/VNNI (runtime detection). The assertion keeps every
// block's loads inside `x` and its stores inside `q`, `d` and `s`.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn quantize(x: &[f32], block: usize, q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    let blocks = x.len() / 32;
    assert!(
        x.len().is_multiple_of(32)
            && block.is_multiple_of(32)
            && q.len() >= x.len()
            && d.len() >= blocks
            && s.len() >= 2 * blocks
    );
    let at = |i: usize| x.as_ptr().add(16 * i);
    for first in (0..blocks).step_by(block / 32) {
        let last = (first + block / 32).min(blocks);
        let mut amax = _mm512_setzero_ps();
        for i in 2 * first..2 * last {
            amax = _mm512_max_ps(amax, _mm512_abs_ps(_mm512_loadu_ps(at(i))));
        }
        let di = _mm512_reduce_max_ps(amax) / 127.0;
        let id = if di > 0.0 { 1.0 / di } else { 0.0 };
        for i in first..last {
            d[i] = di;
            for h in 0..2 {
                // Round to nearest even (the default mode), as `quantize_row` does; |v·id| ≤ 127.
                let v = _mm512_loadu_ps(at(2 * i + h));
                let n = _mm512_cvtps_epi32(_mm512_mul_ps(v, _mm512_set1_ps(id)));
                _mm_storeu_si128(
                    q.as_mut_ptr().add(32 * i + 16 * h).cast(),
                    _mm512_cvtsepi32_epi8(n),
                );
                s[2 * i + h] = di * _mm512_reduce_add_epi32(n) as f32;
            }
        }
    }
    let used = x.len();
    q[used..].fill(0);
    d[used / 32..].fill(0.0);
    s[used / 16..].fill(0.0);
}
