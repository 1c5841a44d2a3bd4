//! A run directory: the one place that knows its layout (`config.toml`, `metrics.jsonl`,
//! `checkpoint/` with its `.old` and `.tmp` siblings) and the sequence that trains a run file
//! in it. `dddit train`, the experiment runner and evaluation all go through it.

use crate::{RunFile, RunFileError, TrainError, TrainState, Trainer};
use burn::prelude::*;
use dddit_core::device::DeviceSpec;
use dddit_core::dit::DiTConfig;
use std::path::{Path, PathBuf};

/// The run file the directory was trained from (what `dddit eval` rebuilds the model from).
pub const CONFIG: &str = "config.toml";
/// One JSON line per training step.
pub const METRICS: &str = "metrics.jsonl";
/// The last checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// EMA weights kept at the steps of `train.snapshots`, one `step-N/` each.
pub const SNAPSHOTS: &str = "snapshots";
/// The previous checkpoint while the new one is renamed into place: after a crash between the
/// two renames it is the only one, and it is used.
pub const CHECKPOINT_OLD: &str = "checkpoint.old";
/// A checkpoint being written.
pub const CHECKPOINT_TMP: &str = "checkpoint.tmp";
/// In a checkpoint: the online weights.
pub const MODEL: &str = "model.bpk";
/// In a checkpoint: the EMA weights (what evaluation samples with).
pub const EMA: &str = "ema.bpk";
/// In a checkpoint: step, data position, caption encoder ([`TrainState`]).
pub const STATE: &str = "state.json";

/// Errors of training a run file in a directory.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run file's settings (device, data, model, captions).
    #[error(transparent)]
    File(#[from] RunFileError),
    /// Training.
    #[error(transparent)]
    Train(#[from] TrainError),
}

/// A run directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    path: PathBuf,
}

/// A run file set up for training in a [`RunDir`]: [`Prepared::trainer`] is ready to run.
pub struct Prepared {
    /// The trainer (model on the autodiff device, data, captions).
    pub trainer: Trainer,
    /// The device, as named.
    pub spec: DeviceSpec,
    /// The device without autodiff (evaluation's).
    pub device: Device,
    /// The DiT of the run.
    pub dit: DiTConfig,
    /// The training data.
    pub data: std::sync::Arc<dyn dddit_data::Dataset>,
}

impl RunDir {
    /// The run directory at `path` (nothing is created).
    pub fn new(path: impl Into<PathBuf>) -> RunDir {
        RunDir { path: path.into() }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `config.toml`.
    pub fn config(&self) -> PathBuf {
        self.path.join(CONFIG)
    }

    /// `metrics.jsonl`.
    pub fn metrics(&self) -> PathBuf {
        self.path.join(METRICS)
    }

    /// The snapshot of step `step` (`snapshots/step-N/`: the EMA weights and the training
    /// state, as in a checkpoint).
    pub fn snapshot(&self, step: usize) -> PathBuf {
        self.path.join(SNAPSHOTS).join(format!("step-{step}"))
    }

    /// Where the next checkpoint is written.
    pub fn checkpoint_path(&self) -> PathBuf {
        self.path.join(CHECKPOINT)
    }

    /// The checkpoint to resume or evaluate: `checkpoint/`, else `checkpoint.old/` (left alone by
    /// a crash between the two renames of a save); `None` before the first save.
    pub fn checkpoint(&self) -> Option<PathBuf> {
        [CHECKPOINT, CHECKPOINT_OLD].iter().map(|c| self.path.join(c)).find(|p| p.exists())
    }

    /// Whether a checkpoint exists to resume from.
    pub fn has_checkpoint(&self) -> bool {
        self.checkpoint().is_some()
    }

    /// The training state of the checkpoint ([`RunDir::checkpoint`]), `None` without one.
    pub fn state(&self) -> Option<Result<TrainState, TrainError>> {
        let p = self.checkpoint()?.join(STATE);
        Some(
            std::fs::read(&p)
                .map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| TrainError::Io(format!("{}: {e}", p.display())))),
        )
    }

    /// Steps of the checkpoint (0 without one or when its state cannot be read).
    pub fn checkpoint_step(&self) -> usize {
        self.state().and_then(|s| s.ok()).map_or(0, |s| s.step)
    }

    /// The sequence that trains `file` here: its device (`device_override`, else the file's)
    /// set up for its precision, seeded; the data set; the model on the autodiff device; the
    /// caption embeddings of a caption-conditioned run; the trainer. `source` names the file in
    /// errors; `notice` receives what the user should know (a caption encoder's fallback).
    /// Call [`Trainer::run`] on the result with [`RunDir::path`] to train or resume.
    pub fn prepare(
        &self,
        file: &RunFile,
        device_override: Option<&str>,
        source: &Path,
        notice: &mut dyn FnMut(&str),
    ) -> Result<Prepared, RunError> {
        let (spec, plain) = file.device(device_override, source)?;
        let device = plain.clone().autodiff();
        device.seed(file.train.seed);
        let data = file.dataset(source)?;
        let dit = file.dit_config(source)?;
        let model = file.build_model(&dit, &device, source)?;
        let captions = file.captions(None, &plain, source)?;
        let mut trainer = Trainer::new(file.train.clone(), model, data.clone(), &device)?;
        if let Some((captions, fallback)) = captions {
            if let Some(n) = fallback {
                notice(&n);
            }
            notice(&format!("conditioning on captions ({} embeddings)", captions.kind()));
            trainer.captions = Some(captions);
        }
        Ok(Prepared { trainer, spec, device: plain, dit, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_left_as_old_by_a_crash_is_found() {
        let dir = std::env::temp_dir().join(format!("dddit-run-dir-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = RunDir::new(&dir);
        assert!(!run.has_checkpoint() && run.checkpoint_step() == 0);
        std::fs::create_dir_all(dir.join(CHECKPOINT_OLD)).unwrap();
        std::fs::write(dir.join(CHECKPOINT_OLD).join(STATE), r#"{"step": 7, "position": {"epoch": 0, "offset": 0}}"#)
            .unwrap();
        assert_eq!(run.checkpoint(), Some(dir.join(CHECKPOINT_OLD)));
        std::fs::create_dir_all(dir.join(CHECKPOINT)).unwrap();
        assert_eq!(run.checkpoint(), Some(dir.join(CHECKPOINT)));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
