//! What the f32 kernels on AVX2 ([`super::avx2`]) and AVX-512 ([`super::avx512`]) share,
//! written once over the vector width: weighing the values and dividing by the weights' sum.
//! Everything here is inlined into the kernel that holds the features, so each width compiles
//! to the instructions it had when written out apart.

#![allow(unsafe_code)]

use std::arch::x86_64::*;

use crate::model::kv_cache::pages::PAGE;

use super::host::Task;

/// One register of f32 lanes and the operations the shared loops take from it.
pub(super) trait Lanes: Copy {
    /// Lanes in one register.
    const WIDTH: usize;
    /// `WIDTH` values from `at`.
    unsafe fn load(at: *const f32) -> Self;
    /// Into `WIDTH` values at `at`.
    unsafe fn store(self, at: *mut f32);
    /// `*at` in every lane.
    unsafe fn splat(at: *const f32) -> Self;
    /// `x` in every lane.
    unsafe fn set(x: f32) -> Self;
    /// `self · a + b`, rounded once.
    unsafe fn mul_add(self, a: Self, b: Self) -> Self;
    /// `self · a`.
    unsafe fn mul(self, a: Self) -> Self;
}

impl Lanes for __m256 {
    const WIDTH: usize = 8;

    #[inline(always)]
    unsafe fn load(at: *const f32) -> Self {
        _mm256_loadu_ps(at)
    }

    #[inline(always)]
    unsafe fn store(self, at: *mut f32) {
        _mm256_storeu_ps(at, self)
    }

    #[inline(always)]
    unsafe fn splat(at: *const f32) -> Self {
        _mm256_broadcast_ss(&*at)
    }

    #[inline(always)]
    unsafe fn set(x: f32) -> Self {
        _mm256_set1_ps(x)
    }

    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        _mm256_fmadd_ps(self, a, b)
    }

    #[inline(always)]
    unsafe fn mul(self, a: Self) -> Self {
        _mm256_mul_ps(self, a)
    }
}

impl Lanes for __m512 {
    const WIDTH: usize = 16;

    #[inline(always)]
    unsafe fn load(at: *const f32) -> Self {
        _mm512_loadu_ps(at)
    }

    #[inline(always)]
    unsafe fn store(self, at: *mut f32) {
        _mm512_storeu_ps(at, self)
    }

    #[inline(always)]
    unsafe fn splat(at: *const f32) -> Self {
        _mm512_set1_ps(*at)
    }

    #[inline(always)]
    unsafe fn set(x: f32) -> Self {
        _mm512_set1_ps(x)
    }

    #[inline(always)]
    unsafe fn mul_add(self, a: Self, b: Self) -> Self {
        _mm512_fmadd_ps(self, a, b)
    }

    #[inline(always)]
    unsafe fn mul(self, a: Self) -> Self {
        _mm512_mul_ps(self, a)
    }
}

/// Adds to `out`'s `N` rows from `g`, values `c0 .. c0 + V·WIDTH`, the values of `keys`
/// (within one page) weighted by the rows' weights in `s` (rows `task.padded` apart): key by
/// key, so each row's sums run in the order they would alone.
#[inline(always)]
pub(super) unsafe fn weigh<L: Lanes, const N: usize, const V: usize>(
    task: &Task,
    (g, c0): (usize, usize),
    keys: std::ops::Range<usize>,
    s: *const f32,
    out: &mut [f32],
) {
    let hd = task.kv.head_dim();
    let page = keys.start / PAGE;
    let (vals, j0) = (task.kv.value_page(task.head, page).as_ptr(), page * PAGE);
    let weights: [*const f32; N] = std::array::from_fn(|r| s.add((g + r) * task.padded));
    let o: [*mut f32; N] = std::array::from_fn(|r| out.as_mut_ptr().add((g + r) * hd + c0));
    let mut acc: [[L; V]; N] =
        std::array::from_fn(|r| std::array::from_fn(|i| L::load(o[r].add(i * L::WIDTH))));
    for j in keys {
        let at = vals.add((j - j0) * hd + c0);
        let v: [L; V] = std::array::from_fn(|i| L::load(at.add(i * L::WIDTH)));
        for (acc, w) in acc.iter_mut().zip(&weights) {
            let weight = L::splat(w.add(j));
            for (a, x) in acc.iter_mut().zip(&v) {
                *a = weight.mul_add(*x, *a);
            }
        }
    }
    for (acc, o) in acc.iter().zip(o) {
        for (i, a) in acc.iter().enumerate() {
            a.store(o.add(i * L::WIDTH));
        }
    }
}

/// Divides each row of `out` (`hd` values, a multiple of `WIDTH`) by its weights' sum: times
/// `inv[r]`, 1 / that sum.
#[inline(always)]
pub(super) unsafe fn divide_rows<L: Lanes>(out: &mut [f32], hd: usize, inv: &[f32]) {
    for (o, &inv) in out.chunks_exact_mut(hd).zip(inv) {
        let inv = L::set(inv);
        for c in (0..hd).step_by(L::WIDTH) {
            let at = o.as_mut_ptr().add(c);
            L::load(at).mul(inv).store(at);
        }
    }
}
