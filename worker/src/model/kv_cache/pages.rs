//! One layer's keys and values in host memory, in pages of [`PAGE`] positions.
//!
//! Keys are stored as attention reads them: per 16 positions, each head dimension of all 16
//! side by side, so a score vector of 16 keys is a stream of multiply-adds. The attention
//! kernel used to transpose every cached key this way on every step, which cost a decode step
//! about as much as its products. A sequence grows a page at a time, so growing never copies
//! what is stored (a contiguous buffer doubling past 2,048 positions copied every layer's keys
//! and values: 105 ms on one chat turn of a 135M model).
//!
//! On CPUs with AMX or AVX-512 BF16 the pages hold BF16 in the layouts `tdpbf16ps` reads
//! ([`PageFormat`]; `vdpbf16ps` reads them as they are), half the bytes of f32: a chat turn
//! reads the whole cache of every layer once per step.

/// Positions per page.
pub const PAGE: usize = 64;

/// Positions side by side in a key block.
pub const LANES: usize = 16;

/// Key blocks per page.
const BLOCKS: usize = PAGE / LANES;

/// Positions per value tile of [`PageFormat::Bf16Tiles`] (16 pairs).
pub const PAIRS: usize = 32;

/// Largest head [`PageFormat::Bf16Tiles`] holds: the AMX kernel keeps a query row's head in
/// at most four tile registers of 32 values.
const TILE_HEAD_MAX: usize = 128;

/// How a layer's pages hold keys and values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageFormat {
    /// f32; keys `[kv_heads][4 blocks][head_dim][16]`, values `[kv_heads][64][head_dim]`.
    F32,
    /// BF16 as AMX tiles: keys `[kv_heads][4 blocks][head_dim / 2][16][2]` (B tiles of 32
    /// head values by 16 positions), values `[kv_heads][2][head_dim / 16][16][16][2]` (B
    /// tiles of 32 positions, in pairs, by 16 head values).
    Bf16Tiles,
}

impl PageFormat {
    /// The format the best attention kernel of this CPU reads for heads of `head_dim`: BF16
    /// where AMX or AVX-512 BF16 multiplies it.
    pub fn best(head_dim: usize) -> PageFormat {
        let bf16 = crate::model::quant::Isa::best().has_avx512_bf16();
        if bf16 && Self::tiles_fit(head_dim) {
            PageFormat::Bf16Tiles
        } else {
            PageFormat::F32
        }
    }

    /// Whether heads of `head_dim` fit [`PageFormat::Bf16Tiles`]: whole tiles of 32 values.
    pub fn tiles_fit(head_dim: usize) -> bool {
        head_dim > 0 && head_dim.is_multiple_of(PAIRS) && head_dim <= TILE_HEAD_MAX
    }

    /// Where value `d` (of `hd`) of position `w` of a page goes: in its key block and in its
    /// head's values. In BF16 tiles a key sits in pair `d / 2` of its 16 positions, a value in
    /// tile `d / 16` of its 32 positions, position pair `w / 2`.
    #[inline]
    fn offsets(self, hd: usize, w: usize, d: usize) -> (usize, usize) {
        match self {
            PageFormat::F32 => (d * LANES + w % LANES, w * hd + d),
            PageFormat::Bf16Tiles => {
                let key = (d / 2 * LANES + w % LANES) * 2 + d % 2;
                let (c, pair) = (w / PAIRS, w % PAIRS / 2);
                let tile = ((d / LANES * LANES + pair) * LANES + d % LANES) * 2 + w % 2;
                (key, c * PAIRS * hd + tile)
            }
        }
    }

    /// Bytes per stored value.
    fn size(self) -> usize {
        match self {
            PageFormat::F32 => 4,
            PageFormat::Bf16Tiles => 2,
        }
    }
}

/// One page's keys or values.
#[derive(Debug, Clone)]
enum Data {
    F32(Box<[f32]>),
    Bf16(Box<[u16]>),
}

impl Data {
    fn new(format: PageFormat, n: usize) -> Data {
        match format {
            PageFormat::F32 => Data::F32(vec![0.0; n].into_boxed_slice()),
            PageFormat::Bf16Tiles => Data::Bf16(vec![0; n].into_boxed_slice()),
        }
    }

    fn f32s(&self) -> &[f32] {
        match self {
            Data::F32(d) => d,
            Data::Bf16(_) => panic!("f32 read of BF16 pages"),
        }
    }

    fn bf16s(&self) -> &[u16] {
        match self {
            Data::Bf16(d) => d,
            Data::F32(_) => panic!("BF16 read of f32 pages"),
        }
    }

    /// Value `i` as f32.
    fn get(&self, i: usize) -> f32 {
        match self {
            Data::F32(d) => d[i],
            Data::Bf16(d) => half::bf16::from_bits(d[i]).to_f32(),
        }
    }
}

#[derive(Debug, Clone)]
struct Page {
    keys: Data,
    values: Data,
}

/// One layer's keys and values of one sequence.
#[derive(Debug, Clone)]
pub struct HostLayer {
    kv_heads: usize,
    head_dim: usize,
    format: PageFormat,
    pages: Vec<Page>,
}

impl HostLayer {
    /// An empty layer for `kv_heads` heads of `head_dim` values, in this CPU's best format.
    pub fn new(kv_heads: usize, head_dim: usize) -> Self {
        Self::with_format(kv_heads, head_dim, PageFormat::best(head_dim))
    }

    /// An empty layer in `format` (which must fit the heads).
    pub fn with_format(kv_heads: usize, head_dim: usize, format: PageFormat) -> Self {
        assert!(format == PageFormat::F32 || PageFormat::tiles_fit(head_dim));
        Self {
            kv_heads,
            head_dim,
            format,
            pages: Vec::new(),
        }
    }

    /// How the pages hold keys and values.
    pub fn format(&self) -> PageFormat {
        self.format
    }

    /// Key/value heads.
    pub fn kv_heads(&self) -> usize {
        self.kv_heads
    }

    /// Values per head.
    pub fn head_dim(&self) -> usize {
        self.head_dim
    }

    /// Positions the allocated pages hold.
    pub fn capacity(&self) -> usize {
        self.pages.len() * PAGE
    }

    /// Writes `t` positions from `at` (pages before `at` are allocated): `k` and `v` are
    /// `[kv_heads][t][head_dim]`.
    pub fn write(&mut self, at: usize, k: &[f32], v: &[f32]) {
        let (kvh, hd) = (self.kv_heads, self.head_dim);
        let t = k.len() / (kvh * hd);
        assert!(k.len() == kvh * t * hd && v.len() == k.len() && at <= self.capacity());
        while self.capacity() < at + t {
            self.pages.push(Page {
                keys: Data::new(self.format, kvh * PAGE * hd),
                values: Data::new(self.format, kvh * PAGE * hd),
            });
        }
        let format = self.format;
        for h in 0..kvh {
            for i in 0..t {
                let (pos, src) = (at + i, (h * t + i) * hd);
                let page = &mut self.pages[pos / PAGE];
                let w = pos % PAGE;
                let (block, head) = ((h * BLOCKS + w / LANES) * hd * LANES, h * PAGE * hd);
                let (ks, vs) = (&k[src..src + hd], &v[src..src + hd]);
                match (&mut page.keys, &mut page.values) {
                    (Data::F32(keys), Data::F32(values)) => {
                        for (d, &x) in ks.iter().enumerate() {
                            keys[block + format.offsets(hd, w, d).0] = x;
                        }
                        // A position's values are one row here.
                        values[head + w * hd..][..hd].copy_from_slice(vs);
                    }
                    (Data::Bf16(keys), Data::Bf16(values)) => {
                        for (d, (&kx, &vx)) in ks.iter().zip(vs).enumerate() {
                            let (key, value) = format.offsets(hd, w, d);
                            keys[block + key] = half::bf16::from_f32(kx).to_bits();
                            values[head + value] = half::bf16::from_f32(vx).to_bits();
                        }
                    }
                    _ => unreachable!("a layer's pages all hold its format"),
                }
            }
        }
    }

    /// Head `h`'s keys of positions `16·b .. 16·b + 16`, `[head_dim][16]` (f32 pages).
    #[inline]
    pub fn key_block(&self, h: usize, b: usize) -> &[f32] {
        let n = self.head_dim * LANES;
        &self.pages[b / BLOCKS].keys.f32s()[(h * BLOCKS + b % BLOCKS) * n..][..n]
    }

    /// Head `h`'s values of page `p` (positions `PAGE·p ..`), `[PAGE][head_dim]` (f32 pages).
    #[inline]
    pub fn value_page(&self, h: usize, p: usize) -> &[f32] {
        let n = PAGE * self.head_dim;
        &self.pages[p].values.f32s()[h * n..][..n]
    }

    /// Head `h`'s keys of positions `16·b .. 16·b + 16` as `head_dim / 32` B tiles of 1 KiB
    /// (BF16 pages).
    #[inline]
    pub fn key_tiles(&self, h: usize, b: usize) -> &[u16] {
        let n = self.head_dim * LANES;
        &self.pages[b / BLOCKS].keys.bf16s()[(h * BLOCKS + b % BLOCKS) * n..][..n]
    }

    /// Head `h`'s keys and values of page `p` (BF16 pages): what a kernel reading the page
    /// before asks for in advance.
    #[inline]
    pub fn page_tiles(&self, h: usize, p: usize) -> (&[u16], &[u16]) {
        let (page, n) = (&self.pages[p], PAGE * self.head_dim);
        (
            &page.keys.bf16s()[h * n..][..n],
            &page.values.bf16s()[h * n..][..n],
        )
    }

    /// Head `h`'s values of positions `32·c .. 32·c + 32` as `head_dim / 16` B tiles of 1 KiB
    /// (BF16 pages).
    #[inline]
    pub fn value_tiles(&self, h: usize, c: usize) -> &[u16] {
        let n = PAIRS * self.head_dim;
        let halves = PAGE / PAIRS;
        let page = &self.pages[c / halves].values.bf16s();
        &page[(h * halves + c % halves) * n..][..n]
    }

    /// Head `h`'s key of position `pos` (for tests).
    pub fn key(&self, h: usize, pos: usize) -> Vec<f32> {
        let (page, w, hd) = (&self.pages[pos / PAGE], pos % PAGE, self.head_dim);
        let block = (h * BLOCKS + w / LANES) * hd * LANES;
        (0..hd)
            .map(|d| page.keys.get(block + self.format.offsets(hd, w, d).0))
            .collect()
    }

    /// Head `h`'s value of position `pos` (for tests).
    pub fn value(&self, h: usize, pos: usize) -> Vec<f32> {
        let (page, w, hd) = (&self.pages[pos / PAGE], pos % PAGE, self.head_dim);
        (0..hd)
            .map(|d| {
                page.values
                    .get(h * PAGE * hd + self.format.offsets(hd, w, d).1)
            })
            .collect()
    }

    /// Frees the pages past the first `len` positions.
    pub fn truncate(&mut self, len: usize) {
        self.pages.truncate(len.div_ceil(PAGE));
    }

    /// A copy of the pages that hold the first `len` positions.
    pub fn copy_prefix(&self, len: usize) -> HostLayer {
        HostLayer {
            kv_heads: self.kv_heads,
            head_dim: self.head_dim,
            format: self.format,
            pages: self.pages[..len.div_ceil(PAGE).min(self.pages.len())].to_vec(),
        }
    }

    /// Bytes of the allocated pages.
    pub fn bytes(&self) -> usize {
        self.pages.len() * 2 * self.kv_heads * PAGE * self.head_dim * self.format.size()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_as_written_across_pages() {
        // Heads of 3 in f32; of 32 in BF16, with values whose BF16 bits count up from
        // 0x3c00, so that every (head, position, value) is a distinct normal number.
        for (format, hd) in [(PageFormat::F32, 3), (PageFormat::Bf16Tiles, 32)] {
            let kvh = 2;
            let mut layer = HostLayer::with_format(kvh, hd, format);
            let val = |h: usize, p: usize, d: usize| match format {
                PageFormat::F32 => (h * 10_000 + p * 10 + d) as f32,
                PageFormat::Bf16Tiles => {
                    f32::from_bits((0x3c00 + ((h * 4 * PAGE + p) * hd + d) as u32) << 16)
                }
            };
            let chunk = |from: usize, t: usize, sign: f32| -> Vec<f32> {
                let mut out = Vec::new();
                for h in 0..kvh {
                    for p in from..from + t {
                        out.extend((0..hd).map(|d| sign * val(h, p, d)));
                    }
                }
                out
            };
            // A first chunk ending inside the second page, then one crossing into the fourth.
            for (from, t) in [(0, PAGE + 5), (PAGE + 5, 2 * PAGE + 1)] {
                layer.write(from, &chunk(from, t, 1.0), &chunk(from, t, -1.0));
            }
            assert_eq!(layer.capacity(), 4 * PAGE);
            for h in 0..kvh {
                for p in 0..3 * PAGE + 6 {
                    let want: Vec<f32> = (0..hd).map(|d| val(h, p, d)).collect();
                    assert_eq!(layer.key(h, p), want, "{format:?} key h {h} p {p}");
                    let neg: Vec<f32> = want.iter().map(|x| -x).collect();
                    assert_eq!(layer.value(h, p), neg, "{format:?} value h {h} p {p}");
                }
            }
            if format == PageFormat::Bf16Tiles {
                // The tiles as `tdpbf16ps` reads them: a key B tile's row k holds values
                // 2k, 2k + 1 of 16 positions in turn; a value B tile's row k holds positions
                // 2k, 2k + 1 of 16 head values in turn.
                let bits = |x: f32| half::bf16::from_f32(x).to_bits();
                let (h, p, d) = (1, 2 * PAGE + 37, 21);
                let keys = layer.key_tiles(h, p / LANES);
                assert_eq!(
                    keys[(d / 2 * LANES + p % LANES) * 2 + d % 2],
                    bits(val(h, p, d))
                );
                let values = layer.value_tiles(h, p / PAIRS);
                let (tile, pair) = (d / LANES, p % PAIRS / 2);
                let at = tile * PAIRS * LANES + (pair * LANES + d % LANES) * 2 + p % 2;
                assert_eq!(values[at], bits(-val(h, p, d)));
            }
            let copy = layer.copy_prefix(PAGE + 1);
            assert_eq!(
                (copy.capacity(), copy.key(1, PAGE)),
                (2 * PAGE, (0..hd).map(|d| val(1, PAGE, d)).collect())
            );
            layer.truncate(PAGE);
            assert_eq!(layer.capacity(), PAGE);
            assert_eq!(layer.bytes(), 2 * kvh * PAGE * hd * format.size());
        }
    }
}
