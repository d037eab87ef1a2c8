//! The attention task on AMX tiles (see [`super::host`]), over BF16 pages
//! ([`PageFormat::Bf16Tiles`](crate::model::kv_cache::pages::PageFormat)).
//!
//! One `tdpbf16ps` scores 16 query rows against 16 keys over 32 head values, or weighs 32
//! positions' values for 16 rows: at a chat turn's 22 new rows over 1,900 positions the two
//! products took 0.8 of the 1.0 ms a layer spent on one Xeon core in AVX-512 FMAs. Queries and
//! weights go in rounded to BF16 (keys and values are stored so), every sum in f32.
//!
//! Each row's sums still run in one fixed order whichever rows share its tile: a tile row's
//! products never mix with another row's, the positions past a row's own weigh exactly zero,
//! and the last, partial 32 positions of the cache are read from a copy whose positions past
//! the end are zero (stale values there could be anything).

#![allow(unsafe_code)]

use std::arch::asm;
use std::arch::x86_64::__m512;

use crate::model::kv_cache::pages::{LANES, PAIRS};
use crate::model::quant::kernel::TileConfig;

use super::bf16_pages::{last_values, pack_queries, weights, BUFS};
use super::host::{Task, TASK_ROWS};
use super::lanes::divide_rows;

/// Rows per tile.
const R: usize = 16;

/// BF16 values per tile row (64 bytes).
const ROW: usize = 32;

/// BF16 values per tile.
const TILE: usize = R * ROW;

macro_rules! tileload {
    ($t:literal, $p:expr, $stride:expr) => {
        asm!(
            concat!("tileloadd tmm", $t, ", [{p} + {s}*1]"),
            p = in(reg) $p,
            s = in(reg) $stride,
            options(nostack, readonly)
        )
    };
}

macro_rules! tilestore {
    ($t:literal, $p:expr, $stride:expr) => {
        asm!(
            concat!("tilestored [{p} + {s}*1], tmm", $t),
            p = in(reg) $p,
            s = in(reg) $stride,
            options(nostack)
        )
    };
}

macro_rules! tilezero {
    ($t:literal) => {
        asm!(concat!("tilezero tmm", $t), options(nostack, nomem))
    };
}

macro_rules! tdp {
    ($c:literal, $a:literal, $b:literal) => {
        asm!(
            concat!("tdpbf16ps tmm", $c, ", tmm", $a, ", tmm", $b),
            options(nostack, nomem)
        )
    };
}

/// See [`super::host`]'s `Kernel::run`; the caller holds the `amx` level, BF16 pages and
/// `scores` of whole tiles of rows.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn run(task: &Task, scores: &mut [f32], out: &mut [f32]) {
    let (n, hd) = (task.rows(), task.kv.head_dim());
    let tiles = n.div_ceil(R);
    let most = task.most(0..n);
    let width = most.next_multiple_of(PAIRS);
    assert!(scores.len() >= tiles * R * task.padded && width <= task.kv.capacity());
    BUFS.with_borrow_mut(|(q, p, last)| {
        pack_queries(task.q, hd, tiles * R, q);
        // Grown, never cleared: each row's weights zero their own columns up to `width`, and
        // the rows past the task's in its last tile reach only results that are dropped.
        if p.len() < tiles * R * width {
            p.resize(tiles * R * width, 0);
        }
        let config = TileConfig::full();
        asm!("ldtilecfg [{}]", in(reg) config.as_ptr(), options(nostack, readonly));
        let s = scores.as_mut_ptr();
        for i in 0..tiles {
            let rows = i * R..(i * R + R).min(n);
            score(
                task,
                q.as_ptr().add(i * R * hd),
                task.most(rows),
                s.add(i * R * task.padded),
            );
        }
        let mut inv = [0f32; TASK_ROWS];
        for (r, inv) in inv.iter_mut().enumerate().take(n) {
            *inv = weights(
                task,
                r,
                s.add(r * task.padded),
                p.as_mut_ptr().add(r * width),
                width,
            );
        }
        let full = last_values(task, most, last);
        let mut spill = [0f32; R * 4 * LANES];
        for i in 0..tiles {
            let rows = (n - i * R).min(R);
            let chunks = task.most(i * R..i * R + rows).div_ceil(PAIRS);
            let values = |c: usize| {
                if c == full {
                    last.as_ptr()
                } else {
                    task.kv.value_tiles(task.head, c).as_ptr()
                }
            };
            let a = p.as_ptr().add(i * R * width);
            for c0 in (0..hd).step_by(4 * LANES) {
                let cols = (hd - c0).min(4 * LANES);
                let (c, stride) = if rows == R {
                    (out.as_mut_ptr().add(i * R * hd + c0), hd)
                } else {
                    (spill.as_mut_ptr(), 4 * LANES)
                };
                weigh(
                    a,
                    2 * width,
                    chunks,
                    &values,
                    c0 / LANES,
                    cols / LANES,
                    c,
                    4 * stride,
                );
                if rows < R {
                    for r in 0..rows {
                        let o = &mut out[(i * R + r) * hd + c0..][..cols];
                        o.copy_from_slice(&spill[r * 4 * LANES..][..cols]);
                    }
                }
            }
        }
        // No `tilerelease`: a decode step runs a task per head per layer, and releasing the
        // tiles after each made the next `ldtilecfg` start from the initial state (a layer
        // of one row over 50 positions took 0.017 ms instead of 0.011; 0.009 on AVX-512).
        divide_rows::<__m512>(out, hd, &inv);
    });
}

/// One tile of query rows (BF16 at `q`, rows `hd` apart) against the keys up to `most`,
/// scores stored at `s` (rows `task.padded` apart): two blocks of 16 keys at a time, the
/// queries held in tiles 2.. for the whole pass.
#[inline(always)]
unsafe fn score(task: &Task, q: *const u16, most: usize, s: *mut f32) {
    let hd = task.kv.head_dim();
    let (qs, ss) = (2 * hd, 4 * task.padded);
    let chunks = hd / ROW;
    tileload!(2, q, qs);
    if chunks > 1 {
        tileload!(3, q.add(ROW), qs);
    }
    if chunks > 2 {
        tileload!(4, q.add(2 * ROW), qs);
    }
    if chunks > 3 {
        tileload!(5, q.add(3 * ROW), qs);
    }
    let blocks = most.div_ceil(LANES);
    for b in (0..blocks).step_by(2) {
        let k0 = task.kv.key_tiles(task.head, b).as_ptr();
        tilezero!(0);
        if b + 1 == blocks {
            for c in 0..chunks {
                tileload!(6, k0.add(c * TILE), 2 * ROW);
                match c {
                    0 => tdp!(0, 2, 6),
                    1 => tdp!(0, 3, 6),
                    2 => tdp!(0, 4, 6),
                    _ => tdp!(0, 5, 6),
                }
            }
            tilestore!(0, s.add(b * LANES), ss);
            break;
        }
        let k1 = task.kv.key_tiles(task.head, b + 1).as_ptr();
        tilezero!(1);
        for c in 0..chunks {
            tileload!(6, k0.add(c * TILE), 2 * ROW);
            tileload!(7, k1.add(c * TILE), 2 * ROW);
            match c {
                0 => {
                    tdp!(0, 2, 6);
                    tdp!(1, 2, 7);
                }
                1 => {
                    tdp!(0, 3, 6);
                    tdp!(1, 3, 7);
                }
                2 => {
                    tdp!(0, 4, 6);
                    tdp!(1, 4, 7);
                }
                _ => {
                    tdp!(0, 5, 6);
                    tdp!(1, 5, 7);
                }
            }
        }
        tilestore!(0, s.add(b * LANES), ss);
        tilestore!(1, s.add((b + 1) * LANES), ss);
    }
}

/// `tiles` (up to 4) accumulator tiles of 16 rows × 16 head values from value tile `first`
/// on: the weights at `a` (`a_stride` bytes between rows) times `chunks` steps of 32
/// positions' value tiles (`values(c)`), stored at `c` (`c_stride` bytes between rows).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn weigh(
    a: *const u16,
    a_stride: usize,
    chunks: usize,
    values: &impl Fn(usize) -> *const u16,
    first: usize,
    tiles: usize,
    c: *mut f32,
    c_stride: usize,
) {
    let b = 2 * ROW;
    tilezero!(0);
    tilezero!(1);
    tilezero!(2);
    tilezero!(3);
    for k in 0..chunks {
        tileload!(4, a.add(k * ROW), a_stride);
        let v = values(k).add(first * TILE);
        tileload!(5, v, b);
        tdp!(0, 4, 5);
        if tiles > 1 {
            tileload!(6, v.add(TILE), b);
            tdp!(1, 4, 6);
        }
        if tiles > 2 {
            tileload!(7, v.add(2 * TILE), b);
            tdp!(2, 4, 7);
        }
        if tiles > 3 {
            tileload!(5, v.add(3 * TILE), b);
            tdp!(3, 4, 5);
        }
    }
    tilestore!(0, c, c_stride);
    if tiles > 1 {
        tilestore!(1, c.add(LANES), c_stride);
    }
    if tiles > 2 {
        tilestore!(2, c.add(2 * LANES), c_stride);
    }
    if tiles > 3 {
        tilestore!(3, c.add(3 * LANES), c_stride);
    }
}
