//! The AVX levels' shared loops: tiles of weight rows and activation rows over whole rows
//! (`by_tiles`), or column block by column block for batches of several groups of activation
//! rows (`by_blocks`); and how far ahead the weights are prefetched.

/// An AVX-512 level's two GEMM loops over tiles of `C` activation rows, which [`wide_gemm`]
/// chooses between.
#[allow(unsafe_code)]
pub(super) trait Wide {
    /// The activations as the level reads them.
    type X;
    /// Tiles over whole rows ([`by_tiles`]).
    // SAFETY: callers hold the level's features and pass `w` of `n · cols` 16-bit values,
    // `x` of `m · cols` and `out` of `n · m`.
    unsafe fn tiles<const C: usize>(
        w: &[u8],
        cols: usize,
        x: &[Self::X],
        m: usize,
        out: &mut [f32],
    );
    /// Tiles in column blocks ([`by_blocks`]), for at most four groups of `C` rows.
    // SAFETY: as `tiles`, with `m` at most `4 · C`.
    unsafe fn blocks<const C: usize>(
        w: &[u8],
        cols: usize,
        x: &[Self::X],
        m: usize,
        out: &mut [f32],
    );
}

/// `m` activation rows on an AVX-512 level: tiles of four or six of them ([`tile_acts`]), in
/// column blocks where a batch holds several groups (7 to 15 rows), over whole rows for
/// prompts and for batches of one group, where blocks gain nothing.
// SAFETY: as `Wide::tiles`.
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn wide_gemm<L: Wide>(
    w: &[u8],
    cols: usize,
    x: &[L::X],
    m: usize,
    out: &mut [f32],
) {
    let acts = tile_acts(m);
    match (m < 16 && m > acts, acts) {
        (true, 4) => L::blocks::<4>(w, cols, x, m, out),
        (true, _) => L::blocks::<6>(w, cols, x, m, out),
        (false, 4) => L::tiles::<4>(w, cols, x, m, out),
        (false, _) => L::tiles::<6>(w, cols, x, m, out),
    }
}

/// Weight rows per GEMM tile on every level: with three activation rows (AVX2), twelve
/// accumulators, three activation vectors and the widened weight vector fill the sixteen
/// registers (over whole rows 3 × 4 and 2 × 6 spilled and 5 × 2 widens more weights per
/// product: all measured slower; AVX2 batches of 8 and 12 go in 3 × 4 tiles in column blocks,
/// where the four activation vectors are read from L1 as used); AVX-512's 32 registers hold
/// 4 × 6.
pub(super) const TILE_W: usize = 4;

/// The GEMM loop of every level for prompts, and batches of one group of activation rows:
/// the weight rows of `w` (`cols` 16-bit values each) times the `m` activation rows of `x`
/// into `out` (`n · m`, row-major by weight row), in tiles of [`TILE_W`] weight rows × `C`
/// activation rows that `tile` multiplies over whole rows (given the rows' first bytes and
/// values). Each group of activation rows meets every weight row of the task, which stays in
/// L2.
// SAFETY: callers pass `w` of `n · cols` 16-bit values, `x` of `m · cols` and `out` of
// `n · m`, and a `tile` that reads `cols` values at each pointer. It is inlined into each
// level's `#[target_feature]` function, and `tile`, a closure defined there, inherits its
// features, so the level's intrinsics inline into one loop.
#[allow(unsafe_code)]
#[inline(always)]
pub(super) unsafe fn by_tiles<X, const C: usize>(
    w: &[u8],
    x: &[X],
    m: usize,
    cols: usize,
    out: &mut [f32],
    tile: impl Fn([*const u8; TILE_W], [*const X; C]) -> [[f32; C]; TILE_W],
) {
    let n = w.len() / (2 * cols);
    let (w, x) = (w.as_ptr(), x.as_ptr());
    for c0 in (0..m).step_by(C) {
        let nc = (m - c0).min(C);
        // Past the last row a tile re-reads it; those sums are dropped.
        let xs = std::array::from_fn(|c| x.add((c0 + c.min(nc - 1)) * cols));
        for r0 in (0..n).step_by(TILE_W) {
            let nr = (n - r0).min(TILE_W);
            let ws = std::array::from_fn(|r| w.add(2 * (r0 + r.min(nr - 1)) * cols));
            let sums = tile(ws, xs);
            for (r, sums) in sums.iter().enumerate().take(nr) {
                out[(r0 + r) * m + c0..][..nc].copy_from_slice(&sums[..nc]);
            }
        }
    }
}

/// The GEMM loop of every level for batches of several groups of `C` activation rows (under `G
/// · C` rows: batched decode), on [`by_tiles`]'s operands: for each tile of [`TILE_W`] weight
/// rows, column block by column block (`block` values), every group steps its sums through the
/// block while the tile's weights of it are in L1, the sums in registers (`A`) within a block
/// and on the stack between blocks. `steps` steps one group through a range of `full` (the
/// values the level's full steps cover), told whether it is the first group; `finish` adds the
/// rest of the row past `full` and reduces the sums. Each sum is still stepped through its row
/// in order, so the results are those of [`by_tiles`] to the bit. Whole rows re-read and
/// re-widen each weight row from L2 once per group (four rows of 4096 values fill L1): on one
/// Zen 3 core (AVX2), alternating binaries, 8 sequences of the 7B-shaped F16 file decoded at
/// 25.9–29.1 tok/s so and 28.1–33.5 in blocks; on an Intel Xeon (AVX-512, one thread) at
/// 34.5–36.9 and 39.8–41.9. Prompts keep whole rows: in blocks (passes of 24 rows) a 128-token
/// prompt of that file ran at 46.5–50.0 tok/s on the Zen 3, against 56.4–62.3.
// SAFETY: as `by_tiles`, with `m` at most `G · C`, and `steps` and `finish` reading `cols`
// values at each pointer at most.
#[allow(unsafe_code, clippy::too_many_arguments)]
#[inline(always)]
pub(super) unsafe fn by_blocks<X, A: Copy, const R: usize, const C: usize, const G: usize>(
    w: &[u8],
    x: &[X],
    m: usize,
    cols: usize,
    out: &mut [f32],
    (block, full, zero): (usize, usize, A),
    steps: impl Fn(&[*const u8; R], &[*const X; C], std::ops::Range<usize>, bool, &mut [[A; C]; R]),
    finish: impl Fn(&mut [[A; C]; R], &[*const u8; R], &[*const X; C]) -> [[f32; C]; R],
) {
    let n = w.len() / (2 * cols);
    let (w, x) = (w.as_ptr(), x.as_ptr());
    let groups = m.div_ceil(C);
    assert!(groups <= G);
    // Past the last row a group re-reads it; those sums are dropped.
    let group = |g: usize| -> [*const X; C] {
        std::array::from_fn(|c| x.add((g * C + c).min(m - 1) * cols))
    };
    for r0 in (0..n).step_by(R) {
        let nr = (n - r0).min(R);
        let ws = std::array::from_fn(|r| w.add(2 * (r0 + r.min(nr - 1)) * cols));
        let mut sums = [[[zero; C]; R]; G];
        for k0 in (0..full).step_by(block) {
            let ks = k0..full.min(k0 + block);
            for (g, sums) in sums.iter_mut().enumerate().take(groups) {
                let mut acc = *sums;
                steps(&ws, &group(g), ks.clone(), g == 0, &mut acc);
                *sums = acc;
            }
        }
        for (g, sums) in sums.iter_mut().enumerate().take(groups) {
            let done = finish(sums, &ws, &group(g));
            let (first, nc) = (g * C, (m - g * C).min(C));
            for (r, done) in done.iter().enumerate().take(nr) {
                out[(r0 + r) * m + first..][..nc].copy_from_slice(&done[..nc]);
            }
        }
    }
}

/// With one to four activation rows (decode, and batches in tiles of four, which only come
/// under 16 rows: [`tile_acts`]), asks for the line of each of the tile's weight rows `w`
/// that the next tile reads at value `k` (the next `R` rows, same column) into L2, once per
/// 64 bytes; one row at a time (`R == 1`, the rows one stream), the line
/// [`ONE_STREAM_AHEAD`] bytes on. On an AMD EPYC Zen 4 core a 32768 × 4096 F16 matrix times
/// one row went from 17–18 to 22–23 GFlop/s with four rows' lines (the hardware prefetchers
/// alone fall behind four streams); `Kernel::Bf16Dot`'s one stream gained nothing there and
/// has none. On an Intel Xeon (2 threads) batches of four BF16 sequences went from 30–41 to
/// 40–51 tok/s with them. Prompts' tiles of six rows re-read a task's rows from L2: none.
#[inline(always)]
pub(super) fn prefetch_next_tile<const R: usize>(w: &[*const u8; R], k: usize, cols: usize) {
    if k.is_multiple_of(32) {
        let ahead = if R == 1 {
            ONE_STREAM_AHEAD
        } else {
            2 * R * cols
        };
        for w in w {
            crate::model::quant::kernel::prefetch_l2(w.wrapping_add(2 * k + ahead));
        }
    }
}

/// How far ahead one stream of weight rows is prefetched, in bytes. One row ahead was 4 KiB
/// on the 1.1B shape's rows of 2048 values, too near: on a Zen 4 core, one thread, its F16
/// file decoded at 9.3–10.4 tok/s so, 11.2–11.8 at 8 KiB, 11.3–11.9 at 16 KiB (llama.cpp
/// 11.7–12.0 in the same runs); the 7B shape's rows (8 KiB) 12.8–13.1 → 13.0–13.5 at 16 KiB.
const ONE_STREAM_AHEAD: usize = 16 * 1024;

/// Whether one activation row meets the weight rows one at a time on AVX-512 (`avx512::dot`,
/// `bf16dp::dot`): on AMD CPUs, whose prefetchers follow one stream best (F16 decode 30%
/// faster on a Zen 4); four at a time elsewhere (25% faster than one on an Intel Xeon,
/// Sapphire Rapids). The results are the same bits either way.
pub(super) fn one_stream() -> bool {
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| {
        // The vendor string, "AuthenticAMD", in EBX, EDX, ECX.
        let id = std::arch::x86_64::__cpuid(0);
        let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
        (id.ebx, id.edx, id.ecx) == (word(b"Auth"), word(b"enti"), word(b"cAMD"))
    })
}

/// Activation rows per GEMM tile for `m` rows: six, or four where that pads fewer rows
/// under 16 (8 rows would be 12 with six, a third of the work thrown away).
fn tile_acts(m: usize) -> usize {
    let pad = |t: usize| m.div_ceil(t) * t - m;
    if m < 16 && pad(4) < pad(6) {
        4
    } else {
        6
    }
}
