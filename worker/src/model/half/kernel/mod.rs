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
#[cfg(target_arch = "x86_64")]
mod tiling;
#[cfg(target_arch = "x86_64")]
use tiling::{by_blocks, by_tiles, one_stream, prefetch_next_tile, wide_gemm, Wide, TILE_W};

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
