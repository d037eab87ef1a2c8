//! The AVX2 GEMM kernel over a [`Panel`], for CPUs without AVX-512 VNNI: up to 32 weight rows
//! times up to four activation rows per call, for prefill and large batches.
//!
//! A panel vector of 16 rows is two AVX2 vectors; the kernel sweeps the activation rows over
//! one half (eight rows) at a time so that its 16-bit and 32-bit sums and its float results
//! for four activation rows fit the 16 registers. `maddubs` pair sums are added in 16 bits for
//! as many steps as the format's largest byte allows, then widened (see `super::packed_avx2`);
//! for the K formats the widening multiplies by the integer sub-block scale.

use std::arch::x86_64::*;

use super::mul_avx2::{adds_offset, step, widen, Avx2Mul, AvxVnni, Mul};
use super::unpack_avx2::{Unpack, K4, Q40, Q41, Q6, Q80};
use super::{PanelBlock, SUPER};
use crate::model::quant::act::{Activations, Rows};
use crate::model::quant::format::Format;
use crate::model::quant::panel::{Panel, LANES};

/// Rows per vector.
const HALF: usize = 8;

/// See [`super::Isa::gemm`]; `M` as in `super::packed_avx2::gemv`.
// SAFETY: callers hold AVX2 and FMA and have checked the shapes (see `Isa::gemm`).
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm<M: Avx2Mul>(
    panel: &Panel,
    format: Format,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut PanelBlock,
) {
    gemm_with::<M>(panel, format, acts, c0, n, out)
}

/// [`gemm`] with AVX-VNNI's `vpdpbusd`: the same integers, so the same bits, but for Q8_0,
/// whose offset it adds apart (see `super::mul_avx2::step`).
// SAFETY: as `gemm`, and callers hold AVX-VNNI.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,avxvnni")]
pub unsafe fn gemm_vnni(
    panel: &Panel,
    format: Format,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut PanelBlock,
) {
    gemm_with::<AvxVnni>(panel, format, acts, c0, n, out)
}

// SAFETY: reached only from the two above, each holding what `M` needs.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn gemm_with<M: Mul>(
    panel: &Panel,
    format: Format,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut PanelBlock,
) {
    // The panel holds the bytes the repacked kernel unpacks, so its unpacker's span and
    // 16-bit bounds hold here too.
    by_format!(format, U => {
        assert!(!U::INT_SCALES || (panel.int_scales && acts.padded.is_multiple_of(SUPER)));
        match n {
            1 => pass::<U, M, 1>(panel, acts, c0, out),
            2 => pass::<U, M, 2>(panel, acts, c0, out),
            3 => pass::<U, M, 3>(panel, acts, c0, out),
            _ => pass::<U, M, 4>(panel, acts, c0, out),
        }
    })
}

/// Every panel row times `N` activation rows. `maddubs` pair sums are added in 16 bits for
/// up to four steps, then widened by `madd`: times ones, and converted and scaled per span
/// (32 or 16 weights); or, for the K formats (`Unpack::INT_SCALES`), times the sub-block's
/// integer scale, so that a whole super-block adds up in 32-bit integers and is converted and
/// scaled once (the activations share one scale per 256 values, as llama.cpp's `Q8_K`). The
/// offsets take one multiply-add per span either way. The largest K sum: Q6_K's 32 pairs of
/// 16-bit sums of at most 32,004 times |scale| ≤ 128, 2.6·10⁸, inside 32 bits. Q4_K's
/// eight-step 16-bit sums left too few registers for four activation rows (prefill of a
/// 7B-shaped Q4_K_M 10% slower), hence four steps at most. With `vpdpbusd` (AVX-VNNI) a
/// span adds up in 32 bits at once and is times its integer scale, if any, once: the same
/// integers.
// SAFETY: reached only from `gemm_with`. Each group holds `padded / 4` vectors of 16 words and
// `padded / 16` scale and offset vectors (and, with integer scales, `padded / 16` scale and
// `padded / 256` super-block vectors), each activation row `padded` bytes, `padded / 32`
// scales and `padded / U::SPAN` sums, and `padded` is a multiple of 64 (of 256 with integer
// scales), so of the span: every load is in bounds.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<U: Unpack, M: Mul, const N: usize>(
    panel: &Panel,
    acts: &Activations,
    c0: usize,
    out: &mut PanelBlock,
) {
    let padded = panel.padded;
    let Rows {
        q: xq,
        d: xd,
        s: xs,
    } = acts.rows_at::<N>(c0, U::SPAN);
    // `vpdpbusd` adds in 32 bits: the whole span (one scale, stored per 16 weights).
    let chunk = if M::VNNI {
        U::SPAN / 4
    } else {
        U::PAIRS.min(4)
    };
    let per_super = SUPER / U::SPAN;
    for g in 0..panel.groups {
        for h in 0..2 {
            let wq = panel.group_q(g).as_ptr().add(HALF * h);
            let wa = panel.group_a(g).as_ptr().add(HALF * h);
            let wb = panel.group_b(g).as_ptr().add(HALF * h);
            let (wi, wd) = if U::INT_SCALES {
                let wi = panel.group_ints(g).as_ptr().add(HALF * h);
                (wi, panel.group_supers(g).as_ptr().add(HALF * h))
            } else {
                (std::ptr::null(), std::ptr::null())
            };
            let mut facc = [_mm256_setzero_ps(); N];
            let mut iacc = [_mm256_setzero_si256(); N];
            for span in 0..padded / U::SPAN {
                for p0 in (0..U::SPAN / 4).step_by(chunk) {
                    let mut s = [_mm256_setzero_si256(); N];
                    for t in p0..p0 + chunk {
                        let k = span * (U::SPAN / 4) + t;
                        let w = _mm256_loadu_si256(wq.add(LANES * k).cast());
                        for c in 0..N {
                            let x =
                                _mm256_set1_epi32(xq[c].add(4 * k).cast::<i32>().read_unaligned());
                            s[c] = step::<M>(U::SIGNED, s[c], w, x);
                        }
                    }
                    // Integer scales are stored per 16 weights, as the offsets.
                    let by = U::INT_SCALES.then(|| {
                        let at = LANES * ((span * U::SPAN + 4 * p0) / 16);
                        _mm256_loadu_si256(wi.add(at).cast())
                    });
                    for c in 0..N {
                        iacc[c] = _mm256_add_epi32(iacc[c], widen::<M>(s[c], by));
                    }
                }
                // Stored per 16 weights; over a span of 32 both halves agree.
                let at = LANES * span * (U::SPAN / 16);
                let b = _mm256_loadu_ps(wb.add(at));
                if !U::INT_SCALES {
                    let a = _mm256_loadu_ps(wa.add(at));
                    for c in 0..N {
                        let d = _mm256_set1_ps(*xd[c].add(span * U::SPAN / 32));
                        let v = _mm256_cvtepi32_ps(iacc[c]);
                        facc[c] = _mm256_fmadd_ps(v, _mm256_mul_ps(a, d), facc[c]);
                        iacc[c] = _mm256_setzero_si256();
                    }
                }
                // Under `maddubs` signed Q8_0 bytes already hold the offset.
                if adds_offset::<M>(U::SIGNED) {
                    for c in 0..N {
                        let s = _mm256_set1_ps(*xs[c].add(span));
                        facc[c] = _mm256_fmadd_ps(b, s, facc[c]);
                    }
                }
                if U::INT_SCALES && (span + 1) % per_super == 0 {
                    let sb = span / per_super;
                    let d = _mm256_loadu_ps(wd.add(LANES * sb));
                    for c in 0..N {
                        let a = _mm256_mul_ps(d, _mm256_set1_ps(*xd[c].add(sb * SUPER / 32)));
                        facc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[c]), a, facc[c]);
                        iacc[c] = _mm256_setzero_si256();
                    }
                }
            }
            for (c, v) in facc.iter().enumerate() {
                let at = LANES * g + HALF * h;
                _mm256_storeu_ps(out[c][at..at + HALF].as_mut_ptr(), *v);
            }
        }
    }
}
