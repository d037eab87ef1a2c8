use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};

use super::*;

fn dtype(f: Format) -> GgmlDType {
    match f {
        Format::Q4_0 => GgmlDType::Q4_0,
        Format::Q4_1 => GgmlDType::Q4_1,
        Format::Q8_0 => GgmlDType::Q8_0,
        Format::Q4K => GgmlDType::Q4K,
        Format::Q5K => GgmlDType::Q5K,
        Format::Q6K => GgmlDType::Q6K,
    }
}

/// Deterministic values of varied sign and size (an LCG through a sum of uniforms).
fn values(n: usize, seed: u64, scale: f32) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            let mut acc = 0f32;
            for _ in 0..3 {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                acc += (s >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            }
            acc * scale
        })
        .collect()
}

/// A `[rows, cols]` matrix quantized by candle (llama.cpp's quantizers), and ours over it.
fn matrix(f: Format, rows: usize, cols: usize) -> (QMatrix, QTensor) {
    let w = values(rows * cols, 7, 0.6);
    let t = Tensor::from_vec(w, (rows, cols), &Device::Cpu).unwrap();
    let q = QTensor::quantize(&t, dtype(f)).unwrap();
    let m = QMatrix::new(f, q.data().unwrap().into_owned(), rows, cols).unwrap();
    (m, q)
}

/// Columns per format: an odd number of 32-blocks (padding) and several K super-blocks.
fn cols(f: Format) -> usize {
    if f.block_values() == 32 {
        32 * 7
    } else {
        256 * 3
    }
}

fn dequantized(q: &QTensor) -> Vec<f32> {
    q.dequantize(&Device::Cpu)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

/// `x · wᵀ` in f32 for `batch` rows of `x` and `rows` rows of `w`, and its root mean square.
fn exact_product(x: &[f32], w: &[f32], batch: usize, rows: usize, cols: usize) -> (Vec<f32>, f32) {
    let exact: Vec<f32> = (0..batch * rows)
        .map(|i| {
            let (b, r) = (i / rows, i % rows);
            (0..cols).map(|c| x[b * cols + c] * w[r * cols + c]).sum()
        })
        .collect();
    let rms = (exact.iter().map(|v| v * v).sum::<f32>() / exact.len() as f32).sqrt();
    (exact, rms)
}

/// The most that rounding activation row `b` to 8 bits per `block` values (half a step each)
/// can move its product with weight row `r`.
fn rounding_bound(x: &[f32], w: &[f32], b: usize, r: usize, cols: usize, block: usize) -> f32 {
    let (x, w) = (&x[b * cols..(b + 1) * cols], &w[r * cols..(r + 1) * cols]);
    x.chunks(block)
        .zip(w.chunks(block))
        .map(|(xs, ws)| {
            let step = xs.iter().fold(0f32, |m, v| m.max(v.abs())) / 127.0;
            0.5 * step * ws.iter().map(|v| v.abs()).sum::<f32>()
        })
        .sum()
}

#[test]
fn every_format_dequantizes_exactly_as_llama_cpp() {
    for f in Format::ALL {
        let (rows, cols) = (5, cols(f));
        let (m, q) = matrix(f, rows, cols);
        let want = dequantized(&q);
        let mut row = vec![0f32; cols];
        for m in [m.clone(), repacked(m)] {
            for r in 0..rows {
                m.dequantize_row(r, &mut row).unwrap();
                assert_eq!(row, want[r * cols..(r + 1) * cols], "{f:?} row {r}");
            }
            // A repacked matrix holds zero rows up to 16: they are not rows of it.
            assert!(m.dequantize_row(rows, &mut row).is_none());
        }
    }
}

/// `m` repacked for the best level, where it repacks this format.
fn repacked(m: QMatrix) -> QMatrix {
    let best = *Isa::testable().last().unwrap();
    let packs = best.packs();
    let m = m.packed_for(best);
    assert_eq!(m.is_packed(), packs);
    m
}

/// For each format, each kernel level this CPU has, and batches from one row (decode) to
/// many (prefill): the product is within activation-rounding error of the product with the
/// dequantized weights, and every SIMD level equals the scalar reference.
#[test]
fn every_kernel_multiplies_every_format() {
    let levels = Isa::testable();
    for f in Format::ALL {
        // 70 rows: a partial task and a partial 4-row tile.
        let (rows, cols) = (70, cols(f));
        let (m, q) = matrix(f, rows, cols);
        let packed = repacked(m.clone());
        let w = dequantized(&q);
        for batch in [1, 2, 3, 4, 5, 7, 10, 11, 14, 17, 21, 33] {
            let x = values(batch * cols, batch as u64, 2.0);
            let (exact, rms) = exact_product(&x, &w, batch, rows, cols);
            let reference = m.matmul_with(levels[0], &x, batch);
            for (i, (g, e)) in reference.iter().zip(&exact).enumerate() {
                let block = f.block_values();
                let bound = rounding_bound(&x, &w, i / rows, i % rows, cols, block) + 1e-4 * rms;
                assert!(
                    (g - e).abs() <= bound,
                    "{f:?} scalar batch {batch} [{i}]: {g} vs {e}, bound {bound}"
                );
            }
            // Every SIMD level on file order; repacked, its own kernels on the best level and
            // the rows unpacked again below it.
            let file_order = levels[1..].iter().map(|&isa| (&m, isa));
            let repacked = levels.iter().filter(|_| packed.is_packed());
            for (m, isa) in file_order.chain(repacked.map(|&isa| (&packed, isa))) {
                let got = m.matmul_with(isa, &x, batch);
                let layout = if m.is_packed() { "repacked, " } else { "" };
                for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
                    assert!(
                        (g - r).abs() <= 1e-4 * rms,
                        "{f:?} {layout}{} batch {batch} [{i}]: {g} vs scalar {r}",
                        isa.name()
                    );
                }
            }
        }
    }
}

/// Repacked rows multiplied for a prompt (the GEMM, or Q6_K's AMX tiles) or for a batch of
/// a few sequences (the decode kernel, several rows a call) give exactly, bit for bit, what
/// each activation row gives alone (the decode kernel), on every level that repacks and for
/// every format: a prefix cache that holds a prompt's keys from prefill, or from decode
/// steps, serves the same tokens.
#[test]
fn prompt_rows_equal_decode_rows_bit_for_bit() {
    for (isa, batch) in Isa::testable()
        .into_iter()
        .filter(|i| i.packs())
        .flat_map(|isa| [(isa, 37), (isa, 35), (isa, 13)])
    {
        for f in Format::ALL {
            // 40 weight rows: a whole task and a partial one.
            let (rows, cols) = (40, cols(f));
            let m = matrix(f, rows, cols).0.packed_for(isa);
            let x = values(batch * cols, 11, 2.0);
            let all = m.matmul_with(isa, &x, batch);
            for (b, x) in x.chunks_exact(cols).enumerate() {
                let one = m.matmul_with(isa, x, 1);
                let got = &all[b * rows..(b + 1) * rows];
                let diff = got
                    .iter()
                    .zip(&one)
                    .position(|(g, o)| g.to_bits() != o.to_bits());
                let level = isa.name();
                assert_eq!(diff, None, "{f:?} {level} batch {batch} activation row {b}");
            }
        }
    }
}

/// The AVX-VNNI level (here, on CPUs without it, `vpdpbusd` emulated) gives the AVX2 level's
/// bits, for every format, decode and prompt batches, and weights at their extremes: its sums
/// are the same integers, only added in 32 bits at once. Q8_0's bytes are its exception:
/// `vpdpbusd` takes them offset by 128 and the offset is added apart from the activations'
/// sums, so its results agree to float rounding.
#[test]
fn avx_vnni_gives_avx2_s_bits() {
    let levels = Isa::testable();
    let Some(&vnni) = levels.iter().find(|i| i.name() == "avxvnni") else {
        eprintln!("skipped: no AVX2");
        return;
    };
    let avx2 = levels[1];
    assert_eq!(avx2.name(), "avx2");
    for f in Format::ALL {
        let (rows, cols) = (40, cols(f));
        for m in [matrix(f, rows, cols).0, extreme(f, rows, cols)] {
            let (a, v) = (m.clone().packed_for(avx2), m.packed_for(vnni));
            for batch in [1, 3, 4, 5, 13, 33, 35] {
                let x = values(batch * cols, 5, 2.0);
                let (want, got) = (
                    a.matmul_with(avx2, &x, batch),
                    v.matmul_with(vnni, &x, batch),
                );
                if f == Format::Q8_0 {
                    let rms = (want.iter().map(|v| v * v).sum::<f32>() / want.len() as f32).sqrt();
                    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                        let tol = 1e-5 * rms.max(1.0);
                        assert!((g - w).abs() <= tol, "Q8_0 batch {batch} [{i}]: {g} vs {w}");
                    }
                    continue;
                }
                let diff = got
                    .iter()
                    .zip(&want)
                    .position(|(g, w)| g.to_bits() != w.to_bits());
                assert_eq!(diff, None, "{f:?} batch {batch}");
            }
        }
    }
}

/// A `[rows, cols]` matrix whose every quantized byte is at its format's extreme (nibbles 15,
/// Q5_K's fifth bits and Q6_K's high bits set, Q8_0's bytes −128), scales 1 and minimums 0.
fn extreme(f: Format, rows: usize, cols: usize) -> QMatrix {
    extreme_with(f, rows, cols, if f == Format::Q8_0 { 0x80 } else { 0xFF })
}

/// As [`extreme`], every quantized byte (Q6_K's scales too) `quant`.
fn extreme_with(f: Format, rows: usize, cols: usize, quant: u8) -> QMatrix {
    let mut data = vec![quant; rows * f.row_bytes(cols).unwrap()];
    let (one, zero) = (half::f16::ONE.to_le_bytes(), [0u8; 2]);
    for blk in data.chunks_exact_mut(f.block_bytes()) {
        match f {
            Format::Q6K => blk[208..210].copy_from_slice(&one),
            Format::Q4_0 | Format::Q8_0 => blk[0..2].copy_from_slice(&one),
            Format::Q4_1 | Format::Q4K | Format::Q5K => {
                blk[0..2].copy_from_slice(&one);
                blk[2..4].copy_from_slice(&zero);
            }
        }
    }
    QMatrix::new(f, data, rows, cols).unwrap()
}

/// Weights at their extremes times activations all +127: the 16-bit sums that the AVX2
/// kernels add before widening are at their largest, and no kernel may overflow them.
#[test]
fn extreme_weights_and_activations_overflow_no_kernel() {
    let levels = Isa::testable();
    // Q6_K once more with its weights `sc·(q − 32)` at their largest: scales −128, 6-bit
    // values 0 (AMX holds `sc·(q − 32)` = 4096 as two bytes).
    let q6 = {
        let mut m = extreme_with(Format::Q6K, 32, cols(Format::Q6K), 0);
        for blk in m.data.chunks_exact_mut(Format::Q6K.block_bytes()) {
            blk[192..208].fill(0x80);
        }
        m
    };
    let matrices = Format::ALL.map(|f| extreme(f, 32, cols(f)));
    for m in matrices.into_iter().chain([q6]) {
        let f = m.format();
        let cols = m.cols();
        let packed = repacked(m.clone());
        for batch in [1, 4, 5, 33] {
            let x = vec![1.0f32; batch * cols];
            let reference = m.matmul_with(levels[0], &x, batch);
            let scale = reference.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(scale > 0.0, "{f:?}: the extreme matrix multiplies to zero");
            let file_order = levels[1..].iter().map(|&isa| (&m, isa));
            let repacked = levels.iter().filter(|_| packed.is_packed());
            for (m, isa) in file_order.chain(repacked.map(|&isa| (&packed, isa))) {
                let got = m.matmul_with(isa, &x, batch);
                for (i, (g, r)) in got.iter().zip(&reference).enumerate() {
                    assert!(
                        (g - r).abs() <= 1e-5 * scale,
                        "{f:?} {} packed={} batch {batch} [{i}]: {g} vs scalar {r}",
                        isa.name(),
                        m.is_packed()
                    );
                }
            }
        }
    }
}

/// candle's quantized matmul is llama.cpp's algorithm (activations in Q8_0 or Q8_K): ours is
/// at least as close to the exact product of the same quantized weights.
#[test]
fn products_agree_with_llama_cpps_quantized_path() {
    for f in Format::ALL {
        // candle's own kernels want whole pairs of 32-blocks.
        let (rows, cols, batch) = (40, 512, 3);
        let (m, q) = matrix(f, rows, cols);
        let x = values(batch * cols, 99, 1.0);
        let xt = Tensor::from_vec(x.clone(), (batch, cols), &Device::Cpu).unwrap();
        let w = dequantized(&q);
        let theirs: Vec<f32> = QMatMul::from_qtensor(q)
            .unwrap()
            .forward(&xt)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        let ours = m.matmul(&x, batch);
        let (exact, rms) = exact_product(&x, &w, batch, rows, cols);
        let err = |v: &[f32]| -> f32 {
            v.iter()
                .zip(&exact)
                .map(|(a, e)| (a - e).abs())
                .fold(0.0, f32::max)
                / rms
        };
        // The same activation blocks as llama.cpp (32 values, 256 for the K formats): we land
        // as close to the exact product as it does, never farther.
        let (e_ours, e_theirs) = (err(&ours), err(&theirs));
        assert!(
            e_ours <= e_theirs * 1.05 && e_ours < 0.02,
            "{f:?}: max error {e_ours} of the rms, llama.cpp's {e_theirs}"
        );
    }
}

/// The panel holds row `r`'s bytes `4k..4k + 4` at word `k`, lane `r % 16` of group `r / 16`,
/// and the unpacked scales and offsets beside them, zeros past the rows given; the SIMD
/// interleaving equals the portable one.
#[test]
fn a_panel_interleaves_rows_four_bytes_at_a_time() {
    let (rows, cols) = (20, 512);
    let (m, _) = matrix(Format::Q4K, rows, cols);
    let row_bytes = Format::Q4K.row_bytes(cols).unwrap();
    let mut panel = panel::Panel::default();
    panel.fill(Format::Q4K, &m.data, rows, cols, cols, panel::transpose);
    assert_eq!(panel.groups, 2);
    let (mut q, mut a, mut b) = (vec![0i8; cols], vec![0f32; 32], vec![0f32; 32]);
    for r in 0..32 {
        let (g, lane) = (r / 16, r % 16);
        if r < rows {
            let row = &m.data[r * row_bytes..(r + 1) * row_bytes];
            Format::Q4K.unpack::<true>(row, &mut q, &mut a, &mut b);
        } else {
            q.fill(0);
            a.fill(0.0);
            b.fill(0.0);
        }
        for k in 0..cols / 4 {
            let word = panel.group_q(g)[k * 16 + lane]
                .to_le_bytes()
                .map(|v| v as i8);
            assert_eq!(word, q[4 * k..4 * k + 4], "row {r} k {k}");
        }
        for h in 0..cols / 16 {
            assert_eq!(panel.group_a(g)[h * 16 + lane], a[h], "row {r} scale {h}");
            assert_eq!(panel.group_b(g)[h * 16 + lane], b[h], "row {r} offset {h}");
        }
    }
    for isa in Isa::available().into_iter().filter(|i| i.has_gemm()) {
        let mut fast = panel::Panel::default();
        isa.fill_panel(&mut fast, Format::Q4K, &m.data, rows, cols);
        for g in 0..2 {
            assert_eq!(fast.group_q(g), panel.group_q(g), "{}", isa.name());
            assert_eq!(fast.group_a(g), panel.group_a(g), "{}", isa.name());
            assert_eq!(fast.group_b(g), panel.group_b(g), "{}", isa.name());
        }
    }
}

#[test]
fn an_empty_batch_gives_an_empty_product() {
    let (m, _) = matrix(Format::Q4K, 4, 256);
    for isa in Isa::testable() {
        assert!(m.matmul_with(isa, &[], 0).is_empty());
    }
}

#[test]
fn sizes_that_do_not_match_the_format_are_refused() {
    assert!(QMatrix::new(Format::Q4_1, vec![0; 40], 1, 33).is_none());
    assert!(QMatrix::new(Format::Q4_1, vec![0; 39], 1, 64).is_none());
    assert!(QMatrix::new(Format::Q4K, vec![0; 144], 1, 128).is_none());
    assert!(QMatrix::new(Format::Q6K, vec![0; 210], 1, 256).is_some());
    assert!(QMatrix::new(Format::Q8_0, vec![], 0, 32).is_none());
}

#[test]
fn the_scalar_level_is_always_available_and_best_is_one_of_them() {
    let all = Isa::available();
    assert_eq!(all[0].name(), "scalar");
    assert!(all.contains(&Isa::best()));
}
