//! Times AMX tile instructions alone and beside vector work, in ns per repetition:
//! `cargo run --release -p arena-worker --example tile_costs`. What the Q6_K tile kernel's
//! design rests on (docs/BENCHMARKS.md): a tile product's cost whatever its depth, a tile
//! store's, whether vector instructions overlap tile ones, and tile loads from L1, L2 and L3.

use std::arch::asm;
use std::time::Instant;

use arena_worker::model::quant::Isa;

#[repr(C, align(64))]
struct Config([u8; 64]);

#[repr(C, align(64))]
struct Buf([u8; 16384]);

fn main() -> Result<(), String> {
    // Asking for the `amx` level has the OS grant this process the tile state.
    if !Isa::available().iter().any(|i| i.has_amx()) {
        return Err("this CPU or OS has no AMX tiles".into());
    }
    let reps = 2_000_000usize;
    let mut config = [0u8; 64];
    config[0] = 1;
    for t in 0..8 {
        config[16 + 2 * t] = 64;
        config[48 + t] = 16;
    }
    let config = Config(config);
    let buf = Box::new(Buf([1; 16384]));
    let p = buf.0.as_ptr();
    // SAFETY: the tile state is granted (above); every tile instruction reads or writes 16
    // rows of 64 bytes at `p` + at most 13 KiB, inside the 16 KiB buffer, or a stream below.
    #[allow(unsafe_code)]
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr());
        macro_rules! time {
            ($name:expr, $($line:literal),*) => {{
                let t = Instant::now();
                let mut n = reps;
                // Vector registers zeroed first: whatever they held may be subnormal, whose
                // multiply-adds take a slow path.
                asm!("vpxord zmm0, zmm0, zmm0", "vpxord zmm1, zmm1, zmm1", "vpxord zmm2, zmm2, zmm2",
                    "vpxord zmm3, zmm3, zmm3", "vpxord zmm4, zmm4, zmm4", "vpxord zmm5, zmm5, zmm5",
                    "vpxord zmm6, zmm6, zmm6", "vpxord zmm7, zmm7, zmm7",
                    "2:", $($line,)* "/* {p} {s} */", "dec {n}", "jnz 2b",
                    n = inout(reg) n, p = in(reg) p, s = in(reg) 64usize,
                    out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _,
                    out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _);
                let _ = n;
                println!("{:44} {:6.1} ns", $name, t.elapsed().as_nanos() as f64 / reps as f64);
            }};
        }
        time!("tdpbssd, one accumulator", "tdpbssd tmm0, tmm2, tmm4");
        time!(
            "tdpbssd, four accumulators (per product)",
            "tdpbssd tmm0, tmm2, tmm4",
            "tdpbssd tmm1, tmm3, tmm5",
            "tdpbssd tmm6, tmm2, tmm5",
            "tdpbssd tmm7, tmm3, tmm4"
        );
        time!("tilestored (1 KiB)", "tilestored [{p} + {s}*1], tmm0");
        time!("tileloadd (1 KiB, L1)", "tileloadd tmm2, [{p} + {s}*1]");
        time!(
            "load, load, zero, product, store",
            "tileloadd tmm2, [{p} + {s}*1]",
            "tileloadd tmm4, [{p} + {s}*1 + 2048]",
            "tilezero tmm0",
            "tdpbssd tmm0, tmm2, tmm4",
            "tilestored [{p} + {s}*1 + 4096], tmm0"
        );
        time!(
            "8 independent vfmadd231ps",
            "vfmadd231ps zmm0, zmm6, zmm7",
            "vfmadd231ps zmm1, zmm6, zmm7",
            "vfmadd231ps zmm2, zmm6, zmm7",
            "vfmadd231ps zmm3, zmm6, zmm7",
            "vfmadd231ps zmm4, zmm6, zmm7",
            "vfmadd231ps zmm5, zmm6, zmm7",
            "vfmadd231ps zmm0, zmm6, zmm7",
            "vfmadd231ps zmm1, zmm6, zmm7"
        );
        time!(
            "the two lines above together",
            "tileloadd tmm2, [{p} + {s}*1]",
            "tileloadd tmm4, [{p} + {s}*1 + 2048]",
            "tilezero tmm0",
            "tdpbssd tmm0, tmm2, tmm4",
            "tilestored [{p} + {s}*1 + 4096], tmm0",
            "vfmadd231ps zmm0, zmm6, zmm7",
            "vfmadd231ps zmm1, zmm6, zmm7",
            "vfmadd231ps zmm2, zmm6, zmm7",
            "vfmadd231ps zmm3, zmm6, zmm7",
            "vfmadd231ps zmm4, zmm6, zmm7",
            "vfmadd231ps zmm5, zmm6, zmm7",
            "vfmadd231ps zmm0, zmm6, zmm7",
            "vfmadd231ps zmm1, zmm6, zmm7"
        );
        // One super-block of the Q6_K kernel: 12 tile loads (3 × 4 KiB), 8 products, 2 stores,
        // from three streams of `kib` KiB each, 4 KiB further each time.
        for kib in [4usize, 32, 256, 1024, 4096, 16384] {
            let bytes = kib * 1024;
            let streams = [vec![1u8; bytes], vec![1u8; bytes], vec![1u8; bytes]];
            let out = vec![0u8; 2048];
            let n = reps / 10;
            let t = Instant::now();
            let mut at = 0;
            for _ in 0..n {
                let [x, h, l] = [0, 1, 2].map(|s| streams[s].as_ptr().add(at));
                asm!(
                    "tilezero tmm0", "tilezero tmm1",
                    "tileloadd tmm2, [{x} + {s}*1]", "tileloadd tmm4, [{h} + {s}*1]",
                    "tileloadd tmm5, [{l} + {s}*1]",
                    "tdpbssd tmm0, tmm2, tmm4", "tdpbsud tmm1, tmm2, tmm5",
                    "tileloadd tmm3, [{x} + {s}*1 + 1024]", "tileloadd tmm6, [{h} + {s}*1 + 1024]",
                    "tileloadd tmm7, [{l} + {s}*1 + 1024]",
                    "tdpbssd tmm0, tmm3, tmm6", "tdpbsud tmm1, tmm3, tmm7",
                    "tileloadd tmm2, [{x} + {s}*1 + 2048]", "tileloadd tmm4, [{h} + {s}*1 + 2048]",
                    "tileloadd tmm5, [{l} + {s}*1 + 2048]",
                    "tdpbssd tmm0, tmm2, tmm4", "tdpbsud tmm1, tmm2, tmm5",
                    "tileloadd tmm3, [{x} + {s}*1 + 3072]", "tileloadd tmm6, [{h} + {s}*1 + 3072]",
                    "tileloadd tmm7, [{l} + {s}*1 + 3072]",
                    "tdpbssd tmm0, tmm3, tmm6", "tdpbsud tmm1, tmm3, tmm7",
                    "tilestored [{c} + {s}*1], tmm0", "tilestored [{c} + {s}*1 + 1024], tmm1",
                    x = in(reg) x, h = in(reg) h, l = in(reg) l, c = in(reg) out.as_ptr(),
                    s = in(reg) 64usize,
                );
                at = (at + 4096) % bytes;
            }
            let name = format!("super-block, 3 streams of {kib} KiB");
            println!(
                "{name:44} {:6.1} ns",
                t.elapsed().as_nanos() as f64 / n as f64
            );
        }
        asm!("tilerelease");
    }
    Ok(())
}
