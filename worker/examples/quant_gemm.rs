//! Times one quantized weight matrix times activation rows at every kernel level this CPU
//! has, in GOp/s: `cargo run --release -p arena-worker --example quant_gemm -- FORMAT ROWS
//! COLS M [REPS [ISA]]` (FORMAT one of q4_0 q4_1 q8_0 q4_k q5_k q6_k; REPS timed runs, 3
//! unless given; ISA one kernel level's name, every level unless given). `RAYON_NUM_THREADS=1`
//! for one core; `COPIES=N` multiplies N copies in turn, to read from memory a matrix that a
//! cache would hold. Arena's own benchmark is `arena bench worker`; this isolates the kernels (see
//! docs/BENCHMARKS.md).

use std::time::Instant;

use arena_worker::model::hot_threads::with_hot_threads;
use arena_worker::model::quant::{Format, Isa, QMatrix};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: quant_gemm q4_0|q4_1|q8_0|q4_k|q5_k|q6_k ROWS COLS M [REPS [ISA]]";
    let format = Format::ALL
        .into_iter()
        .find(|f| Some(f.held_as().split(' ').next()) == args.first().map(|a| Some(a.as_str())))
        .ok_or(usage)?;
    let num = |i: usize| -> Result<usize, String> {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| usage.to_string())
    };
    let (rows, cols, m) = (num(1)?, num(2)?, num(3)?);
    let reps = if args.len() > 4 { num(4)? } else { 3 };
    let row_bytes = format
        .row_bytes(cols)
        .ok_or("COLS is not a whole number of blocks")?;
    // Varied bytes; every block's leading f16 (its scale) set to 1/16, so no NaN slows a step.
    let (block, bytes) = (format.block_bytes(), rows * row_bytes);
    let data: Vec<u8> = (0..bytes)
        .map(|i| match i % block {
            0 => 0x00,
            1 => 0x2C,
            _ => (i * 7919 % 251) as u8,
        })
        .collect();
    let w = QMatrix::new(format, data, rows, cols).ok_or("matrix too large")?;
    let x: Vec<f32> = (0..m * cols)
        .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let only = args.get(5);
    // On a pool thread with the others spinning, as the engine runs a step: timed from the
    // main thread, every product would wait for a sleeping pool to wake.
    let pool = rayon::ThreadPoolBuilder::new()
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| with_hot_threads(|| time_all(&w, &x, m, reps, only)));
    Ok(())
}

/// Times `w` by `x` at every kernel level named `only` (all without it), printing GOp/s.
fn time_all(w: &QMatrix, x: &[f32], m: usize, reps: usize, only: Option<&String>) {
    // Copies taken in turn, so that a matrix which fits in a cache is still read from memory
    // as a model's layers are.
    let copies = std::env::var("COPIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n: &usize| n > 0)
        .unwrap_or(1);
    let (rows, cols, format) = (w.rows(), w.cols(), w.format());
    let ops = 2.0 * (rows * cols) as f64 * m as f64;
    for isa in Isa::available()
        .into_iter()
        .filter(|isa| only.is_none_or(|name| name == isa.name()))
    {
        let ws: Vec<QMatrix> = (0..copies).map(|_| w.clone().packed_for(isa)).collect();
        for w in &ws {
            std::hint::black_box(w.matmul_with(isa, x, m)); // warm-up
        }
        let t = Instant::now();
        for _ in 0..reps {
            for w in &ws {
                std::hint::black_box(w.matmul_with(isa, x, m));
            }
        }
        let dt = t.elapsed().as_secs_f64() / (reps * copies) as f64;
        println!(
            "{} {format:?} {rows}x{cols} by {m} rows: {:.1} ms, {:.1} GOp/s",
            isa.name(),
            dt * 1e3,
            ops / dt / 1e9
        );
    }
}
