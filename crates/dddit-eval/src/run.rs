//! Opening a training run's directory for evaluation: its `config.toml` rebuilds the model and
//! the data set, and the checkpoint's EMA weights (what DiT evaluates) are loaded into it.

use crate::EvalError;
use burn::prelude::*;
use dddit_core::dit::DiTConfig;
use dddit_data::Dataset;
use dddit_routers::AnyRoutedModel;
use dddit_train::{RunFile, TrainState};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A trained run, ready to sample from.
pub struct TrainedRun {
    /// The run directory.
    pub dir: PathBuf,
    /// Its run file (`config.toml`).
    pub file: RunFile,
    /// The training data set.
    pub data: Arc<dyn Dataset>,
    /// The DiT hyper-parameters.
    pub dit: DiTConfig,
    /// The model with the checkpoint's EMA weights, on the evaluation device (no autodiff).
    pub model: Box<dyn AnyRoutedModel>,
    /// Training steps done when the checkpoint was written.
    pub step: usize,
    /// The caption encoder the run was trained with (`None`: class-conditional).
    pub text_encoder: Option<dddit_train::captions::TextEncoderKind>,
    /// The snapshot the weights come from (`train.snapshots`), `None` for the checkpoint.
    pub snapshot: Option<usize>,
}

impl std::fmt::Debug for TrainedRun {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainedRun")
            .field("dir", &self.dir)
            .field("router", &self.model.router())
            .field("step", &self.step)
            .finish()
    }
}

impl TrainedRun {
    /// Opens `dir` (which holds `config.toml` and `checkpoint/` as `dddit train` writes them)
    /// and loads the EMA weights onto `device`.
    pub fn open(dir: &Path, device: &Device) -> Result<TrainedRun, EvalError> {
        Self::open_at(dir, None, device)
    }

    /// As [`TrainedRun::open`], with the EMA weights of `snapshots/step-N/` when `snapshot` is
    /// `Some(N)` (kept by `train.snapshots`) instead of the last checkpoint.
    pub fn open_at(dir: &Path, snapshot: Option<usize>, device: &Device) -> Result<TrainedRun, EvalError> {
        let run_dir = dddit_train::RunDir::new(dir);
        let cfg = run_dir.config();
        if !cfg.exists() {
            return Err(EvalError::format(dir, "not a run directory: no config.toml (written by `dddit train`)"));
        }
        let file = RunFile::read(&cfg).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let data = file.dataset(&cfg).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let dit = file.dit_config(&cfg).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let mut model = file.build_model(&dit, device, &cfg).map_err(|e| EvalError::Invalid(e.to_string()))?;
        let ck = match snapshot {
            Some(n) => {
                let ck = run_dir.snapshot(n);
                if !ck.join(dddit_train::run_dir::STATE).exists() {
                    let kept = format!("{:?}", file.train.snapshots);
                    return Err(EvalError::format(
                        &ck,
                        format!("no snapshot of step {n}: the run keeps the steps of train.snapshots = {kept} once it has trained past them"),
                    ));
                }
                ck
            }
            None => run_dir
                .checkpoint()
                .ok_or_else(|| EvalError::format(dir, "no checkpoint/ yet: train the run first (`dddit train`)"))?,
        };
        let ema = ck.join(dddit_train::run_dir::EMA);
        model.load(&ema).map_err(|e| EvalError::format(&ema, e))?;
        let state_path = ck.join(dddit_train::run_dir::STATE);
        let text = std::fs::read(&state_path).map_err(|e| EvalError::io(&state_path, e))?;
        let state: TrainState =
            serde_json::from_slice(&text).map_err(|e| EvalError::format(&state_path, e.to_string()))?;
        let text_encoder =
            if file.model.caption { Some(state.text_encoder.unwrap_or(file.model.text_encoder)) } else { None };
        Ok(TrainedRun { dir: dir.to_path_buf(), file, data, dit, model, step: state.step, text_encoder, snapshot })
    }

    /// Where an output of this evaluation goes: `<dir>/<stem>.<ext>` for the checkpoint,
    /// `<dir>/<stem>-step-N.<ext>` for a snapshot (so a curve's evaluations sit side by side).
    pub fn output(&self, stem: &str, ext: &str) -> PathBuf {
        match self.snapshot {
            Some(n) => self.dir.join(format!("{stem}-step-{n}.{ext}")),
            None => self.dir.join(format!("{stem}.{ext}")),
        }
    }
}
