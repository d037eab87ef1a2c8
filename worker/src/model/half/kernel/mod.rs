//! The 16-bit float kernels, chosen at run time from the CPU's features as the int8 ones are:
//! scalar everywhere; AVX2 + FMA + F16C; AVX-512 (16 values a step, masked tails); on CPUs
//! with AVX-512 BF16, `vdpbf16ps` for BF16 weights, with the activations rounded to BF16 once
//! per product (as llama.cpp does there), two multiply-adds per 32-bit lane; and on CPUs with
//! AMX (the `amx` level), tiles from [`AMX_FROM`] activation rows (see [`crate::model::amx`]),
//! unless the process keeps rows alike (`super::keep_rows_alike`).
//!
//! One activation row (decode of one sequence) goes four weight rows at a time on AVX2 and
//! AVX-512 (four streams from memory in flight), one at a time with `vdpbf16ps` and on AVX-512
//! on AMD CPUs (the matrix read as one sequential stream, which a Zen 4 core's prefetchers
//! follow better). More rows go through tiles of several weight rows and activation rows
//! ([`Kernel::gemm`]: four by six or four on AVX-512, four by three or two on AVX2, three by
//! four for its batches of 8 and 12), which re-read the activations from cache once per tile
//! rather than once per weight row: four rows of 4096 f32 values are twice L1. A batch of
//! several groups of activation rows (under 16 rows) goes column block by column block, every
//! group meeting a tile's block while it is in L1 (see `by_blocks`).
//! Every sum of one weight row and one activation row has one accumulator, stepped through
//! the row in the same order whatever the tile, so a row's result does not depend on how many
//! rows share the product (the scalar kernel adds them one by one, in order).

use super::Half;
use crate::model::aligned::{AlignedVec, ALIGN};
use crate::model::quant::Isa;

#[cfg(target_arch = "x86_64")]
use crate::model::amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod bf16dp;

/// Which kernels multiply a matrix of one [`Half`] kind on this CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Plain Rust, any CPU.
    Scalar(Half),
    /// AVX2, FMA and F16C: 8 values a step, widened to f32.
    Avx2(Half),
    /// AVX-512 F/BW/VL: 16 values a step, widened to f32.
    Avx512(Half),
    /// AVX-512 BF16 on BF16 weights: activations rounded to BF16, `vdpbf16ps`.
    Bf16Dot,
    /// AMX tiles from [`AMX_FROM`] activation rows (BF16 as [`Kernel::Bf16Dot`], F16 split
    /// into two BF16 halves), and the best AVX-512 kernel below that; not chosen in a process
    /// that keeps rows alike.
    Amx(Half),
}

/// Activation rows from which [`Kernel::Amx`] multiplies on tiles: a tile holds 16.
pub const AMX_FROM: usize = 16;

impl Kernel {
    /// The best kernel of `isa` for `kind` on this CPU.
    pub fn new(isa: Isa, kind: Half) -> Kernel {
        if !has_f16c(isa) {
            return Kernel::Scalar(kind);
        }
        if !isa.has_avx512() {
            return Kernel::Avx2(kind);
        }
        if isa.has_amx() && !super::rows_alike() {
            return Kernel::Amx(kind);
        }
        if kind == Half::Bf16 && isa.has_avx512_bf16() {
            return Kernel::Bf16Dot;
        }
        Kernel::Avx512(kind)
    }

    /// Every kernel this CPU runs for `kind`, lowest first (tests, benchmarks).
    pub fn available(kind: Half) -> Vec<Kernel> {
        let mut out: Vec<Kernel> = Vec::new();
        for isa in Isa::available() {
            let k = Kernel::new(isa, kind);
            if k == Kernel::Bf16Dot {
                // The widening AVX-512 kernel too, which BF16 CPUs never pick on their own.
                out.push(Kernel::Avx512(kind));
            }
            if !out.contains(&k) {
                out.push(k);
            }
            if isa.has_amx() && !out.contains(&Kernel::Amx(kind)) {
                // Whether or not this process lets prompts take it.
                out.push(Kernel::Amx(kind));
            }
        }
        out
    }

    /// The kind of matrix this kernel multiplies.
    pub fn kind(self) -> Half {
        match self {
            Kernel::Scalar(k) | Kernel::Avx2(k) | Kernel::Avx512(k) => k,
            Kernel::Bf16Dot => Half::Bf16,
            Kernel::Amx(k) => k,
        }
    }

    /// The kernel that multiplies for [`Kernel::Amx`] under [`AMX_FROM`] rows (itself
    /// elsewhere).
    fn below_amx(self) -> Kernel {
        match self {
            Kernel::Amx(Half::Bf16) => Kernel::Bf16Dot,
            Kernel::Amx(Half::F16) => Kernel::Avx512(Half::F16),
            k => k,
        }
    }

    /// Whether this kernel rounds activations to BF16 (so products are as exact as BF16
    /// inputs allow, about 2⁻⁹ of each term, rather than f32's).
    pub fn rounds_activations(self) -> bool {
        matches!(self, Kernel::Bf16Dot | Kernel::Amx(Half::Bf16))
    }

    /// A bound on how far this kernel moves each product term, relative to the term, by
    /// rounding its operands: 2⁻⁹ where activations are rounded to BF16 (given as 2⁻⁸), 2⁻¹⁶
    /// for F16 on AMX, whose activations keep 16 bits in two BF16 halves (given as 2⁻¹⁵), and
    /// 0 where every operand is used exactly in f32.
    pub fn term_error(self) -> f64 {
        match self {
            _ if self.rounds_activations() => 1.0 / 256.0,
            Kernel::Amx(Half::F16) => 1.0 / 32768.0,
            _ => 0.0,
        }
    }

    /// The little-endian 16-bit values `src` as f32 into `dst` (half as many values as bytes).
    pub fn convert(self, src: &[u8], dst: &mut [f32]) {
        assert_eq!(src.len(), 2 * dst.len());
        let kind = self.kind();
        #[cfg(target_arch = "x86_64")]
        if self != Kernel::Scalar(kind) {
            // SAFETY: every kernel but Scalar was chosen where detection found AVX2, FMA and
            // F16C; the lengths match (asserted above).
            #[allow(unsafe_code)]
            unsafe {
                match kind {
                    Half::F16 => avx2::convert::<false>(src, dst),
                    Half::Bf16 => avx2::convert::<true>(src, dst),
                }
            }
            return;
        }
        for (i, d) in dst.iter_mut().enumerate() {
            *d = at(kind, src, i);
        }
    }

    /// The `m` activation rows `x` as this kernel reads them: `x` itself, a copy whose rows
    /// start on cache lines (several rows that do not), rounded to BF16, or packed for AMX
    /// tiles.
    pub fn prepare<'a>(self, x: &'a [f32], m: usize) -> Acts<'a> {
        let mut bf16 = AlignedVec::default();
        #[cfg(target_arch = "x86_64")]
        if let Kernel::Amx(kind) = self {
            if m >= AMX_FROM {
                let cols = x.len() / m;
                // SAFETY: Amx is chosen only on the `amx` level (tiles granted, AVX-512 BF16).
                #[allow(unsafe_code)]
                let tiles = unsafe { amx::pack_acts(x, m, cols, kind == Half::F16) };
                return Acts {
                    f32: x,
                    own: None,
                    bf16,
                    tiles: Some(tiles),
                };
            }
        }
        #[cfg(target_arch = "x86_64")]
        if self.below_amx() == Kernel::Bf16Dot {
            bf16 = AlignedVec::zeroed(x.len());
            // SAFETY: Bf16Dot is chosen only where detection found AVX-512 F/BW/VL and BF16;
            // the lengths match.
            #[allow(unsafe_code)]
            unsafe {
                bf16dp::round(x, &mut bf16)
            };
        }
        // One row is read once per weight row group from wherever it is; several are read
        // again for every group, each split load costing twice.
        let own = (m > 1 && bf16.is_empty() && !starts_lines(x.as_ptr(), x.len() / m))
            .then(|| AlignedVec::from_slice(x));
        Acts {
            f32: x,
            own,
            bf16,
            #[cfg(target_arch = "x86_64")]
            tiles: None,
        }
    }

    /// `out[r·m + i] = w[r] · x[i]` for every weight row `r` of `w` (`cols` little-endian
    /// 16-bit values each) and activation row `i < m` of `x` ([`Kernel::prepare`]d); on
    /// levels with [`Kernel::gemm`] for one activation row only.
    pub fn dot(self, w: &[u8], cols: usize, x: &Acts, m: usize, out: &mut [f32]) {
        let n = w.len() / (2 * cols);
        assert!(w.len() == 2 * n * cols && x.f32.len() == m * cols && out.len() == n * m);
        assert!(
            m == 1 || !self.has_gemm(),
            "several rows go through gemm here"
        );
        #[cfg(target_arch = "x86_64")]
        // SAFETY: each kernel runs only where detection found its features (see `new`); the
        // shapes were checked above, and Bf16Dot's activations were rounded by `prepare`
        // with this kernel (same length as `x.f32`).
        #[allow(unsafe_code)]
        unsafe {
            match self.below_amx() {
                Kernel::Scalar(_) | Kernel::Amx(_) => {}
                Kernel::Avx2(Half::F16) => return avx2::dot::<false>(w, cols, x.f32, out),
                Kernel::Avx2(Half::Bf16) => return avx2::dot::<true>(w, cols, x.f32, out),
                Kernel::Avx512(Half::F16) => {
                    return avx512::dot::<false>(w, cols, x.f32, out, one_stream())
                }
                Kernel::Avx512(Half::Bf16) => {
                    return avx512::dot::<true>(w, cols, x.f32, out, one_stream())
                }
                Kernel::Bf16Dot => {
                    assert_eq!(x.bf16.len(), x.f32.len());
                    return bf16dp::dot(w, cols, &x.bf16, out, one_stream());
                }
            }
        }
        let kind = self.kind();
        for (row, out) in w.chunks_exact(2 * cols).zip(out.chunks_exact_mut(m)) {
            for (o, x) in out.iter_mut().zip(x.f32.chunks_exact(cols)) {
                *o = x
                    .iter()
                    .enumerate()
                    .map(|(k, &x)| at(kind, row, k) * x)
                    .sum();
            }
        }
    }

    /// Whether [`Kernel::gemm`] multiplies on the 16-bit weights themselves.
    pub fn has_gemm(self) -> bool {
        !matches!(self, Kernel::Scalar(_))
    }

    /// As [`Kernel::dot`] for any number of activation rows, in tiles straight on the 16-bit
    /// weights; only where [`Kernel::has_gemm`].
    pub fn gemm(self, w: &[u8], cols: usize, x: &Acts, m: usize, out: &mut [f32]) {
        let n = w.len() / (2 * cols);
        assert!(w.len() == 2 * n * cols && x.f32.len() == m * cols && out.len() == n * m);
        assert!(self.has_gemm(), "no 16-bit GEMM on {self:?}");
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as in `dot`.
        #[allow(unsafe_code)]
        unsafe {
            if let (Kernel::Amx(kind), Some(tiles)) = (self, &x.tiles) {
                let w = match kind {
                    Half::F16 => amx::Weights::F16(w),
                    Half::Bf16 => amx::Weights::Bf16(w),
                };
                return amx::gemm(w, cols, tiles, m, out);
            }
            match self.below_amx() {
                Kernel::Bf16Dot => {
                    assert_eq!(x.bf16.len(), x.f32.len());
                    bf16dp::gemm(w, cols, &x.bf16, m, out);
                }
                Kernel::Avx512(Half::F16) => avx512::gemm::<false>(w, cols, x.rows(), m, out),
                Kernel::Avx512(Half::Bf16) => avx512::gemm::<true>(w, cols, x.rows(), m, out),
                Kernel::Avx2(Half::F16) => avx2::gemm::<false>(w, cols, x.rows(), m, out),
                Kernel::Avx2(Half::Bf16) => avx2::gemm::<true>(w, cols, x.rows(), m, out),
                Kernel::Scalar(_) | Kernel::Amx(_) => {}
            }
        }
    }
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

/// An AVX-512 level's two GEMM loops over tiles of `C` activation rows, which [`wide_gemm`]
/// chooses between.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
trait Wide {
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
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn wide_gemm<L: Wide>(w: &[u8], cols: usize, x: &[L::X], m: usize, out: &mut [f32]) {
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
#[cfg(target_arch = "x86_64")]
const TILE_W: usize = 4;

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
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[inline(always)]
unsafe fn by_tiles<X, const C: usize>(
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
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code, clippy::too_many_arguments)]
#[inline(always)]
unsafe fn by_blocks<X, A: Copy, const R: usize, const C: usize, const G: usize>(
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
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn prefetch_next_tile<const R: usize>(w: &[*const u8; R], k: usize, cols: usize) {
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
#[cfg(target_arch = "x86_64")]
const ONE_STREAM_AHEAD: usize = 16 * 1024;

/// Whether one activation row meets the weight rows one at a time on AVX-512 (`avx512::dot`,
/// `bf16dp::dot`): on AMD CPUs, whose prefetchers follow one stream best (F16 decode 30%
/// faster on a Zen 4); four at a time elsewhere (25% faster than one on an Intel Xeon,
/// Sapphire Rapids). The results are the same bits either way.
#[cfg(target_arch = "x86_64")]
fn one_stream() -> bool {
    static AMD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AMD.get_or_init(|| {
        // The vendor string, "AuthenticAMD", in EBX, EDX, ECX.
        let id = std::arch::x86_64::__cpuid(0);
        let word = |s: &[u8; 4]| u32::from_le_bytes(*s);
        (id.ebx, id.edx, id.ecx) == (word(b"Auth"), word(b"enti"), word(b"cAMD"))
    })
}

/// Activations prepared for one kernel ([`Kernel::prepare`]).
pub struct Acts<'a> {
    f32: &'a [f32],
    /// A copy of `f32` with every row on a cache line, where its rows were not.
    own: Option<AlignedVec<f32>>,
    /// The same values rounded to BF16, for [`Kernel::Bf16Dot`] only (else empty).
    bf16: AlignedVec<u16>,
    /// The same values packed for AMX tiles, for [`Kernel::Amx`] from [`AMX_FROM`] rows.
    #[cfg(target_arch = "x86_64")]
    tiles: Option<amx::Packed>,
}

impl Acts<'_> {
    /// The f32 rows the kernels read.
    fn rows(&self) -> &[f32] {
        self.own.as_deref().unwrap_or(self.f32)
    }
}

/// Whether rows of `cols` values from `p` each start on a cache line.
pub(super) fn starts_lines(p: *const f32, cols: usize) -> bool {
    (p as usize).is_multiple_of(ALIGN) && (cols * size_of::<f32>()).is_multiple_of(ALIGN)
}

/// Whether `isa` runs vector kernels for 16-bit floats on this CPU (F16C on top of AVX2).
fn has_f16c(isa: Isa) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        isa.has_avx2() && std::arch::is_x86_feature_detected!("f16c")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = isa;
        false
    }
}

/// Value `i` of little-endian 16-bit `bytes`, as f32.
fn at(kind: Half, bytes: &[u8], i: usize) -> f32 {
    kind.to_f32(u16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]]))
}
