//! # dddit-eval
//!
//! Everything that turns a trained routed DiT into numbers a reviewer accepts: sampling, feature
//! extractors (the standard TF-Inception of FID, ported to burn; small classifiers trained by dddit
//! for fast CPU metrics), Fréchet distance, precision/recall, class accuracy, prompt adherence on
//! `shapes`, and the compute each sample really cost (GFLOPs over the trajectory, measured time,
//! routing statistics by timestep range).

#![warn(missing_docs)]

pub mod adherence;
pub mod assets;
pub mod captions;
pub mod classifier;
pub mod compute;
pub mod degrade;
pub mod error;
pub mod eval;
pub mod features;
pub mod frechet;
pub mod grid;
pub mod inception;
pub mod prdc;
pub mod realcheck;
pub mod run;
pub mod sample;
pub mod shards;
pub mod speed;
pub mod stats;

pub use error::EvalError;
pub use features::{extract_all, FeatureExtractor};
