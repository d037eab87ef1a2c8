//! A linear layer over quantized or float weights, with the prefill fast path.

use std::sync::Arc;

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{CpuStorage, Device, Module, Result, Storage, Tensor};

use crate::model::half::{Half, HalfMatrix};
use crate::model::quant::{Format, Isa, QMatrix};

/// Rows at and above which a layer of a type candle multiplies is dequantized and run through
/// GEMM (our own formats pick their kernel per step in [`crate::model::quant`]).
///
/// candle's quantized vec-dot kernels are several times slower than dequantize-then-GEMM once
/// a step carries many rows (prompt prefill); decode steps stay on the quantized path, which
/// reads a quarter of the bytes.
pub const GEMM_ROWS: usize = 32;

#[derive(Debug, Clone)]
enum Weight {
    /// A format our int8 kernels multiply, on the CPU.
    Own(Arc<QMatrix>),
    /// 16-bit floats, kept at 2 bytes per weight, on the CPU.
    Half(Arc<HalfMatrix>),
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
    /// Wraps a GGUF tensor; F32 GGUF tensors (and 16-bit ones off the CPU) are dequantized
    /// once at load.
    pub fn from_qtensor(q: QTensor) -> Result<Self> {
        let out_features = q.shape().dims2()?.0;
        if let Some(m) = host_matrix_of(&q)? {
            return Ok(Self::from_host(m));
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

    /// Wraps a matrix our own kernels multiply.
    pub fn from_host(m: HostMatrix) -> Self {
        match m {
            HostMatrix::Int8(m) => Self::from_matrix(m),
            HostMatrix::Half(m) => Self::from_half(m),
        }
    }

    /// Wraps a matrix our kernels multiply (shared, e.g. with tied embeddings).
    pub fn from_matrix(m: Arc<QMatrix>) -> Self {
        Self {
            out_features: m.rows(),
            weight: Weight::Own(m),
        }
    }

    /// Wraps a 16-bit float matrix (shared, e.g. with tied embeddings).
    pub fn from_half(m: Arc<HalfMatrix>) -> Self {
        Self {
            out_features: m.rows(),
            weight: Weight::Half(m),
        }
    }

    /// Wraps a float tensor `[out, in]`.
    pub fn from_tensor(w: Tensor) -> Result<Self> {
        let out_features = w.dim(0)?;
        Ok(Self {
            weight: Weight::Float(QMatMul::Tensor(w)),
            out_features,
        })
    }

    /// Whether both layers multiply the very same matrix in memory (a tied output layer and
    /// its embedding), not two copies of it.
    pub fn shares_matrix_with(&self, other: &Linear) -> bool {
        match (&self.weight, &other.weight) {
            (Weight::Own(a), Weight::Own(b)) => Arc::ptr_eq(a, b),
            (Weight::Half(a), Weight::Half(b)) => Arc::ptr_eq(a, b),
            (Weight::Quantized(_, a), Weight::Quantized(_, b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }

    /// How the weight is held and multiplied.
    pub fn held_as(&self) -> &'static str {
        match &self.weight {
            Weight::Own(m) => m.format().held_as(),
            Weight::Half(m) => match m.kind() {
                Half::F16 => "f16",
                Half::Bf16 => "bf16",
            },
            Weight::Quantized(..) => "candle quantized",
            Weight::Float(_) => "f32",
        }
    }

    /// Output width.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// Applies the layer to `x: [rows, in]`. Our own formats run every row through their int8
    /// kernels; candle's quantized types take rows before `gemm_from` through its kernels and
    /// the rest (long prompt chunks) dequantized through GEMM.
    ///
    /// The split is by row, not by step, so a row's result does not depend on what else
    /// shares its batch.
    pub fn forward(&self, x: &Tensor, gemm_from: usize) -> Result<Tensor> {
        let rows = x.dim(0)?;
        let gemm_from = gemm_from.min(rows);
        if matches!(
            self.weight,
            Weight::Float(_) | Weight::Own(_) | Weight::Half(_)
        ) || gemm_from == rows
            || !matches!(x.device(), Device::Cpu)
        {
            return self.quantized_path(x);
        }
        let w = match &self.weight {
            Weight::Quantized(_, q) => q.dequantize(x.device())?,
            Weight::Own(_) | Weight::Half(_) | Weight::Float(_) => unreachable!("handled above"),
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
            Weight::Own(m) => host_matmul(x, m.rows(), |x, rows| m.matmul(x, rows)),
            Weight::Half(m) => host_matmul(x, m.rows(), |x, rows| m.matmul(x, rows)),
            Weight::Quantized(mm, _) | Weight::Float(mm) => mm.forward(x),
        }
    }
}

/// A weight matrix our own CPU kernels multiply.
#[derive(Debug, Clone)]
pub enum HostMatrix {
    /// A GGUF block format, through the int8 kernels.
    Int8(Arc<QMatrix>),
    /// F16 or BF16.
    Half(Arc<HalfMatrix>),
}

/// Whether our kernels multiply GGUF type `dtype` (on the CPU).
pub fn host_type(dtype: GgmlDType) -> bool {
    host_format(dtype).is_some() || matches!(dtype, GgmlDType::F16 | GgmlDType::BF16)
}

fn host_format(dtype: GgmlDType) -> Option<Format> {
    match dtype {
        GgmlDType::Q4_0 => Some(Format::Q4_0),
        GgmlDType::Q4_1 => Some(Format::Q4_1),
        GgmlDType::Q8_0 => Some(Format::Q8_0),
        GgmlDType::Q4K => Some(Format::Q4K),
        GgmlDType::Q5K => Some(Format::Q5K),
        GgmlDType::Q6K => Some(Format::Q6K),
        _ => None,
    }
}

/// The 16-bit float kind of GGUF type `dtype`, if it is one.
pub fn half_kind(dtype: GgmlDType) -> Option<Half> {
    match dtype {
        GgmlDType::F16 => Some(Half::F16),
        GgmlDType::BF16 => Some(Half::Bf16),
        _ => None,
    }
}

/// The bytes of a `[rows, cols]` GGUF tensor of quantized type `dtype` as a matrix our kernels
/// multiply, taken over (not copied) and laid out for this CPU's best kernels; `None` for
/// other types (16-bit ones go to [`HalfMatrix`], whose rows start on cache lines), or rows
/// that are not whole blocks.
pub fn host_matrix(
    dtype: GgmlDType,
    bytes: Vec<u8>,
    rows: usize,
    cols: usize,
) -> Option<HostMatrix> {
    let m = QMatrix::new(host_format(dtype)?, bytes, rows, cols)?;
    let m = if crate::model::quant::packed::enabled() {
        m.packed_for(Isa::best())
    } else {
        m
    };
    Some(HostMatrix::Int8(Arc::new(m)))
}

/// `q` as a matrix our kernels multiply, if it is on the CPU in a type they take.
pub fn host_matrix_of(q: &QTensor) -> Result<Option<HostMatrix>> {
    if !matches!(q.device(), Device::Cpu) || !host_type(q.dtype()) {
        return Ok(None);
    }
    let (rows, cols) = q.shape().dims2()?;
    let data = q.data()?;
    if let Some(kind) = half_kind(q.dtype()) {
        // Straight into aligned rows, without an owned copy first.
        let m = HalfMatrix::from_le_bytes(kind, &data, rows, cols);
        return Ok(m.map(|m| HostMatrix::Half(Arc::new(m))));
    }
    Ok(host_matrix(q.dtype(), data.into_owned(), rows, cols))
}

/// A product of our own kernels, `f(x, rows)`, on `x: [rows, in]`, as a `[rows, out]` tensor.
fn host_matmul(
    x: &Tensor,
    out: usize,
    f: impl FnOnce(&[f32], usize) -> Vec<f32>,
) -> Result<Tensor> {
    let rows = x.dim(0)?;
    // Read a contiguous f32 tensor where it lies: copying it out cost as much as a pass of
    // the element-wise work (1% of a prefill).
    let (storage, layout) = x.storage_and_layout();
    if let (Storage::Cpu(CpuStorage::F32(v)), Some((from, to))) =
        (&*storage, layout.contiguous_offsets())
    {
        return Tensor::from_vec(f(&v[from..to], rows), (rows, out), x.device());
    }
    drop(storage);
    let flat: Vec<f32> = x.flatten_all()?.to_vec1()?;
    Tensor::from_vec(f(&flat, rows), (rows, out), x.device())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_bit_gguf_tensors_are_held_as_such_and_multiply_like_their_f32_values() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (37, 64), &dev).unwrap();
        for (dtype, name) in [(GgmlDType::F16, "f16"), (GgmlDType::BF16, "bf16")] {
            let q = QTensor::quantize(&w, dtype).unwrap();
            let exact = q.dequantize(&dev).unwrap();
            let half = if name == "bf16" {
                Half::Bf16
            } else {
                Half::F16
            };
            // Rounding activations to BF16 (AVX-512 BF16 CPUs) moves each term by up to 2⁻⁹.
            let kernel = crate::model::half::Kernel::new(Isa::best(), half);
            let tol = (kernel.term_error() as f32).max(1e-6);
            let lin = Linear::from_qtensor(q).unwrap();
            assert_eq!(lin.held_as(), name);
            assert_eq!(lin.out_features(), 37);
            for rows in [1, 3, 20] {
                let x = Tensor::randn(0f32, 1.0, (rows, 64), &dev).unwrap();
                let got = lin
                    .forward(&x, GEMM_ROWS)
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                let want = x
                    .matmul(&exact.t().unwrap())
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                // Σ|x·w| per output, the scale of each sum's rounding.
                let scale = x
                    .abs()
                    .unwrap()
                    .matmul(&exact.abs().unwrap().t().unwrap())
                    .unwrap()
                    .to_vec2::<f32>()
                    .unwrap();
                let all = got.iter().flatten().zip(want.iter().flatten());
                for ((g, e), s) in all.zip(scale.iter().flatten()) {
                    assert!(
                        (g - e).abs() <= tol * s + 1e-5,
                        "{name} rows={rows}: {g} vs {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn inputs_that_are_views_multiply_like_their_copies() {
        let dev = Device::Cpu;
        let w = Tensor::randn(0f32, 1.0, (40, 64), &dev).unwrap();
        let lin = Linear::from_qtensor(QTensor::quantize(&w, GgmlDType::Q8_0).unwrap()).unwrap();
        assert_eq!(lin.held_as(), "q8_0 (int8 kernels)");
        let base = Tensor::randn(0f32, 1.0, (64, 9), &dev).unwrap();
        // A transposed view (not contiguous) and rows 2..7 of it made contiguous (an offset).
        let view = base.t().unwrap();
        let rows = view.contiguous().unwrap().narrow(0, 2, 5).unwrap();
        for x in [view, rows] {
            let copy = Tensor::from_vec(
                x.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                x.dims(),
                &dev,
            )
            .unwrap();
            let got = lin
                .forward(&x, GEMM_ROWS)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            let want = lin
                .forward(&copy, GEMM_ROWS)
                .unwrap()
                .to_vec2::<f32>()
                .unwrap();
            assert_eq!(got, want);
        }
    }
}
