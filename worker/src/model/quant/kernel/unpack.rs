//! How each format's repacked block ([`crate::model::quant::packed`]) becomes AVX-512
//! vectors: a 64-byte word (four weights of 16 rows) per vector, with the scales and offsets
//! of those rows. The AVX2 twins live in `super::unpack_avx2`.

use std::arch::x86_64::*;

use crate::model::quant::format::Format;
use crate::model::quant::packed::field_at;

/// Unpacked words per unit of 32 weights, four weights each.
pub(super) const WORDS: usize = 8;

/// How one format's repacked block becomes vectors of unsigned bytes `u` with `w = a·u + b`,
/// 32 weights (a unit) at a time.
// SAFETY: the methods read inside the repacked block they are given (`u` below the block's
// units, `j` below its scale spans) and are reached only from AVX-512 F/BW code.
#[allow(unsafe_code)]
pub(super) trait Unpack {
    const FORMAT: Format;
    /// Weights sharing a scale: 32, or 16.
    const SPAN: usize;
    /// What a block's scales decode to, once per block.
    type Scales: Copy;
    /// The eight words of unit `u` of the block at `blk`.
    unsafe fn words(blk: *const u8, u: usize) -> [__m512i; WORDS];
    /// Decodes the scales of the block at `blk`.
    unsafe fn scales(blk: *const u8) -> Self::Scales;
    /// Scales `a` and offsets `b` of the 16 rows for scale span `j`.
    unsafe fn ab(blk: *const u8, sc: &Self::Scales, j: usize) -> (__m512, __m512);
    /// The 16 rows' integer scales of span `j`, for formats whose weights are `d·sc·(u − o)`
    /// with `o` [`Unpack::OFFSET`] (Q6_K, as the AMX kernel multiplies it; zero elsewhere).
    #[inline(always)]
    unsafe fn int_scale(_blk: *const u8, _j: usize) -> __m512i {
        _mm512_setzero_si512()
    }
    /// The `o` of [`Unpack::int_scale`].
    const OFFSET: i32 = 0;
    /// The 16 rows' `d` of [`Unpack::int_scale`].
    #[inline(always)]
    unsafe fn int_d(_blk: *const u8) -> __m512 {
        _mm512_setzero_ps()
    }
}

// SAFETY (helpers): unaligned loads inside a repacked block, AVX-512 F/BW present.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn load(at: *const u8) -> __m512i {
    _mm512_loadu_si512(at.cast())
}

/// The 16 rows' f16 values at `at`, as floats.
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn halves(at: *const u8) -> __m512 {
    _mm512_cvtph_ps(_mm256_loadu_si256(at.cast()))
}

/// The 16 rows' unsigned bytes as floats.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn u8s(v: __m128i) -> __m512 {
    _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v))
}

/// Nibbles of the `W` words at `at`, low or high.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibbles<const W: usize>(at: *const u8, high: bool) -> [__m512i; W] {
    let mask = _mm512_set1_epi8(0x0F);
    std::array::from_fn(|p| {
        let v = load(at.add(64 * p));
        let v = if high { _mm512_srli_epi16(v, 4) } else { v };
        _mm512_and_si512(v, mask)
    })
}

/// The eight words of a block of 32 nibbles at `q`: low nibbles of word `p` are weights
/// `4p..4p + 4`, high ones `16 + 4p..`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibble_block(q: *const u8) -> [__m512i; WORDS] {
    let (lo, hi) = (nibbles::<4>(q, false), nibbles::<4>(q, true));
    std::array::from_fn(|p| if p < 4 { lo[p] } else { hi[p - 4] })
}

/// The 6-bit scales and minimums of 16 rows' Q4_K/Q5_K blocks from their 12 repacked scale
/// bytes at `at` (`[byte][row]`), a vector of 16 rows per sub-block: sub-blocks 0–3 take the
/// low 6 bits of bytes 0–3 and 4–7; 4–7 the nibbles of bytes 8–11 and the top 2 bits of bytes
/// 0–7.
// SAFETY: reads the 192 bytes at `at`; SSE2 only (every x86-64).
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn k4_scale_bytes(at: *const u8) -> ([__m128i; 8], [__m128i; 8]) {
    let s: [__m128i; 12] = std::array::from_fn(|i| _mm_loadu_si128(at.add(16 * i).cast()));
    let (six, four, three) = (_mm_set1_epi8(63), _mm_set1_epi8(0x0F), _mm_set1_epi8(3));
    let top = |v: __m128i| _mm_slli_epi16(_mm_and_si128(_mm_srli_epi16(v, 6), three), 4);
    let (mut sc, mut mn) = ([_mm_setzero_si128(); 8], [_mm_setzero_si128(); 8]);
    for j in 0..4 {
        sc[j] = _mm_and_si128(s[j], six);
        mn[j] = _mm_and_si128(s[j + 4], six);
        sc[j + 4] = _mm_or_si128(_mm_and_si128(s[j + 8], four), top(s[j]));
        let high = _mm_and_si128(_mm_srli_epi16(s[j + 8], 4), four);
        mn[j + 4] = _mm_or_si128(high, top(s[j + 4]));
    }
    (sc, mn)
}

/// Nibbles `q` with `w = d·(q − 8)`.
pub(super) struct Q40;
/// Nibbles `q` with `w = d·q + m`.
pub(super) struct Q41;
/// Signed bytes `q` with `w = d·q`, offset by 128 to unsigned.
pub(super) struct Q80;
/// Nibbles (and a fifth bit with `FIVE`) with `w = d·sc·q − dmin·m` per 32.
pub(super) struct K4<const FIVE: bool>;
/// Six bits `q` with `w = d·sc·(q − 32)` per 16.
pub(super) struct Q6;

#[allow(unsafe_code)]
impl Unpack for Q40 {
    const FORMAT: Format = Format::Q4_0;
    const SPAN: usize = 32;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize) -> [__m512i; WORDS] {
        nibble_block(blk.add(field_at(Self::FORMAT, 1)))
    }
    type Scales = (__m512, __m512);
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> Self::Scales {
        let d = halves(blk);
        (d, _mm512_mul_ps(d, _mm512_set1_ps(-8.0)))
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize) -> (__m512, __m512) {
        *sc
    }
}

#[allow(unsafe_code)]
impl Unpack for Q41 {
    const FORMAT: Format = Format::Q4_1;
    const SPAN: usize = 32;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize) -> [__m512i; WORDS] {
        nibble_block(blk.add(field_at(Self::FORMAT, 2)))
    }
    type Scales = (__m512, __m512);
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> Self::Scales {
        (halves(blk), halves(blk.add(field_at(Self::FORMAT, 1))))
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize) -> (__m512, __m512) {
        *sc
    }
}

#[allow(unsafe_code)]
impl Unpack for Q80 {
    const FORMAT: Format = Format::Q8_0;
    const SPAN: usize = 32;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize) -> [__m512i; WORDS] {
        let (q, flip) = (
            blk.add(field_at(Self::FORMAT, 1)),
            _mm512_set1_epi8(i8::MIN),
        );
        std::array::from_fn(|p| _mm512_xor_si512(load(q.add(64 * p)), flip))
    }
    type Scales = (__m512, __m512);
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> Self::Scales {
        let d = halves(blk);
        (d, _mm512_mul_ps(d, _mm512_set1_ps(-128.0)))
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize) -> (__m512, __m512) {
        *sc
    }
}

#[allow(unsafe_code)]
impl<const FIVE: bool> Unpack for K4<FIVE> {
    const FORMAT: Format = if FIVE { Format::Q5K } else { Format::Q4K };
    const SPAN: usize = 32;
    /// Unit `u` is the low (even `u`) or high nibbles of the 32 bytes `32·(u / 2)..`; with
    /// `FIVE`, bit `u` of the fifth-bit bytes adds 16.
    #[inline(always)]
    unsafe fn words(blk: *const u8, u: usize) -> [__m512i; WORDS] {
        let quants = field_at(Self::FORMAT, if FIVE { 4 } else { 3 });
        let w = nibbles(blk.add(quants + 64 * WORDS * (u / 2)), u % 2 == 1);
        if !FIVE {
            return w;
        }
        let (qh, bit, sixteen) = (
            blk.add(field_at(Self::FORMAT, 3)),
            _mm512_set1_epi8((1u8 << u) as i8),
            _mm512_set1_epi8(16),
        );
        std::array::from_fn(|p| {
            let has = _mm512_test_epi8_mask(load(qh.add(64 * p)), bit);
            _mm512_mask_add_epi8(w[p], has, w[p], sixteen)
        })
    }
    /// Per sub-block `a = d·sc`, `b = −dmin·m`.
    type Scales = ([__m512; 8], [__m512; 8]);
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> Self::Scales {
        let at = blk.add(field_at(Self::FORMAT, 2));
        let (sc, mn) = k4_scale_bytes(at);
        let d = halves(blk);
        let minus_dmin = _mm512_sub_ps(
            _mm512_setzero_ps(),
            halves(blk.add(field_at(Self::FORMAT, 1))),
        );
        (
            std::array::from_fn(|j| _mm512_mul_ps(d, u8s(sc[j]))),
            std::array::from_fn(|j| _mm512_mul_ps(minus_dmin, u8s(mn[j]))),
        )
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, j: usize) -> (__m512, __m512) {
        (sc.0[j], sc.1[j])
    }
}

#[allow(unsafe_code)]
impl Unpack for Q6 {
    const FORMAT: Format = Format::Q6K;
    const SPAN: usize = 16;
    /// Unit `u = 4n + s`: low (s < 2) or high nibbles of low-bit words `16n + 8(s % 2)..`, and
    /// bit pair `s` of high-bit words `8n..`.
    #[inline(always)]
    unsafe fn words(blk: *const u8, u: usize) -> [__m512i; WORDS] {
        let (n, s) = (u / 4, u % 4);
        let ql = blk.add(field_at(Self::FORMAT, 2) + 64 * (16 * n + 8 * (s % 2)));
        let low = nibbles::<WORDS>(ql, s >= 2);
        let qh = blk.add(field_at(Self::FORMAT, 3) + 64 * 8 * n);
        let (three, shift) = (_mm512_set1_epi8(3), _mm_cvtsi32_si128(2 * s as i32));
        std::array::from_fn(|p| {
            let v = _mm512_srl_epi16(load(qh.add(64 * p)), shift);
            let high = _mm512_slli_epi16(_mm512_and_si512(v, three), 4);
            _mm512_or_si512(low[p], high)
        })
    }
    /// The block's `d`; the 16 signed scales are read per span.
    type Scales = __m512;
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> Self::Scales {
        halves(blk)
    }
    #[inline(always)]
    unsafe fn ab(blk: *const u8, d: &Self::Scales, j: usize) -> (__m512, __m512) {
        let sc = _mm_loadu_si128(blk.add(field_at(Self::FORMAT, 1) + 16 * j).cast());
        let a = _mm512_mul_ps(*d, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(sc)));
        (a, _mm512_mul_ps(a, _mm512_set1_ps(-32.0)))
    }
    #[inline(always)]
    unsafe fn int_scale(blk: *const u8, j: usize) -> __m512i {
        let sc = _mm_loadu_si128(blk.add(field_at(Self::FORMAT, 1) + 16 * j).cast());
        _mm512_cvtepi8_epi32(sc)
    }
    const OFFSET: i32 = super::Q6K_OFFSET;
    #[inline(always)]
    unsafe fn int_d(blk: *const u8) -> __m512 {
        halves(blk)
    }
}
