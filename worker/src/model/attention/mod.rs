//! Causal attention of a sequence's new rows against its cache: over host pages, tasks of a
//! few query rows of one head, each row's sums in one fixed order ([`host`]; kernels on
//! AVX-512, on AVX2 and in plain Rust); over tensors on a GPU, blocks of query rows through
//! candle.
//!
//! A prompt chunk of `t` rows used to score every row against every key (`t × len`), mask
//! the upper triangle to −∞ and take the softmax over it all: at 512 rows of a 1.1B model
//! that is 33 MB of scores per layer, half of them thrown away. A block of rows scores only
//! the keys at or before its last row, so prefill reads and multiplies a little over half as
//! much, and a block's scores stay in cache. The arithmetic per row is unchanged (the masked
//! columns contributed exact zeros).

use candle_core::{Result, Tensor};

use super::elementwise;
use super::kv_cache::LayerKv;

#[cfg(target_arch = "x86_64")]
mod amx;
#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod avx512_bf16;
#[cfg(target_arch = "x86_64")]
mod bf16_pages;
mod host;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod portable;

/// Query positions per block: small enough that a block's scores fit in L2 at 4 KV heads
/// and 8 queries per head, large enough that each block's matrix products stay efficient.
const QUERY_BLOCK: usize = 64;

/// `softmax(q·kᵀ/√d + causal mask)·v` for the `t` new positions `offset..offset + t`.
///
/// `q` is `[kv_heads, queries_per_kv_head, t, head_dim]`; `kv` holds all keys and values,
/// the new ones last. Returns `[kv_heads, queries_per_kv_head, t, head_dim]`.
pub fn causal(q: &Tensor, kv: LayerKv<'_>, offset: usize) -> Result<Tensor> {
    match kv {
        LayerKv::Host { layer, len } => {
            let Some(kernel) = host::Kernel::best(layer) else {
                candle_core::bail!("no attention kernel reads {:?} pages here", layer.format())
            };
            host::causal(kernel, q, layer, len, offset)
        }
        LayerKv::Tensors(k, v) => blocked(q, &k, &v, offset),
    }
}

/// [`causal`] through candle's matrix products, a block of query rows at a time (see the
/// module's notes).
fn blocked(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Tensor> {
    let (kvh, n_rep, t, hd) = q.dims4()?;
    let scale = 1.0 / (hd as f32).sqrt();
    let mut blocks = Vec::with_capacity(t.div_ceil(QUERY_BLOCK));
    for c0 in (0..t).step_by(QUERY_BLOCK) {
        let c = QUERY_BLOCK.min(t - c0);
        let len = offset + c0 + c;
        // Query heads sharing one key/value head are stacked as extra rows, so the cache is
        // never copied per head.
        let qc = q
            .narrow(2, c0, c)?
            .contiguous()?
            .reshape((kvh, n_rep * c, hd))?;
        let (kc, vc) = (k.narrow(1, 0, len)?, v.narrow(1, 0, len)?);
        let scores = qc.matmul(&kc.t()?)?;
        // Row i of a block (position offset + c0 + i) sees keys up to its own position.
        let probs = elementwise::causal_softmax(&scores, scale, c, offset + c0 + 1)?;
        blocks.push(probs.matmul(&vc)?.reshape((kvh, n_rep, c, hd))?);
    }
    if blocks.len() == 1 {
        return Ok(blocks.pop().expect("one block"));
    }
    Tensor::cat(&blocks, 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::kv_cache::pages::{PageFormat, PAGE};
    use crate::model::kv_cache::HostLayer;
    use candle_core::{DType, Device};

    /// The whole-matrix computation the blocks replace.
    fn reference(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Tensor> {
        let (kvh, n_rep, t, hd) = q.dims4()?;
        let scores = q.reshape((kvh, n_rep * t, hd))?.matmul(&k.t()?)?;
        let scale = 1.0 / (hd as f32).sqrt();
        let probs = elementwise::masked_softmax(&scores, scale, t, offset + 1)?;
        probs.matmul(v)?.reshape((kvh, n_rep, t, hd))
    }

    /// Random `q` for `t` positions after `offset`, and the cache views `k`, `v` (a prefix of a
    /// larger buffer, as a GPU cache passes them).
    fn inputs(t: usize, offset: usize, hd: usize) -> Result<(Tensor, Tensor, Tensor)> {
        let dev = Device::Cpu;
        let (kvh, n_rep) = (2, 3);
        let q = Tensor::randn(0f32, 1.0, (kvh, n_rep, t, hd), &dev)?;
        let cap = offset + t + 9;
        let kbuf = Tensor::randn(0f32, 1.0, (kvh, cap, hd), &dev)?;
        let vbuf = Tensor::randn(0f32, 1.0, (kvh, cap, hd), &dev)?;
        Ok((
            q,
            kbuf.narrow(1, 0, offset + t)?,
            vbuf.narrow(1, 0, offset + t)?,
        ))
    }

    /// [`reference`] as the AMX kernel rounds: queries, keys and values in BF16, each row's
    /// weights in BF16 after `exp`, divided by the sum of the unrounded ones (in f64).
    fn reference_bf16(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Tensor> {
        let (kvh, n_rep, t, hd) = q.dims4()?;
        let len = k.dim(1)?;
        let bf = |x: &Tensor| -> Result<Vec<f32>> {
            x.to_dtype(DType::BF16)?
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1()
        };
        let (q, k, v) = (bf(q)?, bf(k)?, bf(v)?);
        let scale = 1.0 / (hd as f64).sqrt();
        let mut out = vec![0f32; q.len()];
        for (row, o) in out.chunks_exact_mut(hd).enumerate() {
            let (h, i) = (row / (n_rep * t), row % t);
            let qr = &q[row * hd..][..hd];
            let key = |p: usize| &k[(h * len + p) * hd..][..hd];
            let seen = offset + i + 1;
            let s: Vec<f32> = (0..seen)
                .map(|p| {
                    qr.iter()
                        .zip(key(p))
                        .map(|(a, b)| (a * b) as f64)
                        .sum::<f64>() as f32
                })
                .collect();
            let top = s.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
            let (mut acc, mut sum) = (vec![0f64; hd], 0f64);
            for (p, &x) in s.iter().enumerate() {
                let e = ((x as f64 - top) * scale).exp();
                sum += e;
                let w = half::bf16::from_f32(e as f32).to_f64();
                for (a, x) in acc.iter_mut().zip(&v[(h * len + p) * hd..][..hd]) {
                    *a += w * *x as f64;
                }
            }
            for (o, a) in o.iter_mut().zip(acc) {
                *o = (a / sum) as f32;
            }
        }
        Tensor::from_vec(out, (kvh, n_rep, t, hd), &Device::Cpu)
    }

    /// The page formats this CPU's kernels read for heads of `hd`.
    fn formats(hd: usize) -> Vec<PageFormat> {
        let mut out = vec![PageFormat::F32];
        if PageFormat::best(hd) == PageFormat::Bf16Tiles {
            out.push(PageFormat::Bf16Tiles);
        }
        out
    }

    /// `k`, `v` in host pages of `format`, written in two appends as a prompt and a turn
    /// would, over stale positions (NaN, so that a kernel reading one past a row's own shows).
    fn pages(k: &Tensor, v: &Tensor, format: PageFormat) -> Result<HostLayer> {
        let (kvh, len, hd) = k.dims3()?;
        let mut layer = HostLayer::with_format(kvh, hd, format);
        let junk = vec![f32::NAN; kvh * (len + PAGE) * hd];
        layer.write(0, &junk, &junk);
        let flat = |x: &Tensor| x.contiguous()?.flatten_all()?.to_vec1::<f32>();
        let half = len / 2;
        for (from, n) in [(0, half), (half, len - half)] {
            layer.write(
                from,
                &flat(&k.narrow(1, from, n)?)?,
                &flat(&v.narrow(1, from, n)?)?,
            );
        }
        Ok(layer)
    }

    /// The largest difference, infinite where either side is not finite (a max over NaN
    /// would skip it).
    fn max_diff(a: &Tensor, b: &Tensor) -> Result<f32> {
        let (a, b): (Vec<f32>, Vec<f32>) =
            (a.flatten_all()?.to_vec1()?, b.flatten_all()?.to_vec1()?);
        Ok(a.iter().zip(&b).fold(0f32, |m, (x, y)| {
            let d = (x - y).abs();
            if d.is_finite() {
                m.max(d)
            } else {
                f32::INFINITY
            }
        }))
    }

    #[test]
    fn every_path_equals_the_whole_masked_matrix() -> Result<()> {
        // Rows that span several blocks with a ragged last one, after a cached prefix; a
        // single decode row; heads of 64, 128 (two passes over the values) and 80 (four vectors and
        // one more, the AVX-512 kernel's tail); 16 (the tail only); keys across pages, ending
        // inside one.
        for (t, offset, hd) in [
            (150, 0, 64),
            (150, 37, 64),
            (1, 200, 64),
            (64, 5, 128),
            (7, 40, 80),
            (3, 1, 16),
            // BF16 pages' other heads: 96 (a pass of four value vectors and one of two) and 32.
            (40, 70, 96),
            (9, 100, 32),
        ] {
            let (q, k, v) = inputs(t, offset, hd)?;
            let exact = reference(&q, &k, &v, offset)?;
            let len = offset + t;
            let mut paths = vec![("blocked".to_string(), blocked(&q, &k, &v, offset)?, false)];
            for format in formats(hd) {
                let layer = pages(&k, &v, format)?;
                let kernels = host::Kernel::available(&layer);
                assert_eq!(host::Kernel::best(&layer), kernels.last().copied());
                for kernel in kernels {
                    let out = host::causal(kernel, &q, &layer, len, offset)?;
                    paths.push((format!("{kernel:?}"), out, format != PageFormat::F32));
                }
                let best = causal(&q, LayerKv::Host { layer: &layer, len }, offset)?;
                paths.push((
                    format!("best of {format:?}"),
                    best,
                    format != PageFormat::F32,
                ));
            }
            for (path, ours, bf16) in paths {
                // BF16 kernels against the same rounding done exactly: what is left is f32
                // sums and an `exp` within 2 ulp, which can round a weight to the next BF16
                // value (2⁻⁸ of it).
                let (want, tol) = if bf16 {
                    (reference_bf16(&q, &k, &v, offset)?, 2e-3)
                } else {
                    (exact.clone(), 1e-5)
                };
                assert_eq!(ours.dims(), want.dims());
                let diff = max_diff(&ours, &want)?;
                assert!(diff < tol, "{path}: t {t} offset {offset} hd {hd}: {diff}");
            }
        }
        Ok(())
    }

    /// Each query row of a prompt gives, bit for bit, what it gives as the only new row (a
    /// decode step) over the same keys: a prefix cache serves the same tokens whether a
    /// position was prefilled or decoded. Held on every host kernel.
    #[test]
    fn a_prompts_rows_equal_the_same_rows_alone() -> Result<()> {
        let (t, offset, hd) = (23, 60, 64);
        let (q, k, v) = inputs(t, offset, hd)?;
        let layers = formats(hd).into_iter().map(|f| pages(&k, &v, f));
        let layers = layers.collect::<Result<Vec<_>>>()?;
        let runs = layers
            .iter()
            .flat_map(|l| host::Kernel::available(l).into_iter().map(move |k| (l, k)));
        for (layer, kernel) in runs {
            let all = host::causal(kernel, &q, layer, offset + t, offset)?;
            for pos in 0..t {
                let one = host::causal(
                    kernel,
                    &q.narrow(2, pos, 1)?,
                    layer,
                    offset + pos + 1,
                    offset + pos,
                )?;
                let row = all.narrow(2, pos, 1)?;
                let (a, b): (Vec<f32>, Vec<f32>) =
                    (row.flatten_all()?.to_vec1()?, one.flatten_all()?.to_vec1()?);
                let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{kernel:?} position {pos}: {a:?} against {b:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn queries_that_do_not_fit_the_cache_are_errors_and_none_is_empty() -> Result<()> {
        let (q, k, v) = inputs(4, 10, 16)?;
        let layer = pages(&k, &v, PageFormat::F32)?;
        let kernel = host::Kernel::Plain;
        // More query rows than positions stored, and a cache of other heads.
        assert!(host::causal(kernel, &q, &layer, 12, 10).is_err());
        let (q2, _, _) = inputs(4, 10, 32)?;
        assert!(host::causal(kernel, &q2, &layer, 14, 10).is_err());
        // No query rows: an empty result, not a division by zero.
        for kernel in host::Kernel::available(&layer) {
            let none = host::causal(kernel, &q.narrow(2, 0, 0)?, &layer, 14, 14)?;
            assert_eq!(none.dims(), [2, 3, 0, 16]);
        }
        Ok(())
    }
}
