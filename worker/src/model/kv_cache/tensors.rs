//! Keys and values as tensors on a device (a GPU), `[kv_heads, capacity, head_dim]` per
//! layer, doubling as the sequence grows.

use candle_core::{Result, Tensor};

/// First allocation, in positions; capacity doubles from there up to the context length.
const INITIAL_CAPACITY: usize = 256;

/// Every layer's key and value buffers.
#[derive(Debug)]
pub(super) struct DeviceLayers {
    layers: Vec<Option<(Tensor, Tensor)>>,
    capacity: usize,
}

impl DeviceLayers {
    pub(super) fn new(num_layers: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| None).collect(),
            capacity: 0,
        }
    }

    /// Stores `k`, `v` of `layer` at positions `len ..` and returns views of the first
    /// `len + t` (the caller checked the context length).
    pub(super) fn append(
        &mut self,
        layer: usize,
        len: usize,
        max_len: usize,
        k: &Tensor,
        v: &Tensor,
    ) -> Result<(Tensor, Tensor)> {
        let (kvh, t, hd) = k.dims3()?;
        let needed = len + t;
        let entry = &mut self.layers[layer];
        let grow = match entry {
            None => true,
            Some((ck, _)) => ck.dim(1)? < needed,
        };
        if grow {
            if self.capacity < needed {
                self.capacity = needed
                    .max(self.capacity * 2)
                    .max(INITIAL_CAPACITY)
                    .min(max_len);
            }
            let cap = self.capacity;
            let new_k = Tensor::zeros((kvh, cap, hd), k.dtype(), k.device())?;
            let new_v = Tensor::zeros((kvh, cap, hd), v.dtype(), v.device())?;
            if let Some((ck, cv)) = entry.take() {
                if len > 0 {
                    new_k.slice_set(&ck.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
                    new_v.slice_set(&cv.narrow(1, 0, len)?.contiguous()?, 1, 0)?;
                }
            }
            *entry = Some((new_k, new_v));
        }
        let (ck, cv) = entry.as_ref().expect("allocated above");
        ck.slice_set(&k.contiguous()?, 1, len)?;
        cv.slice_set(&v.contiguous()?, 1, len)?;
        Ok((ck.narrow(1, 0, needed)?, cv.narrow(1, 0, needed)?))
    }

    /// The first `len` positions of each layer, `[kv_heads, len, head_dim]`.
    pub(super) fn prefixes(&self, len: usize) -> Result<Vec<Option<(Tensor, Tensor)>>> {
        self.layers
            .iter()
            .map(|e| {
                e.as_ref()
                    .map(|(k, v)| Ok((k.narrow(1, 0, len)?, v.narrow(1, 0, len)?)))
                    .transpose()
            })
            .collect()
    }

    /// Bytes of the allocated buffers.
    pub(super) fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum()
    }
}
