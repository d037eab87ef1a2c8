//! The portable microkernel: the reference the SIMD ones are tested against.

use super::{offsets, Block};
use crate::model::quant::act::Activations;
use crate::model::quant::tile::{Tile, TILE_ROWS};

/// Integer dot products per 16 values, scaled by `a·d`, plus the offsets.
pub fn micro(tile: &Tile, r0: usize, acts: &Activations, c0: usize, n: usize, out: &mut Block) {
    for (r, out) in out.iter_mut().enumerate().take(TILE_ROWS) {
        let (wq, wa, wb) = (tile.row_q(r0 + r), tile.row_a(r0 + r), tile.row_b(r0 + r));
        for (c, out) in out.iter_mut().enumerate().take(n) {
            let (xq, xd, xs) = (acts.row_q(c0 + c), acts.row_d(c0 + c), acts.row_s(c0 + c));
            let mut acc = 0f32;
            for (h, (w16, x16)) in wq.chunks_exact(16).zip(xq.chunks_exact(16)).enumerate() {
                let dot: i32 = w16
                    .iter()
                    .zip(x16)
                    .map(|(&w, &x)| i32::from(w) * i32::from(x))
                    .sum();
                acc += wa[h] * xd[h / 2] * dot as f32;
            }
            *out = acc + offsets(wb, xs);
        }
    }
}
