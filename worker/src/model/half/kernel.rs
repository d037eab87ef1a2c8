//! The 16-bit float kernels: a scalar one everywhere, and AVX2 + FMA + F16C on x86-64 where
//! the CPU has them (chosen at run time, as the int8 kernels are). 256-bit vectors suffice on
//! AVX-512 machines too: decode is bound by memory, prefill by the GEMM.

use super::Half;
use crate::model::quant::Isa;

/// Whether `isa` runs the vector kernels on this CPU.
pub fn has_simd(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa.has_avx2() && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// Value `i` of little-endian 16-bit `bytes`, as f32.
fn at(kind: Half, bytes: &[u8], i: usize) -> f32 {
    kind.to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
}

/// The little-endian 16-bit values `src` as f32 into `dst` (half as many values as bytes).
pub fn convert(simd: bool, kind: Half, src: &[u8], dst: &mut [f32]) {
    assert_eq!(src.len(), 2 * dst.len());
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: `simd` comes from `has_simd`, which checked AVX2, FMA and F16C.
        #[allow(unsafe_code)]
        unsafe {
            match kind {
                Half::F16 => avx2::convert::<false>(src, dst),
                Half::Bf16 => avx2::convert::<true>(src, dst),
            }
        }
        return;
    }
    let _ = simd;
    for (i, d) in dst.iter_mut().enumerate() {
        *d = at(kind, src, i);
    }
}

/// `out[r·m + i] = w[r] · x[i]` for every weight row `r` of `w` (`cols` little-endian 16-bit
/// values each) and activation row `i < m` of `x`.
pub fn dot(simd: bool, kind: Half, w: &[u8], cols: usize, x: &[f32], m: usize, out: &mut [f32]) {
    let n = w.len() / (2 * cols);
    assert!(w.len() == 2 * n * cols && x.len() == m * cols && out.len() == n * m);
    #[cfg(target_arch = "x86_64")]
    if simd {
        // SAFETY: as in `convert`; the shapes were checked above.
        #[allow(unsafe_code)]
        unsafe {
            match kind {
                Half::F16 => avx2::dot::<false>(w, cols, x, m, out),
                Half::Bf16 => avx2::dot::<true>(w, cols, x, m, out),
            }
        }
        return;
    }
    let _ = simd;
    for (row, out) in w.chunks_exact(2 * cols).zip(out.chunks_exact_mut(m)) {
        for (o, x) in out.iter_mut().zip(x.chunks_exact(cols)) {
            *o = x
                .iter()
                .enumerate()
                .map(|(k, &x)| at(kind, row, k) * x)
                .sum();
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    use std::arch::x86_64::*;

    /// Eight values at `p` (16 little-endian bytes) as f32: F16 through F16C, BF16 by a
    /// shift into the top half.
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
        let n = w.len() / (2 * cols);
        for r0 in (0..n).step_by(4) {
            let nr = (n - r0).min(4);
            // Past the last row the kernel re-reads it; those sums are dropped.
            let rows: [&[u8]; 4] = std::array::from_fn(|r| {
                let r = r0 + r.min(nr - 1);
                &w[2 * r * cols..2 * (r + 1) * cols]
            });
            let mut i = 0;
            while i < m {
                let take = (m - i).min(2);
                let xs = &x[i * cols..(i + take) * cols];
                let sums: [[f32; 2]; 4] = if take == 2 {
                    rows4::<BF, 2>(rows, xs, cols)
                } else {
                    let one = rows4::<BF, 1>(rows, xs, cols);
                    std::array::from_fn(|r| [one[r][0], 0.0])
                };
                for (r, s) in sums.iter().enumerate().take(nr) {
                    out[(r0 + r) * m + i..][..take].copy_from_slice(&s[..take]);
                }
                i += take;
            }
        }
    }

    /// Four weight rows times `NC` activation rows (`xs`, `NC · cols` values): 4 · NC
    /// accumulators, each weight vector converted once and used `NC` times.
    #[inline(always)]
    unsafe fn rows4<const BF: bool, const NC: usize>(
        rows: [&[u8]; 4],
        xs: &[f32],
        cols: usize,
    ) -> [[f32; NC]; 4] {
        let mut acc = [[_mm256_setzero_ps(); NC]; 4];
        let full = cols / 8 * 8;
        for k in (0..full).step_by(8) {
            let xv: [__m256; NC] =
                std::array::from_fn(|c| _mm256_loadu_ps(xs.as_ptr().add(c * cols + k)));
            for (acc, row) in acc.iter_mut().zip(&rows) {
                let wv = load8::<BF>(row.as_ptr().add(2 * k));
                for (a, &xv) in acc.iter_mut().zip(&xv) {
                    *a = _mm256_fmadd_ps(wv, xv, *a);
                }
            }
        }
        std::array::from_fn(|r| {
            std::array::from_fn(|c| {
                let tail: f32 = (full..cols)
                    .map(|k| scalar::<BF>(rows[r], k) * xs[c * cols + k])
                    .sum();
                hsum(acc[r][c]) + tail
            })
        })
    }
}
