//! Loading a Hugging Face BERT `model.safetensors` (names without a `bert.` prefix, as
//! sentence-transformers saves them) into [`Bert`] through burn-store.
//!
//! | reference | dddit-text |
//! |---|---|
//! | `embeddings.LayerNorm` | `embeddings.layer_norm` |
//! | `encoder.layer.N.attention.self.{query,key,value}` | `layers.N.attention.{query,key,value}` |
//! | `encoder.layer.N.attention.output.dense` | `layers.N.attention.output` |
//! | `encoder.layer.N.attention.output.LayerNorm` | `layers.N.attention.layer_norm` |
//! | `encoder.layer.N.intermediate.dense` | `layers.N.intermediate` |
//! | `encoder.layer.N.output.dense` | `layers.N.output` |
//! | `encoder.layer.N.output.LayerNorm` | `layers.N.output_norm` |
//!
//! Linear weights are transposed from PyTorch's `[out, in]` to burn's `[in, out]` and LayerNorm
//! `weight`/`bias` become `gamma`/`beta` (burn-store's `PyTorchToBurnAdapter`).

use crate::error::TextError;
use crate::model::Bert;
use burn_store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore};
use std::path::Path;

/// `(reference pattern, dddit-text replacement)` key remappings, applied in order (later
/// patterns see the result of earlier ones).
pub const KEY_MAP: [(&str, &str); 8] = [
    (r"^embeddings\.LayerNorm\.", "embeddings.layer_norm."),
    (r"^encoder\.layer\.", "layers."),
    (r"\.attention\.self\.", ".attention."),
    (r"\.attention\.output\.dense\.", ".attention.output."),
    (r"\.attention\.output\.LayerNorm\.", ".attention.layer_norm."),
    (r"\.intermediate\.dense\.", ".intermediate."),
    (r"\.output\.dense\.", ".output."),
    (r"\.output\.LayerNorm\.", ".output_norm."),
];

/// Tensors of the reference file that the encoder does not use: the position-id buffer
/// (positions are `0..len`) and the `[CLS]` pooler, which mean-pooled sentence embeddings skip.
pub const UNUSED: [&str; 3] = ["embeddings.position_ids", "pooler.dense.weight", "pooler.dense.bias"];

impl Bert {
    /// Loads a reference `model.safetensors` into this model, in place. Every parameter of the
    /// model must be in the file with its shape, and every tensor of the file must be used or
    /// be one of [`UNUSED`]; anything else is an error listing what does not fit, so a file of
    /// another architecture is never half-loaded silently.
    pub fn load_safetensors(&mut self, path: impl AsRef<Path>) -> Result<ApplyResult, TextError> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(TextError::io(path, std::io::ErrorKind::NotFound.into()));
        }
        let mut store =
            SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).map_indices_contiguous(false);
        for (from, to) in KEY_MAP {
            store = store.with_key_remapping(from, to);
        }
        let result = self
            .load_from(&mut store)
            .map_err(|e| TextError::Load { path: path.to_path_buf(), message: e.to_string() })?;
        check(path, result)
    }
}

fn check(path: &Path, r: ApplyResult) -> Result<ApplyResult, TextError> {
    let unused: Vec<&String> = r.unused.iter().filter(|k| !UNUSED.contains(&k.as_str())).collect();
    if r.errors.is_empty() && r.missing.is_empty() && unused.is_empty() {
        return Ok(r);
    }
    let mut message = String::from("weights do not match the model:");
    for e in &r.errors {
        message.push_str(&format!("\n  error: {e}"));
    }
    for (m, _) in &r.missing {
        message.push_str(&format!("\n  missing in file: {m}"));
    }
    for u in unused {
        message.push_str(&format!("\n  in file but not in model: {u}"));
    }
    Err(TextError::Load { path: path.to_path_buf(), message })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BertConfig;
    use crate::model::tests::tiny_config;
    use dddit_core::testing::device;
    use safetensors::{Dtype, View};

    /// Names and PyTorch shapes of a Hugging Face BERT state dict (no `bert.` prefix).
    fn reference_shapes(c: &BertConfig) -> Vec<(String, Vec<usize>)> {
        let (d, f) = (c.hidden_size, c.intermediate_size);
        let mut v = vec![
            ("embeddings.word_embeddings.weight".to_string(), vec![c.vocab_size, d]),
            ("embeddings.position_embeddings.weight".into(), vec![c.max_position_embeddings, d]),
            ("embeddings.token_type_embeddings.weight".into(), vec![c.type_vocab_size, d]),
            ("embeddings.LayerNorm.weight".into(), vec![d]),
            ("embeddings.LayerNorm.bias".into(), vec![d]),
            ("pooler.dense.weight".into(), vec![d, d]),
            ("pooler.dense.bias".into(), vec![d]),
        ];
        for l in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{l}.");
            for (name, shape) in [
                ("attention.self.query.weight", vec![d, d]),
                ("attention.self.query.bias", vec![d]),
                ("attention.self.key.weight", vec![d, d]),
                ("attention.self.key.bias", vec![d]),
                ("attention.self.value.weight", vec![d, d]),
                ("attention.self.value.bias", vec![d]),
                ("attention.output.dense.weight", vec![d, d]),
                ("attention.output.dense.bias", vec![d]),
                ("attention.output.LayerNorm.weight", vec![d]),
                ("attention.output.LayerNorm.bias", vec![d]),
                ("intermediate.dense.weight", vec![f, d]),
                ("intermediate.dense.bias", vec![f]),
                ("output.dense.weight", vec![d, f]),
                ("output.dense.bias", vec![d]),
                ("output.LayerNorm.weight", vec![d]),
                ("output.LayerNorm.bias", vec![d]),
            ] {
                v.push((format!("{p}{name}"), shape));
            }
        }
        v
    }

    /// Deterministic values for tensor number `k`.
    fn values(k: usize, n: usize) -> Vec<f32> {
        (0..n).map(|i| ((k * 7919 + i) as f32 * 0.37).sin() * 0.5).collect()
    }

    struct Raw {
        dtype: Dtype,
        shape: Vec<usize>,
        bytes: Vec<u8>,
    }

    impl View for &Raw {
        fn dtype(&self) -> Dtype {
            self.dtype
        }
        fn shape(&self) -> &[usize] {
            &self.shape
        }
        fn data(&self) -> std::borrow::Cow<'_, [u8]> {
            std::borrow::Cow::Borrowed(&self.bytes)
        }
        fn data_len(&self) -> usize {
            self.bytes.len()
        }
    }

    /// Writes a reference-named file for `c` (with the `position_ids` buffer), edited by `edit`.
    fn write_file(c: &BertConfig, path: &Path, edit: impl FnOnce(&mut Vec<(String, Raw)>)) {
        let mut tensors: Vec<(String, Raw)> = reference_shapes(c)
            .into_iter()
            .enumerate()
            .map(|(k, (name, shape))| {
                let n = shape.iter().product();
                let bytes = values(k, n).iter().flat_map(|v| v.to_le_bytes()).collect();
                (name, Raw { dtype: Dtype::F32, shape, bytes })
            })
            .collect();
        let positions: Vec<u8> = (0..c.max_position_embeddings as i64).flat_map(|v| v.to_le_bytes()).collect();
        tensors.push((
            "embeddings.position_ids".into(),
            Raw { dtype: Dtype::I64, shape: vec![1, c.max_position_embeddings], bytes: positions },
        ));
        edit(&mut tensors);
        let views: Vec<(&str, &Raw)> = tensors.iter().map(|(n, r)| (n.as_str(), r)).collect();
        std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
    }

    /// An edit of the file's tensors.
    type Edit = Box<dyn FnOnce(&mut Vec<(String, Raw)>)>;

    fn temp(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("dddit-text-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    fn to_vec<const D: usize>(t: burn::prelude::Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn loads_every_tensor_under_its_mapped_name() {
        let dev = device();
        let c = tiny_config(14);
        let path = temp("ok.safetensors");
        write_file(&c, &path, |_| {});
        let mut model = c.init(&dev);
        let r = model.load_safetensors(&path).unwrap();
        assert_eq!(r.applied.len(), reference_shapes(&c).len() - 2, "all but the pooler");
        let mut unused = r.unused.clone();
        unused.sort();
        assert_eq!(unused, ["embeddings.position_ids", "pooler.dense.bias", "pooler.dense.weight"]);

        let shapes = reference_shapes(&c);
        let k = |name: &str| shapes.iter().position(|(n, _)| n == name).unwrap();
        let (d, f) = (c.hidden_size, c.intermediate_size);
        // Embedding tables are taken as they are.
        let words = to_vec(model.embeddings.word_embeddings.weight.val());
        assert_eq!(words, values(k("embeddings.word_embeddings.weight"), 14 * d));
        // Linear weights are transposed: burn's [in, out] is PyTorch's [out, in] transposed.
        let src = values(k("encoder.layer.1.intermediate.dense.weight"), f * d); // [f, d]
        let got = to_vec(model.layers[1].intermediate.weight.val()); // [d, f]
        for (i, j) in [(0, 0), (3, 17), (d - 1, f - 1)] {
            assert_eq!(got[i * f + j], src[j * d + i], "({i}, {j})");
        }
        let q_bias = to_vec(model.layers[0].attention.query.bias.as_ref().unwrap().val());
        assert_eq!(q_bias, values(k("encoder.layer.0.attention.self.query.bias"), d));
        // LayerNorm weight/bias become gamma/beta, each in its own place.
        let pairs = [
            (model.embeddings.layer_norm.gamma.val(), "embeddings.LayerNorm.weight"),
            (model.layers[1].attention.layer_norm.gamma.val(), "encoder.layer.1.attention.output.LayerNorm.weight"),
            (model.layers[1].output_norm.beta.as_ref().unwrap().val(), "encoder.layer.1.output.LayerNorm.bias"),
        ];
        for (t, name) in pairs {
            assert_eq!(to_vec(t), values(k(name), d), "{name}");
        }
        let out = to_vec(model.layers[0].output.weight.val()); // [f, d] from PyTorch [d, f]
        let src = values(k("encoder.layer.0.output.dense.weight"), d * f);
        assert_eq!(out[5 * d + 2], src[2 * f + 5]);
    }

    #[test]
    fn refuses_files_that_do_not_fit() {
        let dev = device();
        let c = tiny_config(14);
        let cases: [(&str, Edit, &str); 3] = [
            (
                "missing.safetensors",
                Box::new(|t| t.retain(|(n, _)| n != "encoder.layer.1.output.dense.bias")),
                "layers.1.output.bias",
            ),
            (
                "extra.safetensors",
                Box::new(|t| {
                    let bytes = vec![0u8; 16 * 4];
                    t.push((
                        "encoder.layer.0.attention.self.rotary.weight".into(),
                        Raw { dtype: Dtype::F32, shape: vec![16], bytes },
                    ))
                }),
                "rotary",
            ),
            (
                "shape.safetensors",
                Box::new(|t| {
                    let (_, r) = t.iter_mut().find(|(n, _)| n == "encoder.layer.0.intermediate.dense.bias").unwrap();
                    r.shape = vec![12];
                    r.bytes.truncate(12 * 4);
                }),
                "intermediate",
            ),
        ];
        for (file, edit, needle) in cases {
            let path = temp(file);
            write_file(&c, &path, edit);
            match c.init(&dev).load_safetensors(&path) {
                Err(e @ TextError::Load { .. }) => assert!(e.to_string().contains(needle), "{file}: {e}"),
                other => panic!("{file}: expected a load error, got {:?}", other.map(|r| r.applied.len())),
            }
        }
        assert!(matches!(c.init(&dev).load_safetensors(temp("absent.safetensors")), Err(TextError::Io { .. })));
    }
}
