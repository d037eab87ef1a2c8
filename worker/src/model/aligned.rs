//! Buffers that start on a 64-byte boundary: a cache line, and one AVX-512 vector.
//!
//! The allocator aligns a `Vec` to 16 bytes only (a large one starts 16 bytes into a fresh
//! page), and rows laid out from there put every other 64-byte vector load across two cache
//! lines. The 16-bit GEMM tile multiplied 4096 × 4096 by 128 rows at 83 GFlop/s on one core
//! of an Intel Xeon (AVX-512) from such rows, and at 100 from aligned ones (docs/BENCHMARKS.md,
//! "16-bit rows on cache lines").

#![allow(unsafe_code)]

use std::alloc::{self, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// The alignment, in bytes.
pub const ALIGN: usize = 64;

/// Element types a buffer may hold: plain numbers, every bit pattern valid, zero as all
/// zero bits.
pub trait Plain: Copy + Default + 'static {}
impl Plain for u8 {}
impl Plain for u16 {}
impl Plain for f32 {}

/// A fixed-length, zero-initialised buffer of `T` whose first element is 64-byte aligned.
pub struct AlignedVec<T: Plain> {
    ptr: NonNull<T>,
    len: usize,
    /// Bytes from the allocation's start to `ptr`.
    skip: usize,
}

// SAFETY: it owns its elements like a Vec<T> of plain numbers does.
unsafe impl<T: Plain + Send> Send for AlignedVec<T> {}
unsafe impl<T: Plain + Sync> Sync for AlignedVec<T> {}

impl<T: Plain> AlignedVec<T> {
    /// `len` zeros; `None` if the size overflows or memory cannot be had (sizes read from a
    /// file).
    pub fn try_zeroed(len: usize) -> Option<Self> {
        if len == 0 {
            return Some(Self::default());
        }
        let layout = Self::layout(len)?;
        // The allocator's own alignment and `ALIGN` spare bytes, rather than a 64-byte
        // aligned layout: that one the system allocator fills with zeros byte by byte, where
        // this one gets pages the kernel zeroes as they are first touched (a model's weights
        // are read in right after).
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc::alloc_zeroed(layout) };
        let skip = base.align_offset(ALIGN);
        if base.is_null() || skip >= ALIGN {
            return None;
        }
        // SAFETY: `skip < ALIGN` keeps `len` elements of `T` inside the allocation; all-zero
        // bits are a valid `T` (`Plain`); a multiple of 64 bytes is aligned for `T`.
        let ptr = NonNull::new(unsafe { base.add(skip) }.cast::<T>())?;
        Some(Self { ptr, len, skip })
    }

    /// `len` zeros; out of memory aborts, as a `Vec` does.
    pub fn zeroed(len: usize) -> Self {
        Self::try_zeroed(len).unwrap_or_else(|| match Self::layout(len) {
            Some(layout) => alloc::handle_alloc_error(layout),
            None => panic!("capacity overflow"),
        })
    }

    /// A copy of `values`.
    pub fn from_slice(values: &[T]) -> Self {
        let mut v = Self::zeroed(values.len());
        v.copy_from_slice(values);
        v
    }

    /// The allocation behind `len` elements.
    fn layout(len: usize) -> Option<Layout> {
        let bytes = len.checked_mul(size_of::<T>())?.checked_add(ALIGN)?;
        Layout::from_size_align(bytes, align_of::<T>()).ok()
    }
}

impl<T: Plain> Default for AlignedVec<T> {
    fn default() -> Self {
        Self {
            ptr: NonNull::dangling(),
            len: 0,
            skip: 0,
        }
    }
}

impl<T: Plain> Deref for AlignedVec<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` holds `len` initialised elements (or is dangling with `len` 0).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Plain> DerefMut for AlignedVec<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` is the only access.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl<T: Plain> Drop for AlignedVec<T> {
    fn drop(&mut self) {
        if self.len > 0 {
            if let Some(layout) = Self::layout(self.len) {
                // SAFETY: allocated in `try_zeroed`, `skip` bytes before `ptr`, with this
                // same layout.
                unsafe { alloc::dealloc(self.ptr.as_ptr().cast::<u8>().sub(self.skip), layout) };
            }
        }
    }
}

impl<T: Plain> Clone for AlignedVec<T> {
    fn clone(&self) -> Self {
        Self::from_slice(self)
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for AlignedVec<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AlignedVec(len {})", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_64_byte_boundary_and_hold_what_was_put_in() {
        for len in [0, 1, 3, 63, 64, 65, 4097] {
            let v: AlignedVec<u8> = AlignedVec::zeroed(len);
            assert_eq!(v.len(), len);
            assert!(len == 0 || (v.as_ptr() as usize).is_multiple_of(ALIGN));
            assert!(v.iter().all(|&b| b == 0));
            let values: Vec<f32> = (0..len).map(|i| i as f32 * 0.5).collect();
            let f = AlignedVec::from_slice(&values);
            assert!(len == 0 || (f.as_ptr() as usize).is_multiple_of(ALIGN));
            assert_eq!(&f[..], &values[..]);
            let c = f.clone();
            assert_eq!(&c[..], &values[..]);
        }
        assert!(AlignedVec::<f32>::try_zeroed(usize::MAX).is_none());
        assert!(AlignedVec::<u8>::try_zeroed(usize::MAX / 2).is_none());
    }
}
