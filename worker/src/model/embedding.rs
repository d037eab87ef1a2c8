//! Token embeddings. A quantized GGUF embedding stays quantized and only the rows a step
//! looks up are dequantized: held as f32 it would take 4 bytes per weight, more than the
//! whole quantized file for a large vocabulary (49,152 × 4,096 × 4 B = 768 MiB).

use std::borrow::Cow;
use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QStorage, QTensor};
use candle_core::{Device, Result, Tensor};

use crate::model::half::HalfMatrix;
use crate::model::linear::{host_matrix_of, HostMatrix, Linear};
use crate::model::quant::QMatrix;

/// `[vocab, hidden]` token embeddings.
#[derive(Debug, Clone)]
pub enum Embedding {
    /// Float rows (float files, GPU devices).
    Dense(Tensor),
    /// Rows in a format our kernels multiply, dequantized when looked up; a tied output layer
    /// shares the same matrix.
    Shared(Arc<QMatrix>),
    /// 16-bit float rows on the CPU, converted when looked up; shared as [`Embedding::Shared`].
    Half(Arc<HalfMatrix>),
    /// Other quantized rows on the CPU, dequantized when looked up.
    Quantized {
        /// The GGUF tensor.
        q: Arc<QTensor>,
        /// Bytes of one row.
        row_bytes: usize,
        /// Rows.
        vocab: usize,
        /// Values per row.
        hidden: usize,
    },
}

impl Embedding {
    /// Keeps a quantized or 16-bit CPU tensor as it is; anything else is dequantized once.
    pub fn from_qtensor(q: QTensor, device: &Device) -> Result<Self> {
        let (vocab, hidden) = q.shape().dims2()?;
        let dtype = q.dtype();
        if device.is_cpu() && hidden % dtype.block_size() == 0 {
            if let Some(m) = host_matrix_of(&q)? {
                return Ok(Self::from_host(m));
            }
        }
        let float = matches!(dtype, GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16);
        if float || !device.is_cpu() || hidden % dtype.block_size() != 0 {
            return Ok(Self::Dense(q.dequantize(device)?));
        }
        let row_bytes = hidden / dtype.block_size() * dtype.type_size();
        Ok(Self::Quantized {
            q: Arc::new(q),
            row_bytes,
            vocab,
            hidden,
        })
    }

    /// Wraps a matrix our kernels multiply; looked-up rows are converted to f32.
    pub fn from_host(m: HostMatrix) -> Self {
        match m {
            HostMatrix::Int8(m) => Self::Shared(m),
            HostMatrix::Half(m) => Self::Half(m),
        }
    }

    /// A tied output layer sharing this table's matrix, where our kernels multiply it.
    pub fn tied_head(&self) -> Option<Linear> {
        match self {
            Self::Shared(m) => Some(Linear::from_matrix(m.clone())),
            Self::Half(m) => Some(Linear::from_half(m.clone())),
            Self::Dense(_) | Self::Quantized { .. } => None,
        }
    }

    /// The rows of `ids`, `[ids.len(), hidden]` in f32.
    pub fn lookup(&self, ids: &[u32], device: &Device) -> Result<Tensor> {
        match self {
            Self::Dense(t) => t.index_select(&Tensor::new(ids, device)?, 0),
            Self::Shared(m) => rows_of(ids, m.rows(), m.cols(), device, |r, out| {
                m.dequantize_row(r, out)
            }),
            Self::Half(m) => rows_of(ids, m.rows(), m.cols(), device, |r, out| {
                m.dequantize_row(r, out)
            }),
            Self::Quantized {
                q,
                row_bytes,
                vocab,
                hidden,
            } => {
                let data = q.data()?;
                let mut rows = Vec::with_capacity(ids.len() * row_bytes);
                for &id in ids {
                    let id = id as usize;
                    if id >= *vocab {
                        candle_core::bail!("token id {id} is outside the vocabulary of {vocab}")
                    }
                    rows.extend_from_slice(&data[id * row_bytes..(id + 1) * row_bytes]);
                }
                let storage = QStorage::from_data(Cow::Owned(rows), &Device::Cpu, q.dtype())?;
                QTensor::new(storage, (ids.len(), *hidden))?.dequantize(device)
            }
        }
    }
}

/// The rows of `ids` from a `[vocab, hidden]` table whose `row(r, out)` writes row `r`.
fn rows_of(
    ids: &[u32],
    vocab: usize,
    hidden: usize,
    device: &Device,
    row: impl Fn(usize, &mut [f32]) -> Option<()>,
) -> Result<Tensor> {
    let mut out = vec![0f32; ids.len() * hidden];
    for (&id, dst) in ids.iter().zip(out.chunks_exact_mut(hidden)) {
        if row(id as usize, dst).is_none() {
            candle_core::bail!("token id {id} is outside the vocabulary of {vocab}")
        }
    }
    Tensor::from_vec(out, (ids.len(), hidden), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looked_up_rows_equal_the_dequantized_table_for_every_type() {
        let dev = Device::Cpu;
        // 256 values per row: one super-block of the K types.
        let table = Tensor::randn(0f32, 1.0, (10, 256), &dev).unwrap();
        let ids = [3u32, 0, 9, 3];
        for dtype in [
            GgmlDType::Q4_0,
            GgmlDType::Q4_1,
            GgmlDType::Q5_0,
            GgmlDType::Q5_1,
            GgmlDType::Q8_0,
            GgmlDType::Q2K,
            GgmlDType::Q3K,
            GgmlDType::Q4K,
            GgmlDType::Q5K,
            GgmlDType::Q6K,
            GgmlDType::F16,
            GgmlDType::BF16,
        ] {
            let q = QTensor::quantize(&table, dtype).unwrap();
            let whole = q.dequantize(&dev).unwrap();
            let expect = whole
                .index_select(&Tensor::new(&ids[..], &dev).unwrap(), 0)
                .unwrap();
            let e = Embedding::from_qtensor(q, &dev).unwrap();
            let kept = match dtype {
                GgmlDType::F16 | GgmlDType::BF16 => matches!(e, Embedding::Half(_)),
                _ => matches!(e, Embedding::Quantized { .. } | Embedding::Shared(_)),
            };
            assert!(kept, "{dtype:?} held as {e:?}");
            let got = e.lookup(&ids, &dev).unwrap();
            assert_eq!(
                got.to_vec2::<f32>().unwrap(),
                expect.to_vec2::<f32>().unwrap(),
                "{dtype:?}"
            );
        }
    }

    #[test]
    fn an_id_outside_the_vocabulary_is_an_error_not_a_panic() {
        let dev = Device::Cpu;
        let table = Tensor::randn(0f32, 1.0, (4, 64), &dev).unwrap();
        let e = Embedding::from_qtensor(QTensor::quantize(&table, GgmlDType::Q8_0).unwrap(), &dev)
            .unwrap();
        let err = e.lookup(&[1, 4], &dev).unwrap_err().to_string();
        assert!(
            err.contains("token id 4 is outside the vocabulary of 4"),
            "{err}"
        );
    }
}
