//! The attention task in plain Rust, as the build targets: the kernel of CPUs without AVX2
//! and of heads that are not whole vectors. One row at a time: its scores
//! (a multiply-add chain over the head per key), its weights, its weighted values.

use crate::model::elementwise::exp_shifted;
use crate::model::kv_cache::pages::{LANES, PAGE};

use super::host::Task;

/// See [`super::host`]'s `Kernel::run`.
#[inline(always)]
pub(super) fn run(task: &Task, scores: &mut [f32], out: &mut [f32]) {
    let hd = task.kv.head_dim();
    for (i, (row, o)) in scores
        .chunks_exact_mut(task.padded)
        .zip(out.chunks_exact_mut(hd))
        .enumerate()
    {
        let seen = task.seen(i);
        let q = &task.q[i * hd..(i + 1) * hd];
        for b in 0..seen.div_ceil(LANES) {
            let mut acc = [0f32; LANES];
            for (&x, key) in q
                .iter()
                .zip(task.kv.key_block(task.head, b).chunks_exact(LANES))
            {
                for (a, &k) in acc.iter_mut().zip(key) {
                    *a = x.mul_add(k, *a);
                }
            }
            row[b * LANES..][..LANES].copy_from_slice(&acc);
        }
        let inv = 1.0 / exp_shifted(&mut row[..seen], task.scale);
        o.fill(0.0);
        for p in 0..seen.div_ceil(PAGE) {
            let (vals, j0) = (task.kv.value_page(task.head, p), p * PAGE);
            for j in j0..seen.min(j0 + PAGE) {
                let w = row[j];
                for (o, &v) in o.iter_mut().zip(&vals[(j - j0) * hd..][..hd]) {
                    *o = w.mul_add(v, *o);
                }
            }
        }
        for o in o.iter_mut() {
            *o *= inv;
        }
    }
}
