//! The DiT backbone (Peebles & Xie, "Scalable Diffusion Models with Transformers").

mod block;
mod config;
pub mod load;
mod model;

pub use block::{
    adaln_modulation, attn_input, attn_residual, mlp_input, DiTBlock, DiTBlockConfig, FinalLayer, FinalLayerConfig,
    Modulation,
};
pub use config::{DiTConfig, TIMESTEP_FREQ_DIM};
pub use model::{apply_cfg, DiT, Embedded};
