//! Quantized weight matrices (GGUF Q4_1 and Q8_0) with SIMD matrix-vector kernels.
//!
//! candle 0.11 multiplies Q4_1, the format of the SmolLM2 GGUF, with a scalar loop: 70% of
//! decode time went there. This module keeps the weights in llama.cpp's block layouts and
//! computes `x · Wᵀ` against activations quantized to 8 bits, with AVX2 when the CPU has it
//! (checked at run time) and a scalar path otherwise. Each weight block is unpacked once and
//! dotted with up to four activation rows, so a batch of sequences reads the weights once,
//! and all of it runs on one thread pool (rayon) rather than beside candle's own.

use half::f16;
use rayon::prelude::*;

/// Values per block.
pub const QK: usize = 32;
/// Weight rows per parallel task.
const ROWS_PER_TASK: usize = 32;

/// Q4_1: 32 weights `w = d·q + m`, `q` in 0..16; element `j` is the low nibble of `qs[j]`,
/// element `j + 16` its high nibble.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ4_1 {
    d: f16,
    m: f16,
    qs: [u8; QK / 2],
}

/// Q8_0: 32 weights `w = d·q`.
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct BlockQ8_0 {
    d: f16,
    qs: [i8; QK],
}

/// 32 activations quantized symmetrically to 8 bits, with `s = d·Σq`.
#[derive(Debug, Clone, Copy)]
pub struct BlockQ8 {
    d: f32,
    s: f32,
    qs: [i8; QK],
}

/// A GGUF block type this module multiplies.
pub trait WeightBlock: Copy + Send + Sync + 'static {
    /// Bytes per block in a GGUF file.
    const BYTES: usize;
    /// Parses one block from its GGUF bytes.
    fn parse(b: &[u8]) -> Self;
    /// Writes the 32 weights as f32.
    fn dequantize(&self, out: &mut [f32]);
    /// Dot product of one block with one activation block, scalar.
    fn dot(&self, y: &BlockQ8) -> f32;
    /// The fastest available `dot_rows` for this CPU.
    fn dot_rows_fn() -> DotRowsFn<Self>;
}

/// Dots one weight row with each of `out.len()` activation rows laid out one after another.
pub type DotRowsFn<B> = fn(&[B], &[BlockQ8], &mut [f32]);

fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

impl WeightBlock for BlockQ4_1 {
    const BYTES: usize = 20;

    fn parse(b: &[u8]) -> Self {
        let mut qs = [0u8; QK / 2];
        qs.copy_from_slice(&b[4..20]);
        Self {
            d: f16::from_le_bytes([b[0], b[1]]),
            m: f16::from_le_bytes([b[2], b[3]]),
            qs,
        }
    }

    fn dequantize(&self, out: &mut [f32]) {
        let (d, m) = (self.d.to_f32(), self.m.to_f32());
        for j in 0..QK / 2 {
            out[j] = d * f32::from(self.qs[j] & 0x0F) + m;
            out[j + QK / 2] = d * f32::from(self.qs[j] >> 4) + m;
        }
    }

    fn dot(&self, y: &BlockQ8) -> f32 {
        let mut acc = 0i32;
        for j in 0..QK / 2 {
            acc += i32::from(self.qs[j] & 0x0F) * i32::from(y.qs[j]);
            acc += i32::from(self.qs[j] >> 4) * i32::from(y.qs[j + QK / 2]);
        }
        self.d.to_f32() * y.d * acc as f32 + self.m.to_f32() * y.s
    }

    // SAFETY: the AVX2 kernel is returned only after runtime detection found AVX2 and FMA.
    #[allow(unsafe_code)]
    fn dot_rows_fn() -> DotRowsFn<Self> {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports the features the kernel is compiled for.
            return |w, x, out| unsafe { avx2::dot_rows(w, x, out) };
        }
        dot_rows_scalar
    }
}

impl WeightBlock for BlockQ8_0 {
    const BYTES: usize = 34;

    fn parse(b: &[u8]) -> Self {
        let mut qs = [0i8; QK];
        for (q, &v) in qs.iter_mut().zip(&b[2..34]) {
            *q = v as i8;
        }
        Self {
            d: f16::from_le_bytes([b[0], b[1]]),
            qs,
        }
    }

    fn dequantize(&self, out: &mut [f32]) {
        let d = self.d.to_f32();
        for (o, &q) in out.iter_mut().zip(&self.qs) {
            *o = d * f32::from(q);
        }
    }

    fn dot(&self, y: &BlockQ8) -> f32 {
        let acc: i32 = self
            .qs
            .iter()
            .zip(&y.qs)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum();
        self.d.to_f32() * y.d * acc as f32
    }

    // SAFETY: the AVX2 kernel is returned only after runtime detection found AVX2 and FMA.
    #[allow(unsafe_code)]
    fn dot_rows_fn() -> DotRowsFn<Self> {
        #[cfg(target_arch = "x86_64")]
        if has_avx2() {
            // SAFETY: the CPU supports the features the kernel is compiled for.
            return |w, x, out| unsafe { avx2::dot_rows(w, x, out) };
        }
        dot_rows_scalar
    }
}

fn dot_rows_scalar<B: WeightBlock>(w: &[B], x: &[BlockQ8], out: &mut [f32]) {
    let kb = w.len();
    for (i, o) in out.iter_mut().enumerate() {
        *o = w
            .iter()
            .zip(&x[i * kb..(i + 1) * kb])
            .map(|(b, y)| b.dot(y))
            .sum();
    }
}

/// A `[rows, cols]` matrix of quantized blocks.
#[derive(Debug, Clone)]
pub struct QMatrix<B> {
    blocks: Vec<B>,
    rows: usize,
    cols: usize,
}

impl<B: WeightBlock> QMatrix<B> {
    /// Parses the GGUF data of a `[rows, cols]` tensor; `None` if the sizes do not match.
    pub fn from_gguf_bytes(data: &[u8], rows: usize, cols: usize) -> Option<Self> {
        if !cols.is_multiple_of(QK) || data.len() != rows * cols / QK * B::BYTES {
            return None;
        }
        let blocks = data.chunks_exact(B::BYTES).map(B::parse).collect();
        Some(Self { blocks, rows, cols })
    }

    /// Output features.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The weights as f32, row-major `[rows, cols]`.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.rows * self.cols];
        out.par_chunks_mut(QK)
            .zip(self.blocks.par_iter())
            .for_each(|(o, b)| b.dequantize(o));
        out
    }

    /// `x · Wᵀ` for `x` of `m` rows of `cols` values; returns `[m, rows]` row-major.
    pub fn matmul(&self, x: &[f32], m: usize) -> Vec<f32> {
        debug_assert_eq!(x.len(), m * self.cols);
        let kb = self.cols / QK;
        let xq: Vec<BlockQ8> = x.chunks_exact(QK).map(quantize_block).collect();
        let dot = B::dot_rows_fn();
        // Computed as [rows, m] so each task owns a contiguous slice, then transposed.
        let mut out_t = vec![0f32; self.rows * m];
        out_t
            .par_chunks_mut(ROWS_PER_TASK * m)
            .enumerate()
            .for_each(|(task, chunk)| {
                for (r, vals) in chunk.chunks_mut(m).enumerate() {
                    let row = task * ROWS_PER_TASK + r;
                    dot(&self.blocks[row * kb..(row + 1) * kb], &xq, vals);
                }
            });
        if m == 1 {
            return out_t;
        }
        let mut out = vec![0f32; m * self.rows];
        for (row, vals) in out_t.chunks_exact(m).enumerate() {
            for (i, v) in vals.iter().enumerate() {
                out[i * self.rows + row] = *v;
            }
        }
        out
    }
}

/// Quantizes 32 activations as llama.cpp's `quantize_row_q8_1` (scale and sum kept in f32).
fn quantize_block(x: &[f32]) -> BlockQ8 {
    let amax = x.iter().fold(0f32, |a, v| a.max(v.abs()));
    let d = amax / 127.0;
    let id = if d > 0.0 { 1.0 / d } else { 0.0 };
    let mut qs = [0i8; QK];
    let mut sum = 0i32;
    for (q, v) in qs.iter_mut().zip(x) {
        *q = (v * id).round() as i8;
        sum += i32::from(*q);
    }
    BlockQ8 {
        d,
        s: d * sum as f32,
        qs,
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{BlockQ4_1, BlockQ8, BlockQ8_0};

    /// A weight block as 32 unsigned bytes and the matching sign-adjusted activations, so
    /// `maddubs` (u8 × i8) computes the products.
    // SAFETY: the methods use AVX2 intrinsics; only the kernels below call them, themselves
    // reached only after runtime detection found AVX2 and FMA.
    #[allow(unsafe_code)]
    pub(super) trait Simd: Copy {
        /// Scale of the block's integer dot product.
        fn scale(&self) -> f32;
        /// Constant added per activation block (`m·s` for Q4_1).
        fn offset(&self, y: &BlockQ8) -> f32;
        /// The unsigned weight bytes.
        unsafe fn unsigned(&self) -> __m256i;
        /// Activations with the weight's signs applied.
        unsafe fn signed(&self, y: __m256i) -> __m256i;
    }

    // SAFETY: unaligned loads of exactly the block's 16 `qs` bytes; callers hold AVX2.
    #[allow(unsafe_code)]
    impl Simd for BlockQ4_1 {
        fn scale(&self) -> f32 {
            self.d.to_f32()
        }
        fn offset(&self, y: &BlockQ8) -> f32 {
            self.m.to_f32() * y.s
        }
        #[inline(always)]
        unsafe fn unsigned(&self) -> __m256i {
            let low = _mm_set1_epi8(0x0F);
            let q = _mm_loadu_si128(self.qs.as_ptr().cast());
            let lo = _mm_and_si128(q, low);
            let hi = _mm_and_si128(_mm_srli_epi16(q, 4), low);
            _mm256_set_m128i(hi, lo)
        }
        #[inline(always)]
        unsafe fn signed(&self, y: __m256i) -> __m256i {
            y
        }
    }

    // SAFETY: unaligned loads of exactly the block's 32 `qs` bytes; callers hold AVX2.
    #[allow(unsafe_code)]
    impl Simd for BlockQ8_0 {
        fn scale(&self) -> f32 {
            self.d.to_f32()
        }
        fn offset(&self, _y: &BlockQ8) -> f32 {
            0.0
        }
        #[inline(always)]
        unsafe fn unsigned(&self) -> __m256i {
            let q = _mm256_loadu_si256(self.qs.as_ptr().cast());
            _mm256_sign_epi8(q, q)
        }
        #[inline(always)]
        unsafe fn signed(&self, y: __m256i) -> __m256i {
            _mm256_sign_epi8(y, _mm256_loadu_si256(self.qs.as_ptr().cast()))
        }
    }

    /// Rows in groups of four (each weight block unpacked once for all four, with four
    /// independent accumulators), the rest one by one.
    // SAFETY: called only after runtime detection found AVX2 and FMA; slices are indexed
    // with bounds checks.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn dot_rows<B: Simd>(w: &[B], x: &[BlockQ8], out: &mut [f32]) {
        let kb = w.len();
        let row = |i: usize| &x[i * kb..(i + 1) * kb];
        let full = out.len() / 4 * 4;
        for i in (0..full).step_by(4) {
            out[i..i + 4].copy_from_slice(&dot_n::<B, 4>(
                w,
                [row(i), row(i + 1), row(i + 2), row(i + 3)],
            ));
        }
        for (i, o) in out.iter_mut().enumerate().skip(full) {
            *o = dot_n::<B, 1>(w, [row(i)])[0];
        }
    }

    // SAFETY: called only from `dot_rows` (AVX2 and FMA present); loads read exactly the
    // 32 `qs` bytes of bounds-checked blocks.
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn dot_n<B: Simd, const N: usize>(w: &[B], x: [&[BlockQ8]; N]) -> [f32; N] {
        let ones = _mm256_set1_epi16(1);
        let mut acc = [_mm256_setzero_ps(); N];
        let mut offsets = [0f32; N];
        for (k, b) in w.iter().enumerate() {
            let d = b.scale();
            let qw = b.unsigned();
            for r in 0..N {
                let y = &x[r][k];
                offsets[r] += b.offset(y);
                let qx = b.signed(_mm256_loadu_si256(y.qs.as_ptr().cast()));
                // u8 × i8 pairs summed to i16 (at most 2·127·127 fits), then pairs to i32.
                let sums = _mm256_madd_epi16(_mm256_maddubs_epi16(qw, qx), ones);
                acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sums), acc[r]);
            }
        }
        std::array::from_fn(|r| hsum(acc[r]) + offsets[r])
    }

    // SAFETY: register-only AVX intrinsics, called only from `dot_n` (AVX2 and FMA present).
    #[allow(unsafe_code)]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn hsum(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
    use candle_core::{Device, Module, Tensor};

    fn weights(rows: usize, cols: usize) -> Tensor {
        let w: Vec<f32> = (0..rows * cols)
            .map(|i| ((i * 37 % 101) as f32 / 50.0 - 1.0) * 0.3)
            .collect();
        Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap()
    }

    fn quantized<B: WeightBlock>(t: &Tensor, dtype: GgmlDType) -> (QMatrix<B>, QTensor) {
        let (rows, cols) = t.dims2().unwrap();
        let q = QTensor::quantize(t, dtype).unwrap();
        (
            QMatrix::from_gguf_bytes(&q.data().unwrap(), rows, cols).unwrap(),
            q,
        )
    }

    fn check_format<B: WeightBlock>(dtype: GgmlDType) {
        let (rows, cols, batch) = (70, 96, 6);
        let t = weights(rows, cols);
        let (m, q) = quantized::<B>(&t, dtype);
        let w: Vec<f32> = q
            .dequantize(&Device::Cpu)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(m.dequantize(), w, "{dtype:?} dequantization");
        let x: Vec<f32> = (0..batch * cols)
            .map(|i| (i * 13 % 29) as f32 / 14.0 - 1.0)
            .collect();
        let got = m.matmul(&x, batch);
        for i in 0..batch {
            for r in 0..rows {
                let want: f32 = (0..cols).map(|c| x[i * cols + c] * w[r * cols + c]).sum();
                let g = got[i * rows + r];
                assert!(
                    (g - want).abs() < 0.05,
                    "{dtype:?} ({i},{r}): {g} vs {want}"
                );
            }
        }
        // SIMD and scalar kernels agree, for groups of four and leftovers.
        let kb = cols / QK;
        let xq: Vec<BlockQ8> = x.chunks_exact(QK).map(quantize_block).collect();
        for r in 0..rows {
            let wr = &m.blocks[r * kb..(r + 1) * kb];
            let (mut simd, mut scalar) = (vec![0f32; batch], vec![0f32; batch]);
            B::dot_rows_fn()(wr, &xq, &mut simd);
            dot_rows_scalar(wr, &xq, &mut scalar);
            for (a, b) in simd.iter().zip(&scalar) {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{dtype:?}: {a} vs {b}"
                );
            }
        }
    }

    #[test]
    fn q4_1_matches_f32_and_scalar() {
        check_format::<BlockQ4_1>(GgmlDType::Q4_1);
    }

    #[test]
    fn q8_0_matches_f32_and_scalar() {
        check_format::<BlockQ8_0>(GgmlDType::Q8_0);
    }

    #[test]
    fn q4_1_matches_candles_kernel_given_its_f16_activation_sums() {
        let (rows, cols, batch) = (40, 64, 2);
        let t = weights(rows, cols);
        let (ours, q) = quantized::<BlockQ4_1>(&t, GgmlDType::Q4_1);
        let x: Vec<f32> = (0..batch * cols).map(|i| (i as f32 * 0.11).cos()).collect();
        let xt = Tensor::from_vec(x.clone(), (batch, cols), &Device::Cpu).unwrap();
        let theirs: Vec<f32> = QMatMul::from_qtensor(q)
            .unwrap()
            .forward(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        // candle keeps the activation scale and sum in f16 (the sum as f16(Σq)·f16(d)), we keep
        // f32: more exact when |Σq| > 2048. With its rounding applied, the results agree.
        let kb = cols / QK;
        for i in 0..batch {
            let xq: Vec<BlockQ8> = x[i * cols..(i + 1) * cols]
                .chunks_exact(QK)
                .map(|c| {
                    let b = quantize_block(c);
                    let d = f16::from_f32(b.d);
                    let sum: i32 = b.qs.iter().map(|&q| i32::from(q)).sum();
                    let s = (f16::from_f32(sum as f32) * d).to_f32();
                    BlockQ8 {
                        d: d.to_f32(),
                        s,
                        qs: b.qs,
                    }
                })
                .collect();
            for r in 0..rows {
                let mut a = [0f32];
                dot_rows_scalar(&ours.blocks[r * kb..(r + 1) * kb], &xq, &mut a);
                let b = theirs[i * rows + r];
                assert!(
                    (a[0] - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{} vs {b}",
                    a[0]
                );
            }
        }
    }

    #[test]
    fn wrong_sizes_are_refused() {
        assert!(QMatrix::<BlockQ4_1>::from_gguf_bytes(&[0u8; 40], 1, 33).is_none());
        assert!(QMatrix::<BlockQ4_1>::from_gguf_bytes(&[0u8; 39], 1, 64).is_none());
        assert!(QMatrix::<BlockQ8_0>::from_gguf_bytes(&[0u8; 40], 1, 32).is_none());
    }
}
