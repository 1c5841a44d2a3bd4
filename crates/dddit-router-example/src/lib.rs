//! # dddit-router-example
//!
//! `noise-skip`, the router that `docs/adding-a-router.md` builds step by step: a training-free,
//! per-sample router that skips the last `skip_layers` DiT blocks for samples whose diffusion
//! timestep is below `threshold`. Low-noise steps, which only refine details, run fewer blocks.
//!
//! It lives outside `dddit-routers` on purpose: it shows that a router needs nothing from
//! dddit but its public API. A [`NoiseSkipConfig`] (the `[router]` table) builds a
//! [`NoiseSkipStack`] (the blocks between the DiT stem and its final layer), and one
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
use dddit_core::routing::{execute, Granularity, PathAssignment, RoutingDecision};
use dddit_routers::{ConfigError, KeyDoc, RoutedStack, RouterConfig, StackInput, StackOutput};
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
                default: "2",
                doc: "last blocks a low-noise sample skips",
            },
            KeyDoc {
                key: "threshold",
                ty: "float ≥ 0",
                default: "300.0",
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

// ANCHOR: decide
impl NoiseSkipStack {
    /// Whether a sample at timestep `t` runs block `layer`: every sample runs the first
    /// `depth − skip_layers` blocks; only samples with `t ≥ threshold` run the rest.
    pub fn runs(&self, layer: usize, t: f64) -> bool {
        layer < self.blocks.len().saturating_sub(self.skip_layers) || t >= self.threshold
    }

    /// The routing decision for block `layer`: one unit per sample, one path (the block), run by
    /// the samples listed; the others skip it.
    pub fn decide(&self, layer: usize, timesteps: &[f64]) -> RoutingDecision {
        let samples: Vec<usize> = (0..timesteps.len()).filter(|&s| self.runs(layer, timesteps[s])).collect();
        RoutingDecision::sparse(Granularity::Sample, timesteps.len(), vec![PathAssignment::new(0, samples)])
    }
}
// ANCHOR_END: decide

// ANCHOR: forward
impl RoutedStack for NoiseSkipStack {
    /// The same in training and at inference: the decision is a fixed rule, not a learned one,
    /// so there is nothing to relax; gradients flow through the gathered rows of the samples
    /// that ran, and skipped blocks are not in the graph of the samples that skipped them.
    fn forward(&self, mut h: Tensor<3>, input: &StackInput) -> StackOutput {
        let [batch, tokens, _] = h.dims(); // [batch, tokens, hidden]
        assert_eq!(input.timesteps.len(), batch, "noise-skip needs one host timestep per sample");
        let c = input.c; // [batch, hidden]
        let mut flops = vec![Flops::default(); batch];
        let mut ran = 0usize;
        for (i, block) in self.blocks.iter().enumerate() {
            let decision = self.decide(i, input.timesteps);
            let samples = decision.units_of(0).unwrap_or_default();
            if samples.is_empty() {
                continue; // no sample runs this block: nothing is launched
            }
            // Report exactly what runs: this block, once per sample that runs it.
            for &s in samples {
                flops[s] += block.flops(tokens);
            }
            ran += samples.len();
            // The executor gathers the rows of the listed samples, `rows` [selected, tokens,
            // hidden] with `idx` [selected] their batch positions, and scatters the result back into a
            // [batch, tokens, hidden] tensor that is zero for the others. So the closure returns
            // the block's residual, and adding it leaves the skipped samples' `h` untouched.
            let delta = execute(h.clone(), &decision, |_path, rows, idx| {
                let c_rows = c.clone().select(0, idx.clone()); // [selected, hidden]
                block.forward(rows.clone(), c_rows) - rows
            });
            h = h + delta; // [batch, tokens, hidden]
        }
        let fraction = ran as f64 / (batch * self.blocks.len()).max(1) as f64;
        StackOutput { h, flops, aux_losses: vec![], stats: [("layers".to_string(), fraction)].into() }
    }

    // No router network: the rule reads the timesteps.
    fn router_params(&self) -> Vec<ParamId> {
        vec![]
    }

    fn full_flops(&self, tokens: usize) -> Flops {
        self.blocks.iter().map(|b| b.flops(tokens)).sum()
    }
}
// ANCHOR_END: forward

// ANCHOR: register
dddit_routers::register_router!(NoiseSkipConfig);
// ANCHOR_END: register
