//! What a router's layer stack receives and returns.

use burn::prelude::*;
use dddit_core::flops::Flops;
use dddit_core::routing::{AuxLoss, Mode};
use std::collections::BTreeMap;

/// Conditioning and context for one forward pass of a [`RoutedStack`].
#[derive(Clone, Debug)]
pub struct StackInput<'a> {
    /// Conditioning `c = t_emb + y_emb` (+ text), `[batch, hidden]`.
    pub c: &'a Tensor<2>,
    /// Timestep embedding, `[batch, hidden]`.
    pub t_emb: &'a Tensor<2>,
    /// Timesteps on the host, one per sample (known in training and sampling).
    pub timesteps: &'a [f64],
    /// Pooled text embedding, `[batch, text_dim]`, when the model is caption-conditioned.
    pub text: Option<&'a Tensor<2>>,
    /// The noisy input x_t, `[batch, C, H, W]`, for content-aware routers.
    pub x_t: &'a Tensor<4>,
    /// Training or inference.
    pub mode: Mode,
    /// Everything on (the complete model): gated routers run every block, head, channel and
    /// token.
    pub full: bool,
}

/// Mean routing statistics of one forward pass, by name: fractions of layers, heads, MLP
/// channels, tokens or experts that ran (1 = everything), averaged over samples and layers.
pub type RoutingStats = BTreeMap<String, f64>;

/// What a [`RoutedStack`] returns.
#[derive(Clone, Debug)]
pub struct StackOutput {
    /// Hidden tokens after the last layer, `[batch, tokens, hidden]`.
    pub h: Tensor<3>,
    /// MACs each sample actually spent in the stack (routers included).
    pub flops: Vec<Flops>,
    /// Auxiliary losses of the routers (balance, entropy, FLOPs target…).
    pub aux_losses: Vec<AuxLoss>,
    /// Routing statistics.
    pub stats: RoutingStats,
}

/// The routed part of a DiT: every block and router between the stem and the final layer.
///
/// A router crate implements this for its stack type; [`crate::RoutedDiT`] wraps it with the
/// DiT embeddings and final layer.
pub trait RoutedStack: Module + burn::module::ModuleDisplay + Clone + Send + std::fmt::Debug + 'static {
    /// Runs the stack on `h` (`[batch, tokens, hidden]`).
    fn forward(&self, h: Tensor<3>, input: &StackInput) -> StackOutput;

    /// MACs per sample of the same stack with everything on (the dense reference of its
    /// GFLOPs ratio).
    fn full_flops(&self, tokens: usize) -> Flops;

    /// The ids of the router's own parameters (gates, routers, estimators, budget heads):
    /// what a `train = "router"` stage updates and a `train = "experts"` stage leaves alone
    /// (seed §5.1). Collect them with [`crate::common::param_ids`] over the router modules;
    /// a stack without learned routing returns an empty list. Required, not defaulted, so a
    /// new router cannot have its gate silently trained as an expert.
    fn router_params(&self) -> Vec<burn::module::ParamId>;
}

/// The complete model of a gated stack: every block runs densely for every sample.
pub fn run_complete<'a>(
    blocks: impl Iterator<Item = &'a dddit_core::dit::DiTBlock>,
    mut h: Tensor<3>,
    input: &StackInput,
) -> StackOutput {
    let [b, n, _] = h.dims();
    let mut cost = Flops::default();
    for block in blocks {
        h = block.forward(h, input.c.clone());
        cost += block.flops(n);
    }
    StackOutput { h, flops: vec![cost; b], aux_losses: vec![], stats: [("layers".to_string(), 1.0)].into() }
}
