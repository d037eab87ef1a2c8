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
    /// Where `hi` and `lo` start in their buffers ([`at_residue`]).
    hi_at: usize,
    lo_at: usize,
}

/// Bytes into a 4 KiB page at which the AMX int8 kernel's operand tiles start: the
/// activations' and both weight planes' (their tile of sums sits at 0, `super::kernel`).
pub const TILE_RESIDUE: usize = 2048;

/// Bytes of a page, the period of the placement [`at_residue`] pins.
const PAGE: usize = 4096;

/// Elements of `T` to skip in `buf` so that what follows starts [`TILE_RESIDUE`] bytes into a
/// 4 KiB page (`buf` sized by [`with_slack`]). Where the kernel's operands fall relative to
/// each other in the cache varied with each process's address-space layout, and with it a
/// 7B-shaped Q6_K prefill's speed by 25% (docs/BENCHMARKS.md); pinned, it cannot.
pub fn at_residue<T>(buf: &[T]) -> usize {
    let addr = buf.as_ptr() as usize;
    (TILE_RESIDUE + PAGE - addr % PAGE) % PAGE / std::mem::size_of::<T>()
}

/// Elements of `T` a buffer needs to hold `n` of them from [`at_residue`] on.
pub fn with_slack<T>(n: usize) -> usize {
    n + PAGE / std::mem::size_of::<T>()
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
        let words = with_slack::<u32>(groups * LANES * padded / 4);
        self.hi.resize(words, 0);
        self.lo.resize(words, 0);
        self.d.resize(groups * LANES * padded / SUPER, 0.0);
        (self.hi_at, self.lo_at) = (at_residue(&self.hi), at_residue(&self.lo));
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
        let (h, l) = (self.hi_at, self.lo_at);
        let planes = TileGroup {
            hi: &mut self.hi[h + g * nq..h + (g + 1) * nq],
            lo: &mut self.lo[l + g * nq..l + (g + 1) * nq],
        };
        (planes, &mut self.d[g * nd..(g + 1) * nd])
    }

    /// Group `g`'s planes and scales.
    pub fn group(&self, g: usize) -> (TileGroup<&[u32]>, &[f32]) {
        let (nq, nd) = (self.words(), self.scales());
        let (h, l) = (self.hi_at, self.lo_at);
        let planes = TileGroup {
            hi: &self.hi[h + g * nq..h + (g + 1) * nq],
            lo: &self.lo[l + g * nq..l + (g + 1) * nq],
        };
        (planes, &self.d[g * nd..(g + 1) * nd])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The planes of every group, and the activations laid out for tiles, start
    /// [`TILE_RESIDUE`] bytes into a page wherever the allocator put their buffers.
    #[test]
    fn tile_operands_start_at_the_same_place_in_a_page() {
        let residue = |p: *const u8| p as usize % 4096;
        for padded in [256, 4096, 11008_usize.next_multiple_of(SUPER)] {
            let mut panel = TilePanel::default();
            for groups in [1, 2, 1] {
                panel.reset(groups, padded);
                for g in 0..groups {
                    let (planes, _) = panel.group(g);
                    assert_eq!(residue(planes.hi.as_ptr().cast()), TILE_RESIDUE);
                    assert_eq!(residue(planes.lo.as_ptr().cast()), TILE_RESIDUE);
                    assert_eq!(planes.hi.len(), LANES * padded / 4);
                }
            }
            let mut acts = crate::model::quant::act::Activations::default();
            for rows in [1, 17, 40] {
                acts.resize(rows, padded);
                acts.for_tiles();
                assert_eq!(residue(acts.tq[acts.tq_at..].as_ptr().cast()), TILE_RESIDUE);
                assert!(acts.tq.len() >= acts.tq_at + rows.next_multiple_of(16) * padded);
            }
        }
    }
}
