//! AMX (Intel Sapphire Rapids and later): GEMM on tile registers for 16-bit weights. One
//! `tdpbf16ps` multiplies 16 weight rows × 32 values by 32 values × 16 activation rows (16 384
//! multiply-adds, where one core's AVX-512 FMAs do 32 a cycle). Callers hold the `amx` level
//! ([`crate::model::quant::Isa::has_amx`]).
//!
//! BF16 weights go in as stored, times activations rounded to BF16 (as `vdpbf16ps` and
//! llama.cpp do on such CPUs). F16 values do not fit BF16's 8-bit significand, so each weight
//! is split into two BF16 values whose sum is exact (`hi = bf16(w)`, `lo = w − hi`: 11 bits
//! fit in 8 + 8), each activation likewise (to 16 bits), and every step takes three tile
//! products, `hi·hi + hi·lo + lo·hi`: closer to the f32 product than llama.cpp's F16 path,
//! which rounds the activations to F16.
//!
//! Both operands are repacked into whole tiles, zero-padded, so any shape runs: the
//! activations once per product into the pair layout `tdpbf16ps` reads them in
//! ([`pack_acts`]), the weights once per task ([`pack_weights`]).

#![allow(unsafe_code)]

use std::arch::asm;
use std::arch::x86_64::*;
use std::cell::RefCell;

use rayon::prelude::*;

use crate::model::quant::kernel::transpose_words as transpose;
use crate::model::quant::kernel::TileConfig;

/// Values per tile row along the shared dimension (64 bytes of BF16).
const K: usize = 32;

/// Rows per tile: weight rows of an A tile, value pairs of a B tile, and the activation rows
/// one B tile holds side by side.
const R: usize = 16;

/// 16-bit values per tile.
const TILE: usize = R * K;

/// Weight rows per parallel task of callers: each task streams every packed activation row
/// through its weight rows, so more rows per task read them fewer times (4096 × 4096 by 512
/// rows, one Xeon core: 32 rows 233 GFlop/s F16 and 385 BF16, 64 rows 240 and 427; 128 rows
/// of F16's two halves, 2 MiB, no longer stay in L2).
pub const TASK_ROWS: usize = 64;

/// Weight rows per block (two A tiles) and activation rows per block (two B tiles): four
/// accumulator tiles and four operand tiles fill the eight tile registers.
const BLOCK: usize = 2 * R;

thread_local! {
    static WEIGHTS: RefCell<Vec<u16>> = const { RefCell::new(Vec::new()) };
}

/// Weight rows as [`gemm`] takes them.
#[derive(Debug, Clone, Copy)]
pub enum Weights<'a> {
    /// F16, little-endian bytes: split into two BF16 halves, three tile products a step.
    F16(&'a [u8]),
    /// BF16, little-endian bytes, as stored.
    Bf16(&'a [u8]),
}

impl<'a> Weights<'a> {
    /// The rows' little-endian bytes.
    fn bytes(self) -> &'a [u8] {
        match self {
            Weights::F16(b) | Weights::Bf16(b) => b,
        }
    }

    /// How many values the rows hold.
    fn values(self) -> usize {
        self.bytes().len() / 2
    }

    /// Whether weights and activations go in as two BF16 halves each.
    pub fn split(self) -> bool {
        matches!(self, Weights::F16(_))
    }
}

/// Activation rows packed for [`gemm`]: per block of 16 rows, per 32 values, `parts` B tiles
/// (BF16, or the high and low BF16 halves for F16 weights).
pub struct Packed {
    tiles: Vec<u16>,
    chunks: usize,
    parts: usize,
}

/// How many BF16 parts each value is split into (two where `split`).
fn parts(split: bool) -> usize {
    if split {
        2
    } else {
        1
    }
}

/// The mask of the first `n` (at most 16) lanes.
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 {
        !0
    } else {
        (1u16 << n) - 1
    }
}

/// 32 f32 values as BF16 (ties to even), value `2j` and `2j + 1` in 32-bit lane `j`; with
/// `lo`, the remainders `v − hi` as BF16 too.
#[inline(always)]
unsafe fn to_bf16(v0: __m512, v1: __m512, lo: bool) -> (__m512i, __m512i) {
    let hi = _mm512_cvtne2ps_pbh(v1, v0);
    if !lo {
        return (
            std::mem::transmute::<__m512bh, __m512i>(hi),
            _mm512_setzero_si512(),
        );
    }
    let bits: __m512i = std::mem::transmute(hi);
    let widen =
        |half: __m256i| _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(half), 16));
    let h0 = widen(_mm512_castsi512_si256(bits));
    let h1 = widen(_mm512_extracti64x4_epi64::<1>(bits));
    let lo = _mm512_cvtne2ps_pbh(_mm512_sub_ps(v1, h1), _mm512_sub_ps(v0, h0));
    (bits, std::mem::transmute::<__m512bh, __m512i>(lo))
}

/// `m` rows of `cols` f32 values at `x` packed for [`gemm`]: in two BF16 halves where
/// `split` (for [`Weights::split`] weights), else rounded to BF16.
///
/// # Safety
/// The CPU has the `amx` level (AVX-512 F/BW/VL and BF16 with it).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn pack_acts(x: &[f32], m: usize, cols: usize, split: bool) -> Packed {
    assert_eq!(x.len(), m * cols);
    let (chunks, parts) = (cols.div_ceil(K), parts(split));
    let blocks = m.div_ceil(BLOCK) * BLOCK / R;
    let per_block = chunks * parts * TILE;
    let mut tiles = vec![0u16; blocks * per_block];
    tiles
        .par_chunks_mut(per_block)
        .enumerate()
        .for_each(|(b, block)| {
            let rows = R.min(m.saturating_sub(b * R));
            if rows == 0 {
                return;
            }
            for c in 0..chunks {
                let at = c * K;
                let mut hi = [_mm512_setzero_si512(); R];
                let mut lo = [_mm512_setzero_si512(); R];
                for t in 0..rows {
                    let p = x.as_ptr().add((b * R + t) * cols + at);
                    let v0 = _mm512_maskz_loadu_ps(lanes(cols - at), p);
                    // Masked off past the row (and the slice), so never read there.
                    let v1 = _mm512_maskz_loadu_ps(
                        lanes((cols - at).saturating_sub(16)),
                        p.wrapping_add(16),
                    );
                    (hi[t], lo[t]) = to_bf16(v0, v1, parts == 2);
                }
                // Row t holds activation row t's 16 pairs; a B tile's row j holds pair j of
                // all 16 activation rows.
                let tile = block.as_mut_ptr().add(c * parts * TILE);
                for (j, v) in transpose(hi).iter().enumerate() {
                    _mm512_storeu_si512(tile.add(j * K).cast(), *v);
                }
                if parts == 2 {
                    for (j, v) in transpose(lo).iter().enumerate() {
                        _mm512_storeu_si512(tile.add(TILE + j * K).cast(), *v);
                    }
                }
            }
        });
    Packed {
        tiles,
        chunks,
        parts,
    }
}

/// `n` weight rows of `cols` values packed as A tiles into `out`: per block of 32 rows, per
/// 32 values, `parts` pairs of A tiles.
#[inline(always)]
unsafe fn pack_weights(w: Weights, n: usize, cols: usize, out: &mut Vec<u16>) {
    let (chunks, parts) = (cols.div_ceil(K), parts(w.split()));
    let per_block = chunks * parts * 2 * TILE;
    let bytes = w.bytes();
    // A reused buffer is not cleared: rows past `n` keep old values, whose sums are dropped.
    out.resize(n.div_ceil(BLOCK) * per_block, 0);
    for r in 0..n {
        let block = out
            .as_mut_ptr()
            .add(r / BLOCK * per_block + (r % BLOCK / R) * TILE);
        for c in 0..chunks {
            let at = c * K;
            let mask =
                (lanes(cols - at) as u32) | (lanes((cols - at).saturating_sub(16)) as u32) << 16;
            let dst = block.add(c * parts * 2 * TILE + (r % R) * K) as *mut __m512i;
            let raw =
                _mm512_maskz_loadu_epi16(mask, bytes.as_ptr().add(2 * (r * cols + at)).cast());
            if !w.split() {
                _mm512_storeu_si512(dst, raw);
                continue;
            }
            let v0 = _mm512_cvtph_ps(_mm512_castsi512_si256(raw));
            let v1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64::<1>(raw));
            let (hi, lo) = to_bf16(v0, v1, true);
            _mm512_storeu_si512(dst, hi);
            _mm512_storeu_si512(dst.cast::<u16>().add(2 * TILE).cast(), lo);
        }
    }
}

/// `out[r·m + i] = w[r] · x[i]` for the weight rows of `cols` values in `w` and the `m`
/// activation rows packed in `x` for them (split as `w` is); shapes are checked.
///
/// # Safety
/// The CPU has the `amx` level (tile state granted to the process, AVX-512 BF16).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub unsafe fn gemm(w: Weights, cols: usize, x: &Packed, m: usize, out: &mut [f32]) {
    let n = w.values() / cols;
    assert!(w.values() == n * cols && out.len() == n * m);
    assert!(x.chunks == cols.div_ceil(K) && x.parts == parts(w.split()));
    assert!(x.tiles.len() >= m.div_ceil(BLOCK) * BLOCK * x.chunks * x.parts * K);
    let (chunks, parts) = (x.chunks, x.parts);
    WEIGHTS.with_borrow_mut(|packed| {
        pack_weights(w, n, cols, packed);
        let config = TileConfig::full();
        asm!("ldtilecfg [{}]", in(reg) config.as_ptr(), options(nostack, readonly));
        let mut spill = [0f32; BLOCK * BLOCK];
        let acts_block = chunks * parts * TILE;
        for i0 in (0..m).step_by(BLOCK) {
            let b0 = x.tiles.as_ptr().add(i0 / R * acts_block);
            let b1 = b0.add(acts_block);
            for r0 in (0..n).step_by(BLOCK) {
                let a = packed.as_ptr().add(r0 / BLOCK * 2 * acts_block);
                let whole = r0 + BLOCK <= n && i0 + BLOCK <= m;
                let (c, stride) = if whole {
                    (out.as_mut_ptr().add(r0 * m + i0), m)
                } else {
                    (spill.as_mut_ptr(), BLOCK)
                };
                block(w.split(), a, b0, b1, chunks, c, stride);
                if !whole {
                    for r in 0..BLOCK.min(n - r0) {
                        let cols = BLOCK.min(m - i0);
                        out[(r0 + r) * m + i0..][..cols]
                            .copy_from_slice(&spill[r * BLOCK..][..cols]);
                    }
                }
            }
        }
        asm!("tilerelease", options(nostack, nomem));
    });
}

/// One block's assembly: the accumulator tiles zeroed; `steps` times the four products of
/// the first tiles at `a`, `b0` and `b1`, then the rest of the step's `body` (more products,
/// pointers advanced); the accumulators stored at `c0` and `c1` (16 rows further), `cs` bytes
/// between rows.
macro_rules! tile_block {
    ($a:expr, $b0:expr, $b1:expr, $steps:expr, $c0:expr, $c1:expr, $cs:expr; $($body:literal),+ $(,)?) => {
        asm!(
            "tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3",
            "2:",
            "tileloadd tmm4, [{a} + {s}*1]",
            "tileloadd tmm5, [{a} + {s}*1 + 1024]",
            "tileloadd tmm6, [{b0} + {s}*1]",
            "tileloadd tmm7, [{b1} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            $($body),+,
            "dec {n}",
            "jnz 2b",
            "tilestored [{c0} + {cs}*1], tmm0",
            "tilestored [{c0} + {cs}*1 + 64], tmm1",
            "tilestored [{c1} + {cs}*1], tmm2",
            "tilestored [{c1} + {cs}*1 + 64], tmm3",
            a = inout(reg) $a => _,
            b0 = inout(reg) $b0 => _,
            b1 = inout(reg) $b1 => _,
            n = inout(reg) $steps => _,
            s = in(reg) 2 * K,
            c0 = in(reg) $c0,
            c1 = in(reg) $c1,
            cs = in(reg) $cs,
            options(nostack),
        )
    };
}

/// The four accumulator tiles of one block, 32 rows of the first operand (A tiles at `a`) ×
/// 32 of the second (B tiles at `b0`, `b1`), over `chunks` steps of 32 values, stored at `c`
/// with `stride` f32 values between rows.
// SAFETY: the tile configuration is loaded; the pointers hold `chunks` steps of tiles as the
// packing functions lay them out, and `c` 32 rows of 32 values at `stride`.
#[inline(always)]
unsafe fn block(
    f16: bool,
    a: *const u16,
    b0: *const u16,
    b1: *const u16,
    chunks: usize,
    c: *mut f32,
    stride: usize,
) {
    let cs = stride * 4;
    let c1 = c.add(R * stride);
    if f16 {
        // Per step: A = weights' high halves, B = activations' high then low halves; then A =
        // weights' low halves with B's high halves again.
        tile_block!(a, b0, b1, chunks, c, c1, cs;
            "tileloadd tmm6, [{b0} + {s}*1 + 1024]",
            "tileloadd tmm7, [{b1} + {s}*1 + 1024]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "tileloadd tmm4, [{a} + {s}*1 + 2048]",
            "tileloadd tmm5, [{a} + {s}*1 + 3072]",
            "tileloadd tmm6, [{b0} + {s}*1]",
            "tileloadd tmm7, [{b1} + {s}*1]",
            "tdpbf16ps tmm0, tmm4, tmm6",
            "tdpbf16ps tmm1, tmm4, tmm7",
            "tdpbf16ps tmm2, tmm5, tmm6",
            "tdpbf16ps tmm3, tmm5, tmm7",
            "add {a}, 4096",
            "add {b0}, 2048",
            "add {b1}, 2048",
        );
    } else {
        tile_block!(a, b0, b1, chunks, c, c1, cs;
            "add {a}, 2048",
            "add {b0}, 1024",
            "add {b1}, 1024",
        );
    }
}
