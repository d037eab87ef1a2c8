//! One layer's keys and values in host memory, in pages of [`PAGE`] positions.
//!
//! Keys are stored as attention reads them: per 16 positions, each head dimension of all 16
//! side by side, so a score vector of 16 keys is a stream of multiply-adds. The attention
//! kernel used to transpose every cached key this way on every step, which cost a decode step
//! about as much as its products. A sequence grows a page at a time, so growing never copies
//! what is stored (a contiguous buffer doubling past 2,048 positions copied every layer's keys
//! and values: 105 ms on one chat turn of a 135M model).

/// Positions per page.
pub const PAGE: usize = 64;

/// Positions side by side in a key block.
pub const LANES: usize = 16;

/// Key blocks per page.
const BLOCKS: usize = PAGE / LANES;

#[derive(Debug, Clone)]
struct Page {
    /// `[kv_heads][BLOCKS][head_dim][LANES]`.
    keys: Box<[f32]>,
    /// `[kv_heads][PAGE][head_dim]`.
    values: Box<[f32]>,
}

/// One layer's keys and values of one sequence.
#[derive(Debug, Clone)]
pub struct HostLayer {
    kv_heads: usize,
    head_dim: usize,
    pages: Vec<Page>,
}

impl HostLayer {
    /// An empty layer for `kv_heads` heads of `head_dim` values.
    pub fn new(kv_heads: usize, head_dim: usize) -> Self {
        Self {
            kv_heads,
            head_dim,
            pages: Vec::new(),
        }
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
                keys: vec![0.0; kvh * PAGE * hd].into_boxed_slice(),
                values: vec![0.0; kvh * PAGE * hd].into_boxed_slice(),
            });
        }
        for h in 0..kvh {
            for i in 0..t {
                let (pos, src) = (at + i, (h * t + i) * hd);
                let page = &mut self.pages[pos / PAGE];
                let w = pos % PAGE;
                let block = &mut page.keys[(h * BLOCKS + w / LANES) * hd * LANES..][..hd * LANES];
                for (d, &x) in k[src..src + hd].iter().enumerate() {
                    block[d * LANES + w % LANES] = x;
                }
                page.values[(h * PAGE + w) * hd..][..hd].copy_from_slice(&v[src..src + hd]);
            }
        }
    }

    /// Head `h`'s keys of positions `16·b .. 16·b + 16`, `[head_dim][16]`.
    #[inline]
    pub fn key_block(&self, h: usize, b: usize) -> &[f32] {
        let n = self.head_dim * LANES;
        &self.pages[b / BLOCKS].keys[(h * BLOCKS + b % BLOCKS) * n..][..n]
    }

    /// Head `h`'s values of page `p` (positions `PAGE·p ..`), `[PAGE][head_dim]`.
    #[inline]
    pub fn value_page(&self, h: usize, p: usize) -> &[f32] {
        let n = PAGE * self.head_dim;
        &self.pages[p].values[h * n..][..n]
    }

    /// Head `h`'s key of position `pos`, gathered from its block (for tests).
    pub fn key(&self, h: usize, pos: usize) -> Vec<f32> {
        let block = self.key_block(h, pos / LANES);
        (0..self.head_dim)
            .map(|d| block[d * LANES + pos % LANES])
            .collect()
    }

    /// Head `h`'s value of position `pos`.
    pub fn value(&self, h: usize, pos: usize) -> &[f32] {
        &self.value_page(h, pos / PAGE)[(pos % PAGE) * self.head_dim..][..self.head_dim]
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
            pages: self.pages[..len.div_ceil(PAGE).min(self.pages.len())].to_vec(),
        }
    }

    /// Bytes of the allocated pages.
    pub fn bytes(&self) -> usize {
        self.pages.len() * 2 * self.kv_heads * PAGE * self.head_dim * size_of::<f32>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_as_written_across_pages() {
        let (kvh, hd) = (2, 3);
        let mut layer = HostLayer::new(kvh, hd);
        // Position p of head h holds (h, p, d) encoded in its value.
        let val = |h: usize, p: usize, d: usize| (h * 10_000 + p * 10 + d) as f32;
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
                assert_eq!(layer.key(h, p), want, "key h {h} p {p}");
                let neg: Vec<f32> = want.iter().map(|x| -x).collect();
                assert_eq!(layer.value(h, p), neg, "value h {h} p {p}");
            }
        }
        let copy = layer.copy_prefix(PAGE + 1);
        assert_eq!(
            (copy.capacity(), copy.key(1, PAGE)),
            (2 * PAGE, (0..hd).map(|d| val(1, PAGE, d)).collect())
        );
        layer.truncate(PAGE);
        assert_eq!(layer.capacity(), PAGE);
        assert_eq!(layer.bytes(), 2 * kvh * PAGE * hd * 4);
    }
}
