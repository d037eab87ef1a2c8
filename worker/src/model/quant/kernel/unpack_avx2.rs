//! How each format's repacked block ([`crate::model::quant::packed`]) becomes AVX2 vectors:
//! half a 64-byte word (eight rows' four weights each) per vector, with the scales and
//! offsets of those eight rows. The AVX-512 twins live in `super::unpack`.

use std::arch::x86_64::*;

use super::unpack::k4_scale_bytes;
use crate::model::quant::format::Format;
use crate::model::quant::packed::field_at;

/// Unpacked words per unit of 32 weights, four weights each.
pub(super) const WORDS: usize = 8;

/// Rows per vector (a half of a repacked group).
pub(super) const HALF: usize = 8;

/// How one format's repacked block becomes vectors of bytes `u` with `w = a·u + b`, 32
/// weights (a unit) and eight rows (half `h` of the group) at a time.
// SAFETY: the methods read inside the repacked block they are given (`u` below the block's
// units, `j` below its scale spans, `h` 0 or 1) and are reached only from AVX2 code.
#[allow(unsafe_code)]
pub(super) trait Unpack {
    const FORMAT: Format;
    /// Weights sharing a scale: 32, or 16.
    const SPAN: usize;
    /// Words whose `maddubs` results may be added in 16 bits: `PAIRS · 2 · max u · 127`
    /// stays below 32,768.
    const PAIRS: usize;
    /// Whether `words` gives signed bytes: `maddubs` takes them through the sign trick, `b`
    /// folded in, and the kernels skip it; `vpdpbusd` takes them offset by 128 and adds `b`
    /// (see `super::mul_avx2::adds_offset`).
    const SIGNED: bool;
    /// What a block's scales decode to, once per block and half.
    type Scales: Copy;
    /// The eight words of unit `u` of the block at `blk`, rows of half `h`.
    unsafe fn words(blk: *const u8, u: usize, h: usize) -> [__m256i; WORDS];
    /// Decodes the scales of the block at `blk` for half `h`.
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales;
    /// Scales `a` and offsets `b` of half `h`'s rows for scale span `j`.
    unsafe fn ab(blk: *const u8, sc: &Self::Scales, j: usize, h: usize) -> (__m256, __m256);
    /// Whether `a` is an integer sub-block scale times one float `d` per block (the K
    /// formats), so that sums over a whole block can be scaled in integers.
    const INT_SCALES: bool = false;
    /// Half `h`'s integer scales for span `j`, each twice in 16 bits (see
    /// [`Unpack::INT_SCALES`]).
    #[inline(always)]
    unsafe fn int_scale(_blk: *const u8, _sc: &Self::Scales, _j: usize, _h: usize) -> __m256i {
        _mm256_setzero_si256()
    }
    /// Half `h`'s block scales `d`, the f16 values the K blocks start with (see
    /// [`Unpack::INT_SCALES`]).
    #[inline(always)]
    unsafe fn block_d(blk: *const u8, h: usize) -> __m256 {
        halves(blk, h)
    }
}

/// Eight 32-bit integers, each as two equal 16-bit halves (what `madd` multiplies pairs by).
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn twice(v: __m256i) -> __m256i {
    _mm256_or_si256(
        _mm256_and_si256(v, _mm256_set1_epi32(0xFFFF)),
        _mm256_slli_epi32(v, 16),
    )
}

// SAFETY (helpers): unaligned loads inside a repacked block, AVX2 and F16C present.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn load(at: *const u8) -> __m256i {
    _mm256_loadu_si256(at.cast())
}

/// Half `h`'s eight f16 values of the 16 at `at`, as floats.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn halves(at: *const u8, h: usize) -> __m256 {
    _mm256_cvtph_ps(_mm_loadu_si128(at.add(16 * h).cast()))
}

/// Half `h`'s eight unsigned bytes of the 16 in `v`, as floats.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn u8s(v: __m128i, h: usize) -> __m256 {
    let v = if h == 0 { v } else { _mm_srli_si128::<8>(v) };
    _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v))
}

/// Nibbles of the `W` words at `at`, low or high, rows of half `h`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibbles<const W: usize>(at: *const u8, high: bool, h: usize) -> [__m256i; W] {
    let mask = _mm256_set1_epi8(0x0F);
    std::array::from_fn(|p| {
        let v = load(at.add(64 * p + 32 * h));
        let v = if high { _mm256_srli_epi16(v, 4) } else { v };
        _mm256_and_si256(v, mask)
    })
}

/// The eight words of a block of 32 nibbles at `q`: low nibbles of word `p` are weights
/// `4p..4p + 4`, high ones `16 + 4p..`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibble_block(q: *const u8, h: usize) -> [__m256i; WORDS] {
    let (lo, hi) = (nibbles::<4>(q, false, h), nibbles::<4>(q, true, h));
    std::array::from_fn(|p| if p < 4 { lo[p] } else { hi[p - 4] })
}

/// Nibbles `q` with `w = d·(q − 8)`.
pub(super) struct Q40;
/// Nibbles `q` with `w = d·q + m`.
pub(super) struct Q41;
/// Signed bytes `q` with `w = d·q`.
pub(super) struct Q80;
/// Nibbles (and a fifth bit with `FIVE`) with `w = d·sc·q − dmin·m` per 32.
pub(super) struct K4<const FIVE: bool>;
/// Six bits `q` with `w = d·sc·(q − 32)` per 16.
pub(super) struct Q6;

#[allow(unsafe_code)]
impl Unpack for Q40 {
    const FORMAT: Format = Format::Q4_0;
    const SPAN: usize = 32;
    const PAIRS: usize = 8;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize, h: usize) -> [__m256i; WORDS] {
        nibble_block(blk.add(field_at(Self::FORMAT, 1)), h)
    }
    type Scales = (__m256, __m256);
    #[inline(always)]
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales {
        let d = halves(blk, h);
        (d, _mm256_mul_ps(d, _mm256_set1_ps(-8.0)))
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize, _: usize) -> (__m256, __m256) {
        *sc
    }
}

#[allow(unsafe_code)]
impl Unpack for Q41 {
    const FORMAT: Format = Format::Q4_1;
    const SPAN: usize = 32;
    const PAIRS: usize = 8;
    const SIGNED: bool = false;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize, h: usize) -> [__m256i; WORDS] {
        nibble_block(blk.add(field_at(Self::FORMAT, 2)), h)
    }
    type Scales = (__m256, __m256);
    #[inline(always)]
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales {
        (
            halves(blk, h),
            halves(blk.add(field_at(Self::FORMAT, 1)), h),
        )
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize, _: usize) -> (__m256, __m256) {
        *sc
    }
}

#[allow(unsafe_code)]
impl Unpack for Q80 {
    const FORMAT: Format = Format::Q8_0;
    const SPAN: usize = 32;
    const PAIRS: usize = 1;
    const SIGNED: bool = true;
    #[inline(always)]
    unsafe fn words(blk: *const u8, _: usize, h: usize) -> [__m256i; WORDS] {
        let q = blk.add(field_at(Self::FORMAT, 1));
        std::array::from_fn(|p| load(q.add(64 * p + 32 * h)))
    }
    type Scales = (__m256, __m256);
    #[inline(always)]
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales {
        let d = halves(blk, h);
        (d, _mm256_mul_ps(d, _mm256_set1_ps(-128.0)))
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, _: usize, _: usize) -> (__m256, __m256) {
        *sc
    }
}

#[allow(unsafe_code)]
impl<const FIVE: bool> Unpack for K4<FIVE> {
    const FORMAT: Format = if FIVE { Format::Q5K } else { Format::Q4K };
    const SPAN: usize = 32;
    const PAIRS: usize = if FIVE { 4 } else { 8 };
    const SIGNED: bool = false;
    /// Unit `u` is the low (even `u`) or high nibbles of the 32 bytes `32·(u / 2)..`; with
    /// `FIVE`, bit `u` of the fifth-bit bytes adds 16.
    #[inline(always)]
    unsafe fn words(blk: *const u8, u: usize, h: usize) -> [__m256i; WORDS] {
        let quants = field_at(Self::FORMAT, if FIVE { 4 } else { 3 });
        let w = nibbles(blk.add(quants + 64 * WORDS * (u / 2)), u % 2 == 1, h);
        if !FIVE {
            return w;
        }
        let (qh, bit, sixteen) = (
            blk.add(field_at(Self::FORMAT, 3)),
            _mm256_set1_epi8((1u8 << u) as i8),
            _mm256_set1_epi8(16),
        );
        std::array::from_fn(|p| {
            let set = _mm256_cmpeq_epi8(_mm256_and_si256(load(qh.add(64 * p + 32 * h)), bit), bit);
            _mm256_add_epi8(w[p], _mm256_and_si256(set, sixteen))
        })
    }
    /// Per sub-block `a = d·sc`, `b = −dmin·m`, and the scale bytes `sc` themselves.
    type Scales = ([__m256; 8], [__m256; 8], [__m128i; 8]);
    #[inline(always)]
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales {
        let at = blk.add(field_at(Self::FORMAT, 2));
        let (sc, mn) = k4_scale_bytes(at);
        let d = halves(blk, h);
        let minus_dmin = _mm256_sub_ps(
            _mm256_setzero_ps(),
            halves(blk.add(field_at(Self::FORMAT, 1)), h),
        );
        (
            std::array::from_fn(|j| _mm256_mul_ps(d, u8s(sc[j], h))),
            std::array::from_fn(|j| _mm256_mul_ps(minus_dmin, u8s(mn[j], h))),
            sc,
        )
    }
    #[inline(always)]
    unsafe fn ab(_: *const u8, sc: &Self::Scales, j: usize, _: usize) -> (__m256, __m256) {
        (sc.0[j], sc.1[j])
    }
    const INT_SCALES: bool = true;
    #[inline(always)]
    unsafe fn int_scale(_: *const u8, sc: &Self::Scales, j: usize, h: usize) -> __m256i {
        let v = if h == 0 {
            sc.2[j]
        } else {
            _mm_srli_si128::<8>(sc.2[j])
        };
        twice(_mm256_cvtepu8_epi32(v))
    }
}

#[allow(unsafe_code)]
impl Unpack for Q6 {
    const FORMAT: Format = Format::Q6K;
    const SPAN: usize = 16;
    const PAIRS: usize = 2;
    const SIGNED: bool = false;
    /// Unit `u = 4n + s`: low (s < 2) or high nibbles of low-bit words `16n + 8(s % 2)..`, and
    /// bit pair `s` of high-bit words `8n..`.
    #[inline(always)]
    unsafe fn words(blk: *const u8, u: usize, h: usize) -> [__m256i; WORDS] {
        let (n, s) = (u / 4, u % 4);
        let ql = blk.add(field_at(Self::FORMAT, 2) + 64 * (16 * n + 8 * (s % 2)));
        let low = nibbles::<WORDS>(ql, s >= 2, h);
        let qh = blk.add(field_at(Self::FORMAT, 3) + 64 * 8 * n);
        let (three, shift) = (_mm256_set1_epi8(3), _mm_cvtsi32_si128(2 * s as i32));
        std::array::from_fn(|p| {
            let v = _mm256_srl_epi16(load(qh.add(64 * p + 32 * h)), shift);
            let high = _mm256_slli_epi16(_mm256_and_si256(v, three), 4);
            _mm256_or_si256(low[p], high)
        })
    }
    /// The block's `d`; the 16 signed scales are read per span.
    type Scales = __m256;
    #[inline(always)]
    unsafe fn scales(blk: *const u8, h: usize) -> Self::Scales {
        halves(blk, h)
    }
    #[inline(always)]
    unsafe fn ab(blk: *const u8, d: &Self::Scales, j: usize, h: usize) -> (__m256, __m256) {
        let sc = _mm_loadl_epi64(
            blk.add(field_at(Self::FORMAT, 1) + 16 * j + HALF * h)
                .cast(),
        );
        let a = _mm256_mul_ps(*d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc)));
        (a, _mm256_mul_ps(a, _mm256_set1_ps(-32.0)))
    }
    const INT_SCALES: bool = true;
    #[inline(always)]
    unsafe fn int_scale(blk: *const u8, _: &Self::Scales, j: usize, h: usize) -> __m256i {
        let at = blk.add(field_at(Self::FORMAT, 1) + 16 * j + HALF * h);
        twice(_mm256_cvtepi8_epi32(_mm_loadl_epi64(at.cast())))
    }
}
