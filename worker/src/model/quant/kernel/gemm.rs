//! The AVX-512 VNNI GEMM kernel over a [`Panel`]: up to 32 weight rows (two vectors of 16)
//! times up to four activation rows per call, for prefill and batches of five rows or more.
//!
//! Per four columns it loads one vector per 16 weight rows and broadcasts four bytes of each
//! activation row, so eight `vpdpbusd` need six loads and no shuffle. Integer sums run over one
//! scale span (32 weights, 16 for Q6_K); only then are they converted and scaled, a vector of
//! 16 rows at a time. The K formats' activations share one scale per 256 values, so their
//! spans add up unscaled by it and take it once per 256: a span costs a conversion and two
//! multiply-adds instead of a conversion, a product and two multiply-adds. Q6_K from repacked
//! rows takes its integer sub-block scales and offsets in integers instead ([`pass_int`]).

use std::arch::x86_64::*;

use super::{PanelBlock, SUPER};
use crate::model::quant::act::{Activations, Rows};
use crate::model::quant::format::Format;
use crate::model::quant::panel::{Panel, LANES};

/// See [`super::Isa::gemm`].
// SAFETY: callers hold AVX-512 F/BW/VNNI and have checked the shapes (see `Isa::gemm`).
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn gemm(
    panel: &Panel,
    format: Format,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut PanelBlock,
) {
    macro_rules! by_cols {
        ($g:literal, $s:literal, $k:literal) => {
            match n {
                1 => pass::<$g, 1, $s, $k>(panel, acts, c0, out),
                2 => pass::<$g, 2, $s, $k>(panel, acts, c0, out),
                3 => pass::<$g, 3, $s, $k>(panel, acts, c0, out),
                _ => pass::<$g, 4, $s, $k>(panel, acts, c0, out),
            }
        };
    }
    if panel.int_scales {
        assert_eq!(format, Format::Q6K, "integer scales are Q6_K's");
        return match (panel.groups, n) {
            (1, 1) => pass_int::<1, 1>(panel, acts, c0, out),
            (1, 2) => pass_int::<1, 2>(panel, acts, c0, out),
            (1, 3) => pass_int::<1, 3>(panel, acts, c0, out),
            (1, _) => pass_int::<1, 4>(panel, acts, c0, out),
            (_, 1) => pass_int::<2, 1>(panel, acts, c0, out),
            (_, 2) => pass_int::<2, 2>(panel, acts, c0, out),
            (_, 3) => pass_int::<2, 3>(panel, acts, c0, out),
            _ => pass_int::<2, 4>(panel, acts, c0, out),
        };
    }
    // The K formats' activations are quantized per 256 values (`Format::block_values`).
    let k = format.block_values() == SUPER;
    match (panel.groups, format.scale_span(), k) {
        (1, 16, _) => by_cols!(1, 16, true),
        (1, _, true) => by_cols!(1, 32, true),
        (1, _, false) => by_cols!(1, 32, false),
        (_, 16, _) => by_cols!(2, 16, true),
        (_, _, true) => by_cols!(2, 32, true),
        _ => by_cols!(2, 32, false),
    }
}

// SAFETY: reached only from `gemm`. Each group holds `padded / 4` vectors and `padded / 16`
// scale and offset vectors, each activation row `padded` bytes, `padded / 32` scales and
// `padded / S` sums, and `padded` is a multiple of 64 (so of `S`): every load is in bounds.
// With `K`, one activation scale covers every 256 values (a whole number of spans).
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<const G: usize, const N: usize, const S: usize, const K: bool>(
    panel: &Panel,
    acts: &Activations,
    c0: usize,
    out: &mut PanelBlock,
) {
    let padded = panel.padded;
    let spans = padded / S;
    let wq: [*const u32; G] = std::array::from_fn(|g| panel.group_q(g).as_ptr());
    let wa: [*const f32; G] = std::array::from_fn(|g| panel.group_a(g).as_ptr());
    let wb: [*const f32; G] = std::array::from_fn(|g| panel.group_b(g).as_ptr());
    let Rows {
        q: xq,
        d: xd,
        s: xs,
    } = acts.rows_at::<N>(c0, S);
    let mut facc = [[_mm512_setzero_ps(); N]; G];
    // With `K`: the sums of the current 256 values, not yet times the activation scale.
    let mut fsup = [[_mm512_setzero_ps(); N]; G];
    for span in 0..spans {
        let iacc = span_sums::<G, N, S, false>(wq, xq, span);
        // Scales and offsets are stored per 16 weights; over a span of 32 both halves agree.
        let h = span * (S / 16);
        let a: [__m512; G] = std::array::from_fn(|g| _mm512_loadu_ps(wa[g].add(LANES * h)));
        let b: [__m512; G] = std::array::from_fn(|g| _mm512_loadu_ps(wb[g].add(LANES * h)));
        for c in 0..N {
            // The sums `s` already hold the activation scale.
            let s = _mm512_set1_ps(*xs[c].add(span));
            if K {
                for g in 0..G {
                    let v = _mm512_cvtepi32_ps(iacc[g][c]);
                    fsup[g][c] = _mm512_fmadd_ps(v, a[g], fsup[g][c]);
                    facc[g][c] = _mm512_fmadd_ps(b[g], s, facc[g][c]);
                }
            } else {
                let d = _mm512_set1_ps(*xd[c].add(span * S / 32));
                for g in 0..G {
                    let v = _mm512_cvtepi32_ps(iacc[g][c]);
                    facc[g][c] = _mm512_fmadd_ps(v, _mm512_mul_ps(a[g], d), facc[g][c]);
                    facc[g][c] = _mm512_fmadd_ps(b[g], s, facc[g][c]);
                }
            }
        }
        if K && ((span + 1) % (SUPER / S) == 0 || span + 1 == spans) {
            for c in 0..N {
                let d = _mm512_set1_ps(*xd[c].add(span * S / 32));
                for g in 0..G {
                    facc[g][c] = _mm512_fmadd_ps(fsup[g][c], d, facc[g][c]);
                    fsup[g][c] = _mm512_setzero_ps();
                }
            }
        }
    }
    for c in 0..N {
        for g in 0..G {
            _mm512_storeu_ps(out[c][LANES * g..].as_mut_ptr(), facc[g][c]);
        }
    }
}

/// The integer sums over scale span `span` (`S` weights), `[panel vector][activation row]`:
/// unsigned weights times signed activations, or with `U` the other way round.
// SAFETY: callers keep `span` inside the panel's and the activation rows' values.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn span_sums<const G: usize, const N: usize, const S: usize, const U: bool>(
    wq: [*const u32; G],
    xq: [*const i8; N],
    span: usize,
) -> [[__m512i; N]; G] {
    let mut iacc = [[_mm512_setzero_si512(); N]; G];
    for step in 0..S / 4 {
        let k = span * (S / 4) + step;
        let w: [__m512i; G] = std::array::from_fn(|g| _mm512_loadu_si512(wq[g].add(16 * k).cast()));
        for c in 0..N {
            let x = _mm512_set1_epi32(xq[c].add(4 * k).cast::<i32>().read_unaligned());
            for g in 0..G {
                iacc[g][c] = if U {
                    _mm512_dpbusd_epi32(iacc[g][c], x, w[g])
                } else {
                    _mm512_dpbusd_epi32(iacc[g][c], w[g], x)
                };
            }
        }
    }
    iacc
}

/// Q6_K from repacked rows, in integers as decode adds it (`super::packed::gemv`): per
/// super-block `Σ sc·Σq·x` with the sub-blocks' integer scales `sc` and `q` centred, then
/// converted and scaled once, so a prompt's row equals the same row decoded, bit for bit.
/// The weights are the signed operand and the activations, offset by 128 (`Activations::
/// to_unsigned`), the unsigned one; what the 128 adds, `128·Σ sc·Σq` per super-block, is
/// the panel's correction (`Panel::group_corr`), the sum's starting value. So a span of 16
/// weights costs a product and an add beside its `vpdpbusd`, on the pipes these need (Zen 4,
/// one core, 4096 × 4096 by 128 rows: a float offset per span 233–238 GOp/s, an integer
/// one, a subtraction more, 263–287). Integer sums wrap modulo 2³² alike in every order,
/// and the true one, at most 16 spans of 16 · 32 · 128 times |sc| ≤ 128 (1.3·10⁸), fits.
// SAFETY: reached only from `gemm` with a panel whose integer scales were filled
// (`Panel::reset_ints`: `padded`, a multiple of 256, and `padded / 16` scale vectors and
// `padded / 256` super-block vectors per group) and unsigned activations (checked by
// `Isa::gemm`): every load is in bounds.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass_int<const G: usize, const N: usize>(
    panel: &Panel,
    acts: &Activations,
    c0: usize,
    out: &mut PanelBlock,
) {
    let wq: [*const u32; G] = std::array::from_fn(|g| panel.group_q(g).as_ptr());
    let wi: [*const u32; G] = std::array::from_fn(|g| panel.group_ints(g).as_ptr());
    let wd: [*const f32; G] = std::array::from_fn(|g| panel.group_supers(g).as_ptr());
    let wc: [*const i32; G] = std::array::from_fn(|g| panel.group_corr(g).as_ptr());
    let Rows { q: xq, d: xd, .. } = acts.rows_at::<N>(c0, 16);
    let mut facc = [[_mm512_setzero_ps(); N]; G];
    for sb in 0..panel.padded / SUPER {
        let corr: [__m512i; G] =
            std::array::from_fn(|g| _mm512_loadu_si512(wc[g].add(LANES * sb).cast()));
        let mut isup = [corr; N];
        for j in 0..SUPER / 16 {
            let span = sb * (SUPER / 16) + j;
            let iacc = span_sums::<G, N, 16, true>(wq, xq, span);
            let sc: [__m512i; G] =
                std::array::from_fn(|g| _mm512_loadu_si512(wi[g].add(LANES * span).cast()));
            for (c, isup) in isup.iter_mut().enumerate() {
                for g in 0..G {
                    let t = _mm512_mullo_epi32(iacc[g][c], sc[g]);
                    isup[g] = _mm512_add_epi32(isup[g], t);
                }
            }
        }
        for c in 0..N {
            let d = _mm512_set1_ps(*xd[c].add(sb * SUPER / 32));
            for g in 0..G {
                let scale = _mm512_mul_ps(_mm512_loadu_ps(wd[g].add(LANES * sb)), d);
                facc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isup[c][g]), scale, facc[g][c]);
            }
        }
    }
    for c in 0..N {
        for g in 0..G {
            _mm512_storeu_ps(out[c][LANES * g..].as_mut_ptr(), facc[g][c]);
        }
    }
}
