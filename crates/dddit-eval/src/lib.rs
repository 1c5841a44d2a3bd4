//! # dddit-eval
//!
//! Everything that turns a trained routed DiT into numbers a reviewer accepts: sampling, feature
//! extractors (the standard TF-Inception of FID, ported to burn; small classifiers trained by dddit
//! for fast CPU metrics), Fréchet distance, precision/recall, class accuracy, prompt adherence on
//! `shapes`, and the compute each sample really cost (GFLOPs over the trajectory, measured time,
//! routing statistics by timestep range).

#![warn(missing_docs)]

pub mod error;
pub mod features;

pub use error::EvalError;
pub use features::{extract_all, FeatureExtractor};
