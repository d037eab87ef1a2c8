//! The attention task over BF16 pages with AVX-512 BF16 (see [`super::host`]), for CPUs that
//! have `vdpbf16ps` but no AMX (AMD Zen 4).
//!
//! The pages are the AMX kernel's ([`PageFormat::Bf16Tiles`]), and they suit `vdpbf16ps` as
//! they are: a key tile row is one head pair of 16 positions, so a score vector of 16 keys
//! takes a multiply-add of two head values per lane with the query's pair broadcast; a value
//! tile row is two positions of 16 head values, weighed by the row's two weights broadcast.
//! Half the bytes of f32 pages and two products per lane and instruction: on a chat turn the
//! new rows read every layer's whole cache once. Queries and weights are rounded to BF16 as
//! the AMX kernel rounds them, every sum is f32.
//!
//! Each row's sums run over the same keys in the same order whichever rows share its task: a
//! row's accumulators are its own, positions past its own weigh exactly zero, and the last,
//! partial 32 positions of the cache are read from a copy zeroed past the end.
//!
//! [`PageFormat::Bf16Tiles`]: crate::model::kv_cache::pages::PageFormat

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::model::kv_cache::pages::{LANES, PAGE, PAIRS};

use super::bf16_pages::{last_values, pack_queries, weights, BUFS};
use super::host::{Task, GROUP, TASK_ROWS};
use super::lanes::divide_rows;
use crate::model::quant::kernel::prefetch_part;

/// Key blocks of 16 positions in a page.
const PAGE_BLOCKS: usize = PAGE / LANES;

/// Value tiles of 32 positions in a page.
const PAGE_CHUNKS: usize = PAGE / PAIRS;

/// BF16 values in one value tile of 32 positions by 16 head values.
const TILE: usize = PAIRS * LANES;

/// Value vectors a group weighs per pass: six rows × four = 24 registers.
const W: usize = 4;

/// Sixteen BF16 pairs as the dot product's operand type.
#[inline(always)]
fn bh(v: __m512i) -> __m512bh {
    // SAFETY: both are 64 plain bytes; every bit pattern is a valid value of either.
    unsafe { std::mem::transmute(v) }
}

/// See [`super::host`]'s `Kernel::run`; the caller holds AVX-512 BF16 and BF16 pages.
///
/// A page of keys (then of values) is read from memory once and serves every group of six
/// rows of the task from L1; a group's weighted sums go back to `out` between pages, exactly.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512bf16")]
pub(super) unsafe fn run(task: &Task, scores: &mut [f32], out: &mut [f32]) {
    let (n, hd) = (task.rows(), task.kv.head_dim());
    let most = task.most(0..n);
    let width = most.next_multiple_of(PAIRS);
    assert!(hd.is_multiple_of(PAIRS) && width <= task.kv.capacity());
    assert!(scores.len() >= n * task.padded && out.len() == n * hd);
    let s = scores.as_mut_ptr();
    // Each group of rows: its first row, its rows, the keys its rows see at most (worked out
    // once: every page asks).
    let mut spans = [(0, 0, 0); TASK_ROWS.div_ceil(GROUP)];
    let groups = &mut spans[..n.div_ceil(GROUP)];
    for (i, span) in groups.iter_mut().enumerate() {
        let (g, rows) = (i * GROUP, GROUP.min(n - i * GROUP));
        *span = (g, rows, task.most(g..g + rows));
    }
    let groups = &*groups;
    BUFS.with_borrow_mut(|(q, p, last)| {
        pack_queries(task.q, hd, n, q);
        // Grown, never cleared: each row's weights zero their own columns up to `width`.
        if p.len() < n * width {
            p.resize(n * width, 0);
        }
        let pages = most.div_ceil(PAGE);
        // The next page's keys (then values) are asked for in L2 as a page starts: pages are
        // separate allocations, where the hardware's prefetchers do not follow (22 rows after
        // 1,888 positions, 30 layers' pages, one Zen 4 core: 0.75 ms a layer without, 0.72
        // with the first of its four key blocks asked for, 0.68–0.70 with all four).
        let next = |page: usize| match page + 1 < pages {
            true => task.kv.page_tiles(task.head, page + 1),
            false => (&[][..], &[][..]),
        };
        for page in 0..pages {
            prefetch_part(next(page).0, 0, 1);
            for &(g, rows, seen) in groups {
                let blocks = seen.div_ceil(LANES);
                let (b0, b1) = (page * PAGE_BLOCKS, blocks.min((page + 1) * PAGE_BLOCKS));
                if b0 < b1 {
                    let q = q.as_ptr().add(g * hd);
                    let s = s.add(g * task.padded);
                    match rows {
                        1 => score::<1>(task, q, b0..b1, s),
                        2 => score::<2>(task, q, b0..b1, s),
                        3 => score::<3>(task, q, b0..b1, s),
                        4 => score::<4>(task, q, b0..b1, s),
                        5 => score::<5>(task, q, b0..b1, s),
                        _ => score::<6>(task, q, b0..b1, s),
                    }
                }
            }
        }
        let mut inv = [0f32; TASK_ROWS];
        for (r, inv) in inv.iter_mut().enumerate().take(n) {
            let p = p.as_mut_ptr().add(r * width);
            *inv = weights(task, r, s.add(r * task.padded), p, width);
        }
        let full = last_values(task, most, last);
        let values = |c: usize| {
            if c == full {
                last.as_ptr()
            } else {
                task.kv.value_tiles(task.head, c).as_ptr()
            }
        };
        out.fill(0.0);
        for page in 0..pages {
            prefetch_part(next(page).1, 0, 1);
            for &(g, rows, seen) in groups {
                let chunks = seen.div_ceil(PAIRS);
                let (c0, c1) = (page * PAGE_CHUNKS, chunks.min((page + 1) * PAGE_CHUNKS));
                if c0 >= c1 {
                    continue;
                }
                let weights = p.as_ptr().add(g * width);
                for v0 in (0..hd / LANES).step_by(W) {
                    let o = out.as_mut_ptr().add(g * hd + v0 * LANES);
                    let at = (weights, width, o, hd);
                    match (rows, hd / LANES - v0 >= W) {
                        (1, true) => weigh::<1, W>(at, c0..c1, &values, v0),
                        (2, true) => weigh::<2, W>(at, c0..c1, &values, v0),
                        (3, true) => weigh::<3, W>(at, c0..c1, &values, v0),
                        (4, true) => weigh::<4, W>(at, c0..c1, &values, v0),
                        (5, true) => weigh::<5, W>(at, c0..c1, &values, v0),
                        (_, true) => weigh::<6, W>(at, c0..c1, &values, v0),
                        // Heads of 32·(2k + 1) values: the last two vectors.
                        (1, false) => weigh::<1, 2>(at, c0..c1, &values, v0),
                        (2, false) => weigh::<2, 2>(at, c0..c1, &values, v0),
                        (3, false) => weigh::<3, 2>(at, c0..c1, &values, v0),
                        (4, false) => weigh::<4, 2>(at, c0..c1, &values, v0),
                        (5, false) => weigh::<5, 2>(at, c0..c1, &values, v0),
                        (_, false) => weigh::<6, 2>(at, c0..c1, &values, v0),
                    }
                }
            }
        }
        divide_rows::<__m512>(out, hd, &inv);
    });
}

/// Scores of the `N` BF16 query rows at `q` (heads apart) against key `blocks` (within one
/// page) into `s` (rows `task.padded` apart): a whole page's four blocks at once where the
/// rows read them all, so that even one row keeps four independent sums in flight.
#[inline(always)]
unsafe fn score<const N: usize>(
    task: &Task,
    q: *const u16,
    blocks: std::ops::Range<usize>,
    s: *mut f32,
) {
    if blocks.len() == PAGE_BLOCKS {
        score_blocks::<N, PAGE_BLOCKS>(task, q, blocks.start, s);
    } else {
        for b in blocks {
            score_blocks::<N, 1>(task, q, b, s);
        }
    }
}

/// [`score`] of blocks `b0 .. b0 + KB`: per head pair one key vector per block, each met
/// by every row's pair broadcast; each sum in one accumulator, over the head in order.
#[inline(always)]
unsafe fn score_blocks<const N: usize, const KB: usize>(
    task: &Task,
    q: *const u16,
    b0: usize,
    s: *mut f32,
) {
    let hd = task.kv.head_dim();
    let keys: [*const u16; KB] =
        std::array::from_fn(|i| task.kv.key_tiles(task.head, b0 + i).as_ptr());
    let mut acc = [[_mm512_setzero_ps(); KB]; N];
    for j in 0..hd / 2 {
        let key: [__m512bh; KB] =
            std::array::from_fn(|i| bh(_mm512_loadu_si512(keys[i].add(2 * LANES * j).cast())));
        for (r, acc) in acc.iter_mut().enumerate() {
            let pair = q.add(r * hd + 2 * j).cast::<i32>().read_unaligned();
            let x = bh(_mm512_set1_epi32(pair));
            for (a, k) in acc.iter_mut().zip(&key) {
                *a = _mm512_dpbf16_ps(*a, *k, x);
            }
        }
    }
    for (r, acc) in acc.iter().enumerate() {
        for (i, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(s.add(r * task.padded + (b0 + i) * LANES), *a);
        }
    }
}

/// Adds to the `N` rows at `o` (`hd` apart), head vectors `v0 .. v0 + V`, the values of
/// 32-position `chunks` (`values(c)`) weighted by the rows' BF16 weights at `w` (`width`
/// apart): per position pair one value vector per head vector, met by every row's two
/// weights broadcast.
#[inline(always)]
unsafe fn weigh<const N: usize, const V: usize>(
    (w, width, o, hd): (*const u16, usize, *mut f32, usize),
    chunks: std::ops::Range<usize>,
    values: &impl Fn(usize) -> *const u16,
    v0: usize,
) {
    let o: [*mut f32; N] = std::array::from_fn(|r| o.add(r * hd));
    let mut acc: [[__m512; V]; N] =
        std::array::from_fn(|r| std::array::from_fn(|i| _mm512_loadu_ps(o[r].add(i * LANES))));
    for c in chunks {
        let tiles = values(c).add(v0 * TILE);
        for k in 0..PAIRS / 2 {
            let v: [__m512bh; V] = std::array::from_fn(|i| {
                bh(_mm512_loadu_si512(
                    tiles.add(i * TILE + 2 * LANES * k).cast(),
                ))
            });
            for (r, acc) in acc.iter_mut().enumerate() {
                let pair = w
                    .add(r * width + c * PAIRS + 2 * k)
                    .cast::<i32>()
                    .read_unaligned();
                let x = bh(_mm512_set1_epi32(pair));
                for (a, v) in acc.iter_mut().zip(&v) {
                    *a = _mm512_dpbf16_ps(*a, *v, x);
                }
            }
        }
    }
    for (acc, o) in acc.iter().zip(o) {
        for (i, a) in acc.iter().enumerate() {
            _mm512_storeu_ps(o.add(i * LANES), *a);
        }
    }
}
