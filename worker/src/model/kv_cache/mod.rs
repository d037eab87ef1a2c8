//! The key/value cache of one sequence: pages in host memory when the model runs on the CPU
//! ([`pages`]), tensors on a GPU.

pub mod pages;
mod tensors;

use candle_core::{DType, Device, Result, Tensor};

pub use pages::HostLayer;
use tensors::DeviceLayers;

/// One layer's keys and values so far, as attention reads them.
pub enum LayerKv<'a> {
    /// Host pages holding `len` positions.
    Host {
        /// The layer's pages.
        layer: &'a HostLayer,
        /// Positions stored.
        len: usize,
    },
    /// Keys and values `[kv_heads, len, head_dim]` on a device.
    Tensors(Tensor, Tensor),
}

#[derive(Debug)]
enum Store {
    Host(Vec<Option<HostLayer>>),
    Device(DeviceLayers),
}

/// Keys and values of every layer for one sequence.
#[derive(Debug)]
pub struct KvCache {
    store: Store,
    len: usize,
    max_len: usize,
}

impl KvCache {
    /// An empty cache for a model with `num_layers` blocks and a context of `max_len` running
    /// on `device`.
    pub fn new(num_layers: usize, max_len: usize, device: &Device) -> Self {
        let store = if device.is_cpu() {
            Store::Host((0..num_layers).map(|_| None).collect())
        } else {
            Store::Device(DeviceLayers::new(num_layers))
        };
        Self {
            store,
            len: 0,
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
    /// returns all of the layer's keys and values so far. `commit` must follow the last layer.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> Result<LayerKv<'_>> {
        let (kvh, t, hd) = k.dims3()?;
        let needed = self.len + t;
        if needed > self.max_len {
            candle_core::bail!(
                "sequence of {needed} positions exceeds the context of {}",
                self.max_len
            )
        }
        if v.dims() != k.dims() {
            candle_core::bail!("keys {:?} and values {:?} differ", k.dims(), v.dims())
        }
        match &mut self.store {
            Store::Host(layers) => {
                let Some(entry) = layers.get_mut(layer) else {
                    candle_core::bail!("no layer {layer} in the cache")
                };
                let entry = entry.get_or_insert_with(|| HostLayer::new(kvh, hd));
                if (entry.kv_heads(), entry.head_dim()) != (kvh, hd) {
                    candle_core::bail!("keys of {kvh} heads of {hd} for a cache of other heads")
                }
                let flat = |x: &Tensor| x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>();
                entry.write(self.len, &flat(k)?, &flat(v)?);
                Ok(LayerKv::Host {
                    layer: entry,
                    len: needed,
                })
            }
            Store::Device(d) => {
                let (k, v) = d.append(layer, self.len, self.max_len, k, v)?;
                Ok(LayerKv::Tensors(k, v))
            }
        }
    }

    /// Advances the length after all layers stored `t` new positions.
    pub fn commit(&mut self, t: usize) {
        self.len += t;
    }

    /// A new cache holding a copy of the first `len` positions (the copy owns its memory, so
    /// writing to either never changes the other).
    pub fn copy_prefix(&self, len: usize) -> Result<KvCache> {
        let len = len.min(self.len);
        let store = match &self.store {
            Store::Host(layers) => Store::Host(
                layers
                    .iter()
                    .map(|l| l.as_ref().map(|l| l.copy_prefix(len)))
                    .collect(),
            ),
            Store::Device(d) => {
                let prefixes = d.prefixes(len)?;
                let mut copy = DeviceLayers::new(prefixes.len());
                if len > 0 {
                    for (layer, entry) in prefixes.iter().enumerate() {
                        if let Some((k, v)) = entry {
                            copy.append(layer, 0, self.max_len, k, v)?;
                        }
                    }
                }
                Store::Device(copy)
            }
        };
        Ok(KvCache {
            store,
            len,
            max_len: self.max_len,
        })
    }

    /// Forgets every position from `len` on; the next append writes over them.
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
        if let Store::Host(layers) = &mut self.store {
            for layer in layers.iter_mut().flatten() {
                layer.truncate(self.len);
            }
        }
    }

    /// Bytes of key and value memory it holds (its allocated capacity, not only its length).
    pub fn bytes(&self) -> usize {
        match &self.store {
            Store::Host(layers) => layers.iter().flatten().map(HostLayer::bytes).sum(),
            Store::Device(d) => d.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keys of head 0 as the cache returns them for `layer` after appending nothing.
    fn keys(cache: &mut KvCache) -> Vec<f32> {
        let none = Tensor::zeros((1, 0, 2), DType::F32, &Device::Cpu).unwrap();
        match cache.append(0, &none, &none).unwrap() {
            LayerKv::Host { layer, len } => (0..len).flat_map(|p| layer.key(0, p)).collect(),
            LayerKv::Tensors(k, _) => k.flatten_all().unwrap().to_vec1().unwrap(),
        }
    }

    #[test]
    fn a_copied_prefix_is_independent_of_its_source() {
        let dev = Device::Cpu;
        let mut src = KvCache::new(1, 64, &dev);
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
        copy.append(0, &new, &new).unwrap();
        copy.commit(1);
        assert_eq!(keys(&mut copy), [0., 1., 2., 3., 4., 5., -1., -1.]);
        assert_eq!(keys(&mut src), [0., 1., 2., 3., 4., 5., 6., 7.]);
        assert!(src.copy_prefix(0).unwrap().is_empty());
    }

    #[test]
    fn bad_appends_are_errors_not_panics() {
        let dev = Device::Cpu;
        let mut cache = KvCache::new(1, 4, &dev);
        let k = Tensor::zeros((1, 5, 2), DType::F32, &dev).unwrap();
        assert!(cache.append(0, &k, &k).is_err(), "past the context");
        let k = Tensor::zeros((1, 2, 2), DType::F32, &dev).unwrap();
        assert!(cache.append(1, &k, &k).is_err(), "no such layer");
        let v = Tensor::zeros((1, 2, 4), DType::F32, &dev).unwrap();
        assert!(cache.append(0, &k, &v).is_err(), "values of another shape");
        cache.append(0, &k, &k).unwrap();
        let other = Tensor::zeros((2, 1, 2), DType::F32, &dev).unwrap();
        assert!(cache.append(0, &other, &other).is_err(), "other heads");
    }
}
