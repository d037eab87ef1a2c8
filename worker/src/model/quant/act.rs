//! Activations quantized to 8 bits per 32 values (llama.cpp's `Q8_1`) or, for the K formats,
//! per 256 (its `Q8_K`), for the int8 kernels.

use crate::model::quant::format::QK;
use crate::model::quant::tile_panel::{at_residue, with_slack};

/// `rows` rows of `cols` activations, each padded with zeros to `padded` values.
#[derive(Debug, Default)]
pub struct Activations {
    /// Values per row as stored (a multiple of 64).
    pub padded: usize,
    /// Rows.
    pub rows: usize,
    /// `q` per value, row-major.
    pub q: Vec<i8>,
    /// Scale `d` per 32 values (the same for every 32 of a 256-value block of a K format).
    pub d: Vec<f32>,
    /// `d·Σq` per 16 values: what a weight offset `b` multiplies.
    pub s: Vec<f32>,
    /// `d·Σq` per 32 values (for formats whose offsets span 32).
    pub t: Vec<f32>,
    /// Per 16 rows, per 64 values, the 16 rows' values one after another: a tile's rows 64
    /// bytes apart, not a whole row apart, which at 4 KiB strides all fall in one set of the
    /// L1 cache ([`Self::for_tiles`]).
    pub tq: Vec<i8>,
    /// Where the values in `tq` start ([`at_residue`]).
    pub tq_at: usize,
    /// Per 16 rows, `d` per 32 values, the 16 rows' side by side.
    pub td: Vec<f32>,
    /// `o·Σq` per 16 values, `o` a weight offset ([`Self::int_sums`]).
    pub si: Vec<i32>,
    /// Whether `q` holds each value plus 128 as an unsigned byte ([`Self::to_unsigned`]).
    pub unsigned: bool,
}

impl Activations {
    /// Space for `rows` rows of `padded` values.
    pub fn resize(&mut self, rows: usize, padded: usize) {
        self.rows = rows;
        self.padded = padded;
        self.q.resize(rows * padded, 0);
        self.d.resize(rows * padded / QK, 0.0);
        self.s.resize(rows * padded / 16, 0.0);
        self.t.resize(rows * padded / QK, 0.0);
    }

    /// Lays the rows out for kernels that take 16 rows at once (AMX tiles), in `tq` and `td`,
    /// with zero rows past `rows` up to a multiple of 16.
    pub fn for_tiles(&mut self) {
        let (blocks, per) = (self.rows.div_ceil(16), self.padded / QK);
        self.tq.clear();
        self.tq
            .resize(with_slack::<i8>(blocks * 16 * self.padded), 0);
        self.tq_at = at_residue(&self.tq);
        for (r, row) in self.q.chunks_exact(self.padded).take(self.rows).enumerate() {
            let block = &mut self.tq[self.tq_at + r / 16 * 16 * self.padded..];
            for (j, vals) in row.chunks_exact(64).enumerate() {
                let at = (j * 16 + r % 16) * 64;
                block[at..at + 64].copy_from_slice(vals);
            }
        }
        self.td.clear();
        self.td.resize(blocks * per * 16, 0.0);
        for (r, row) in self.d.chunks_exact(per).take(self.rows).enumerate() {
            let block = &mut self.td[r / 16 * per * 16..];
            for (i, v) in row.iter().enumerate() {
                block[i * 16 + r % 16] = *v;
            }
        }
    }

    /// Fills `si` with `offset` times the integer sum of every 16 values, for kernels that take
    /// a weight offset in integers: what the offset takes from a span's sum, ready to
    /// broadcast from memory (a product and a move from a general register less per span and
    /// row).
    pub fn int_sums(&mut self, offset: i32) {
        self.si.clear();
        let used = self.rows * self.padded;
        let sums = self.q[..used].chunks_exact(16);
        self.si
            .extend(sums.map(|v| offset * v.iter().map(|&q| i32::from(q)).sum::<i32>()));
    }

    /// Adds 128 to every value of `q`, to be read as unsigned bytes: the operand `vpdpbusd`
    /// takes unsigned, for kernels whose weights are the signed one (Q6_K's integer GEMM).
    pub fn to_unsigned(&mut self) {
        assert!(!self.unsigned, "values already unsigned");
        for q in &mut self.q {
            *q ^= i8::MIN;
        }
        self.unsigned = true;
    }

    /// Whether [`Self::int_sums`] filled the sums of every row.
    pub fn has_int_sums(&self) -> bool {
        self.si.len() == self.rows * self.padded / 16
    }

    /// The offset sums of row `r`, one per 16 values ([`Self::int_sums`]).
    pub fn row_int_sums(&self, r: usize) -> &[i32] {
        let n = self.padded / 16;
        &self.si[r * n..(r + 1) * n]
    }

    /// Fills `t` from `s`.
    pub fn sum_pairs(&mut self) {
        for (t, s) in self.t.iter_mut().zip(self.s.chunks_exact(2)) {
            *t = s[0] + s[1];
        }
    }

    /// The sums of row `r`, one per 32 values.
    pub fn row_t(&self, r: usize) -> &[f32] {
        let n = self.padded / QK;
        &self.t[r * n..(r + 1) * n]
    }

    /// The quantized values of row `r`.
    pub fn row_q(&self, r: usize) -> &[i8] {
        &self.q[r * self.padded..(r + 1) * self.padded]
    }

    /// The scales of row `r`, one per 32 values.
    pub fn row_d(&self, r: usize) -> &[f32] {
        let n = self.padded / QK;
        &self.d[r * n..(r + 1) * n]
    }

    /// The sums of row `r`, one per 16 values.
    pub fn row_s(&self, r: usize) -> &[f32] {
        let n = self.padded / 16;
        &self.s[r * n..(r + 1) * n]
    }

    /// Where rows `c0..c0 + N` start, for the SIMD kernels: values, scales, and the sums
    /// over `span` (16 or 32) values that a weight offset of that span multiplies. Inlined:
    /// called out of line, the kernels lost track of these pointers and decode ran at half
    /// speed (AVX2, 1.1B Q4_1: 13.1 against 22.6 tok/s).
    #[inline(always)]
    pub fn rows_at<const N: usize>(&self, c0: usize, span: usize) -> Rows<N> {
        Rows {
            q: std::array::from_fn(|c| self.row_q(c0 + c).as_ptr()),
            d: std::array::from_fn(|c| self.row_d(c0 + c).as_ptr()),
            s: std::array::from_fn(|c| {
                if span == 16 {
                    self.row_s(c0 + c).as_ptr()
                } else {
                    self.row_t(c0 + c).as_ptr()
                }
            }),
        }
    }
}

/// The starts of `N` activation rows ([`Activations::rows_at`]).
pub struct Rows<const N: usize> {
    /// Quantized values.
    pub q: [*const i8; N],
    /// Scales, one per 32 values.
    pub d: [*const f32; N],
    /// Sums, one per scale span.
    pub s: [*const f32; N],
}

/// Quantizes one row of `x` (a multiple of 32 values) into `q`, `d` and `s`, which may be longer
/// (padding): what lies past `x` is zeroed. One scale covers `block` values (32, or 256 for the
/// K formats, as llama.cpp's `Q8_K`: their integer sub-block scales then add up in integers),
/// and `d` holds it once per 32 values either way, so every kernel reads it the same.
#[inline(always)]
pub fn quantize_row(x: &[f32], block: usize, q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
    for (b, xb) in x.chunks(block).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let di = amax / 127.0;
        let id = if di > 0.0 { 1.0 / di } else { 0.0 };
        for (j, xs) in xb.chunks_exact(QK).enumerate() {
            let i = b * (block / QK) + j;
            let qb = &mut q[i * QK..(i + 1) * QK];
            for (o, v) in qb.iter_mut().zip(xs) {
                // Ties to even, as the SIMD conversions round.
                *o = (v * id).round_ties_even() as i8;
            }
            d[i] = di;
            for h in 0..2 {
                let sum: i32 = qb[16 * h..16 * h + 16].iter().map(|&v| i32::from(v)).sum();
                s[2 * i + h] = di * sum as f32;
            }
        }
    }
    let used = x.len();
    q[used..].fill(0);
    d[used / QK..].fill(0.0);
    s[used / 16..].fill(0.0);
}

/// `n` rounded up to a multiple of 64, the width the kernels step by.
pub fn padded(n: usize) -> usize {
    n.div_ceil(64) * 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_values_are_the_signed_ones_plus_128() {
        let mut acts = Activations::default();
        acts.resize(1, 64);
        let x: Vec<f32> = (0..64).map(|i| i as f32 - 31.5).collect();
        let (q, d, s) = (&mut acts.q, &mut acts.d, &mut acts.s);
        quantize_row(&x, QK, q, d, s);
        let signed = acts.q.clone();
        assert!(signed.iter().any(|&v| v < 0) && signed.iter().any(|&v| v > 0));
        acts.to_unsigned();
        assert!(acts.unsigned);
        for (&u, &v) in acts.q.iter().zip(&signed) {
            assert_eq!(i32::from(u as u8), i32::from(v) + 128);
        }
    }

    /// One scale per block: each 32 of a 256-value block holds the block's scale, set by the
    /// block's largest value, and every value is within half a step of its original.
    #[test]
    fn a_block_of_256_shares_one_scale() {
        let x: Vec<f32> = (0..512)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
            .collect();
        let (mut q, mut d, mut s) = (vec![0i8; 576], vec![0f32; 18], vec![0f32; 36]);
        quantize_row(&x, 256, &mut q, &mut d, &mut s);
        for (b, xb) in x.chunks(256).enumerate() {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let ds = &d[8 * b..8 * b + 8];
            assert!(ds.iter().all(|&v| v == amax / 127.0), "block {b}: {ds:?}");
            for (i, &v) in xb.iter().enumerate() {
                let got = f32::from(q[256 * b + i]) * ds[0];
                assert!(
                    (got - v).abs() <= 0.5 * ds[0] + 1e-7,
                    "value {i} of block {b}"
                );
            }
        }
        for (i, &si) in s.iter().take(32).enumerate() {
            let sum: i32 = q[16 * i..16 * i + 16].iter().map(|&v| i32::from(v)).sum();
            assert_eq!(si, d[i / 2] * sum as f32);
        }
        // Padding past the row is zero.
        assert!(q[512..].iter().all(|&v| v == 0) && d[16..] == [0.0; 2]);
    }
}
