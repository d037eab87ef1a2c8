//! Fills a [`TilePanel`] from repacked Q6_K rows for the AMX int8 kernel ([`super::amx`]).

use std::arch::x86_64::*;

use super::unpack::{halves, Unpack, Q6, WORDS};
use super::Groups;
use crate::model::quant::format::Format;
use crate::model::quant::packed::{field_at, group_block};
use crate::model::quant::panel::LANES;
use crate::model::quant::tile_panel::{TileGroup, TilePanel, SUPER};

/// 64 bytes whose byte `4·lane + i` is byte `lane` of `v`: a scale per row, beside each of
/// the row's four weights in a word.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn per_row(v: __m128i) -> __m512i {
    _mm512_mullo_epi32(_mm512_cvtepu8_epi32(v), _mm512_set1_epi32(0x0101_0101))
}

/// `p = s·(q − 32)` for the 64 bytes `q` (six bits) and `s` (signed) as `64·hi + lo`: the
/// `hi` bytes (signed) and the `lo` bytes (`0..64`).
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn split(q: __m512i, s: __m512i) -> (__m512i, __m512i) {
    let half = |v: __m512i, upper: bool| {
        if upper {
            _mm512_extracti64x4_epi64::<1>(v)
        } else {
            _mm512_castsi512_si256(v)
        }
    };
    let (mut hi, mut lo) = ([_mm256_setzero_si256(); 2], [_mm256_setzero_si256(); 2]);
    for k in 0..2 {
        let q = _mm512_sub_epi16(_mm512_cvtepu8_epi16(half(q, k == 1)), _mm512_set1_epi16(32));
        let p = _mm512_mullo_epi16(q, _mm512_cvtepi8_epi16(half(s, k == 1)));
        hi[k] = _mm512_cvtepi16_epi8(_mm512_srai_epi16::<6>(p));
        lo[k] = _mm512_cvtepi16_epi8(_mm512_and_si512(p, _mm512_set1_epi16(63)));
    }
    let join = |v: [__m256i; 2]| _mm512_inserti64x4::<1>(_mm512_castsi256_si512(v[0]), v[1]);
    (join(hi), join(lo))
}

/// Unpacks the groups of `src` (Q6_K, repacked) into `panel`.
// SAFETY: callers hold AVX-512 F/BW and `src` covers whole repacked Q6_K groups (1 or 2);
// `TilePanel::reset` sizes every group for `src.blocks` super-blocks.
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
pub unsafe fn fill(src: Groups, panel: &mut TilePanel) {
    let (block, units) = (group_block(Format::Q6K), SUPER / 32);
    panel.reset(src.groups, src.blocks * SUPER);
    for g in 0..src.groups {
        let (TileGroup { hi, lo }, d) = panel.group_mut(g);
        for k in 0..src.blocks {
            let blk = src.at.add(g * src.group_bytes + k * block);
            _mm512_storeu_ps(d.as_mut_ptr().add(LANES * k), halves(blk));
            for u in 0..units {
                let w = Q6::words(blk, u);
                // Words 0–3 are the unit's first 16 weights (scale 2u), 4–7 the next 16.
                for h in 0..2 {
                    let scales = blk.add(field_at(Format::Q6K, 1) + 16 * (2 * u + h));
                    let s = per_row(_mm_loadu_si128(scales.cast()));
                    for (p, w) in w.iter().enumerate().skip(4 * h).take(4) {
                        let (vh, vl) = split(*w, s);
                        let at = LANES * (WORDS * (k * units + u) + p);
                        _mm512_storeu_si512(hi.as_mut_ptr().add(at).cast(), vh);
                        _mm512_storeu_si512(lo.as_mut_ptr().add(at).cast(), vl);
                    }
                }
            }
        }
    }
}
