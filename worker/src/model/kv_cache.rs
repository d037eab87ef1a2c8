//! The key/value cache of one sequence.

use candle_core::{Result, Tensor};

/// First allocation, in positions; the cache doubles from there up to the context length.
const INITIAL_CAPACITY: usize = 256;

/// Keys and values of every layer for one sequence, laid out `[kv_heads, capacity, head_dim]`.
#[derive(Debug)]
pub struct KvCache {
    layers: Vec<Option<(Tensor, Tensor)>>,
    len: usize,
    capacity: usize,
    max_len: usize,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` blocks and a context of `max_len`.
    pub fn new(num_layers: usize, max_len: usize) -> Self {
        Self {
            layers: (0..num_layers).map(|_| None).collect(),
            len: 0,
            capacity: 0,
            max_len,
        }
    }

    /// Positions already stored.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True before the first token.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `k`, `v` (`[kv_heads, t, head_dim]`) of `layer` after the current positions and
    /// returns views of all keys and values so far. `commit` must follow the last layer.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<(Tensor, Tensor)> {
        let t = k.dim(1)?;
        let needed = self.len + t;
        if needed > self.max_len {
            candle_core::bail!(
                "sequence of {needed} positions exceeds the context of {}",
                self.max_len
            )
        }
        let (kvh, _, hd) = k.dims3()?;
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
                    .min(self.max_len);
            }
            let cap = self.capacity;
            let new_k = Tensor::zeros((kvh, cap, hd), k.dtype(), k.device())?;
            let new_v = Tensor::zeros((kvh, cap, hd), v.dtype(), v.device())?;
            if let Some((ck, cv)) = entry.take() {
                if self.len > 0 {
                    new_k.slice_set(&ck.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                    new_v.slice_set(&cv.narrow(1, 0, self.len)?.contiguous()?, 1, 0)?;
                }
            }
            *entry = Some((new_k, new_v));
        }
        let (ck, cv) = entry.as_ref().expect("allocated above");
        ck.slice_set(&k.contiguous()?, 1, self.len)?;
        cv.slice_set(&v.contiguous()?, 1, self.len)?;
        Ok((ck.narrow(1, 0, needed)?, cv.narrow(1, 0, needed)?))
    }

    /// Advances the length after all layers stored `t` new positions.
    pub fn commit(&mut self, t: usize) {
        self.len += t;
    }

    /// A new cache holding a copy of the first `len` positions (the copy owns its memory, so
    /// writing to either never changes the other).
    pub fn copy_prefix(&self, len: usize) -> Result<KvCache> {
        let len = len.min(self.len);
        let mut copy = KvCache::new(self.layers.len(), self.max_len);
        if len == 0 {
            return Ok(copy);
        }
        for (layer, entry) in self.layers.iter().enumerate() {
            if let Some((k, v)) = entry {
                copy.append(layer, &k.narrow(1, 0, len)?, &v.narrow(1, 0, len)?)?;
            }
        }
        copy.commit(len);
        Ok(copy)
    }

    /// Forgets every position from `len` on; the next append writes over them.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Bytes of key and value memory it holds (its allocated capacity, not only its length).
    pub fn bytes(&self) -> usize {
        self.layers
            .iter()
            .flatten()
            .map(|(k, v)| (k.elem_count() + v.elem_count()) * k.dtype().size_in_bytes())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn a_copied_prefix_is_independent_of_its_source() {
        let dev = Device::Cpu;
        let mut src = KvCache::new(1, 64);
        let k = Tensor::arange(0f32, 8.0, &dev)
            .unwrap()
            .reshape((1, 4, 2))
            .unwrap();
        src.append(0, &k, &k).unwrap();
        src.commit(4);
        let mut copy = src.copy_prefix(3).unwrap();
        assert_eq!(copy.len(), 3);
        // Writing position 3 of the copy leaves the source's position 3 as it was.
        let new = Tensor::full(-1f32, (1, 1, 2), &dev).unwrap();
        let (all_k, _) = copy.append(0, &new, &new).unwrap();
        copy.commit(1);
        assert_eq!(
            all_k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0., 1., 2., 3., 4., 5., -1., -1.]
        );
        let (src_k, _) = src
            .append(
                0,
                &Tensor::zeros((1, 0, 2), DType::F32, &dev).unwrap(),
                &Tensor::zeros((1, 0, 2), DType::F32, &dev).unwrap(),
            )
            .unwrap();
        assert_eq!(
            src_k.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            [0., 1., 2., 3., 4., 5., 6., 7.]
        );
        assert!(src.copy_prefix(0).unwrap().is_empty());
    }
}
