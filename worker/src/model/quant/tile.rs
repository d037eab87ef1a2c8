//! A few weight rows unpacked for the microkernels: a byte per weight, a scale and an offset
//! per 16 weights, rows and columns padded with zeros to the kernels' steps.

use crate::model::quant::format::Format;

/// Weight rows per microkernel call; a tile holds a multiple of it.
pub const TILE_ROWS: usize = 4;

/// Unpacked weight rows.
#[derive(Debug, Default)]
pub struct Tile {
    /// Values per row as stored (a multiple of 64).
    pub padded: usize,
    /// Rows held, a multiple of [`TILE_ROWS`].
    pub rows: usize,
    /// A byte per weight: signed, or offset by 128 for kernels that multiply unsigned bytes.
    pub q: Vec<i8>,
    /// Scale per 16 weights.
    pub a: Vec<f32>,
    /// Offset per 16 weights (with the 128 folded in for unsigned bytes).
    pub b: Vec<f32>,
}

impl Tile {
    /// Unpacks the `n` rows in `data` (`cols` weights each) and pads them.
    #[inline(always)]
    pub fn fill(
        &mut self,
        format: Format,
        data: &[u8],
        n: usize,
        cols: usize,
        padded: usize,
        unsigned: bool,
    ) {
        let rows = n.div_ceil(TILE_ROWS) * TILE_ROWS;
        let halves = padded / 16;
        self.rows = rows;
        self.padded = padded;
        self.q.resize(rows * padded, 0);
        self.a.resize(rows * halves, 0.0);
        self.b.resize(rows * halves, 0.0);
        let row_bytes = data.len() / n.max(1);
        for r in 0..rows {
            let q = &mut self.q[r * padded..(r + 1) * padded];
            let a = &mut self.a[r * halves..(r + 1) * halves];
            let b = &mut self.b[r * halves..(r + 1) * halves];
            let row = (r < n).then(|| &data[r * row_bytes..(r + 1) * row_bytes]);
            if unsigned {
                format.unpack_padded::<true>(row, cols, q, a, b);
            } else {
                format.unpack_padded::<false>(row, cols, q, a, b);
            }
        }
    }

    /// Weight bytes of row `r`.
    pub fn row_q(&self, r: usize) -> &[i8] {
        &self.q[r * self.padded..(r + 1) * self.padded]
    }

    /// Scales of row `r`, one per 16 weights.
    pub fn row_a(&self, r: usize) -> &[f32] {
        let n = self.padded / 16;
        &self.a[r * n..(r + 1) * n]
    }

    /// Offsets of row `r`, one per 16 weights.
    pub fn row_b(&self, r: usize) -> &[f32] {
        let n = self.padded / 16;
        &self.b[r * n..(r + 1) * n]
    }
}
