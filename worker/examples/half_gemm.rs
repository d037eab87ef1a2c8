//! Times one 16-bit weight matrix times activation rows with every kernel this CPU has, in
//! GFlop/s: `cargo run --release -p arena-worker --example half_gemm -- ROWS COLS M [f16|bf16]`.
//! Set `RAYON_NUM_THREADS=1` for one core. Arena's own benchmark is `arena bench worker`;
//! this isolates the kernels (see docs/BENCHMARKS.md). Cargo builds the library for examples
//! apart from the `arena` binary's (with the dev-dependencies' features), and the two builds
//! can inline a kernel differently: one such build kept a tile's sums on the stack and ran at
//! half the binary's rate. Confirm a kernel change with `arena bench worker`.

use std::time::Instant;

use arena_worker::model::half::{Half, HalfMatrix, Kernel};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: half_gemm ROWS COLS M [f16|bf16]";
    let num = |i: usize| -> Result<usize, String> {
        args.get(i)
            .and_then(|a| a.parse().ok())
            .filter(|&n: &usize| n > 0)
            .ok_or_else(|| usage.to_string())
    };
    let (rows, cols, m) = (num(0)?, num(1)?, num(2)?);
    let size = |a: usize, b: usize| a.checked_mul(b).ok_or("matrix too large");
    let (weights, acts) = (size(rows, cols)?, size(m, cols)?);
    let kind = match args.get(3).map(String::as_str) {
        None | Some("f16") => Half::F16,
        Some("bf16") => Half::Bf16,
        Some(_) => return Err(usage.to_string()),
    };
    // Values in [-0.5, 0.5), the same for both kinds (exact in either).
    let value = |i: usize| ((i * 7919) % 1000) as f32 / 1000.0 - 0.5;
    let bytes: Vec<u8> = (0..weights)
        .flat_map(|i| match kind {
            Half::F16 => half::f16::from_f32(value(i)).to_le_bytes(),
            Half::Bf16 => half::bf16::from_f32(value(i)).to_le_bytes(),
        })
        .collect();
    let w = HalfMatrix::from_le_bytes(kind, &bytes, rows, cols).ok_or("matrix too large")?;
    let x: Vec<f32> = (0..acts)
        .map(|i| ((i * 31) % 97) as f32 / 97.0 - 0.5)
        .collect();
    let flops = 2.0 * weights as f64 * m as f64;
    for kernel in Kernel::available(kind) {
        std::hint::black_box(w.matmul_by(kernel, &x, m)); // warm-up
        let reps = 3;
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(w.matmul_by(kernel, &x, m));
        }
        let dt = t.elapsed().as_secs_f64() / reps as f64;
        println!(
            "{kernel:?} {rows}x{cols} by {m} rows: {:.1} ms, {:.1} GFlop/s",
            dt * 1e3,
            flops / dt / 1e9
        );
    }
    Ok(())
}
