//! A linear layer over quantized or float weights, with the prefill fast path.

use std::sync::Arc;

use candle_core::quantized::{QMatMul, QTensor};
use candle_core::{Device, Module, Result, Tensor};

/// Rows at and above which a quantized layer is dequantized and run through GEMM.
///
/// Quantized vec-dot kernels are several times slower than dequantize-then-GEMM once a
/// step carries many rows (prompt prefill); single-token decode stays on the quantized path,
/// which reads a quarter of the bytes.
const GEMM_ROWS: usize = 32;

/// `y = x W^T` for `x: [rows, in]`, `W: [out, in]`.
#[derive(Debug, Clone)]
pub struct Linear {
    weight: QMatMul,
    quantized: Option<Arc<QTensor>>,
    out_features: usize,
}

impl Linear {
    /// Wraps a GGUF tensor; float GGUF tensors are dequantized once at load.
    pub fn from_qtensor(q: QTensor) -> Result<Self> {
        let out_features = q.shape().dims()[0];
        let q = Arc::new(q);
        let weight = QMatMul::from_arc(q.clone())?;
        let quantized = matches!(weight, QMatMul::QTensor(_)).then_some(q);
        Ok(Self {
            weight,
            quantized,
            out_features,
        })
    }

    /// Wraps a float tensor `[out, in]`.
    pub fn from_tensor(w: Tensor) -> Result<Self> {
        let out_features = w.dim(0)?;
        Ok(Self {
            weight: QMatMul::Tensor(w),
            quantized: None,
            out_features,
        })
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Applies the layer to `x: [rows, in]`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match &self.quantized {
            Some(q) if x.dim(0)? >= GEMM_ROWS && matches!(x.device(), Device::Cpu) => {
                let w = q.dequantize(x.device())?;
                x.matmul(&w.t()?)
            }
            _ => self.weight.forward(x),
        }
    }
}
