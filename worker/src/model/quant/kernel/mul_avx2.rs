//! How the AVX2 kernels over repacked weights (`super::packed_avx2`, `super::gemm_avx2`) turn
//! four weight bytes of eight rows times four activation bytes into 32-bit sums: `maddubs`
//! pairs added in 16 bits, then widened by `madd` (AVX2); or `vpdpbusd` straight into 32 bits
//! (AVX-VNNI, the VEX form on CPUs without AVX-512: Intel's Alder Lake and later cores, its
//! E-core Xeons). Both give the same integers, so the two levels give the same bits, but for
//! Q8_0's signed weights: `maddubs` takes them through the sign trick, `vpdpbusd` offset by
//! 128, the offset added apart from the activations' sums as on the AVX-512 level.

use std::arch::x86_64::*;

/// A way to multiply unsigned weight bytes by signed activation bytes, four per 32-bit lane.
// SAFETY: the methods use register-only intrinsics and are reached only from code compiled
// with AVX2 (and AVX-VNNI for [`AvxVnni`]).
#[allow(unsafe_code)]
pub(super) trait Mul {
    /// Whether [`Mul::dpbusd`] adds into 32 bits: the sums then skip the 16-bit stage.
    const VNNI: bool;
    /// `acc` plus, per 32-bit lane, the four products of unsigned `w` and signed `x` bytes.
    unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i;
}

/// A [`Mul`] that needs no more than AVX2: the kernels' entries compiled for AVX2 take these.
pub(super) trait Avx2Mul: Mul {}

/// AVX2: `maddubs` pairs, added in 16 bits, then widened (no `dpbusd`).
pub(super) struct Maddubs;
/// AVX-VNNI's `vpdpbusd`.
pub(super) struct AvxVnni;
/// `vpdpbusd` in AVX2 instructions, exactly: lets unit tests run the AVX-VNNI kernels' code on
/// CPUs without it (the instruction itself is Intel's; see `Isa::testable`).
pub(super) struct Emulated;

#[allow(unsafe_code)]
impl Mul for Maddubs {
    const VNNI: bool = false;
    #[inline(always)]
    unsafe fn dpbusd(_: __m256i, _: __m256i, _: __m256i) -> __m256i {
        unreachable!("AVX2 sums take `maddubs`")
    }
}

impl Avx2Mul for Maddubs {}
impl Avx2Mul for Emulated {}

#[allow(unsafe_code)]
impl Mul for AvxVnni {
    const VNNI: bool = true;
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        _mm256_dpbusd_avx_epi32(acc, w, x)
    }
}

#[allow(unsafe_code)]
impl Mul for Emulated {
    const VNNI: bool = true;
    #[inline(always)]
    unsafe fn dpbusd(acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
        // Even and odd bytes widened to 16 bits (unsigned `w`, signed `x`): `madd` then adds
        // bytes 0 and 2, 1 and 3 of each lane into 32 bits, where nothing can saturate.
        let we = _mm256_and_si256(w, _mm256_set1_epi16(0xFF));
        let wo = _mm256_srli_epi16::<8>(w);
        let xe = _mm256_srai_epi16::<8>(_mm256_slli_epi16::<8>(x));
        let xo = _mm256_srai_epi16::<8>(x);
        let even = _mm256_madd_epi16(we, xe);
        _mm256_add_epi32(acc, _mm256_add_epi32(even, _mm256_madd_epi16(wo, xo)))
    }
}

/// Four weight bytes of eight rows times four activation bytes: eight 16-bit pair sums.
/// Signed weights go through the sign trick (`|w| ≤ 128`, so a pair stays inside 16 bits).
// SAFETY: register-only intrinsics, reached from AVX2 code.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn dot(signed: bool, w: __m256i, x: __m256i) -> __m256i {
    if signed {
        _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w))
    } else {
        _mm256_maddubs_epi16(w, x)
    }
}

/// `acc` plus weight word `w` times activation word `x`: 16-bit pair sums with `maddubs`
/// (signed weights through the sign trick); 32-bit lane sums with `vpdpbusd`, which takes
/// signed weights offset by 128 to unsigned (it cannot saturate), one `xor` per word
/// rather than a `sign` per word and activation row: the caller then adds the offset
/// ([`adds_offset`]).
// SAFETY: as `dot`, with AVX-VNNI where `M` is [`AvxVnni`].
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn step<M: Mul>(signed: bool, acc: __m256i, w: __m256i, x: __m256i) -> __m256i {
    if !M::VNNI {
        return _mm256_add_epi16(acc, dot(signed, w, x));
    }
    if signed {
        M::dpbusd(acc, _mm256_xor_si256(w, _mm256_set1_epi8(i8::MIN)), x)
    } else {
        M::dpbusd(acc, w, x)
    }
}

/// Whether [`step`]'s sums over weights that are `signed` leave out their offset `b`, which
/// the kernel then adds per span from the activations' sums: always but for signed weights
/// under `maddubs`, whose sign trick multiplies them as they are (Q8_0's `b`, `−128·d`,
/// serves only `vpdpbusd`).
pub(super) const fn adds_offset<M: Mul>(signed: bool) -> bool {
    !signed || M::VNNI
}

/// The 32-bit sums of what [`step`] added up in `s`, each times its integer scale `by` (given
/// twice in 16 bits, as `madd` takes it), or as they are without one.
// SAFETY: as `dot`.
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn widen<M: Mul>(s: __m256i, by: Option<__m256i>) -> __m256i {
    match (M::VNNI, by) {
        (false, by) => _mm256_madd_epi16(s, by.unwrap_or(_mm256_set1_epi16(1))),
        (true, None) => s,
        (true, Some(by)) => _mm256_mullo_epi32(s, _mm256_srai_epi32::<16>(by)),
    }
}

/// Whether the AVX-VNNI level runs [`Emulated`]: in unit tests, on CPUs without AVX-VNNI.
pub(super) fn emulated() -> bool {
    cfg!(test) && !std::arch::is_x86_feature_detected!("avxvnni")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The eight 32-bit lanes of `v`.
    // SAFETY: an unaligned store of a register into an array of its size; AVX2 checked by
    // the caller.
    #[allow(unsafe_code)]
    fn lanes(v: __m256i) -> [i32; 8] {
        let mut out = [0i32; 8];
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), v) };
        out
    }

    /// Pseudo-random bytes, every extreme among them.
    fn pattern(seed: u32) -> [u8; 32] {
        let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        std::array::from_fn(|i| match i {
            0 => 0,
            1 => 0x80,
            2 => 0xFF,
            3 => 0x7F,
            _ => {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                s as u8
            }
        })
    }

    /// `vpdpbusd` as Intel defines it, one lane at a time.
    fn reference(acc: [i32; 8], w: [u8; 32], x: [u8; 32]) -> [i32; 8] {
        std::array::from_fn(|l| {
            (0..4).fold(acc[l], |a, j| {
                let (w, x) = (w[4 * l + j] as i32, x[4 * l + j] as i8 as i32);
                a.wrapping_add(w * x)
            })
        })
    }

    #[test]
    #[allow(unsafe_code)]
    fn emulated_dpbusd_is_intels_and_the_instruction_where_the_cpu_has_it() {
        if !is_x86_feature_detected!("avx2") {
            eprintln!("skipped: no AVX2");
            return;
        }
        let vnni = is_x86_feature_detected!("avxvnni");
        for seed in 0..200 {
            let (w, x) = (pattern(seed), pattern(seed + 1000));
            // Each byte also against its own extremes: every pairing of 0, 128, 255 with
            // −128, 0, 127 meets in some lane over the seeds.
            let acc: [i32; 8] = std::array::from_fn(|l| (seed as i32 - 100) * 1_000_003 * l as i32);
            let want = reference(acc, w, x);
            // SAFETY: AVX2 checked above; unaligned loads of 32-byte arrays.
            let (a, wv, xv) = unsafe {
                (
                    _mm256_loadu_si256(acc.as_ptr().cast()),
                    _mm256_loadu_si256(w.as_ptr().cast()),
                    _mm256_loadu_si256(x.as_ptr().cast()),
                )
            };
            // SAFETY: AVX2 checked above.
            let got = unsafe { emulated_avx2(a, wv, xv) };
            assert_eq!(lanes(got), want, "emulated, seed {seed}");
            if vnni {
                // SAFETY: AVX-VNNI checked above.
                let hw = unsafe { vnni_hw(a, wv, xv) };
                assert_eq!(lanes(hw), want, "vpdpbusd, seed {seed}");
            }
        }
        if !vnni {
            eprintln!("the instruction itself not run: this CPU lacks AVX-VNNI");
        }
    }

    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2")]
    unsafe fn emulated_avx2(a: __m256i, w: __m256i, x: __m256i) -> __m256i {
        Emulated::dpbusd(a, w, x)
    }

    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,avxvnni")]
    unsafe fn vnni_hw(a: __m256i, w: __m256i, x: __m256i) -> __m256i {
        AvxVnni::dpbusd(a, w, x)
    }
}
