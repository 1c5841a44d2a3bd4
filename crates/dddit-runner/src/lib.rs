//! dddit's experiment runner. One TOML file describes an experiment: base settings (model,
//! router, data, training, evaluation, device), `[sweep]` axes over any key path and `seeds`;
//! [`Experiment::open`] validates all of it at once, naming file, line and key of every
//! problem; [`run_experiment`] trains and evaluates each run in its own directory, resumably
//! and in shards, copying completed runs of equal settings from other results directories
//! (`--reuse`); [`table`] and [`plots`] turn a results directory into a comparison table
//! and plots.

pub mod error;
pub mod experiment;
pub mod meta;
pub mod plots;
pub mod reuse;
pub mod runner;
pub mod significance;
pub mod source;
pub mod sweep;
pub mod table;
pub mod tidy;
pub mod validate;

pub use error::{Location, Problem, RunnerError};
pub use experiment::{Experiment, Point, Run};
pub use runner::{run_experiment, RunOptions, Shard, SweepOutcome};
