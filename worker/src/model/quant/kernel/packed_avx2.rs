//! AVX2 kernels over repacked weights ([`crate::model::quant::packed`]), for CPUs without
//! AVX-512 VNNI: the product for a few activation rows (decode), and the panel fill for the
//! GEMM ([`super::gemm_avx2`]).
//!
//! The layout is the AVX-512 one (`super::packed`): a 64-byte word holds four weights of 16
//! rows, so its two 32-byte halves are rows 0–7 and 8–15, each a vector here. Without
//! `vpdpbusd`, `maddubs` multiplies unsigned weight bytes with signed activation bytes into
//! pairs of 16-bit sums; those are added in 16 bits for as many words as cannot overflow
//! (`Unpack::PAIRS`, in `super::unpack_avx2`) and only then widened with `madd`. Q8_0's
//! bytes offset to unsigned would overflow a pair (255·127·2), so they stay signed and go
//! through the sign trick there; `vpdpbusd` adds in 32 bits and takes them offset.

use std::arch::x86_64::*;

use super::mul_avx2::{adds_offset, step, widen, Avx2Mul, AvxVnni, Mul};
use super::packed::prefetch_next;
use super::unpack_avx2::{Unpack, HALF, K4, Q40, Q41, Q6, Q80, WORDS};
use super::Groups;
use crate::model::quant::act::{Activations, Rows};
use crate::model::quant::format::Format;
use crate::model::quant::packed::group_block;
use crate::model::quant::panel::{GroupMut, Panel, LANES, PANEL_ROWS};

/// The 32-bit sums of eight rows over `w.len()` words and the activation bytes at `x` (four
/// per word), each times its integer scale `by` if it has one (see [`widen`]); with
/// `maddubs`, `pairs` words are added in 16 bits before each widening (constants once
/// inlined).
// SAFETY: `x` holds four bytes per word of `w`; AVX2 present (and AVX-VNNI for `AvxVnni`).
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn sums<M: Mul>(
    signed: bool,
    pairs: usize,
    w: &[__m256i],
    x: *const i8,
    by: Option<__m256i>,
) -> __m256i {
    let word = |p: usize| _mm256_set1_epi32(x.add(4 * p).cast::<i32>().read_unaligned());
    // `vpdpbusd` adds in 32 bits: one chunk.
    let pairs = if M::VNNI { w.len() } else { pairs };
    let mut acc = _mm256_setzero_si256();
    for (i, chunk) in w.chunks_exact(pairs).enumerate() {
        let mut s = _mm256_setzero_si256();
        for (j, &wp) in chunk.iter().enumerate() {
            s = step::<M>(signed, s, wp, word(i * pairs + j));
        }
        acc = _mm256_add_epi32(acc, widen::<M>(s, by));
    }
    acc
}

/// The 16 rows of `src` (one group) times activation rows `c0..c0 + n` into
/// `out[c][at..at + 16]`, each row's sums added in the order of the prompt's GEMM
/// (`super::gemm_avx2`), so that a row gives the same bits either way: the K formats' spans
/// times their integer scales in integers, converted and scaled once per super-block. `M` is
/// `Maddubs` (the `avx2` level) or, in unit tests, `Emulated` (see `super::mul_avx2`).
// SAFETY: callers hold AVX2, FMA and F16C, `src` is one whole repacked group of `format`,
// activation rows `c0..c0 + n` hold at least every value of its rows, and `at + 16 ≤ 32`.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn gemv<M: Avx2Mul>(
    format: Format,
    src: Groups,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
) {
    gemv_with::<M>(format, src, acts, c0, n, out, at)
}

/// [`gemv`] with AVX-VNNI's `vpdpbusd`: the same integers, so the same bits, but for Q8_0,
/// whose offset it adds apart (see `super::mul_avx2::step`).
// SAFETY: as `gemv`, and callers hold AVX-VNNI.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,f16c,avxvnni")]
pub unsafe fn gemv_vnni(
    format: Format,
    src: Groups,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
) {
    gemv_with::<AvxVnni>(format, src, acts, c0, n, out, at)
}

// SAFETY: reached only from the two above, each holding what `M` needs.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn gemv_with<M: Mul>(
    format: Format,
    src: Groups,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
) {
    by_format!(format, U => match n {
        1 => pass::<U, M, 1>(src, acts, c0, out, at),
        2 => pass::<U, M, 2>(src, acts, c0, out, at),
        3 => pass::<U, M, 3>(src, acts, c0, out, at),
        _ => pass::<U, M, 4>(src, acts, c0, out, at),
    })
}

// SAFETY: reached only from `gemv_with`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<U: Unpack, M: Mul, const N: usize>(
    src: Groups,
    acts: &Activations,
    c0: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
) {
    let (block, units) = (group_block(U::FORMAT), U::FORMAT.block_values() / 32);
    let Rows {
        q: xq,
        d: xd,
        s: xs,
    } = acts.rows_at::<N>(c0, U::SPAN);
    let per_span = WORDS * U::SPAN / 32;
    let mut facc = [[_mm256_setzero_ps(); N]; 2];
    for k in 0..src.blocks {
        let blk = src.at.add(k * block);
        // A half at a time: the second pass over the block finds it in L1.
        for (h, facc) in facc.iter_mut().enumerate() {
            let sc = U::scales(blk, h);
            let mut iacc = [_mm256_setzero_si256(); N];
            for u in 0..units {
                let unit = k * units + u;
                if h == 0 {
                    prefetch_next(blk, block, u, units);
                }
                let w = U::words(blk, u, h);
                for hs in 0..32 / U::SPAN {
                    let span = unit * 32 / U::SPAN + hs;
                    let j = u * 32 / U::SPAN + hs;
                    let (a, b) = U::ab(blk, &sc, j, h);
                    let w = &w[per_span * hs..per_span * (hs + 1)];
                    let by = U::INT_SCALES.then(|| U::int_scale(blk, &sc, j, h));
                    for c in 0..N {
                        let x = xq[c].add(32 * unit + 4 * per_span * hs);
                        let s = sums::<M>(U::SIGNED, U::PAIRS, w, x, by);
                        if U::INT_SCALES {
                            iacc[c] = _mm256_add_epi32(iacc[c], s);
                        } else {
                            let scale = _mm256_mul_ps(a, _mm256_set1_ps(*xd[c].add(unit)));
                            facc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s), scale, facc[c]);
                        }
                        if adds_offset::<M>(U::SIGNED) {
                            let t = _mm256_set1_ps(*xs[c].add(span));
                            facc[c] = _mm256_fmadd_ps(b, t, facc[c]);
                        }
                    }
                }
            }
            if U::INT_SCALES {
                let d = U::block_d(blk, h);
                for c in 0..N {
                    let a = _mm256_mul_ps(d, _mm256_set1_ps(*xd[c].add(k * units)));
                    facc[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[c]), a, facc[c]);
                }
            }
        }
    }
    for (h, facc) in facc.iter().enumerate() {
        for (c, v) in facc.iter().enumerate() {
            _mm256_storeu_ps(out[c][at + HALF * h..at + HALF * (h + 1)].as_mut_ptr(), *v);
        }
    }
}

/// Unpacks the groups of `src` into `panel` for the GEMM, padding to `padded` weights; the
/// panel holds the bytes as repacked: unsigned, but Q8_0's signed for the sign trick (the
/// AVX-512 panel offsets them by 128 for `vpdpbusd`).
// SAFETY: callers hold AVX2, FMA and F16C, `src` covers whole repacked groups (1 or 2) of
// `format`, and `padded`, a multiple of 64, is at least the rows' weights.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,f16c")]
pub unsafe fn fill_panel(format: Format, src: Groups, panel: &mut Panel, padded: usize) {
    by_format!(format, U => fill::<U>(src, panel, padded))
}

// SAFETY: reached only from `fill_panel`; `Panel::reset` sizes every group for `padded`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn fill<U: Unpack>(src: Groups, panel: &mut Panel, padded: usize) {
    let (block, units) = (group_block(U::FORMAT), U::FORMAT.block_values() / 32);
    panel.reset(src.groups, padded);
    if U::INT_SCALES {
        panel.reset_ints();
    }
    for g in 0..src.groups {
        let GroupMut {
            q,
            a,
            b,
            ints,
            supers,
            ..
        } = panel.group_mut(g);
        for k in 0..src.blocks {
            let blk = src.at.add(g * src.group_bytes + k * block);
            for h in 0..2 {
                let sc = U::scales(blk, h);
                if U::INT_SCALES {
                    let to = supers.as_mut_ptr().add(LANES * k + HALF * h);
                    _mm256_storeu_ps(to, U::block_d(blk, h));
                }
                for u in 0..units {
                    let at = k * units + u;
                    for (p, w) in U::words(blk, u, h).iter().enumerate() {
                        let to = LANES * (WORDS * at + p) + HALF * h;
                        _mm256_storeu_si256(q.as_mut_ptr().add(to).cast(), *w);
                    }
                    // Scales and offsets are kept per 16 weights.
                    for hh in 0..2 {
                        let j = (2 * u + hh) * 16 / U::SPAN;
                        let (av, bv) = U::ab(blk, &sc, j, h);
                        let to = LANES * (2 * at + hh) + HALF * h;
                        _mm256_storeu_ps(a.as_mut_ptr().add(to), av);
                        _mm256_storeu_ps(b.as_mut_ptr().add(to), bv);
                        if U::INT_SCALES {
                            let v = U::int_scale(blk, &sc, j, h);
                            _mm256_storeu_si256(ints.as_mut_ptr().add(to).cast(), v);
                        }
                    }
                }
            }
        }
        let units = src.blocks * units;
        q[LANES * WORDS * units..].fill(0);
        a[LANES * 2 * units..].fill(0.0);
        b[LANES * 2 * units..].fill(0.0);
        if U::INT_SCALES {
            ints[LANES * 2 * units..].fill(0);
            supers[LANES * src.blocks..].fill(0.0);
        }
    }
}
