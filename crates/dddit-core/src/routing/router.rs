//! The [`Router`] trait: the routed layers between a DiT's stem and its final layer, which
//! decide per input what runs and run only that.

use super::{Mode, RouterLosses, RoutingStats};
use crate::flops::Flops;
use burn::module::{Module, ModuleDisplay, ParamId};
use burn::prelude::*;

/// What a [`Router`] may look at in one forward pass.
#[derive(Clone, Debug)]
pub struct RouterInput<'a> {
    /// Conditioning `c = t_emb + y_emb` (+ caption), `[batch, hidden]`: what the DiT blocks'
    /// adaLN reads and what most routers decide from.
    pub c: &'a Tensor<2>,
    /// Timestep embedding, `[batch, hidden]`.
    pub t_emb: &'a Tensor<2>,
    /// Diffusion timesteps on the host, one per sample: 0 is the clean image, 999 pure noise
    /// (DiT's convention; sampling runs from 999 down to 0). Known in training and sampling, so a
    /// timestep rule decides without a device round trip.
    pub timesteps: &'a [f64],
    /// Pooled caption embedding, `[batch, text_dim]`, when the model is caption-conditioned.
    pub text: Option<&'a Tensor<2>>,
    /// The noisy input x_t, `[batch, C, H, W]`, for content-aware routers.
    pub x_t: &'a Tensor<4>,
    /// Training (soft or straight-through decisions, gradients flow) or inference (hard
    /// decisions, skipped work is not run).
    pub mode: Mode,
    /// Everything on (the complete model of DyDiT's complete-model loss): gated routers run
    /// every block, head, channel and token; routers without gates ignore it.
    pub full: bool,
}

/// What a [`Router`] returns.
#[derive(Clone, Debug)]
pub struct RouterOutput {
    /// Hidden tokens after the last layer, `[batch, tokens, hidden]`.
    pub h: Tensor<3>,
    /// MACs each sample actually spent in the routed layers, the router's own network included.
    pub flops: Vec<Flops>,
    /// Auxiliary losses for training; the trainer weighs them by the run's `[train.loss]`.
    pub losses: RouterLosses,
    /// What ran, as fractions (logged in training, averaged in evaluation).
    pub stats: RoutingStats,
}

impl RouterOutput {
    /// An output without auxiliary losses.
    pub fn new(h: Tensor<3>, flops: Vec<Flops>, stats: RoutingStats) -> Self {
        RouterOutput { h, flops, losses: RouterLosses::default(), stats }
    }
}

/// A router: the layers between the DiT stem and its final layer, deciding from the
/// conditioning (and optionally the tokens) what to run, and running only that.
///
/// A router is a burn module (its blocks and its gates are parameters) built by a
/// `RouterConfig` of `dddit-routers`; `RoutedDiT` wraps it with the DiT embeddings and final
/// layer. The executions most routers need are helpers of this module: [`super::execute`]
/// (experts or tokens by a [`super::RoutingDecision`]), [`super::run_selected`] and
/// [`super::run_to_depth`] (per-sample depth), [`super::run_complete`] (everything on).
pub trait Router: Module + ModuleDisplay + Clone + Send + std::fmt::Debug + 'static {
    /// Runs the routed layers on `h` (`[batch, tokens, hidden]`).
    fn forward(&self, h: Tensor<3>, input: &RouterInput) -> RouterOutput;

    /// MACs per sample of the same layers with everything on: the dense reference of the
    /// router's GFLOPs ratio.
    fn full_flops(&self, tokens: usize) -> Flops;

    /// The ids of the router's own parameters (gates, routers, estimators, budget heads): what a
    /// `train = "router"` stage updates and a `train = "experts"` stage leaves alone (seed §5.1).
    /// Collect them with [`param_ids`] over the router's modules; a router without learned
    /// routing returns an empty list. Required, not defaulted, so a new router cannot have its
    /// gate silently trained as an expert.
    fn router_params(&self) -> Vec<ParamId>;
}

/// The ids of every float parameter of `module`: the building block of
/// [`Router::router_params`].
pub fn param_ids<M: Module>(module: &M) -> Vec<ParamId> {
    crate::optim::param_paths(module).into_iter().map(|(_, id, _)| id).collect()
}
