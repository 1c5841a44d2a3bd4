//! The run file: one training run's model, router, data and training settings in TOML, the
//! same file `dddit train` reads and copies into the run directory as `config.toml`, so
//! evaluation can rebuild exactly the model that was trained.

use crate::TrainConfig;
use burn::prelude::*;
use dddit_core::dit::DiTConfig;
use dddit_data::{DataSection, Dataset};
use dddit_routers::AnyRoutedModel;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a run file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RunFileError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped keys (the message gives the line).
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A section is valid TOML but its settings do not work together.
    #[error("{path}: {key}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The key or section at fault.
        key: String,
        /// What is wrong.
        message: String,
    },
}

/// A run file, as written by users and copied into the run directory.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RunFile {
    /// Device (`dddit devices`), default `flex`.
    #[serde(default = "default_device")]
    pub device: String,
    /// Numeric precision: `f32` (default), `tf32` (CUDA matmuls on TF32 tensor cores) or `bf16`
    /// (every float tensor bfloat16; for inference and benchmarks, see
    /// `dddit_core::precision`).
    #[serde(default)]
    pub precision: dddit_core::precision::Precision,
    /// Run directory.
    #[serde(default)]
    pub out: Option<PathBuf>,
    /// The DiT.
    pub model: ModelSection,
    /// The router and its keys (`kind` plus the router's own keys); empty means `dense`.
    #[serde(default)]
    pub router: toml::Table,
    /// The data set.
    pub data: DataSection,
    /// Training settings.
    #[serde(default)]
    pub train: TrainConfig,
}

fn default_device() -> String {
    "flex".into()
}

/// `[model]` of a run file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSection {
    /// DiT preset, e.g. `DiT-S/4`.
    pub preset: String,
    /// Predict the variance too (DiT's learn_sigma).
    #[serde(default = "yes")]
    pub learn_sigma: bool,
    /// Label dropout for classifier-free guidance (with `caption`: caption dropout).
    #[serde(default = "dropout")]
    pub class_dropout_prob: f64,
    /// Condition on each image's caption (its pooled embedding projected into `c`) instead of
    /// its class label.
    #[serde(default)]
    pub caption: bool,
    /// Caption encoder: `minilm` (pretrained; falls back to `hashed` with a notice when its
    /// weights are not installed) or `hashed`.
    #[serde(default)]
    pub text_encoder: crate::captions::TextEncoderKind,
}

fn yes() -> bool {
    true
}

fn dropout() -> f64 {
    0.1
}

impl RunFile {
    /// Parses `text`, naming `path` in errors.
    pub fn parse(text: &str, path: &Path) -> Result<RunFile, RunFileError> {
        toml::from_str(text).map_err(|e| RunFileError::Parse { path: path.to_path_buf(), message: e.to_string() })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &Path) -> Result<RunFile, RunFileError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| RunFileError::Io { path: path.to_path_buf(), source })?;
        RunFile::parse(&text, path)
    }

    /// The data set, with errors naming `path` and `[data]`.
    pub fn dataset(&self, path: &Path) -> Result<Arc<dyn Dataset>, RunFileError> {
        self.data.init().map_err(|e| RunFileError::Invalid {
            path: path.to_path_buf(),
            key: "[data]".into(),
            message: e.to_string(),
        })
    }

    /// The DiT hyper-parameters for the data's size, channels and classes
    /// ([`DataSection::shape`]: no file is read). The error names the key at fault:
    /// `model.preset`, `model.class_dropout_prob`, or `data.size` when a shapes size is not
    /// divisible by the patch (Fashion-MNIST's 28 is fixed: `model.preset`).
    pub fn dit_config(&self, path: &Path) -> Result<DiTConfig, RunFileError> {
        self.model_config().map_err(|mut problems| {
            let (key, message) = problems.swap_remove(0);
            RunFileError::Invalid { path: path.to_path_buf(), key, message }
        })
    }

    /// [`RunFile::dit_config`] with every problem of the model's settings (key, message), not
    /// only the first: a bad preset does not hide a bad dropout probability.
    pub fn model_config(&self) -> Result<DiTConfig, Vec<(String, String)>> {
        let mut problems: Vec<(String, String)> = Vec::new();
        let p = self.model.class_dropout_prob;
        let p_ok = (0.0..1.0).contains(&p);
        if !p_ok {
            problems.push(("model.class_dropout_prob".into(), format!("must be in [0, 1), got {p}")));
        } else if self.model.caption && p <= 0.0 {
            problems.push((
                "model.class_dropout_prob".into(),
                "caption conditioning needs caption dropout > 0 (the null caption of classifier-free guidance)".into(),
            ));
        }
        let data = self.data.shape();
        let model = match DiTConfig::preset(&self.model.preset, data.size, data.channels) {
            Err(e) => {
                problems.push(("model.preset".into(), e.to_string()));
                None
            }
            Ok(mut model) => {
                model.num_classes = data.classes;
                model.learn_sigma = self.model.learn_sigma;
                // An out-of-range probability is reported above, not blamed on the image size.
                model.class_dropout_prob = if p_ok { p } else { 0.0 };
                if self.model.caption {
                    model.text_dim = crate::captions::CAPTION_DIM;
                }
                match model.validate() {
                    Ok(()) => Some(model),
                    Err(e) => {
                        let key = match self.data {
                            DataSection::Shapes(_) => "data.size",
                            DataSection::FashionMnist(_) => "model.preset",
                        };
                        problems.push((
                            key.into(),
                            format!("{} does not fit {}×{} images: {e}", self.model.preset, data.size, data.size),
                        ));
                        None
                    }
                }
            }
        };
        match model {
            Some(m) if problems.is_empty() => Ok(m),
            _ => Err(problems),
        }
    }

    /// The caption embeddings of a caption-conditioned run (`None` for a class-conditional
    /// one) on `device`, which must not be an autodiff device: the encoder is frozen. `kind`
    /// overrides the file's encoder (a checkpoint records the one it was trained with). The
    /// second value is the notice to show when MiniLM fell back to the hashed encoder.
    pub fn captions(
        &self,
        kind: Option<crate::captions::TextEncoderKind>,
        device: &Device,
        path: &Path,
    ) -> Result<Option<(crate::captions::Captions, Option<String>)>, RunFileError> {
        if !self.model.caption {
            return Ok(None);
        }
        let kind = kind.unwrap_or(self.model.text_encoder);
        crate::captions::Captions::new(kind, device).map(Some).map_err(|e| RunFileError::Invalid {
            path: path.to_path_buf(),
            key: "model.text_encoder".into(),
            message: e.to_string(),
        })
    }

    /// The device this run file names (or `override_device`, e.g. `--device`), set up for its
    /// `precision`; train on `device.autodiff()` of it.
    pub fn device(
        &self,
        override_device: Option<&str>,
        path: &Path,
    ) -> Result<(dddit_core::device::DeviceSpec, Device), RunFileError> {
        let bad = |key: &str, e: dddit_core::error::CoreError| RunFileError::Invalid {
            path: path.to_path_buf(),
            key: key.into(),
            message: e.to_string(),
        };
        let spec: dddit_core::device::DeviceSpec =
            override_device.unwrap_or(&self.device).parse().map_err(|e| bad("device", e))?;
        let mut device = spec.device().map_err(|e| bad("device", e))?;
        self.precision.apply(spec, &mut device).map_err(|e| bad("precision", e))?;
        Ok((spec, device))
    }

    /// Builds the routed model (fresh weights) on `device`.
    pub fn build_model(
        &self,
        model: &DiTConfig,
        device: &Device,
        path: &Path,
    ) -> Result<Box<dyn AnyRoutedModel>, RunFileError> {
        dddit_routers::build(&self.router, model, device).map_err(|e| RunFileError::Invalid {
            path: path.to_path_buf(),
            key: "[router]".into(),
            message: e.to_string(),
        })
    }
}
