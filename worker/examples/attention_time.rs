//! Times one layer's causal attention of `T` new rows after `OFFSET` cached positions
//! (SmolLM2's heads: 3 key/value heads of 64, 3 queries each), the kernel the worker picks
//! against candle's products: `cargo run --release -p arena-worker --example attention_time --
//! T OFFSET`. Set `RAYON_NUM_THREADS` for the threads; `ARENA_KERNELS` a lower level for the
//! first line (`avx512`: BF16 pages with `vdpbf16ps` instead of AMX tiles; `avx2`: f32 pages
//! and the AVX2 kernel); `ARENA_PAGES=f32` for f32 pages (and the AVX-512
//! kernel) where the CPU would hold BF16; `ARENA_LAYERS=N` to cycle through N layers' pages,
//! so that they come from memory as a whole model's cache does; `REPS=N` for N timed runs of
//! each (300 unless given; more for a profiler).

use std::time::Instant;

use arena_worker::model::kv_cache::pages::PageFormat;
use arena_worker::model::kv_cache::{HostLayer, LayerKv};
use arena_worker::model::{attention, elementwise};
use candle_core::{Device, Result, Tensor};

fn time<T>(name: &str, mut f: impl FnMut(usize) -> Result<T>) -> Result<()> {
    f(0)?;
    let reps = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(300);
    let t = Instant::now();
    for i in 0..reps {
        std::hint::black_box(f(i)?);
    }
    let ms = t.elapsed().as_secs_f64() / reps as f64 * 1e3;
    println!(
        "{name:36} {ms:.3} ms per layer, {:.1} ms for 30 layers",
        30.0 * ms
    );
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let [t, offset] = args[..] else {
        candle_core::bail!("usage: attention_time T OFFSET");
    };
    if t == 0 {
        candle_core::bail!("T must be at least 1");
    }
    let dev = Device::Cpu;
    let (kvh, n_rep, hd) = (3, 3, 64);
    let len = offset + t;
    let q = Tensor::randn(0f32, 1.0, (kvh, n_rep, t, hd), &dev)?;
    // A cache buffer larger than the sequence, as the worker holds it.
    let k = Tensor::randn(0f32, 1.0, (kvh, len + 64, hd), &dev)?.narrow(1, 0, len)?;
    let v = Tensor::randn(0f32, 1.0, (kvh, len + 64, hd), &dev)?.narrow(1, 0, len)?;
    // The worker's pages, written as a conversation's turns were; as many layers as
    // ARENA_LAYERS says (default 1), so that a model's whole cache can be read from memory
    // rather than one layer's from the CPU's caches.
    let layers: usize = std::env::var("ARENA_LAYERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .max(1);
    let f32_pages = std::env::var("ARENA_PAGES").is_ok_and(|p| p.trim() == "f32");
    let flat = |x: &Tensor| x.contiguous()?.flatten_all()?.to_vec1::<f32>();
    let (k0, v0) = (
        flat(&k.narrow(1, 0, offset)?)?,
        flat(&v.narrow(1, 0, offset)?)?,
    );
    let (k1, v1) = (
        flat(&k.narrow(1, offset, t)?)?,
        flat(&v.narrow(1, offset, t)?)?,
    );
    let pages: Vec<HostLayer> = (0..layers)
        .map(|_| {
            let mut layer = match f32_pages {
                true => HostLayer::with_format(kvh, hd, PageFormat::F32),
                false => HostLayer::new(kvh, hd),
            };
            layer.write(0, &k0, &v0);
            layer.write(offset, &k1, &v1);
            layer
        })
        .collect();
    time("attention (the worker's kernel)", |i| {
        let layer = &pages[i % layers];
        attention::causal(&q, LayerKv::Host { layer, len }, offset)
    })?;
    // candle's path, one block of up to 64 query rows as it ran before the AVX-512 kernel.
    let qc = q.reshape((kvh, n_rep * t, hd))?;
    time("candle: scores + softmax + values", |_| {
        let scores = qc.matmul(&k.t()?)?;
        let probs = elementwise::causal_softmax(&scores, 0.125, t, offset + 1)?;
        probs.matmul(&v)
    })?;
    Ok(())
}
