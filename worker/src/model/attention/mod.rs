//! Causal attention of a sequence's new rows against its cache: on AVX-512 one query row at a
//! time in a fixed order ([`avx512`]), elsewhere in blocks of query rows through candle.
//!
//! A prompt chunk of `t` rows used to score every row against every key (`t × len`), mask
//! the upper triangle to −∞ and take the softmax over it all: at 512 rows of a 1.1B model
//! that is 33 MB of scores per layer, half of them thrown away. A block of rows scores only
//! the keys at or before its last row, so prefill reads and multiplies a little over half as
//! much, and a block's scores stay in cache. The arithmetic per row is unchanged (the masked
//! columns contributed exact zeros).

use candle_core::{Result, Tensor};

use super::elementwise;

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Query positions per block: small enough that a block's scores fit in L2 at 4 KV heads
/// and 8 queries per head, large enough that each block's matrix products stay efficient.
const QUERY_BLOCK: usize = 64;

/// `softmax(q·kᵀ/√d + causal mask)·v` for the `t` new positions `offset..offset + t`.
///
/// `q` is `[kv_heads, queries_per_kv_head, t, head_dim]`; `k` and `v` are
/// `[kv_heads, offset + t, head_dim]` (all keys and values, the new ones last). Returns
/// `[kv_heads, queries_per_kv_head, t, head_dim]`.
pub fn causal(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Tensor> {
    // The int8 kernels' level: detected AVX-512 F, and `ARENA_KERNELS` below `avx512` turns
    // this kernel off with them (comparisons).
    #[cfg(target_arch = "x86_64")]
    if q.device().is_cpu() && super::quant::Isa::best().has_avx512() {
        if let Some(out) = avx512::causal(q, k, v, offset)? {
            return Ok(out);
        }
    }
    blocked(q, k, v, offset)
}

/// [`causal`] through candle's matrix products, a block of query rows at a time.
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
    /// larger buffer, as the model passes them).
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

    #[test]
    fn every_path_equals_the_whole_masked_matrix() -> Result<()> {
        // Rows that span several blocks with a ragged last one, after a cached prefix; a
        // single decode row; heads of 64, 128 (two passes over the values) and 80 (a partial
        // one).
        for (t, offset, hd) in [
            (150, 0, 64),
            (150, 37, 64),
            (1, 200, 64),
            (64, 5, 128),
            (7, 40, 80),
        ] {
            let (q, k, v) = inputs(t, offset, hd)?;
            let want = reference(&q, &k, &v, offset)?;
            for (path, ours) in [
                ("best", causal(&q, &k, &v, offset)?),
                ("blocked", blocked(&q, &k, &v, offset)?),
            ] {
                assert_eq!(ours.dims(), want.dims());
                let diff = (ours - &want)?
                    .abs()?
                    .flatten_all()?
                    .max(0)?
                    .to_dtype(DType::F32)?;
                let diff: f32 = diff.to_scalar()?;
                assert!(diff < 1e-5, "{path}: t {t} offset {offset} hd {hd}: {diff}");
            }
        }
        Ok(())
    }

    /// Each query row of a prompt gives, bit for bit, what it gives as the only new row (a
    /// decode step) over the same keys: a prefix cache serves the same tokens whether a
    /// position was prefilled or decoded. Held on the AVX-512 kernel, which sums every row in
    /// one fixed order.
    #[test]
    fn a_prompts_rows_equal_the_same_rows_alone() -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        if crate::model::quant::Isa::best().has_avx512() {
            let (t, offset, hd) = (23, 30, 64);
            let (q, k, v) = inputs(t, offset, hd)?;
            let all = causal(&q, &k, &v, offset)?;
            for pos in 0..t {
                let len = offset + pos + 1;
                let one = causal(
                    &q.narrow(2, pos, 1)?,
                    &k.narrow(1, 0, len)?,
                    &v.narrow(1, 0, len)?,
                    offset + pos,
                )?;
                let row = all.narrow(2, pos, 1)?;
                let (a, b): (Vec<f32>, Vec<f32>) =
                    (row.flatten_all()?.to_vec1()?, one.flatten_all()?.to_vec1()?);
                let same = a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "position {pos}: {a:?} against {b:?}");
            }
        }
        Ok(())
    }
}
