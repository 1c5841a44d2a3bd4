//! # dddit-router-example
//!
//! `noise-skip`, the router that `docs/adding-a-router.md` builds step by step: a training-free,
//! per-sample router that skips the last `skip_layers` DiT blocks for samples whose diffusion
//! timestep is below `threshold`. Low-noise steps, which only refine details, run fewer blocks.
//!
//! It lives outside `dddit-routers` on purpose: it shows that a router needs nothing from
//! dddit but its public API. A [`NoiseSkipConfig`] (the `[router]` table) builds a
//! [`NoiseSkipStack`] (the blocks between the DiT stem and its final layer, a
//! [`dddit_core::routing::Router`]), and one
//! `register_router!` line makes it selectable by name. The `dddit` binary links it with
//! `use dddit_router_example as _;`.
//!
//! ```toml
//! [router]
//! kind = "noise-skip"
//! skip_layers = 2     # the last 2 blocks…
//! threshold = 300.0   # …are skipped by samples with t < 300
//! ```

#![warn(missing_docs)]

use burn::module::ParamId;
use burn::prelude::*;
use dddit_core::dit::{DiTBlock, DiTBlockConfig, DiTConfig};
use dddit_core::flops::Flops;
use dddit_core::routing::{run_selected, Router, RouterInput, RouterOutput, RoutingStats};
use dddit_routers::{ConfigError, KeyDefault, KeyDoc, RouterConfig};
use serde::Deserialize;

// ANCHOR: config
/// Config of `noise-skip`: the keys of a `[router]` table with `kind = "noise-skip"`.
///
/// Every key has a default (`#[serde(default)]` fills missing keys from [`Default`]) and a key
/// the struct does not have is an error (`deny_unknown_fields`), so a typo never passes silently.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NoiseSkipConfig {
    /// How many of the last blocks a low-noise sample skips (≤ depth).
    pub skip_layers: usize,
    /// Timestep below which a sample counts as low-noise (≥ 0; timesteps run from 0, clean, to
    /// 999, pure noise).
    pub threshold: f64,
}

impl Default for NoiseSkipConfig {
    fn default() -> Self {
        NoiseSkipConfig { skip_layers: 2, threshold: 300.0 }
    }
}
// ANCHOR_END: config

// ANCHOR: stack
/// The `noise-skip` stack: the DiT blocks and the fixed rule that decides which samples run
/// them. There is no router network: the rule reads the host-side timesteps.
#[derive(Module, Debug)]
pub struct NoiseSkipStack {
    /// The DiT blocks, in depth order.
    pub blocks: Vec<DiTBlock>,
    /// How many of the last blocks a low-noise sample skips.
    pub skip_layers: usize,
    /// Samples with a timestep below this skip the last `skip_layers` blocks.
    pub threshold: f64,
}
// ANCHOR_END: stack

// ANCHOR: router_config
impl RouterConfig for NoiseSkipConfig {
    type Stack = NoiseSkipStack;
    const NAME: &'static str = "noise-skip";
    const DESCRIPTION: &'static str =
        "example (docs/adding-a-router.md): samples with t < threshold skip the last skip_layers blocks; training-free";

    fn keys() -> &'static [KeyDoc] {
        &[
            KeyDoc {
                key: "skip_layers",
                ty: "integer ≤ depth",
                default: KeyDefault::Fixed("2"),
                doc: "last blocks a low-noise sample skips",
            },
            KeyDoc {
                key: "threshold",
                ty: "float ≥ 0",
                default: KeyDefault::Fixed("300.0"),
                doc: "timestep below which a sample is low-noise",
            },
        ]
    }

    fn validate(&self, model: &DiTConfig) -> Vec<ConfigError> {
        let mut errors = vec![];
        if self.skip_layers > model.depth {
            errors.push(ConfigError::new(
                "skip_layers",
                format!("must be ≤ depth {}; got {}", model.depth, self.skip_layers),
            ));
        }
        // TOML has `nan`, and NaN fails every comparison: refuse it explicitly.
        if self.threshold.is_nan() || self.threshold < 0.0 {
            errors.push(ConfigError::new("threshold", format!("must be ≥ 0; got {}", self.threshold)));
        }
        errors
    }

    fn init(&self, model: &DiTConfig, device: &Device) -> NoiseSkipStack {
        let block = DiTBlockConfig::new(model.hidden_size, model.num_heads, model.mlp_hidden());
        NoiseSkipStack {
            blocks: (0..model.depth).map(|_| block.init(device)).collect(),
            skip_layers: self.skip_layers,
            threshold: self.threshold,
        }
    }
}
// ANCHOR_END: router_config

// ANCHOR: forward
impl Router for NoiseSkipStack {
    /// The same in training and at inference: the decision is a fixed rule, not a learned one,
    /// so there is nothing to relax. `run_selected` gathers, for each block, only the samples
    /// that run it, charges them its FLOPs and leaves the others' hidden states untouched:
    /// skipped blocks are never computed and are not in the skipping samples' graph.
    fn forward(&self, mut h: Tensor<3>, input: &RouterInput) -> RouterOutput {
        let [batch, _, _] = h.dims(); // [batch, tokens, hidden]
        let mut flops = vec![Flops::default(); batch];
        let runs = |sample: usize, layer: usize| self.runs(layer, input.timesteps[sample]);
        let ran = run_selected(&self.blocks, &mut h, input, runs, &mut flops);
        let fraction = ran as f64 / (batch * self.blocks.len()).max(1) as f64;
        RouterOutput::new(h, flops, RoutingStats::layers(fraction))
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.blocks.iter().map(|b| b.flops(tokens)).sum()
    }

    // No router network: the rule reads the timesteps.
    fn router_params(&self) -> Vec<ParamId> {
        vec![]
    }
}

impl NoiseSkipStack {
    /// Whether a sample at timestep `t` runs block `layer`: every sample runs the first
    /// `depth − skip_layers` blocks; only samples with `t ≥ threshold` run the rest.
    pub fn runs(&self, layer: usize, t: f64) -> bool {
        layer < self.blocks.len().saturating_sub(self.skip_layers) || t >= self.threshold
    }
}
// ANCHOR_END: forward

// ANCHOR: register
dddit_routers::register_router!(NoiseSkipConfig);
// ANCHOR_END: register
