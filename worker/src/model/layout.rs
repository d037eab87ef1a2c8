//! The layout of a product's result: kernels that split a product by weight rows compute
//! `[rows, m]` blocks (each task its own weight rows), and the model reads `[m, rows]`.

use std::cell::RefCell;

use rayon::prelude::*;

thread_local! {
    /// A task's `[n, m]` results before they go to their places in the `[m, rows]` result.
    static BLOCK: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `task(first, n, block)` in parallel for every `rows_per_task` weight rows
/// `first..first + n`, each writing its rows' results for all `m` activation rows into
/// `block` (`[n, m]`, row-major), and returns them as `[m, rows]`. Each block goes to its
/// places while it is still in cache: the whole `[rows, m]` result turned in a pass of its
/// own took 9% of a 512-token BF16 prefill (1.1B shape, one Zen 4 core) in `perf`.
pub fn by_weight_blocks<F>(rows: usize, m: usize, rows_per_task: usize, task: F) -> Vec<f32>
where
    F: Fn(usize, usize, &mut [f32]) + Sync,
{
    assert!(rows_per_task > 0, "no rows per task");
    if m <= 1 {
        // One activation row: `[rows, 1]` is `[1, rows]`.
        let mut out = vec![0f32; m * rows];
        out.par_chunks_mut(rows_per_task)
            .enumerate()
            .for_each(|(t, chunk)| task(t * rows_per_task, chunk.len(), chunk));
        return out;
    }
    by_row_tasks(rows, m, rows_per_task, |first, n, columns| {
        // Taken, not borrowed: a task that ran another product inside would find none and
        // allocate, not panic.
        let mut block = BLOCK.take();
        block.clear();
        block.resize(n * m, 0.0);
        task(first, n, &mut block);
        for c in 0..m {
            for (r, v) in columns.row(c).iter_mut().enumerate() {
                *v = block[r * m + c];
            }
        }
        BLOCK.set(block);
    })
}

/// Runs `task(first, n, columns)` in parallel for every `rows_per_task` weight rows
/// `first..first + n` of a `[m, rows]` result, `columns` the task's place in it.
pub fn by_row_tasks<F>(rows: usize, m: usize, rows_per_task: usize, task: F) -> Vec<f32>
where
    F: Fn(usize, usize, &mut Columns) + Sync,
{
    assert!(rows_per_task > 0, "no rows per task");
    let mut out = vec![0f32; m * rows];
    let dst = Shared(out.as_mut_ptr());
    (0..rows.div_ceil(rows_per_task))
        .into_par_iter()
        .for_each(|t| {
            let first = t * rows_per_task;
            let n = (rows - first).min(rows_per_task);
            let mut columns = Columns {
                at: dst.ptr(),
                rows,
                m,
                first,
                n,
            };
            task(first, n, &mut columns);
        });
    out
}

/// Columns `first..first + n` of every row of a `[m, rows]` result: what one task of
/// [`by_row_tasks`] writes, and no other. Neither `Send` nor `Sync` (a raw pointer), so only
/// its task's thread writes through it, one row at a time.
pub struct Columns {
    at: *mut f32,
    rows: usize,
    m: usize,
    first: usize,
    n: usize,
}

impl Columns {
    /// The task's `n` values of activation row `c`.
    pub fn row(&mut self, c: usize) -> &mut [f32] {
        assert!(c < self.m, "activation row {c} of {}", self.m);
        // SAFETY: the result holds `m · rows` values and outlives every task; `c < m` and
        // `first + n ≤ rows` keep the slice inside it; no other task's columns overlap these,
        // and `&mut self` lets one slice of them live at a time.
        #[allow(unsafe_code)]
        unsafe {
            std::slice::from_raw_parts_mut(self.at.add(c * self.rows + self.first), self.n)
        }
    }
}

/// The result's start, shared by the tasks, which write at disjoint places ([`Columns`]).
#[derive(Clone, Copy)]
struct Shared(*mut f32);

// SAFETY: tasks only write through it at places no other task writes (see `Columns`).
#[allow(unsafe_code)]
unsafe impl Send for Shared {}
// SAFETY: as above.
#[allow(unsafe_code)]
unsafe impl Sync for Shared {}

impl Shared {
    /// The start; a method, so closures capture the `Sync` wrapper and not its field.
    fn ptr(self) -> *mut f32 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_at_its_transposed_place() {
        for (rows, m, per) in [
            (1, 1, 4),
            (3, 17, 2),
            (40, 16, 32),
            (5, 33, 32),
            (64, 2, 7),
            (9, 1, 4),
        ] {
            // Each task writes what its block's place (r, c) holds in `[rows, m]`: r·m + c.
            let out = by_weight_blocks(rows, m, per, |first, n, block| {
                assert_eq!(block.len(), n * m);
                for (i, v) in block.iter_mut().enumerate() {
                    *v = ((first + i / m) * m + i % m) as f32;
                }
            });
            for i in 0..m {
                for j in 0..rows {
                    assert_eq!(
                        out[i * rows + j],
                        (j * m + i) as f32,
                        "{rows}x{m} at {i},{j}"
                    );
                }
            }
        }
    }
}
