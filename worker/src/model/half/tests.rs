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
    HalfMatrix::from_le_bytes(kind, &bytes, rows, cols).unwrap()
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
                    let tol = kernel.term_error().max(1e-5);
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

/// The prefix cache reuses rows that decode computed alone beside rows a prompt computed
/// together: in a batch-invariant process each row's result must not depend on how many rows
/// share the product, bit for bit, on every kernel it runs (all but AMX).
#[test]
fn a_rows_products_do_not_depend_on_the_rows_beside_it() {
    keep_rows_alike();
    for kind in [Half::F16, Half::Bf16] {
        for (rows, cols) in [(70, 96), (9, 300), (5, 4100)] {
            let w = matrix(kind, rows, cols, 17);
            let x = values(40 * cols, 19);
            for kernel in Kernel::available(kind)
                .into_iter()
                .filter(|k| !matches!(k, Kernel::Amx(_)))
            {
                let alone: Vec<Vec<u32>> = (0..40)
                    .map(|i| {
                        let row = &x[i * cols..(i + 1) * cols];
                        w.matmul_by(kernel, row, 1)
                            .iter()
                            .map(|v| v.to_bits())
                            .collect()
                    })
                    .collect();
                for m in [2, 3, 4, 5, 8, 12, 15, 16, 17, 40] {
                    let got = w.matmul_by(kernel, &x[..m * cols], m);
                    for (i, want) in alone.iter().take(m).enumerate() {
                        let got: Vec<u32> = got[i * rows..(i + 1) * rows]
                            .iter()
                            .map(|v| v.to_bits())
                            .collect();
                        assert_eq!(&got, want, "{kernel:?} {rows}x{cols}: row {i} of {m}");
                    }
                }
            }
        }
    }
}

#[test]
fn activation_rows_on_cache_lines_or_not_give_the_same_products() {
    // Several rows that do not start on cache lines are copied to rows that do before the
    // tiles read them; either way every product is the same to the bit.
    for kind in [Half::F16, Half::Bf16] {
        let (rows, cols) = (33, 128);
        let w = matrix(kind, rows, cols, 5);
        let x = values(17 * cols, 6);
        let on_lines = AlignedVec::from_slice(&x);
        let mut shifted = AlignedVec::<f32>::zeroed(x.len() + 1);
        shifted[1..].copy_from_slice(&x);
        let shifted = &shifted[1..];
        assert!(kernel::starts_lines(on_lines.as_ptr(), cols));
        assert!(!kernel::starts_lines(shifted.as_ptr(), cols));
        for kernel in Kernel::available(kind) {
            for m in [2, 5, 17] {
                let bits = |x: &[f32]| -> Vec<u32> {
                    w.matmul_by(kernel, &x[..m * cols], m)
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(&on_lines), bits(shifted), "{kernel:?}, {m} rows");
            }
        }
    }
}

/// Where activations are rounded to BF16, the products are llama.cpp's on such CPUs: exact
/// sums of BF16 weights times BF16-rounded activations, to f32 accumulation error.
#[test]
fn bf16_dot_products_equal_llama_cpps_rounded_activation_products() {
    // Bf16Dot, and AMX (whose tiles start at 16 rows), where the CPU has them.
    for kernel in Kernel::available(Half::Bf16)
        .into_iter()
        .filter(|k| k.rounds_activations())
    {
        rounded_products_match(kernel);
    }
}

fn rounded_products_match(kernel: Kernel) {
    for (rows, cols) in [(33, 96), (6, 300), (9, 4100), (70, 64)] {
        let w = matrix(Half::Bf16, rows, cols, 3);
        for m in [1, 4, 8, 17, 33] {
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
                    "{kernel:?} {rows}x{cols} m={m} at {k}: {g} vs {e}"
                );
            }
        }
    }
}

/// F16 on AMX splits weights and activations into BF16 halves: its products must stay
/// closer to the f64 ones than llama.cpp's F16 path (activations rounded to F16, 2⁻¹¹ of each
/// term) comes, which a single BF16 pass (2⁻⁹) would not.
#[test]
fn f16_on_amx_is_closer_than_activations_rounded_to_f16() {
    let Some(kernel) = Kernel::available(Half::F16)
        .into_iter()
        .find(|k| matches!(k, Kernel::Amx(_)))
    else {
        return; // no AMX on this CPU
    };
    let (rows, cols, m) = (40, 2048, 48);
    let w = matrix(Half::F16, rows, cols, 5);
    let x = values(m * cols, 13);
    let (want, _) = reference(&w, &x, m);
    let as_f16: Vec<f32> = x.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
    let (llama, _) = reference(&w, &as_f16, m);
    let err = |got: &[f64]| -> f64 { got.iter().zip(&want).map(|(g, e)| (g - e).abs()).sum() };
    let amx: Vec<f64> = w
        .matmul_by(kernel, &x, m)
        .iter()
        .map(|&v| v as f64)
        .collect();
    assert!(
        err(&amx) * 4.0 < err(&llama),
        "AMX F16 error {} vs activations rounded to F16 {}",
        err(&amx),
        err(&llama)
    );
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
        let m = HalfMatrix::from_le_bytes(kind, &bytes, 1, vals.len()).unwrap();
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
    assert!(HalfMatrix::from_le_bytes(Half::F16, &bytes(8), 2, 2).is_some());
    assert!(HalfMatrix::from_le_bytes(Half::F16, &bytes(7), 2, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::Bf16, &bytes(10), 2, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::Bf16, &bytes(0), 0, 2).is_none());
    assert!(HalfMatrix::from_le_bytes(Half::F16, &bytes(8), usize::MAX, 2).is_none());
}
