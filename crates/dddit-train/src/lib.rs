//! # dddit-train
//!
//! Data sets, the training loop, losses and checkpoints of dddit (arriving with the training
//! issue). Depends on `dddit-core` only.

#![warn(missing_docs)]

pub mod data;
