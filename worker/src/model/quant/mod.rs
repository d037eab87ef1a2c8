//! Quantized weight matrices in GGUF's formats, multiplied by our own int8 kernels.
//!
//! A matrix keeps its file bytes and nothing else (no second copy). A multiplication
//! quantizes the activations to 8 bits per 32 values (as llama.cpp does), then, by the step's
//! rows and the CPU's instruction set ([`kernel`]):
//! - few rows (decode): the fused kernel unpacks weights in registers as it multiplies;
//! - more rows on AVX2 and AVX-512 VNNI: each parallel task interleaves 32 weight rows into a
//!   [`panel`] and runs the GEMM kernel over every activation row, writing into the output in
//!   place; Q6_K on AMX int8 tiles instead, through a [`tile_panel`] that multiplies the
//!   integer sub-block scales in, so a super-block adds up in integers;
//! - more rows elsewhere (scalar): each task unpacks weight rows into a [`tile`] for a
//!   microkernel.
//!
//! Either way weights are unpacked once per call, however many rows a step carries. On AVX2
//! and AVX-512 VNNI every format is [`packed`] at load instead (16 rows side by side, the same
//! bytes in another order, one layout for both levels): under 32 rows the repacked kernel
//! multiplies straight from memory with no horizontal sums, and from 32 the panel fill is a
//! plain unpack, not a transpose.

pub mod act;
pub mod format;
pub mod kernel;
pub mod packed;
pub mod panel;
pub mod tile;
pub mod tile_panel;

use std::cell::RefCell;

use rayon::prelude::*;

pub use format::Format;
pub use kernel::Isa;

use crate::model::layout;
use act::{padded, Activations};
use kernel::{Block, PanelBlock, COLS};
use packed::GROUP;
use panel::{Panel, PANEL_ROWS};
use tile::{Tile, TILE_ROWS};
use tile_panel::TilePanel;

/// Activation rows up to which the fused kernel runs (decode and small batches): unpacking
/// to a tile costs more than it saves until weights are reused across many rows.
const FUSED_ROWS: usize = 8;

/// Activation rows from which the panel GEMM beats the fused kernel, where a level has both:
/// interleaving costs more than it saves for four rows, less from five (8 sequences, same
/// machine: 28.6 → 28.9 tok/s on a Q4_K_M 1.1B, 32.4 → 37.1 on a 7B-shaped Q8_0).
const PANEL_FROM: usize = 5;

/// Activation rows from which the panel GEMM beats the repacked kernel (which re-reads the
/// weights once per eight rows, four on AVX2): 8 and 16 sequences of a 1.1B Q4_K_M decoded
/// at 110–120 and 109–115 tok/s against 69–77 and 91–95 through the GEMM; a 128-token prompt
/// 185 against 150–172 (AMD EPYC Zen 4, 2 threads). On AVX2 both cost the same per row (Zen 3, 1
/// thread: 4, 8 and 16 sequences 45–46 tok/s with the switch at 5, 8 or 32).
const PACKED_PANEL_FROM: usize = 32;

/// Weight rows per parallel task: one panel.
const TASK_ROWS: usize = PANEL_ROWS;

thread_local! {
    static TILE: RefCell<Tile> = RefCell::new(Tile::default());
    static PANEL: RefCell<Panel> = RefCell::new(Panel::default());
    static TILE_PANEL: RefCell<TilePanel> = RefCell::new(TilePanel::default());
    static FILE_ROWS: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// A `[rows, cols]` matrix in a GGUF block format.
#[derive(Debug, Clone)]
pub struct QMatrix {
    format: Format,
    data: Vec<u8>,
    rows: usize,
    cols: usize,
    row_bytes: usize,
    /// Whether `data` is [`packed`] (whole groups of 16 rows, zero rows past `rows`).
    packed: bool,
}

impl QMatrix {
    /// Takes the GGUF bytes of a `[rows, cols]` tensor; `None` if the sizes do not match.
    pub fn new(format: Format, data: Vec<u8>, rows: usize, cols: usize) -> Option<Self> {
        let row_bytes = format.row_bytes(cols)?;
        (rows > 0 && data.len() == rows * row_bytes).then_some(Self {
            format,
            data,
            rows,
            cols,
            row_bytes,
            packed: false,
        })
    }

    /// The matrix repacked for `isa`'s kernels where they want it ([`Isa::packs`]), else as
    /// it was. Repacks in place, a group at a time.
    pub fn packed_for(mut self, isa: Isa) -> Self {
        if self.packed || !isa.packs() {
            return self;
        }
        let group_bytes = GROUP * self.row_bytes;
        self.data.resize(self.rows.div_ceil(GROUP) * group_bytes, 0);
        let mut rows = vec![0u8; group_bytes];
        for group in self.data.chunks_exact_mut(group_bytes) {
            rows.copy_from_slice(group);
            packed::pack_group(self.format, &rows, self.row_bytes, group);
        }
        self.packed = true;
        self
    }

    /// The GGUF format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether the matrix is held repacked ([`QMatrix::packed_for`]).
    pub fn is_packed(&self) -> bool {
        self.packed
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
        if self.packed {
            let group = &self.groups(r - r % GROUP, 1);
            let mut row = vec![0u8; self.row_bytes];
            packed::unpack_row(self.format, group, r % GROUP, &mut row);
            self.format.dequantize(&row, out);
        } else {
            let row = &self.data[r * self.row_bytes..(r + 1) * self.row_bytes];
            self.format.dequantize(row, out);
        }
        Some(())
    }

    /// The repacked groups holding rows `first..first + n` (`first` a multiple of 16).
    fn groups(&self, first: usize, n: usize) -> &[u8] {
        let group_bytes = GROUP * self.row_bytes;
        &self.data[first / GROUP * group_bytes..(first + n).div_ceil(GROUP) * group_bytes]
    }

    /// Rows `first..first + n` (`first` a multiple of 16) as file bytes: borrowed, or unpacked
    /// into `buf` from a repacked matrix (for levels without its kernels).
    fn file_rows<'a>(&'a self, first: usize, n: usize, buf: &'a mut Vec<u8>) -> &'a [u8] {
        let rb = self.row_bytes;
        if !self.packed {
            return &self.data[first * rb..(first + n) * rb];
        }
        let src = self.groups(first, n);
        buf.resize(src.len(), 0);
        for (src, dst) in src
            .chunks_exact(GROUP * rb)
            .zip(buf.chunks_exact_mut(GROUP * rb))
        {
            packed::unpack_group(self.format, src, rb, dst);
        }
        &buf[..n * rb]
    }

    /// `x · Wᵀ` for `m` rows of `cols` values; returns `[m, rows]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        self.matmul_with(Isa::best(), x, m)
    }

    /// As [`QMatrix::matmul`] with the kernels of `isa`.
    pub fn matmul_with(&self, isa: Isa, x: &[f32], m: usize) -> Vec<f32> {
        assert_eq!(x.len(), m * self.cols, "activation shape");
        if m == 0 {
            return Vec::new();
        }
        let mut acts = quantize(isa, x, m, self.cols, self.format.block_values());
        if self.packed && isa.packs() {
            #[cfg(target_arch = "x86_64")]
            if m >= PACKED_PANEL_FROM && isa.tiles_for(self.format) {
                acts.for_tiles();
                return self.gemm_tiles(isa, &acts);
            }
            #[cfg(target_arch = "x86_64")]
            if isa.int_offsets(self.format) {
                if m < PACKED_PANEL_FROM {
                    acts.int_sums(kernel::Q6K_OFFSET);
                } else {
                    acts.to_unsigned();
                }
            }
            if m < PACKED_PANEL_FROM {
                return self.gemv(isa, &acts);
            }
            return self.gemm(isa, &acts);
        }
        if m >= PANEL_FROM && isa.has_gemm() {
            return self.gemm(isa, &acts);
        }
        layout::by_weight_blocks(self.rows, m, TASK_ROWS, |first, n, chunk| {
            let mut buf = FILE_ROWS.take();
            let data = self.file_rows(first, n, &mut buf);
            if m <= FUSED_ROWS && isa.fused(self.format, data, self.row_bytes, &acts, chunk) {
                FILE_ROWS.set(buf);
                return;
            }
            // Few activation rows: unpack four weight rows at a time so they stay in L1
            // while every activation row meets them. Many rows: unpack the whole task's
            // rows once and sweep the activations in groups.
            let group = if m <= 2 * COLS { TILE_ROWS } else { TASK_ROWS };
            TILE.with_borrow_mut(|tile| {
                let mut block: Block = [[0.0; COLS]; TILE_ROWS];
                for g in (0..n).step_by(group) {
                    let k = (n - g).min(group);
                    let bytes = &data[g * self.row_bytes..(g + k) * self.row_bytes];
                    isa.fill(tile, self.format, bytes, k, self.cols);
                    for c0 in (0..m).step_by(COLS) {
                        let nc = (m - c0).min(COLS);
                        for r0 in (0..tile.rows).step_by(TILE_ROWS) {
                            isa.micro(tile, r0, &acts, c0, nc, &mut block);
                            for (r, vals) in block.iter().enumerate().take(k.saturating_sub(r0)) {
                                let at = (g + r0 + r) * m + c0;
                                chunk[at..at + nc].copy_from_slice(&vals[..nc]);
                            }
                        }
                    }
                }
            });
            FILE_ROWS.set(buf);
        })
    }
}

impl QMatrix {
    /// `acts · Wᵀ` with the panel GEMM kernel: each task interleaves 32 weight rows once (or
    /// unpacks them, repacked) and meets every activation row with them.
    fn gemm(&self, isa: Isa, acts: &Activations) -> Vec<f32> {
        self.by_tasks(acts.rows, |first, n, put| {
            PANEL.with_borrow_mut(|panel| {
                if self.packed {
                    isa.fill_panel_packed(panel, self.format, self.groups(first, n), self.cols);
                } else {
                    let data = &self.data[first * self.row_bytes..(first + n) * self.row_bytes];
                    isa.fill_panel(panel, self.format, data, n, self.cols);
                }
                let mut block: PanelBlock = [[0.0; PANEL_ROWS]; COLS];
                let (next, calls) = (self.next_task(first), acts.rows.div_ceil(COLS));
                for c0 in (0..acts.rows).step_by(COLS) {
                    let nc = (acts.rows - c0).min(COLS);
                    kernel::prefetch_part(next, c0 / COLS, calls);
                    isa.gemm(panel, self.format, acts, c0, nc, &mut block);
                    put(c0, &block[..nc]);
                }
            });
        })
    }

    /// `acts · Wᵀ` on AMX int8 tiles (repacked Q6_K): as [`QMatrix::gemm`], with each task's
    /// rows unpacked into a [`TilePanel`] and met by 64 activation rows at a time.
    #[cfg(target_arch = "x86_64")]
    fn gemm_tiles(&self, isa: Isa, acts: &Activations) -> Vec<f32> {
        use kernel::{RowsBlock, TILE_ACT_ROWS};
        self.by_tasks(acts.rows, |first, n, put| {
            TILE_PANEL.with_borrow_mut(|panel| {
                isa.fill_tiles(panel, self.format, self.groups(first, n), self.cols);
                let mut block: RowsBlock = [[0.0; PANEL_ROWS]; TILE_ACT_ROWS];
                let (next, calls) = (self.next_task(first), acts.rows.div_ceil(TILE_ACT_ROWS));
                for c0 in (0..acts.rows).step_by(TILE_ACT_ROWS) {
                    let nc = (acts.rows - c0).min(TILE_ACT_ROWS);
                    kernel::prefetch_part(next, c0 / TILE_ACT_ROWS, calls);
                    isa.gemm_tiles(panel, acts, c0, nc, &mut block);
                    put(c0, &block[..nc]);
                }
            });
        })
    }

    /// `acts · Wᵀ` for few activation rows over repacked weights, straight from memory.
    fn gemv(&self, isa: Isa, acts: &Activations) -> Vec<f32> {
        self.by_tasks(acts.rows, |first, n, put| {
            let groups = self.groups(first, n).chunks_exact(GROUP * self.row_bytes);
            let mut block = [[0.0; PANEL_ROWS]; kernel::GEMV_ROWS];
            let step = isa.gemv_rows();
            for c0 in (0..acts.rows).step_by(step) {
                let nc = (acts.rows - c0).min(step);
                for (g, src) in groups.clone().enumerate() {
                    let (format, cols) = (self.format, self.cols);
                    isa.gemv_packed(format, src, cols, acts, c0, nc, &mut block, GROUP * g);
                }
                put(c0, &block[..nc]);
            }
        })
    }

    /// The bytes of the task after the one from row `first` (empty after the last): rows in
    /// file order and repacked groups alike lie in row order.
    fn next_task(&self, first: usize) -> &[u8] {
        let at = ((first + TASK_ROWS) * self.row_bytes).min(self.data.len());
        let len = (TASK_ROWS * self.row_bytes).min(self.data.len() - at);
        &self.data[at..at + len]
    }

    /// Runs `task(first, n, put)` in parallel for every 32 weight rows `first..first + n`
    /// into a `[m, rows]` output, where `put(c0, block)` stores a kernel's results for
    /// activation rows `c0..c0 + block.len()`.
    fn by_tasks<F>(&self, m: usize, task: F) -> Vec<f32>
    where
        F: Fn(usize, usize, &mut dyn FnMut(usize, &[[f32; PANEL_ROWS]])) + Sync,
    {
        layout::by_row_tasks(self.rows, m, TASK_ROWS, |first, n, columns| {
            let mut put = |c0: usize, block: &[[f32; PANEL_ROWS]]| {
                for (c, vals) in block.iter().enumerate() {
                    columns.row(c0 + c).copy_from_slice(&vals[..n]);
                }
            };
            task(first, n, &mut put);
        })
    }
}

/// Quantizes `m` rows of `cols` activations, one scale per `block` values, in parallel when
/// there are many.
fn quantize(isa: Isa, x: &[f32], m: usize, cols: usize, block: usize) -> Activations {
    let mut acts = Activations::default();
    let kp = padded(cols);
    acts.resize(m, kp);
    if m >= 16 {
        x.par_chunks_exact(cols)
            .zip(acts.q.par_chunks_exact_mut(kp))
            .zip(acts.d.par_chunks_exact_mut(kp / format::QK))
            .zip(acts.s.par_chunks_exact_mut(kp / 16))
            .for_each(|(((x, q), d), s)| isa.quantize(x, block, q, d, s));
    } else {
        let q = acts.q.chunks_exact_mut(kp);
        let d = acts.d.chunks_exact_mut(kp / format::QK);
        let s = acts.s.chunks_exact_mut(kp / 16);
        for (((x, q), d), s) in x.chunks_exact(cols).zip(q).zip(d).zip(s) {
            isa.quantize(x, block, q, d, s);
        }
    }
    acts.sum_pairs();
    acts
}

#[cfg(test)]
mod tests;
