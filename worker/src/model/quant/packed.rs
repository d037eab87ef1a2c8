//! Weights repacked once at load for the AVX-512 VNNI kernels: 16 rows side by side per block.
//!
//! In GGUF each row's blocks follow one another, so a kernel reading one row at a time needs a
//! horizontal sum and a scale per row and block. Repacked, block `k` of 16 rows is one unit:
//! each field of the file block (scales, quantized bytes, ...) for the 16 rows, element by
//! element, `[element][row]`, scales first and quantized bytes four at a time. One 64-byte
//! load then holds four weights of all 16 rows, so a `vpdpbusd` with four activation bytes
//! broadcast advances 16 dot products, and one vector of scales applies to 16 rows. The
//! repacked bytes are the file's bytes in another order: the same size, nothing held twice.
//! Every format the kernels multiply has a layout.

use crate::model::quant::format::Format;

/// Rows per repacked group.
pub const GROUP: usize = 16;

/// Whether models are repacked at load: yes unless `ARENA_REPACK=off` (to measure the
/// difference; the kernels for file order stay tested either way).
pub fn enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var("ARENA_REPACK").map_or(true, |v| v.trim() != "off"))
}

/// Where field `f` of a repacked block starts.
pub fn field_at(format: Format, f: usize) -> usize {
    GROUP
        * fields(format)
            .iter()
            .take(f)
            .map(|&(start, _)| field_len(format, start))
            .sum::<usize>()
}

/// Bytes per file block of the field starting at `start`: up to the next field in the file.
fn field_len(format: Format, start: usize) -> usize {
    let next = fields(format)
        .iter()
        .map(|f| f.0)
        .filter(|&s| s > start)
        .min();
    next.unwrap_or(format.block_bytes()) - start
}

/// The fields of a file block as (first byte, bytes per element), in the order they are
/// stored: each field of the 16 rows element by element, `[element][row]`. Quantized bytes go
/// four at a time (one 32-bit lane per row), scales as they are. Scales come first, where a
/// kernel starts reading a block.
fn fields(format: Format) -> &'static [(usize, usize)] {
    match format {
        // Scale (f16), quantized bytes.
        Format::Q4_0 | Format::Q8_0 => &[(0, 2), (2, 4)],
        // Scale, minimum (f16), quantized bytes.
        Format::Q4_1 => &[(0, 2), (2, 2), (4, 4)],
        // d, dmin (f16), 12 bytes of 6-bit scales and minimums, nibbles.
        Format::Q4K => &[(0, 2), (2, 2), (4, 1), (16, 4)],
        // As Q4_K with 32 bytes of fifth bits before the nibbles.
        Format::Q5K => &[(0, 2), (2, 2), (4, 1), (16, 4), (48, 4)],
        // d (f16), 16 signed scales, low nibbles, high bit pairs.
        Format::Q6K => &[(208, 2), (192, 1), (0, 4), (128, 4)],
    }
}

/// Bytes of one repacked block of 16 rows (16 file blocks).
pub fn group_block(format: Format) -> usize {
    GROUP * format.block_bytes()
}

/// Calls `f(file, packed, n)` for each run of `n` bytes at `file` in block `lane` of a group
/// that lies at `packed` in the repacked block.
#[inline(always)]
fn runs(format: Format, lane: usize, mut f: impl FnMut(usize, usize, usize)) {
    for (i, &(start, size)) in fields(format).iter().enumerate() {
        let base = field_at(format, i);
        for e in 0..field_len(format, start) / size {
            f(
                start + e * size,
                base + GROUP * size * e + size * lane,
                size,
            );
        }
    }
}

/// Repacks 16 rows of `row_bytes` file bytes (`src`) into `dst`, the same size.
pub fn pack_group(format: Format, src: &[u8], row_bytes: usize, dst: &mut [u8]) {
    let bb = format.block_bytes();
    assert!(src.len() == GROUP * row_bytes && dst.len() == src.len());
    for (k, out) in dst.chunks_exact_mut(GROUP * bb).enumerate() {
        for lane in 0..GROUP {
            let blk = &src[lane * row_bytes + k * bb..][..bb];
            runs(format, lane, |from, to, n| {
                out[to..to + n].copy_from_slice(&blk[from..from + n]);
            });
        }
    }
}

/// The file bytes of row `lane` of a repacked group (`src`) into `row` (`row_bytes` long).
pub fn unpack_row(format: Format, src: &[u8], lane: usize, row: &mut [u8]) {
    let bb = format.block_bytes();
    assert!(lane < GROUP && src.len() == GROUP * row.len());
    for (blk, from) in row.chunks_exact_mut(bb).zip(src.chunks_exact(GROUP * bb)) {
        runs(format, lane, |to, at, n| {
            blk[to..to + n].copy_from_slice(&from[at..at + n]);
        });
    }
}

/// The file bytes of a whole repacked group (`src`) into `dst`, 16 rows of `row_bytes`.
pub fn unpack_group(format: Format, src: &[u8], row_bytes: usize, dst: &mut [u8]) {
    for (lane, row) in dst.chunks_exact_mut(row_bytes).enumerate() {
        unpack_row(format, src, lane, row);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct bytes everywhere, so any misplaced byte shows.
    fn rows(format: Format, blocks: usize) -> (Vec<u8>, usize) {
        let row_bytes = blocks * format.block_bytes();
        let src = (0..GROUP * row_bytes)
            .map(|i| (i * 7 + i / 251) as u8)
            .collect();
        (src, row_bytes)
    }

    #[test]
    fn repacking_moves_every_byte_and_is_undone_exactly() {
        for format in Format::ALL {
            let (src, row_bytes) = rows(format, 3);
            let mut packed = vec![0u8; src.len()];
            pack_group(format, &src, row_bytes, &mut packed);
            let mut back = vec![0u8; src.len()];
            unpack_group(format, &packed, row_bytes, &mut back);
            assert_eq!(back, src, "{format:?}");
            let mut row = vec![0u8; row_bytes];
            unpack_row(format, &packed, 5, &mut row);
            assert_eq!(row, src[5 * row_bytes..6 * row_bytes], "{format:?}");
        }
    }

    /// Block 1 of a group: the scales of the 16 rows, then (Q4_1) their minimums, then
    /// quantized bytes 4p..4p + 4 of rows 0..16 for each word `p`.
    #[test]
    fn a_repacked_block_is_scales_then_words_of_sixteen_rows() {
        let format = Format::Q4_1;
        let (src, row_bytes) = rows(format, 2);
        let mut packed = vec![0u8; src.len()];
        pack_group(format, &src, row_bytes, &mut packed);
        let blk = &packed[group_block(format)..];
        assert_eq!(field_at(format, 2), 64);
        let file = |lane: usize, i: usize| src[lane * row_bytes + 20 + i];
        for lane in 0..GROUP {
            assert_eq!(blk[2 * lane..2 * lane + 2], [file(lane, 0), file(lane, 1)]);
            assert_eq!(
                blk[32 + 2 * lane..34 + 2 * lane],
                [file(lane, 2), file(lane, 3)]
            );
            for p in 0..4 {
                let at = 64 + 64 * p + 4 * lane;
                let want: Vec<u8> = (0..4).map(|b| file(lane, 4 + 4 * p + b)).collect();
                assert_eq!(blk[at..at + 4], want[..], "lane {lane} word {p}");
            }
        }
    }
}
