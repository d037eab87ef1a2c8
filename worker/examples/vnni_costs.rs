//! Times the AVX-512 VNNI GEMM's inner loop with each way of finishing a scale span, in GOp/s
//! on one core: `cargo run --release -p arena-worker --example vnni_costs`. What the int8
//! GEMM's design rests on (docs/BENCHMARKS.md): which work beside `vpdpbusd` is free and which
//! takes its place. The loop has the GEMM's shape (`quant::kernel::gemm`): 32 weight rows as
//! two vectors of 16 from a 128 KiB panel, four activation rows of 512 broadcast four bytes
//! at a time, 4096 weights per row; its values are constants, as only the time is wanted.

use std::arch::x86_64::*;
use std::time::Instant;

use arena_worker::model::quant::Isa;

/// Weights per row, as a 7B-shaped model's.
const COLS: usize = 4096;
/// Activation rows swept per panel, as a 512-token prompt's.
const ROWS: usize = 512;
/// Weight vectors of 16 rows per step.
const G: usize = 2;
/// Activation rows per call.
const N: usize = 4;

/// How a span's integer sums are finished (a constant, so each way compiles to its own loop).
mod finish {
    /// Summed on, unscaled: `vpdpbusd` alone.
    pub const NOTHING: u8 = 0;
    /// Times an integer scale and added (`vpmulld`, `vpaddd`): Q6_K's GEMM.
    pub const INT_SCALE: u8 = 1;
    /// As `INT_SCALE`, and the offsets in integers per 256 weights (`vpdpwssd` by sub-block
    /// pairs), both converted once per 256.
    pub const INT_SCALE_INT_OFFSETS: u8 = 2;
    /// Converted and scaled in floats (`vcvtdq2ps`, `vfmadd`), then the offset (`vfmadd`):
    /// the K formats' GEMM.
    pub const FLOAT_SCALE_OFFSET: u8 = 3;
    /// Converted and scaled in floats, no offset.
    pub const FLOAT_SCALE: u8 = 4;
}
use finish::*;

/// One call: the panel times activation rows `c0..c0 + N`, spans of `S` weights.
// SAFETY: callers hold AVX-512 F/BW/VNNI; `w` holds `16·G·COLS` bytes, each of `sc`'s
// vectors `G·16·COLS / 16` values, `x` `ROWS·COLS` bytes, and `c0 + N ≤ ROWS`, so every load
// is in bounds.
#[allow(unsafe_code)]
// Indexed as the GEMM indexes its accumulators, `[group][activation row]`.
#[allow(clippy::needless_range_loop)]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn call<const S: usize, const F: u8>(w: &[u8], sc: &Scales, x: &[u8], c0: usize) -> __m512 {
    let (wp, xp) = (w.as_ptr(), x.as_ptr().add(c0 * COLS));
    let half = _mm512_set1_ps(0.5);
    // Per span, per vector of 16 rows: the scale (integer or float) and the float offset.
    let (si, sa, so) = (sc.ints.as_ptr(), sc.a.as_ptr(), sc.b.as_ptr());
    let mut facc = [[_mm512_setzero_ps(); N]; G];
    for sb in 0..COLS / 256 {
        let mut isup = [[_mm512_setzero_si512(); N]; G];
        let mut imin = [[_mm512_setzero_si512(); N]; G];
        let mut fsup = [[_mm512_setzero_ps(); N]; G];
        for span in 0..256 / S {
            let mut acc = [[_mm512_setzero_si512(); N]; G];
            for step in 0..S / 4 {
                let k = (sb * 256 + span * S) / 4 + step;
                let wv: [__m512i; G] =
                    std::array::from_fn(|g| _mm512_loadu_si512(wp.add(64 * (G * k + g)).cast()));
                for c in 0..N {
                    let b = xp.add(c * COLS + 4 * k).cast::<i32>().read_unaligned();
                    let xv = _mm512_set1_epi32(b);
                    for g in 0..G {
                        acc[g][c] = _mm512_dpbusd_epi32(acc[g][c], wv[g], xv);
                    }
                }
            }
            let at = |g: usize| LANES * (G * (sb * 256 / S + span) + g);
            let int: [__m512i; G] =
                std::array::from_fn(|g| _mm512_loadu_si512(si.add(at(g)).cast()));
            let fa: [__m512; G] = std::array::from_fn(|g| _mm512_loadu_ps(sa.add(at(g))));
            let fb: [__m512; G] = std::array::from_fn(|g| _mm512_loadu_ps(so.add(at(g))));
            for c in 0..N {
                for g in 0..G {
                    let a = acc[g][c];
                    match F {
                        NOTHING => isup[g][c] = _mm512_add_epi32(isup[g][c], a),
                        INT_SCALE | INT_SCALE_INT_OFFSETS => {
                            let t = _mm512_mullo_epi32(a, int[g]);
                            isup[g][c] = _mm512_add_epi32(isup[g][c], t);
                        }
                        FLOAT_SCALE_OFFSET => {
                            let v = _mm512_cvtepi32_ps(a);
                            fsup[g][c] = _mm512_fmadd_ps(v, fa[g], fsup[g][c]);
                            facc[g][c] = _mm512_fmadd_ps(fb[g], half, facc[g][c]);
                        }
                        _ => {
                            let v = _mm512_cvtepi32_ps(a);
                            fsup[g][c] = _mm512_fmadd_ps(v, fa[g], fsup[g][c]);
                        }
                    }
                }
            }
        }
        if F == INT_SCALE_INT_OFFSETS {
            for pair in 0..4 {
                for c in 0..N {
                    let at = xp.add(c * COLS + 4 * (sb * 4 + pair));
                    let b = _mm512_set1_epi32(at.cast::<i32>().read_unaligned());
                    for g in 0..G {
                        let m =
                            _mm512_loadu_si512(si.add(LANES * (G * (sb * 4 + pair) + g)).cast());
                        imin[g][c] = _mm512_dpwssd_epi32(imin[g][c], m, b);
                    }
                }
            }
        }
        for c in 0..N {
            for g in 0..G {
                let v = match F {
                    FLOAT_SCALE_OFFSET | FLOAT_SCALE => fsup[g][c],
                    _ => _mm512_cvtepi32_ps(isup[g][c]),
                };
                facc[g][c] = _mm512_fmadd_ps(v, half, facc[g][c]);
                if F == INT_SCALE_INT_OFFSETS {
                    facc[g][c] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(imin[g][c]), half, facc[g][c]);
                }
            }
        }
    }
    facc.iter()
        .flatten()
        .fold(_mm512_setzero_ps(), |s, &v| _mm512_add_ps(s, v))
}

/// A panel's scales and offsets, one vector of 16 rows per 16 weights (as `quant::panel`).
struct Scales {
    ints: Vec<i32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

/// Lanes of a vector: rows per group.
const LANES: usize = 16;

/// GOp/s of `reps` sweeps of every activation row over the panel.
fn time<const S: usize, const F: u8>(w: &[u8], sc: &Scales, x: &[u8], reps: usize) -> f64 {
    let mut sink = 0f32;
    let t = Instant::now();
    for _ in 0..reps {
        for c0 in (0..ROWS).step_by(N) {
            // SAFETY: `main` checked the CPU's features; the buffers have the sizes `call`
            // reads, and `c0 + N ≤ ROWS`.
            #[allow(unsafe_code)]
            let v = unsafe { call::<S, F>(w, sc, x, c0) };
            // SAFETY: as above (AVX-512 F).
            #[allow(unsafe_code)]
            let lane = unsafe { _mm512_reduce_add_ps(v) };
            sink += lane;
        }
    }
    std::hint::black_box(sink);
    let ops = 2.0 * (16 * G * COLS * ROWS * reps) as f64;
    ops / t.elapsed().as_secs_f64() / 1e9
}

fn main() -> Result<(), String> {
    if !Isa::available().iter().any(|i| i.has_gemm()) {
        return Err("this CPU has no AVX-512 VNNI".into());
    }
    let reps: usize = std::env::args()
        .nth(1)
        .map_or(Ok(8), |a| a.parse().map_err(|_| "usage: vnni_costs [REPS]"))?;
    let w = vec![1u8; 16 * G * COLS];
    let x = vec![1u8; ROWS * COLS];
    let n = G * LANES * COLS / 16;
    let sc = Scales {
        ints: vec![3; n],
        a: vec![0.5; n],
        b: vec![-0.25; n],
    };
    macro_rules! case {
        ($name:literal, $s:literal, $f:ident) => {
            time::<$s, $f>(&w, &sc, &x, 1);
            let rate = time::<$s, $f>(&w, &sc, &x, reps);
            println!("{:<36} {rate:6.0} GOp/s", $name);
        };
    }
    case!("vpdpbusd alone", 16, NOTHING);
    case!("span 16, integer scale", 16, INT_SCALE);
    case!("span 16, float scale", 16, FLOAT_SCALE);
    case!("span 32, integer scale", 32, INT_SCALE);
    case!(
        "span 32, integer scale and offsets",
        32,
        INT_SCALE_INT_OFFSETS
    );
    case!("span 32, float scale", 32, FLOAT_SCALE);
    case!("span 32, float scale and offset", 32, FLOAT_SCALE_OFFSET);
    Ok(())
}
