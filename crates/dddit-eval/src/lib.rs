//! # dddit-eval
//!
//! Sampling, quality metrics and measured compute of dddit (arriving with the evaluation issue).
//! Depends on `dddit-core`.

#![warn(missing_docs)]
