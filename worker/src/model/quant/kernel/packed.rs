//! AVX-512 VNNI kernels over repacked weights ([`crate::model::quant::packed`]): the product
//! for a few activation rows (decode), and the panel fill for the GEMM.
//!
//! Each 32 weights of 16 rows unpack to eight vectors, each holding four weights of every row,
//! so per activation row eight `vpdpbusd` with broadcast activation bytes give 16 rows' integer
//! sums, and one scale vector and one offset vector per scale span finish them. No horizontal
//! sums, no per-row scales.

use std::arch::x86_64::*;

use super::unpack::{Unpack, K4, Q40, Q41, Q6, Q80, WORDS};
use super::{Groups, SUPER};
use crate::model::quant::act::{Activations, Rows};
use crate::model::quant::format::Format;
use crate::model::quant::packed::group_block;
use crate::model::quant::panel::{GroupMut, Panel, LANES, PANEL_ROWS};

/// The 16 rows of `src` (one group) times activation rows `c0..c0 + n` (up to eight) into
/// `out[c][at..at + 16]`. One group at a time: two read side by side ran 20–25% slower (two
/// streams for the prefetchers instead of one). Eight rows a call rather than four: a block's
/// words are unpacked once for twice the rows, and a batch of eight sequences reads the
/// weights once (2 threads, 8 sequences, Zen 4: a 7B-shaped Q6_K 162–167 → 175–177 tok/s,
/// Q4_K_M 206–216 → 208–233, the 1.1B Q5_K_M 162–167 → 180–182).
///
/// Each row's sums are added in the order the prompt's GEMM adds them, so that a row
/// multiplied here (decode) equals the same row multiplied with a prompt, bit for bit, and a
/// prefix cache's keys serve what a fresh prefill would: per scale span for the formats with
/// one activation scale per 32 values; per super-block for the K formats, as `super::gemm`
/// (sub-blocks in floats, then the activation scale), or with `int` (Q6_K) in integers, the
/// same exact super-block sums as `super::gemm`'s integer pass and `super::amx` (here from
/// [`Activations::int_sums`], there from the panel's correction or the tiles).
// SAFETY: callers hold AVX-512 F/BW/VNNI, `src` is one whole repacked group of `format`,
// activation rows `c0..c0 + n` hold at least every value of its rows (and, with `int`, their
// integer sums), and `at + 16 ≤ 32`.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn gemv(
    format: Format,
    src: Groups,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
    int: bool,
) {
    macro_rules! by_cols {
        ($u:ty, $int:literal) => {
            match n {
                1 => pass::<$u, 1, $int>(src, acts, c0, out, at),
                2 => pass::<$u, 2, $int>(src, acts, c0, out, at),
                3 => pass::<$u, 3, $int>(src, acts, c0, out, at),
                4 => pass::<$u, 4, $int>(src, acts, c0, out, at),
                5 => pass::<$u, 5, $int>(src, acts, c0, out, at),
                6 => pass::<$u, 6, $int>(src, acts, c0, out, at),
                7 => pass::<$u, 7, $int>(src, acts, c0, out, at),
                _ => pass::<$u, 8, $int>(src, acts, c0, out, at),
            }
        };
    }
    if int {
        assert_eq!(format, Format::Q6K);
        return by_cols!(Q6, true);
    }
    by_format!(format, U => by_cols!(U, false))
}

// SAFETY: reached only from `gemv`; with `INT`, `U` is `Q6` and the rows' integer sums exist.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn pass<U: Unpack, const N: usize, const INT: bool>(
    src: Groups,
    acts: &Activations,
    c0: usize,
    out: &mut [[f32; PANEL_ROWS]],
    at: usize,
) {
    let (block, units) = (group_block(U::FORMAT), U::FORMAT.block_values() / 32);
    // One activation scale per block of 256 (the K formats): sums wait for it (see `gemv`).
    let k_format = U::FORMAT.block_values() == SUPER;
    let Rows {
        q: xq,
        d: xd,
        s: xs,
    } = acts.rows_at::<N>(c0, U::SPAN);
    let xi: [*const i32; N] = std::array::from_fn(|c| {
        if INT {
            acts.row_int_sums(c0 + c).as_ptr()
        } else {
            std::ptr::null()
        }
    });
    let per_span = WORDS * U::SPAN / 32;
    let mut facc = [_mm512_setzero_ps(); N];
    for k in 0..src.blocks {
        let blk = src.at.add(k * block);
        let sc = U::scales(blk);
        let mut fsup = [_mm512_setzero_ps(); N];
        let mut isup = [_mm512_setzero_si512(); N];
        for u in 0..units {
            let unit = k * units + u;
            prefetch_next(blk, block, u, units);
            let w = U::words(blk, u);
            for h in 0..32 / U::SPAN {
                let span = unit * 32 / U::SPAN + h;
                let j = u * 32 / U::SPAN + h;
                let (a, b) = U::ab(blk, &sc, j);
                let isc = U::int_scale(blk, j);
                for c in 0..N {
                    let x = xq[c].add(32 * unit + 4 * per_span * h);
                    let word =
                        |p: usize| _mm512_set1_epi32(x.add(4 * p).cast::<i32>().read_unaligned());
                    // Two chains, so consecutive `vpdpbusd` do not wait on each other; but
                    // Q6_K's spans of 16 weights (four `vpdpbusd`) over four rows or more
                    // take one chain a row and save the add, its rows' chains being enough
                    // (one Zen 4 core, 4096 × 4096 and 11008 × 4096 by 8, 16, 22 rows: 2–13%
                    // faster in eleven pairs of twelve, 4% slower in one; spans of 32 went
                    // 3–5% slower so). Integer sums: the same bits.
                    let sums = if N >= 4 && per_span <= 4 {
                        (0..per_span).fold(_mm512_setzero_si512(), |s, p| {
                            _mm512_dpbusd_epi32(s, w[per_span * h + p], word(p))
                        })
                    } else {
                        let (mut s0, mut s1) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                        for p in (0..per_span).step_by(2) {
                            s0 = _mm512_dpbusd_epi32(s0, w[per_span * h + p], word(p));
                            s1 = _mm512_dpbusd_epi32(s1, w[per_span * h + p + 1], word(p + 1));
                        }
                        _mm512_add_epi32(s0, s1)
                    };
                    if INT {
                        // `sc·(Σu·x − o·Σx)`: the offset in integers too.
                        let off = _mm512_set1_epi32(*xi[c].add(span));
                        let t = _mm512_mullo_epi32(_mm512_sub_epi32(sums, off), isc);
                        isup[c] = _mm512_add_epi32(isup[c], t);
                        continue;
                    }
                    let sums = _mm512_cvtepi32_ps(sums);
                    let s = _mm512_set1_ps(*xs[c].add(span));
                    if k_format {
                        fsup[c] = _mm512_fmadd_ps(sums, a, fsup[c]);
                    } else {
                        let scale = _mm512_mul_ps(a, _mm512_set1_ps(*xd[c].add(unit)));
                        facc[c] = _mm512_fmadd_ps(sums, scale, facc[c]);
                    }
                    facc[c] = _mm512_fmadd_ps(b, s, facc[c]);
                }
            }
        }
        for c in 0..N {
            let d = _mm512_set1_ps(*xd[c].add(k * units));
            if INT {
                let scale = _mm512_mul_ps(U::int_d(blk), d);
                facc[c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(isup[c]), scale, facc[c]);
            } else if k_format {
                facc[c] = _mm512_fmadd_ps(fsup[c], d, facc[c]);
            }
        }
    }
    for (c, v) in facc.iter().enumerate() {
        _mm512_storeu_ps(out[c][at..at + LANES].as_mut_ptr(), *v);
    }
}

/// Bytes ahead of a block that [`prefetch_next`] asks for, in whole blocks.
const PREFETCH_AHEAD: usize = 8192;

/// Fewest whole blocks ahead. A block's lines are asked for a share per unit, its last ones
/// only while the block before it is read, so two blocks ahead (8 KiB of Q6_K's 3360-byte
/// blocks) left those lines one block's time to arrive: with weights in huge pages (see
/// `crate::model::alloc::advise_huge_pages`) an 11008 × 4096 Q6_K matrix times one row ran at
/// 44–55 GOp/s on one Zen 4 core, and at 62–66 four blocks ahead (Q5_K 66–70 → 70–82, Q4_K
/// 89–94 → 94–101; docs/BENCHMARKS.md, "Weights in huge pages").
const BLOCKS_AHEAD: usize = 4;

/// Asks for a block at least 8 KiB and four blocks ahead into L2, a share of its cache lines
/// per unit `u`. Without it the hardware prefetchers fall behind on a repacked block's several
/// streams (scales, low and high bits): decode of a 1.1B Q6_K ran at half the speed (13–14
/// against 25–26 tok/s, AMD EPYC Zen 4, 2 threads). Into L2 rather than L1, and twice as far
/// as the 4 KiB that suited L1: a 65536 × 4096 Q6_K matrix times one row went from 25–31 to
/// 34–60 GOp/s on one Zen 4 core (L1 holds 32 KiB, and prefetches there wait on its few miss
/// buffers), and the 7B-shaped Q6_K file decoded at 31–38 tok/s instead of 24–29.
#[inline(always)]
pub(super) fn prefetch_next(blk: *const u8, block: usize, u: usize, units: usize) {
    let lines = block.div_ceil(64);
    let per = lines.div_ceil(units);
    let next = blk.wrapping_add(block * (PREFETCH_AHEAD / block).max(BLOCKS_AHEAD));
    for line in u * per..((u + 1) * per).min(lines) {
        // Past the matrix's last block too: a prefetch never faults.
        super::prefetch_l2(next.wrapping_add(64 * line));
    }
}

/// Unpacks the groups of `src` into `panel` for the GEMM, padding to `padded` weights; with
/// `int`, weights centred (`q − OFFSET`, signed bytes), integer scales instead of float
/// scales and offsets, and each super-block's correction for activations offset by 128
/// (Q6_K, `Isa::int_offsets`; see `super::gemm`'s integer pass).
// SAFETY: callers hold AVX-512 F/BW/VNNI, `src` covers whole repacked groups (1 or 2) of
// `format`, and `padded`, a multiple of 64, is at least the rows' weights.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx2,fma")]
pub unsafe fn fill_panel(format: Format, src: Groups, panel: &mut Panel, padded: usize, int: bool) {
    by_format!(format, U => fill::<U>(src, panel, padded, int))
}

// SAFETY: reached only from `fill_panel`; `Panel::reset` sizes every group for `padded`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn fill<U: Unpack>(src: Groups, panel: &mut Panel, padded: usize, int: bool) {
    let (block, units) = (group_block(U::FORMAT), U::FORMAT.block_values() / 32);
    // Integer scales (`Isa::int_offsets`): the GEMM adds offsets in integers, as decode does.
    assert!(
        !int || U::OFFSET != 0,
        "{:?} has no integer scales",
        U::FORMAT
    );
    panel.reset(src.groups, padded);
    if int {
        panel.reset_ints();
    }
    for g in 0..src.groups {
        let GroupMut {
            q,
            a,
            b,
            ints,
            supers,
            corr,
        } = panel.group_mut(g);
        let (centre, ones) = (_mm512_set1_epi8(U::OFFSET as i8), _mm512_set1_epi8(1));
        for k in 0..src.blocks {
            let blk = src.at.add(g * src.group_bytes + k * block);
            let sc = U::scales(blk);
            if int {
                _mm512_storeu_ps(supers.as_mut_ptr().add(LANES * k), U::int_d(blk));
            }
            // With `int`: `Σ sc·Σq` over the super-block, per row, `q` centred.
            let mut sum = _mm512_setzero_si512();
            for u in 0..units {
                let at = k * units + u;
                let mut words = U::words(blk, u);
                if int {
                    words = words.map(|w| _mm512_sub_epi8(w, centre));
                }
                for (p, w) in words.iter().enumerate() {
                    _mm512_storeu_si512(q.as_mut_ptr().add(LANES * (WORDS * at + p)).cast(), *w);
                }
                // Scales and offsets are kept per 16 weights, in integers or in floats.
                for h in 0..2 {
                    let j = (2 * u + h) * 16 / U::SPAN;
                    let to = LANES * (2 * at + h);
                    if int {
                        let v = U::int_scale(blk, j);
                        _mm512_storeu_si512(ints.as_mut_ptr().add(to).cast(), v);
                        // The span's 16 weights are words 4h..4h + 4, four per lane each.
                        let span = words[4 * h..4 * h + 4]
                            .iter()
                            .fold(_mm512_setzero_si512(), |s, &w| {
                                _mm512_dpbusd_epi32(s, ones, w)
                            });
                        sum = _mm512_add_epi32(sum, _mm512_mullo_epi32(span, v));
                    } else {
                        let (av, bv) = U::ab(blk, &sc, j);
                        _mm512_storeu_ps(a.as_mut_ptr().add(to), av);
                        _mm512_storeu_ps(b.as_mut_ptr().add(to), bv);
                    }
                }
            }
            if int {
                let c = _mm512_mullo_epi32(sum, _mm512_set1_epi32(-128));
                _mm512_storeu_si512(corr.as_mut_ptr().add(LANES * k).cast(), c);
            }
        }
        let units = src.blocks * units;
        q[LANES * WORDS * units..].fill(0);
        if int {
            ints[LANES * 2 * units..].fill(0);
            supers[LANES * src.blocks..].fill(0.0);
            corr[LANES * src.blocks..].fill(0);
        } else {
            a[LANES * 2 * units..].fill(0.0);
            b[LANES * 2 * units..].fill(0.0);
        }
    }
}
