//! Each format's 32-weight sub-blocks unpacked straight into AVX2 registers, for the fused
//! decode kernel: no trip through memory, which dominates when a step has few rows.

use std::arch::x86_64::*;

/// One GGUF format as the fused kernel reads it. Scales stay in registers: written to memory
/// and read back at once they would stall on store forwarding.
// SAFETY: the methods read inside the block they are given (callers pass a pointer to `BYTES`
// bytes, and `offsets` a pointer to the block's `VALUES / 32` activation sums) and are reached
// only from AVX2 code.
#[allow(unsafe_code)]
pub trait Regs {
    /// Weights per block.
    const VALUES: usize;
    /// Bytes per block.
    const BYTES: usize;
    /// Whether `sub` returns non-negative values (then `maddubs` needs no sign trick).
    const UNSIGNED: bool;
    /// A block's decoded scales.
    type Scales: Copy;
    /// Decodes a block's scales.
    unsafe fn scales(blk: *const u8) -> Self::Scales;
    /// `[a_lo ×4, a_hi ×4]` of sub-block `j`: the scales of its two halves.
    unsafe fn a(s: &Self::Scales, j: usize) -> __m256;
    /// `acc` plus, across its lanes, the block's `Σ b·t`, for the block's activation sums
    /// `t` (per 32 values) and `h` (per 16).
    unsafe fn offsets(s: &Self::Scales, t: *const f32, h: *const f32, acc: __m256) -> __m256;
    /// Sub-block `j` (32 weights) as bytes: signed, or unsigned where `UNSIGNED`.
    unsafe fn sub(blk: *const u8, j: usize) -> __m256i;
}

// SAFETY (all helpers below): unaligned loads of bytes inside the block, AVX2 present.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibbles16(p: *const u8) -> __m256i {
    let q = _mm_loadu_si128(p.cast());
    let low = _mm_set1_epi8(0x0F);
    let lo = _mm_and_si128(q, low);
    let hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
    _mm256_set_m128i(hi, lo)
}

#[allow(unsafe_code)]
#[inline(always)]
unsafe fn nibble32(p: *const u8, high: bool) -> __m256i {
    let v = _mm256_loadu_si256(p.cast());
    let v = if high { _mm256_srli_epi16(v, 4) } else { v };
    _mm256_and_si256(v, _mm256_set1_epi8(0x0F))
}

/// Bits `shift..shift + width` of each byte of the 32 bytes at `p`, moved to bits 4 and up.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn high_bits(p: *const u8, shift: usize, mask: i8) -> __m256i {
    let v = _mm256_loadu_si256(p.cast());
    let v = _mm256_srl_epi16(v, _mm_cvtsi32_si128(shift as i32));
    _mm256_slli_epi16(_mm256_and_si256(v, _mm256_set1_epi8(mask)), 4)
}

#[allow(unsafe_code)]
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    half::f16::from_bits(u16::from_le_bytes([*p, *p.add(1)])).to_f32()
}

/// Eight small unsigned integers packed in a `u64`, as floats times `scale`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn bytes_to_f32(v: u64, scale: f32) -> __m256 {
    let i = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(v as i64));
    _mm256_mul_ps(_mm256_cvtepi32_ps(i), _mm256_set1_ps(scale))
}

/// Q4_0.
pub struct Q4_0;
/// Q4_1.
pub struct Q4_1;
/// Q8_0.
pub struct Q8_0;
/// Q4_K.
pub struct Q4K;
/// Q5_K.
pub struct Q5K;
/// Q6_K.
pub struct Q6K;

/// A 32-weight block's scale and offset.
#[derive(Clone, Copy)]
pub struct Flat {
    d: f32,
    m: f32,
}

#[allow(unsafe_code)]
#[inline(always)]
unsafe fn flat_offsets(s: &Flat, t: *const f32, acc: __m256) -> __m256 {
    _mm256_add_ps(
        acc,
        _mm256_set_ps(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, s.m * *t),
    )
}

/// The `Regs` of a format of single 32-weight blocks: bytes per block, whether its values are
/// unsigned and have offsets, how to read `Flat` scales and the 32 values.
macro_rules! flat_regs {
    ($name:ident, $bytes:expr, $unsigned:expr, $offsets:expr, $scales:expr, $sub:expr) => {
        #[allow(unsafe_code)]
        impl Regs for $name {
            const VALUES: usize = 32;
            const BYTES: usize = $bytes;
            const UNSIGNED: bool = $unsigned;
            type Scales = Flat;
            #[inline(always)]
            unsafe fn scales(blk: *const u8) -> Flat {
                $scales(blk)
            }
            #[inline(always)]
            unsafe fn a(s: &Flat, _j: usize) -> __m256 {
                _mm256_set1_ps(s.d)
            }
            #[inline(always)]
            unsafe fn offsets(s: &Flat, t: *const f32, _h: *const f32, acc: __m256) -> __m256 {
                if $offsets {
                    flat_offsets(s, t, acc)
                } else {
                    acc
                }
            }
            #[inline(always)]
            unsafe fn sub(blk: *const u8, _j: usize) -> __m256i {
                $sub(blk)
            }
        }
    };
}

// Q4_0 keeps its nibbles as they are, 0..16, and subtracts the 8 through the offset.
flat_regs!(
    Q4_0,
    18,
    true,
    true,
    |blk: *const u8| {
        let d = f16_at(blk);
        Flat { d, m: -8.0 * d }
    },
    |blk: *const u8| nibbles16(blk.add(2))
);
flat_regs!(
    Q4_1,
    20,
    true,
    true,
    |blk: *const u8| Flat {
        d: f16_at(blk),
        m: f16_at(blk.add(2)),
    },
    |blk: *const u8| nibbles16(blk.add(4))
);
flat_regs!(
    Q8_0,
    34,
    false,
    false,
    |blk: *const u8| Flat {
        d: f16_at(blk),
        m: 0.0,
    },
    |blk: *const u8| _mm256_loadu_si256(blk.add(2).cast())
);

/// Scales `d·sc` and offsets `−dmin·m` of the 8 sub-blocks of a Q4_K/Q5_K block.
#[derive(Clone, Copy)]
pub struct K4 {
    a: __m256,
    b: __m256,
}

/// Unpacks the 12 bytes of 6-bit scales and minimums with integer ops: sub-blocks 0–3 sit in
/// the low 6 bits of bytes 0–3 (scales) and 4–7 (minimums); 4–7 in the nibbles of bytes 8–11
/// plus the top 2 bits of bytes 0–7.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn k4_scales(blk: *const u8) -> K4 {
    let word = |i: usize| {
        u32::from_le_bytes([
            *blk.add(i),
            *blk.add(i + 1),
            *blk.add(i + 2),
            *blk.add(i + 3),
        ])
    };
    let (w0, w1, w2) = (word(4), word(8), word(12));
    let sc_lo = w0 & 0x3F3F_3F3F;
    let m_lo = w1 & 0x3F3F_3F3F;
    let sc_hi = (w2 & 0x0F0F_0F0F) | (((w0 >> 6) & 0x0303_0303) << 4);
    let m_hi = ((w2 >> 4) & 0x0F0F_0F0F) | (((w1 >> 6) & 0x0303_0303) << 4);
    let (d, dmin) = (f16_at(blk), f16_at(blk.add(2)));
    K4 {
        a: bytes_to_f32(u64::from(sc_lo) | u64::from(sc_hi) << 32, d),
        b: bytes_to_f32(u64::from(m_lo) | u64::from(m_hi) << 32, -dmin),
    }
}

/// The `Regs` of Q4_K and Q5_K: bytes per block and how to read sub-block `j`.
macro_rules! k4_regs {
    ($name:ident, $bytes:expr, $sub:expr) => {
        #[allow(unsafe_code)]
        impl Regs for $name {
            const VALUES: usize = 256;
            const BYTES: usize = $bytes;
            const UNSIGNED: bool = true;
            type Scales = K4;
            #[inline(always)]
            unsafe fn scales(blk: *const u8) -> K4 {
                k4_scales(blk)
            }
            #[inline(always)]
            unsafe fn a(s: &K4, j: usize) -> __m256 {
                _mm256_permutevar8x32_ps(s.a, _mm256_set1_epi32(j as i32))
            }
            #[inline(always)]
            unsafe fn offsets(s: &K4, t: *const f32, _h: *const f32, acc: __m256) -> __m256 {
                _mm256_fmadd_ps(s.b, _mm256_loadu_ps(t), acc)
            }
            #[inline(always)]
            unsafe fn sub(blk: *const u8, j: usize) -> __m256i {
                $sub(blk, j)
            }
        }
    };
}

k4_regs!(Q4K, 144, |blk: *const u8, j: usize| nibble32(
    blk.add(16 + 32 * (j / 2)),
    j % 2 == 1
));
// As Q4_K; bit j of byte l of the 32 bytes at 16 is the fifth bit of weight l of sub-block j.
k4_regs!(Q5K, 176, |blk: *const u8, j: usize| {
    let low = nibble32(blk.add(48 + 32 * (j / 2)), j % 2 == 1);
    _mm256_or_si256(low, high_bits(blk.add(16), j, 1))
});

/// The 16 scales `d·sc` of a Q6_K block, halves 0–7 and 8–15.
#[derive(Clone, Copy)]
pub struct K6 {
    lo: __m256,
    hi: __m256,
}

#[allow(unsafe_code)]
impl Regs for Q6K {
    const VALUES: usize = 256;
    const BYTES: usize = 210;
    const UNSIGNED: bool = true;
    type Scales = K6;
    #[inline(always)]
    unsafe fn scales(blk: *const u8) -> K6 {
        let v = _mm_loadu_si128(blk.add(192).cast());
        let d = _mm256_set1_ps(f16_at(blk.add(208)));
        let f = |x: __m128i| _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(x)), d);
        K6 {
            lo: f(v),
            hi: f(_mm_srli_si128(v, 8)),
        }
    }
    #[inline(always)]
    unsafe fn a(s: &K6, j: usize) -> __m256 {
        // Halves 2j and 2j + 1, four lanes each.
        let h = 2 * (j % 4) as i32;
        let pick = _mm256_set_epi32(h + 1, h + 1, h + 1, h + 1, h, h, h, h);
        _mm256_permutevar8x32_ps(if j < 4 { s.lo } else { s.hi }, pick)
    }
    #[inline(always)]
    unsafe fn offsets(s: &K6, _t: *const f32, h: *const f32, acc: __m256) -> __m256 {
        // The stored 6-bit values run 0..64; the 32 subtracted is an offset of −32·a per half.
        let minus = _mm256_set1_ps(-32.0);
        let acc = _mm256_fmadd_ps(_mm256_mul_ps(s.lo, minus), _mm256_loadu_ps(h), acc);
        _mm256_fmadd_ps(_mm256_mul_ps(s.hi, minus), _mm256_loadu_ps(h.add(8)), acc)
    }
    #[inline(always)]
    unsafe fn sub(blk: *const u8, j: usize) -> __m256i {
        let (n, k) = (j / 4, j % 4);
        let low = nibble32(blk.add(64 * n + 32 * (k % 2)), k >= 2);
        _mm256_or_si256(low, high_bits(blk.add(128 + 32 * n), 2 * k, 3))
    }
}
