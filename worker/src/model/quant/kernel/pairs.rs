//! A filled panel's weights in the layout AMX reads its second operand in, for the `amx`
//! level's quantized prefill ([`crate::model::amx::gemm_rows`]).

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::model::quant::panel::{Panel, LANES};

/// 16-bit values per tile: 16 rows of 16 pairs.
const TILE: usize = 512;

/// Values per tile step along a row.
const STEP: usize = 32;

/// The panel's values `a·q + b` rounded to BF16 into `out`: per group of 16 weight rows (two
/// groups, the second zeros where the panel holds one), per 32 values, one tile whose row `r`
/// holds values `2r` and `2r + 1` of each of the 16 weight rows side by side.
// SAFETY: callers hold AVX-512 F/BW and BF16 (the `amx` level).
#[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
pub unsafe fn panel_pairs(panel: &Panel, out: &mut Vec<u16>) {
    let steps = panel.padded / STEP;
    out.resize(2 * steps * TILE, 0);
    // A two-vector conversion holds the first vector's lanes, then the second's: this puts
    // lane i of each side by side.
    let order: [i16; 32] = std::array::from_fn(|k| (k / 2 + 16 * (k % 2)) as i16);
    let order = _mm512_loadu_si512(order.as_ptr().cast());
    let byte = _mm512_set1_epi32(0xff);
    for g in 0..2 {
        let dst = &mut out[g * steps * TILE..(g + 1) * steps * TILE];
        if g >= panel.groups {
            dst.fill(0);
            continue;
        }
        let (q, a, b) = (panel.group_q(g), panel.group_a(g), panel.group_b(g));
        for c in 0..steps {
            // Word vector p holds values 4p to 4p + 3 of the step in each row's lane.
            for p in 0..STEP / 4 {
                let w = _mm512_loadu_si512(q[LANES * (8 * c + p)..][..LANES].as_ptr().cast());
                let half = 2 * c + p / 4;
                let av = _mm512_loadu_ps(a[LANES * half..][..LANES].as_ptr());
                let bv = _mm512_loadu_ps(b[LANES * half..][..LANES].as_ptr());
                let v: [__m512; 4] = std::array::from_fn(|j| {
                    let shift = _mm512_set1_epi32(8 * j as i32);
                    let q = _mm512_and_si512(_mm512_srlv_epi32(w, shift), byte);
                    _mm512_fmadd_ps(av, _mm512_cvtepi32_ps(q), bv)
                });
                for (r, (lo, hi)) in [(v[0], v[1]), (v[2], v[3])].into_iter().enumerate() {
                    let both: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
                    let pairs = _mm512_permutexvar_epi16(order, both);
                    let row = &mut dst[c * TILE + (2 * p + r) * STEP..][..STEP];
                    _mm512_storeu_si512(row.as_mut_ptr().cast(), pairs);
                }
            }
        }
    }
}
