//! # dddit-train
//!
//! Data sets, the training loop, losses and checkpoints of dddit . Depends on `dddit-core` and `dddit-routers`.

#![warn(missing_docs)]

pub mod captions;
pub mod config;
pub mod progress;
pub mod run;
pub mod run_dir;
pub mod trainer;

pub use config::{LossWeights, Stage, StageTarget, TrainConfig};
pub use run::{ModelSection, RunFile, RunFileError};
pub use run_dir::{Prepared, RunDir, RunError};
pub use trainer::{StepLog, TrainError, TrainState, Trainer};
