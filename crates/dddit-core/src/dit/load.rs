//! Loading weights saved by the reference PyTorch DiT (`models.py` state dicts).
//!
//! dddit keeps the reference parameter names, except where Rust naming differs:
//!
//! | reference | dddit |
//! |---|---|
//! | `t_embedder.mlp.0` / `t_embedder.mlp.2` | `t_embedder.mlp_in` / `t_embedder.mlp_out` |
//! | `blocks.N.adaLN_modulation.1` | `blocks.N.ada_ln_modulation` |
//! | `final_layer.adaLN_modulation.1` | `final_layer.ada_ln_modulation` |
//! | `pos_embed` (fixed, not trained) | recomputed, not stored |
//!
//! Linear weights are transposed from PyTorch's `[out, in]` to burn's `[in, out]`.

use super::model::DiT;
use crate::error::CoreError;
use burn_store::{ApplyResult, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};
use std::path::Path;

/// `(reference pattern, dddit replacement)` key remappings, applied in order.
pub const KEY_MAP: [(&str, &str); 3] = [
    (r"^t_embedder\.mlp\.0\.", "t_embedder.mlp_in."),
    (r"^t_embedder\.mlp\.2\.", "t_embedder.mlp_out."),
    (r"adaLN_modulation\.1\.", "ada_ln_modulation."),
];

/// Tensors of a reference state dict that dddit does not store.
pub const IGNORED: [&str; 1] = ["pos_embed"];

impl DiT {
    /// Loads a reference DiT state dict into this model, in place.
    ///
    /// Accepts `.safetensors` and PyTorch `.pt`/`.pth` files. A PyTorch file may hold a bare
    /// state dict (the released checkpoints) or a training checkpoint `{"model", "ema", ...}`,
    /// in which case `ema` is used (as the reference `sample.py` does), else `model`. Every
    /// parameter of this model must be present with the right shape; tensors other than
    /// `pos_embed` left unused are an error, so a mismatched architecture is never half-loaded.
    pub fn load_reference(&mut self, path: impl AsRef<Path>) -> Result<ApplyResult, CoreError> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(CoreError::Io { path: path.to_path_buf(), source: std::io::ErrorKind::NotFound.into() });
        }
        let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
        let result = match ext.as_str() {
            "safetensors" => {
                let mut store = SafetensorsStore::from_file(path)
                    .with_from_adapter(PyTorchToBurnAdapter)
                    .map_indices_contiguous(false);
                for (from, to) in KEY_MAP {
                    store = store.with_key_remapping(from, to);
                }
                self.load_from(&mut store).map_err(|e| load_err(path, e))?
            }
            "pt" | "pth" | "bin" => {
                let mut last_err = None;
                let mut found = None;
                for key in [None, Some("ema"), Some("model"), Some("state_dict")] {
                    let mut store = PytorchStore::from_file(path).map_indices_contiguous(false);
                    if let Some(k) = key {
                        store = store.with_top_level_key(k);
                    }
                    for (from, to) in KEY_MAP {
                        store = store.with_key_remapping(from, to);
                    }
                    match self.load_from(&mut store) {
                        Ok(r) if !r.applied.is_empty() => {
                            found = Some(r);
                            break;
                        }
                        Ok(_) => {}
                        Err(e) => last_err = Some(e.to_string()),
                    }
                }
                found.ok_or_else(|| CoreError::Load {
                    path: path.to_path_buf(),
                    message: last_err.unwrap_or_else(|| {
                        "no DiT parameters found at the top level or under 'ema', 'model' or 'state_dict'".into()
                    }),
                })?
            }
            other => {
                return Err(CoreError::Load {
                    path: path.to_path_buf(),
                    message: format!("unknown weight format '.{other}' (expected .safetensors, .pt or .pth)"),
                })
            }
        };
        check(path, result)
    }
}

fn load_err(path: &Path, e: impl std::fmt::Display) -> CoreError {
    CoreError::Load { path: path.to_path_buf(), message: e.to_string() }
}

fn check(path: &Path, r: ApplyResult) -> Result<ApplyResult, CoreError> {
    let unused: Vec<&String> = r.unused.iter().filter(|k| !IGNORED.contains(&k.as_str())).collect();
    if !r.errors.is_empty() || !r.missing.is_empty() || !unused.is_empty() {
        let mut msg = String::new();
        for e in &r.errors {
            msg.push_str(&format!("\n  error: {e}"));
        }
        for (m, _) in &r.missing {
            msg.push_str(&format!("\n  missing in file: {m}"));
        }
        for u in unused {
            msg.push_str(&format!("\n  in file but not in model: {u}"));
        }
        return Err(CoreError::Load {
            path: path.to_path_buf(),
            message: format!("weights do not match the model:{msg}"),
        });
    }
    Ok(r)
}
