//! The layers a DiT is made of, written to match the reference DiT parameter for parameter.

mod attention;
mod embed;
mod experts;
mod init;
mod mlp;
mod norm;

pub use attention::{Attention, AttentionConfig, AttentionSlice};
pub use embed::{
    pos_embed_2d, timestep_frequencies, LabelEmbedder, LabelEmbedderConfig, PatchEmbed, PatchEmbedConfig,
    TimestepEmbedder, TimestepEmbedderConfig,
};
pub use experts::{experts_forward, experts_forward_grouped};
pub use init::{constant, eager, linear, shapes_only, LinearInit};
pub use mlp::{gelu_tanh, Mlp, MlpConfig, MlpSlice};
pub use norm::{layer_norm_no_affine, ln_modulate, modulate, LN_EPS};
