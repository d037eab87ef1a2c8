//! Causal attention on AVX-512, one query row at a time in a fixed order, for every step from
//! decode to prefill.
//!
//! candle's matrix products ran the two products of a chat turn's 22 new rows over 1,910
//! cached positions (SmolLM2: 3 key/value heads of 64) at 66–80 GFlop/s on one Xeon core and
//! no faster on two. Here each task takes up to six query rows of one head: their scores
//! against the head's keys transposed once per call (16 keys are one vector, so a score vector
//! is multiply-adds of broadcast query values), the softmax, and the values weighted key by
//! key. Every row's sums run over the same keys in the same order whichever rows share its
//! task (keys a row does not see weigh exactly zero), so a row computed in a prompt equals the
//! same row computed alone: what a prefix cache's greedy equality stands on.

#![allow(unsafe_code)]

use std::arch::x86_64::*;
use std::cell::RefCell;

use candle_core::{CpuStorage, Layout, Result, Storage, Tensor};
use rayon::prelude::*;

use crate::model::elementwise::softmax_row;
use crate::model::quant::kernel::transpose_words;

/// Query rows per task: six rows' weighted sums of a 64-value slice take 24 registers.
const ROWS: usize = 6;

/// Keys per score vector; head sizes are whole vectors of it.
const LANES: usize = 16;

/// Values of a head row weighted per pass: four vectors.
const CHUNK: usize = 4 * LANES;

thread_local! {
    static SCORES: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static KEYS_T: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The f32 values of a `[heads, len, hd]` tensor whose rows are `hd` values apart: the
/// storage, where head 0 starts, the stride between heads.
fn heads_of<'a>(
    storage: &'a Storage,
    layout: &Layout,
    hd: usize,
) -> Option<(&'a [f32], usize, usize)> {
    let Storage::Cpu(CpuStorage::F32(data)) = storage else {
        return None;
    };
    let s = layout.stride();
    let ok = s.len() == 3 && s[2] == 1 && s[1] == hd;
    ok.then_some((data.as_slice(), layout.start_offset(), s[0]))
}

/// See [`super::causal`]; `None` where the tensors are not f32 rows this kernel reads (the
/// caller then takes candle's path). Callers hold AVX-512 F (an `Isa` with `has_avx512`).
pub fn causal(q: &Tensor, k: &Tensor, v: &Tensor, offset: usize) -> Result<Option<Tensor>> {
    let (kvh, n_rep, t, hd) = q.dims4()?;
    let len = k.dim(1)?;
    if !hd.is_multiple_of(LANES) || len < offset + t || v.dims() != k.dims() || k.dim(0)? != kvh {
        return Ok(None);
    }
    let rows = n_rep * t;
    let q = q.contiguous()?.reshape((kvh, rows, hd))?;
    let (qs, ql) = q.storage_and_layout();
    let (ks, kl) = k.storage_and_layout();
    let (vs, vl) = v.storage_and_layout();
    let (Some(qh), Some(kh), Some(vh)) = (
        heads_of(&qs, ql, hd),
        heads_of(&ks, kl, hd),
        heads_of(&vs, vl, hd),
    ) else {
        return Ok(None);
    };
    let padded = len.next_multiple_of(LANES);
    // Per head, its keys transposed (`transpose_keys`), zeros past `len` (every value written):
    // in a buffer this thread keeps, since a fresh one per call cost more in page faults than
    // the products.
    KEYS_T.with_borrow_mut(|keys_t| {
        keys_t.resize(kvh * hd * padded, 0.0);
        keys_t
            .par_chunks_mut(hd * padded)
            .enumerate()
            .for_each(|(h, kt)| {
                // SAFETY: the caller checked AVX-512; the head holds `len` rows of `hd` values
                // and `kt` `hd` rows of `padded`.
                unsafe { transpose_keys(&kh.0[kh.1 + h * kh.2..][..len * hd], hd, kt) };
            });
        let keys_t = &keys_t[..kvh * hd * padded];
        let scale = 1.0 / (hd as f32).sqrt();
        let mut out = vec![0f32; kvh * rows * hd];
        out.par_chunks_mut(rows * hd)
            .enumerate()
            .for_each(|(h, out)| {
                let kt = &keys_t[h * hd * padded..(h + 1) * hd * padded];
                let v = &vh.0[vh.1 + h * vh.2..][..len * hd];
                out.par_chunks_mut(ROWS * hd)
                    .enumerate()
                    .for_each(|(b, out)| {
                        let (r0, n) = (b * ROWS, out.len() / hd);
                        // Row `r` is query position `r % t`, which sees the keys up to its own.
                        let seen: [usize; ROWS] =
                            std::array::from_fn(
                                |i| {
                                    if i < n {
                                        offset + (r0 + i) % t + 1
                                    } else {
                                        0
                                    }
                                },
                            );
                        let q = &qh.0[qh.1 + h * qh.2 + r0 * hd..][..n * hd];
                        SCORES.with_borrow_mut(|buf| {
                            buf.resize(2 * ROWS * padded, 0.0);
                            let (scores, probs) = buf.split_at_mut(ROWS * padded);
                            let task = Task {
                                q,
                                seen,
                                keys_t: kt,
                                v,
                                hd,
                                padded,
                                scale,
                            };
                            // SAFETY: the caller checked AVX-512; the slices hold `n` query
                            // rows, `hd × padded` transposed keys, `len` value rows and
                            // `ROWS × padded` scores and weights: all the task reads.
                            unsafe { run(&task, scores, probs, out) }
                        });
                    });
            });
        Tensor::from_vec(out, (kvh, n_rep, t, hd), q.device()).map(Some)
    })
}

/// `keys` (rows of `hd` values) into `kt` as `[padded / 16][hd][16]`: per 16 keys, each of the
/// `hd` values of all 16 side by side, so a task reads them in one stream. 16 × 16 blocks go
/// through registers: the plain loop wrote one value per cache line and took longer than the
/// products.
#[target_feature(enable = "avx512f")]
unsafe fn transpose_keys(keys: &[f32], hd: usize, kt: &mut [f32]) {
    let len = keys.len() / hd;
    for j0 in (0..len).step_by(LANES) {
        let n = (len - j0).min(LANES);
        for d0 in (0..hd).step_by(LANES) {
            let row = |i: usize| _mm512_loadu_si512(keys.as_ptr().add((j0 + i) * hd + d0).cast());
            let rows: [__m512i; LANES] = if n == LANES {
                std::array::from_fn(row)
            } else {
                std::array::from_fn(|i| {
                    if i < n {
                        row(i)
                    } else {
                        _mm512_setzero_si512()
                    }
                })
            };
            for (d, col) in transpose_words(rows).iter().enumerate() {
                _mm512_storeu_si512(kt.as_mut_ptr().add(j0 * hd + (d0 + d) * LANES).cast(), *col);
            }
        }
    }
}

/// What one task reads: up to six query rows of one head (`q`), how many keys each row sees
/// (`seen`, 0 past the rows), the head's keys transposed and its values, the head size, the
/// keys' padded count and the softmax scale.
struct Task<'a> {
    q: &'a [f32],
    seen: [usize; ROWS],
    keys_t: &'a [f32],
    v: &'a [f32],
    hd: usize,
    padded: usize,
    scale: f32,
}

/// Runs `task`: scores into `scores`, weights into `probs`, weighted values into `out`.
#[target_feature(enable = "avx512f")]
unsafe fn run(task: &Task, scores: &mut [f32], probs: &mut [f32], out: &mut [f32]) {
    match task.q.len() / task.hd {
        1 => rows::<1>(task, scores, probs, out),
        2 => rows::<2>(task, scores, probs, out),
        3 => rows::<3>(task, scores, probs, out),
        4 => rows::<4>(task, scores, probs, out),
        5 => rows::<5>(task, scores, probs, out),
        _ => rows::<6>(task, scores, probs, out),
    }
}

/// [`run`] for `N` rows.
#[inline(always)]
unsafe fn rows<const N: usize>(
    task: &Task,
    scores: &mut [f32],
    probs: &mut [f32],
    out: &mut [f32],
) {
    let Task {
        q,
        seen,
        keys_t,
        v,
        hd,
        padded,
        scale,
    } = *task;
    let most = seen.iter().copied().max().unwrap_or(0);
    let q = q.as_ptr();
    for j0 in (0..most).step_by(LANES) {
        let mut acc = [_mm512_setzero_ps(); N];
        for d in 0..hd {
            let key = _mm512_loadu_ps(keys_t.as_ptr().add(j0 * hd + d * LANES));
            for (r, acc) in acc.iter_mut().enumerate() {
                *acc = _mm512_fmadd_ps(_mm512_set1_ps(*q.add(r * hd + d)), key, *acc);
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            _mm512_storeu_ps(scores.as_mut_ptr().add(r * padded + j0), *acc);
        }
    }
    for (r, &seen) in seen.iter().enumerate().take(N) {
        let row = r * padded;
        softmax_row(&scores[row..row + seen], &mut probs[row..row + seen], scale);
        // Keys past a row's own weigh exactly zero, so its sums are what it gives alone.
        probs[row + seen..row + most].fill(0.0);
    }
    let probs = probs.as_ptr();
    for c0 in (0..hd).step_by(CHUNK) {
        let w = (hd - c0).min(CHUNK) / LANES;
        let mut acc = [[_mm512_setzero_ps(); CHUNK / LANES]; N];
        for j in 0..most {
            let at = v.as_ptr().add(j * hd + c0);
            let vals: [__m512; CHUNK / LANES] = std::array::from_fn(|i| {
                if i < w {
                    _mm512_loadu_ps(at.add(i * LANES))
                } else {
                    _mm512_setzero_ps()
                }
            });
            for (r, acc) in acc.iter_mut().enumerate() {
                let p = _mm512_set1_ps(*probs.add(r * padded + j));
                for (a, x) in acc.iter_mut().zip(&vals).take(w) {
                    *a = _mm512_fmadd_ps(p, *x, *a);
                }
            }
        }
        for (r, acc) in acc.iter().enumerate() {
            for (i, a) in acc.iter().enumerate().take(w) {
                _mm512_storeu_ps(out.as_mut_ptr().add(r * hd + c0 + i * LANES), *a);
            }
        }
    }
}
