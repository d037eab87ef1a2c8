//! Weight matrices in 16-bit floats (F16, BF16), held at 2 bytes per weight and multiplied
//! with f32 activations.
//!
//! candle would turn such weights into f32 on the CPU, twice the memory of the file and twice
//! the bytes read per decoded token. Here every product reads the 16-bit weights as stored and
//! widens them in registers ([`Kernel`]): one activation row (decode) a weight row at a time,
//! several (batched decode, prompt prefill) in tiles of weight rows by activation rows; BF16
//! on CPUs with AVX-512 BF16 is multiplied without widening, and prompts on CPUs with AMX go
//! through tile registers (F16 as two BF16 halves). CPUs without AVX2 and F16C, and
//! BF16 on AVX2 from 16 activation rows, instead convert a block of weight rows to f32 once per
//! task and run it through the `gemm` crate.
//!
//! On every other path a row's sums are added in the same order whatever the number of rows
//! (each sum has one accumulator, stepped through the row alike), so a row's result does not
//! depend on what shares its product: the prefix cache reuses keys and values that decode
//! computed one row at a time where a fresh prefill computes them in a prompt. AMX tiles and
//! the `gemm` crate add in their own order, which no one-row kernel matches at decode speed
//! (see `crate::model::amx`); a process that needs every row alike ([`keep_rows_alike`],
//! `arena worker --batch-invariant`) runs prompts on the other kernels instead.

mod kernel;

pub use kernel::Kernel;

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::model::aligned::AlignedVec;
use crate::model::layout::by_weight_blocks;
use crate::model::quant::Isa;

/// The 16-bit float format of a matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Half {
    /// IEEE half precision.
    F16,
    /// bfloat16 (the top half of an f32).
    Bf16,
}

impl Half {
    /// One value as f32.
    pub fn to_f32(self, bits: u16) -> f32 {
        match self {
            Half::F16 => half::f16::from_bits(bits).to_f32(),
            Half::Bf16 => half::bf16::from_bits(bits).to_f32(),
        }
    }
}

/// Activation rows from which a product on a level without [`Kernel::gemm`] (scalar), or
/// with BF16 on AVX2 (see [`converts_first`]), goes through the f32 GEMM on converted blocks.
const GEMM_FROM: usize = 16;

/// Weight rows per parallel task of the direct kernels ([`Kernel::dot`], and
/// [`Kernel::gemm`], where 32 rows of 4096 16-bit values stay in L2 while every activation
/// row meets them).
const DOT_TASK_ROWS: usize = 32;

/// Weight rows per parallel task of the f32 GEMM path: the `gemm` crate packs the activations
/// once per call, so a task covers enough rows for that to cost little.
const GEMM_TASK_ROWS: usize = 128;

/// Whether this process keeps every row's sums as they would be alone ([`keep_rows_alike`]).
static ROWS_ALIKE: AtomicBool = AtomicBool::new(false);

/// From now on, multiplies every activation row as it would be multiplied alone, bit for
/// bit, on every CPU: 16-bit prompts leave AMX tiles (a fifth to a half of their prefill
/// rate) and the f32 `gemm` crate (BF16 on AVX2: about a tenth slower) for the kernels
/// decode uses. The quantized types' kernels always do so.
pub fn keep_rows_alike() {
    ROWS_ALIKE.store(true, Ordering::Relaxed);
}

/// Whether [`keep_rows_alike`] was called.
fn rows_alike() -> bool {
    ROWS_ALIKE.load(Ordering::Relaxed)
}

thread_local! {
    static TILE: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// A `[rows, cols]` matrix of 16-bit floats, row-major, as the file's little-endian bytes.
#[derive(Debug, Clone)]
pub struct HalfMatrix {
    kind: Half,
    /// Rows start 64-byte aligned wherever `cols` is a multiple of 32 (see `crate::model::aligned`).
    data: AlignedVec<u8>,
    rows: usize,
    cols: usize,
}

impl HalfMatrix {
    /// A copy of the little-endian bytes of a `[rows, cols]` tensor; `None` if the sizes
    /// differ.
    pub fn from_le_bytes(kind: Half, data: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if data.len() != rows.checked_mul(cols)?.checked_mul(2)? {
            return None;
        }
        Self::from_aligned(kind, AlignedVec::from_slice(data), rows, cols)
    }

    /// Takes the little-endian bytes of a `[rows, cols]` tensor (kept as they are, no copy);
    /// `None` if the sizes differ.
    pub fn from_aligned(
        kind: Half,
        data: AlignedVec<u8>,
        rows: usize,
        cols: usize,
    ) -> Option<Self> {
        let values = rows.checked_mul(cols)?;
        if values == 0 || data.len() != values.checked_mul(2)? {
            return None;
        }
        Some(Self {
            kind,
            data,
            rows,
            cols,
        })
    }

    /// The value format.
    pub fn kind(&self) -> Half {
        self.kind
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Input features.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `r` as f32 into `out` (`cols` values); `None` if there is no such row.
    pub fn dequantize_row(&self, r: usize, out: &mut [f32]) -> Option<()> {
        if r >= self.rows {
            return None;
        }
        let out = out.get_mut(..self.cols)?;
        let row = &self.data[2 * r * self.cols..2 * (r + 1) * self.cols];
        Kernel::new(Isa::best(), self.kind).convert(row, out);
        Some(())
    }

    /// `x · Wᵀ` for `m` rows of `cols` values; returns `[m, rows]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(Isa::best(), x, m)
    }

    /// As [`HalfMatrix::matmul`] with the kernels of `isa`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_by(Kernel::new(isa, self.kind), x, m)
    }

    /// As [`HalfMatrix::matmul`] with `kernel` (one of [`Kernel::available`] for this kind).
    pub fn matmul_by(&self, kernel: Kernel, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.cols, "activation shape");
        assert_eq!(kernel.kind(), self.kind, "kernel for another kind");
        if m == 0 {
            return Vec::new();
        }
        let cols = self.cols;
        let acts = kernel.prepare(x, m);
        let weights = |first: usize, n: usize| &self.data[2 * first * cols..2 * (first + n) * cols];
        if !converts_first(kernel, m) {
            let dot = m == 1 || !kernel.has_gemm();
            let rows = match kernel {
                #[cfg(target_arch = "x86_64")]
                Kernel::Amx(_) if m >= kernel::AMX_FROM => crate::model::amx::TASK_ROWS,
                _ => DOT_TASK_ROWS,
            };
            return by_weight_blocks(self.rows, m, rows, |first, n, block| {
                let w = weights(first, n);
                if dot {
                    kernel.dot(w, cols, &acts, m, block);
                } else {
                    kernel.gemm(w, cols, &acts, m, block);
                }
            });
        }
        by_weight_blocks(self.rows, m, GEMM_TASK_ROWS, |first, n, block| {
            TILE.with_borrow_mut(|tile| {
                tile.resize(n * cols, 0.0);
                kernel.convert(weights(first, n), tile);
                gemm_into(block, x, tile, m, n, cols);
            });
        })
    }
}

/// Whether `m` activation rows go faster through weights converted to f32 once per task and
/// the `gemm` crate than through `kernel`'s own tiles: on CPUs without those, and for BF16 on
/// AVX2, whose tiles widen each 8 weights with two integer operations beside 12 multiply-adds
/// (4096 × 4096 by 128 rows on a Zen 3 core: 60 GFlop/s in the tiles, 66 converted).
fn converts_first(kernel: Kernel, m: usize) -> bool {
    m >= GEMM_FROM
        && matches!(kernel, Kernel::Scalar(_) | Kernel::Avx2(Half::Bf16))
        && !rows_alike()
}

/// `dst[j·m + i] = Σₖ x[i·cols + k] · w[j·cols + k]` for `i < m`, `j < n`: the activations
/// times `n` converted weight rows, written weight-row-major.
fn gemm_into(dst: &mut [f32], x: &[f32], w: &[f32], m: usize, n: usize, cols: usize) {
    assert!(dst.len() == m * n && x.len() == m * cols && w.len() == n * cols);
    let (dst_cs, k) = (m as isize, cols as isize);
    // SAFETY: the asserts above bound every index the strides reach: dst is m × n with
    // element (i, j) at j·m + i, lhs m × cols at i·cols + k, rhs cols × n at j·cols + k.
    #[allow(unsafe_code)]
    unsafe {
        gemm::gemm(
            m,
            n,
            cols,
            dst.as_mut_ptr(),
            dst_cs,
            1,
            false,
            x.as_ptr(),
            1,
            k,
            w.as_ptr(),
            k,
            1,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests;
