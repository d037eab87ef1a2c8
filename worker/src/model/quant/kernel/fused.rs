//! The fused kernel for steps with few activation rows (decode, small batches): each weight
//! sub-block is unpacked into a register and dotted at once with up to four activation rows,
//! so weights go from memory to the multiplier without being written back.

use std::arch::x86_64::*;

use super::regs::{Regs, Q4K, Q4_0, Q4_1, Q5K, Q6K, Q8_0};
use crate::model::quant::act::Activations;
use crate::model::quant::format::Format;

/// Weight rows (`data`: whole rows of GGUF bytes) times every activation row, AVX2: `out` is
/// `[weight row][activation row]`.
// SAFETY: callers hold AVX2 and FMA and have checked the activation rows exist.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
pub unsafe fn rows_avx2(
    format: Format,
    data: &[u8],
    row_bytes: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    by_format::<false>(format, data, row_bytes, acts, out);
}

/// As [`rows_avx2`], multiplying with 256-bit VNNI.
// SAFETY: callers hold AVX2, FMA, AVX-512 VL and VNNI, and have checked the rows exist.
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma,avx512f,avx512vl,avx512vnni")]
pub unsafe fn rows_vnni(
    format: Format,
    data: &[u8],
    row_bytes: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    by_format::<true>(format, data, row_bytes, acts, out);
}

// SAFETY: reached only from the entry points above.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn by_format<const VNNI: bool>(
    format: Format,
    data: &[u8],
    row_bytes: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    match format {
        Format::Q4_0 => by_rows::<Q4_0, VNNI>(data, row_bytes, acts, out),
        Format::Q4_1 => by_rows::<Q4_1, VNNI>(data, row_bytes, acts, out),
        Format::Q8_0 => by_rows::<Q8_0, VNNI>(data, row_bytes, acts, out),
        Format::Q4K => by_rows::<Q4K, VNNI>(data, row_bytes, acts, out),
        Format::Q5K => by_rows::<Q5K, VNNI>(data, row_bytes, acts, out),
        Format::Q6K => by_rows::<Q6K, VNNI>(data, row_bytes, acts, out),
    }
}

// SAFETY: as `by_format`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn by_rows<R: Regs, const VNNI: bool>(
    data: &[u8],
    row_bytes: usize,
    acts: &Activations,
    out: &mut [f32],
) {
    let m = acts.rows;
    for (row, vals) in data.chunks_exact(row_bytes).zip(out.chunks_exact_mut(m)) {
        for (g, vals) in vals.chunks_mut(4).enumerate() {
            let c0 = 4 * g;
            match vals.len() {
                1 => dot::<R, 1, VNNI>(row, acts, c0, vals),
                2 => dot::<R, 2, VNNI>(row, acts, c0, vals),
                3 => dot::<R, 3, VNNI>(row, acts, c0, vals),
                _ => dot::<R, 4, VNNI>(row, acts, c0, vals),
            }
        }
    }
}

/// The activation rows a call reads.
struct Rows<const N: usize> {
    q: [*const i8; N],
    d: [*const f32; N],
    t: [*const f32; N],
    h: [*const f32; N],
}

// SAFETY: `row` is whole blocks of `R::BYTES` (checked when the matrix was made), so `R::sub`
// reads inside a block; activation rows hold at least `row`'s values, so block `k` of each
// (32 bytes at `32·k`, scale `k`, sums `k` and `2k`, `2k + 1`) is inside its row.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn dot<R: Regs, const N: usize, const VNNI: bool>(
    row: &[u8],
    acts: &Activations,
    c0: usize,
    out: &mut [f32],
) {
    let x = Rows::<N> {
        q: std::array::from_fn(|c| acts.row_q(c0 + c).as_ptr()),
        d: std::array::from_fn(|c| acts.row_d(c0 + c).as_ptr()),
        t: std::array::from_fn(|c| acts.row_t(c0 + c).as_ptr()),
        h: std::array::from_fn(|c| acts.row_s(c0 + c).as_ptr()),
    };
    // Two sets of accumulators, alternating by sub-block (by block where a block is a single
    // sub-block), so consecutive FMAs do not wait on each other. The alternation is fixed at
    // compile time: indexed at run time the accumulators would live on the stack.
    let mut even = [_mm256_setzero_ps(); N];
    let mut odd = [_mm256_setzero_ps(); N];
    let mut blocks = row.chunks_exact(R::BYTES).enumerate();
    if R::VALUES == 32 {
        while let Some((i, blk)) = blocks.next() {
            block::<R, N, VNNI>(blk, i, &x, &mut even, &mut odd);
            if let Some((i, blk)) = blocks.next() {
                block::<R, N, VNNI>(blk, i, &x, &mut odd, &mut even);
            }
        }
    } else {
        for (i, blk) in blocks {
            block::<R, N, VNNI>(blk, i, &x, &mut even, &mut odd);
        }
    }
    for c in 0..N {
        out[c] = super::avx2::hsum(_mm256_add_ps(even[c], odd[c]));
    }
}

/// Block `i`: even sub-blocks into `first`, odd ones and the offsets into `second`.
// SAFETY: as `dot`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn block<R: Regs, const N: usize, const VNNI: bool>(
    blk: &[u8],
    i: usize,
    x: &Rows<N>,
    first: &mut [__m256; N],
    second: &mut [__m256; N],
) {
    let subs = R::VALUES / 32;
    let p = blk.as_ptr();
    let sc = R::scales(p);
    for j in (0..subs).step_by(2) {
        sub::<R, N, VNNI>(p, &sc, j, i * subs + j, x, first);
        if j + 1 < subs {
            sub::<R, N, VNNI>(p, &sc, j + 1, i * subs + j + 1, x, second);
        }
    }
    for (c, acc) in second.iter_mut().enumerate() {
        *acc = R::offsets(&sc, x.t[c].add(i * subs), x.h[c].add(2 * i * subs), *acc);
    }
}

/// Sub-block `j` of a block, activation block `k`, into `acc`.
// SAFETY: as `dot`.
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn sub<R: Regs, const N: usize, const VNNI: bool>(
    p: *const u8,
    sc: &R::Scales,
    j: usize,
    k: usize,
    x: &Rows<N>,
    acc: &mut [__m256; N],
) {
    let w = R::sub(p, j);
    // Signed weights go through the sign trick: |w| · (y with w's sign).
    let wabs = if R::UNSIGNED {
        w
    } else {
        _mm256_sign_epi8(w, w)
    };
    let av = R::a(sc, j);
    for (c, acc) in acc.iter_mut().enumerate() {
        let y = _mm256_loadu_si256(x.q[c].add(32 * k).cast());
        let sy = if R::UNSIGNED {
            y
        } else {
            _mm256_sign_epi8(y, w)
        };
        // |w| ≤ 128, |y| ≤ 127: maddubs pairs stay inside i16.
        let sums = if VNNI {
            _mm256_dpbusd_epi32(_mm256_setzero_si256(), wabs, sy)
        } else {
            _mm256_madd_epi16(_mm256_maddubs_epi16(wabs, sy), _mm256_set1_epi16(1))
        };
        let scale = _mm256_mul_ps(av, _mm256_set1_ps(*x.d[c].add(k)));
        *acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), scale, *acc);
    }
}
