//! A linear layer over quantized or float weights, with the prefill fast path.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};

use crate::model::qmatrix::{BlockQ4_1, BlockQ8_0, QMatrix, WeightBlock};

/// Rows at and above which a quantized layer is dequantized and run through GEMM.
///
/// Quantized vec-dot kernels are several times slower than dequantize-then-GEMM once a
/// step carries many rows (prompt prefill); decode steps stay on the quantized path, which
/// reads a quarter of the bytes.
pub const GEMM_ROWS: usize = 32;

#[derive(Debug, Clone)]
enum Weight {
    /// Q4_1 on the CPU, through our SIMD kernels.
    Q4_1(Arc<QMatrix<BlockQ4_1>>),
    /// Q8_0 on the CPU, through our SIMD kernels.
    Q8_0(Arc<QMatrix<BlockQ8_0>>),
    /// Other quantized types, through candle's kernels.
    Quantized(QMatMul, Arc<QTensor>),
    /// Float weights.
    Float(QMatMul),
}

/// `y = x W^T` for `x: [rows, in]`, `W: [out, in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Weight,
    out_features: usize,
}

impl Linear {
    /// Wraps a GGUF tensor; float GGUF tensors are dequantized once at load.
    pub fn from_qtensor(q: QTensor) -> Result<Self> {
        let (out_features, in_features) = q.shape().dims2()?;
        if matches!(q.device(), Device::Cpu) {
            let own = match q.dtype() {
                GgmlDType::Q4_1 => QMatrix::from_gguf_bytes(&q.data()?, out_features, in_features)
                    .map(|m| Weight::Q4_1(Arc::new(m))),
                GgmlDType::Q8_0 => QMatrix::from_gguf_bytes(&q.data()?, out_features, in_features)
                    .map(|m| Weight::Q8_0(Arc::new(m))),
                _ => None,
            };
            if let Some(weight) = own {
                return Ok(Self {
                    weight,
                    out_features,
                });
            }
        }
        let q = Arc::new(q);
        let mm = QMatMul::from_arc(q.clone())?;
        let weight = match mm {
            QMatMul::QTensor(_) => Weight::Quantized(mm, q),
            other => Weight::Float(other),
        };
        Ok(Self {
            weight,
            out_features,
        })
    }

    /// Wraps a float tensor `[out, in]`.
    pub fn from_tensor(w: Tensor) -> Result<Self> {
        let out_features = w.dim(0)?;
        Ok(Self {
            weight: Weight::Float(QMatMul::Tensor(w)),
            out_features,
        })
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Applies the layer to `x: [rows, in]`: rows before `gemm_from` through the quantized
    /// kernels, the rest (long prompt chunks) dequantized through GEMM.
    ///
    /// The split is by row, not by step, so a row's result does not depend on what else
    /// shares its batch.
    pub fn forward(&self, x: &Tensor, gemm_from: usize) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let gemm_from = gemm_from.min(rows);
        if matches!(self.weight, Weight::Float(_))
            || gemm_from == rows
            || !matches!(x.device(), Device::Cpu)
        {
            return self.quantized_path(x);
        }
        let w = match &self.weight {
            Weight::Q4_1(m) => Tensor::from_vec(m.dequantize(), (m.rows(), x.dim(1)?), x.device())?,
            Weight::Q8_0(m) => Tensor::from_vec(m.dequantize(), (m.rows(), x.dim(1)?), x.device())?,
            Weight::Quantized(_, q) => q.dequantize(x.device())?,
            Weight::Float(_) => unreachable!("handled above"),
        };
        let long = x.narrow(0, gemm_from, rows - gemm_from)?.matmul(&w.t()?)?;
        if gemm_from == 0 {
            return Ok(long);
        }
        let short = self.quantized_path(&x.narrow(0, 0, gemm_from)?)?;
        Tensor::cat(&[short, long], 0)
    }

    fn quantized_path(&self, x: &Tensor) -> Result<Tensor> {
        match &self.weight {
            Weight::Q4_1(m) => own_matmul(m, x),
            Weight::Q8_0(m) => own_matmul(m, x),
            Weight::Quantized(mm, _) | Weight::Float(mm) => mm.forward(x),
        }
    }
}

fn own_matmul<B: WeightBlock>(m: &QMatrix<B>, x: &Tensor) -> Result<Tensor> {
    let rows = x.dim(0)?;
    let flat: Vec<f32> = x.flatten_all()?.to_vec1()?;
    Tensor::from_vec(m.matmul(&flat, rows), (rows, m.rows()), x.device())
}
