//! The AVX2 GEMM kernel over a [`Panel`], for CPUs without AVX-512 VNNI: up to 32 weight rows
//! times up to four activation rows per call, for prefill and large batches.
//!
//! A panel vector of 16 rows is two AVX2 vectors; the kernel sweeps the activation rows over
//! one half (eight rows) at a time so that its 16-bit and 32-bit sums and its float results
//! for four activation rows fit the 16 registers. `maddubs` pair sums are added in 16 bits for
//! as many steps as the format's largest byte allows, then widened (see `super::packed_avx2`).

use std::arch::x86_64::*;

use super::packed_avx2::dot;
use super::PanelBlock;
use crate::model::quant::act::{Activations, Rows};
use crate::model::quant::format::Format;
use crate::model::quant::panel::{Panel, LANES};

/// Rows per vector.
const HALF: usize = 8;

/// See [`super::Isa::gemm`].
// SAFETY: callers hold AVX2 and FMA and have checked the shapes (see `Isa::gemm`).
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn gemm(
    panel: &Panel,
    format: Format,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut PanelBlock,
) {
    // (span, steps added in 16 bits, signed): the panel's bytes are at most 15 for Q4_0,
    // Q4_1 and Q4_K, 31 for Q5_K, 63 for Q6_K; Q8_0's go back to signed for the sign trick.
    macro_rules! by_cols {
        ($s:literal, $p:literal, $signed:literal) => {
            match n {
                1 => pass::<1, $s, $p, $signed>(panel, acts, c0, out),
                2 => pass::<2, $s, $p, $signed>(panel, acts, c0, out),
                3 => pass::<3, $s, $p, $signed>(panel, acts, c0, out),
                _ => pass::<4, $s, $p, $signed>(panel, acts, c0, out),
            }
        };
    }
    match format {
        Format::Q4_0 | Format::Q4_1 | Format::Q4K => by_cols!(32, 8, false),
        Format::Q5K => by_cols!(32, 4, false),
        Format::Q6K => by_cols!(16, 2, false),
        Format::Q8_0 => by_cols!(32, 1, true),
    }
}

// SAFETY: reached only from `gemm`. Each group holds `padded / 4` vectors of 16 words and
// `padded / 16` scale and offset vectors, each activation row `padded` bytes, `padded / 32`
// scales and `padded / S` sums, and `padded` is a multiple of 64 (so of `S`): every load is
// in bounds.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<const N: usize, const S: usize, const P: usize, const SIGNED: bool>(
    panel: &Panel,
    acts: &Activations,
    c0: usize,
    out: &mut PanelBlock,
) {
    let padded = panel.padded;
    let (ones, flip) = (_mm256_set1_epi16(1), _mm256_set1_epi8(i8::MIN));
    let Rows {
        q: xq,
        d: xd,
        s: xs,
    } = acts.rows_at::<N>(c0, S);
    for g in 0..panel.groups {
        for h in 0..2 {
            let wq = panel.group_q(g).as_ptr().add(HALF * h);
            let wa = panel.group_a(g).as_ptr().add(HALF * h);
            let wb = panel.group_b(g).as_ptr().add(HALF * h);
            let mut facc = [_mm256_setzero_ps(); N];
            for span in 0..padded / S {
                let mut iacc = [_mm256_setzero_si256(); N];
                for p0 in (0..S / 4).step_by(P) {
                    let mut s16 = [_mm256_setzero_si256(); N];
                    for step in p0..p0 + P {
                        let k = span * (S / 4) + step;
                        let w = _mm256_loadu_si256(wq.add(LANES * k).cast());
                        let w = if SIGNED { _mm256_xor_si256(w, flip) } else { w };
                        for c in 0..N {
                            let x =
                                _mm256_set1_epi32(xq[c].add(4 * k).cast::<i32>().read_unaligned());
                            s16[c] = _mm256_add_epi16(s16[c], dot(SIGNED, w, x));
                        }
                    }
                    for c in 0..N {
                        iacc[c] = _mm256_add_epi32(iacc[c], _mm256_madd_epi16(s16[c], ones));
                    }
                }
                // Scales and offsets are stored per 16 weights; over a span of 32 both halves agree.
                let at = LANES * span * (S / 16);
                let (a, b) = (_mm256_loadu_ps(wa.add(at)), _mm256_loadu_ps(wb.add(at)));
                for c in 0..N {
                    let d = _mm256_set1_ps(*xd[c].add(span * S / 32));
                    let v = _mm256_cvtepi32_ps(iacc[c]);
                    facc[c] = _mm256_fmadd_ps(v, _mm256_mul_ps(a, d), facc[c]);
                    // Signed Q8_0 bytes already hold the offset.
                    if !SIGNED {
                        let s = _mm256_set1_ps(*xs[c].add(span));
                        facc[c] = _mm256_fmadd_ps(b, s, facc[c]);
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
