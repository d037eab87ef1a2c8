//! Weight rows interleaved for the GEMM kernel: four bytes of each of 16 rows side by side.
//!
//! One vector of a panel holds bytes `4k..4k + 4` of 16 weight rows, so one `vpdpbusd` with an
//! activation's four bytes broadcast advances 16 rows' dot products at once, and a scale
//! applies to a whole vector of rows: the float work per multiply-add falls by 16 against a
//! row-by-row kernel, which needs a horizontal sum and a scale per row.

use crate::model::quant::format::Format;

/// Weight rows per vector (16 lanes of 32 bits).
pub const LANES: usize = 16;

/// Vectors of rows a kernel call covers at most.
pub const GROUPS: usize = 2;

/// Weight rows a panel holds at most.
pub const PANEL_ROWS: usize = LANES * GROUPS;

/// Transposes a 16×16 block of words: word `at + j` of row `i` (rows `stride` words apart in
/// `src`) goes to `dst[16 j + i]`. The portable version of what [`Panel::fill`] takes.
pub fn transpose(src: &[u32], stride: usize, at: usize, dst: &mut [u32]) {
    for i in 0..LANES {
        for j in 0..LANES {
            dst[LANES * j + i] = src[i * stride + at + j];
        }
    }
}

/// Unpacked, interleaved weight rows (bytes offset to unsigned, as `vpdpbusd` wants, but for
/// Q6_K's on AVX-512: see [`Panel::int_scales`]).
#[derive(Debug, Default)]
pub struct Panel {
    /// Values per row as stored (a multiple of 64).
    pub padded: usize,
    /// Groups of [`LANES`] rows held (1 or 2).
    pub groups: usize,
    /// Whether bytes are `q + 128` ([`Panel::fill`], file order, for AVX-512 only) rather than
    /// the small unsigned values of repacked rows (at most 63; Q8_0's offset by 128 for
    /// AVX-512's `vpdpbusd`, signed for AVX2's sign trick).
    pub biased: bool,
    /// `[group][padded / 4][LANES]` words, each four weight bytes of one row.
    q: Vec<u32>,
    /// `[group][halves][LANES]` scales, one per 16 weights (`halves` ≥ `padded / 16`).
    a: Vec<f32>,
    /// `[group][halves][LANES]` offsets, one per 16 weights (the 128 folded in).
    b: Vec<f32>,
    /// Scales and offsets per row as stored: `padded / 16` rounded up to [`LANES`].
    halves: usize,
    /// Whether `ints` and `supers` hold integer scales: the K formats' on AVX2, Q6_K's on
    /// AVX-512 (repacked rows both; AVX-512 then leaves `a` and `b` unfilled, centres the
    /// bytes, `q − 32`, signed, and fills `corr`).
    pub int_scales: bool,
    /// `[group][halves][LANES]` integer sub-block scales, one per 16 weights: on AVX2 each
    /// twice in 16 bits so that `madd` multiplies a pair of 16-bit sums by it, on AVX-512 in
    /// 32 bits for `vpmulld`.
    ints: Vec<u32>,
    /// `[group][padded / 256][LANES]` super-block scales `d` of the K formats.
    supers: Vec<f32>,
    /// `[group][padded / 256][LANES]` per super-block what activations offset by 128 add
    /// to a row's integer sum, negated (Q6_K on AVX-512: `−128·Σ sc·Σq`, `q` centred).
    corr: Vec<i32>,
    /// One group's rows unpacked, row-major, before interleaving.
    row_q: Vec<u32>,
    row_a: Vec<f32>,
    row_b: Vec<f32>,
}

impl Panel {
    /// Unpacks the `n` (at most [`PANEL_ROWS`]) rows in `data`, `cols` weights each, pads rows
    /// to a whole group and columns to `padded` with zeros, and interleaves them with `t`.
    #[inline(always)]
    pub fn fill(
        &mut self,
        format: Format,
        data: &[u8],
        n: usize,
        cols: usize,
        padded: usize,
        t: impl Fn(&[u32], usize, usize, &mut [u32]),
    ) {
        assert!((1..=PANEL_ROWS).contains(&n) && padded >= cols);
        let groups = n.div_ceil(LANES);
        self.reset(groups, padded);
        self.biased = true;
        let (words, halves) = (padded / 4, self.halves);
        self.row_q.resize(LANES * words, 0);
        self.row_a.resize(LANES * halves, 0.0);
        self.row_b.resize(LANES * halves, 0.0);
        let row_bytes = data.len() / n;
        for g in 0..groups {
            for lane in 0..LANES {
                let r = g * LANES + lane;
                let q = bytes_mut(&mut self.row_q[lane * words..(lane + 1) * words]);
                let a = &mut self.row_a[lane * halves..(lane + 1) * halves];
                let b = &mut self.row_b[lane * halves..(lane + 1) * halves];
                let row = (r < n).then(|| &data[r * row_bytes..(r + 1) * row_bytes]);
                format.unpack_padded::<true>(row, cols, q, a, b);
            }
            let q = &mut self.q[g * LANES * words..(g + 1) * LANES * words];
            for k in (0..words).step_by(LANES) {
                t(
                    &self.row_q,
                    words,
                    k,
                    &mut q[k * LANES..(k + LANES) * LANES],
                );
            }
            let span = g * LANES * halves..(g + 1) * LANES * halves;
            for (src, dst) in [(&self.row_a, &mut self.a), (&self.row_b, &mut self.b)] {
                let (src, dst) = (words_of(src), words_of_mut(&mut dst[span.clone()]));
                for h in (0..halves).step_by(LANES) {
                    t(src, halves, h, &mut dst[h * LANES..(h + LANES) * LANES]);
                }
            }
        }
    }

    /// Sizes the panel for `groups` groups of rows of `padded` values (a multiple of 64);
    /// what it holds is left for the caller to overwrite.
    pub fn reset(&mut self, groups: usize, padded: usize) {
        assert!((1..=GROUPS).contains(&groups) && padded.is_multiple_of(64));
        let halves = (padded / 16).div_ceil(LANES) * LANES;
        self.padded = padded;
        self.groups = groups;
        self.biased = false;
        self.int_scales = false;
        self.halves = halves;
        self.q.resize(groups * LANES * padded / 4, 0);
        self.a.resize(groups * LANES * halves, 0.0);
        self.b.resize(groups * LANES * halves, 0.0);
    }

    /// Sizes the integer scales of a panel just [`Panel::reset`] for a K format, and marks
    /// them held; what they hold is left for the caller to overwrite.
    pub fn reset_ints(&mut self) {
        assert!(self.padded.is_multiple_of(256));
        self.int_scales = true;
        self.ints.resize(self.groups * LANES * self.halves, 0);
        self.supers
            .resize(self.groups * LANES * self.padded / 256, 0.0);
        self.corr.resize(self.groups * LANES * self.padded / 256, 0);
    }

    /// Integer scales of group `g`, `[padded / 16][LANES]` (and padding).
    pub fn group_ints(&self, g: usize) -> &[u32] {
        let n = LANES * self.halves;
        &self.ints[g * n..(g + 1) * n]
    }

    /// Super-block scales of group `g`, `[padded / 256][LANES]`.
    pub fn group_supers(&self, g: usize) -> &[f32] {
        let n = LANES * self.padded / 256;
        &self.supers[g * n..(g + 1) * n]
    }

    /// Super-block corrections of group `g`, `[padded / 256][LANES]` (see `Panel::corr`).
    pub fn group_corr(&self, g: usize) -> &[i32] {
        let n = LANES * self.padded / 256;
        &self.corr[g * n..(g + 1) * n]
    }

    /// Bytes, scales, offsets and (after [`Panel::reset_ints`], else empty) integer and
    /// super-block scales and corrections of group `g`, to write.
    pub fn group_mut(&mut self, g: usize) -> GroupMut<'_> {
        let (nq, nh) = (LANES * self.padded / 4, LANES * self.halves);
        let (ni, ns) = if self.int_scales {
            (nh, LANES * self.padded / 256)
        } else {
            (0, 0)
        };
        GroupMut {
            q: &mut self.q[g * nq..(g + 1) * nq],
            a: &mut self.a[g * nh..(g + 1) * nh],
            b: &mut self.b[g * nh..(g + 1) * nh],
            ints: &mut self.ints[g * ni..(g + 1) * ni],
            supers: &mut self.supers[g * ns..(g + 1) * ns],
            corr: &mut self.corr[g * ns..(g + 1) * ns],
        }
    }

    /// Bytes of group `g`, `[padded / 4][LANES][4]`.
    pub fn group_q(&self, g: usize) -> &[u32] {
        let n = LANES * self.padded / 4;
        &self.q[g * n..(g + 1) * n]
    }

    /// Scales of group `g`, `[padded / 16][LANES]` (and padding).
    pub fn group_a(&self, g: usize) -> &[f32] {
        let n = LANES * self.halves;
        &self.a[g * n..(g + 1) * n]
    }

    /// Offsets of group `g`, as [`Panel::group_a`].
    pub fn group_b(&self, g: usize) -> &[f32] {
        let n = LANES * self.halves;
        &self.b[g * n..(g + 1) * n]
    }
}

/// One group of a [`Panel`], to write ([`Panel::group_mut`]).
pub struct GroupMut<'a> {
    /// `[padded / 4][LANES]` words.
    pub q: &'a mut [u32],
    /// `[halves][LANES]` scales.
    pub a: &'a mut [f32],
    /// `[halves][LANES]` offsets.
    pub b: &'a mut [f32],
    /// `[halves][LANES]` integer scales (see `Panel::int_scales`), or empty.
    pub ints: &'a mut [u32],
    /// `[padded / 256][LANES]` super-block scales (see `Panel::int_scales`), or empty.
    pub supers: &'a mut [f32],
    /// `[padded / 256][LANES]` super-block corrections (see `Panel::corr`), or empty.
    pub corr: &'a mut [i32],
}

/// Words seen as the bytes they hold.
fn bytes_mut(w: &mut [u32]) -> &mut [i8] {
    // SAFETY: i8 has no alignment or validity requirement beyond u32's, and the view covers
    // exactly the words' bytes for the same borrow.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts_mut(w.as_mut_ptr().cast::<i8>(), w.len() * 4)
    }
}

/// Floats seen as their bits.
fn words_of(f: &[f32]) -> &[u32] {
    // SAFETY: f32 and u32 have the same size and alignment, and every bit pattern is valid
    // for both.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts(f.as_ptr().cast::<u32>(), f.len())
    }
}

/// Floats seen as their bits, writable.
fn words_of_mut(f: &mut [f32]) -> &mut [u32] {
    // SAFETY: as `words_of`.
    #[allow(unsafe_code)]
    unsafe {
        std::slice::from_raw_parts_mut(f.as_mut_ptr().cast::<u32>(), f.len())
    }
}
