use super::*;

/// Deterministic values in [-1, 1) (xorshift), so failures reproduce.
fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn matrix(kind: Half, rows: usize, cols: usize, seed: u64) -> HalfMatrix {
    let bytes: Vec<u8> = values(rows * cols, seed)
        .into_iter()
        .flat_map(|v| match kind {
            Half::F16 => half::f16::from_f32(v).to_le_bytes(),
            Half::Bf16 => half::bf16::from_f32(v).to_le_bytes(),
        })
        .collect();
    HalfMatrix::from_le_bytes(kind, bytes, rows, cols).unwrap()
}

/// `x · Wᵀ` in f64 from the stored values, and the scale of each sum (Σ|w·x|) for tolerance.
fn reference(w: &HalfMatrix, x: &[f32], m: usize) -> (Vec<f64>, Vec<f64>) {
    let mut out = vec![0f64; m * w.rows()];
    let mut scale = vec![0f64; m * w.rows()];
    for r in 0..w.rows() {
        let bytes = &w.data[2 * r * w.cols()..2 * (r + 1) * w.cols()];
        let row: Vec<f32> = bytes
            .chunks_exact(2)
            .map(|b| w.kind().to_f32(u16::from_le_bytes([b[0], b[1]])))
            .collect();
        for i in 0..m {
            let xi = &x[i * w.cols()..(i + 1) * w.cols()];
            let terms = row.iter().zip(xi).map(|(&a, &b)| a as f64 * b as f64);
            out[i * w.rows() + r] = terms.clone().sum();
            scale[i * w.rows() + r] = terms.map(f64::abs).sum();
        }
    }
    (out, scale)
}

#[test]
fn products_equal_the_f64_reference_for_every_kind_kernel_and_shape() {
    // Columns with and without tails past the last 8, 16 and 32 and past the unrolled steps;
    // rows past a task; activation rows of each row kernel (1–4, and 5 past one group of
    // four) and either side of GEMM_FROM, with a GEMM tile's remainders.
    for kind in [Half::F16, Half::Bf16] {
        for (rows, cols) in [(1, 8), (5, 40), (33, 96), (130, 67), (6, 300)] {
            let w = matrix(kind, rows, cols, (rows * cols) as u64);
            for m in [1, 2, 3, 4, 5, GEMM_FROM - 1, GEMM_FROM, 17, 40] {
                let x = values(m * cols, m as u64 + 7);
                let (want, scale) = reference(&w, &x, m);
                for kernel in Kernel::available(kind) {
                    // Rounding activations to BF16 moves each term by up to 2⁻⁹ of itself.
                    let tol = if kernel.rounds_activations() {
                        1.0 / 256.0
                    } else {
                        1e-5
                    };
                    let got = w.matmul_by(kernel, &x, m);
                    assert_eq!(got.len(), want.len());
                    for (k, ((&g, &e), &s)) in got.iter().zip(&want).zip(&scale).enumerate() {
                        assert!(
                            (g as f64 - e).abs() <= tol * s.max(1e-3),
                            "{kernel:?} {rows}x{cols} m={m} at {k}: {g} vs {e}"
                        );
                    }
                }
            }
        }
    }
}

/// Where activations are rounded to BF16, the products are llama.cpp's on such CPUs: exact
/// sums of BF16 weights times BF16-rounded activations, to f32 accumulation error.
#[test]
fn bf16_dot_products_equal_llama_cpps_rounded_activation_products() {
    let Some(kernel) = Kernel::available(Half::Bf16)
        .into_iter()
        .find(|k| k.rounds_activations())
    else {
        return; // no AVX-512 BF16 on this CPU
    };
    for (rows, cols) in [(33, 96), (6, 300), (9, 4100)] {
        let w = matrix(Half::Bf16, rows, cols, 3);
        for m in [1, 4, 8, 17] {
            let x = values(m * cols, 11);
            let rounded: Vec<f32> = x
                .iter()
                .map(|&v| half::bf16::from_f32(v).to_f32())
                .collect();
            let (want, scale) = reference(&w, &rounded, m);
            let got = w.matmul_by(kernel, &x, m);
            for (k, ((&g, &e), &s)) in got.iter().zip(&want).zip(&scale).enumerate() {
                assert!(
                    (g as f64 - e).abs() <= 1e-5 * s.max(1e-3),
                    "{rows}x{cols} m={m} at {k}: {g} vs {e}"
                );
            }
        }
    }
}

#[test]
fn stored_values_read_back_exactly() {
    let vals = [1.0f32, -2.5, 0.333_333_34, 65504.0, -0.0, 1e-7, 3.0e38, 7.0];
    for kind in [Half::F16, Half::Bf16] {
        let bits: Vec<u16> = vals
            .iter()
            .map(|&v| match kind {
                Half::F16 => half::f16::from_f32(v).to_bits(),
                Half::Bf16 => half::bf16::from_f32(v).to_bits(),
            })
            .collect();
        let bytes: Vec<u8> = bits.iter().flat_map(|b| b.to_le_bytes()).collect();
        let m = HalfMatrix::from_le_bytes(kind, bytes, 1, vals.len()).unwrap();
        let want: Vec<f32> = bits.iter().map(|&b| kind.to_f32(b)).collect();
        for kernel in Kernel::available(kind) {
            let mut got = vec![0f32; vals.len()];
            kernel.convert(&m.data, &mut got);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{kernel:?}"
            );
        }
        let mut row = vec![0f32; vals.len()];
        assert!(m.dequantize_row(1, &mut row).is_none(), "no row 1");
        m.dequantize_row(0, &mut row).unwrap();
        assert_eq!(row, want);
    }
}

#[test]
fn byte_counts_that_do_not_match_the_shape_are_refused() {
    let bytes = |n: usize| vec![0u8; n];
    assert!(HalfMatrix::from_le_bytes(Half::F16, bytes(8), 2, 2).is_some());
    assert!(HalfMatrix::from_le_bytes(Half::F16, bytes(7), 2, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::Bf16, bytes(10), 2, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::Bf16, bytes(0), 0, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::F16, bytes(8), usize::MAX, 2).is_none());
}
