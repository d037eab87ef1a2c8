//! The instruction sets the int8 kernels are built for, chosen at run time.
//!
//! Every kernel is compiled into every x86-64 binary behind `#[target_feature]` and picked by
//! what the CPU reports when the worker starts, so a binary built on one machine runs, with the
//! best kernels it can, on another. `ARENA_KERNELS=scalar|avx2|avxvnni|avx512|amx` forces a
//! lower level (benchmarks, tests); a level the CPU lacks is never used. The `avxvnni` level
//! runs the AVX2 kernels over repacked weights with `vpdpbusd` (AVX-VNNI, on CPUs such as
//! Intel's Alder Lake without AVX-512) for their `maddubs` steps. The `amx` level multiplies
//! 16-bit weights on AMX BF16 tiles and Q6_K prefill on AMX int8 tiles ([`Isa::gemm_tiles`]);
//! the rest runs the AVX-512 VNNI kernels.

use crate::model::quant::act::Activations;
use crate::model::quant::format::Format;
use crate::model::quant::packed::GROUP;
use crate::model::quant::panel::{Panel, PANEL_ROWS};
use crate::model::quant::tile::{Tile, TILE_ROWS};
#[cfg(target_arch = "x86_64")]
use crate::model::quant::tile_panel::TilePanel;

#[cfg(target_arch = "x86_64")]
/// Runs `$body` with `$u` the unpacker of `$format`: the types `Q40`, `Q41`, `Q80`, `K4` and
/// `Q6` where it is used (the repacked kernels of each level).
macro_rules! by_format {
    ($format:expr, $u:ident => $body:expr) => {
        match $format {
            Format::Q4_0 => {
                type $u = Q40;
                $body
            }
            Format::Q4_1 => {
                type $u = Q41;
                $body
            }
            Format::Q8_0 => {
                type $u = Q80;
                $body
            }
            Format::Q4K => {
                type $u = K4<false>;
                $body
            }
            Format::Q5K => {
                type $u = K4<true>;
                $body
            }
            Format::Q6K => {
                type $u = Q6;
                $body
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod amx_fill;
#[cfg(target_arch = "x86_64")]
pub use amx::{RowsBlock, ROWS as TILE_ACT_ROWS};
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
pub(crate) use avx2::hsum;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
pub use avx512::transpose_words;
#[cfg(target_arch = "x86_64")]
mod fused;
#[cfg(target_arch = "x86_64")]
mod gemm;
#[cfg(target_arch = "x86_64")]
mod gemm_avx2;
mod level;
pub use level::Isa;
use level::Level;
#[cfg(target_arch = "x86_64")]
mod mul_avx2;
#[cfg(target_arch = "x86_64")]
mod packed;
#[cfg(target_arch = "x86_64")]
mod packed_avx2;
mod prefetch;
#[cfg(target_arch = "x86_64")]
pub(crate) use prefetch::prefetch_l2;
pub(crate) use prefetch::prefetch_part;
#[cfg(target_arch = "x86_64")]
mod regs;
mod scalar;
#[cfg(target_arch = "x86_64")]
mod tiles;
#[cfg(target_arch = "x86_64")]
pub use tiles::TileConfig;
#[cfg(target_arch = "x86_64")]
mod unpack;
#[cfg(target_arch = "x86_64")]
mod unpack_avx2;

/// Activation rows per microkernel call, at most.
pub const COLS: usize = 4;

/// Values per K super-block, which shares one weight scale `d` and one activation scale
/// (the K formats' activations are quantized per 256 values, as llama.cpp's `Q8_K`).
#[cfg(target_arch = "x86_64")]
const SUPER: usize = 256;

/// Results of one microkernel call: `[weight row][activation row]`.
pub type Block = [[f32; COLS]; TILE_ROWS];

/// Results of one GEMM call: `[activation row][panel row]`.
pub type PanelBlock = [[f32; PANEL_ROWS]; COLS];

/// What Q6_K's 6-bit values carry above the signed weight (`w = d·sc·(q − 32)`).
pub const Q6K_OFFSET: i32 = 32;

/// Most activation rows of one [`Isa::gemv_packed`] call.
pub const GEMV_ROWS: usize = 8;

impl Isa {
    /// Unpacks `n` weight rows into `tile` in the form this level multiplies.
    pub fn fill(self, tile: &mut Tile, format: Format, data: &[u8], n: usize, cols: usize) {
        let padded = crate::model::quant::act::padded(cols);
        match self.0 {
            Level::Scalar => tile.fill(format, data, n, cols, padded, false),
            // SAFETY: an `Isa` above scalar exists only where detection found its features, and
            // AVX-512 levels have AVX2 (their steps take the fused kernel or the panel GEMM, so
            // they reach tiles only when called directly).
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 | Level::AvxVnni | Level::Avx512Vnni | Level::Amx => unsafe {
                avx2::fill(tile, format, data, n, cols, padded)
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => tile.fill(format, data, n, cols, padded, false),
        }
    }

    /// Quantizes one activation row (see [`crate::model::quant::act::quantize_row`]).
    pub fn quantize(self, x: &[f32], block: usize, q: &mut [i8], d: &mut [f32], s: &mut [f32]) {
        use crate::model::quant::act::quantize_row;
        match self.0 {
            Level::Scalar => quantize_row(x, block, q, d, s),
            // SAFETY: an `Isa` above scalar exists only where detection found its features.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 | Level::AvxVnni => unsafe { avx2::quantize(x, block, q, d, s) },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx512Vnni | Level::Amx => unsafe { avx512::quantize(x, block, q, d, s) },
            #[cfg(not(target_arch = "x86_64"))]
            _ => quantize_row(x, block, q, d, s),
        }
    }

    /// Dots tile rows `r0..r0 + 4` with activation rows `c0..c0 + n` (`n ≤ 4`) into `out`.
    pub fn micro(
        self,
        tile: &Tile,
        r0: usize,
        acts: &Activations,
        c0: usize,
        n: usize,
        out: &mut Block,
    ) {
        assert!((1..=COLS).contains(&n) && c0 + n <= acts.rows && r0 + TILE_ROWS <= tile.rows);
        assert_eq!(tile.padded, acts.padded);
        match self.0 {
            Level::Scalar => scalar::micro(tile, r0, acts, c0, n, out),
            // SAFETY: features detected (see `fill`); the assertions above keep every row the
            // kernel reads inside the tile and the activations.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 | Level::AvxVnni | Level::Avx512Vnni | Level::Amx => unsafe {
                avx2::micro(tile, r0, acts, c0, n, out)
            },
            #[cfg(not(target_arch = "x86_64"))]
            _ => scalar::micro(tile, r0, acts, c0, n, out),
        }
    }
}

impl Isa {
    /// Weight rows (`data`: whole rows of `row_bytes` GGUF bytes each) times every activation
    /// row into `out`, `[weight row][activation row]`, with the fused kernel; `false` (nothing
    /// done) on levels without one.
    pub fn fused(
        self,
        format: Format,
        data: &[u8],
        row_bytes: usize,
        acts: &Activations,
        out: &mut [f32],
    ) -> bool {
        let (bytes, values) = (format.block_bytes(), format.block_values());
        assert!(row_bytes > 0 && row_bytes.is_multiple_of(bytes));
        assert!(row_bytes / bytes * values <= acts.padded);
        assert!(data.len().is_multiple_of(row_bytes));
        assert_eq!(out.len(), data.len() / row_bytes * acts.rows);
        match self.0 {
            // SAFETY: an `Isa` above scalar exists only where detection found its features;
            // the assertions above keep the kernel's reads inside `data` and the activations.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 | Level::AvxVnni => unsafe {
                fused::rows_avx2(format, data, row_bytes, acts, out)
            },
            // SAFETY: as above (AVX-512 VNNI implies the VL form this kernel uses).
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx512Vnni | Level::Amx => unsafe {
                fused::rows_vnni(format, data, row_bytes, acts, out)
            },
            _ => return false,
        }
        true
    }
}

impl Isa {
    /// Unpacks `n` weight rows into `panel` for [`Isa::gemm`]; only on levels that have it.
    pub fn fill_panel(self, panel: &mut Panel, format: Format, data: &[u8], n: usize, cols: usize) {
        assert!(self.has_gemm());
        let padded = crate::model::quant::act::padded(cols);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `has_gemm` holds only where detection found AVX-512 F/BW/VNNI.
        #[allow(unsafe_code)]
        unsafe {
            avx512::fill_panel(panel, format, data, n, cols, padded)
        }
        #[cfg(not(target_arch = "x86_64"))]
        panel.fill(
            format,
            data,
            n,
            cols,
            padded,
            crate::model::quant::panel::transpose,
        );
    }

    /// Every panel row (of `format`'s weights) times activation rows `c0..c0 + n` (`n ≤ 4`)
    /// into `out`; on levels that pack, for panels filled from repacked rows, and on AVX-512
    /// for panels filled from file order too.
    pub fn gemm(
        self,
        panel: &Panel,
        format: Format,
        acts: &Activations,
        c0: usize,
        n: usize,
        out: &mut PanelBlock,
    ) {
        assert!(self.packs() && (self.has_gemm() || !panel.biased));
        assert!((1..=COLS).contains(&n) && c0 + n <= acts.rows);
        assert!(panel.groups >= 1 && panel.padded == acts.padded);
        match self.0 {
            // SAFETY: features detected (see `fill_panel`); the assertions above keep every
            // row the kernel reads inside the panel and the activations.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx512Vnni | Level::Amx => unsafe {
                assert_eq!(
                    panel.int_scales, acts.unsigned,
                    "Q6_K's GEMM: unsigned values"
                );
                gemm::gemm(panel, format, acts, c0, n, out)
            },
            // SAFETY: as above, with AVX2 and FMA detected.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 => unsafe {
                assert!(!acts.unsigned, "signed values");
                gemm_avx2::gemm::<mul_avx2::Maddubs>(panel, format, acts, c0, n, out)
            },
            // SAFETY: as above, with AVX-VNNI detected too (or emulated, in unit tests).
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::AvxVnni => unsafe {
                assert!(!acts.unsigned, "signed values");
                if mul_avx2::emulated() {
                    gemm_avx2::gemm::<mul_avx2::Emulated>(panel, format, acts, c0, n, out)
                } else {
                    gemm_avx2::gemm_vnni(panel, format, acts, c0, n, out)
                }
            },
            _ => unreachable!("packs checked"),
        }
    }
}

#[cfg(target_arch = "x86_64")]
impl Isa {
    /// Whether this level adds `format`'s offsets in integers, in decode and in prefill alike
    /// (Q6_K on the AVX-512 VNNI and AMX levels); its products then need
    /// [`Activations::int_sums`] (decode) or [`Activations::to_unsigned`] (the GEMM).
    pub fn int_offsets(self, format: Format) -> bool {
        self.has_gemm() && format == Format::Q6K
    }

    /// Whether this level multiplies `format`'s prefill on AMX int8 tiles ([`Isa::gemm_tiles`]):
    /// Q6_K, whose integer sub-block scales let a super-block add up on the tiles.
    pub fn tiles_for(self, format: Format) -> bool {
        self.has_amx() && format == Format::Q6K
    }

    /// Unpacks the rows of `src` (one or two repacked Q6_K groups) into `panel` for
    /// [`Isa::gemm_tiles`].
    pub fn fill_tiles(self, panel: &mut TilePanel, format: Format, src: &[u8], cols: usize) {
        assert!(self.tiles_for(format));
        let groups = Groups::new(format, src, cols);
        // SAFETY: the `amx` level has AVX-512 F/BW; `Groups::new` checked the groups are whole.
        #[allow(unsafe_code)]
        unsafe {
            amx_fill::fill(groups, panel)
        }
    }

    /// Every row of `panel` times activation rows `c0..c0 + n` (`n ≤ 64`, `c0` a multiple of
    /// 16) into `out` on AMX int8 tiles; `acts` laid out for them ([`Activations::for_tiles`]).
    pub fn gemm_tiles(
        self,
        panel: &TilePanel,
        acts: &Activations,
        c0: usize,
        n: usize,
        out: &mut RowsBlock,
    ) {
        assert!(self.has_amx() && (1..=TILE_ACT_ROWS).contains(&n) && c0 + n <= acts.rows);
        assert!(panel.groups >= 1 && panel.padded == acts.padded);
        let rows = c0 + n.next_multiple_of(16);
        assert!(c0.is_multiple_of(16) && acts.tq.len() >= acts.tq_at + rows * acts.padded);
        assert!(acts.td.len() >= rows * acts.padded / 32);
        // SAFETY: the `amx` level exists only where detection found AMX-INT8 granted by the
        // OS (and AVX-512); the assertions above keep every tile and scale read in bounds.
        #[allow(unsafe_code)]
        unsafe {
            amx::gemm(panel, acts, c0, n, out)
        }
    }
}

/// Where a kernel over repacked weights reads: `groups` groups of 16 rows, `group_bytes`
/// apart, `blocks` file blocks each.
#[derive(Clone, Copy)]
pub struct Groups {
    at: *const u8,
    groups: usize,
    group_bytes: usize,
    blocks: usize,
}

impl Groups {
    /// One or two whole repacked groups of `cols` weights per row in `src`.
    fn new(format: Format, src: &[u8], cols: usize) -> Groups {
        let row_bytes = format.row_bytes(cols).expect("whole blocks");
        let group_bytes = GROUP * row_bytes;
        assert!(!src.is_empty() && src.len().is_multiple_of(group_bytes));
        assert!(src.len() / group_bytes <= crate::model::quant::panel::GROUPS);
        Groups {
            at: src.as_ptr(),
            groups: src.len() / group_bytes,
            group_bytes,
            blocks: cols / format.block_values(),
        }
    }
}

impl Isa {
    /// The 16 rows of `src` (one repacked group of `cols` weights per row) times activation
    /// rows `c0..c0 + n` (`n ≤` [`Isa::gemv_rows`]) into `out[c][at..at + 16]` (`at` 0 or
    /// 16), bit for bit what [`Isa::gemm`] (or, for the formats it takes, [`Isa::gemm_tiles`])
    /// gives those rows; where [`Isa::int_offsets`] holds, `acts` needs
    /// [`Activations::int_sums`].
    #[allow(clippy::too_many_arguments)]
    pub fn gemv_packed(
        self,
        format: Format,
        src: &[u8],
        cols: usize,
        acts: &Activations,
        c0: usize,
        n: usize,
        out: &mut [[f32; PANEL_ROWS]],
        at: usize,
    ) {
        assert!(self.packs() && (1..=self.gemv_rows()).contains(&n) && c0 + n <= acts.rows);
        assert!(n <= out.len());
        assert!(acts.padded >= cols && (at == 0 || at == GROUP));
        let groups = Groups::new(format, src, cols);
        assert_eq!(groups.groups, 1);
        match self.0 {
            // SAFETY: this level exists only where detection found AVX-512 F/BW/VNNI;
            // `Groups::new` checked the groups are whole and the assertions above that the
            // activations hold every value the kernel reads.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx512Vnni | Level::Amx => unsafe {
                let int = self.int_offsets(format);
                assert!((!int || acts.has_int_sums()) && !acts.unsigned);
                packed::gemv(format, groups, acts, c0, n, out, at, int)
            },
            // SAFETY: as above, with AVX2, FMA and F16C detected.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 => unsafe {
                packed_avx2::gemv::<mul_avx2::Maddubs>(format, groups, acts, c0, n, out, at)
            },
            // SAFETY: as above, with AVX-VNNI detected too (or emulated, in unit tests).
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::AvxVnni => unsafe {
                if mul_avx2::emulated() {
                    packed_avx2::gemv::<mul_avx2::Emulated>(format, groups, acts, c0, n, out, at)
                } else {
                    packed_avx2::gemv_vnni(format, groups, acts, c0, n, out, at)
                }
            },
            _ => unreachable!("packs checked"),
        }
    }

    /// Unpacks the rows of `src` (one or two repacked groups) into `panel` for [`Isa::gemm`].
    pub fn fill_panel_packed(self, panel: &mut Panel, format: Format, src: &[u8], cols: usize) {
        assert!(self.packs());
        let groups = Groups::new(format, src, cols);
        let padded = crate::model::quant::act::padded(cols);
        match self.0 {
            // SAFETY: as `gemv_packed`; `padded` covers every block and is a multiple of 64.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx512Vnni | Level::Amx => unsafe {
                packed::fill_panel(format, groups, panel, padded, self.int_offsets(format))
            },
            // SAFETY: as above.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Level::Avx2 | Level::AvxVnni => unsafe {
                packed_avx2::fill_panel(format, groups, panel, padded)
            },
            _ => unreachable!("packs checked"),
        }
    }
}

/// `Σ b·s` over one weight row's offsets and one activation row's sums.
#[inline(always)]
fn offsets(b: &[f32], s: &[f32]) -> f32 {
    b.iter().zip(s).map(|(b, s)| b * s).sum()
}
