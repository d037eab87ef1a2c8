//! Q6_K weight rows laid out for the AMX int8 tiles: each weight times its sub-block's integer
//! scale, so that a whole 256-value super-block adds up in integers on the tiles.
//!
//! A Q6_K weight is `d·sc·(q − 32)` with `sc` a signed byte per 16 weights and `q` 6 bits.
//! `p = sc·(q − 32)` needs 13 bits, more than a tile byte, so it is held as `p = 64·hi + lo`
//! with `hi` a signed byte and `lo` in `0..64`: two tile products per step, one per byte
//! plane, exact in 32-bit sums. Per super-block and row the float `d` is kept.

use crate::model::quant::panel::{GROUPS, LANES};

/// Values per super-block.
pub const SUPER: usize = 256;

/// Up to two groups of 16 weight rows, each in the layout of a panel (four bytes of each of
/// 16 rows side by side, the tiles' second operand), with the integer scales multiplied in.
#[derive(Debug, Default)]
pub struct TilePanel {
    /// Values per row (a multiple of 256).
    pub padded: usize,
    /// Groups of [`LANES`] rows held (1 or 2).
    pub groups: usize,
    /// `[group][padded / 4][LANES]` words of `hi` bytes.
    hi: Vec<u32>,
    /// `[group][padded / 4][LANES]` words of `lo` bytes.
    lo: Vec<u32>,
    /// `[group][padded / 256][LANES]` super-block scales `d`.
    d: Vec<f32>,
}

/// One group of a [`TilePanel`]: `[padded / 4][LANES]` words of each plane and
/// `[padded / 256][LANES]` scales.
pub struct TileGroup<T> {
    /// Words of `hi` bytes.
    pub hi: T,
    /// Words of `lo` bytes.
    pub lo: T,
}

impl TilePanel {
    /// Sizes the panel for `groups` groups of rows of `padded` values (a multiple of 256);
    /// what it holds is left for the caller to overwrite.
    pub fn reset(&mut self, groups: usize, padded: usize) {
        assert!((1..=GROUPS).contains(&groups) && padded.is_multiple_of(SUPER));
        self.padded = padded;
        self.groups = groups;
        self.hi.resize(groups * LANES * padded / 4, 0);
        self.lo.resize(groups * LANES * padded / 4, 0);
        self.d.resize(groups * LANES * padded / SUPER, 0.0);
    }

    /// Words of one group's plane.
    fn words(&self) -> usize {
        LANES * self.padded / 4
    }

    /// Scales of one group.
    fn scales(&self) -> usize {
        LANES * self.padded / SUPER
    }

    /// Group `g`'s planes and scales, to write.
    pub fn group_mut(&mut self, g: usize) -> (TileGroup<&mut [u32]>, &mut [f32]) {
        let (nq, nd) = (self.words(), self.scales());
        let planes = TileGroup {
            hi: &mut self.hi[g * nq..(g + 1) * nq],
            lo: &mut self.lo[g * nq..(g + 1) * nq],
        };
        (planes, &mut self.d[g * nd..(g + 1) * nd])
    }

    /// Group `g`'s planes and scales.
    pub fn group(&self, g: usize) -> (TileGroup<&[u32]>, &[f32]) {
        let (nq, nd) = (self.words(), self.scales());
        let planes = TileGroup {
            hi: &self.hi[g * nq..(g + 1) * nq],
            lo: &self.lo[g * nq..(g + 1) * nq],
        };
        (planes, &self.d[g * nd..(g + 1) * nd])
    }
}
