//! Reading golden fixtures written by `tools/*.py`.

#![allow(dead_code)]

use burn::prelude::*;
use std::collections::HashMap;
use std::path::PathBuf;

/// Path of a fixture file.
pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// All tensors of a safetensors file as f64 values with their shapes.
pub struct Golden {
    tensors: HashMap<String, (Vec<f64>, Vec<usize>)>,
}

impl Golden {
    /// Loads a fixture.
    pub fn load(name: &str) -> Golden {
        let bytes = std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let st = safetensors::SafeTensors::deserialize(&bytes).expect("valid safetensors");
        let mut tensors = HashMap::new();
        for (k, v) in st.tensors() {
            let data = v.data();
            let vals: Vec<f64> = match v.dtype() {
                safetensors::Dtype::F32 => {
                    data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap()) as f64).collect()
                }
                safetensors::Dtype::F64 => {
                    data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
                }
                safetensors::Dtype::I64 => {
                    data.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64).collect()
                }
                other => panic!("{k}: unsupported dtype {other:?}"),
            };
            tensors.insert(k.to_string(), (vals, v.shape().to_vec()));
        }
        Golden { tensors }
    }

    /// Values of a tensor.
    pub fn vals(&self, k: &str) -> &[f64] {
        &self.tensors.get(k).unwrap_or_else(|| panic!("fixture has no tensor '{k}'")).0
    }

    /// Shape of a tensor.
    pub fn shape(&self, k: &str) -> &[usize] {
        &self.tensors[k].1
    }

    /// A tensor as burn f32.
    pub fn tensor<const D: usize>(&self, k: &str, device: &Device) -> Tensor<D> {
        let v: Vec<f32> = self.vals(k).iter().map(|x| *x as f32).collect();
        let shape: [usize; D] =
            self.shape(k).try_into().unwrap_or_else(|_| panic!("{k}: rank {} != {D}", self.shape(k).len()));
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// A tensor of integer values as host `usize`.
    pub fn usizes(&self, k: &str) -> Vec<usize> {
        self.vals(k).iter().map(|x| *x as usize).collect()
    }

    /// A tensor of integer values as burn Int.
    pub fn ints(&self, k: &str, device: &Device) -> Tensor<1, Int> {
        let v: Vec<i64> = self.vals(k).iter().map(|x| *x as i64).collect();
        Tensor::from_ints(v.as_slice(), device)
    }
}

/// `max|a − b| / max|b|` over host values.
pub fn rel_err_host(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let scale = b.iter().fold(0f64, |m, x| m.max(x.abs())).max(f64::MIN_POSITIVE);
    a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Host values of a burn tensor.
pub fn host<const D: usize>(t: Tensor<D>) -> Vec<f64> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap().into_iter().map(|x| x as f64).collect()
}
