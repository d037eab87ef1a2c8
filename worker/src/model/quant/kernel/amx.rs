//! The AMX int8 GEMM for Q6_K: up to 64 activation rows × 32 weight rows per call, for
//! prefill on the `amx` level.
//!
//! A [`TilePanel`] holds each weight times its sub-block's integer scale in two byte planes
//! (`64·hi + lo`), so a whole super-block of 256 values adds up in integers on the tiles: per
//! 64 values one `tdpbssd` (activations × `hi`) and one `tdpbsud` (× `lo`), then per
//! super-block the sums are stored (tiles have no path to vector registers) and scaled once,
//! `(64·hi + lo)·d·d'`, as llama.cpp's Q6_K dot product adds its sub-blocks in integers. The
//! VNNI kernels scale every 16 values' sums in floats; on tiles a store and a scaling per 16
//! values cost more than the VNNI kernel (a tile store costs about what a product does, and
//! the scaling waits on it), once per 256 they do not. Q4_K and Q5_K went through the same
//! planes at no gain (their offsets per 32 values still need float work): see
//! docs/BENCHMARKS.md.

#![allow(unsafe_code)]

use std::arch::asm;
use std::arch::x86_64::*;

use super::TileConfig;
use crate::model::quant::act::Activations;
use crate::model::quant::panel::{GROUPS, LANES, PANEL_ROWS};
use crate::model::quant::tile_panel::{TilePanel, SUPER};

/// Activation rows per call: four blocks of a tile's 16 rows.
pub const ROWS: usize = 64;

/// Rows of a tile: activation rows per block.
const TILE: usize = 16;

/// Bytes per tile row: 64 values.
const STEP: usize = 64;

/// Results of one call: `[activation row][panel row]`.
pub type RowsBlock = [[f32; PANEL_ROWS]; ROWS];

/// One super-block's integer sums as the tiles store them, `[plane][activation row][weight
/// row]`; at the start of a 4 KiB page, 2 KiB from the operand tiles
/// ([`crate::model::quant::tile_panel::TILE_RESIDUE`]).
#[repr(C, align(4096))]
struct Sums([i32; 2 * TILE * LANES]);

/// The tile products of one super-block: activations at `x` (four steps of 16 rows × 64
/// bytes) times the `hi` and `lo` planes at `hi` and `lo` (four steps of 16 words × 64 bytes),
/// stored to `c`. Steps alternate between two sets of operand tiles, so a load does not wait
/// for the product before it to finish reading its tile.
// SAFETY: the tile configuration is loaded; the pointers hold the tiles as `pass` lays out.
#[inline(always)]
unsafe fn super_block(x: *const i8, hi: *const u32, lo: *const u32, c: *mut i32) {
    asm!(
        "tilezero tmm0",
        "tilezero tmm1",
        "tileloadd tmm2, [{x} + {s}*1]",
        "tileloadd tmm4, [{h} + {s}*1]",
        "tileloadd tmm5, [{l} + {s}*1]",
        "tdpbssd tmm0, tmm2, tmm4",
        "tdpbsud tmm1, tmm2, tmm5",
        "tileloadd tmm3, [{x} + {s}*1 + 1024]",
        "tileloadd tmm6, [{h} + {s}*1 + 1024]",
        "tileloadd tmm7, [{l} + {s}*1 + 1024]",
        "tdpbssd tmm0, tmm3, tmm6",
        "tdpbsud tmm1, tmm3, tmm7",
        "tileloadd tmm2, [{x} + {s}*1 + 2048]",
        "tileloadd tmm4, [{h} + {s}*1 + 2048]",
        "tileloadd tmm5, [{l} + {s}*1 + 2048]",
        "tdpbssd tmm0, tmm2, tmm4",
        "tdpbsud tmm1, tmm2, tmm5",
        "tileloadd tmm3, [{x} + {s}*1 + 3072]",
        "tileloadd tmm6, [{h} + {s}*1 + 3072]",
        "tileloadd tmm7, [{l} + {s}*1 + 3072]",
        "tdpbssd tmm0, tmm3, tmm6",
        "tdpbsud tmm1, tmm3, tmm7",
        "tilestored [{c} + {s}*1], tmm0",
        "tilestored [{c} + {s}*1 + 1024], tmm1",
        x = in(reg) x,
        h = in(reg) hi,
        l = in(reg) lo,
        c = in(reg) c,
        s = in(reg) STEP,
        options(nostack),
    );
}

/// Every panel row times activation rows `c0..c0 + n` (`n ≤ 64`, `c0` a multiple of 16) into
/// `out`. Super-block by super-block, every block of 16 activation rows meets every group of 16
/// weight rows, so that a super-block's tiles (4 KiB of activations per block, 8 KiB of weights
/// per group) are loaded from L2 once and then from L1: loaded from L2 at every use, the tiles
/// waited on it most of the time.
///
/// # Safety
/// The CPU has the `amx` level (AMX-INT8 tiles granted to the process). The panel was filled
/// for `acts.padded` values, and `acts` was laid out for tiles ([`Activations::for_tiles`]).
#[target_feature(enable = "avx512f,avx512bw,avx2,fma")]
pub unsafe fn gemm(
    panel: &TilePanel,
    acts: &Activations,
    c0: usize,
    n: usize,
    out: &mut RowsBlock,
) {
    let padded = acts.padded;
    let (supers, per32, blocks) = (padded / SUPER, padded / 32, n.div_ceil(TILE));
    // tmm0–1 the sums of the `hi` and `lo` planes, tmm2–3 activations, tmm4–7 two steps'
    // weights of both planes.
    let config = TileConfig::full();
    asm!("ldtilecfg [{}]", in(reg) config.as_ptr(), options(nostack, readonly));
    let mut sums = Sums([0; 2 * TILE * LANES]);
    // `[block][group][row]`: each block's rows times each group's 16 weight rows.
    let mut facc = [[[_mm512_setzero_ps(); TILE]; GROUPS]; ROWS / TILE];
    for k in 0..supers {
        for (b, facc) in facc.iter_mut().enumerate().take(blocks) {
            let rows = c0 + b * TILE;
            let x = acts
                .tq
                .as_ptr()
                .add(acts.tq_at + rows * padded + k * SUPER * TILE);
            // Every 32 values of a super-block carry its activation scale.
            let xd = acts.td.as_ptr().add(rows * per32 + k * SUPER / 32 * TILE);
            for (g, facc) in facc.iter_mut().enumerate().take(panel.groups) {
                let (planes, d) = panel.group(g);
                // A super-block is four steps of 16 words (weights) or 16 rows (activations).
                let words = k * SUPER / 4 * LANES;
                let (hi, lo) = (planes.hi.as_ptr().add(words), planes.lo.as_ptr().add(words));
                super_block(x, hi, lo, sums.0.as_mut_ptr());
                let d = _mm512_loadu_ps(d.as_ptr().add(LANES * k));
                for (r, acc) in facc.iter_mut().enumerate() {
                    let at = |plane: usize| sums.0.as_ptr().add(LANES * (TILE * plane + r)).cast();
                    let (h, l) = (_mm512_load_si512(at(0)), _mm512_load_si512(at(1)));
                    let v = _mm512_cvtepi32_ps(_mm512_add_epi32(_mm512_slli_epi32::<6>(h), l));
                    *acc = _mm512_fmadd_ps(v, _mm512_mul_ps(d, _mm512_set1_ps(*xd.add(r))), *acc);
                }
            }
        }
    }
    for (b, facc) in facc.iter().enumerate().take(blocks) {
        for (g, facc) in facc.iter().enumerate().take(panel.groups) {
            for (r, acc) in facc.iter().enumerate().take(n - b * TILE) {
                _mm512_storeu_ps(out[b * TILE + r][LANES * g..].as_mut_ptr(), *acc);
            }
        }
    }
    asm!("tilerelease", options(nostack, nomem));
}
